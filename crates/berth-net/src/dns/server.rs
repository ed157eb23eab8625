//! The embedded DNS server of one container: UDP and TCP on 127.0.0.11:53
//! *inside* the container's network namespace, served from the daemon's
//! tokio runtime.
//!
//! The sockets are made on a thread that has entered the container's
//! namespace (they stay bound there) and handed to tokio. Names of the
//! container's networks are answered from the shared [`DnsTable`];
//! everything else is relayed byte for byte to the upstream resolvers: those
//! read from the host's `resolv.conf` are asked from the host's namespace
//! (so a host resolver on 127.0.0.53 works, as in Docker), those given with
//! `--dns` from the container's. A container whose networks are all
//! internal gets no forwarding from the host's namespace.
//!
//! Unlike Docker, which binds a random port and DNATs 53 to it with
//! iptables inside the container, the server binds port 53 itself: no
//! firewall program runs on the start path. The cost: a process in the
//! container cannot bind 127.0.0.11:53 or 0.0.0.0:53 itself.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::message::{self as msg, BadQuery, Rdata};
use super::table::{ptr_to_ip, DnsTable, Lookup};
use crate::error::NetError;
use crate::sys::{self, NetnsRef};

/// Docker's embedded DNS address.
pub const EMBEDDED_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// How many queries may be forwarded at once per container (Docker's limit).
const MAX_FORWARDS: usize = 1024;

/// An upstream resolver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// Address and port (53 normally).
    pub addr: SocketAddr,
    /// Ask it from the host's namespace (resolvers of the host's
    /// `resolv.conf`) rather than from the container's (`--dns`).
    pub from_host: bool,
}

impl Upstream {
    /// The host's resolvers from a `resolv.conf` text, asked from the host.
    pub fn from_resolv_conf(text: &str) -> Vec<Upstream> {
        crate::files::nameservers(text)
            .into_iter()
            .map(|ip| Upstream {
                addr: SocketAddr::new(ip, 53),
                from_host: true,
            })
            .collect()
    }
}

/// Where and how a container's server runs.
#[derive(Clone, Debug)]
pub struct DnsOptions {
    /// The host's namespace (for upstreams with `from_host`).
    pub host: NetnsRef,
    /// Upstream resolvers, tried in order (at most three).
    pub upstreams: Vec<Upstream>,
    /// Listen address inside the container (127.0.0.11:53).
    pub listen: SocketAddr,
    /// How long to wait for each upstream.
    pub timeout: Duration,
}

impl DnsOptions {
    /// Docker's defaults: 127.0.0.11:53, 4 s per upstream.
    pub fn new(host: NetnsRef, upstreams: Vec<Upstream>) -> DnsOptions {
        DnsOptions {
            host,
            upstreams,
            listen: SocketAddr::new(IpAddr::V4(EMBEDDED_DNS), 53),
            timeout: Duration::from_secs(4),
        }
    }
}

/// A running server; dropping it (or [`DnsServer::stop`]) closes its
/// sockets.
pub struct DnsServer {
    netns: PathBuf,
    tasks: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// The namespace it serves.
    pub fn netns(&self) -> &Path {
        &self.netns
    }

    /// Stops serving.
    pub fn stop(self) {}
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Ctx {
    container_id: String,
    netns: NetnsRef,
    table: Arc<RwLock<DnsTable>>,
    opts: DnsOptions,
    forwards: Semaphore,
}

/// Starts the server for `container_id` in the namespace pinned at `netns`.
/// Must be called inside a tokio runtime.
pub fn serve(
    netns: &Path,
    container_id: &str,
    table: Arc<RwLock<DnsTable>>,
    opts: DnsOptions,
) -> Result<DnsServer, NetError> {
    let ns = NetnsRef::Path(netns.to_path_buf());
    let listen = opts.listen;
    let (udp, tcp) = sys::in_netns(&ns, || -> io::Result<_> {
        let u = std::net::UdpSocket::bind(listen)?;
        let t = std::net::TcpListener::bind(listen)?;
        u.set_nonblocking(true)?;
        t.set_nonblocking(true)?;
        Ok((u, t))
    })?
    .map_err(|e| NetError::io("bind DNS server 127.0.0.11:53 in", netns, e))?;
    let udp = Arc::new(
        UdpSocket::from_std(udp).map_err(|e| NetError::io("register DNS socket of", netns, e))?,
    );
    let tcp =
        TcpListener::from_std(tcp).map_err(|e| NetError::io("register DNS socket of", netns, e))?;
    let ctx = Arc::new(Ctx {
        container_id: container_id.to_string(),
        netns: ns,
        table,
        opts,
        forwards: Semaphore::new(MAX_FORWARDS),
    });
    let u = {
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65535];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                let raw = buf[..n].to_vec();
                let ctx = Arc::clone(&ctx);
                let udp = Arc::clone(&udp);
                tokio::spawn(async move {
                    if let Some(resp) = answer(&ctx, &raw, false).await {
                        let _ = udp.send_to(&resp, peer).await;
                    }
                });
            }
        })
    };
    let t = {
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = tcp.accept().await else {
                    continue;
                };
                let ctx = Arc::clone(&ctx);
                tokio::spawn(async move {
                    let _ = serve_tcp(&ctx, conn).await;
                });
            }
        })
    };
    Ok(DnsServer {
        netns: netns.to_path_buf(),
        tasks: vec![u, t],
    })
}

async fn read_framed(conn: &mut TcpStream) -> io::Result<Vec<u8>> {
    let len = conn.read_u16().await? as usize;
    let mut b = vec![0u8; len];
    conn.read_exact(&mut b).await?;
    Ok(b)
}

