//! [`Net`]: the one object the daemon holds. It ties IPAM, the bridge
//! driver, the firewall, the embedded DNS and the namespace pool together and
//! orders their steps: each set-up undoes what it made when a later step
//! fails; each teardown goes on past failures and reports them all.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use crate::bridge::{BridgeDriver, NetworkDriver};
use crate::conntrack;
use crate::dns::{self, DnsOptions, DnsServer, DnsTable, Upstream};
use crate::error::{NetError, TeardownErrors};
use crate::files::{self, DnsOverrides};
use crate::firewall::{Firewall, FirewallDriver, NftDriver, NoFirewall};
use crate::ipam::{DefaultPool, Ipam};
use crate::model::{
    check_ifname, EndpointRecord, EndpointRequest, MacAddr, NetworkCreate, NetworkRecord,
};
use crate::netns::NetnsPool;
use crate::ports::{PortBinding, Proto};
use crate::sys::{self, NetnsRef};

/// Which way an endpoint's published ports changed.
#[derive(Clone, Copy)]
enum PortChange {
    Published,
    Unpublished,
}

/// Everything host-side that a daemon's networking is named after. Several
/// daemons run side by side when each has its own prefixes, table and run
/// root.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// The host's network namespace: `Current` for the daemon; tests point
    /// it at a throwaway namespace.
    pub host: NetnsRef,
    /// The daemon's run root: namespaces go in `<run_root>/netns/`, the
    /// firewall state in `<run_root>/net/`.
    pub run_root: PathBuf,
    /// Names of the pool's namespaces: `<netns_prefix>-<12 hex>`.
    pub netns_prefix: String,
    /// Host ends of veth pairs: `<veth_prefix><hex of endpoint id>`, 15
    /// characters in all (so at most 6 characters of prefix; e.g. `vb`).
    pub veth_prefix: String,
    /// The nftables table (`inet` family), e.g. `berth`.
    pub nft_table: String,
    /// Install nftables rules (Docker's `--iptables`); without them ports
    /// are not published and nothing is masqueraded.
    pub firewall: bool,
    /// Default address pools.
    pub pools: Vec<DefaultPool>,
    /// How many namespaces to keep ready.
    pub netns_pool_size: usize,
    /// The host's resolver configuration (`/etc/resolv.conf`).
    pub resolv_conf: PathBuf,
}

impl NetConfig {
    /// Defaults for a daemon: table `berth`, veth prefix `vb`, pool of 4,
    /// Docker's pools, `/etc/resolv.conf`.
    pub fn new(host: NetnsRef, run_root: impl Into<PathBuf>) -> NetConfig {
        NetConfig {
            host,
            run_root: run_root.into(),
            netns_prefix: "berth".into(),
            veth_prefix: "vb".into(),
            nft_table: "berth".into(),
            firewall: true,
            pools: DefaultPool::docker_defaults(),
            netns_pool_size: 4,
            resolv_conf: "/etc/resolv.conf".into(),
        }
    }
}

/// What the daemon recorded before it (re)started: its networks, the
/// endpoints of containers that still run, and every namespace still in use
/// (containers with `--network none` hold one without an endpoint).
#[derive(Clone, Copy, Debug, Default)]
pub struct NetState<'a> {
    /// Every network record.
    pub networks: &'a [NetworkRecord],
    /// Endpoints of running containers only.
    pub endpoints: &'a [EndpointRecord],
    /// Namespaces of running containers (endpoints' namespaces are added).
    pub netns_in_use: &'a [PathBuf],
}

/// The networking of one daemon.
pub struct Net {
    cfg: NetConfig,
    driver: BridgeDriver,
    ipam: Mutex<Ipam>,
    firewall: tokio::sync::Mutex<Firewall>,
    networks: RwLock<BTreeMap<String, NetworkRecord>>,
    endpoints: RwLock<BTreeMap<String, EndpointRecord>>,
    dns: Arc<RwLock<DnsTable>>,
    servers: Mutex<HashMap<String, DnsServer>>,
    host_resolv: RwLock<String>,
    pool: NetnsPool,
    /// Serializes network create/remove (name checks, subnet choice).
    network_lock: tokio::sync::Mutex<()>,
}

