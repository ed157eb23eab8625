//! The small part of the DNS wire format (RFC 1035) the embedded server
//! needs: read a query's header and first question, write an answer with
//! A / AAAA / PTR records. Forwarded queries and upstream answers are relayed
//! as bytes and never re-encoded, so nothing else has to be understood.
//!
//! Hand-written rather than pulling hickory-proto: the subset is ~200 lines,
//! is property-tested below, and the dependency would add IDNA/Unicode tables
//! and minutes of build on two cores for features the server never uses.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Record types the server answers itself.
/// A record.
pub const TYPE_A: u16 = 1;
/// PTR record.
pub const TYPE_PTR: u16 = 12;
pub(crate) const TYPE_MX: u16 = 15;
/// AAAA record.
pub const TYPE_AAAA: u16 = 28;
pub(crate) const CLASS_IN: u16 = 1;

/// Response codes.
pub(crate) const RCODE_NOERROR: u8 = 0;
pub(crate) const RCODE_FORMERR: u8 = 1;
pub(crate) const RCODE_SERVFAIL: u8 = 2;
/// The name does not exist.
pub const RCODE_NXDOMAIN: u8 = 3;
pub(crate) const RCODE_NOTIMP: u8 = 4;
pub(crate) const RCODE_REFUSED: u8 = 5;

/// Seconds clients may cache an answer (Docker's `respTTL`).
pub(crate) const TTL: u32 = 600;

/// The smallest UDP payload every client accepts.
pub(crate) const MIN_UDP: usize = 512;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) id: u16,
    /// Header flags of the query (opcode and RD are echoed).
    pub(crate) flags: u16,
    /// The question name, lower-cased, without the trailing dot.
    pub(crate) name: String,
    pub(crate) qtype: u16,
    pub(crate) qclass: u16,
    /// The question section's bytes, echoed in the answer.
    pub(crate) question: Vec<u8>,
    /// The client's EDNS UDP payload size, if it sent an OPT record.
    pub(crate) udp_size: Option<u16>,
}

/// Why a message was not a query we can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadQuery {
    /// Too short or malformed: answer FORMERR if the id can be read.
    Malformed,
    /// Not a QUERY opcode: answer NOTIMP.
    NotQuery,
    /// A response, not a query: ignore.
    IsResponse,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Reads a (possibly compressed) name at `pos`; returns it lower-cased and
/// the position right after it in the original stream.
fn read_name(b: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *b.get(pos)? as usize;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Some((name, end.unwrap_or(pos + 1)));
                }
                let label = b.get(pos + 1..pos + 1 + len)?;
                if !name.is_empty() {
                    name.push('.');
                }
                for &c in label {
                    // Escape what cannot appear in a host name so that
                    // lookups never match by accident.
                    if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
                        name.push(c.to_ascii_lowercase() as char);
                    } else {
                        name.push_str(&format!("\\{c:03}"));
                    }
                }
                if name.len() > 1000 {
                    return None;
                }
                pos += 1 + len;
            }
            0xc0 => {
                let target = (u16_at(b, pos)? & 0x3fff) as usize;
                if end.is_none() {
                    end = Some(pos + 2);
                }
                jumps += 1;
                if jumps > 16 || target >= b.len() {
                    return None;
                }
                pos = target;
            }
            _ => return None,
        }
    }
}

/// Parses a query: header, first question, and the OPT record if present.
pub(crate) fn parse_query(b: &[u8]) -> Result<Query, BadQuery> {
    let id = u16_at(b, 0).ok_or(BadQuery::Malformed)?;
    let flags = u16_at(b, 2).ok_or(BadQuery::Malformed)?;
    if flags & 0x8000 != 0 {
        return Err(BadQuery::IsResponse);
    }
    let qd = u16_at(b, 4).ok_or(BadQuery::Malformed)?;
    let an = u16_at(b, 6).ok_or(BadQuery::Malformed)?;
    let ns = u16_at(b, 8).ok_or(BadQuery::Malformed)?;
    let ar = u16_at(b, 10).ok_or(BadQuery::Malformed)?;
    if (flags >> 11) & 0xf != 0 {
        return Err(BadQuery::NotQuery);
    }
    if qd != 1 {
        return Err(BadQuery::Malformed);
    }
    let (name, after) = read_name(b, 12).ok_or(BadQuery::Malformed)?;
    let qtype = u16_at(b, after).ok_or(BadQuery::Malformed)?;
    let qclass = u16_at(b, after + 2).ok_or(BadQuery::Malformed)?;
    let qend = after + 4;
    let question = b[12..qend].to_vec();
    // Skip answer and authority records, then look for OPT among the
    // additional ones.
    let mut pos = qend;
    let mut udp_size = None;
    for i in 0..(u32::from(an) + u32::from(ns) + u32::from(ar)) {
        let Some((_, p)) = read_name(b, pos) else {
            break;
        };
        let (Some(rtype), Some(class), Some(rdlen)) =
            (u16_at(b, p), u16_at(b, p + 2), u16_at(b, p + 8))
        else {
            break;
        };
        if i >= u32::from(an) + u32::from(ns) && rtype == 41 {
            udp_size = Some(class);
        }
        pos = p + 10 + rdlen as usize;
    }
    Ok(Query {
        id,
        flags,
        name: name.trim_end_matches('.').to_string(),
        qtype,
        qclass,
        question,
        udp_size,
    })
}

