//! Helpers for root tests. Every test makes its own "host" network namespace
//! (`ip netns add berth-test-<random>`) and works only inside it and in
//! container namespaces it makes; guards delete them all, even on failure.
//! Traffic goes only to addresses inside those namespaces.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use berth_net::{EndpointRequest, Net, NetConfig, NetState, NetnsRef, NetworkCreate};

/// Fails loudly unless root (these tests need the real kernel).
pub(crate) fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "berth-net's root tests need root (CAP_NET_ADMIN, CAP_SYS_ADMIN)"
    );
}

pub(crate) fn rand_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect::<String>()[..n].to_string()
}

/// `cmd args…`, panicking with its stderr on failure; returns stdout.
pub(crate) fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A throwaway network namespace standing for the host.
pub(crate) struct TestNs {
    pub(crate) name: String,
}

impl TestNs {
    pub(crate) fn new() -> TestNs {
        require_root();
        let name = format!("berth-test-{}", rand_hex(8));
        sh("ip", &["netns", "add", &name]);
        sh("ip", &["-n", &name, "link", "set", "lo", "up"]);
        TestNs { name }
    }

    pub(crate) fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    pub(crate) fn as_ref(&self) -> NetnsRef {
        NetnsRef::Path(self.path())
    }

    /// Runs a command inside the namespace.
    pub(crate) fn run(&self, cmd: &str, args: &[&str]) -> String {
        let mut a = vec!["netns", "exec", &self.name, cmd];
        a.extend_from_slice(args);
        sh("ip", &a)
    }

    /// Gives the "host" an address of its own on a dummy interface.
    pub(crate) fn add_address(&self, cidr: &str) {
        // (No dummy driver on every kernel: a veth pair whose far end
        // stays in the same namespace does as well.)
        sh(
            "ip",
            &[
                "-n", &self.name, "link", "add", "hostif0", "type", "veth", "peer", "name",
                "hostif1",
            ],
        );
        sh(
            "ip",
            &["-n", &self.name, "addr", "add", cidr, "dev", "hostif0"],
        );
        sh("ip", &["-n", &self.name, "link", "set", "hostif1", "up"]);
        sh("ip", &["-n", &self.name, "link", "set", "hostif0", "up"]);
    }

