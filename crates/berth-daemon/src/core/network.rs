//! Networks as the daemon manages them: Docker's view (name, driver,
//! labels, options, the predefined `bridge`, `host` and `none`) over
//! berth-net's records, persisted in the metadata database; and what a
//! container's start, exit, removal and `network connect/disconnect` do to
//! its networking.
//!
//! Truth on disk: a `networks` row per network (a [`NetworkMeta`]), an
//! `endpoints` row per running container per network (berth-net's
//! [`EndpointRecord`]), and in the container's record the networks it
//! joins ([`EndpointConfig`], by name) and the namespace it holds while it
//! runs. [`Daemon::open_networking`] rebuilds berth-net's state from them.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use berth_net::files::DnsOverrides;
use berth_net::{
    EndpointRecord, EndpointRequest, IpamRequest, MacAddr, Net, NetConfig, NetError, NetState,
    NetnsRef, NetworkCreate, NetworkRecord, PortRequest,
};
use berth_runtime::spec::NetworkNs;
use berth_store::{EndpointRow, NetworkRow};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::container::{Container, Record};
use super::{new_id, now_rfc3339, Daemon};
use crate::error::{DaemonError, Result};

/// The networks every daemon has, which cannot be removed.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// A network as the daemon stores it (JSON in the `networks` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkMeta {
    /// 64 hex.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// `--label`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `-o` (as given; the default bridge's are Docker's).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// `--attachable`.
    #[serde(default)]
    pub attachable: bool,
    /// `--ipv6`.
    #[serde(default)]
    pub enable_ipv6: bool,
    /// `--ipam-opt`.
    #[serde(default)]
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// The user's `--ip-range` per subnet are in `net`; this is the IPAM
    /// driver's name as given (`default`).
    #[serde(default)]
    pub ipam_driver: String,
    /// berth-net's record (bridge networks only).
    #[serde(default)]
    pub net: Option<NetworkRecord>,
}

impl NetworkMeta {
    /// One of `bridge`, `host`, `none`.
    pub fn is_predefined(&self) -> bool {
        PREDEFINED.contains(&self.name.as_str())
    }
}

/// What a container asks of one network (the config half of Docker's
/// `EndpointSettings`), kept in its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointConfig {
    /// The network's id when the container was attached.
    pub network_id: String,
    /// `--network-alias`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`.
    #[serde(default)]
    pub ipv4: Option<String>,
    /// `--ip6`.
    #[serde(default)]
    pub ipv6: Option<String>,
    /// `--mac-address`.
    #[serde(default)]
    pub mac: Option<String>,
    /// `--link` (accepted, shown, not acted on).
    #[serde(default)]
    pub links: Option<Vec<String>>,
    /// `DriverOpts`.
    #[serde(default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
}

/// The daemon's networking: berth-net plus the network records.
pub struct Networking {
    /// berth-net.
    pub net: Net,
    metas: RwLock<BTreeMap<String, NetworkMeta>>,
    /// Serialises network create/remove/prune and connect/disconnect.
    pub(super) lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Networking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Networking").finish_non_exhaustive()
    }
}

impl Networking {
    /// Every network, oldest first (predefined ones first).
    pub fn list(&self) -> Vec<NetworkMeta> {
        let mut v: Vec<NetworkMeta> = self.metas.read().expect("lock").values().cloned().collect();
        v.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        v
    }

    /// A network by full id, name, or unique id prefix (Docker's order).
    pub fn find(&self, key: &str) -> Result<NetworkMeta> {
        let metas = self.metas.read().expect("lock");
        if let Some(m) = metas.get(key) {
            return Ok(m.clone());
        }
        if let Some(m) = metas.values().find(|m| m.name == key) {
            return Ok(m.clone());
        }
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<&NetworkMeta> =
                metas.values().filter(|m| m.id.starts_with(key)).collect();
            match hits.len() {
                1 => return Ok(hits[0].clone()),
                0 => {}
                _ => {
                    return Err(DaemonError::BadRequest(format!(
                        "network {key} is ambiguous ({} matches found based on ID prefix)",
                        hits.len()
                    )))
                }
            }
        }
        Err(DaemonError::NotFound(format!("network {key} not found")))
    }

    fn by_name(&self, name: &str) -> Option<NetworkMeta> {
        self.metas
            .read()
            .expect("lock")
            .values()
            .find(|m| m.name == name)
            .cloned()
    }

    fn name_of(&self, id: &str) -> Option<String> {
        self.metas
            .read()
            .expect("lock")
            .get(id)
            .map(|m| m.name.clone())
    }
}

/// Maps berth-net's errors to Docker's statuses.
pub(crate) fn net_err(e: NetError) -> DaemonError {
    let msg = e.to_string();
    match e {
        NetError::NetworkNotFound(_) | NetError::EndpointNotFound(_) => DaemonError::NotFound(msg),
        NetError::NetworkExists(_) => DaemonError::Conflict(msg),
        NetError::NetworkInUse { .. }
        | NetError::PoolOverlap { .. }
        | NetError::AddressInUse { .. } => DaemonError::Forbidden(msg),
        NetError::InvalidCidr(_)
        | NetError::InvalidIp(_)
        | NetError::InvalidMac(_)
        | NetError::InvalidIpamConfig(_)
        | NetError::AddressOutOfRange { .. }
        | NetError::InvalidPort(_)
        | NetError::InvalidIfname(_) => DaemonError::BadRequest(msg),
        _ => DaemonError::Internal(msg),
    }
}

/// Held while choosing a subnet: every daemon on the host avoids the
/// routes of the others' bridges, so two starting at once must not choose
/// in the same instant.
fn host_subnet_lock() -> Option<Flock<File>> {
    let dir = Path::new("/run/lock");
    let _ = std::fs::create_dir_all(dir);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("berth-net-subnets.lock"))
        .ok()?;
    Flock::lock(f, FlockArg::LockExclusive).ok()
}

fn default_bridge_options(bridge: &str) -> BTreeMap<String, String> {
    [
        ("com.docker.network.bridge.default_bridge", "true"),
        ("com.docker.network.bridge.enable_icc", "true"),
        ("com.docker.network.bridge.enable_ip_masquerade", "true"),
        ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
        ("com.docker.network.bridge.name", bridge),
        ("com.docker.network.driver.mtu", "1500"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn parse_bool_opt(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Some(true),
        "0" | "f" | "false" => Some(false),
        _ => None,
    }
}

/// The body of `POST /networks/create` (Docker's `NetworkCreateRequest`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateBody {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    pub ipam: Option<IpamBody>,
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub config_only: bool,
}

/// `IPAM` of a create body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamBody {
    pub driver: String,
    pub config: Option<Vec<IpamConfigBody>>,
    pub options: Option<BTreeMap<String, String>>,
}

/// One `IPAM.Config` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfigBody {
    pub subnet: String,
    #[serde(rename = "IPRange")]
    pub ip_range: String,
    pub gateway: String,
}

/// The body of `POST /networks/{id}/connect`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConnectBody {
    pub container: String,
    pub endpoint_config: Option<Value>,
}

/// The body of `POST /networks/{id}/disconnect`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DisconnectBody {
    pub container: String,
    pub force: bool,
}

