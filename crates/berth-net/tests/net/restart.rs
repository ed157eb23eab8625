//! A daemon killed and started again: running containers keep their
//! network, ports keep answering, stale rules and veths are cleaned up.

use std::sync::Arc;

use berth_net::{Net, NetState, PortRequest, Proto};

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reconciles_rules_and_keeps_running_containers() {
    let mut t = TestNet::new().await;
    let n = t.network("keep", Some("10.231.0.0/24"), false, true).await;
    let mut live = t.container("live");
    live.ports = vec![PortRequest {
        container_port: 80,
        proto: Proto::Tcp,
        host_ip: None,
        host_ports: Some((8080, 8080)),
    }];
    let mut dead = t.container("dead");
    dead.ports = vec![PortRequest {
        container_port: 80,
        proto: Proto::Tcp,
        host_ip: None,
        host_ports: Some((8090, 8090)),
    }];
    let e_live = t.net().connect(&n.id, &live).await.unwrap();
    let e_dead = t.net().connect(&n.id, &dead).await.unwrap();
    let _srv1 = tcp_server(
        &live.netns,
        std::net::SocketAddr::new(e_live.ipv4.unwrap().addr(), 80),
        "alive",
    );
    let h = t.host.path();
    assert_eq!(tcp_get(&h, sa("127.0.0.1:8080")).as_deref(), Some("alive"));

    // kill -9: the Net goes away without any teardown. Meanwhile "dead"
    // died (its namespace is still pinned, as after a crash).
    let networks = vec![n.clone()];
    drop(t.net.take());
    // (In a real crash the process is gone; here its DNS tasks are aborted
    // and give their sockets back on the runtime's next turn.)
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // While the daemon is down, published ports keep answering.
    assert_eq!(tcp_get(&h, sa("127.0.0.1:8080")).as_deref(), Some("alive"));

    let cfg = TestNet::config(&t.host, t.dir.path(), &t.table);
    let endpoints = vec![e_live.clone()];
    let net = Net::open(
        cfg,
        NetState {
            networks: &networks,
            endpoints: &endpoints,
            netns_in_use: &[],
        },
    )
    .await
    .unwrap();
    t.net = Some(Arc::new(net));

    assert_eq!(tcp_get(&h, sa("127.0.0.1:8080")).as_deref(), Some("alive"));
    // The dead container's rules, veth and namespace are gone.
    let table = t.host.nft_table(&t.table).unwrap();
    let dnat: Vec<String> = rules(&table)
        .into_iter()
        .filter(is_dnat_rule)
        .map(|r| r.to_string())
        .collect();
    assert_eq!(dnat.len(), 1, "{dnat:?}");
    assert!(dnat[0].contains("8080"));
    assert!(!dead.netns.exists());
    assert!(
        !t.host.links().contains(&e_dead.host_ifname),
        "stale veth swept"
    );
    // Its address and port are free again, the live one's are not.
    let mut again = t.container("again");
    again.ports = dead.ports.clone();
    let e = t.net().connect(&n.id, &again).await.unwrap();
    assert_eq!(e.ipv4, e_dead.ipv4);
    let mut clash = t.container("clash");
    clash.ports = live.ports.clone();
    assert!(t.net().connect(&n.id, &clash).await.is_err());
    // DNS came back for the live container.
    let got = in_ns(&live.netns, || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        s.send_to(
            &berth_net::dns::build_query(1, "live", berth_net::dns::TYPE_A),
            "127.0.0.11:53",
        )
        .unwrap();
        let mut b = [0u8; 512];
        let (n, _) = s.recv_from(&mut b).unwrap();
        berth_net::dns::parse_answers(&b[..n]).unwrap().2
    });
    assert_eq!(got.len(), 1);

    // Someone flushes our table: restoring brings it back (same transaction
    // as at start).
    t.host.run("nft", &["flush", "table", "inet", &t.table]);
    assert_eq!(tcp_get(&h, sa("127.0.0.1:8080")), None);
    let networks = t.net().networks();
    let mut eps = t.net().endpoints_of(&n.id);
    eps.sort_by(|a, b| a.id.cmp(&b.id));
    drop(t.net.take());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let cfg = TestNet::config(&t.host, t.dir.path(), &t.table);
    let net = Net::open(
        cfg,
        NetState {
            networks: &networks,
            endpoints: &eps,
            netns_in_use: &[clash.netns.clone()],
        },
    )
    .await
    .unwrap();
    t.net = Some(Arc::new(net));
    assert_eq!(tcp_get(&h, sa("127.0.0.1:8080")).as_deref(), Some("alive"));
    for c in [&live, &again, &clash] {
        t.net()
            .release_container(&c.container_id, &c.netns)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_side_by_side_in_one_host() {
    let t = TestNet::new().await;
    // A second daemon in the same host namespace with its own names.
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::write(dir2.path().join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
    let table2 = format!("{}-b", t.table);
    let mut cfg2 = TestNet::config(&t.host, dir2.path(), &table2);
    cfg2.veth_prefix = "vbu".into();
    cfg2.netns_prefix = "ctr2".into();
    let net2 = Net::open(cfg2, NetState::default()).await.unwrap();
    let n1 = t.network("same-name", None, false, true).await;
    let id2 = format!("{}{}", rand_hex(12), "1".repeat(52));
    let n2 = net2
        .create_network(&berth_net::NetworkCreate {
            id: id2.clone(),
            name: "same-name".into(),
            bridge: format!("br-{}", &id2[..12]),
            icc: true,
            dns: true,
            ..Default::default()
        })
        .await
        .unwrap();
    // Each daemon's IPAM only knows its own networks; the second avoids the
    // first one's subnet because the host routes it.
    assert_ne!(n1.subnets[0].subnet, n2.subnets[0].subnet);
    assert!(t.host.nft_table(&t.table).is_some() && t.host.nft_table(&table2).is_some());
    net2.remove_network(&n2.id).await.unwrap();
    net2.shutdown().unwrap();
    let run2 = dir2.path().join("run").join("netns");
    for e in std::fs::read_dir(&run2).unwrap().flatten() {
        berth_net::remove_netns(&e.path()).unwrap();
    }
    let _ = nix::mount::umount2(&run2, nix::mount::MntFlags::MNT_DETACH);
}
