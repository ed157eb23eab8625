//! Port publishing, masquerade and isolation with nftables, in the daemon's
//! own table (`inet <table>`): berth neither clobbers nor bypasses the
//! host's own rules (a packet must pass every table's base chains).
//!
//! [`Firewall`] keeps the desired state ([`FirewallState`]: networks and
//! the published ports of each endpoint), records it in a state file, and
//! applies each change as one `nft -j -f -` transaction through a
//! [`FirewallDriver`] (nftables, or none). At daemon start,
//! [`Firewall::reconcile`] replaces the whole table with what the daemon's
//! records say, in one transaction: what should exist is installed, stale
//! rules of containers that died meanwhile are gone, and established
//! connections keep flowing (conntrack keeps their NAT).
//!
//! State file layout (`<state-dir>/firewall.json`, written atomically, with
//! `<state-dir>/firewall.lock` held by the one daemon that owns the table):
//!
//! ```text
//! { "table": "berth",
//!   "networks":  { "<network id>": { "bridge": "br-…", "subnet_v4": "172.18.0.0/16",
//!                                    "internal": false, "icc": true } },
//!   "endpoints": { "<endpoint id>": { "network_id": "…", "ip": "172.18.0.2",
//!                                     "ports": [ { "proto": "tcp", "container_port": 80,
//!                                                  "host_ip": "0.0.0.0", "host_port": 8080 } ] } },
//!   "next_ephemeral": 32769 }
//! ```

mod rules;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::error::NetError;
use crate::model::{EndpointRecord, NetworkRecord};
use crate::ports::{choose_ports, PortBinding, PortRequest, EPHEMERAL_PORTS};
use crate::sys::{self, NetnsRef};

/// What the firewall knows of a network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwNetwork {
    /// The bridge.
    pub bridge: String,
    /// Its IPv4 subnet.
    pub subnet_v4: Option<Cidr>,
    /// `--internal`.
    pub internal: bool,
    /// Inter-container communication.
    pub icc: bool,
}

/// What the firewall knows of an endpoint with published ports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwEndpoint {
    /// Its network.
    pub network_id: String,
    /// The container's IPv4 address.
    pub ip: IpAddr,
    /// Its published ports.
    pub ports: Vec<PortBinding>,
}

/// The desired firewall state of one daemon.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallState {
    /// Networks by id.
    pub networks: BTreeMap<String, FwNetwork>,
    /// Endpoints with published ports, by endpoint id.
    pub endpoints: BTreeMap<String, FwEndpoint>,
    /// Where the next ephemeral port search starts.
    #[serde(default)]
    pub next_ephemeral: u16,
}

impl FirewallState {
    /// Every installed port binding.
    pub fn bindings(&self) -> Vec<PortBinding> {
        self.endpoints
            .values()
            .flat_map(|e| e.ports.iter().copied())
            .collect()
    }

    /// The state the daemon's records describe.
    pub fn from_records(networks: &[NetworkRecord], endpoints: &[EndpointRecord]) -> FirewallState {
        let mut st = FirewallState::default();
        for n in networks {
            st.networks.insert(n.id.clone(), fw_network(n));
        }
        for e in endpoints {
            if let Some(fe) = fw_endpoint(e) {
                if st.networks.contains_key(&e.network_id) {
                    st.endpoints.insert(e.id.clone(), fe);
                }
            }
        }
        st
    }
}

fn fw_network(n: &NetworkRecord) -> FwNetwork {
    FwNetwork {
        bridge: n.bridge.clone(),
        subnet_v4: n.ipv4().map(|s| s.subnet),
        internal: n.internal,
        icc: n.icc,
    }
}

fn fw_endpoint(e: &EndpointRecord) -> Option<FwEndpoint> {
    let ip = e.ipv4?.addr();
    (!e.ports.is_empty()).then(|| FwEndpoint {
        network_id: e.network_id.clone(),
        ip,
        ports: e.ports.clone(),
    })
}

