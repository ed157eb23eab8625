//! Published ports: what a container asks for (`-p`, `-P`), what it got,
//! and the choice of host ports (Docker's port allocator: fixed ports must be
//! free, ephemeral ones come from 32768–60999 in order, each checked against
//! berth's own bindings and by binding the port on the host for a moment).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::NetError;

/// Transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

impl FromStr for Proto {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Proto, NetError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(NetError::InvalidPort(s.to_string())),
        }
    }
}

/// One `-p` entry (or one exposed port under `-P`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortRequest {
    /// The port inside the container.
    pub container_port: u16,
    /// tcp or udp.
    pub proto: Proto,
    /// `127.0.0.1:…`; `None` = every host address (0.0.0.0).
    pub host_ip: Option<IpAddr>,
    /// `None`: an ephemeral port; `Some((p, p))`: exactly `p`;
    /// `Some((a, b))`: the first free port of `a-b`.
    pub host_ports: Option<(u16, u16)>,
}

impl PortRequest {
    /// Reads one entry of the Engine API's `HostConfig.PortBindings`:
    /// key `"80/tcp"`, value `{"HostIp": "", "HostPort": "8080"}` (a
    /// `HostPort` may be empty or a range `8000-8010`).
    pub fn from_api(key: &str, host_ip: &str, host_port: &str) -> Result<PortRequest, NetError> {
        let bad = || NetError::InvalidPort(format!("{key} {host_ip}:{host_port}"));
        let (port, proto) = match key.split_once('/') {
            Some((p, proto)) => (p, proto.parse::<Proto>()?),
            None => (key, Proto::Tcp),
        };
        let container_port = parse_port(port).ok_or_else(bad)?;
        let host_ip = match host_ip.trim_matches(['[', ']']) {
            "" => None,
            s => Some(crate::cidr::parse_ip(s).ok_or_else(|| NetError::InvalidIp(s.to_string()))?),
        };
        let host_ports = match host_port {
            "" => None,
            s => Some(parse_range(s).ok_or_else(bad)?),
        };
        if host_ip.is_some_and(|ip| ip.is_ipv6()) {
            // Forwarding stays in the kernel, and NAT cannot turn IPv6 into
            // the container's IPv4 (Docker needs its userland proxy there).
            return Err(NetError::InvalidPort(format!(
                "{key} [{host_ip}]:{host_port}: publishing on an IPv6 host address is not supported",
                host_ip = host_ip.map(|i| i.to_string()).unwrap_or_default()
            )));
        }
        Ok(PortRequest {
            container_port,
            proto,
            host_ip: host_ip.filter(|ip| !ip.is_unspecified()),
            host_ports,
        })
    }
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|p| *p != 0)
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        None => parse_port(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (parse_port(a)?, parse_port(b)?);
            (a <= b).then_some((a, b))
        }
    }
}

/// A published port as installed: host address and port to container port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortBinding {
    /// tcp or udp.
    pub proto: Proto,
    /// The port inside the container.
    pub container_port: u16,
    /// The host address (0.0.0.0 for all of them).
    pub host_ip: IpAddr,
    /// The host port.
    pub host_port: u16,
}

impl PortBinding {
    /// Whether two bindings would catch the same packets.
    pub fn clashes(&self, other: &PortBinding) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && self.host_ip.is_ipv4() == other.host_ip.is_ipv4()
            && (self.host_ip == other.host_ip
                || self.host_ip.is_unspecified()
                || other.host_ip.is_unspecified())
    }
}

/// The ephemeral range Docker uses when the host's
/// `net.ipv4.ip_local_port_range` cannot be read.
pub const EPHEMERAL_PORTS: (u16, u16) = (32768, 60999);

