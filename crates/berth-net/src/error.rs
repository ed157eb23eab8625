//! The one error type of berth-net. Variants name the thing at fault; those a
//! user can cause carry Docker's wording, so the daemon can pass them on.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::ports::Proto;

/// Everything that can go wrong in berth-net.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A subnet, ip-range or address that does not parse as a CIDR block.
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    /// An address that does not parse.
    #[error("invalid IP address: {0}")]
    InvalidIp(String),
    /// A MAC address that does not parse.
    #[error("invalid MAC address: {0}")]
    InvalidMac(String),
    /// `--subnet/--gateway/--ip-range` that do not fit together (Docker's
    /// `invalid network config:` list, one problem a line).
    #[error("invalid network config:\n{}", .0.join("\n"))]
    InvalidIpamConfig(Vec<String>),
    /// A requested subnet overlaps another network of this daemon.
    #[error("Pool overlaps with other one on this address space")]
    PoolOverlap {
        /// The subnet asked for.
        subnet: String,
    },
    /// Every default pool is taken or clashes with a host route.
    #[error("all predefined address pools have been fully subnetted")]
    NoMoreSubnets,
    /// No free address is left in a network.
    #[error("no available addresses on this pool")]
    PoolExhausted {
        /// The network's id.
        network: String,
    },
    /// A static address (`--ip`) that another endpoint holds.
    #[error("Address already in use")]
    AddressInUse {
        /// The address asked for.
        ip: IpAddr,
    },
    /// A static address outside every subnet of the network.
    #[error("invalid address {ip}: It does not belong to any of this network's subnets")]
    AddressOutOfRange {
        /// The address asked for.
        ip: IpAddr,
    },
    /// A network id this crate does not know.
    #[error("network {0} not found")]
    NetworkNotFound(String),
    /// A network created twice.
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    /// An endpoint id this crate does not know.
    #[error("endpoint {0} not found")]
    EndpointNotFound(String),
    /// Removing a network that still has endpoints.
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    NetworkInUse {
        /// The network's name.
        name: String,
        /// The network's id.
        id: String,
    },
    /// A published host port that is taken (by a container or a host process).
    #[error("Bind for {}:{port} failed: port is already allocated", fmt_host_ip(.host_ip))]
    PortAllocated {
        /// The host address (0.0.0.0 for all).
        host_ip: IpAddr,
        /// The host port.
        port: u16,
        /// tcp or udp.
        proto: Proto,
    },
    /// No free port in the ephemeral range (or the range asked for).
    #[error("Bind for {}:{range} failed: all ports are allocated", fmt_host_ip(.host_ip))]
    NoFreePort {
        /// The host address.
        host_ip: IpAddr,
        /// The range searched, as `a-b`.
        range: String,
    },
    /// A port binding that does not parse or does not fit.
    #[error("invalid port specification: {0:?}")]
    InvalidPort(String),
    /// An interface name the kernel would refuse (empty, too long, bad bytes).
    #[error("invalid interface name {0:?}: must be 1 to 15 characters without '/', ':' or spaces")]
    InvalidIfname(String),
    /// A network interface that should exist but does not.
    #[error("network interface {0} not found")]
    LinkNotFound(String),
    /// A netlink request that failed.
    #[error("netlink: {op} {object}: {source}")]
    Netlink {
        /// What was asked (`add veth`, `add address`…).
        op: &'static str,
        /// The interface, address or route.
        object: String,
        /// The kernel's answer.
        source: rtnetlink::Error,
    },
    /// `nft` refused a transaction or could not run.
    #[error("nftables table {table}: {message}")]
    Nft {
        /// The table.
        table: String,
        /// nft's stderr, or why it did not run.
        message: String,
    },
    /// A file or system call on a path failed.
    #[error("{op} {}: {source}", .path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The path at fault.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A state file that does not parse.
    #[error("state file {}: {source}", .path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The state lock is held by another daemon with the same names.
    #[error("{} is locked by another berth daemon using the same network names", .0.display())]
    Locked(PathBuf),
    /// Several failures during a teardown that went on past each one.
    #[error("{0}")]
    Teardown(TeardownErrors),
}

fn fmt_host_ip(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V6(a) => format!("[{a}]"),
        IpAddr::V4(a) => a.to_string(),
    }
}

impl NetError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> NetError {
        NetError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn netlink(
        op: &'static str,
        object: impl fmt::Display,
        source: rtnetlink::Error,
    ) -> NetError {
        NetError::Netlink {
            op,
            object: object.to_string(),
            source,
        }
    }

    /// Whether this is a user's mistake (bad flag, taken port…) rather than
    /// a fault of the host: the daemon answers 400/403/409 for these.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            NetError::InvalidCidr(_)
                | NetError::InvalidIp(_)
                | NetError::InvalidMac(_)
                | NetError::InvalidIpamConfig(_)
                | NetError::PoolOverlap { .. }
                | NetError::AddressInUse { .. }
                | NetError::AddressOutOfRange { .. }
                | NetError::NetworkInUse { .. }
                | NetError::NetworkExists(_)
                | NetError::PortAllocated { .. }
                | NetError::InvalidPort(_)
                | NetError::InvalidIfname(_)
        )
    }
}

/// The failures collected by a teardown that went on past each of them.
#[derive(Debug, Default)]
pub struct TeardownErrors(pub Vec<NetError>);

impl TeardownErrors {
    /// Records the error of one step, if any.
    pub(crate) fn note<T>(&mut self, r: Result<T, NetError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "network teardown step failed");
                self.0.push(e);
                None
            }
        }
    }

    /// `Ok` when nothing failed, else the whole list as one error.
    pub(crate) fn into_result(self) -> Result<(), NetError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(NetError::Teardown(self))
        }
    }
}

impl fmt::Display for TeardownErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "teardown failed ({} errors): ", self.0.len())?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