/// Reads the user's half of an `EndpointSettings` object.
pub(super) fn endpoint_config(network_id: &str, v: Option<&Value>) -> Result<EndpointConfig> {
    let mut cfg = EndpointConfig {
        network_id: network_id.to_string(),
        ..Default::default()
    };
    let Some(v) = v.filter(|v| v.is_object()) else {
        return Ok(cfg);
    };
    let strs = |k: &str| -> Option<Vec<String>> {
        v.get(k)?.as_array().map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
    };
    cfg.aliases = strs("Aliases").unwrap_or_default();
    cfg.links = strs("Links");
    cfg.mac = v
        .get("MacAddress")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if let Some(ipam) = v.get("IPAMConfig").filter(|x| x.is_object()) {
        let g = |k: &str| {
            ipam.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        cfg.ipv4 = g("IPv4Address");
        cfg.ipv6 = g("IPv6Address");
    }
    if let Some(o) = v.get("DriverOpts").filter(|x| x.is_object()) {
        cfg.driver_opts = serde_json::from_value(o.clone()).ok();
    }
    if let Some(ip) = &cfg.ipv4 {
        if !matches!(ip.parse::<IpAddr>(), Ok(IpAddr::V4(_))) {
            return Err(DaemonError::BadRequest(format!(
                "invalid IPv4 address: {ip}"
            )));
        }
    }
    if let Some(ip) = &cfg.ipv6 {
        if !matches!(ip.parse::<IpAddr>(), Ok(IpAddr::V6(_))) {
            return Err(DaemonError::BadRequest(format!(
                "invalid IPv6 address: {ip}"
            )));
        }
    }
    if let Some(m) = &cfg.mac {
        m.parse::<MacAddr>().map_err(net_err)?;
    }
    Ok(cfg)
}

/// What kind of networking a container's `NetworkMode` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mode {
    Host,
    None,
    Container(String),
    /// The default bridge or a named network.
    Network(String),
}

pub(super) fn mode_of(network_mode: &str) -> Mode {
    match network_mode {
        "host" => Mode::Host,
        "none" => Mode::None,
        "" | "default" | "bridge" => Mode::Network("bridge".into()),
        m => match m.strip_prefix("container:") {
            Some(c) => Mode::Container(c.to_string()),
            None => Mode::Network(m.to_string()),
        },
    }
}

/// Docker's `DNSNames`: name, aliases, short id, hostname (no repeats).
fn dns_names(r: &Record, aliases: &[String]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !s.is_empty() && !v.iter().any(|x| x == s) {
            v.push(s.to_string());
        }
    };
    push(&r.name);
    for a in aliases {
        push(a);
    }
    push(&r.id[..12]);
    push(&r.config.hostname);
    v
}

/// The published ports a container asks for: `PortBindings`, and with
/// `-P` every exposed port that has no binding.
fn port_requests(r: &Record) -> Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    let mut bound = std::collections::BTreeSet::new();
    for (key, v) in r.host_config.port_bindings.iter().flatten() {
        let list = v.as_array().cloned().unwrap_or_default();
        for b in &list {
            let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
            let port = b.get("HostPort").and_then(Value::as_str).unwrap_or("");
            out.push(PortRequest::from_api(key, ip, port).map_err(net_err)?);
        }
        if list.is_empty() {
            out.push(PortRequest::from_api(key, "", "").map_err(net_err)?);
        }
        bound.insert(normalize_port_key(key));
    }
    if r.host_config.publish_all_ports {
        for key in r.config.exposed_ports.iter().flatten().map(|(k, _)| k) {
            if !bound.contains(&normalize_port_key(key)) {
                out.push(PortRequest::from_api(key, "", "").map_err(net_err)?);
            }
        }
    }
    Ok(out)
}

fn normalize_port_key(k: &str) -> String {
    if k.contains('/') {
        k.to_ascii_lowercase()
    } else {
        format!("{k}/tcp")
    }
}

/// `--add-host name:ip` entries (`host-gateway` is the default bridge's
/// gateway, as Docker's).
fn extra_hosts(list: &[String], gateway: Option<IpAddr>) -> Result<Vec<(String, IpAddr)>> {
    let mut out = Vec::new();
    for h in list {
        // Docker accepts `name:ip` and `name=ip`; the IP may be IPv6.
        let (name, ip) = h
            .split_once('=')
            .or_else(|| h.split_once(':'))
            .ok_or_else(|| {
                DaemonError::BadRequest(format!("invalid IP address in add-host: {h:?}"))
            })?;
        let ip = ip.trim_matches(['[', ']']);
        let addr = if ip == "host-gateway" {
            gateway.ok_or_else(|| {
                DaemonError::BadRequest("unable to derive the IP value for host-gateway".into())
            })?
        } else {
            ip.parse::<IpAddr>().map_err(|_| {
                DaemonError::BadRequest(format!("invalid IP address in add-host: {ip:?}"))
            })?
        };
        out.push((name.to_string(), addr));
    }
    Ok(out)
}

/// One legacy `--link NAME[:ALIAS]`, as given or as stored
/// (`/NAME:/CONTAINER/ALIAS`, Docker's form in `HostConfig.Links`): the
/// linked container and the alias.
fn parse_link(link: &str) -> Result<(String, String)> {
    let (name, alias) = link.split_once(':').unwrap_or((link, link));
    let name = name.trim_start_matches('/');
    // The stored form carries the linking container's name before the alias.
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    if name.is_empty() || alias.is_empty() {
        return Err(DaemonError::BadRequest(format!(
            "invalid link format: {link:?}"
        )));
    }
    Ok((name.to_string(), alias.to_string()))
}

/// Docker's variables for one link: the first port (TCP first, lowest
/// number), each port's URL, address, number and protocol, the link's name
/// and the linked container's own variables (but HOME and PATH).
fn link_env_vars(
    parent: &str,
    alias: &str,
    ip: IpAddr,
    ports: &[&str],
    child_env: &[String],
) -> Vec<String> {
    let prefix = alias.to_uppercase().replace('-', "_");
    let mut ports: Vec<(u16, String)> = ports
        .iter()
        .filter_map(|p| {
            let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((num.parse().ok()?, proto.to_lowercase()))
        })
        .collect();
    ports.sort_by_key(|p| (p.1 != "tcp", p.0));
    let mut env = Vec::new();
    if let Some((port, proto)) = ports.first() {
        env.push(format!("{prefix}_PORT={proto}://{ip}:{port}"));
    }
    for (port, proto) in &ports {
        let var = format!("{prefix}_PORT_{port}_{}", proto.to_uppercase());
        env.push(format!("{var}={proto}://{ip}:{port}"));
        env.push(format!("{var}_ADDR={ip}"));
        env.push(format!("{var}_PORT={port}"));
        env.push(format!("{var}_PROTO={proto}"));
    }
    env.push(format!("{prefix}_NAME=/{parent}/{alias}"));
    for e in child_env {
        if let Some((k, v)) = e.split_once('=') {
            if k != "HOME" && k != "PATH" {
                env.push(format!("{prefix}_ENV_{k}={v}"));
            }
        }
    }
    env
}

fn host_has_ipv6() -> bool {
    Path::new("/proc/net/if_inet6").exists()
}

fn write_file(p: &Path, text: &str) -> Result<()> {
    std::fs::write(p, text)
        .map_err(|e| DaemonError::Internal(format!("write {}: {e}", p.display())))
}

/// What the container start needs from the network set-up.
pub(super) struct NetSetup {
    pub ns: NetworkNs,
}

impl Daemon {
    /// The networking, once [`Daemon::open_networking`] ran.
    pub fn networking(&self) -> Result<&Arc<Networking>> {
        self.networking
            .get()
            .ok_or_else(|| DaemonError::Internal("networking is not initialised".into()))
    }

