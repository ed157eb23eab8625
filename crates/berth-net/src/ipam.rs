//! IP address management: which subnet a new network gets, and which address
//! each endpoint gets inside it.
//!
//! Pure bookkeeping, no I/O: the host's routes and nameservers come in as
//! `reserved` prefixes ([`crate::host_reserved_prefixes`] reads them), and the
//! whole state is rebuilt from the daemon's records with [`Ipam::insert`] and
//! [`Ipam::reserve`].
//!
//! As Docker's default IPAM: subnets come from the default pools in order
//! (172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/16 cut in /20s), the
//! first one that overlaps neither another network nor a reserved prefix; the
//! gateway is the first address; containers get the lowest free address of
//! the `--ip-range` (or subnet), network and broadcast addresses excluded.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};

use crate::cidr::{to_u128, Cidr};
use crate::error::NetError;
use crate::model::{IpamRequest, SubnetConfig};

/// A default address pool: `base` is cut into subnets of `size` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DefaultPool {
    /// The block to cut (e.g. `192.168.0.0/16`).
    pub base: Cidr,
    /// The prefix length of each subnet (e.g. 20).
    pub size: u8,
}

impl DefaultPool {
    /// Docker's local-scope defaults.
    pub fn docker_defaults() -> Vec<DefaultPool> {
        let p = |base: &str, size| DefaultPool {
            base: Cidr::parse(base).expect("static pool"),
            size,
        };
        vec![
            p("172.17.0.0/16", 16),
            p("172.18.0.0/16", 16),
            p("172.19.0.0/16", 16),
            p("172.20.0.0/14", 16),
            p("172.24.0.0/14", 16),
            p("172.28.0.0/14", 16),
            p("192.168.0.0/16", 20),
        ]
    }

    fn subnets(&self) -> impl Iterator<Item = Cidr> + '_ {
        let base = self.base.masked();
        let size = self.size.max(base.prefix());
        let step_bits = u32::from(if base.is_ipv4() { 32 } else { 128 } - size);
        let count = 1u128
            .checked_shl(u32::from(size - base.prefix()))
            .unwrap_or(u128::MAX);
        (0..count).map_while(move |i| {
            let off = i.checked_shl(step_bits)?;
            let ip = base.nth(off)?;
            Cidr::new(ip, size).ok()
        })
    }
}

#[derive(Clone, Debug)]
struct SubnetAlloc {
    cfg: SubnetConfig,
    /// Offsets from the network address that are taken (gateway included).
    used: BTreeSet<u128>,
}

impl SubnetAlloc {
    fn new(cfg: SubnetConfig) -> SubnetAlloc {
        let mut used = BTreeSet::new();
        if let Some(off) = cfg.subnet.offset_of(cfg.gateway) {
            used.insert(off);
        }
        SubnetAlloc { cfg, used }
    }

    /// The offsets dynamic addresses may take.
    fn dynamic_range(&self) -> (u128, u128) {
        let s = &self.cfg.subnet;
        let (mut lo, mut hi) = match &self.cfg.ip_range {
            Some(r) => {
                let r = r.masked();
                (
                    s.offset_of(r.network()).unwrap_or(0),
                    s.offset_of(r.last()).unwrap_or(s.size() - 1),
                )
            }
            None => (0, s.size() - 1),
        };
        // Never the network address; never the IPv4 broadcast address
        // (point-to-point /31 and /32 keep theirs).
        let v4 = s.is_ipv4();
        if !(v4 && s.prefix() >= 31) {
            lo = lo.max(1);
            if v4 {
                hi = hi.min(s.size() - 2);
            }
        }
        (lo, hi)
    }

    fn first_free(&self) -> Option<u128> {
        let (lo, hi) = self.dynamic_range();
        if lo > hi {
            return None;
        }
        let mut cand = lo;
        for &u in self.used.range(lo..=hi) {
            if u == cand {
                cand += 1;
            } else {
                break;
            }
        }
        (cand <= hi).then_some(cand)
    }
}

