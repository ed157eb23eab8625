//! The records the daemon stores for networks and endpoints (serde), and the
//! requests it builds from the Docker API. Everything berth-net knows about a
//! network or endpoint at run time can be rebuilt from these records
//! ([`crate::Net::open`]), so they are the single source of truth.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cidr::Cidr;
use crate::error::NetError;
use crate::ports::{PortBinding, PortRequest};

/// One subnet of a network, validated: the subnet (host bits clear), its
/// gateway (the bridge's address) and the optional sub-range containers'
/// addresses are drawn from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetConfig {
    /// The subnet, e.g. `172.18.0.0/16`.
    pub subnet: Cidr,
    /// The gateway, e.g. `172.18.0.1`.
    pub gateway: IpAddr,
    /// `--ip-range`: dynamic addresses come from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Cidr>,
}

/// A network as stored by the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// The network id (64 hex, the daemon's).
    pub id: String,
    /// The network's name (`bridge`, `mynet`).
    pub name: String,
    /// The Linux bridge (`berth0`, `br-<12 hex>`), chosen by the daemon.
    pub bridge: String,
    /// IPv4 first, then IPv6 if enabled.
    pub subnets: Vec<SubnetConfig>,
    /// `--internal`: no route out, no masquerade, no published ports.
    #[serde(default)]
    pub internal: bool,
    /// Embedded DNS (user-defined networks); false on the default bridge.
    #[serde(default)]
    pub dns: bool,
    /// Inter-container communication on this bridge.
    #[serde(default = "yes")]
    pub icc: bool,
    /// MTU of the bridge and veths (kernel default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

fn yes() -> bool {
    true
}

impl NetworkRecord {
    /// The IPv4 subnet, if any.
    pub fn ipv4(&self) -> Option<&SubnetConfig> {
        self.subnets.iter().find(|s| s.subnet.is_ipv4())
    }

    /// The IPv6 subnet, if any.
    pub fn ipv6(&self) -> Option<&SubnetConfig> {
        self.subnets.iter().find(|s| !s.subnet.is_ipv4())
    }
}

/// An entry of `IPAM.Config` in `POST /networks/create`, as strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamRequest {
    /// `--subnet`.
    #[serde(default)]
    pub subnet: Option<String>,
    /// `--gateway`.
    #[serde(default)]
    pub gateway: Option<String>,
    /// `--ip-range`.
    #[serde(default)]
    pub ip_range: Option<String>,
}

/// What the daemon asks for in `network create` (and for the default bridge
/// at first start).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkCreate {
    /// The new network's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The bridge name (`-o com.docker.network.bridge.name`, else
    /// `br-<first 12 hex of id>`; the default network's is `<prefix>0`).
    pub bridge: String,
    /// `IPAM.Config`; empty picks a subnet from the default pools.
    pub ipam: Vec<IpamRequest>,
    /// `EnableIPv6`.
    pub enable_ipv6: bool,
    /// `Internal`.
    pub internal: bool,
    /// Embedded DNS (true for user-defined networks).
    pub dns: bool,
    /// Inter-container communication (`com.docker.network.bridge.enable_icc`).
    pub icc: bool,
    /// `com.docker.network.driver.mtu`.
    pub mtu: Option<u32>,
}

/// An endpoint (one container on one network) as stored by the daemon
/// while the container runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// The endpoint id (64 hex).
    pub id: String,
    /// The network.
    pub network_id: String,
    /// The container.
    pub container_id: String,
    /// The container's network namespace (a bind-mounted file).
    pub netns: PathBuf,
    /// The interface inside the container (`eth0`, `eth1`…).
    pub ifname: String,
    /// The veth end on the host, in the bridge.
    pub host_ifname: String,
    /// The container side's MAC address.
    pub mac: MacAddr,
    /// The IPv4 address with the subnet's prefix length (`172.17.0.2/16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<Cidr>,
    /// The IPv6 address with prefix length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Cidr>,
    /// Whether this endpoint carries the container's default route.
    #[serde(default)]
    pub default_route: bool,
    /// Names the embedded DNS answers with this endpoint's addresses
    /// (container name, network aliases, short id).
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// Published ports, with the host ports actually chosen.
    #[serde(default)]
    pub ports: Vec<PortBinding>,
    /// The container's `--dns` servers: its embedded DNS forwards there
    /// (from the container's namespace) instead of to the host's resolvers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<IpAddr>,
}

