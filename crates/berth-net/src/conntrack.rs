//! Forgetting stale UDP flows in the kernel's connection tracking (ctnetlink).
//!
//! A UDP "connection" is tracked, NAT included, for as long as datagrams keep
//! coming (30 s after the last one, 120 s once answered). A client that keeps
//! its source port (a resolver, a syslog sender) would keep hitting the NAT
//! of a container that is gone, or a flow tracked before the port was
//! published at all, and never reach the new container. Docker deletes such
//! entries when it publishes or unpublishes a UDP port; so does berth.
//!
//! Only what berth needs: dump the IPv4 table, delete entries by their
//! original tuple. The raw netlink messages are built and read here (no
//! ctnetlink crate in the tree).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    bind, recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
    SockFlag, SockProtocol, SockType,
};
use nix::sys::time::TimeVal;

const NLMSG_HDRLEN: usize = 16;
const NFGEN_LEN: usize = 4;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_F_NESTED: u16 = 1 << 15;
const NLA_TYPE_MASK: u16 = 0x3fff;

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;

/// IPPROTO_UDP.
pub(crate) const UDP: u8 = 17;
const AF_INET: u8 = 2;
const ENOENT: i32 = 2;

/// One direction of a tracked flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tuple {
    pub(crate) src: Option<Ipv4Addr>,
    pub(crate) dst: Option<Ipv4Addr>,
    pub(crate) proto: u8,
    pub(crate) sport: u16,
    pub(crate) dport: u16,
}

/// A tracked IPv4 flow: as it came (`orig`) and as answers return
/// (`reply`; after DNAT its source is the container).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flow {
    pub(crate) orig: Tuple,
    pub(crate) reply: Tuple,
    /// The `CTA_TUPLE_ORIG` attribute as the kernel sent it: what a delete
    /// names the entry by.
    raw_orig: Vec<u8>,
}