/// The address bookkeeping of every network of one daemon.
#[derive(Clone, Debug)]
pub struct Ipam {
    pools: Vec<DefaultPool>,
    networks: BTreeMap<String, Vec<SubnetAlloc>>,
}

impl Ipam {
    /// An empty IPAM with these default pools ([`DefaultPool::docker_defaults`]
    /// unless the daemon was given `default-address-pools`).
    pub fn new(pools: Vec<DefaultPool>) -> Ipam {
        Ipam {
            pools,
            networks: BTreeMap::new(),
        }
    }

    /// Validates the `IPAM.Config` of a new network and fills in what was
    /// left out (a subnet from the pools, the gateway). Nothing is recorded:
    /// call [`Ipam::insert`] once the network exists. `reserved` are
    /// prefixes a *default* subnet must avoid (host routes, nameservers);
    /// a subnet given by the user is only checked against other networks, as
    /// Docker does.
    pub fn plan(
        &self,
        network_id: &str,
        requests: &[IpamRequest],
        enable_ipv6: bool,
        reserved: &[Cidr],
    ) -> Result<Vec<SubnetConfig>, NetError> {
        let mut problems = Vec::new();
        let mut out: Vec<SubnetConfig> = Vec::new();
        for r in requests {
            let Some(subnet_s) = r.subnet.as_deref().filter(|s| !s.is_empty()) else {
                if r.gateway.as_deref().is_some_and(|s| !s.is_empty())
                    || r.ip_range.as_deref().is_some_and(|s| !s.is_empty())
                {
                    problems.push(
                        "every ip-range or gateway must have a corresponding subnet".to_string(),
                    );
                }
                continue;
            };
            let subnet = Cidr::parse(subnet_s)?;
            let ip_range = match r.ip_range.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => Some(Cidr::parse(s)?),
                None => None,
            };
            let gateway = match r.gateway.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => Some(
                    crate::cidr::parse_ip(s).ok_or_else(|| NetError::InvalidIp(s.to_string()))?,
                ),
                None => None,
            };
            let family = if subnet.is_ipv4() { 4 } else { 6 };
            if !enable_ipv6 && family == 6 {
                problems.push(format!(
                    "invalid subnet {subnet}: IPv6 subnets need --ipv6 (EnableIPv6)"
                ));
                continue;
            }
            if !subnet.is_masked() {
                problems.push(format!(
                    "invalid subnet {subnet}: it should be {}",
                    subnet.masked()
                ));
            }
            if let Some(range) = ip_range {
                if range.is_ipv4() != subnet.is_ipv4() {
                    problems.push(format!(
                        "invalid ip-range {range}: parent subnet is an IPv{family} block"
                    ));
                } else {
                    if range.prefix() < subnet.prefix() {
                        problems.push(format!(
                            "invalid ip-range {range}: CIDR block is bigger than its parent subnet {subnet}"
                        ));
                    }
                    if !range.is_masked() {
                        problems.push(format!(
                            "invalid ip-range {range}: it should be {}",
                            range.masked()
                        ));
                    }
                    if !subnet.overlaps(&range) {
                        problems.push(format!(
                            "invalid ip-range {range}: parent subnet {subnet} doesn't contain ip-range"
                        ));
                    }
                }
            }
            if let Some(gw) = gateway {
                if gw.is_ipv4() != subnet.is_ipv4() {
                    problems.push(format!(
                        "invalid gateway {gw}: parent subnet is an IPv{family} block"
                    ));
                } else if !subnet.contains(gw) {
                    problems.push(format!(
                        "invalid gateway {gw}: parent subnet {subnet} doesn't contain this address"
                    ));
                }
            }
            let subnet = subnet.masked();
            let Some(gateway) = gateway.or_else(|| subnet.nth(1)) else {
                problems.push(format!("invalid subnet {subnet}: no room for a gateway"));
                continue;
            };
            out.push(SubnetConfig {
                subnet,
                gateway,
                ip_range: ip_range.map(|r| r.masked()),
            });
        }
        if !problems.is_empty() {
            return Err(NetError::InvalidIpamConfig(problems));
        }
        if out.iter().filter(|c| c.subnet.is_ipv4()).count() > 1
            || out.iter().filter(|c| !c.subnet.is_ipv4()).count() > 1
        {
            return Err(NetError::InvalidIpamConfig(vec![
                "berth supports one IPv4 and one IPv6 subnet per network".to_string(),
            ]));
        }
        // User subnets must not overlap other networks (nor each other).
        for c in &out {
            if self.all_subnets().any(|s| s.overlaps(&c.subnet)) {
                return Err(NetError::PoolOverlap {
                    subnet: c.subnet.to_string(),
                });
            }
        }
        if !out.iter().any(|c| c.subnet.is_ipv4()) {
            let subnet = self.pick_default(reserved)?;
            let gateway = subnet.nth(1).expect("default pools are larger than /31");
            out.insert(
                0,
                SubnetConfig {
                    subnet,
                    gateway,
                    ip_range: None,
                },
            );
        }
        if enable_ipv6 && !out.iter().any(|c| !c.subnet.is_ipv4()) {
            let subnet = ula_subnet(network_id);
            if self.all_subnets().any(|s| s.overlaps(&subnet)) {
                return Err(NetError::PoolOverlap {
                    subnet: subnet.to_string(),
                });
            }
            out.push(SubnetConfig {
                subnet,
                gateway: subnet.nth(1).expect("a /64 has room"),
                ip_range: None,
            });
        }
        Ok(out)
    }

    fn all_subnets(&self) -> impl Iterator<Item = &Cidr> {
        self.networks.values().flatten().map(|a| &a.cfg.subnet)
    }

    fn pick_default(&self, reserved: &[Cidr]) -> Result<Cidr, NetError> {
        for pool in &self.pools {
            for cand in pool.subnets() {
                let clash = self.all_subnets().any(|s| s.overlaps(&cand))
                    || reserved.iter().any(|r| r.overlaps(&cand));
                if !clash {
                    return Ok(cand);
                }
            }
        }
        Err(NetError::NoMoreSubnets)
    }

    /// Records a network's subnets (and reserves their gateways).
    pub fn insert(&mut self, network_id: &str, subnets: &[SubnetConfig]) {
        self.networks.insert(
            network_id.to_string(),
            subnets.iter().cloned().map(SubnetAlloc::new).collect(),
        );
    }

    /// Forgets a network and every address in it.
    pub fn remove(&mut self, network_id: &str) {
        self.networks.remove(network_id);
    }

    /// Whether a network is known.
    pub fn contains(&self, network_id: &str) -> bool {
        self.networks.contains_key(network_id)
    }

    /// Takes an address in the network's subnet of `ip`'s family: `ip` itself
    /// when given (`--ip`), else the lowest free one. Returns the address
    /// with the subnet's prefix length.
    pub fn allocate(
        &mut self,
        network_id: &str,
        v6: bool,
        requested: Option<IpAddr>,
    ) -> Result<Cidr, NetError> {
        let subnets = self
            .networks
            .get_mut(network_id)
            .ok_or_else(|| NetError::NetworkNotFound(network_id.to_string()))?;
        if let Some(ip) = requested {
            let a = subnets
                .iter_mut()
                .find(|a| a.cfg.subnet.contains(ip))
                .ok_or(NetError::AddressOutOfRange { ip })?;
            let off = a.cfg.subnet.offset_of(ip).expect("contained");
            let v4 = a.cfg.subnet.is_ipv4();
            if off == 0 || (v4 && a.cfg.subnet.prefix() < 31 && ip == a.cfg.subnet.last()) {
                return Err(NetError::AddressOutOfRange { ip });
            }
            if !a.used.insert(off) {
                return Err(NetError::AddressInUse { ip });
            }
            return Ok(Cidr::new(ip, a.cfg.subnet.prefix()).expect("prefix fits"));
        }
        let a = subnets
            .iter_mut()
            .find(|a| a.cfg.subnet.is_ipv4() != v6)
            .ok_or_else(|| NetError::PoolExhausted {
                network: network_id.to_string(),
            })?;
        let off = a.first_free().ok_or_else(|| NetError::PoolExhausted {
            network: network_id.to_string(),
        })?;
        a.used.insert(off);
        let ip = a.cfg.subnet.nth(off).expect("offset inside");
        Ok(Cidr::new(ip, a.cfg.subnet.prefix()).expect("prefix fits"))
    }

    /// Marks an address taken while rebuilding from records; a clash is an
    /// error (two endpoints recorded with one address).
    pub fn reserve(&mut self, network_id: &str, ip: IpAddr) -> Result<(), NetError> {
        self.allocate(network_id, ip.is_ipv6(), Some(ip))
            .map(|_| ())
    }

    /// Gives an address back. Unknown networks and free addresses are
    /// ignored (release is part of teardowns, which go on regardless).
    pub fn release(&mut self, network_id: &str, ip: IpAddr) {
        if let Some(subnets) = self.networks.get_mut(network_id) {
            for a in subnets.iter_mut() {
                if let Some(off) = a.cfg.subnet.offset_of(ip) {
                    if Some(ip) != Some(a.cfg.gateway) {
                        a.used.remove(&off);
                    }
                }
            }
        }
    }

    /// How many addresses of a network are in use (gateways included).
    pub fn used_count(&self, network_id: &str) -> usize {
        self.networks
            .get(network_id)
            .map(|v| v.iter().map(|a| a.used.len()).sum())
            .unwrap_or(0)
    }
}

