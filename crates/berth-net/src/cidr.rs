//! IP prefixes (`10.1.0.0/16`), parsed with Go's `net.ParseCIDR` rules so the
//! errors users see read as Docker's ("invalid CIDR address: …").

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::NetError;

/// An address with a prefix length. The address may have host bits set
/// (`10.0.0.1/24` names an interface address); [`Cidr::network`] masks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Builds a prefix; fails when `prefix` is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, NetError> {
        if prefix > bits(addr) {
            return Err(NetError::InvalidCidr(format!("{addr}/{prefix}")));
        }
        Ok(Cidr { addr, prefix })
    }

    /// Parses `a.b.c.d/n` or `x::y/n` as Go's `net.ParseCIDR` does.
    pub fn parse(s: &str) -> Result<Cidr, NetError> {
        let bad = || NetError::InvalidCidr(s.to_string());
        let (ip, len) = s.split_once('/').ok_or_else(bad)?;
        let addr = parse_ip(ip).ok_or_else(bad)?;
        if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = len.parse().map_err(|_| bad())?;
        if prefix > bits(addr) {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }

    /// The address as written (host bits kept).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether this is an IPv4 prefix.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        from_u128(self.addr, to_u128(self.addr) & self.mask())
    }

    /// The same prefix with host bits cleared.
    pub fn masked(&self) -> Cidr {
        Cidr {
            addr: self.network(),
            prefix: self.prefix,
        }
    }

    /// Whether the host bits are all zero.
    pub fn is_masked(&self) -> bool {
        self.addr == self.network()
    }

    /// Whether `ip` lies inside this prefix (same family).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && to_u128(ip) & self.mask() == to_u128(self.network())
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        if self.is_ipv4() != other.is_ipv4() {
            return false;
        }
        let shorter = self.prefix.min(other.prefix);
        let m = mask(self.addr, shorter);
        to_u128(self.addr) & m == to_u128(other.addr) & m
    }

    /// Whether `other` lies entirely inside this prefix.
    pub fn contains_cidr(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// The number of addresses (saturating at `u128::MAX`).
    pub fn size(&self) -> u128 {
        let host_bits = u32::from(bits(self.addr) - self.prefix);
        1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
    }

    /// The `n`th address of the prefix (0 = network address), if inside.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        (n < self.size()).then(|| from_u128(self.addr, to_u128(self.network()) + n))
    }

    /// The offset of `ip` from the network address, if inside.
    pub fn offset_of(&self, ip: IpAddr) -> Option<u128> {
        self.contains(ip)
            .then(|| to_u128(ip) - to_u128(self.network()))
    }

    /// The last address (the IPv4 broadcast address).
    pub fn last(&self) -> IpAddr {
        from_u128(
            self.addr,
            to_u128(self.network()) | !self.mask() & all_ones(self.addr),
        )
    }

    fn mask(&self) -> u128 {
        mask(self.addr, self.prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Cidr, NetError> {
        Cidr::parse(s)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses an IPv4 or IPv6 address (no zone, no brackets).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        Ipv6Addr::from_str(s).ok().map(IpAddr::V6)
    } else {
        Ipv4Addr::from_str(s).ok().map(IpAddr::V4)
    }
}

fn bits(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn all_ones(addr: IpAddr) -> u128 {
    if addr.is_ipv4() {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    }
}

fn mask(addr: IpAddr, prefix: u8) -> u128 {
    let b = u32::from(bits(addr));
    let host = b - u32::from(prefix);
    let ones = all_ones(addr);
    if host >= 128 {
        0
    } else {
        (ones >> host << host) & ones
    }
}

pub(crate) fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

pub(crate) fn from_u128(family: IpAddr, v: u128) -> IpAddr {
    match family {
        // Values come from masks of 32-bit quantities, so truncation is exact.
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((v & u128::from(u32::MAX)) as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_masks() {
        let c = Cidr::parse("172.17.0.1/16").unwrap();
        assert_eq!(c.network().to_string(), "172.17.0.0");
        assert!(!c.is_masked());
        assert_eq!(c.masked().to_string(), "172.17.0.0/16");
        assert_eq!(c.last().to_string(), "172.17.255.255");
        assert_eq!(c.size(), 65536);
        assert!(c.contains("172.17.200.3".parse().unwrap()));
        assert!(!c.contains("172.18.0.1".parse().unwrap()));
        let v6 = Cidr::parse("fd00:1::/64").unwrap();
        assert!(v6.contains("fd00:1::5".parse().unwrap()));
        assert!(!v6.contains("172.17.0.1".parse().unwrap()));
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().size(), 1 << 32);
        assert_eq!(Cidr::parse("::/0").unwrap().size(), u128::MAX);
    }

    #[test]
    fn rejects_bad_input_with_docker_text() {
        for s in [
            "10.0.0.0/33",
            "10.0.0.0",
            "10.0.0/8",
            "10.0.0.0/",
            "/8",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "x/8",
            "10.0.0.0/8/8",
            "::/129",
            "010.0.0.0/8",
            " 10.0.0.0/8",
        ] {
            let e = Cidr::parse(s).unwrap_err();
            assert_eq!(e.to_string(), format!("invalid CIDR address: {s}"), "{s}");
        }
    }

    #[test]
    fn overlap() {
        let a = Cidr::parse("10.0.0.0/8").unwrap();
        let b = Cidr::parse("10.20.0.0/16").unwrap();
        let c = Cidr::parse("11.0.0.0/8").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert!(a.contains_cidr(&b) && !b.contains_cidr(&a));
    }

    proptest! {
        #[test]
        fn v4_round_trip(a: u32, p in 0u8..=32) {
            let s = format!("{}/{}", Ipv4Addr::from(a), p);
            let c = Cidr::parse(&s).unwrap();
            prop_assert_eq!(c.to_string(), s);
            prop_assert!(c.contains(c.addr()));
            prop_assert!(c.masked().is_masked());
            prop_assert!(c.masked().contains(c.addr()));
            prop_assert_eq!(c.nth(0), Some(c.network()));
            prop_assert_eq!(c.nth(c.size() - 1), Some(c.last()));
        }

        #[test]
        fn v6_round_trip(a: u128, p in 0u8..=128) {
            let s = format!("{}/{}", Ipv6Addr::from(a), p);
            let c = Cidr::parse(&s).unwrap();
            prop_assert_eq!(c.to_string(), s);
            prop_assert!(c.masked().contains(c.addr()));
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = Cidr::parse(&s);
        }

        #[test]
        fn too_long_prefix_rejected(a: u32, p in 33u16..1000) {
            let s = format!("{}/{}", Ipv4Addr::from(a), p);
            prop_assert!(Cidr::parse(&s).is_err());
        }

        #[test]
        fn overlap_is_symmetric_and_matches_containment(a: u32, pa in 0u8..=32, b: u32, pb in 0u8..=32) {
            let x = Cidr::new(IpAddr::V4(a.into()), pa).unwrap().masked();
            let y = Cidr::new(IpAddr::V4(b.into()), pb).unwrap().masked();
            prop_assert_eq!(x.overlaps(&y), y.overlaps(&x));
            prop_assert_eq!(x.overlaps(&y), x.contains_cidr(&y) || y.contains_cidr(&x));
        }

        #[test]
        fn offsets_invert_nth(a: u32, p in 8u8..=32, n: u32) {
            let c = Cidr::new(IpAddr::V4(a.into()), p).unwrap();
            let n = u128::from(n) % c.size();
            let ip = c.nth(n).unwrap();
            prop_assert_eq!(c.offset_of(ip), Some(n));
        }
    }
}