    /// The links once background deletions are done (up to 3 s).
    pub(crate) fn links_settled(&self, want: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let l = self.links();
            if l.len() <= want || std::time::Instant::now() > deadline {
                return l;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Names of the links in the namespace.
    pub(crate) fn links(&self) -> Vec<String> {
        let j = sh("ip", &["-n", &self.name, "-j", "link", "show"]);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect()
    }

    /// `nft -j list table inet <table>` inside, or None if there is none.
    pub(crate) fn nft_table(&self, table: &str) -> Option<serde_json::Value> {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "nft", "-j", "list", "table", "inet", table,
            ])
            .output()
            .unwrap();
        if !out.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).unwrap())
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The rules of a listed table.
pub(crate) fn rules(table: &serde_json::Value) -> Vec<serde_json::Value> {
    table["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("rule").cloned())
        .collect()
}

/// Whether a listed rule DNATs.
pub(crate) fn is_dnat_rule(r: &serde_json::Value) -> bool {
    r["expr"]
        .as_array()
        .is_some_and(|e| e.iter().any(|x| x.get("dnat").is_some()))
}

/// The chains of a listed table.
pub(crate) fn chains(table: &serde_json::Value) -> Vec<String> {
    table["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| {
            o.get("chain")
                .map(|c| c["name"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Runs `f` on a thread inside the namespace pinned at `ns`.
pub(crate) fn in_ns<R: Send + 'static>(ns: &Path, f: impl FnOnce() -> R + Send + 'static) -> R {
    let file = std::fs::File::open(ns).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// Stops a test server when dropped (its socket would otherwise keep the
/// container's namespace alive).
pub(crate) struct Server(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A TCP server inside `ns` answering every connection with `reply`.
/// Returns once it listens; serves until the guard is dropped.
#[must_use]
pub(crate) fn tcp_server(ns: &Path, addr: SocketAddr, reply: &'static str) -> Server {
    let l = in_ns(ns, move || TcpListener::bind(addr).unwrap());
    l.set_nonblocking(true).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            match l.accept() {
                Ok((mut c, _)) => {
                    use std::io::Write;
                    let _ = c.write_all(reply.as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server(stop)
}

/// A UDP echo server inside `ns` (prefixes `reply` to what it got), until
/// the guard is dropped.
#[must_use]
pub(crate) fn udp_server(ns: &Path, addr: SocketAddr, reply: &'static str) -> Server {
    let s = in_ns(ns, move || UdpSocket::bind(addr).unwrap());
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((n, peer)) = s.recv_from(&mut buf) {
                let mut out = reply.as_bytes().to_vec();
                out.extend_from_slice(&buf[..n]);
                let _ = s.send_to(&out, peer);
            }
        }
    });
    Server(stop)
}

/// Connects from inside `ns` and reads what the server says (None when the
/// connection fails or times out).
pub(crate) fn tcp_get(ns: &Path, addr: SocketAddr) -> Option<String> {
    in_ns(ns, move || {
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_millis(1500)).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut s = String::new();
        use std::io::Read;
        c.read_to_string(&mut s).ok()?;
        Some(s)
    })
}

/// Sends one datagram from inside `ns` and waits for the answer.
pub(crate) fn udp_ask(ns: &Path, addr: SocketAddr, msg: &'static str) -> Option<String> {
    in_ns(ns, move || {
        let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let s = UdpSocket::bind(any).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        s.send_to(msg.as_bytes(), addr).ok()?;
        let mut buf = [0u8; 1500];
        let (n, _) = s.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
}

pub(crate) fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A daemon's networking inside a test "host": its own run root, table,
/// prefixes. Dropping it unpins every namespace it made and unmounts the
/// run root's netns directory (the host namespace guard removes the rest).
pub(crate) struct TestNet {
    pub(crate) host: TestNs,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) net: Option<Arc<Net>>,
    pub(crate) table: String,
}

impl TestNet {
    pub(crate) fn config(host: &TestNs, dir: &Path, table: &str) -> NetConfig {
        let mut cfg = NetConfig::new(host.as_ref(), dir.join("run"));
        cfg.nft_table = table.to_string();
        cfg.netns_prefix = "ctr".into();
        cfg.veth_prefix = "vbt".into();
        cfg.netns_pool_size = 1;
        cfg.resolv_conf = dir.join("resolv.conf");
        cfg
    }

    pub(crate) async fn new() -> TestNet {
        Self::with_resolv("nameserver 127.0.0.1\n").await
    }

    pub(crate) async fn with_resolv(resolv: &str) -> TestNet {
        let host = TestNs::new();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("resolv.conf"), resolv).unwrap();
        let table = format!("berth-t{}", rand_hex(6));
        let cfg = Self::config(&host, dir.path(), &table);
        let net = Net::open(cfg, NetState::default()).await.unwrap();
        TestNet {
            host,
            dir,
            net: Some(Arc::new(net)),
            table,
        }
    }

    pub(crate) fn net(&self) -> &Net {
        self.net.as_ref().unwrap()
    }

    pub(crate) async fn network(
        &self,
        name: &str,
        subnet: Option<&str>,
        internal: bool,
        dns: bool,
    ) -> berth_net::NetworkRecord {
        let id = format!("{}{}", rand_hex(12), "0".repeat(52));
        let req = NetworkCreate {
            id: id.clone(),
            name: name.into(),
            bridge: format!("br-{}", &id[..12]),
            ipam: subnet
                .map(|s| {
                    vec![berth_net::IpamRequest {
                        subnet: Some(s.into()),
                        ..Default::default()
                    }]
                })
                .unwrap_or_default(),
            enable_ipv6: false,
            internal,
            dns,
            icc: true,
            mtu: None,
        };
        self.net().create_network(&req).await.unwrap()
    }

    /// A container: a namespace from the pool plus an endpoint request.
    pub(crate) fn container(&self, name: &str) -> EndpointRequest {
        let netns = self.net().pool().take().unwrap();
        EndpointRequest {
            id: rand_hex(64),
            container_id: format!("{name}-{}", rand_hex(8)),
            netns,
            ifname: "eth0".into(),
            default_route: true,
            dns_names: vec![name.to_string()],
            ..Default::default()
        }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let run = self.dir.path().join("run").join("netns");
        if let Ok(rd) = std::fs::read_dir(&run) {
            for e in rd.flatten() {
                let _ = berth_net::remove_netns(&e.path());
            }
        }
        let _ = nix::mount::umount2(&run, nix::mount::MntFlags::MNT_DETACH);
    }
}
