//! The names the embedded DNS answers: a pure lookup over in-memory tables
//! the daemon updates as endpoints come and go.
//!
//! A container sees the names of the networks it is connected to. As in
//! Docker, a name `a.b.c` is tried as `a.b.c` on every network of the
//! container (in the order it joined them), then as `a.b` on a network named
//! `c`, then as `a` on a network named `b.c`. On one network a name may map
//! to several endpoints (a shared `--network-alias`): all their addresses
//! are answered.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::model::{EndpointRecord, NetworkRecord};

#[derive(Clone, Debug, Default)]
struct NetEntry {
    name: String,
    internal: bool,
    /// lower-cased name → endpoint ids (in order of arrival).
    names: HashMap<String, Vec<String>>,
}

#[derive(Clone, Debug)]
struct EpEntry {
    network_id: String,
    container_id: String,
    names: Vec<String>,
    ips: Vec<IpAddr>,
}

/// The result of a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The name is known and has addresses of the asked family.
    Found(Vec<IpAddr>),
    /// The name is known but has no address of that family (NOERROR, no
    /// answers).
    NoData,
    /// Not a name of the container's networks: ask upstream.
    NotFound,
}

/// Every DNS-enabled network of a daemon and the endpoints on them.
#[derive(Clone, Debug, Default)]
pub struct DnsTable {
    networks: BTreeMap<String, NetEntry>,
    endpoints: HashMap<String, EpEntry>,
    /// container id → network ids in the order they were joined.
    containers: HashMap<String, Vec<String>>,
}

impl DnsTable {
    /// An empty table.
    pub fn new() -> DnsTable {
        DnsTable::default()
    }

    /// Adds a network with embedded DNS (the default bridge has none, so its
    /// names never resolve).
    pub fn add_network(&mut self, net: &NetworkRecord) {
        if !net.dns {
            return;
        }
        self.networks.entry(net.id.clone()).or_default();
        let e = self.networks.get_mut(&net.id).expect("just added");
        e.name = net.name.to_ascii_lowercase();
        e.internal = net.internal;
    }

    /// Drops a network and its names.
    pub fn remove_network(&mut self, network_id: &str) {
        if self.networks.remove(network_id).is_some() {
            let eps: Vec<String> = self
                .endpoints
                .iter()
                .filter(|(_, e)| e.network_id == network_id)
                .map(|(k, _)| k.clone())
                .collect();
            for ep in eps {
                self.remove_endpoint(&ep);
            }
        }
    }

    /// Whether a network is in the table (has DNS).
    pub fn has_network(&self, network_id: &str) -> bool {
        self.networks.contains_key(network_id)
    }

    /// Adds an endpoint's names (`dns_names`) with its addresses. A network
    /// without DNS is ignored.
    pub fn add_endpoint(&mut self, ep: &EndpointRecord) {
        let Some(net) = self.networks.get_mut(&ep.network_id) else {
            return;
        };
        let names: Vec<String> = ep
            .dns_names
            .iter()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        for n in &names {
            let ids = net.names.entry(n.clone()).or_default();
            if !ids.contains(&ep.id) {
                ids.push(ep.id.clone());
            }
        }
        let nets = self.containers.entry(ep.container_id.clone()).or_default();
        if !nets.contains(&ep.network_id) {
            nets.push(ep.network_id.clone());
        }
        self.endpoints.insert(
            ep.id.clone(),
            EpEntry {
                network_id: ep.network_id.clone(),
                container_id: ep.container_id.clone(),
                names,
                ips: ep.addresses().collect(),
            },
        );
    }

    /// Removes an endpoint's names.
    pub fn remove_endpoint(&mut self, endpoint_id: &str) {
        let Some(ep) = self.endpoints.remove(endpoint_id) else {
            return;
        };
        if let Some(net) = self.networks.get_mut(&ep.network_id) {
            for n in &ep.names {
                if let Some(ids) = net.names.get_mut(n) {
                    ids.retain(|i| i != endpoint_id);
                    if ids.is_empty() {
                        net.names.remove(n);
                    }
                }
            }
        }
        let still_there = self
            .endpoints
            .values()
            .any(|e| e.container_id == ep.container_id && e.network_id == ep.network_id);
        if !still_there {
            if let Some(nets) = self.containers.get_mut(&ep.container_id) {
                nets.retain(|n| n != &ep.network_id);
                if nets.is_empty() {
                    self.containers.remove(&ep.container_id);
                }
            }
        }
    }