/// Chooses host ports for `requests`. `taken` are the bindings already
/// installed (every container of this daemon); `probe(proto, ip, port)`
/// says whether the host lets us bind the port now (something else may
/// listen); `next_ephemeral` is where the ephemeral search starts and is
/// advanced as Docker's allocator does. All-or-nothing: on error nothing is
/// chosen.
pub(crate) fn choose_ports(
    requests: &[PortRequest],
    taken: &[PortBinding],
    ephemeral: (u16, u16),
    next_ephemeral: &mut u16,
    mut probe: impl FnMut(Proto, IpAddr, u16) -> bool,
) -> Result<Vec<PortBinding>, NetError> {
    let mut out: Vec<PortBinding> = Vec::with_capacity(requests.len());
    let mut cursor = *next_ephemeral;
    for r in requests {
        let host_ip = r.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let mk = |host_port| PortBinding {
            proto: r.proto,
            container_port: r.container_port,
            host_ip,
            host_port,
        };
        let free = |b: &PortBinding,
                    out: &[PortBinding],
                    probe: &mut dyn FnMut(Proto, IpAddr, u16) -> bool| {
            !taken.iter().chain(out.iter()).any(|t| t.clashes(b))
                && probe(b.proto, b.host_ip, b.host_port)
        };
        let chosen =
            match r.host_ports {
                Some((a, b)) if a == b => {
                    let cand = mk(a);
                    if !free(&cand, &out, &mut probe) {
                        return Err(NetError::PortAllocated {
                            host_ip,
                            port: a,
                            proto: r.proto,
                        });
                    }
                    cand
                }
                Some((a, b)) => (a..=b).map(mk).find(|c| free(c, &out, &mut probe)).ok_or(
                    NetError::NoFreePort {
                        host_ip,
                        range: format!("{a}-{b}"),
                    },
                )?,
                None => {
                    let (lo, hi) = ephemeral;
                    let span = u32::from(hi - lo) + 1;
                    let start = if (lo..=hi).contains(&cursor) {
                        cursor
                    } else {
                        lo
                    };
                    let mut found = None;
                    for i in 0..span {
                        // Wraps within [lo, hi]; the sum fits in u32 and the
                        // result is at most `hi`.
                        let p = lo + ((u32::from(start - lo) + i) % span) as u16;
                        let c = mk(p);
                        if free(&c, &out, &mut probe) {
                            found = Some(c);
                            cursor = if p == hi { lo } else { p + 1 };
                            break;
                        }
                    }
                    found.ok_or(NetError::NoFreePort {
                        host_ip,
                        range: format!("{lo}-{hi}"),
                    })?
                }
            };
        out.push(chosen);
    }
    *next_ephemeral = cursor;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cp: u16, hp: Option<(u16, u16)>, ip: Option<&str>) -> PortRequest {
        PortRequest {
            container_port: cp,
            proto: Proto::Tcp,
            host_ip: ip.map(|s| s.parse().unwrap()),
            host_ports: hp,
        }
    }

    #[test]
    fn api_parsing() {
        let r = PortRequest::from_api("80/udp", "127.0.0.1", "8000-8010").unwrap();
        assert_eq!(r.proto, Proto::Udp);
        assert_eq!(r.host_ports, Some((8000, 8010)));
        assert_eq!(r.host_ip, Some("127.0.0.1".parse().unwrap()));
        let r = PortRequest::from_api("80", "0.0.0.0", "").unwrap();
        assert_eq!((r.proto, r.host_ip, r.host_ports), (Proto::Tcp, None, None));
        assert!(PortRequest::from_api("80/sctp", "", "1").is_err());
        assert!(PortRequest::from_api("0/tcp", "", "1").is_err());
        assert!(PortRequest::from_api("80/tcp", "", "9-8").is_err());
        assert!(PortRequest::from_api("80/tcp", "", "65536").is_err());
        assert!(PortRequest::from_api("80/tcp", "nope", "1").is_err());
    }

    #[test]
    fn fixed_port_conflicts_with_docker_text() {
        let taken = [PortBinding {
            proto: Proto::Tcp,
            container_port: 80,
            host_ip: "0.0.0.0".parse().unwrap(),
            host_port: 8080,
        }];
        let mut next = 32768;
        let e = choose_ports(
            &[req(80, Some((8080, 8080)), None)],
            &taken,
            EPHEMERAL_PORTS,
            &mut next,
            |_, _, _| true,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:8080 failed: port is already allocated"
        );
        // 127.0.0.1:8080 clashes with 0.0.0.0:8080 too.
        let e = choose_ports(
            &[req(80, Some((8080, 8080)), Some("127.0.0.1"))],
            &taken,
            EPHEMERAL_PORTS,
            &mut next,
            |_, _, _| true,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 127.0.0.1:8080 failed: port is already allocated"
        );
        // UDP is another space.
        let mut r = req(80, Some((8080, 8080)), None);
        r.proto = Proto::Udp;
        assert!(choose_ports(&[r], &taken, EPHEMERAL_PORTS, &mut next, |_, _, _| true).is_ok());
        // A host process holding the port.
        let e = choose_ports(
            &[req(80, Some((9090, 9090)), None)],
            &[],
            EPHEMERAL_PORTS,
            &mut next,
            |_, _, p| p != 9090,
        )
        .unwrap_err();
        assert!(matches!(e, NetError::PortAllocated { port: 9090, .. }));
        // Two requests in one call clash with each other.
        let e = choose_ports(
            &[
                req(80, Some((7000, 7000)), None),
                req(81, Some((7000, 7000)), None),
            ],
            &[],
            EPHEMERAL_PORTS,
            &mut next,
            |_, _, _| true,
        )
        .unwrap_err();
        assert!(matches!(e, NetError::PortAllocated { port: 7000, .. }));
    }

    #[test]
    fn ephemeral_ports_go_in_order_and_wrap() {
        let mut next = 32768;
        let got = choose_ports(
            &[req(80, None, None), req(81, None, None)],
            &[],
            (32768, 32770),
            &mut next,
            |_, _, p| p != 32769,
        )
        .unwrap();
        assert_eq!(
            got.iter().map(|b| b.host_port).collect::<Vec<_>>(),
            vec![32768, 32770]
        );
        assert_eq!(next, 32768);
        let e = choose_ports(
            &[req(80, None, None)],
            &got,
            (32768, 32770),
            &mut next,
            |_, _, p| p != 32769,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:32768-32770 failed: all ports are allocated"
        );
    }

    #[test]
    fn range_takes_first_free() {
        let mut next = 32768;
        let got = choose_ports(
            &[req(80, Some((8000, 8010)), None)],
            &[],
            EPHEMERAL_PORTS,
            &mut next,
            |_, _, p| p > 8002,
        )
        .unwrap();
        assert_eq!(got[0].host_port, 8003);
    }
}
