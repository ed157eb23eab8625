//! The nftables ruleset as libnftables JSON, generated from
//! [`FirewallState`]: pure functions, one transaction per change.
//!
//! Layout of the daemon's table (`inet <table>`), modelled on Docker's
//! nftables backend:
//!
//! ```text
//! chain nat-prerouting  (nat, prerouting, dstnat)  fib daddr type local jump dnat
//! chain nat-output      (nat, output, dstnat)      fib daddr type local jump dnat
//! chain dnat                                        jump dnat__<br>   (one per network)
//! chain dnat__<br>      [ip daddr H] tcp dport P dnat ip to C:Q     (one per published port)
//! chain nat-postrouting (nat, postrouting, srcnat) iifname vmap @post-out; oifname vmap @post-in
//! chain post-out__<br>  oifname != <br> ip saddr S masquerade       (not internal)
//! chain post-in__<br>   ip saddr 127.0.0.0/8 masquerade              (host → 127.0.0.1:P)
//!                       ip saddr S ct status dnat masquerade         (hairpin)
//! chain filter-forward  (filter, forward, filter)  oifname vmap @fwd-in; iifname vmap @fwd-out
//! chain fwd-in__<br>    ct state established,related accept
//!                       iifname <br> accept|drop                      (icc)
//!                       ct status dnat accept                         (published ports; not internal)
//!                       drop
//! chain fwd-out__<br>   accept | oifname != <br> drop                 (internal)
//! chain raw-prerouting  (filter, prerouting, raw)
//!                       iifname <br> ip daddr 127.0.0.0/8 drop        (route_localnet guard)
//!                       iifname != <br> ip daddr S fib daddr type != local drop  (no direct access)
//! ```
//!
//! A change to one network's ports rewrites only that network's `dnat__`
//! chain (flush + add in one transaction: no rule handles to track). Adding
//! or removing a network also rewrites the shared chains. Restoring at start
//! replaces the whole table in one transaction.

use std::net::IpAddr;

use serde_json::{json, Value};

use super::{FirewallState, FwNetwork};
use crate::ports::PortBinding;

const FAMILY: &str = "inet";

/// Base chains: (name, type, hook, priority).
const BASE_CHAINS: [(&str, &str, &str, i32); 5] = [
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
    ("filter-forward", "filter", "forward", 0),
    ("raw-prerouting", "filter", "prerouting", -300),
];
const MAPS: [&str; 4] = ["fwd-in", "fwd-out", "post-in", "post-out"];
const DNAT: &str = "dnat";

fn per_net_chains(bridge: &str) -> [String; 5] {
    [
        format!("dnat__{bridge}"),
        format!("fwd-in__{bridge}"),
        format!("fwd-out__{bridge}"),
        format!("post-in__{bridge}"),
        format!("post-out__{bridge}"),
    ]
}

/// Builds one nft JSON transaction.
pub(crate) struct Tx {
    table: String,
    cmds: Vec<Value>,
}

