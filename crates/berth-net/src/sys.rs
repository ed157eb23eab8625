//! Kernel calls: namespaces, mounts, sysctls, socket probes and the `nft`
//! binary. Everything that must happen inside another network namespace
//! runs on a short-lived thread that `setns()`es there first: a network
//! namespace is a per-thread attribute, so the daemon's own threads never
//! leave the host's namespace, and sockets (and child processes) made on
//! that thread stay bound to the namespace they were made in.

use std::fs::{self, File};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use serde::{Deserialize, Serialize};

use crate::error::NetError;
use crate::ports::Proto;

/// A network namespace by reference: the calling process's own (the host's,
/// for the daemon) or a file that pins one (`/proc/<pid>/ns/net`, a
/// bind-mounted `<run-root>/netns/<name>`, `/run/netns/<name>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetnsRef {
    /// The namespace the daemon itself runs in.
    Current,
    /// The namespace pinned by this file.
    Path(PathBuf),
}

impl NetnsRef {
    /// A reference by path.
    pub fn path(p: impl Into<PathBuf>) -> NetnsRef {
        NetnsRef::Path(p.into())
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            NetnsRef::Current => "the host's network namespace".to_string(),
            NetnsRef::Path(p) => p.display().to_string(),
        }
    }
}

/// Runs `f` in the network namespace `ns` (on a fresh thread unless `ns` is
/// the current one) and returns its result.
pub(crate) fn in_netns<R: Send>(
    ns: &NetnsRef,
    f: impl FnOnce() -> R + Send,
) -> Result<R, NetError> {
    match ns {
        NetnsRef::Current => Ok(f()),
        NetnsRef::Path(p) => {
            let file = File::open(p).map_err(|e| NetError::io("open network namespace", p, e))?;
            std::thread::scope(|s| {
                s.spawn(move || {
                    setns(&file, CloneFlags::CLONE_NEWNET)
                        .map_err(|e| NetError::io("enter network namespace", p, e.into()))?;
                    Ok(f())
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        }
    }
}

/// Opens the file that pins a namespace (for `IFLA_NET_NS_FD`).
pub(crate) fn open_netns(p: &Path) -> Result<File, NetError> {
    File::open(p).map_err(|e| NetError::io("open network namespace", p, e))
}

/// Makes `dir` a shared mount point (bind-mounting it on itself first if it
/// is not one), as `ip netns` does for `/run/netns`: unmounting a namespace
/// file then also reaches copies in mount namespaces made since.
pub(crate) fn make_shared_mount_dir(dir: &Path) -> Result<(), NetError> {
    fs::create_dir_all(dir).map_err(|e| NetError::io("create directory", dir, e))?;
    let shared = |d: &Path| {
        mount(
            None::<&str>,
            d,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    // mountinfo also lists mounts hidden under a later one (a tmpfs over
    // the run root): EINVAL then means "not a mount point here after all".
    if is_mount_point(dir) {
        match shared(dir) {
            Err(nix::errno::Errno::EINVAL) => {}
            r => return r.map_err(|e| NetError::io("make shared mount", dir, e.into())),
        }
    }
    mount(
        Some(dir),
        dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| NetError::io("bind-mount directory on itself", dir, e.into()))?;
    shared(dir).map_err(|e| NetError::io("make shared mount", dir, e.into()))
}

/// Whether `dir` is listed as a mount point of this mount namespace.
pub(crate) fn is_mount_point(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = dir.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape_mountinfo(mp) == want)
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Unmounts a directory made by [`make_shared_mount_dir`] (tests, shutdown).
pub(crate) fn unmount_dir(dir: &Path) -> Result<(), NetError> {
    umount2(dir, MntFlags::MNT_DETACH).map_err(|e| NetError::io("unmount", dir, e.into()))
}

/// Creates a new network namespace pinned by a bind mount at `path`, with
/// its loopback interface up.
pub(crate) fn create_netns(path: &Path) -> Result<(), NetError> {
    File::create(path).map_err(|e| NetError::io("create netns file", path, e))?;
    let made = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), NetError> {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetError::io("unshare network namespace", path, e.into()))?;
            link_up_blocking(1).map_err(|e| NetError::io("bring up loopback in", path, e))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| NetError::io("bind-mount network namespace", path, e.into()))
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    if made.is_err() {
        let _ = fs::remove_file(path);
    }
    made
}

/// Unpins a namespace made by [`create_netns`] and removes its file. A file
/// that is already gone is fine.
pub(crate) fn remove_netns(path: &Path) -> Result<(), NetError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(NetError::io("unmount network namespace", path, e.into())),
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(NetError::io("remove netns file", path, e))
        }
        _ => Ok(()),
    }
}

/// `ip link set dev <index> up` over a blocking netlink socket, in the
/// calling thread's namespace (no async runtime needed).
fn link_up_blocking(index: u32) -> io::Result<()> {
    use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};
    use rtnetlink::packet_route::link::{LinkFlags, LinkMessage};
    use rtnetlink::packet_route::RouteNetlinkMessage;
    use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr as NlAddr};

    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::SetLink(msg));
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    req.header.sequence_number = 1;
    req.finalize();
    let mut buf = vec![0u8; req.buffer_len()];
    req.serialize(&mut buf);
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&NlAddr::new(0, 0))?;
    sock.send(&buf, 0)?;
    let (resp, _) = sock.recv_from_full()?;
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&resp)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    match msg.payload {
        NetlinkPayload::Error(e) if e.code.is_some() => Err(e.to_io()),
        _ => Ok(()),
    }
}

/// Writes a sysctl under `/proc/sys` inside `ns` (`/proc/sys/net` shows the
/// namespace of the thread that opens it). `key` is slash-separated
/// (`net/ipv4/conf/<ifname>/route_localnet`: interface names may hold dots).
pub(crate) fn write_sysctl(ns: &NetnsRef, key: &str, value: &str) -> Result<(), NetError> {
    let path = PathBuf::from("/proc/sys").join(key);
    in_netns(ns, || fs::write(&path, value))?.map_err(|e| NetError::io("write sysctl", &path, e))
}

/// Reads a sysctl inside `ns` (`key` slash-separated).
pub(crate) fn read_sysctl(ns: &NetnsRef, key: &str) -> Result<String, NetError> {
    let path = PathBuf::from("/proc/sys").join(key);
    in_netns(ns, || fs::read_to_string(&path))?
        .map(|s| s.trim().to_string())
        .map_err(|e| NetError::io("read sysctl", &path, e))
}

/// Whether a socket can be bound to `ip:port` in `ns` right now (nothing
/// listens there). The socket is closed at once.
pub(crate) fn port_is_free(proto: Proto, ip: IpAddr, port: u16) -> bool {
    let addr = SocketAddr::new(ip, port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr).is_ok(),
        Proto::Udp => UdpSocket::bind(addr).is_ok(),
    }
}

/// Runs `nft -j -f -` inside `ns` with `input` as one transaction and
/// returns stdout.
pub(crate) fn run_nft(ns: &NetnsRef, args: &[&str], input: &str) -> Result<String, String> {
    let out = in_netns(ns, || {
        let mut child = Command::new("nft")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes())?;
        }
        child.wait_with_output()
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot run nft (install the nftables package): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Fills `buf` with random bytes.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the kernel's random source");
}

/// `n` random hex digits.
pub(crate) fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    random_bytes(&mut b);
    let mut s: String = b.iter().map(|x| format!("{x:02x}")).collect();
    s.truncate(n);
    s
}