impl Net {
    /// Starts the daemon's networking from its records: namespaces not in
    /// use are unpinned, bridges are made again if missing (after a reboot),
    /// the nftables table is replaced in one transaction with what the
    /// records say, stale veths are deleted, DNS servers of running
    /// containers restart, and the namespace pool begins to fill.
    pub async fn open(cfg: NetConfig, state: NetState<'_>) -> Result<Net, NetError> {
        if cfg.veth_prefix.is_empty() || cfg.veth_prefix.len() > 6 {
            return Err(NetError::InvalidIfname(cfg.veth_prefix.clone()));
        }
        let mut in_use: Vec<PathBuf> = state.netns_in_use.to_vec();
        in_use.extend(state.endpoints.iter().map(|e| e.netns.clone()));
        let pool = NetnsPool::open(
            &cfg.run_root.join("netns"),
            &cfg.netns_prefix,
            cfg.netns_pool_size,
            &in_use,
        )?;
        let driver = BridgeDriver::new(cfg.host.clone())?;

        let mut ipam = Ipam::new(cfg.pools.clone());
        for n in state.networks {
            ipam.insert(&n.id, &n.subnets);
        }
        for e in state.endpoints {
            for ip in e.addresses() {
                // Two records with one address is the records' fault; the
                // daemon still starts (and says so).
                if let Err(err) = ipam.reserve(&e.network_id, ip) {
                    tracing::warn!(endpoint = %e.id, %ip, error = %err, "recorded address not reserved");
                }
            }
        }
        for n in state.networks {
            driver.setup_network(n).await?;
        }
        let fw_driver: Arc<dyn FirewallDriver> = if cfg.firewall {
            Arc::new(NftDriver::new(cfg.host.clone()))
        } else {
            Arc::new(NoFirewall)
        };
        let mut firewall = Firewall::open(
            cfg.host.clone(),
            &cfg.nft_table,
            &cfg.run_root.join("net"),
            fw_driver,
        )?;
        firewall.reconcile(state.networks, state.endpoints).await?;

        let bridges: Vec<String> = state.networks.iter().map(|n| n.bridge.clone()).collect();
        let keep: Vec<String> = state
            .endpoints
            .iter()
            .map(|e| e.host_ifname.clone())
            .collect();
        let swept = driver
            .sweep_veths(&cfg.veth_prefix, &bridges, &keep)
            .await?;
        if !swept.is_empty() {
            tracing::info!(?swept, "deleted veths of containers that are gone");
        }

        let host_resolv = std::fs::read_to_string(&cfg.resolv_conf).unwrap_or_default();
        let mut table = DnsTable::new();
        for n in state.networks {
            table.add_network(n);
        }
        for e in state.endpoints {
            table.add_endpoint(e);
        }
        let net = Net {
            driver,
            ipam: Mutex::new(ipam),
            firewall: tokio::sync::Mutex::new(firewall),
            networks: RwLock::new(
                state
                    .networks
                    .iter()
                    .map(|n| (n.id.clone(), n.clone()))
                    .collect(),
            ),
            endpoints: RwLock::new(
                state
                    .endpoints
                    .iter()
                    .map(|e| (e.id.clone(), e.clone()))
                    .collect(),
            ),
            dns: Arc::new(RwLock::new(table)),
            servers: Mutex::new(HashMap::new()),
            host_resolv: RwLock::new(host_resolv),
            pool,
            network_lock: tokio::sync::Mutex::new(()),
            cfg,
        };
        for e in state.endpoints {
            if let Err(err) = net.ensure_dns_server(e) {
                tracing::warn!(container = %e.container_id, error = %err, "cannot restart embedded DNS");
            }
        }
        net.pool.refill();
        Ok(net)
    }

    /// The configuration.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// The namespace pool: [`NetnsPool::take`] at container start,
    /// [`NetnsPool::release`] once the container is gone.
    pub fn pool(&self) -> &NetnsPool {
        &self.pool
    }

    /// A network by id.
    pub fn network(&self, id: &str) -> Option<NetworkRecord> {
        self.networks.read().expect("lock").get(id).cloned()
    }