/// An answer record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdata {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A name.
    Ptr(String),
}

fn encode_name(out: &mut Vec<u8>, name: &str) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let l = &label.as_bytes()[..label.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
}

/// Writes the answer to `q`: `rcode`, and `answers` (owner name = the
/// question's), truncated with TC set if it would exceed `max_len`.
pub(crate) fn build_response(q: &Query, rcode: u8, answers: &[Rdata], max_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + answers.len() * 16);
    let mut n = answers.len();
    loop {
        out.clear();
        // QR, opcode and RD echoed, RA set.
        let mut flags: u16 = 0x8000 | (q.flags & 0x7900) | 0x0080 | u16::from(rcode & 0xf);
        if n < answers.len() {
            flags |= 0x0200;
        }
        out.extend_from_slice(&q.id.to_be_bytes());
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&q.question);
        for a in &answers[..n] {
            out.extend_from_slice(&[0xc0, 0x0c]);
            let (t, data) = match a {
                Rdata::A(ip) => (TYPE_A, ip.octets().to_vec()),
                Rdata::Aaaa(ip) => (TYPE_AAAA, ip.octets().to_vec()),
                Rdata::Ptr(name) => {
                    let mut d = Vec::new();
                    encode_name(&mut d, name);
                    (TYPE_PTR, d)
                }
            };
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&TTL.to_be_bytes());
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(&data);
        }
        if out.len() <= max_len || n == 0 {
            return out;
        }
        n -= 1;
    }
}

/// A bare error answer when even the question could not be read.
pub(crate) fn error_response(raw: &[u8], rcode: u8) -> Option<Vec<u8>> {
    let id = u16_at(raw, 0)?;
    let flags = u16_at(raw, 2)?;
    let f: u16 = 0x8000 | (flags & 0x7900) | 0x0080 | u16::from(rcode);
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&f.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    Some(out)
}

/// The id and rcode of a response from an upstream server.
pub(crate) fn response_id_rcode(b: &[u8]) -> Option<(u16, u8)> {
    let flags = u16_at(b, 2)?;
    (flags & 0x8000 != 0).then(|| (u16_at(b, 0).unwrap_or(0), (flags & 0xf) as u8))
}