    /// Opens berth-net from the records (before [`Daemon::restore`]): the
    /// endpoints of containers recorded as running are kept (their traffic
    /// never stopped), the rest are dropped; the predefined networks are
    /// made at first start.
    pub async fn open_networking(self: &Arc<Self>) -> Result<()> {
        let mut metas = BTreeMap::new();
        for row in self.meta.networks()? {
            match serde_json::from_str::<NetworkMeta>(&row.record) {
                Ok(m) => {
                    metas.insert(m.id.clone(), m);
                }
                Err(e) => tracing::error!(id = %row.id, "unreadable network record, skipping: {e}"),
            }
        }
        let running: BTreeMap<String, Option<PathBuf>> = self
            .containers()
            .iter()
            .filter(|c| c.status().is_active())
            .map(|c| (c.id.clone(), c.rec().netns.clone()))
            .collect();
        let mut endpoints = Vec::new();
        for row in self.meta.endpoints()? {
            let rec = serde_json::from_str::<EndpointRecord>(&row.record).ok();
            match rec {
                Some(e)
                    if running.contains_key(&e.container_id)
                        && metas.contains_key(&e.network_id) =>
                {
                    endpoints.push(e)
                }
                _ => self.meta.delete_endpoint(&row.id)?,
            }
        }
        let netns_in_use: Vec<PathBuf> = running.values().flatten().cloned().collect();
        let records: Vec<NetworkRecord> = metas.values().filter_map(|m| m.net.clone()).collect();
        let mut cfg = NetConfig::new(NetnsRef::Current, &self.cfg.exec_root);
        cfg.nft_table = self.cfg.net.nft_table.clone();
        cfg.veth_prefix = self.cfg.net.veth_prefix.clone();
        let net = Net::open(
            cfg,
            NetState {
                networks: &records,
                endpoints: &endpoints,
                netns_in_use: &netns_in_use,
            },
        )
        .await
        .map_err(|e| DaemonError::Internal(format!("starting networking: {e}")))?;
        let n = Arc::new(Networking {
            net,
            metas: RwLock::new(metas),
            lock: tokio::sync::Mutex::new(()),
        });
        let _ = self.networking.set(n.clone());
        if n.by_name("bridge").is_none() {
            let bridge = self.cfg.net.default_bridge();
            let req = NetworkCreate {
                id: new_id(),
                name: "bridge".into(),
                bridge: bridge.clone(),
                icc: true,
                ..Default::default()
            };
            let rec = {
                let _host = host_subnet_lock();
                n.net.create_network(&req).await
            }
            .map_err(|e| {
                DaemonError::Internal(format!("creating the default bridge {bridge}: {e}"))
            })?;
            self.add_meta(NetworkMeta {
                id: rec.id.clone(),
                name: "bridge".into(),
                created: now_rfc3339(),
                driver: "bridge".into(),
                labels: BTreeMap::new(),
                options: default_bridge_options(&bridge),
                attachable: false,
                enable_ipv6: false,
                ipam_options: None,
                ipam_driver: "default".into(),
                net: Some(rec),
            })?;
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if n.by_name(name).is_none() {
                self.add_meta(NetworkMeta {
                    id: new_id(),
                    name: name.into(),
                    created: now_rfc3339(),
                    driver: driver.into(),
                    labels: BTreeMap::new(),
                    options: BTreeMap::new(),
                    attachable: false,
                    enable_ipv6: false,
                    ipam_options: None,
                    ipam_driver: "default".into(),
                    net: None,
                })?;
            }
        }
        Ok(())
    }

    fn add_meta(&self, m: NetworkMeta) -> Result<()> {
        let n = self.networking()?;
        let record = serde_json::to_string(&m).map_err(|e| DaemonError::Internal(e.to_string()))?;
        let created_at = chrono::DateTime::parse_from_rfc3339(&m.created)
            .map(|t| t.timestamp_nanos_opt().unwrap_or(0))
            .unwrap_or(0);
        self.meta.insert_network(&NetworkRow {
            id: m.id.clone(),
            name: m.name.clone(),
            created_at,
            record,
        })?;
        n.metas.write().expect("lock").insert(m.id.clone(), m);
        Ok(())
    }

    /// Daemon shutdown: with no container running, nothing of the daemon's
    /// networking stays on the host (bridges, table, namespaces); the next
    /// start makes it again from the records. Otherwise everything stays,
    /// so that running containers keep their traffic.
    pub async fn shutdown_networking(&self) {
        let Ok(n) = self.networking() else {
            return;
        };
        let idle = !self.containers().iter().any(|c| c.status().is_active());
        if let Err(e) = n.net.shutdown() {
            tracing::warn!("stopping networking: {e}");
        }
        if idle {
            if let Err(e) = n.net.teardown_host().await {
                tracing::warn!("removing bridges and rules at shutdown: {e}");
            }
        }
    }

    // ---- create-time checks ----

    /// Fills `rec.networks` from `NetworkMode` and `EndpointsConfig`, with
    /// Docker's checks.
    pub(super) fn plan_networks(
        &self,
        rec: &mut Record,
        endpoints: Option<&BTreeMap<String, Value>>,
    ) -> Result<()> {
        // A 404 from create makes docker clients pull the image: a missing
        // network or container is the request's fault here.
        self.plan_networks_inner(rec, endpoints)
            .map_err(|e| match e {
                DaemonError::NotFound(m) => DaemonError::BadRequest(m),
                other => other,
            })
    }

