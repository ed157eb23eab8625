//! Published ports: DNAT from the host's loopback and its own address, TCP
//! and UDP, host-IP binding, ranges, conflicts with Docker's errors.

use berth_net::{PortRequest, Proto};

use crate::util::*;

fn p(cport: u16, host: Option<(u16, u16)>, ip: Option<&str>, proto: Proto) -> PortRequest {
    PortRequest {
        container_port: cport,
        proto,
        host_ip: ip.map(|s| s.parse().unwrap()),
        host_ports: host,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_ports_answer_on_loopback_and_host_address() {
    let t = TestNet::new().await;
    t.host.add_address("10.211.0.1/24");
    let n = t.network("web", Some("10.212.0.0/24"), false, true).await;
    let mut c = t.container("web");
    c.ports = vec![
        p(80, Some((8080, 8080)), None, Proto::Tcp),
        p(80, Some((8081, 8081)), Some("127.0.0.1"), Proto::Tcp),
        p(53, Some((5353, 5353)), None, Proto::Udp),
        p(80, None, None, Proto::Tcp),
    ];
    let e = t.net().connect(&n.id, &c).await.unwrap();
    let ctr = e.ipv4.unwrap().addr();
    assert_eq!(e.ports.len(), 4);
    let eph = e.ports[3].host_port;
    assert!((32768..=60999).contains(&eph), "ephemeral {eph}");
    let _srv1 = tcp_server(&c.netns, std::net::SocketAddr::new(ctr, 80), "web says hi");
    let _srv2 = udp_server(&c.netns, std::net::SocketAddr::new(ctr, 53), "udp:");

    let h = t.host.path();
    assert_eq!(
        tcp_get(&h, sa("127.0.0.1:8080")).as_deref(),
        Some("web says hi")
    );
    assert_eq!(
        tcp_get(&h, sa("10.211.0.1:8080")).as_deref(),
        Some("web says hi")
    );
    assert_eq!(
        tcp_get(&h, sa("127.0.0.1:8081")).as_deref(),
        Some("web says hi")
    );
    assert_eq!(
        tcp_get(&h, sa("10.211.0.1:8081")),
        None,
        "bound to 127.0.0.1 only"
    );
    assert_eq!(
        tcp_get(&h, std::net::SocketAddr::new(ip("127.0.0.1"), eph)).as_deref(),
        Some("web says hi")
    );
    assert_eq!(
        udp_ask(&h, sa("127.0.0.1:5353"), "ping").as_deref(),
        Some("udp:ping")
    );
    assert_eq!(
        udp_ask(&h, sa("10.211.0.1:5353"), "pong").as_deref(),
        Some("udp:pong")
    );

    // A second container on another network reaches the port through the
    // host's address; a container reaches its own published port (hairpin).
    let n2 = t.network("other", Some("10.213.0.0/24"), false, true).await;
    let d = t.container("d");
    t.net().connect(&n2.id, &d).await.unwrap();
    assert_eq!(
        tcp_get(&d.netns, sa("10.211.0.1:8080")).as_deref(),
        Some("web says hi")
    );
    assert_eq!(
        tcp_get(&c.netns, sa("10.211.0.1:8080")).as_deref(),
        Some("web says hi")
    );

    // Taken ports: by another container, or by a process of the host.
    let mut again = t.container("again");
    again.ports = vec![p(80, Some((8080, 8080)), None, Proto::Tcp)];
    let err = t.net().connect(&n.id, &again).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Bind for 0.0.0.0:8080 failed: port is already allocated"
    );
    let listener = in_ns(&h, || std::net::TcpListener::bind("0.0.0.0:9090").unwrap());
    again.ports = vec![p(80, Some((9090, 9090)), Some("127.0.0.1"), Proto::Tcp)];
    let err = t.net().connect(&n.id, &again).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Bind for 127.0.0.1:9090 failed: port is already allocated"
    );
    drop(listener);
    // Nothing half-made by the failures: no veth of "again", address free.
    let vb: Vec<String> = t
        .host
        .links()
        .into_iter()
        .filter(|l| l.starts_with("vbt"))
        .collect();
    assert_eq!(vb.len(), 2, "{vb:?}");

    // Stopping the container withdraws its ports.
    t.net()
        .release_container(&c.container_id, &c.netns)
        .await
        .unwrap();
    assert_eq!(tcp_get(&h, sa("127.0.0.1:8080")), None);
    let table = t.host.nft_table(&t.table).unwrap();
    assert!(!rules(&table).iter().any(is_dnat_rule), "no DNAT left");
    for x in [&d, &again] {
        t.net()
            .release_container(&x.container_id, &x.netns)
            .await
            .unwrap();
    }
}

fn child_processes() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| {
            // ppid is the 2nd field after the ")" that closes comm.
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(|pp| pp == me))
                .unwrap_or(false)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_range_adds_rules_not_processes() {
    let t = TestNet::new().await;
    let n = t
        .network("range", Some("10.214.0.0/24"), false, false)
        .await;
    let mut c = t.container("r");
    c.ports = (0..100)
        .map(|i| p(9000 + i, Some((20000 + i, 20000 + i)), None, Proto::Tcp))
        .collect();
    let before = child_processes();
    let threads_before = std::fs::read_dir("/proc/self/task").unwrap().count();
    let e = t.net().connect(&n.id, &c).await.unwrap();
    assert_eq!(child_processes(), before, "no helper process per port");
    let threads_after = std::fs::read_dir("/proc/self/task").unwrap().count();
    assert!(
        threads_after <= threads_before + 2,
        "{threads_before} → {threads_after} threads"
    );
    let table = t.host.nft_table(&t.table).unwrap();
    let dnat = rules(&table)
        .into_iter()
        .filter(|r| r["chain"] == format!("dnat__{}", n.bridge))
        .count();
    assert_eq!(dnat, 100);
    let ctr = e.ipv4.unwrap().addr();
    let _srv3 = tcp_server(&c.netns, std::net::SocketAddr::new(ctr, 9042), "42");
    assert_eq!(
        tcp_get(&t.host.path(), sa("127.0.0.1:20042")).as_deref(),
        Some("42")
    );
    t.net()
        .release_container(&c.container_id, &c.netns)
        .await
        .unwrap();
}
