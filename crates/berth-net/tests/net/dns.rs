//! The embedded DNS server inside containers: names, aliases, network-scoped
//! names, NXDOMAIN and forwarding to a fake upstream on the test host's
//! loopback (never the internet).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use berth_net::dns::{
    build_query, parse_answers, Rdata, RCODE_NXDOMAIN, TYPE_A, TYPE_AAAA, TYPE_PTR,
};

use crate::util::*;

/// A fake upstream resolver on 127.0.0.1:53 of the test host: answers
/// `upstream.test` with 192.0.2.55, NXDOMAIN for everything else.
fn fake_upstream(host: &Path) {
    let s = in_ns(host, || UdpSocket::bind("127.0.0.1:53").unwrap());
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = s.recv_from(&mut buf) {
            let q = &buf[..n];
            let name_end = 12 + q[12..].iter().position(|b| *b == 0).unwrap() + 1;
            let question = &q[12..name_end + 4];
            let known = q[12..name_end].windows(8).any(|w| w == b"upstream");
            let mut r = vec![
                q[0],
                q[1],
                0x81,
                if known { 0x80 } else { 0x80 | RCODE_NXDOMAIN },
            ];
            r.extend_from_slice(&[0, 1, 0, u8::from(known), 0, 0, 0, 0]);
            r.extend_from_slice(question);
            if known {
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 55]);
            }
            let _ = s.send_to(&r, peer);
        }
    });
}

fn ask(ns: &Path, name: &'static str, qtype: u16) -> Option<(u8, Vec<Rdata>)> {
    in_ns(ns, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.send_to(&build_query(0x4242, name, qtype), "127.0.0.11:53")
            .ok()?;
        let mut buf = [0u8; 1500];
        let (n, _) = s.recv_from(&mut buf).ok()?;
        let (rcode, _, answers) = parse_answers(&buf[..n])?;
        Some((rcode, answers))
    })
}

fn ask_tcp(ns: &Path, name: &'static str) -> Option<(u8, Vec<Rdata>)> {
    in_ns(ns, move || {
        let mut c = TcpStream::connect_timeout(
            &"127.0.0.11:53".parse::<SocketAddr>().unwrap(),
            Duration::from_secs(2),
        )
        .ok()?;
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let q = build_query(7, name, TYPE_A);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        c.write_all(&framed).ok()?;
        let mut len = [0u8; 2];
        c.read_exact(&mut len).ok()?;
        let mut b = vec![0u8; u16::from_be_bytes(len) as usize];
        c.read_exact(&mut b).ok()?;
        let (rcode, _, answers) = parse_answers(&b)?;
        Some((rcode, answers))
    })
}

fn a(s: &str) -> Rdata {
    Rdata::A(s.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_dns_answers_names_and_forwards_the_rest() {
    let t = TestNet::with_resolv("nameserver 127.0.0.1\n").await;
    fake_upstream(&t.host.path());
    let n = t
        .network("appnet", Some("10.221.0.0/24"), false, true)
        .await;
    let mut web = t.container("web");
    web.dns_names = vec!["web".into(), "www".into(), "shared".into()];
    let mut api = t.container("api");
    api.dns_names = vec!["api".into(), "shared".into()];
    let client = t.container("client");
    t.net().connect(&n.id, &web).await.unwrap();
    t.net().connect(&n.id, &api).await.unwrap();
    t.net().connect(&n.id, &client).await.unwrap();
    let c = &client.netns;

    assert_eq!(ask(c, "web", TYPE_A), Some((0, vec![a("10.221.0.2")])));
    assert_eq!(ask(c, "WWW.", TYPE_A), Some((0, vec![a("10.221.0.2")])));
    assert_eq!(
        ask(c, "api.appnet", TYPE_A),
        Some((0, vec![a("10.221.0.3")]))
    );
    let (rc, mut both) = ask(c, "shared", TYPE_A).unwrap();
    both.sort_by_key(|r| format!("{r:?}"));
    assert_eq!((rc, both), (0, vec![a("10.221.0.2"), a("10.221.0.3")]));
    // Known name, no IPv6 address: NOERROR, no answers.
    assert_eq!(ask(c, "web", TYPE_AAAA), Some((0, vec![])));
    // Reverse lookup of a container address.
    assert_eq!(
        ask(c, "2.0.221.10.in-addr.arpa", TYPE_PTR),
        Some((0, vec![Rdata::Ptr("web.appnet".into())]))
    );
    // Unknown names go to the upstream (asked from the host's namespace).
    assert_eq!(ask(c, "nosuch", TYPE_A), Some((RCODE_NXDOMAIN, vec![])));
    assert_eq!(
        ask(c, "upstream.test", TYPE_A),
        Some((0, vec![a("192.0.2.55")]))
    );
    // TCP too.
    assert_eq!(ask_tcp(c, "api"), Some((0, vec![a("10.221.0.3")])));

    // The resolv.conf the container gets.
    let rc = t.net().resolv_conf(Some(&n.id), &Default::default());
    assert!(
        rc.contains("\nnameserver 127.0.0.11\noptions ndots:0\n"),
        "{rc}"
    );

    // A container leaving takes its names with it.
    t.net()
        .release_container(&api.container_id, &api.netns)
        .await
        .unwrap();
    assert_eq!(ask(c, "shared", TYPE_A), Some((0, vec![a("10.221.0.2")])));
    assert_eq!(ask(c, "api", TYPE_A), Some((RCODE_NXDOMAIN, vec![])));
    for x in [&web, &client] {
        t.net()
            .release_container(&x.container_id, &x.netns)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_bridge_has_no_embedded_dns_and_internal_no_forwarding() {
    let t = TestNet::with_resolv("nameserver 127.0.0.1\n").await;
    fake_upstream(&t.host.path());
    let bridge = t
        .network("bridge", Some("10.222.0.0/24"), false, false)
        .await;
    let x = t.container("x");
    let y = t.container("y");
    t.net().connect(&bridge.id, &x).await.unwrap();
    t.net().connect(&bridge.id, &y).await.unwrap();
    assert_eq!(
        ask(&x.netns, "y", TYPE_A),
        None,
        "nothing listens on 127.0.0.11"
    );
    let rc = t.net().resolv_conf(Some(&bridge.id), &Default::default());
    assert!(
        !rc.contains("127.0.0.11") && rc.contains("nameserver 8.8.8.8"),
        "{rc}"
    );

    let inner = t.network("inner", Some("10.223.0.0/24"), true, true).await;
    let i = t.container("i");
    t.net().connect(&inner.id, &i).await.unwrap();
    assert_eq!(ask(&i.netns, "i", TYPE_A), Some((0, vec![a("10.223.0.2")])));
    // No way out: the host-side upstream is not asked (Docker's SERVFAIL).
    assert_eq!(ask(&i.netns, "upstream.test", TYPE_A), Some((2, vec![])));
    for c in [&x, &y, &i] {
        t.net()
            .release_container(&c.container_id, &c.netns)
            .await
            .unwrap();
    }
}