/// A unique-local /64 derived from the network id (for `--ipv6` without a
/// subnet): `fdXX:XXXX:XXXX:XXXX::/64` from the id's first 14 hex digits.
fn ula_subnet(network_id: &str) -> Cidr {
    let mut v: u128 = 0xfd;
    for c in network_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(14)
    {
        v = v << 4 | u128::from(c.to_digit(16).unwrap_or(0));
    }
    // 8 bits of fd + up to 56 bits of id = 64 bits of prefix.
    let digits = network_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(14)
        .count() as u32;
    v <<= 4 * (14 - digits);
    let addr = Ipv6Addr::from(v << 64);
    Cidr::new(IpAddr::V6(addr), 64).expect("/64")
}

/// Whether `ip` is the network or (IPv4) broadcast address of `subnet`.
pub fn is_reserved_address(subnet: &Cidr, ip: IpAddr) -> bool {
    to_u128(ip) == to_u128(subnet.network())
        || (subnet.is_ipv4() && subnet.prefix() < 31 && ip == subnet.last())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(subnet: &str, gw: Option<&str>, range: Option<&str>) -> IpamRequest {
        IpamRequest {
            subnet: Some(subnet.to_string()),
            gateway: gw.map(str::to_string),
            ip_range: range.map(str::to_string),
        }
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn default_pools_in_docker_order_avoiding_routes() {
        let mut ipam = Ipam::new(DefaultPool::docker_defaults());
        let a = ipam.plan("a", &[], false, &[]).unwrap();
        assert_eq!(a[0].subnet.to_string(), "172.17.0.0/16");
        assert_eq!(a[0].gateway.to_string(), "172.17.0.1");
        ipam.insert("a", &a);
        // A host route on 172.18.5.0/24 makes 172.18.0.0/16 unusable.
        let b = ipam
            .plan("b", &[], false, &[cidr("172.18.5.0/24")])
            .unwrap();
        assert_eq!(b[0].subnet.to_string(), "172.19.0.0/16");
        ipam.insert("b", &b);
        // A nameserver inside 172.18/16 also blocks it.
        let c = ipam
            .plan("c", &[], false, &[cidr("172.18.0.53/32")])
            .unwrap();
        assert_eq!(c[0].subnet.to_string(), "172.20.0.0/16");
    }

    #[test]
    fn pools_run_out_into_192_168_then_fail() {
        let mut ipam = Ipam::new(DefaultPool::docker_defaults());
        let mut seen = Vec::new();
        for i in 0..31 {
            let id = format!("n{i}");
            let p = ipam.plan(&id, &[], false, &[]).unwrap();
            seen.push(p[0].subnet.to_string());
            ipam.insert(&id, &p);
        }
        assert_eq!(seen[14], "172.31.0.0/16");
        assert_eq!(seen[15], "192.168.0.0/20");
        assert_eq!(seen[16], "192.168.16.0/20");
        assert_eq!(seen[30], "192.168.240.0/20");
        let e = ipam.plan("x", &[], false, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "all predefined address pools have been fully subnetted"
        );
        // Removing one frees its subnet for the next network.
        ipam.remove("n3");
        assert_eq!(
            ipam.plan("y", &[], false, &[]).unwrap()[0]
                .subnet
                .to_string(),
            "172.20.0.0/16"
        );
    }

    #[test]
    fn user_subnet_overlap_uses_docker_text() {
        let mut ipam = Ipam::new(DefaultPool::docker_defaults());
        let a = ipam
            .plan("a", &[req("10.10.0.0/16", None, None)], false, &[])
            .unwrap();
        ipam.insert("a", &a);
        let e = ipam
            .plan("b", &[req("10.10.5.0/24", None, None)], false, &[])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Pool overlaps with other one on this address space"
        );
        // Host routes do not block a subnet the user asked for.
        assert!(ipam
            .plan(
                "c",
                &[req("10.11.0.0/16", None, None)],
                false,
                &[cidr("10.11.0.0/16")]
            )
            .is_ok());
    }

    #[test]
    fn validation_messages() {
        let ipam = Ipam::new(DefaultPool::docker_defaults());
        let e = ipam
            .plan("a", &[req("10.0.0.0/33", None, None)], false, &[])
            .unwrap_err();
        assert_eq!(e.to_string(), "invalid CIDR address: 10.0.0.0/33");
        let e = ipam
            .plan(
                "a",
                &[req("10.0.0.1/24", Some("10.0.1.1"), Some("10.0.0.128/24"))],
                false,
                &[],
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid network config:\n\
             invalid subnet 10.0.0.1/24: it should be 10.0.0.0/24\n\
             invalid ip-range 10.0.0.128/24: it should be 10.0.0.0/24\n\
             invalid gateway 10.0.1.1: parent subnet 10.0.0.1/24 doesn't contain this address"
        );
        let e = ipam
            .plan(
                "a",
                &[req("10.0.0.0/24", None, Some("10.0.0.0/16"))],
                false,
                &[],
            )
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("CIDR block is bigger than its parent subnet"),
            "{e}"
        );
        let e = ipam
            .plan(
                "a",
                &[req("10.0.0.0/24", None, Some("10.9.0.0/28"))],
                false,
                &[],
            )
            .unwrap_err();
        assert!(e.to_string().contains("doesn't contain ip-range"), "{e}");
        let e = ipam
            .plan("a", &[req("10.0.0.0/24", Some("nope"), None)], false, &[])
            .unwrap_err();
        assert_eq!(e.to_string(), "invalid IP address: nope");
        let e = ipam
            .plan(
                "a",
                &[IpamRequest {
                    gateway: Some("10.0.0.1".into()),
                    ..Default::default()
                }],
                false,
                &[],
            )
            .unwrap_err();
        assert!(e
            .to_string()
            .contains("every ip-range or gateway must have a corresponding subnet"));
    }

    #[test]
    fn allocation_order_static_and_exhaustion() {
        let mut ipam = Ipam::new(DefaultPool::docker_defaults());
        let p = ipam
            .plan("n", &[req("10.1.0.0/29", None, None)], false, &[])
            .unwrap();
        assert_eq!(p[0].gateway.to_string(), "10.1.0.1");
        ipam.insert("n", &p);
        let a = ipam.allocate("n", false, None).unwrap();
        assert_eq!(a.to_string(), "10.1.0.2/29");
        let s = ipam
            .allocate("n", false, Some("10.1.0.4".parse().unwrap()))
            .unwrap();
        assert_eq!(s.to_string(), "10.1.0.4/29");
        let e = ipam
            .allocate("n", false, Some("10.1.0.4".parse().unwrap()))
            .unwrap_err();
        assert_eq!(e.to_string(), "Address already in use");
        let e = ipam
            .allocate("n", false, Some("10.1.0.1".parse().unwrap()))
            .unwrap_err();
        assert_eq!(e.to_string(), "Address already in use");
        let e = ipam
            .allocate("n", false, Some("10.2.0.4".parse().unwrap()))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid address 10.2.0.4: It does not belong to any of this network's subnets"
        );
        assert!(
            ipam.allocate("n", false, Some("10.1.0.7".parse().unwrap()))
                .is_err(),
            "broadcast"
        );
        let got: Vec<String> = (0..3)
            .map(|_| ipam.allocate("n", false, None).unwrap().addr().to_string())
            .collect();
        assert_eq!(got, ["10.1.0.3", "10.1.0.5", "10.1.0.6"]);
        let e = ipam.allocate("n", false, None).unwrap_err();
        assert_eq!(e.to_string(), "no available addresses on this pool");
        // Release makes the lowest address the next one again.
        ipam.release("n", "10.1.0.3".parse().unwrap());
        assert_eq!(
            ipam.allocate("n", false, None).unwrap().addr().to_string(),
            "10.1.0.3"
        );
        // The gateway is never released.
        ipam.release("n", "10.1.0.1".parse().unwrap());
        assert!(ipam
            .allocate("n", false, Some("10.1.0.1".parse().unwrap()))
            .is_err());
    }

    #[test]
    fn ip_range_limits_dynamic_addresses_only() {
        let mut ipam = Ipam::new(DefaultPool::docker_defaults());
        let p = ipam
            .plan(
                "n",
                &[req(
                    "10.1.0.0/24",
                    Some("10.1.0.254"),
                    Some("10.1.0.128/30"),
                )],
                false,
                &[],
            )
            .unwrap();
        ipam.insert("n", &p);
        let got: Vec<String> = (0..4)
            .map(|_| ipam.allocate("n", false, None).unwrap().addr().to_string())
            .collect();
        assert_eq!(
            got,
            ["10.1.0.128", "10.1.0.129", "10.1.0.130", "10.1.0.131"]
        );
        assert!(ipam.allocate("n", false, None).is_err());
        assert!(ipam
            .allocate("n", false, Some("10.1.0.9".parse().unwrap()))
            .is_ok());
    }

    #[test]
    fn ipv6_subnets() {
        let mut ipam = Ipam::new(DefaultPool::docker_defaults());
        let p = ipam
            .plan(
                &"ab".repeat(32),
                &[req("fd00:1::/64", None, None)],
                true,
                &[],
            )
            .unwrap();
        assert_eq!(p.len(), 2, "an IPv4 subnet is added from the pools");
        assert_eq!(p[1].gateway.to_string(), "fd00:1::1");
        ipam.insert("n", &p);
        assert_eq!(
            ipam.allocate("n", true, None).unwrap().to_string(),
            "fd00:1::2/64"
        );
        let q = ipam.plan(&"12345678".repeat(8), &[], true, &[]).unwrap();
        assert_eq!(q[1].subnet.to_string(), "fd12:3456:7812:3456::/64");
        let e = ipam
            .plan("z", &[req("fd00:1::/64", None, None)], false, &[])
            .unwrap_err();
        assert!(e.to_string().contains("IPv6 subnets need --ipv6"));
    }

    #[test]
    fn rebuild_from_records() {
        let mut ipam = Ipam::new(DefaultPool::docker_defaults());
        let p = ipam.plan("n", &[], false, &[]).unwrap();
        ipam.insert("n", &p);
        ipam.reserve("n", "172.17.0.2".parse().unwrap()).unwrap();
        ipam.reserve("n", "172.17.0.3".parse().unwrap()).unwrap();
        assert!(ipam.reserve("n", "172.17.0.3".parse().unwrap()).is_err());
        assert_eq!(
            ipam.allocate("n", false, None).unwrap().addr().to_string(),
            "172.17.0.4"
        );
        assert_eq!(ipam.used_count("n"), 4);
    }
}