    fn plan_networks_inner(
        &self,
        rec: &mut Record,
        endpoints: Option<&BTreeMap<String, Value>>,
    ) -> Result<()> {
        let n = self.networking()?;
        let hc = &rec.host_config;
        let mode = mode_of(&hc.network_mode);
        let publishes =
            hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) || hc.publish_all_ports;
        let mut nets = BTreeMap::new();
        match &mode {
            Mode::Container(other) => {
                if publishes {
                    return Err(DaemonError::BadRequest(
                        "conflicting options: port publishing and the container type network mode"
                            .into(),
                    ));
                }
                if hc.dns.as_ref().is_some_and(|d| !d.is_empty()) {
                    return Err(DaemonError::BadRequest(
                        "conflicting options: dns and the network mode".into(),
                    ));
                }
                if hc.extra_hosts.as_ref().is_some_and(|d| !d.is_empty()) {
                    return Err(DaemonError::BadRequest(
                        "conflicting options: custom host-to-IP mapping and the network mode"
                            .into(),
                    ));
                }
                self.container(other)?;
            }
            Mode::Host | Mode::None => {
                let name = if mode == Mode::Host { "host" } else { "none" };
                let m = n.find(name)?;
                nets.insert(name.to_string(), endpoint_config(&m.id, None)?);
            }
            Mode::Network(name) => {
                let m = n.find(name)?;
                if m.driver != "bridge" {
                    // `--network <id of host>` and the like.
                    let cfg = endpoint_config(&m.id, None)?;
                    nets.insert(m.name.clone(), cfg);
                } else {
                    let ep = endpoints.and_then(|e| {
                        e.get(&m.name)
                            .or_else(|| e.get(name.as_str()))
                            .or_else(|| e.get(&m.id))
                            .or_else(|| (m.name == "bridge").then(|| e.get("default")).flatten())
                    });
                    let cfg = endpoint_config(&m.id, ep)?;
                    if m.name == "bridge" {
                        if cfg.ipv4.is_some() || cfg.ipv6.is_some() {
                            return Err(DaemonError::BadRequest(
                                "user specified IP address is supported on user defined networks only"
                                    .into(),
                            ));
                        }
                        if !cfg.aliases.is_empty() {
                            return Err(DaemonError::BadRequest(
                                "network-scoped alias is supported only for containers in user defined networks"
                                    .into(),
                            ));
                        }
                    }
                    nets.insert(m.name.clone(), cfg);
                }
                // Further networks of the create body (API 1.44+).
                for (key, v) in endpoints.into_iter().flatten() {
                    if key == "default" || key == name || key == &m.name || key == &m.id {
                        continue;
                    }
                    let other = n.find(key)?;
                    if other.driver != "bridge" {
                        return Err(DaemonError::BadRequest(format!(
                            "container cannot be connected to network {} of driver {}",
                            other.name, other.driver
                        )));
                    }
                    nets.insert(other.name.clone(), endpoint_config(&other.id, Some(v))?);
                }
            }
        }
        if let Some(mac) = rec.config.mac_address.clone().filter(|m| !m.is_empty()) {
            mac.parse::<MacAddr>().map_err(net_err)?;
            if let Some(first) = nets.values_mut().next() {
                first.mac.get_or_insert(mac);
            }
        }
        extra_hosts(
            rec.host_config.extra_hosts.as_deref().unwrap_or_default(),
            Some(IpAddr::from([0, 0, 0, 0])),
        )?;
        for d in rec.host_config.dns.iter().flatten() {
            d.parse::<IpAddr>()
                .map_err(|_| DaemonError::BadRequest(format!("{d} is not an ip address")))?;
        }
        port_requests(rec)?;
        self.plan_links(rec, &mode)?;
        rec.networks = nets;
        Ok(())
    }

    /// Checks legacy links at create and stores them as Docker shows them
    /// (`/db:/web/alias`): the linked containers must exist; host and
    /// container network modes cannot have links.
    fn plan_links(&self, rec: &mut Record, mode: &Mode) -> Result<()> {
        let Some(links) = rec.host_config.links.clone().filter(|l| !l.is_empty()) else {
            return Ok(());
        };
        match mode {
            Mode::Host => {
                return Err(DaemonError::BadRequest(
                    "conflicting options: host type networking can't be used with links. This would result in undefined behavior"
                        .into(),
                ))
            }
            Mode::Container(_) => {
                return Err(DaemonError::BadRequest(
                    "conflicting options: container type network can't be used with links. This would result in undefined behavior"
                        .into(),
                ))
            }
            _ => {}
        }
        let mut stored = Vec::new();
        for l in &links {
            let (name, alias) = parse_link(l)?;
            let child = self.container(&name).map_err(|e| {
                DaemonError::BadRequest(format!("could not get container for {name}: {e}"))
            })?;
            let child_name = child.rec().name.clone();
            if child.id == rec.id {
                return Err(DaemonError::BadRequest(format!(
                    "cannot link {child_name} to itself"
                )));
            }
            stored.push(format!("/{child_name}:/{}/{alias}", rec.name));
        }
        rec.host_config.links = Some(stored);
        Ok(())
    }

    /// The `/etc/hosts` lines of a container's legacy links on the default
    /// bridge, as Docker writes them: `IP\tALIAS HOSTNAME [NAME]`. Links
    /// work on the default bridge only (a user network resolves names).
    fn link_hosts(&self, r: &Record) -> Vec<Result<(String, IpAddr)>> {
        let links = r.host_config.links.as_deref().unwrap_or_default();
        if links.is_empty() || !r.networks.contains_key("bridge") {
            return Vec::new();
        }
        links.iter().map(|l| self.link_host(r, l)).collect()
    }

    fn link_host(&self, r: &Record, l: &str) -> Result<(String, IpAddr)> {
        let (alias, cr, ip) = self.link_target(r, l)?;
        // Docker's alias list: the alias, the linked container's host
        // name, and its name when the alias is not that.
        let mut names = format!("{alias} {}", cr.config.hostname);
        if alias != cr.name {
            names = format!("{names} {}", cr.name);
        }
        Ok((names, ip))
    }

    /// The linked container of one stored link, its alias and its address
    /// on the default bridge.
    fn link_target(&self, r: &Record, l: &str) -> Result<(String, Record, IpAddr)> {
        let n = self.networking()?;
        let bridge_id = n.find("bridge")?.id;
        let (name, alias) = parse_link(l)?;
        let child = self.container(&name).map_err(|e| {
            DaemonError::BadRequest(format!("could not get container for {name}: {e}"))
        })?;
        let cr = child.snapshot();
        // Its endpoints exist from the start of its network set-up, before
        // its status says running (when it is being started itself).
        let ip = n
            .net
            .container_endpoints(&child.id)
            .iter()
            .filter(|e| e.network_id == bridge_id)
            .flat_map(|e| e.addresses())
            .find(IpAddr::is_ipv4);
        match ip {
            Some(ip) => Ok((alias, cr, ip)),
            None if !cr.state.status.is_active() => Err(DaemonError::Conflict(format!(
                "Cannot link to a non running container: /{} AS /{}/{alias}",
                cr.name, r.name
            ))),
            None => Err(DaemonError::BadRequest(format!(
                "Cannot link to /{}, as it does not belong to the default network",
                cr.name
            ))),
        }
    }

    /// The environment Docker gives a container for its legacy links on the
    /// default bridge (`DB_PORT=tcp://IP:5432`, `DB_NAME=/web/db`,
    /// `DB_ENV_…`); links that cannot be resolved give none.
    pub(super) fn link_env(&self, r: &Record) -> Vec<String> {
        let links = r.host_config.links.as_deref().unwrap_or_default();
        if links.is_empty() || !r.networks.contains_key("bridge") {
            return Vec::new();
        }
        let mut env = Vec::new();
        for l in links {
            let Ok((alias, cr, ip)) = self.link_target(r, l) else {
                continue;
            };
            let ports: Vec<&str> = cr
                .config
                .exposed_ports
                .iter()
                .flatten()
                .map(|(k, _)| k.as_str())
                .collect();
            let child_env = cr.config.env.as_deref().unwrap_or_default();
            env.extend(link_env_vars(&r.name, &alias, ip, &ports, child_env));
        }
        env
    }

    /// The networks of a container in the order they are joined: the one
    /// its `NetworkMode` names first (it carries eth0 and the default
    /// route), then the others by name.
    fn ordered_networks(&self, r: &Record) -> Vec<(String, EndpointConfig)> {
        let primary = match mode_of(&r.host_config.network_mode) {
            Mode::Network(n) => n,
            _ => String::new(),
        };
        let mut v: Vec<(String, EndpointConfig)> = r
            .networks
            .iter()
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        v.sort_by_key(|(name, cfg)| !(name == &primary || cfg.network_id == primary));
        if v.is_empty() {
            if let Mode::Network(_) = mode_of(&r.host_config.network_mode) {
                v.push(("bridge".into(), EndpointConfig::default()));
            }
        }
        v
    }

    // ---- container start / exit ----

    /// Sets up a container's networking before its process starts and
    /// writes its `/etc/hosts` and `/etc/resolv.conf`. Nothing is left
    /// behind on error.
    pub(super) async fn setup_network(&self, c: &Container) -> Result<NetSetup> {
        let n = self.networking()?.clone();
        let r = c.snapshot();
        let dir = self.container_dir(&c.id);
        let hc = &r.host_config;
        let overrides = DnsOverrides {
            servers: hc
                .dns
                .iter()
                .flatten()
                .filter_map(|s| s.parse().ok())
                .collect(),
            search: hc.dns_search.clone().unwrap_or_default(),
            options: hc.dns_options.clone().unwrap_or_default(),
        };
        let gateway = n
            .by_name("bridge")
            .and_then(|m| m.net)
            .and_then(|rec| rec.ipv4().map(|s| s.gateway));
        let extra = extra_hosts(hc.extra_hosts.as_deref().unwrap_or_default(), gateway)?;
        let ipv6 = host_has_ipv6();
        match mode_of(&hc.network_mode) {
            Mode::Host => {
                let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
                if !hosts.is_empty() && !hosts.ends_with('\n') {
                    hosts.push('\n');
                }
                for (name, ip) in &extra {
                    hosts.push_str(&format!("{ip}\t{name}\n"));
                }
                write_file(&dir.join("hosts"), &hosts)?;
                let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                let resolv = if overrides == DnsOverrides::default() {
                    host_resolv
                } else {
                    berth_net::files::resolv_conf_legacy(
                        &host_resolv,
                        "/etc/resolv.conf",
                        &overrides,
                        ipv6,
                    )
                };
                write_file(&dir.join("resolv.conf"), &resolv)?;
                Ok(NetSetup {
                    ns: NetworkNs::Host,
                })
            }
            Mode::Container(other) => {
                let o = self.container(&other)?;
                if !o.status().is_active() {
                    return Err(DaemonError::Conflict(format!(
                        "cannot join network namespace of a non running container: {}",
                        o.id
                    )));
                }
                let orec = o.snapshot();
                // The other container's files, as they are now.
                let odir = self.container_dir(&o.id);
                for f in ["hosts", "resolv.conf", "hostname"] {
                    if let Ok(text) = std::fs::read_to_string(odir.join(f)) {
                        write_file(&dir.join(f), &text)?;
                    }
                }
                let ns = match (&orec.netns, mode_of(&orec.host_config.network_mode)) {
                    (_, Mode::Host) => NetworkNs::Host,
                    (Some(p), _) => NetworkNs::Path(p.clone()),
                    (None, _) => {
                        NetworkNs::Path(PathBuf::from(format!("/proc/{}/ns/net", orec.state.pid)))
                    }
                };
                Ok(NetSetup { ns })
            }
            Mode::None => {
                let netns = n.net.pool().take().map_err(net_err)?;
                let hosts = berth_net::files::render_hosts(
                    ipv6,
                    &extra,
                    &[],
                    &r.config.hostname,
                    &r.config.domainname,
                );
                let resolv = n.net.resolv_conf(None, &overrides);
                let written = write_file(&dir.join("hosts"), &hosts)
                    .and_then(|_| write_file(&dir.join("resolv.conf"), &resolv))
                    .and_then(|_| {
                        c.rec().netns = Some(netns.clone());
                        self.persist(c)
                    });
                if let Err(e) = written {
                    c.rec().netns = None;
                    let _ = n.net.pool().release(&netns);
                    return Err(e);
                }
                Ok(NetSetup {
                    ns: NetworkNs::Path(netns),
                })
            }
            Mode::Network(_) => {
                let nets = self.ordered_networks(&r);
                // Links after the --add-host entries, as Docker orders them.
                let mut extra = extra;
                for link in self.link_hosts(&r) {
                    extra.push(link?);
                }
                let netns = n.net.pool().take().map_err(net_err)?;
                let mut made: Vec<EndpointRecord> = Vec::new();
                let res = self
                    .connect_all(&n, &r, &netns, &nets, &overrides, &mut made)
                    .await;
                let res = match res {
                    Ok(primary) => {
                        let ips: Vec<IpAddr> = made.iter().flat_map(|e| e.addresses()).collect();
                        let hosts = berth_net::files::render_hosts(
                            ipv6,
                            &extra,
                            &ips,
                            &r.config.hostname,
                            &r.config.domainname,
                        );
                        let resolv = n.net.resolv_conf(primary.as_deref(), &overrides);
                        write_file(&dir.join("hosts"), &hosts)
                            .and_then(|_| write_file(&dir.join("resolv.conf"), &resolv))
                            .and_then(|_| {
                                c.rec().netns = Some(netns.clone());
                                self.persist(c)
                            })
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = res {
                    c.rec().netns = None;
                    for ep in &made {
                        let _ = self.meta.delete_endpoint(&ep.id);
                    }
                    if let Err(err) = n.net.release_container(&c.id, &netns).await {
                        tracing::warn!(id = %c.id, "undoing network set-up: {err}");
                    }
                    return Err(e);
                }
                self.refresh_linkers(&r);
                Ok(NetSetup {
                    ns: NetworkNs::Path(netns),
                })
            }
        }
    }

    /// Connects every network in order; returns the primary network's id.
    async fn connect_all(
        &self,
        n: &Networking,
        r: &Record,
        netns: &Path,
        nets: &[(String, EndpointConfig)],
        overrides: &DnsOverrides,
        made: &mut Vec<EndpointRecord>,
    ) -> Result<Option<String>> {
        let mut primary = None;
        for (i, (name, cfg)) in nets.iter().enumerate() {
            let m = n
                .by_name(name)
                .or_else(|| n.find(&cfg.network_id).ok())
                .ok_or_else(|| DaemonError::NotFound(format!("network {name} not found")))?;
            if m.net.is_none() {
                continue;
            }
            let ports = if i == 0 {
                port_requests(r)?
            } else {
                Vec::new()
            };
            let ep = self
                .connect_endpoint(
                    n,
                    r,
                    &m,
                    cfg,
                    netns,
                    &format!("eth{i}"),
                    i == 0,
                    ports,
                    overrides,
                )
                .await?;
            if primary.is_none() {
                primary = Some(m.id.clone());
            }
            made.push(ep);
        }
        Ok(primary)
    }

    #[allow(clippy::too_many_arguments)]
    async fn connect_endpoint(
        &self,
        n: &Networking,
        r: &Record,
        m: &NetworkMeta,
        cfg: &EndpointConfig,
        netns: &Path,
        ifname: &str,
        default_route: bool,
        ports: Vec<PortRequest>,
        overrides: &DnsOverrides,
    ) -> Result<EndpointRecord> {
        let dns = m.net.as_ref().is_some_and(|x| x.dns);
        let req = EndpointRequest {
            id: new_id(),
            container_id: r.id.clone(),
            netns: netns.to_path_buf(),
            ifname: ifname.to_string(),
            ipv4: cfg.ipv4.as_deref().and_then(|s| s.parse().ok()),
            ipv6: cfg.ipv6.as_deref().and_then(|s| s.parse().ok()),
            mac: cfg
                .mac
                .as_deref()
                .map(|s| s.parse::<MacAddr>())
                .transpose()
                .map_err(net_err)?,
            default_route,
            dns_names: if dns {
                dns_names(r, &cfg.aliases)
            } else {
                Vec::new()
            },
            ports,
            dns_servers: overrides.servers.clone(),
        };
        let ep = n.net.connect(&m.id, &req).await.map_err(|e| match e {
            NetError::PortAllocated { .. } | NetError::NoFreePort { .. } => {
                DaemonError::Internal(format!(
                    "driver failed programming external connectivity on endpoint {} ({}): {e}",
                    r.name, req.id
                ))
            }
            other => net_err(other),
        })?;
        let record =
            serde_json::to_string(&ep).map_err(|e| DaemonError::Internal(e.to_string()))?;
        if let Err(e) = self.meta.put_endpoint(&EndpointRow {
            id: ep.id.clone(),
            network_id: ep.network_id.clone(),
            container_id: ep.container_id.clone(),
            record,
        }) {
            let _ = n.net.disconnect(&ep.id).await;
            return Err(e.into());
        }
        self.network_event("connect", &m.id, &m.name, Some(&r.id));
        Ok(ep)
    }

    /// Releases a container's networking once its process is gone:
    /// endpoints, published ports, its namespace.
    pub(super) async fn release_network(&self, c: &Container) {
        let Ok(n) = self.networking() else {
            return;
        };
        let eps = n.net.container_endpoints(&c.id);
        let netns = c.rec().netns.take();
        if let Some(ns) = netns {
            if let Err(e) = n.net.release_container(&c.id, &ns).await {
                tracing::warn!(id = %c.id, "releasing networking: {e}");
            }
        } else {
            for ep in n.net.container_endpoints(&c.id) {
                let _ = n.net.disconnect(&ep.id).await;
            }
        }
        if let Err(e) = self.meta.delete_container_endpoints(&c.id) {
            tracing::warn!(id = %c.id, "forgetting endpoints: {e}");
        }
        for ep in eps {
            if let Ok(m) = n.find(&ep.network_id) {
                self.network_event("disconnect", &m.id, &m.name, Some(&c.id));
            }
        }
    }

    /// Rewrites the `/etc/hosts` of the running containers that link to
    /// `r`, which has just had its addresses (maybe new ones), as Docker
    /// updates legacy links when their container restarts.
    fn refresh_linkers(&self, r: &Record) {
        for other in self.containers() {
            if other.id == r.id || !other.status().is_active() {
                continue;
            }
            let links = other.rec().host_config.links.clone().unwrap_or_default();
            if links
                .iter()
                .any(|l| parse_link(l).is_ok_and(|(name, _)| name == r.name))
            {
                self.rewrite_hosts(&other);
            }
        }
    }

    /// Rewrites `/etc/hosts` after a live connect or disconnect.
    fn rewrite_hosts(&self, c: &Container) {
        let Ok(n) = self.networking() else {
            return;
        };
        let r = c.snapshot();
        let gateway = n
            .by_name("bridge")
            .and_then(|m| m.net)
            .and_then(|rec| rec.ipv4().map(|s| s.gateway));
        let extra = extra_hosts(
            r.host_config.extra_hosts.as_deref().unwrap_or_default(),
            gateway,
        )
        .unwrap_or_default()
        .into_iter()
        // A link whose container has gone since start loses its line.
        .chain(self.link_hosts(&r).into_iter().filter_map(Result::ok))
        .collect::<Vec<_>>();
        let mut eps = n.net.container_endpoints(&c.id);
        eps.sort_by(|a, b| a.ifname.cmp(&b.ifname));
        let ips: Vec<IpAddr> = eps.iter().flat_map(|e| e.addresses()).collect();
        let hosts = berth_net::files::render_hosts(
            host_has_ipv6(),
            &extra,
            &ips,
            &r.config.hostname,
            &r.config.domainname,
        );
        let _ = write_file(&self.container_dir(&c.id).join("hosts"), &hosts);
    }

    // ---- the networks API ----

    /// `POST /networks/create`.
    pub async fn create_network(&self, body: NetworkCreateBody) -> Result<String> {
        let n = self.networking()?;
        let _serial = n.lock.lock().await;
        let name = body.name.clone();
        if name.is_empty() {
            return Err(DaemonError::BadRequest("network name is empty".into()));
        }
        if n.by_name(&name).is_some() {
            return Err(DaemonError::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        if body.ingress {
            return Err(DaemonError::Forbidden(
                "ingress networks can only be created in swarm mode".into(),
            ));
        }
        let driver = if body.driver.is_empty() {
            "bridge".to_string()
        } else {
            body.driver.clone()
        };
        match driver.as_str() {
            "bridge" => {}
            "host" | "null" => {
                return Err(DaemonError::Forbidden(format!(
                    "only one instance of \"{driver}\" network is allowed"
                )))
            }
            other => {
                return Err(DaemonError::NotFound(format!(
                    "plugin \"{other}\" not found"
                )))
            }
        }
        let ipam = body.ipam.clone().unwrap_or_default();
        if !ipam.driver.is_empty() && ipam.driver != "default" {
            return Err(DaemonError::NotFound(format!(
                "plugin \"{}\" not found",
                ipam.driver
            )));
        }
        let options = body.options.clone().unwrap_or_default();
        let id = new_id();
        let bridge = options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if n.list()
            .iter()
            .any(|m| m.net.as_ref().is_some_and(|r| r.bridge == bridge))
        {
            return Err(DaemonError::Conflict(format!(
                "bridge name {bridge} is already in use by another network"
            )));
        }
        let bool_opt = |k: &str, dflt: bool| -> Result<bool> {
            match options.get(k) {
                None => Ok(dflt),
                Some(v) => parse_bool_opt(v).ok_or_else(|| {
                    DaemonError::BadRequest(format!("failed to parse {k} value: {v:?}"))
                }),
            }
        };
        let icc = bool_opt("com.docker.network.bridge.enable_icc", true)?;
        let mtu = match options.get("com.docker.network.driver.mtu") {
            None => None,
            Some(v) => Some(v.parse::<u32>().map_err(|_| {
                DaemonError::BadRequest(format!(
                    "failed to parse com.docker.network.driver.mtu value: {v:?}"
                ))
            })?),
        };
        let req = NetworkCreate {
            id: id.clone(),
            name: name.clone(),
            bridge,
            ipam: ipam
                .config
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|c| IpamRequest {
                    subnet: Some(c.subnet).filter(|s| !s.is_empty()),
                    gateway: Some(c.gateway).filter(|s| !s.is_empty()),
                    ip_range: Some(c.ip_range).filter(|s| !s.is_empty()),
                })
                .collect(),
            enable_ipv6: body.enable_ipv6.unwrap_or(false),
            internal: body.internal,
            dns: true,
            icc,
            mtu,
        };
        let rec = {
            let _host = host_subnet_lock();
            n.net.create_network(&req).await.map_err(net_err)?
        };
        let meta = NetworkMeta {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            driver,
            labels: body.labels.clone().unwrap_or_default(),
            options,
            attachable: body.attachable,
            enable_ipv6: req.enable_ipv6,
            ipam_options: ipam.options.clone(),
            ipam_driver: if ipam.driver.is_empty() {
                "default".into()
            } else {
                ipam.driver.clone()
            },
            net: Some(rec),
        };
        if let Err(e) = self.add_meta(meta) {
            let _ = n.net.remove_network(&id).await;
            return Err(match e {
                DaemonError::Store(berth_store::StoreError::Conflict(_)) => {
                    DaemonError::Conflict(format!("network with name {} already exists", body.name))
                }
                other => other,
            });
        }
        self.network_event("create", &id, &body.name, None);
        Ok(id)
    }

    /// Docker's network events: `name`, `type` (the driver) and, for
    /// connect/disconnect, the `container`.
    fn network_event(&self, action: &str, id: &str, name: &str, container: Option<&str>) {
        let driver = self
            .networking()
            .ok()
            .and_then(|n| n.find(id).ok())
            .map(|m| m.driver)
            .unwrap_or_else(|| "bridge".into());
        let mut a = super::events::attrs([("name", name), ("type", driver.as_str())]);
        if let Some(c) = container {
            a.insert("container".into(), c.into());
        }
        self.events.emit("network", action, id, a);
    }

    /// `DELETE /networks/{id}`.
    pub async fn remove_network(&self, key: &str) -> Result<()> {
        let n = self.networking()?;
        let _serial = n.lock.lock().await;
        let m = n.find(key)?;
        self.remove_network_locked(n, &m).await
    }

    async fn remove_network_locked(&self, n: &Networking, m: &NetworkMeta) -> Result<()> {
        if m.is_predefined() {
            return Err(DaemonError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                m.name
            )));
        }
        let users: Vec<String> = n
            .net
            .endpoints_of(&m.id)
            .iter()
            .map(|e| e.container_id.clone())
            .collect();
        if !users.is_empty() {
            return Err(DaemonError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                m.name, m.id
            )));
        }
        // Row first: once it is gone the network is gone; a failed teardown
        // leaves only host objects that the next daemon start sweeps.
        self.meta.delete_network(&m.id)?;
        n.metas.write().expect("lock").remove(&m.id);
        let removed = n.net.remove_network(&m.id).await.map_err(net_err);
        let mut a = super::events::attrs([("name", m.name.as_str())]);
        a.insert("type".into(), m.driver.clone());
        self.events.emit("network", "destroy", &m.id, a);
        removed
    }

    /// `POST /networks/prune`: removes unused user-defined networks that
    /// match; returns their names.
    pub async fn prune_networks(&self, keep: impl Fn(&NetworkMeta) -> bool) -> Result<Vec<String>> {
        let n = self.networking()?;
        let _serial = n.lock.lock().await;
        let mut gone = Vec::new();
        for m in n.list() {
            if m.is_predefined() || keep(&m) || !n.net.endpoints_of(&m.id).is_empty() {
                continue;
            }
            match self.remove_network_locked(n, &m).await {
                Ok(()) => gone.push(m.name.clone()),
                Err(e) => tracing::warn!(network = %m.name, "prune: {e}"),
            }
        }
        Ok(gone)
    }

    /// `POST /networks/{id}/connect`.
    pub async fn connect_network(&self, key: &str, body: ConnectBody) -> Result<()> {
        let n = self.networking()?.clone();
        let m = n.find(key)?;
        let c = self.container(&body.container)?;
        let _op = c.op.lock().await;
        let _serial = n.lock.lock().await;
        let mode = mode_of(&c.rec().host_config.network_mode);
        if matches!(mode, Mode::Host | Mode::None | Mode::Container(_)) || m.net.is_none() {
            return Err(DaemonError::BadRequest(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        let cfg = endpoint_config(&m.id, body.endpoint_config.as_ref())?;
        if m.name == "bridge" && (cfg.ipv4.is_some() || !cfg.aliases.is_empty()) {
            return Err(DaemonError::BadRequest(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if c.rec().networks.contains_key(&m.name) {
            return Err(DaemonError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                c.name(),
                m.name
            )));
        }
        let netns = c.rec().netns.clone();
        if let (true, Some(netns)) = (c.status().is_active(), netns) {
            let eps = n.net.container_endpoints(&c.id);
            let ifname = (0..)
                .map(|i| format!("eth{i}"))
                .find(|f| !eps.iter().any(|e| &e.ifname == f))
                .unwrap_or_else(|| "eth9".into());
            let default_route = !eps.iter().any(|e| e.default_route);
            let r = c.snapshot();
            let overrides = DnsOverrides {
                servers: r
                    .host_config
                    .dns
                    .iter()
                    .flatten()
                    .filter_map(|s| s.parse().ok())
                    .collect(),
                ..Default::default()
            };
            self.connect_endpoint(
                &n,
                &r,
                &m,
                &cfg,
                &netns,
                &ifname,
                default_route,
                Vec::new(),
                &overrides,
            )
            .await?;
        }
        c.rec().networks.insert(m.name.clone(), cfg);
        if let Err(e) = self.persist(&c) {
            c.rec().networks.remove(&m.name);
            if let Some(ep) = n
                .net
                .container_endpoints(&c.id)
                .into_iter()
                .find(|e| e.network_id == m.id)
            {
                let _ = n.net.disconnect(&ep.id).await;
                let _ = self.meta.delete_endpoint(&ep.id);
            }
            return Err(e);
        }
        self.rewrite_hosts(&c);
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect_network(&self, key: &str, body: DisconnectBody) -> Result<()> {
        let n = self.networking()?.clone();
        let m = n.find(key)?;
        let c = match self.container(&body.container) {
            Ok(c) => c,
            Err(e) => {
                if body.force {
                    // A container that is gone: drop what may be left of it.
                    for ep in n.net.endpoints_of(&m.id) {
                        if ep.container_id.starts_with(&body.container) {
                            let _ = n.net.disconnect(&ep.id).await;
                            let _ = self.meta.delete_endpoint(&ep.id);
                        }
                    }
                    return Ok(());
                }
                return Err(e);
            }
        };
        let _op = c.op.lock().await;
        let _serial = n.lock.lock().await;
        let mode = mode_of(&c.rec().host_config.network_mode);
        if matches!(mode, Mode::Host) || m.driver == "host" {
            return Err(DaemonError::BadRequest(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        let connected = c.rec().networks.contains_key(&m.name)
            || c.rec().networks.values().any(|e| e.network_id == m.id);
        if !connected {
            return Err(DaemonError::Forbidden(format!(
                "container {} is not connected to network {}",
                c.id, m.name
            )));
        }
        let eps = n.net.container_endpoints(&c.id);
        if let Some(ep) = eps.iter().find(|e| e.network_id == m.id) {
            n.net.disconnect(&ep.id).await.map_err(net_err)?;
            self.meta.delete_endpoint(&ep.id)?;
            if ep.default_route {
                if let Some(next) = eps.iter().find(|e| e.id != ep.id) {
                    if let Err(e) = n.net.set_default_route(&next.id).await {
                        tracing::warn!(id = %c.id, "moving the default route: {e}");
                    }
                }
            }
        }
        c.rec()
            .networks
            .retain(|k, e| k != &m.name && e.network_id != m.id);
        self.persist(&c)?;
        self.rewrite_hosts(&c);
        self.network_event("disconnect", &m.id, &m.name, Some(&c.id));
        Ok(())
    }

    // ---- views ----

    /// One entry of `GET /networks` (`containers`: with the endpoints, as
    /// inspect shows them).
    pub fn network_view(&self, m: &NetworkMeta, containers: bool) -> Value {
        let Ok(n) = self.networking() else {
            return Value::Null;
        };
        let ipam_config: Vec<Value> = m
            .net
            .iter()
            .flat_map(|r| r.subnets.iter())
            .map(|s| {
                let mut o =
                    json!({"Subnet": s.subnet.to_string(), "Gateway": s.gateway.to_string()});
                if let Some(r) = &s.ip_range {
                    o["IPRange"] = json!(r.to_string());
                }
                o
            })
            .collect();
        let mut ctrs = serde_json::Map::new();
        if containers {
            for ep in n.net.endpoints_of(&m.id) {
                let name = self
                    .container(&ep.container_id)
                    .map(|c| c.name())
                    .unwrap_or_default();
                ctrs.insert(
                    ep.container_id.clone(),
                    json!({
                        "Name": name,
                        "EndpointID": ep.id,
                        "MacAddress": ep.mac.to_string(),
                        "IPv4Address": ep.ipv4.map(|c| c.to_string()).unwrap_or_default(),
                        "IPv6Address": ep.ipv6.map(|c| c.to_string()).unwrap_or_default(),
                    }),
                );
            }
        }
        json!({
            "Name": m.name,
            "Id": m.id,
            "Created": m.created,
            "Scope": "local",
            "Driver": m.driver,
            "EnableIPv4": true,
            "EnableIPv6": m.enable_ipv6,
            "IPAM": {
                "Driver": if m.ipam_driver.is_empty() { "default" } else { m.ipam_driver.as_str() },
                "Options": m.ipam_options,
                "Config": ipam_config,
            },
            "Internal": m.net.as_ref().is_some_and(|r| r.internal),
            "Attachable": m.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": ctrs,
            "Options": m.options,
            "Labels": m.labels,
        })
    }

    /// `NetworkSettings` of container inspect (and the list's `Ports`).
    pub(super) fn network_settings(&self, r: &Record) -> Value {
        let n = self.networking().ok();
        let eps: Vec<EndpointRecord> = n
            .map(|n| n.net.container_endpoints(&r.id))
            .unwrap_or_default();
        let mut networks = serde_json::Map::new();
        let mut top = json!({
            "Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": false,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": {},
            "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null, "EndpointID": "",
            "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
            "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "", "Networks": {}
        });
        let running = r.state.status.is_active();
        if let Some(ns) = r.netns.as_ref().filter(|_| running) {
            top["SandboxKey"] = json!(ns.display().to_string());
            let sid = ns
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            top["SandboxID"] = json!(sid);
        }
        for (name, cfg) in &r.networks {
            let net_id = n
                .and_then(|n| n.by_name(name))
                .map(|m| m.id)
                .unwrap_or_else(|| cfg.network_id.clone());
            let ep = eps.iter().find(|e| e.network_id == net_id);
            let gateway = ep
                .and_then(|e| {
                    n.and_then(|n| n.net.network(&e.network_id))
                        .and_then(|rec| rec.ipv4().map(|s| s.gateway.to_string()))
                })
                .unwrap_or_default();
            let gateway6 = ep
                .and_then(|e| {
                    e.ipv6?;
                    n.and_then(|n| n.net.network(&e.network_id))
                        .and_then(|rec| rec.ipv6().map(|s| s.gateway.to_string()))
                })
                .unwrap_or_default();
            let ipam = if cfg.ipv4.is_some() || cfg.ipv6.is_some() {
                json!({"IPv4Address": cfg.ipv4.clone().unwrap_or_default(), "IPv6Address": cfg.ipv6.clone().unwrap_or_default()})
            } else {
                Value::Null
            };
            let dns = ep.map(|e| e.dns_names.clone()).filter(|d| !d.is_empty());
            let mac = ep
                .map(|e| e.mac.to_string())
                .or_else(|| cfg.mac.clone())
                .unwrap_or_default();
            let v = json!({
                "IPAMConfig": ipam,
                "Links": cfg.links,
                "Aliases": if cfg.aliases.is_empty() { Value::Null } else { json!(cfg.aliases) },
                "MacAddress": mac,
                "DriverOpts": cfg.driver_opts,
                "GwPriority": 0,
                "NetworkID": net_id,
                "EndpointID": ep.map(|e| e.id.clone()).unwrap_or_default(),
                "Gateway": gateway,
                "IPAddress": ep.and_then(|e| e.ipv4).map(|c| c.addr().to_string()).unwrap_or_default(),
                "IPPrefixLen": ep.and_then(|e| e.ipv4).map(|c| c.prefix()).unwrap_or(0),
                "IPv6Gateway": gateway6,
                "GlobalIPv6Address": ep.and_then(|e| e.ipv6).map(|c| c.addr().to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": ep.and_then(|e| e.ipv6).map(|c| c.prefix()).unwrap_or(0),
                "DNSNames": dns,
            });
            if name == "bridge" && ep.is_some() {
                // The deprecated top-level fields mirror the default bridge.
                for k in [
                    "EndpointID",
                    "Gateway",
                    "GlobalIPv6Address",
                    "GlobalIPv6PrefixLen",
                    "IPAddress",
                    "IPPrefixLen",
                    "IPv6Gateway",
                    "MacAddress",
                ] {
                    top[k] = v[k].clone();
                }
            }
            networks.insert(name.clone(), v);
        }
        top["Networks"] = Value::Object(networks);
        if running {
            top["Ports"] = Value::Object(ports_map(r, &eps));
        }
        top
    }

    /// The `Ports` of a list entry.
    pub(super) fn port_summaries(&self, r: &Record) -> Vec<berth_api::container::PortSummary> {
        let mut out = Vec::new();
        if !r.state.status.is_active() {
            return out;
        }
        let eps = self
            .networking()
            .map(|n| n.net.container_endpoints(&r.id))
            .unwrap_or_default();
        let mut published = std::collections::BTreeSet::new();
        for b in eps.iter().flat_map(|e| e.ports.iter()) {
            published.insert((b.container_port, b.proto.to_string()));
            out.push(berth_api::container::PortSummary {
                ip: Some(b.host_ip.to_string()),
                private_port: b.container_port,
                public_port: Some(b.host_port),
                kind: b.proto.to_string(),
            });
        }
        for key in r.config.exposed_ports.iter().flatten().map(|(k, _)| k) {
            let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            if let Ok(p) = p.parse::<u16>() {
                if !published.contains(&(p, proto.to_string())) {
                    out.push(berth_api::container::PortSummary {
                        ip: None,
                        private_port: p,
                        public_port: None,
                        kind: proto.to_string(),
                    });
                }
            }
        }
        out
    }

    /// The list entry's `NetworkSettings`.
    pub(super) fn network_summary(&self, r: &Record) -> Value {
        let full = self.network_settings(r);
        json!({"Networks": full["Networks"]})
    }

    /// The network names of a container (for `ps --filter network=`).
    pub fn container_network_names(&self, r: &Record) -> Vec<String> {
        let n = self.networking().ok();
        r.networks
            .iter()
            .flat_map(|(name, cfg)| {
                let id = n
                    .and_then(|n| n.name_of(&cfg.network_id))
                    .map(|_| cfg.network_id.clone());
                std::iter::once(name.clone()).chain(id)
            })
            .collect()
    }
}

/// `NetworkSettings.Ports`: published bindings, and exposed ports without
/// one as `null`.
fn ports_map(r: &Record, eps: &[EndpointRecord]) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for key in r.config.exposed_ports.iter().flatten().map(|(k, _)| k) {
        m.insert(normalize_port_key(key), Value::Null);
    }
    for b in eps.iter().flat_map(|e| e.ports.iter()) {
        let key = format!("{}/{}", b.container_port, b.proto);
        let entry = m.entry(key).or_insert_with(|| json!([]));
        if entry.is_null() {
            *entry = json!([]);
        }
        if let Some(a) = entry.as_array_mut() {
            a.push(json!({"HostIp": b.host_ip.to_string(), "HostPort": b.host_port.to_string()}));
        }
    }
    m
}

/// Network-level list filters (`GET /networks?filters=`).
pub fn network_matches(
    m: &NetworkMeta,
    filters: &berth_api::Filters,
    in_use: bool,
) -> Result<bool> {
    if let Some(k) =
        filters.unknown_key(&["name", "id", "driver", "label", "type", "dangling", "scope"])
    {
        return Err(DaemonError::BadRequest(format!("invalid filter '{k}'")));
    }
    let names = filters.get("name");
    if !names.is_empty() && !names.iter().any(|n| m.name.contains(n.as_str())) {
        return Ok(false);
    }
    let ids = filters.get("id");
    if !ids.is_empty() && !ids.iter().any(|i| m.id.contains(i.as_str())) {
        return Ok(false);
    }
    let drivers = filters.get("driver");
    if !drivers.is_empty() && !drivers.iter().any(|d| d == &m.driver) {
        return Ok(false);
    }
    for l in filters.get("label") {
        let ok = match l.split_once('=') {
            Some((k, v)) => m.labels.get(k).is_some_and(|x| x == v),
            None => m.labels.contains_key(l.as_str()),
        };
        if !ok {
            return Ok(false);
        }
    }
    for t in filters.get("type") {
        match t.as_str() {
            "custom" if m.is_predefined() => return Ok(false),
            "builtin" if !m.is_predefined() => return Ok(false),
            "custom" | "builtin" => {}
            other => {
                return Err(DaemonError::BadRequest(format!(
                    "invalid filter: 'type'='{other}'"
                )))
            }
        }
    }
    for s in filters.get("scope") {
        if s != "local" {
            return Ok(false);
        }
    }
    for d in filters.get("dangling") {
        let want = match d.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            other => {
                return Err(DaemonError::BadRequest(format!(
                    "invalid filter 'dangling={other}'"
                )))
            }
        };
        let dangling = !m.is_predefined() && !in_use;
        if dangling != want {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn link_variables_as_docker_writes_them() {
        let ip: IpAddr = "172.17.0.3".parse().unwrap();
        let env = super::link_env_vars(
            "web",
            "my-db",
            ip,
            &["53/udp", "5432/tcp", "80/tcp"],
            &["PATH=/bin".into(), "HOME=/root".into(), "A=b=c".into()],
        );
        assert_eq!(
            env,
            [
                "MY_DB_PORT=tcp://172.17.0.3:80",
                "MY_DB_PORT_80_TCP=tcp://172.17.0.3:80",
                "MY_DB_PORT_80_TCP_ADDR=172.17.0.3",
                "MY_DB_PORT_80_TCP_PORT=80",
                "MY_DB_PORT_80_TCP_PROTO=tcp",
                "MY_DB_PORT_5432_TCP=tcp://172.17.0.3:5432",
                "MY_DB_PORT_5432_TCP_ADDR=172.17.0.3",
                "MY_DB_PORT_5432_TCP_PORT=5432",
                "MY_DB_PORT_5432_TCP_PROTO=tcp",
                "MY_DB_PORT_53_UDP=udp://172.17.0.3:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.3",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_NAME=/web/my-db",
                "MY_DB_ENV_A=b=c",
            ]
        );
    }

    use super::*;

    #[test]
    fn modes() {
        assert_eq!(mode_of("default"), Mode::Network("bridge".into()));
        assert_eq!(mode_of("host"), Mode::Host);
        assert_eq!(mode_of("container:abc"), Mode::Container("abc".into()));
        assert_eq!(mode_of("mynet"), Mode::Network("mynet".into()));
    }

    #[test]
    fn endpoint_settings_from_the_api() {
        let v = json!({"IPAMConfig": {"IPv4Address": "172.30.0.9"}, "Aliases": ["db"], "MacAddress": "02:42:ac:1e:00:09"});
        let c = endpoint_config("n1", Some(&v)).unwrap();
        assert_eq!(c.ipv4.as_deref(), Some("172.30.0.9"));
        assert_eq!(c.aliases, vec!["db"]);
        assert_eq!(c.mac.as_deref(), Some("02:42:ac:1e:00:09"));
        let bad = json!({"IPAMConfig": {"IPv4Address": "nope"}});
        assert!(endpoint_config("n1", Some(&bad)).is_err());
    }

    #[test]
    fn links_as_given_and_as_stored() {
        let l = |s: &str| parse_link(s).unwrap();
        assert_eq!(l("db"), ("db".into(), "db".into()));
        assert_eq!(l("db:d"), ("db".into(), "d".into()));
        assert_eq!(l("/db:/web/d"), ("db".into(), "d".into()));
        assert!(parse_link(":d").is_err());
        assert!(parse_link("db:").is_err());
    }

    #[test]
    fn add_hosts() {
        let gw: IpAddr = "172.17.0.1".parse().unwrap();
        let v = extra_hosts(
            &["a:1.2.3.4".into(), "b=::1".into(), "c:host-gateway".into()],
            Some(gw),
        )
        .unwrap();
        assert_eq!(v[0], ("a".into(), "1.2.3.4".parse().unwrap()));
        assert_eq!(v[1].1, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(v[2].1, gw);
        assert!(extra_hosts(&["x:nope".into()], Some(gw)).is_err());
    }
}
