//! The bridge driver: a Linux bridge per network, a veth pair per endpoint.
//!
//! Network set-up: create the bridge (up), give it each subnet's gateway
//! address, let it route 127.0.0.1 (`route_localnet`, so published ports
//! answer on the host's loopback without a proxy) and turn forwarding on.
//! Endpoint set-up: one netlink request makes the veth pair with the host
//! end up in the bridge and the other end already inside the container's
//! namespace, named `eth0` (or `eth1`…), with its MAC; then, through a
//! netlink socket opened in that namespace: link up, its addresses and the
//! default route via the gateway (none on internal networks).

use std::future::Future;

use crate::error::{NetError, TeardownErrors};
use crate::model::{check_ifname, EndpointRecord, NetworkRecord};
use crate::netlink::Nl;
use crate::sys::{self, NetnsRef};

/// The lifecycle every network driver follows. `validate` is asked before
/// anything is made; `setup_*` undo what they made when they fail;
/// `teardown_*` go on past failures and report them all.
///
/// Order: `setup_network` (network create or daemon start) →
/// `setup_endpoint` per container start / connect → `teardown_endpoint` per
/// stop / disconnect → `teardown_network` (network rm).
pub trait NetworkDriver: Send + Sync {
    /// Checks a network record before anything is made.
    fn validate(&self, net: &NetworkRecord) -> Result<(), NetError>;
    /// Makes (or adopts, after a daemon restart) the network's host side.
    fn setup_network(
        &self,
        net: &NetworkRecord,
    ) -> impl Future<Output = Result<(), NetError>> + Send;
    /// Removes the network's host side.
    fn teardown_network(
        &self,
        net: &NetworkRecord,
    ) -> impl Future<Output = Result<(), NetError>> + Send;
    /// Plugs a container's namespace into the network.
    fn setup_endpoint(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> impl Future<Output = Result<(), NetError>> + Send;
    /// Unplugs it.
    fn teardown_endpoint(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> impl Future<Output = Result<(), NetError>> + Send;
}

/// Linux bridges and veth pairs in the host namespace `host`.
pub struct BridgeDriver {
    host: NetnsRef,
    nl: Nl,
}

impl BridgeDriver {
    /// A driver working in `host` (the daemon's own namespace, or a test
    /// namespace). Must be called inside a tokio runtime.
    pub fn new(host: NetnsRef) -> Result<BridgeDriver, NetError> {
        let nl = Nl::connect(&host)?;
        Ok(BridgeDriver { host, nl })
    }

    /// The host namespace.
    pub fn host(&self) -> &NetnsRef {
        &self.host
    }

    /// Prefixes a new default subnet must avoid: the host's routes (default
    /// route aside) and the nameservers of its `resolv.conf`.
    pub async fn reserved_prefixes(
        &self,
        resolv_conf: &str,
    ) -> Result<Vec<crate::cidr::Cidr>, NetError> {
        let mut v = self.nl.route_prefixes_v4().await?;
        for ns in crate::files::nameservers(resolv_conf) {
            if let Ok(c) = crate::cidr::Cidr::new(ns, if ns.is_ipv4() { 32 } else { 128 }) {
                v.push(c);
            }
        }
        Ok(v)
    }

    /// Host-side veth ends named `<prefix>…` that sit in one of `bridges`
    /// but are not in `keep` (left by containers that died while the daemon
    /// was down), deleted. Returns their names.
    pub async fn sweep_veths(
        &self,
        prefix: &str,
        bridges: &[String],
        keep: &[String],
    ) -> Result<Vec<String>, NetError> {
        let links = self.nl.links().await?;
        let bridge_idx: Vec<u32> = links
            .iter()
            .filter(|l| bridges.contains(&l.name))
            .map(|l| l.index)
            .collect();
        let mut gone = Vec::new();
        let mut errs = TeardownErrors::default();
        for l in &links {
            let stale = l.kind.as_deref() == Some("veth")
                && l.name.starts_with(prefix)
                && l.master.is_some_and(|m| bridge_idx.contains(&m))
                && !keep.contains(&l.name);
            if stale && errs.note(self.nl.del_link_by_name(&l.name).await).is_some() {
                gone.push(l.name.clone());
            }
        }
        errs.into_result().map(|_| gone)
    }

    /// Moves the container's default route to this endpoint's gateway (when
    /// the network that carried it is disconnected).
    pub async fn set_default_route(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<(), NetError> {
        let nl = Nl::connect(&NetnsRef::Path(ep.netns.clone()))?;
        let idx = nl.index(&ep.ifname).await?;
        for s in &net.subnets {
            nl.replace_default_route(s.gateway, idx).await?;
        }
        Ok(())
    }

    /// [`NetworkDriver::teardown_endpoint`] as a future that owns what it
    /// needs (to run in the background).
    pub(crate) fn teardown_endpoint_owned(
        &self,
        _net: NetworkRecord,
        ep: EndpointRecord,
    ) -> impl Future<Output = Result<(), NetError>> + Send + 'static {
        let nl = self.nl.clone();
        async move { nl.del_link_by_name(&ep.host_ifname).await }
    }

    async fn setup_network_inner(
        &self,
        net: &NetworkRecord,
        made: &mut bool,
    ) -> Result<(), NetError> {
        let (idx, created) = self.nl.add_bridge(&net.bridge, net.mtu).await?;
        *made = created;
        for s in &net.subnets {
            let gw = crate::cidr::Cidr::new(s.gateway, s.subnet.prefix())?;
            self.nl.add_address(idx, gw).await?;
        }
        let br = &net.bridge;
        sys::write_sysctl(
            &self.host,
            &format!("net/ipv4/conf/{br}/route_localnet"),
            "1",
        )?;
        if !net.internal {
            sys::write_sysctl(&self.host, "net/ipv4/ip_forward", "1")?;
            if net.ipv6().is_some() {
                sys::write_sysctl(&self.host, "net/ipv6/conf/all/forwarding", "1")?;
            }
        }
        Ok(())
    }

    async fn setup_endpoint_inner(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<(), NetError> {
        let br = self.nl.index(&net.bridge).await?;
        let ns_file = sys::open_netns(&ep.netns)?;
        self.nl
            .add_veth(&ep.host_ifname, br, &ep.ifname, &ns_file, ep.mac, net.mtu)
            .await?;
        let host_idx = self.nl.index(&ep.host_ifname).await?;
        self.nl.set_hairpin(host_idx).await?;
        let inside = Nl::connect(&NetnsRef::Path(ep.netns.clone()))?;
        let idx = inside.index(&ep.ifname).await?;
        inside.set_up(idx).await?;
        for a in ep.ipv4.iter().chain(ep.ipv6.iter()) {
            inside.add_address(idx, *a).await?;
        }
        if ep.default_route && !net.internal {
            if let (Some(_), Some(s)) = (ep.ipv4, net.ipv4()) {
                inside.replace_default_route(s.gateway, idx).await?;
            }
            if let (Some(_), Some(s)) = (ep.ipv6, net.ipv6()) {
                inside.replace_default_route(s.gateway, idx).await?;
            }
        }
        Ok(())
    }
}

impl NetworkDriver for BridgeDriver {
    fn validate(&self, net: &NetworkRecord) -> Result<(), NetError> {
        check_ifname(&net.bridge)?;
        if net.ipv4().is_none() {
            return Err(NetError::InvalidIpamConfig(vec![format!(
                "network {} has no IPv4 subnet",
                net.name
            )]));
        }
        Ok(())
    }

    async fn setup_network(&self, net: &NetworkRecord) -> Result<(), NetError> {
        self.validate(net)?;
        let mut made = false;
        let r = self.setup_network_inner(net, &mut made).await;
        if r.is_err() && made {
            let _ = self.nl.del_link_by_name(&net.bridge).await;
        }
        r
    }

    async fn teardown_network(&self, net: &NetworkRecord) -> Result<(), NetError> {
        self.nl.del_link_by_name(&net.bridge).await
    }

    async fn setup_endpoint(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<(), NetError> {
        check_ifname(&ep.ifname)?;
        check_ifname(&ep.host_ifname)?;
        let r = self.setup_endpoint_inner(net, ep).await;
        if r.is_err() {
            // The pair dies with either end.
            let _ = self.nl.del_link_by_name(&ep.host_ifname).await;
        }
        r
    }

    async fn teardown_endpoint(
        &self,
        _net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Result<(), NetError> {
        // Deleting the host end deletes the container's end, its addresses
        // and its routes. Gone already (the namespace died) is fine.
        self.nl.del_link_by_name(&ep.host_ifname).await
    }
}