/// How rules reach the kernel. Picked once at daemon start.
pub trait FirewallDriver: Send + Sync {
    /// A name for logs (`nftables`, `none`).
    fn name(&self) -> &'static str;
    /// Applies one transaction (libnftables JSON) to `table`, atomically.
    fn apply(&self, table: &str, json: &str) -> Result<(), NetError>;
}

/// Applies transactions with `nft -j -f -` inside a network namespace.
pub struct NftDriver {
    ns: NetnsRef,
}

impl NftDriver {
    /// A driver for the table in namespace `ns` (the host's for the daemon).
    pub fn new(ns: NetnsRef) -> NftDriver {
        NftDriver { ns }
    }
}

impl FirewallDriver for NftDriver {
    fn name(&self) -> &'static str {
        "nftables"
    }

    fn apply(&self, table: &str, json: &str) -> Result<(), NetError> {
        sys::run_nft(&self.ns, &["-j", "-f", "-"], json)
            .map(|_| ())
            .map_err(|message| NetError::Nft {
                table: table.to_string(),
                message,
            })
    }
}

/// Installs nothing (a daemon told to leave the host's firewall alone:
/// published ports and masquerade are then the administrator's business).
pub struct NoFirewall;

impl FirewallDriver for NoFirewall {
    fn name(&self) -> &'static str {
        "none"
    }

    fn apply(&self, _table: &str, _json: &str) -> Result<(), NetError> {
        Ok(())
    }
}

/// The daemon's firewall: desired state, its file, and the driver.
pub struct Firewall {
    table: String,
    host: NetnsRef,
    state_path: PathBuf,
    state: FirewallState,
    driver: Arc<dyn FirewallDriver>,
    ephemeral: (u16, u16),
    _lock: Flock<File>,
}