    /// Every network.
    pub fn networks(&self) -> Vec<NetworkRecord> {
        self.networks
            .read()
            .expect("lock")
            .values()
            .cloned()
            .collect()
    }

    /// The endpoints on a network (for `network inspect`'s Containers).
    pub fn endpoints_of(&self, network_id: &str) -> Vec<EndpointRecord> {
        self.endpoints
            .read()
            .expect("lock")
            .values()
            .filter(|e| e.network_id == network_id)
            .cloned()
            .collect()
    }

    /// The endpoints of a container.
    pub fn container_endpoints(&self, container_id: &str) -> Vec<EndpointRecord> {
        self.endpoints
            .read()
            .expect("lock")
            .values()
            .filter(|e| e.container_id == container_id)
            .cloned()
            .collect()
    }

    /// Re-reads the host's `resolv.conf` (upstreams of DNS servers started
    /// from now on; the daemon calls it when the file changes).
    pub fn reload_resolv_conf(&self) {
        let text = std::fs::read_to_string(&self.cfg.resolv_conf).unwrap_or_default();
        *self.host_resolv.write().expect("lock") = text;
    }

    /// Creates a network: subnet and gateway (from the request or the
    /// default pools, avoiding host routes), the bridge, its firewall
    /// chains, its DNS table. Returns the record to store.
    pub async fn create_network(&self, req: &NetworkCreate) -> Result<NetworkRecord, NetError> {
        check_ifname(&req.bridge)?;
        let _serial = self.network_lock.lock().await;
        {
            let nets = self.networks.read().expect("lock");
            if nets.values().any(|n| n.name == req.name) {
                return Err(NetError::NetworkExists(req.name.clone()));
            }
            if nets.contains_key(&req.id) || nets.values().any(|n| n.bridge == req.bridge) {
                return Err(NetError::NetworkExists(req.name.clone()));
            }
        }
        let host_resolv = self.host_resolv.read().expect("lock").clone();
        let reserved = self.driver.reserved_prefixes(&host_resolv).await?;
        let rec = {
            let mut ipam = self.ipam.lock().expect("lock");
            let subnets = ipam.plan(&req.id, &req.ipam, req.enable_ipv6, &reserved)?;
            let rec = NetworkRecord {
                id: req.id.clone(),
                name: req.name.clone(),
                bridge: req.bridge.clone(),
                subnets,
                internal: req.internal,
                dns: req.dns,
                icc: req.icc,
                mtu: req.mtu,
            };
            self.driver.validate(&rec)?;
            ipam.insert(&rec.id, &rec.subnets);
            rec
        };
        if let Err(e) = self.driver.setup_network(&rec).await {
            self.ipam.lock().expect("lock").remove(&rec.id);
            return Err(e);
        }
        if let Err(e) = self.firewall.lock().await.add_network(&rec).await {
            let _ = self.driver.teardown_network(&rec).await;
            self.ipam.lock().expect("lock").remove(&rec.id);
            return Err(e);
        }
        self.dns.write().expect("lock").add_network(&rec);
        self.networks
            .write()
            .expect("lock")
            .insert(rec.id.clone(), rec.clone());
        Ok(rec)
    }

    /// Removes a network without endpoints: its firewall chains, bridge,
    /// addresses and names. Goes on past failures and reports them all.
    pub async fn remove_network(&self, network_id: &str) -> Result<(), NetError> {
        let _serial = self.network_lock.lock().await;
        let rec = self
            .network(network_id)
            .ok_or_else(|| NetError::NetworkNotFound(network_id.to_string()))?;
        if !self.endpoints_of(network_id).is_empty() {
            return Err(NetError::NetworkInUse {
                name: rec.name,
                id: rec.id,
            });
        }
        let mut errs = TeardownErrors::default();
        errs.note(self.firewall.lock().await.remove_network(network_id).await);
        errs.note(self.driver.teardown_network(&rec).await);
        self.ipam.lock().expect("lock").remove(network_id);
        self.dns.write().expect("lock").remove_network(network_id);
        self.networks.write().expect("lock").remove(network_id);
        errs.into_result()
    }