    /// Whether the container has an endpoint on a DNS-enabled network.
    pub fn serves(&self, container_id: &str) -> bool {
        self.containers.contains_key(container_id)
    }

    /// Whether the container may reach resolvers outside (one of its DNS
    /// networks is not internal). Internal-only containers get no forwarding
    /// from the host's namespace, as in Docker.
    pub fn has_external_access(&self, container_id: &str) -> bool {
        self.containers.get(container_id).is_some_and(|nets| {
            nets.iter()
                .any(|n| self.networks.get(n).is_some_and(|e| !e.internal))
        })
    }

    fn on_network(&self, network_id: &str, name: &str, v6: bool) -> Option<Lookup> {
        let net = self.networks.get(network_id)?;
        let ids = net.names.get(name)?;
        let ips: Vec<IpAddr> = ids
            .iter()
            .filter_map(|id| self.endpoints.get(id))
            .flat_map(|e| e.ips.iter().copied())
            .filter(|ip| ip.is_ipv6() == v6)
            .collect();
        Some(if ips.is_empty() {
            Lookup::NoData
        } else {
            Lookup::Found(ips)
        })
    }

    /// Resolves `name` (lower-case, no trailing dot) for a container: A
    /// records when `v6` is false, AAAA when true.
    pub fn lookup(&self, container_id: &str, name: &str, v6: bool) -> Lookup {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let Some(nets) = self.containers.get(container_id) else {
            return Lookup::NotFound;
        };
        for n in nets {
            if let Some(l) = self.on_network(n, &name, v6) {
                return l;
            }
        }
        // `a.b` on network `b`, `a` on network `b.c`…
        let mut cut = name.len();
        while let Some(i) = name[..cut].rfind('.') {
            let (host, netname) = (&name[..i], &name[i + 1..]);
            for n in nets {
                if self.networks.get(n).is_some_and(|e| e.name == netname) {
                    if let Some(l) = self.on_network(n, host, v6) {
                        return l;
                    }
                }
            }
            cut = i;
        }
        Lookup::NotFound
    }

    /// The name of an address on the container's networks, as Docker
    /// answers PTR queries: `<first name>.<network>`.
    pub fn reverse(&self, container_id: &str, ip: IpAddr) -> Option<String> {
        let nets = self.containers.get(container_id)?;
        for n in nets {
            let net = self.networks.get(n)?;
            let mut eps: Vec<(&String, &EpEntry)> = self
                .endpoints
                .iter()
                .filter(|(_, e)| &e.network_id == n && e.ips.contains(&ip))
                .collect();
            eps.sort_by(|a, b| a.0.cmp(b.0));
            if let Some((_, e)) = eps.first() {
                if let Some(first) = e.names.first() {
                    return Some(format!("{first}.{}", net.name));
                }
            }
        }
        None
    }
}