/// Builds a query for `name` (tests and health checks).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(&mut out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// Reads a response (tests and health checks): its rcode, whether it was
/// truncated, and the A/AAAA/PTR answers.
pub fn parse_answers(b: &[u8]) -> Option<(u8, bool, Vec<Rdata>)> {
    let flags = u16_at(b, 2)?;
    let qd = u16_at(b, 4)?;
    let an = u16_at(b, 6)?;
    let mut pos = 12;
    for _ in 0..qd {
        let (_, p) = read_name(b, pos)?;
        pos = p + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        let (_, p) = read_name(b, pos)?;
        let t = u16_at(b, p)?;
        let len = u16_at(b, p + 8)? as usize;
        let data = b.get(p + 10..p + 10 + len)?;
        out.push(match t {
            TYPE_A => Rdata::A(Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?)),
            TYPE_AAAA => Rdata::Aaaa(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?)),
            TYPE_PTR => Rdata::Ptr(read_name(b, p + 10)?.0),
            _ => return None,
        });
        pos = p + 10 + len;
    }
    Some(((flags & 0xf) as u8, flags & 0x0200 != 0, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn query_round_trip_and_answer() {
        let q = build_query(0x1234, "Web.MyNet", TYPE_A);
        let p = parse_query(&q).unwrap();
        assert_eq!(p.id, 0x1234);
        assert_eq!(p.name, "web.mynet");
        assert_eq!(p.qtype, TYPE_A);
        let r = build_response(
            &p,
            RCODE_NOERROR,
            &[Rdata::A(Ipv4Addr::new(10, 0, 0, 2))],
            MIN_UDP,
        );
        let (rcode, tc, answers) = parse_answers(&r).unwrap();
        assert_eq!((rcode, tc), (0, false));
        assert_eq!(answers, vec![Rdata::A(Ipv4Addr::new(10, 0, 0, 2))]);
        assert_eq!(&r[0..2], &[0x12, 0x34]);
        assert_eq!(r[2] & 0x80, 0x80, "QR");
        assert_eq!(r[2] & 0x01, 0x01, "RD echoed");
        assert_eq!(r[3] & 0x80, 0x80, "RA");
    }

    #[test]
    fn responses_and_other_opcodes_are_refused() {
        let mut q = build_query(1, "a", TYPE_A);
        q[2] |= 0x80;
        assert_eq!(parse_query(&q), Err(BadQuery::IsResponse));
        let mut q = build_query(1, "a", TYPE_A);
        q[2] |= 0x10; // opcode 2 (STATUS)
        assert_eq!(parse_query(&q), Err(BadQuery::NotQuery));
        assert_eq!(parse_query(&[0, 1, 0]), Err(BadQuery::Malformed));
        let e = error_response(&q, RCODE_NOTIMP).unwrap();
        assert_eq!(response_id_rcode(&e), Some((1, RCODE_NOTIMP)));
    }

    #[test]
    fn edns_size_is_read_and_truncation_sets_tc() {
        let mut q = build_query(7, "many", TYPE_A);
        q[11] = 1; // ARCOUNT = 1
        q.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]);
        let p = parse_query(&q).unwrap();
        assert_eq!(p.udp_size, Some(4096));
        let many: Vec<Rdata> = (0..100)
            .map(|i| Rdata::A(Ipv4Addr::new(10, 0, 0, i)))
            .collect();
        let r = build_response(&p, RCODE_NOERROR, &many, MIN_UDP);
        assert!(r.len() <= MIN_UDP);
        let (_, tc, answers) = parse_answers(&r).unwrap();
        assert!(tc);
        assert!(!answers.is_empty() && answers.len() < 100);
    }

    #[test]
    fn ptr_answers() {
        let p = parse_query(&build_query(9, "2.0.17.172.in-addr.arpa", TYPE_PTR)).unwrap();
        let r = build_response(
            &p,
            RCODE_NOERROR,
            &[Rdata::Ptr("web.mynet".into())],
            MIN_UDP,
        );
        assert_eq!(
            parse_answers(&r).unwrap().2,
            vec![Rdata::Ptr("web.mynet".into())]
        );
    }

    #[test]
    fn compressed_question_name() {
        // "b" then a pointer back to a name written in the header region is
        // invalid; a pointer loop must fail cleanly.
        let mut q = build_query(1, "x", TYPE_A);
        q.truncate(12);
        q.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse_query(&q), Err(BadQuery::Malformed));
    }

    proptest! {
        #[test]
        fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_query(&b);
            let _ = parse_answers(&b);
            let _ = error_response(&b, RCODE_SERVFAIL);
        }

        #[test]
        fn names_round_trip(labels in proptest::collection::vec("[a-z0-9][a-z0-9-]{0,20}", 1..5), id: u16, qtype in prop_oneof![Just(TYPE_A), Just(TYPE_AAAA), Just(TYPE_PTR)]) {
            let name = labels.join(".");
            let q = parse_query(&build_query(id, &name, qtype)).unwrap();
            prop_assert_eq!(&q.name, &name);
            prop_assert_eq!(q.id, id);
            prop_assert_eq!(q.qtype, qtype);
        }

        #[test]
        fn answers_round_trip(ips in proptest::collection::vec(any::<u32>(), 0..40), limit in 12usize..2000) {
            let q = parse_query(&build_query(3, "svc", TYPE_A)).unwrap();
            let data: Vec<Rdata> = ips.iter().map(|i| Rdata::A(Ipv4Addr::from(*i))).collect();
            let r = build_response(&q, RCODE_NOERROR, &data, limit);
            let (rcode, tc, got) = parse_answers(&r).unwrap();
            prop_assert_eq!(rcode, 0);
            prop_assert!(r.len() <= limit.max(12 + q.question.len()));
            prop_assert_eq!(tc, got.len() < data.len());
            prop_assert_eq!(&data[..got.len()], &got[..]);
        }
    }
}