async fn write_framed(conn: &mut TcpStream, b: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(b.len() + 2);
    out.extend_from_slice(&(b.len().min(65535) as u16).to_be_bytes());
    out.extend_from_slice(&b[..b.len().min(65535)]);
    conn.write_all(&out).await
}

async fn serve_tcp(ctx: &Ctx, mut conn: TcpStream) -> io::Result<()> {
    loop {
        let q = match tokio::time::timeout(Duration::from_secs(10), read_framed(&mut conn)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        if let Some(resp) = answer(ctx, &q, true).await {
            write_framed(&mut conn, &resp).await?;
        }
    }
}

fn shuffle(v: &mut [Rdata]) {
    if v.len() < 2 {
        return;
    }
    let mut r = [0u8; 8];
    sys::random_bytes(&mut r);
    let k = (u64::from_le_bytes(r) % v.len() as u64) as usize;
    v.rotate_left(k);
}

/// The answer to one query (None: send nothing).
async fn answer(ctx: &Ctx, raw: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let q = match msg::parse_query(raw) {
        Ok(q) => q,
        Err(BadQuery::IsResponse) => return None,
        Err(BadQuery::NotQuery) => return msg::error_response(raw, msg::RCODE_NOTIMP),
        Err(BadQuery::Malformed) => return msg::error_response(raw, msg::RCODE_FORMERR),
    };
    let max = if tcp {
        65535
    } else {
        q.udp_size
            .map(usize::from)
            .unwrap_or(msg::MIN_UDP)
            .max(msg::MIN_UDP)
    };
    if let Some(local) = local_answer(ctx, &q) {
        let (rcode, mut data) = local;
        shuffle(&mut data);
        return Some(msg::build_response(&q, rcode, &data, max));
    }
    match forward(ctx, raw, tcp, q.id).await {
        Some(r) => Some(r),
        None => Some(msg::build_response(&q, msg::RCODE_SERVFAIL, &[], max)),
    }
}

/// Answers from the table, or None to forward.
fn local_answer(ctx: &Ctx, q: &msg::Query) -> Option<(u8, Vec<Rdata>)> {
    if q.qclass != msg::CLASS_IN {
        return None;
    }
    let table = ctx.table.read().unwrap_or_else(|p| p.into_inner());
    match q.qtype {
        msg::TYPE_A | msg::TYPE_AAAA => {
            match table.lookup(&ctx.container_id, &q.name, q.qtype == msg::TYPE_AAAA) {
                Lookup::Found(ips) => Some((
                    msg::RCODE_NOERROR,
                    ips.into_iter()
                        .map(|ip| match ip {
                            IpAddr::V4(a) => Rdata::A(a),
                            IpAddr::V6(a) => Rdata::Aaaa(a),
                        })
                        .collect(),
                )),
                Lookup::NoData => Some((msg::RCODE_NOERROR, Vec::new())),
                Lookup::NotFound => None,
            }
        }
        msg::TYPE_PTR => {
            let ip = ptr_to_ip(&q.name)?;
            table
                .reverse(&ctx.container_id, ip)
                .map(|n| (msg::RCODE_NOERROR, vec![Rdata::Ptr(n)]))
        }
        // A known name without mail exchangers: NOERROR, no answers
        // ("implicit MX", as Docker answers).
        msg::TYPE_MX => {
            let known = table.lookup(&ctx.container_id, &q.name, false) != Lookup::NotFound
                || table.lookup(&ctx.container_id, &q.name, true) != Lookup::NotFound;
            known.then(|| (msg::RCODE_NOERROR, Vec::new()))
        }
        _ => None,
    }
}

/// Relays the query to the upstreams in turn; the first answer that is not
/// SERVFAIL or REFUSED is returned as is.
async fn forward(ctx: &Ctx, raw: &[u8], tcp: bool, id: u16) -> Option<Vec<u8>> {
    let Ok(_permit) = ctx.forwards.try_acquire() else {
        return msg::error_response(raw, msg::RCODE_REFUSED);
    };
    let external = ctx
        .table
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .has_external_access(&ctx.container_id);
    for up in ctx.opts.upstreams.iter().take(3) {
        if up.from_host && !external {
            continue;
        }
        let ns = if up.from_host {
            &ctx.opts.host
        } else {
            &ctx.netns
        };
        let r = tokio::time::timeout(ctx.opts.timeout, exchange(ns, up.addr, raw, tcp, id)).await;
        let Ok(Ok(resp)) = r else {
            continue;
        };
        match msg::response_id_rcode(&resp) {
            Some((rid, rc))
                if rid == id && rc != msg::RCODE_SERVFAIL && rc != msg::RCODE_REFUSED =>
            {
                return Some(resp)
            }
            _ => continue,
        }
    }
    None
}

async fn exchange(
    ns: &NetnsRef,
    addr: SocketAddr,
    raw: &[u8],
    tcp: bool,
    id: u16,
) -> io::Result<Vec<u8>> {
    let ns_err = |e: NetError| io::Error::other(e.to_string());
    if tcp {
        let sock = sys::in_netns(ns, || {
            if addr.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
        })
        .map_err(ns_err)??;
        let mut conn = sock.connect(addr).await?;
        write_framed(&mut conn, raw).await?;
        return read_framed(&mut conn).await;
    }
    let local = if addr.is_ipv4() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    } else {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
    };
    let std_sock = sys::in_netns(ns, || std::net::UdpSocket::bind(local)).map_err(ns_err)??;
    std_sock.set_nonblocking(true)?;
    let sock = UdpSocket::from_std(std_sock)?;
    sock.connect(addr).await?;
    sock.send(raw).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        if msg::response_id_rcode(&buf[..n]).is_some_and(|(rid, _)| rid == id) {
            return Ok(buf[..n].to_vec());
        }
    }
}