impl Firewall {
    /// Opens the firewall of table `table` in `host`, with state in
    /// `state_dir` (created). Fails with [`NetError::Locked`] when another
    /// daemon holds the same state directory.
    pub fn open(
        host: NetnsRef,
        table: &str,
        state_dir: &Path,
        driver: Arc<dyn FirewallDriver>,
    ) -> Result<Firewall, NetError> {
        fs::create_dir_all(state_dir)
            .map_err(|e| NetError::io("create directory", state_dir, e))?;
        let lock_path = state_dir.join("firewall.lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| NetError::io("open lock file", &lock_path, e))?;
        let lock = Flock::lock(f, FlockArg::LockExclusiveNonblock)
            .map_err(|_| NetError::Locked(lock_path.clone()))?;
        let state_path = state_dir.join("firewall.json");
        let state = match fs::read(&state_path) {
            // The file mirrors rules that live in the kernel; after a power
            // loss it may be cut short, and the rules are gone anyway.
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(path = %state_path.display(), error = %e, "firewall state unreadable; starting empty");
                FirewallState::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FirewallState::default(),
            Err(e) => return Err(NetError::io("read state file", &state_path, e)),
        };
        let ephemeral = sys::read_sysctl(&host, "net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().map(|x| x.parse::<u16>());
                match (it.next(), it.next()) {
                    (Some(Ok(a)), Some(Ok(b))) if a <= b && a > 0 => Some((a, b)),
                    _ => None,
                }
            })
            .unwrap_or(EPHEMERAL_PORTS);
        Ok(Firewall {
            table: table.to_string(),
            host,
            state_path,
            state,
            driver,
            ephemeral,
            _lock: lock,
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The desired state as recorded.
    pub fn state(&self) -> &FirewallState {
        &self.state
    }

    /// The ephemeral port range (`-P` and `-p 80` without host port).
    pub fn ephemeral_range(&self) -> (u16, u16) {
        self.ephemeral
    }

    async fn apply(&self, tx: rules::Tx) -> Result<(), NetError> {
        if tx.is_empty() {
            return Ok(());
        }
        let driver = Arc::clone(&self.driver);
        let table = self.table.clone();
        let json = tx.to_json();
        tokio::task::spawn_blocking(move || driver.apply(&table, &json))
            .await
            .map_err(|e| NetError::Nft {
                table: self.table.clone(),
                message: format!("nft task failed: {e}"),
            })?
    }

    fn save(&self) -> Result<(), NetError> {
        let bytes = serde_json::to_vec_pretty(&self.state).map_err(|e| NetError::State {
            path: self.state_path.clone(),
            source: e,
        })?;
        write_atomic(&self.state_path, &bytes)
    }

    /// Replaces the table with the state the daemon's records describe (at
    /// daemon start), in one transaction, and records it.
    pub async fn reconcile(
        &mut self,
        networks: &[NetworkRecord],
        endpoints: &[EndpointRecord],
    ) -> Result<(), NetError> {
        let mut desired = FirewallState::from_records(networks, endpoints);
        desired.next_ephemeral = self.state.next_ephemeral;
        self.apply(rules::rebuild(&self.table, &desired)).await?;
        self.state = desired;
        self.save()
    }

    /// Reinstalls the recorded state as it is (e.g. after someone flushed
    /// the ruleset).
    pub async fn restore(&mut self) -> Result<(), NetError> {
        self.apply(rules::rebuild(&self.table, &self.state)).await
    }

    /// Installs a network's chains: isolation, masquerade, hairpin.
    pub async fn add_network(&mut self, n: &NetworkRecord) -> Result<(), NetError> {
        let mut next = self.state.clone();
        next.networks.insert(n.id.clone(), fw_network(n));
        self.apply(rules::add_network(&self.table, &next, &n.id))
            .await?;
        self.state = next;
        self.save()
    }

    /// Removes a network's chains (and any published ports left in it).
    pub async fn remove_network(&mut self, network_id: &str) -> Result<(), NetError> {
        let mut next = self.state.clone();
        let Some(n) = next.networks.remove(network_id) else {
            return Ok(());
        };
        next.endpoints.retain(|_, e| e.network_id != network_id);
        self.apply(rules::remove_network(&self.table, &next, &n.bridge))
            .await?;
        self.state = next;
        self.save()
    }

    /// Chooses host ports for a container's `-p`/`-P` requests: fixed
    /// ports must be free (neither published by another container nor bound
    /// by a host process), ephemeral ones come from the host's ephemeral
    /// range. Nothing is recorded until [`Firewall::add_endpoint`].
    pub fn choose_ports(&mut self, requests: &[PortRequest]) -> Result<Vec<PortBinding>, NetError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let taken = self.state.bindings();
        let mut next = self.state.next_ephemeral;
        let eph = self.ephemeral;
        let chosen = sys::in_netns(&self.host, || {
            choose_ports(requests, &taken, eph, &mut next, sys::port_is_free).map(|c| (c, next))
        })??;
        self.state.next_ephemeral = chosen.1;
        Ok(chosen.0)
    }

    /// Publishes an endpoint's ports (`ep.ports`, chosen with
    /// [`Firewall::choose_ports`]). Nothing to do without ports.
    pub async fn add_endpoint(&mut self, ep: &EndpointRecord) -> Result<(), NetError> {
        let Some(fe) = fw_endpoint(ep) else {
            return Ok(());
        };
        if !self.state.networks.contains_key(&ep.network_id) {
            return Err(NetError::NetworkNotFound(ep.network_id.clone()));
        }
        let mut next = self.state.clone();
        next.endpoints.insert(ep.id.clone(), fe);
        self.apply(rules::rewrite_ports(&self.table, &next, &ep.network_id))
            .await?;
        self.state = next;
        self.save()
    }

    /// Withdraws an endpoint's published ports (none: nothing to do).
    pub async fn remove_endpoint(&mut self, endpoint_id: &str) -> Result<(), NetError> {
        let mut next = self.state.clone();
        let Some(fe) = next.endpoints.remove(endpoint_id) else {
            return Ok(());
        };
        self.apply(rules::rewrite_ports(&self.table, &next, &fe.network_id))
            .await?;
        self.state = next;
        self.save()
    }

    /// Deletes the whole table and forgets the state (uninstall, tests).
    pub async fn delete_table(&mut self) -> Result<(), NetError> {
        self.apply(rules::delete_table(&self.table)).await?;
        self.state = FirewallState::default();
        self.save()
    }
}

/// temp file in the same directory → rename: a reader sees the old or the
/// new state, never half of one, whatever happens to the daemon. No fsync:
/// the file mirrors nftables rules, which do not outlive the kernel either
/// (and two fsyncs cost ~7 ms here, on every container start with `-p`).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NetError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        sys::random_hex(8)
    ));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        NetError::io("write state file", path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MacAddr, SubnetConfig};
    use crate::ports::Proto;
    use std::sync::Mutex;

    /// Records the transactions instead of applying them.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl FirewallDriver for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn apply(&self, _table: &str, json: &str) -> Result<(), NetError> {
            self.0.lock().unwrap().push(json.to_string());
            Ok(())
        }
    }

    fn net() -> NetworkRecord {
        NetworkRecord {
            id: "n1".into(),
            name: "one".into(),
            bridge: "br-one".into(),
            subnets: vec![SubnetConfig {
                subnet: "10.9.0.0/24".parse().unwrap(),
                gateway: "10.9.0.1".parse().unwrap(),
                ip_range: None,
            }],
            internal: false,
            dns: true,
            icc: true,
            mtu: None,
        }
    }

    fn ep(id: &str, port: u16) -> EndpointRecord {
        EndpointRecord {
            id: id.into(),
            network_id: "n1".into(),
            container_id: "c".into(),
            netns: "/x".into(),
            ifname: "eth0".into(),
            host_ifname: "vb".into(),
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ipv4: Some("10.9.0.2/24".parse().unwrap()),
            ipv6: None,
            default_route: true,
            dns_names: vec![],
            ports: vec![PortBinding {
                proto: Proto::Tcp,
                container_port: 80,
                host_ip: "0.0.0.0".parse().unwrap(),
                host_port: port,
            }],
            dns_servers: vec![],
        }
    }

    #[tokio::test]
    async fn state_is_recorded_locked_and_reconciled() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        let mut fw = Firewall::open(NetnsRef::Current, "t", dir.path(), rec.clone()).unwrap();
        let e = Firewall::open(NetnsRef::Current, "t", dir.path(), Arc::new(NoFirewall))
            .err()
            .unwrap();
        assert!(matches!(e, NetError::Locked(_)), "{e}");
        fw.add_network(&net()).await.unwrap();
        fw.add_endpoint(&ep("e1", 8080)).await.unwrap();
        fw.add_endpoint(&ep("e2", 8081)).await.unwrap();
        assert_eq!(rec.0.lock().unwrap().len(), 3);
        let saved: FirewallState =
            serde_json::from_slice(&std::fs::read(dir.path().join("firewall.json")).unwrap())
                .unwrap();
        assert_eq!(saved.endpoints.len(), 2);
        assert_eq!(saved.bindings().len(), 2);
        drop(fw);

        // A restarted daemon whose e2 died: the rebuild has only e1.
        let mut fw = Firewall::open(NetnsRef::Current, "t", dir.path(), rec.clone()).unwrap();
        assert_eq!(fw.state().endpoints.len(), 2);
        fw.reconcile(&[net()], &[ep("e1", 8080)]).await.unwrap();
        let last = rec.0.lock().unwrap().last().unwrap().clone();
        assert!(last.contains("8080") && !last.contains("8081"), "{last}");
        assert!(
            last.contains(r#"{"delete":{"table""#),
            "replaces the whole table"
        );
        fw.remove_endpoint("e1").await.unwrap();
        fw.remove_network("n1").await.unwrap();
        assert!(fw.state().networks.is_empty() && fw.state().endpoints.is_empty());

        // A damaged state file is not fatal: the records win at start.
        drop(fw);
        std::fs::write(dir.path().join("firewall.json"), b"{\"networ").unwrap();
        let fw = Firewall::open(NetnsRef::Current, "t", dir.path(), rec).unwrap();
        assert!(fw.state().networks.is_empty());
    }
}