/// The address of an `in-addr.arpa` / `ip6.arpa` name, if it is one.
pub fn ptr_to_ip(name: &str) -> Option<IpAddr> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if let Some(v4) = name.strip_suffix(".in-addr.arpa") {
        let mut o: Vec<u8> = v4
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        if o.len() != 4 {
            return None;
        }
        o.reverse();
        return Some(IpAddr::from([o[0], o[1], o[2], o[3]]));
    }
    let v6 = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u8> = v6
        .split('.')
        .map(|p| {
            if p.len() == 1 {
                u8::from_str_radix(p, 16).ok()
            } else {
                None
            }
        })
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut v: u128 = 0;
    for n in nibbles.iter().rev() {
        v = v << 4 | u128::from(*n);
    }
    Some(IpAddr::V6(v.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MacAddr;

    fn net(id: &str, name: &str, dns: bool, internal: bool) -> NetworkRecord {
        NetworkRecord {
            id: id.into(),
            name: name.into(),
            bridge: format!("br-{id}"),
            subnets: vec![],
            internal,
            dns,
            icc: true,
            mtu: None,
        }
    }

    fn ep(id: &str, net: &str, ctr: &str, ip: &str, names: &[&str]) -> EndpointRecord {
        EndpointRecord {
            id: id.into(),
            network_id: net.into(),
            container_id: ctr.into(),
            netns: "/x".into(),
            ifname: "eth0".into(),
            host_ifname: "v".into(),
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ipv4: Some(format!("{ip}/24").parse().unwrap()),
            ipv6: None,
            default_route: true,
            dns_names: names.iter().map(|s| s.to_string()).collect(),
            ports: vec![],
            dns_servers: vec![],
        }
    }

    fn table() -> DnsTable {
        let mut t = DnsTable::new();
        t.add_network(&net("n1", "front", true, false));
        t.add_network(&net("n2", "back", true, true));
        t.add_network(&net("d", "bridge", false, false));
        t.add_endpoint(&ep(
            "e1",
            "n1",
            "web",
            "10.1.0.2",
            &["web", "www", "abcdef012345"],
        ));
        t.add_endpoint(&ep("e2", "n1", "client", "10.1.0.3", &["client"]));
        t.add_endpoint(&ep("e3", "n2", "db", "10.2.0.2", &["db", "store"]));
        t.add_endpoint(&ep("e4", "n2", "web", "10.2.0.9", &["web"]));
        t.add_endpoint(&ep("e5", "n2", "db2", "10.2.0.3", &["db2", "store"]));
        t.add_endpoint(&ep("e6", "d", "plain", "172.17.0.2", &["plain"]));
        t
    }

    fn ips(v: &[&str]) -> Lookup {
        Lookup::Found(v.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn names_aliases_and_scoping() {
        let t = table();
        assert_eq!(t.lookup("client", "web", false), ips(&["10.1.0.2"]));
        assert_eq!(t.lookup("client", "WWW", false), ips(&["10.1.0.2"]));
        assert_eq!(
            t.lookup("client", "abcdef012345", false),
            ips(&["10.1.0.2"])
        );
        // client is not on "back": db is unknown to it.
        assert_eq!(t.lookup("client", "db", false), Lookup::NotFound);
        // web is on both; front first (joined first).
        assert_eq!(t.lookup("web", "web", false), ips(&["10.1.0.2"]));
        assert_eq!(t.lookup("web", "web.back", false), ips(&["10.2.0.9"]));
        assert_eq!(t.lookup("web", "db.back", false), ips(&["10.2.0.2"]));
        assert_eq!(t.lookup("web", "db.front", false), Lookup::NotFound);
        // A shared alias answers every holder.
        assert_eq!(
            t.lookup("db", "store", false),
            ips(&["10.2.0.2", "10.2.0.3"])
        );
        // Known name, no IPv6: NOERROR without answers.
        assert_eq!(t.lookup("client", "web", true), Lookup::NoData);
        // The default bridge resolves nothing.
        assert_eq!(t.lookup("plain", "plain", false), Lookup::NotFound);
        assert!(!t.serves("plain"));
        assert!(t.has_external_access("web") && !t.has_external_access("db"));
    }

    #[test]
    fn removal_and_reverse() {
        let mut t = table();
        assert_eq!(
            t.reverse("client", "10.1.0.2".parse().unwrap()),
            Some("web.front".into())
        );
        assert_eq!(t.reverse("client", "10.2.0.2".parse().unwrap()), None);
        t.remove_endpoint("e3");
        assert_eq!(t.lookup("db2", "store", false), ips(&["10.2.0.3"]));
        assert_eq!(t.lookup("db2", "db", false), Lookup::NotFound);
        assert!(!t.serves("db"));
        t.remove_network("n1");
        assert_eq!(t.lookup("web", "web", false), ips(&["10.2.0.9"]));
        assert!(!t.serves("client"));
    }

    #[test]
    fn ptr_names() {
        assert_eq!(
            ptr_to_ip("2.0.17.172.in-addr.arpa."),
            Some("172.17.0.2".parse().unwrap())
        );
        assert_eq!(ptr_to_ip("2.0.17.in-addr.arpa"), None);
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(ptr_to_ip(v6), Some("fd00::1".parse().unwrap()));
        assert_eq!(ptr_to_ip("example.com"), None);
    }
}
