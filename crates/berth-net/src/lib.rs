//! Container networking for berth, as Docker's bridge driver does it, with
//! the forwarding kept in the kernel.
//!
//! The daemon holds one [`Net`] ([`Net::open`] at start, from its records).
//! It combines:
//! - [`Ipam`]: subnets from Docker's default pools that clash with neither
//!   the host's routes nor other networks; addresses in order; `--ip`.
//! - [`BridgeDriver`] (a [`NetworkDriver`]): a Linux bridge per network, a
//!   veth pair per endpoint made directly into the container's namespace,
//!   through rtnetlink.
//! - [`NetnsPool`]: network namespaces prepared ahead, so a container start
//!   does not pay for one.
//! - [`Firewall`]: published ports (DNAT from every host address and from
//!   127.0.0.1), masquerade, isolation, in the daemon's own nftables table,
//!   one `nft -j -f -` transaction per change; state recorded and the table
//!   rebuilt at start. Publishing or unpublishing a UDP port also deletes
//!   the stale tracked flows that would bypass it (`conntrack`).
//! - [`dns`]: the embedded DNS server (127.0.0.11 inside each container on
//!   a user-defined network), answering from a [`DnsTable`].
//! - [`files`]: `/etc/resolv.conf` and `/etc/hosts` as Docker writes them.
//!
//! Lifecycle, as the daemon calls it:
//!
//! ```text
//! daemon start   Net::open(cfg, NetState { networks, live endpoints, netns in use })
//!                (first start: Net::create_network for "bridge" on <prefix>0, dns: false)
//! network create Net::create_network(&NetworkCreate)         → store NetworkRecord
//! container start  path = net.pool().take()                  → OCI spec joins path
//!                Net::connect(network, &EndpointRequest{netns: path, ifname: "eth0", …})
//!                                                            → store EndpointRecord
//!                write Net::resolv_conf(..) and files::render_hosts(..) into the container
//!                start the container
//! network connect  Net::connect(network, {ifname: "eth1", default_route: false, …})
//! network disconnect Net::disconnect(endpoint)
//! container stop Net::release_container(container, path)    → drop EndpointRecords
//! network rm     Net::remove_network(id)                     → drop NetworkRecord
//! daemon stop    Net::shutdown() (containers keep their network)
//! ```
//!
//! Every function takes the host namespace, names and roots from
//! [`NetConfig`], so tests run whole "hosts" inside throwaway namespaces.

#![deny(missing_docs)]

mod bridge;
mod cidr;
mod conntrack;
pub mod dns;
mod error;
pub mod files;
mod firewall;
mod ipam;
mod model;
mod net;
mod netlink;
mod netns;
mod ports;
mod sys;

pub use bridge::{BridgeDriver, NetworkDriver};
pub use cidr::{parse_ip, Cidr};
pub use dns::DnsTable;
pub use error::{NetError, TeardownErrors};
pub use firewall::{
    Firewall, FirewallDriver, FirewallState, FwEndpoint, FwNetwork, NftDriver, NoFirewall,
};
pub use ipam::{is_reserved_address, DefaultPool, Ipam};
pub use model::{
    check_ifname, EndpointRecord, EndpointRequest, IpamRequest, MacAddr, NetworkCreate,
    NetworkRecord, SubnetConfig,
};
pub use net::{Net, NetConfig, NetState};
pub use netns::{create_netns, remove_netns, NetnsPool};
pub use ports::{PortBinding, PortRequest, Proto, EPHEMERAL_PORTS};
pub use sys::NetnsRef;