impl Tx {
    pub(crate) fn new(table: &str) -> Tx {
        Tx {
            table: table.to_string(),
            cmds: Vec::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    pub(crate) fn to_json(&self) -> String {
        json!({ "nftables": self.cmds }).to_string()
    }

    fn obj(&self, name: &str) -> Value {
        json!({"family": FAMILY, "table": self.table, "name": name})
    }

    fn add_table(&mut self) {
        self.cmds
            .push(json!({"add": {"table": {"family": FAMILY, "name": self.table}}}));
    }

    fn delete_table(&mut self) {
        self.cmds
            .push(json!({"delete": {"table": {"family": FAMILY, "name": self.table}}}));
    }

    fn add_chain(&mut self, name: &str) {
        let c = self.obj(name);
        self.cmds.push(json!({"add": {"chain": c}}));
    }

    fn add_base_chain(&mut self, name: &str, kind: &str, hook: &str, prio: i32) {
        let mut c = self.obj(name);
        c["type"] = json!(kind);
        c["hook"] = json!(hook);
        c["prio"] = json!(prio);
        c["policy"] = json!("accept");
        self.cmds.push(json!({"add": {"chain": c}}));
    }

    fn flush_chain(&mut self, name: &str) {
        let c = self.obj(name);
        self.cmds.push(json!({"flush": {"chain": c}}));
    }

    fn delete_chain(&mut self, name: &str) {
        let c = self.obj(name);
        self.cmds.push(json!({"delete": {"chain": c}}));
    }

    fn add_map(&mut self, name: &str) {
        let mut m = self.obj(name);
        m["type"] = json!("ifname");
        m["map"] = json!("verdict");
        self.cmds.push(json!({"add": {"map": m}}));
    }

    fn element(&mut self, verb: &str, map: &str, key: &str, chain: &str) {
        let mut e = self.obj(map);
        e["elem"] = json!([[key, {"jump": {"target": chain}}]]);
        self.cmds.push(json!({ verb: {"element": e} }));
    }

    fn rule(&mut self, chain: &str, expr: Vec<Value>, comment: Option<&str>) {
        let mut r = json!({"family": FAMILY, "table": self.table, "chain": chain, "expr": expr});
        if let Some(c) = comment {
            r["comment"] = json!(c);
        }
        self.cmds.push(json!({"add": {"rule": r}}));
    }
}

// Expression helpers.
fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}
fn eq(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}
fn ne(left: Value, right: Value) -> Value {
    json!({"match": {"op": "!=", "left": left, "right": right}})
}
fn within(left: Value, right: Value) -> Value {
    json!({"match": {"op": "in", "left": left, "right": right}})
}
fn payload(proto: &str, field: &str) -> Value {
    json!({"payload": {"protocol": proto, "field": field}})
}
fn prefix(c: &crate::cidr::Cidr) -> Value {
    json!({"prefix": {"addr": c.network().to_string(), "len": c.prefix()}})
}
fn fib_daddr_type() -> Value {
    json!({"fib": {"result": "type", "flags": ["daddr"]}})
}
fn verdict(v: &str) -> Value {
    json!({ v: null })
}
fn jump(chain: &str) -> Value {
    json!({"jump": {"target": chain}})
}
fn vmap(key: &str, map: &str) -> Value {
    json!({"vmap": {"key": meta(key), "data": format!("@{map}")}})
}

/// Makes sure the table, base chains and maps exist (idempotent `add`s).
fn ensure_base(tx: &mut Tx) {
    tx.add_table();
    for (name, kind, hook, prio) in BASE_CHAINS {
        tx.add_base_chain(name, kind, hook, prio);
    }
    tx.add_chain(DNAT);
    for m in MAPS {
        tx.add_map(m);
    }
}

/// Rewrites the shared chains for the current set of networks.
fn rewrite_shared(tx: &mut Tx, st: &FirewallState) {
    for (name, ..) in BASE_CHAINS {
        tx.flush_chain(name);
    }
    tx.flush_chain(DNAT);
    for hook_chain in ["nat-prerouting", "nat-output"] {
        tx.rule(
            hook_chain,
            vec![eq(fib_daddr_type(), json!("local")), jump(DNAT)],
            None,
        );
    }
    tx.rule("nat-postrouting", vec![vmap("iifname", "post-out")], None);
    tx.rule("nat-postrouting", vec![vmap("oifname", "post-in")], None);
    tx.rule("filter-forward", vec![vmap("oifname", "fwd-in")], None);
    tx.rule("filter-forward", vec![vmap("iifname", "fwd-out")], None);
    for n in st.networks.values() {
        let b = n.bridge.as_str();
        tx.rule(DNAT, vec![jump(&format!("dnat__{b}"))], None);
        tx.rule(
            "raw-prerouting",
            vec![
                eq(meta("iifname"), json!(b)),
                eq(
                    payload("ip", "daddr"),
                    json!({"prefix": {"addr": "127.0.0.0", "len": 8}}),
                ),
                verdict("drop"),
            ],
            Some("loopback from bridge"),
        );
        if let Some(s) = &n.subnet_v4 {
            tx.rule(
                "raw-prerouting",
                vec![
                    ne(meta("iifname"), json!(b)),
                    eq(payload("ip", "daddr"), prefix(s)),
                    ne(fib_daddr_type(), json!("local")),
                    verdict("drop"),
                ],
                Some("no direct access"),
            );
        }
    }
}

/// Writes one network's own chains (and its map elements).
fn write_network(tx: &mut Tx, n: &FwNetwork, ports: &[(IpAddr, PortBinding, String)]) {
    let b = n.bridge.as_str();
    let [dnat, fin, fout, pin, pout] = per_net_chains(b);
    for c in [&dnat, &fin, &fout, &pin, &pout] {
        tx.add_chain(c);
        tx.flush_chain(c);
    }
    tx.element("add", "fwd-in", b, &fin);
    tx.element("add", "fwd-out", b, &fout);
    tx.element("add", "post-in", b, &pin);
    tx.element("add", "post-out", b, &pout);

    // Into the bridge.
    tx.rule(
        &fin,
        vec![
            within(
                json!({"ct": {"key": "state"}}),
                json!(["established", "related"]),
            ),
            verdict("accept"),
        ],
        None,
    );
    tx.rule(
        &fin,
        vec![
            eq(meta("iifname"), json!(b)),
            verdict(if n.icc { "accept" } else { "drop" }),
        ],
        Some("icc"),
    );
    if !n.internal {
        tx.rule(
            &fin,
            vec![
                within(json!({"ct": {"key": "status"}}), json!("dnat")),
                verdict("accept"),
            ],
            Some("published ports"),
        );
    }
    tx.rule(&fin, vec![verdict("drop")], Some("isolation"));

    // Out of the bridge.
    if n.internal {
        tx.rule(
            &fout,
            vec![ne(meta("oifname"), json!(b)), verdict("drop")],
            Some("internal"),
        );
    } else {
        tx.rule(&fout, vec![verdict("accept")], Some("outgoing"));
    }

    // Source NAT.
    if let Some(s) = &n.subnet_v4 {
        if !n.internal {
            tx.rule(
                &pout,
                vec![
                    ne(meta("oifname"), json!(b)),
                    eq(payload("ip", "saddr"), prefix(s)),
                    json!({"masquerade": null}),
                ],
                Some("masquerade"),
            );
        }
        tx.rule(
            &pin,
            vec![
                eq(
                    payload("ip", "saddr"),
                    json!({"prefix": {"addr": "127.0.0.0", "len": 8}}),
                ),
                json!({"masquerade": null}),
            ],
            Some("from host loopback"),
        );
        tx.rule(
            &pin,
            vec![
                eq(payload("ip", "saddr"), prefix(s)),
                within(json!({"ct": {"key": "status"}}), json!("dnat")),
                json!({"masquerade": null}),
            ],
            Some("hairpin"),
        );
    }
    write_dnat_rules(tx, &dnat, n, ports);
}

fn write_dnat_rules(
    tx: &mut Tx,
    chain: &str,
    n: &FwNetwork,
    ports: &[(IpAddr, PortBinding, String)],
) {
    if n.internal {
        return;
    }
    for (ctr_ip, p, ep) in ports {
        let IpAddr::V4(ctr) = ctr_ip else { continue };
        let mut e = Vec::new();
        if !p.host_ip.is_unspecified() {
            e.push(eq(payload("ip", "daddr"), json!(p.host_ip.to_string())));
        }
        let proto = p.proto.to_string();
        e.push(eq(payload(&proto, "dport"), json!(p.host_port)));
        e.push(
            json!({"dnat": {"family": "ip", "addr": ctr.to_string(), "port": p.container_port}}),
        );
        tx.rule(chain, e, Some(&format!("ep {}", &ep[..ep.len().min(12)])));
    }
}

/// The published ports of one network, with their container addresses.
fn network_ports(st: &FirewallState, network_id: &str) -> Vec<(IpAddr, PortBinding, String)> {
    let mut v = Vec::new();
    for (ep_id, ep) in &st.endpoints {
        if ep.network_id == network_id {
            for p in &ep.ports {
                v.push((ep.ip, *p, ep_id.clone()));
            }
        }
    }
    v
}

/// The transaction that adds (or rewrites) a network.
pub(crate) fn add_network(table: &str, st: &FirewallState, network_id: &str) -> Tx {
    let mut tx = Tx::new(table);
    ensure_base(&mut tx);
    if let Some(n) = st.networks.get(network_id) {
        // The network's chains must exist before the shared rules jump there.
        write_network(&mut tx, n, &network_ports(st, network_id));
    }
    rewrite_shared(&mut tx, st);
    tx
}

/// The transaction that removes a network (`st` no longer has it).
pub(crate) fn remove_network(table: &str, st: &FirewallState, bridge: &str) -> Tx {
    let mut tx = Tx::new(table);
    ensure_base(&mut tx);
    rewrite_shared(&mut tx, st);
    let chains = per_net_chains(bridge);
    for (map, chain) in MAPS.iter().zip(&chains[1..]) {
        // add-then-delete: fine whether or not the element exists.
        tx.add_chain(chain);
        tx.element("add", map, bridge, chain);
        tx.element("delete", map, bridge, chain);
    }
    for c in &chains {
        tx.add_chain(c);
        tx.flush_chain(c);
        tx.delete_chain(c);
    }
    tx
}

/// The transaction that rewrites one network's published ports.
pub(crate) fn rewrite_ports(table: &str, st: &FirewallState, network_id: &str) -> Tx {
    let mut tx = Tx::new(table);
    let Some(n) = st.networks.get(network_id) else {
        return tx;
    };
    let chain = format!("dnat__{}", n.bridge);
    tx.add_table();
    tx.add_chain(&chain);
    tx.flush_chain(&chain);
    write_dnat_rules(&mut tx, &chain, n, &network_ports(st, network_id));
    tx
}

/// The transaction that replaces the whole table with what `st` says.
pub(crate) fn rebuild(table: &str, st: &FirewallState) -> Tx {
    let mut tx = Tx::new(table);
    tx.add_table();
    tx.delete_table();
    ensure_base(&mut tx);
    for (id, n) in &st.networks {
        write_network(&mut tx, n, &network_ports(st, id));
    }
    rewrite_shared(&mut tx, st);
    tx
}

/// The transaction that deletes the table.
pub(crate) fn delete_table(table: &str) -> Tx {
    let mut tx = Tx::new(table);
    tx.add_table();
    tx.delete_table();
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::FwEndpoint;
    use crate::ports::Proto;

    fn state() -> FirewallState {
        let mut st = FirewallState::default();
        st.networks.insert(
            "n1".into(),
            FwNetwork {
                bridge: "br-one".into(),
                subnet_v4: Some("10.9.0.0/24".parse().unwrap()),
                internal: false,
                icc: true,
            },
        );
        st.endpoints.insert(
            "e1".into(),
            FwEndpoint {
                network_id: "n1".into(),
                ip: "10.9.0.2".parse().unwrap(),
                ports: vec![PortBinding {
                    proto: Proto::Udp,
                    container_port: 53,
                    host_ip: "127.0.0.1".parse().unwrap(),
                    host_port: 5353,
                }],
            },
        );
        st
    }

    #[test]
    fn ports_become_dnat_rules() {
        let tx = rewrite_ports("t", &state(), "n1");
        let j = tx.to_json();
        assert!(
            j.contains(
                r#"{"flush":{"chain":{"family":"inet","name":"dnat__br-one","table":"t"}}}"#
            ),
            "{j}"
        );
        assert!(j.contains(r#""right":"127.0.0.1""#), "{j}");
        assert!(
            j.contains(r#"{"dnat":{"addr":"10.9.0.2","family":"ip","port":53}}"#),
            "{j}"
        );
        assert!(
            j.contains(r#"{"payload":{"field":"dport","protocol":"udp"}},"op":"==","right":5353"#),
            "{j}"
        );
    }

    #[test]
    fn internal_network_has_no_dnat_and_no_masquerade() {
        let mut st = state();
        st.networks.get_mut("n1").unwrap().internal = true;
        let j = add_network("t", &st, "n1").to_json();
        assert!(!j.contains("\"dnat\":{"), "{j}");
        assert!(!j.contains("\"comment\":\"masquerade\""), "{j}");
        assert!(j.contains("\"comment\":\"internal\""), "{j}");
    }

    #[test]
    fn removal_deletes_chains_after_the_jumps() {
        let mut st = state();
        st.networks.clear();
        st.endpoints.clear();
        let j = remove_network("t", &st, "br-one").to_json();
        let flush_dnat = j
            .find(r#"{"flush":{"chain":{"family":"inet","name":"dnat","table":"t"}}}"#)
            .unwrap();
        let del = j
            .find(r#"{"delete":{"chain":{"family":"inet","name":"dnat__br-one","table":"t"}}}"#)
            .unwrap();
        assert!(flush_dnat < del);
    }
}