    fn veth_name(&self, endpoint_id: &str) -> String {
        let room = 15 - self.cfg.veth_prefix.len();
        let hex: String = endpoint_id
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .take(room)
            .collect();
        let hex = if hex.len() == room {
            hex
        } else {
            sys::random_hex(room)
        };
        format!("{}{}", self.cfg.veth_prefix, hex.to_ascii_lowercase())
    }

    /// Connects a container (its namespace `req.netns`) to a network: an
    /// address (`--ip` or the next free one), the veth pair, address and
    /// default route inside, published ports, DNS names and the container's
    /// DNS server. Returns the endpoint record to store while the container
    /// runs. Nothing is left behind on error.
    pub async fn connect(
        &self,
        network_id: &str,
        req: &EndpointRequest,
    ) -> Result<EndpointRecord, NetError> {
        let net = self
            .network(network_id)
            .ok_or_else(|| NetError::NetworkNotFound(network_id.to_string()))?;
        check_ifname(&req.ifname)?;
        let (ipv4, ipv6) = {
            let mut ipam = self.ipam.lock().expect("lock");
            let v4 = ipam.allocate(network_id, false, req.ipv4.map(IpAddr::V4))?;
            let v6 = if net.ipv6().is_some() {
                match ipam.allocate(network_id, true, req.ipv6.map(IpAddr::V6)) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        ipam.release(network_id, v4.addr());
                        return Err(e);
                    }
                }
            } else {
                None
            };
            (v4, v6)
        };
        let release = || {
            let mut ipam = self.ipam.lock().expect("lock");
            ipam.release(network_id, ipv4.addr());
            if let Some(a) = ipv6 {
                ipam.release(network_id, a.addr());
            }
        };
        let mac = req.mac.unwrap_or_else(|| match ipv4.addr() {
            IpAddr::V4(a) => MacAddr::from_ipv4(a),
            IpAddr::V6(_) => MacAddr::random(),
        });
        let mut rec = EndpointRecord {
            id: req.id.clone(),
            network_id: network_id.to_string(),
            container_id: req.container_id.clone(),
            netns: req.netns.clone(),
            ifname: req.ifname.clone(),
            host_ifname: self.veth_name(&req.id),
            mac,
            ipv4: Some(ipv4),
            ipv6,
            default_route: req.default_route && !net.internal,
            dns_names: req.dns_names.clone(),
            ports: Vec::new(),
            dns_servers: req.dns_servers.clone(),
        };

        // Published ports: chosen and installed under the firewall lock so
        // that two starts never pick the same port.
        let publish = !net.internal && !req.ports.is_empty();
        let mut fw = if publish {
            Some(self.firewall.lock().await)
        } else {
            None
        };
        if let Some(fw) = fw.as_mut() {
            match fw.choose_ports(&req.ports) {
                Ok(p) => rec.ports = p,
                Err(e) => {
                    release();
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.driver.setup_endpoint(&net, &rec).await {
            release();
            return Err(e);
        }
        if let Some(fw) = fw.as_mut() {
            if let Err(e) = fw.add_endpoint(&rec).await {
                let _ = self.driver.teardown_endpoint(&net, &rec).await;
                release();
                return Err(e);
            }
        }
        drop(fw);
        if publish {
            self.forget_udp_flows(&rec, PortChange::Published);
        }
        if net.dns {
            self.dns.write().expect("lock").add_endpoint(&rec);
            if let Err(e) = self.ensure_dns_server(&rec) {
                self.dns.write().expect("lock").remove_endpoint(&rec.id);
                if publish {
                    let _ = self.firewall.lock().await.remove_endpoint(&rec.id).await;
                }
                let _ = self.driver.teardown_endpoint(&net, &rec).await;
                release();
                return Err(e);
            }
        }
        self.endpoints
            .write()
            .expect("lock")
            .insert(rec.id.clone(), rec.clone());
        Ok(rec)
    }

    /// Deletes the tracked UDP flows that would bypass a change of an
    /// endpoint's published UDP ports (see [`conntrack`]): once published,
    /// the flows to those host ports tracked before (to a container that is
    /// gone, or to the host itself); once unpublished, the flows that were
    /// forwarded into this endpoint. A failure costs only the stale flows:
    /// logged, not returned.
    fn forget_udp_flows(&self, ep: &EndpointRecord, change: PortChange) {
        let udp: Vec<PortBinding> = ep
            .ports
            .iter()
            .filter(|p| p.proto == Proto::Udp)
            .copied()
            .collect();
        let Some(IpAddr::V4(ctr)) = ep.ipv4.map(|c| c.addr()) else {
            return;
        };
        if udp.is_empty() || !self.cfg.firewall {
            return;
        }
        let doomed = |f: &conntrack::Flow| {
            if f.orig.proto != conntrack::UDP {
                return false;
            }
            match change {
                PortChange::Published => {
                    f.reply.src != Some(ctr)
                        && udp.iter().any(|p| {
                            f.orig.dport == p.host_port
                                && f.orig.dst.is_some_and(|d| {
                                    (p.host_ip.is_unspecified() || p.host_ip == IpAddr::V4(d))
                                        && conntrack::is_local(d)
                                })
                        })
                }
                PortChange::Unpublished => {
                    f.reply.src == Some(ctr)
                        && udp.iter().any(|p| f.reply.sport == p.container_port)
                }
            }
        };
        match sys::in_netns(&self.cfg.host, || conntrack::delete_flows(doomed)) {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::debug!(endpoint = %ep.id, n, "forgot stale UDP flows"),
            Ok(Err(e)) => tracing::warn!(endpoint = %ep.id, "forgetting stale UDP flows: {e}"),
            Err(e) => tracing::warn!(endpoint = %ep.id, "forgetting stale UDP flows: {e}"),
        }
    }

    fn ensure_dns_server(&self, ep: &EndpointRecord) -> Result<(), NetError> {
        if !self.dns.read().expect("lock").serves(&ep.container_id) {
            return Ok(());
        }
        let mut servers = self.servers.lock().expect("lock");
        if servers.contains_key(&ep.container_id) {
            return Ok(());
        }
        let upstreams = if ep.dns_servers.is_empty() {
            Upstream::from_resolv_conf(&self.host_resolv.read().expect("lock"))
        } else {
            ep.dns_servers
                .iter()
                .map(|ip| Upstream {
                    addr: SocketAddr::new(*ip, 53),
                    from_host: false,
                })
                .collect()
        };
        let server = dns::serve(
            &ep.netns,
            &ep.container_id,
            Arc::clone(&self.dns),
            DnsOptions::new(self.cfg.host.clone(), upstreams),
        )?;
        servers.insert(ep.container_id.clone(), server);
        Ok(())
    }

    /// Disconnects an endpoint (`network disconnect` on a running
    /// container): DNS names (and the DNS server with the last of them),
    /// published ports, the veth pair, the addresses. Goes on past failures
    /// and reports them all. An unknown endpoint is not an error.
    pub async fn disconnect(&self, endpoint_id: &str) -> Result<(), NetError> {
        self.disconnect_inner(endpoint_id, true).await
    }

    async fn disconnect_inner(
        &self,
        endpoint_id: &str,
        wait_for_link: bool,
    ) -> Result<(), NetError> {
        let Some(rec) = self.endpoints.write().expect("lock").remove(endpoint_id) else {
            return Ok(());
        };
        let mut errs = TeardownErrors::default();
        {
            let mut t = self.dns.write().expect("lock");
            t.remove_endpoint(endpoint_id);
            if !t.serves(&rec.container_id) {
                self.servers.lock().expect("lock").remove(&rec.container_id);
            }
        }
        if !rec.ports.is_empty() {
            errs.note(
                self.firewall
                    .lock()
                    .await
                    .remove_endpoint(endpoint_id)
                    .await,
            );
            self.forget_udp_flows(&rec, PortChange::Unpublished);
        }
        if let Some(net) = self.network(&rec.network_id) {
            if wait_for_link {
                errs.note(self.driver.teardown_endpoint(&net, &rec).await);
            } else {
                // Deleting a veth holds the RTNL lock through an RCU grace
                // period (~20 ms here), which would stall the next start.
                // The container's namespace is being unpinned, and the
                // kernel deletes the pair with it, batched with other
                // namespaces. Should something still pin the namespace, the
                // veth is deleted explicitly a few seconds later.
                let fut = self.driver.teardown_endpoint_owned(net, rec.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    if let Err(e) = fut.await {
                        tracing::warn!(error = %e, "deleting a leftover veth failed");
                    }
                });
            }
        }
        let mut ipam = self.ipam.lock().expect("lock");
        for ip in rec.addresses() {
            ipam.release(&rec.network_id, ip);
        }
        drop(ipam);
        errs.into_result()
    }

    /// Releases a container's networking when it stops: every endpoint
    /// (names, ports, addresses; the veth pairs are deleted in the
    /// background) and its namespace. Goes on past failures and reports
    /// them all.
    pub async fn release_container(
        &self,
        container_id: &str,
        netns: &std::path::Path,
    ) -> Result<(), NetError> {
        let mut errs = TeardownErrors::default();
        for e in self.container_endpoints(container_id) {
            errs.note(self.disconnect_inner(&e.id, false).await);
        }
        self.servers.lock().expect("lock").remove(container_id);
        errs.note(self.pool.release(netns));
        errs.into_result()
    }

    /// Moves a container's default route to `endpoint_id`'s gateway (after
    /// the network that carried it was disconnected).
    pub async fn set_default_route(&self, endpoint_id: &str) -> Result<(), NetError> {
        let mut rec = self
            .endpoints
            .read()
            .expect("lock")
            .get(endpoint_id)
            .cloned()
            .ok_or_else(|| NetError::EndpointNotFound(endpoint_id.to_string()))?;
        let net = self
            .network(&rec.network_id)
            .ok_or_else(|| NetError::NetworkNotFound(rec.network_id.clone()))?;
        if net.internal {
            return Ok(());
        }
        self.driver.set_default_route(&net, &rec).await?;
        rec.default_route = true;
        self.endpoints
            .write()
            .expect("lock")
            .insert(rec.id.clone(), rec);
        Ok(())
    }

    /// The `/etc/resolv.conf` for a container whose first network is
    /// `network_id` (`None`: the default bridge rules), as Docker writes it.
    pub fn resolv_conf(&self, network_id: Option<&str>, overrides: &DnsOverrides) -> String {
        let host = self.host_resolv.read().expect("lock").clone();
        let src = self.cfg.resolv_conf.display().to_string();
        let net = network_id.and_then(|id| self.network(id));
        match net {
            Some(n) if n.dns => files::resolv_conf_internal(&host, &src, overrides).0,
            Some(n) => files::resolv_conf_legacy(&host, &src, overrides, n.ipv6().is_some()),
            None => files::resolv_conf_legacy(&host, &src, overrides, false),
        }
    }

    /// Removes everything this daemon made on the host: the nftables
    /// table, every bridge, the prepared namespaces and their directory.
    /// The records stay, and the next [`Net::open`] makes it all again:
    /// for a daemon that stops with no container running, so that nothing
    /// of it is left behind. Goes on past failures and reports them all.
    pub async fn teardown_host(&self) -> Result<(), NetError> {
        let mut errs = TeardownErrors::default();
        errs.note(self.firewall.lock().await.delete_table().await);
        for n in self.networks() {
            errs.note(self.driver.teardown_network(&n).await);
        }
        errs.note(self.pool.close());
        errs.into_result()
    }

    /// Stops the DNS servers and unpins the unused prepared namespaces.
    /// Networks, veths and rules stay: containers keep their connectivity
    /// while the daemon is down ([`Net::open`] picks them up again).
    pub fn shutdown(&self) -> Result<(), NetError> {
        self.servers.lock().expect("lock").clear();
        self.pool.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daemon shares one `Net` between tasks and spawns its futures.
    #[allow(dead_code)]
    fn futures_are_send(net: &Net, req: &EndpointRequest, create: &NetworkCreate) {
        fn send<T: Send>(_: &T) {}
        fn sync<T: Send + Sync>() {}
        sync::<Net>();
        send(&net.connect("n", req));
        send(&net.disconnect("e"));
        send(&net.create_network(create));
        send(&net.remove_network("n"));
        send(&net.release_container("c", std::path::Path::new("/x")));
        send(&net.set_default_route("e"));
        send(&Net::open(
            NetConfig::new(NetnsRef::Current, "/x"),
            NetState::default(),
        ));
    }
}