impl EndpointRecord {
    /// The endpoint's addresses without prefix lengths.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ipv4.iter().chain(self.ipv6.iter()).map(|c| c.addr())
    }
}

/// What the daemon asks for when it connects a container to a network
/// (at start, or `network connect` on a running container).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointRequest {
    /// A new endpoint id (64 hex).
    pub id: String,
    /// The container.
    pub container_id: String,
    /// Where its network namespace is (from [`crate::NetnsPool::take`]).
    pub netns: PathBuf,
    /// `eth0` for the first network, `eth1`… for later ones.
    pub ifname: String,
    /// `--ip`.
    pub ipv4: Option<Ipv4Addr>,
    /// `--ip6`.
    pub ipv6: Option<std::net::Ipv6Addr>,
    /// `--mac-address`; else derived from the IPv4 address as Docker did.
    pub mac: Option<MacAddr>,
    /// Install the default route via this network's gateway (ignored on
    /// internal networks).
    pub default_route: bool,
    /// Names for the embedded DNS.
    pub dns_names: Vec<String>,
    /// `-p` / `-P` requests.
    pub ports: Vec<PortRequest>,
    /// `--dns` (see [`EndpointRecord::dns_servers`]).
    pub dns_servers: Vec<IpAddr>,
}

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Docker's MAC for an IPv4 address: `02:42` then the four address bytes
    /// (`172.17.0.2` → `02:42:ac:11:00:02`).
    pub fn from_ipv4(ip: Ipv4Addr) -> MacAddr {
        let o = ip.octets();
        MacAddr([0x02, 0x42, o[0], o[1], o[2], o[3]])
    }

    /// A random locally administered unicast address (for IPv6-only
    /// endpoints).
    pub fn random() -> MacAddr {
        let mut b = [0u8; 6];
        crate::sys::random_bytes(&mut b);
        b[0] = (b[0] & 0xfe) | 0x02;
        MacAddr(b)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = NetError;
    fn from_str(s: &str) -> Result<MacAddr, NetError> {
        let bad = || NetError::InvalidMac(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        if out[0] & 1 == 1 {
            // A multicast address cannot be an interface's address.
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks a Linux interface name (IFNAMSIZ is 16 with the NUL).
pub fn check_ifname(name: &str) -> Result<(), NetError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidIfname(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_mac_from_ip() {
        let m = MacAddr::from_ipv4(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(m.to_string(), "02:42:ac:11:00:02");
        assert_eq!("02:42:ac:11:00:02".parse::<MacAddr>().unwrap(), m);
        assert!("01:42:ac:11:00:02".parse::<MacAddr>().is_err());
        assert!("02:42:ac:11:00".parse::<MacAddr>().is_err());
        assert!("02:42:ac:11:00:02:03".parse::<MacAddr>().is_err());
        let r = MacAddr::random();
        assert_eq!(r.0[0] & 3, 2);
    }

    #[test]
    fn ifnames() {
        assert!(check_ifname("br-0123456789ab").is_ok());
        assert!(check_ifname("br-0123456789abc").is_err());
        assert!(check_ifname("a b").is_err());
        assert!(check_ifname("").is_err());
    }

    #[test]
    fn records_round_trip() {
        let n = NetworkRecord {
            id: "ab".repeat(32),
            name: "mynet".into(),
            bridge: "br-abababababab".into(),
            subnets: vec![SubnetConfig {
                subnet: "172.18.0.0/16".parse().unwrap(),
                gateway: "172.18.0.1".parse().unwrap(),
                ip_range: Some("172.18.5.0/24".parse().unwrap()),
            }],
            internal: false,
            dns: true,
            icc: true,
            mtu: None,
        };
        let j = serde_json::to_string(&n).unwrap();
        assert!(j.contains("\"subnet\":\"172.18.0.0/16\""), "{j}");
        assert_eq!(serde_json::from_str::<NetworkRecord>(&j).unwrap(), n);
    }
}