/// Deletes the IPv4 flows `doomed` picks, in the network namespace of the
/// calling thread; returns how many went. An entry that went away
/// meanwhile is not an error.
pub(crate) fn delete_flows(doomed: impl Fn(&Flow) -> bool) -> io::Result<usize> {
    let sock = open()?;
    let flows = dump(&sock)?;
    let mut n = 0;
    for (seq, f) in (2u32..).zip(flows.iter().filter(|f| doomed(f))) {
        let mut attrs = Vec::new();
        put_attr(&mut attrs, CTA_TUPLE_ORIG | NLA_F_NESTED, &f.raw_orig);
        let msg = message(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, seq, &attrs);
        send(&sock, &msg)?;
        match read_ack(&sock, seq) {
            Ok(()) => n += 1,
            Err(e) if e.raw_os_error() == Some(ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn open() -> io::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    // Never hang a container start on the kernel.
    setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(2, 0))?;
    Ok(fd)
}

fn send(sock: &OwnedFd, msg: &[u8]) -> io::Result<()> {
    sendto(
        sock.as_raw_fd(),
        msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    Ok(())
}

fn message(kind: u16, flags: u16, seq: u32, attrs: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + NFGEN_LEN + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | kind).to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: family, version 0, resource id 0.
    m.extend_from_slice(&[AF_INET, 0, 0, 0]);
    m.extend_from_slice(attrs);
    m
}

fn put_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    buf.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(align4(buf.len()), 0);
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The netlink messages in one datagram: (type, seq, payload).
fn messages(buf: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    let mut off = 0;
    std::iter::from_fn(move || {
        let hdr = buf.get(off..off + NLMSG_HDRLEN)?;
        let len = u32::from_ne_bytes(hdr[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            return None;
        }
        let kind = u16::from_ne_bytes(hdr[4..6].try_into().ok()?);
        let seq = u32::from_ne_bytes(hdr[8..12].try_into().ok()?);
        let payload = &buf[off + NLMSG_HDRLEN..off + len];
        off += align4(len);
        Some((kind, seq, payload))
    })
}

/// The attributes in `buf`: (type without flags, payload).
fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = 0;
    std::iter::from_fn(move || {
        let hdr = buf.get(off..off + 4)?;
        let len = u16::from_ne_bytes([hdr[0], hdr[1]]) as usize;
        if len < 4 || off + len > buf.len() {
            return None;
        }
        let kind = u16::from_ne_bytes([hdr[2], hdr[3]]) & NLA_TYPE_MASK;
        let payload = &buf[off + 4..off + len];
        off += align4(len);
        Some((kind, payload))
    })
}

/// The errno of an `NLMSG_ERROR` payload (0 for an ack).
fn error_code(payload: &[u8]) -> i32 {
    payload
        .get(0..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, i32::from_ne_bytes)
}

fn read_ack(sock: &OwnedFd, seq: u32) -> io::Result<()> {
    let mut buf = vec![0u8; 8192];
    loop {
        let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        for (kind, s, payload) in messages(&buf[..n]) {
            if kind == NLMSG_ERROR && s == seq {
                return match error_code(payload) {
                    0 => Ok(()),
                    e => Err(io::Error::from_raw_os_error(-e)),
                };
            }
        }
    }
}

fn dump(sock: &OwnedFd) -> io::Result<Vec<Flow>> {
    let seq = 1;
    send(
        sock,
        &message(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, &[]),
    )?;
    let mut flows = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        if n == 0 {
            return Ok(flows);
        }
        for (kind, s, payload) in messages(&buf[..n]) {
            if s != seq {
                continue;
            }
            match kind {
                NLMSG_DONE => return Ok(flows),
                NLMSG_ERROR => {
                    return match error_code(payload) {
                        0 => Ok(flows),
                        e => Err(io::Error::from_raw_os_error(-e)),
                    }
                }
                _ => {
                    if let Some(f) = payload.get(NFGEN_LEN..).and_then(parse_flow) {
                        flows.push(f);
                    }
                }
            }
        }
    }
}

fn parse_flow(body: &[u8]) -> Option<Flow> {
    let mut f = Flow::default();
    let mut have_orig = false;
    for (kind, payload) in attrs(body) {
        match kind {
            CTA_TUPLE_ORIG => {
                f.orig = parse_tuple(payload);
                f.raw_orig = payload.to_vec();
                have_orig = true;
            }
            CTA_TUPLE_REPLY => f.reply = parse_tuple(payload),
            _ => {}
        }
    }
    have_orig.then_some(f)
}

fn parse_tuple(buf: &[u8]) -> Tuple {
    let mut t = Tuple::default();
    let v4 = |b: &[u8]| <[u8; 4]>::try_from(b).ok().map(Ipv4Addr::from);
    let port = |b: &[u8]| <[u8; 2]>::try_from(b).map_or(0, u16::from_be_bytes);
    for (kind, payload) in attrs(buf) {
        match kind {
            CTA_TUPLE_IP => {
                for (k, p) in attrs(payload) {
                    match k {
                        CTA_IP_V4_SRC => t.src = v4(p),
                        CTA_IP_V4_DST => t.dst = v4(p),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for (k, p) in attrs(payload) {
                    match k {
                        CTA_PROTO_NUM => t.proto = p.first().copied().unwrap_or(0),
                        CTA_PROTO_SRC_PORT => t.sport = port(p),
                        CTA_PROTO_DST_PORT => t.dport = port(p),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    t
}

/// Whether `ip` is an address of this host (of the calling thread's
/// namespace): only a local address can be bound.
pub(crate) fn is_local(ip: Ipv4Addr) -> bool {
    ip.is_loopback() || std::net::UdpSocket::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple_attr(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut ip = Vec::new();
        put_attr(&mut ip, CTA_IP_V4_SRC, &src);
        put_attr(&mut ip, CTA_IP_V4_DST, &dst);
        let mut proto = Vec::new();
        put_attr(&mut proto, CTA_PROTO_NUM, &[UDP]);
        put_attr(&mut proto, CTA_PROTO_SRC_PORT, &sport.to_be_bytes());
        put_attr(&mut proto, CTA_PROTO_DST_PORT, &dport.to_be_bytes());
        let mut t = Vec::new();
        put_attr(&mut t, CTA_TUPLE_IP | NLA_F_NESTED, &ip);
        put_attr(&mut t, CTA_TUPLE_PROTO | NLA_F_NESTED, &proto);
        t
    }

    #[test]
    fn reads_a_dnat_flow() {
        let orig = tuple_attr([127, 0, 0, 1], [127, 0, 0, 1], 40000, 5353);
        let reply = tuple_attr([172, 17, 0, 2], [172, 17, 0, 1], 53, 40000);
        let mut body = Vec::new();
        put_attr(&mut body, CTA_TUPLE_ORIG | NLA_F_NESTED, &orig);
        put_attr(&mut body, CTA_TUPLE_REPLY | NLA_F_NESTED, &reply);
        // An attribute we do not read (CTA_STATUS) is skipped.
        put_attr(&mut body, 3, &0u32.to_be_bytes());
        let f = parse_flow(&body).unwrap();
        assert_eq!(f.orig.dst, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            (f.orig.proto, f.orig.sport, f.orig.dport),
            (UDP, 40000, 5353)
        );
        assert_eq!(f.reply.src, Some(Ipv4Addr::new(172, 17, 0, 2)));
        assert_eq!(f.reply.sport, 53);
        assert_eq!(f.raw_orig, orig);
        // A delete names the entry by the tuple it came with.
        let msg = {
            let mut a = Vec::new();
            put_attr(&mut a, CTA_TUPLE_ORIG | NLA_F_NESTED, &f.raw_orig);
            message(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, 7, &a)
        };
        let (kind, seq, payload) = messages(&msg).next().unwrap();
        assert_eq!((kind, seq), ((1 << 8) | 2, 7));
        let (k, inner) = attrs(&payload[NFGEN_LEN..]).next().unwrap();
        assert_eq!((k, inner), (CTA_TUPLE_ORIG, orig.as_slice()));
    }

    #[test]
    fn truncated_input_ends_quietly() {
        assert!(parse_flow(&[8, 0, 1, 0, 1]).is_none());
        assert_eq!(messages(&[1, 2, 3]).count(), 0);
        assert_eq!(attrs(&[200, 0, 1, 0, 0, 0]).count(), 0);
    }
}
