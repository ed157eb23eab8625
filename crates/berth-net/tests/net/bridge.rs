//! Bridges and veth endpoints: traffic, isolation, internal networks,
//! teardown, connect/disconnect of a second network.

use std::time::Instant;

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_endpoints_talk_over_the_bridge() {
    let t = TestNet::new().await;
    let n = t.network("front", Some("10.201.0.0/24"), false, true).await;
    assert_eq!(n.subnets[0].gateway.to_string(), "10.201.0.1");
    let a = t.container("a");
    let b = t.container("b");
    let ea = t.net().connect(&n.id, &a).await.unwrap();
    let eb = t.net().connect(&n.id, &b).await.unwrap();
    assert_eq!(ea.ipv4.unwrap().to_string(), "10.201.0.2/24");
    assert_eq!(eb.ipv4.unwrap().to_string(), "10.201.0.3/24");
    assert_eq!(eb.mac.to_string(), "02:42:0a:c9:00:03");

    // Inside b: eth0 with its address and MAC, default route via the gateway.
    let addr = sh(
        "nsenter",
        &[
            &format!("--net={}", b.netns.display()),
            "ip",
            "-j",
            "addr",
            "show",
            "eth0",
        ],
    );
    assert!(addr.contains("\"local\":\"10.201.0.3\""), "{addr}");
    assert!(addr.contains("02:42:0a:c9:00:03"), "{addr}");
    let route = sh(
        "nsenter",
        &[
            &format!("--net={}", b.netns.display()),
            "ip",
            "route",
            "show",
            "default",
        ],
    );
    assert!(route.contains("default via 10.201.0.1 dev eth0"), "{route}");

    // TCP both ways by IP, and ping.
    let srv1 = tcp_server(&b.netns, sa("10.201.0.3:7000"), "hello from b");
    assert_eq!(
        tcp_get(&a.netns, sa("10.201.0.3:7000")).as_deref(),
        Some("hello from b")
    );
    let ping = sh(
        "nsenter",
        &[
            &format!("--net={}", a.netns.display()),
            "busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "10.201.0.3",
        ],
    );
    assert!(ping.contains("1 packets received"), "{ping}");
    // The host reaches containers directly too.
    assert_eq!(
        tcp_get(&t.host.path(), sa("10.201.0.3:7000")).as_deref(),
        Some("hello from b")
    );

    // Teardown leaves no veth, bridge, address, rule or namespace.
    drop(srv1);
    t.net()
        .release_container(&a.container_id, &a.netns)
        .await
        .unwrap();
    t.net()
        .release_container(&b.container_id, &b.netns)
        .await
        .unwrap();
    assert!(!a.netns.exists() && !b.netns.exists());
    t.net().remove_network(&n.id).await.unwrap();
    let links = t.host.links_settled(1);
    assert_eq!(links, vec!["lo".to_string()], "links left: {links:?}");
    let table = t.host.nft_table(&t.table).expect("the table stays, empty");
    let left: Vec<String> = chains(&table)
        .into_iter()
        .filter(|c| c.contains("__"))
        .collect();
    assert!(left.is_empty(), "per-network chains left: {left:?}");
    let rules_left: Vec<_> = rules(&table)
        .into_iter()
        .filter(|r| r.to_string().contains(&n.bridge) || r.to_string().contains("10.201.0"))
        .collect();
    assert!(rules_left.is_empty(), "rules left: {rules_left:?}");
    let addrs = sh("ip", &["-n", &t.host.name, "-j", "addr"]);
    assert!(!addrs.contains("10.201.0.1"), "{addrs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_are_isolated_and_internal_has_no_way_out() {
    let t = TestNet::new().await;
    t.host.add_address("10.203.0.1/24");
    let n1 = t.network("one", Some("10.204.1.0/24"), false, true).await;
    let n2 = t.network("two", Some("10.204.2.0/24"), false, true).await;
    let ni = t.network("inner", Some("10.204.3.0/24"), true, true).await;
    let a = t.container("a");
    let b = t.container("b");
    let c = t.container("c");
    let ea = t.net().connect(&n1.id, &a).await.unwrap();
    let eb = t.net().connect(&n2.id, &b).await.unwrap();
    let ec = t.net().connect(&ni.id, &c).await.unwrap();
    let b_ip = eb.ipv4.unwrap().addr();
    let _srv2 = tcp_server(&b.netns, std::net::SocketAddr::new(b_ip, 7001), "b");
    let _srv3 = tcp_server(
        &a.netns,
        std::net::SocketAddr::new(ea.ipv4.unwrap().addr(), 7001),
        "a",
    );
    let _srv4 = tcp_server(&t.host.path(), sa("10.203.0.1:7002"), "host");
    // Same network: yes. Across networks: no (both directions).
    assert_eq!(
        tcp_get(&t.host.path(), std::net::SocketAddr::new(b_ip, 7001)).as_deref(),
        Some("b")
    );
    assert_eq!(
        tcp_get(&a.netns, std::net::SocketAddr::new(b_ip, 7001)),
        None
    );
    assert_eq!(
        tcp_get(
            &b.netns,
            std::net::SocketAddr::new(ea.ipv4.unwrap().addr(), 7001)
        ),
        None
    );
    // A normal network reaches the host's other address (routed out of its
    // bridge); an internal one has no default route and is dropped anyway.
    assert_eq!(
        tcp_get(&a.netns, sa("10.203.0.1:7002")).as_deref(),
        Some("host")
    );
    let route = sh(
        "nsenter",
        &[&format!("--net={}", c.netns.display()), "ip", "route"],
    );
    assert!(!route.contains("default"), "{route}");
    assert!(!ec.default_route);
    assert_eq!(tcp_get(&c.netns, sa("10.203.0.1:7002")), None);
    // Masquerade for the outbound traffic of normal networks only (the rule
    // is proven to exist; no traffic leaves the test namespace).
    let table = t.host.nft_table(&t.table).unwrap();
    let masq: Vec<String> = rules(&table)
        .into_iter()
        .filter(|r| r["comment"] == "masquerade")
        .map(|r| r["chain"].as_str().unwrap().to_string())
        .collect();
    assert!(
        masq.contains(&format!("post-out__{}", n1.bridge)),
        "{masq:?}"
    );
    assert!(
        !masq.contains(&format!("post-out__{}", ni.bridge)),
        "{masq:?}"
    );
    assert_eq!(
        t.host.run("cat", &["/proc/sys/net/ipv4/ip_forward"]).trim(),
        "1"
    );
    for e in [&a, &b, &c] {
        t.net()
            .release_container(&e.container_id, &e.netns)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_disconnect_a_second_network() {
    let t = TestNet::new().await;
    let n1 = t.network("one", Some("10.205.1.0/24"), false, true).await;
    let n2 = t.network("two", Some("10.205.2.0/24"), false, true).await;
    let a = t.container("a");
    let b = t.container("b");
    t.net().connect(&n1.id, &a).await.unwrap();
    let eb = t.net().connect(&n2.id, &b).await.unwrap();
    let b_ip = eb.ipv4.unwrap().addr();
    let _srv5 = tcp_server(&b.netns, std::net::SocketAddr::new(b_ip, 7003), "b");
    assert_eq!(
        tcp_get(&a.netns, std::net::SocketAddr::new(b_ip, 7003)),
        None
    );
    // a joins two as eth1 while running.
    let mut second = a.clone();
    second.id = rand_hex(64);
    second.ifname = "eth1".into();
    second.default_route = false;
    second.ipv4 = Some("10.205.2.50".parse().unwrap());
    second.mac = Some("02:aa:bb:cc:dd:ee".parse().unwrap());
    let e2 = t.net().connect(&n2.id, &second).await.unwrap();
    assert_eq!(e2.ipv4.unwrap().to_string(), "10.205.2.50/24");
    let eth1 = sh(
        "nsenter",
        &[
            &format!("--net={}", a.netns.display()),
            "ip",
            "-o",
            "link",
            "show",
            "eth1",
        ],
    );
    assert!(eth1.contains("02:aa:bb:cc:dd:ee"), "{eth1}");
    let route = sh(
        "nsenter",
        &[
            &format!("--net={}", a.netns.display()),
            "ip",
            "route",
            "show",
            "default",
        ],
    );
    assert!(
        route.contains("dev eth0") && !route.contains("eth1"),
        "{route}"
    );
    assert_eq!(
        tcp_get(&a.netns, std::net::SocketAddr::new(b_ip, 7003)).as_deref(),
        Some("b")
    );
    // Duplicate static address.
    let mut dup = t.container("dup");
    dup.ipv4 = Some("10.205.2.50".parse().unwrap());
    let e = t.net().connect(&n2.id, &dup).await.unwrap_err();
    assert_eq!(e.to_string(), "Address already in use");
    // Removing a network in use is refused with Docker's text.
    let e = t.net().remove_network(&n2.id).await.unwrap_err();
    assert!(e.to_string().contains("has active endpoints"), "{e}");
    // Disconnect: eth1 is gone, b unreachable again, eth0 untouched.
    t.net().disconnect(&e2.id).await.unwrap();
    let links = sh(
        "nsenter",
        &[&format!("--net={}", a.netns.display()), "ip", "-o", "link"],
    );
    assert!(!links.contains("eth1") && links.contains("eth0"), "{links}");
    assert_eq!(
        tcp_get(&a.netns, std::net::SocketAddr::new(b_ip, 7003)),
        None
    );
    for c in [&a, &b, &dup] {
        t.net()
            .release_container(&c.container_id, &c.netns)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_subnet_avoids_the_hosts_routes() {
    let t = TestNet::new().await;
    // The "host" already routes 172.17.0.0/16 (and its resolver is on
    // 127.0.0.1, which is no clash).
    t.host.add_address("172.17.5.1/16");
    let n = t.network("bridge", None, false, false).await;
    assert_eq!(n.subnets[0].subnet.to_string(), "172.18.0.0/16");
    let m = t.network("other", None, false, true).await;
    assert_eq!(m.subnets[0].subnet.to_string(), "172.19.0.0/16");
    let e = t
        .net()
        .create_network(&berth_net::NetworkCreate {
            id: rand_hex(64),
            name: "clash".into(),
            bridge: "br-clash".into(),
            ipam: vec![berth_net::IpamRequest {
                subnet: Some("172.19.128.0/17".into()),
                ..Default::default()
            }],
            icc: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Pool overlaps with other one on this address space"
    );
    assert!(
        !t.host.links().contains(&"br-clash".to_string()),
        "nothing half-made"
    );
}

/// What a netns + veth + address + route set-up costs on this machine
/// (printed; run with --nocapture). The bound is loose: CI machines vary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_setup_cost() {
    let t = TestNet::new().await;
    let plain = t.network("m", Some("10.206.0.0/16"), false, false).await;
    let user = t.network("u", Some("10.207.0.0/16"), false, true).await;
    let rounds = 20;
    let mut fresh = vec![];
    let mut take = vec![];
    let (mut connect, mut connect_dns, mut connect_port) = (vec![], vec![], vec![]);
    let mut release = vec![];
    let dir = t.dir.path().join("run").join("netns");
    for i in 0..rounds {
        let p = dir.join(format!("ctr-measure{i}"));
        let s = Instant::now();
        berth_net::create_netns(&p).unwrap();
        fresh.push(s.elapsed());
        berth_net::remove_netns(&p).unwrap();

        for (net, kind) in [(&plain, 0), (&user, 1), (&plain, 2)] {
            t.net().pool().fill().unwrap();
            let s = Instant::now();
            let mut c = t.container("m");
            take.push(s.elapsed());
            if kind == 2 {
                c.ports = vec![berth_net::PortRequest {
                    container_port: 80,
                    proto: berth_net::Proto::Tcp,
                    host_ip: None,
                    host_ports: None,
                }];
            }
            let s = Instant::now();
            t.net().connect(&net.id, &c).await.unwrap();
            [&mut connect, &mut connect_dns, &mut connect_port][kind].push(s.elapsed());
            let s = Instant::now();
            t.net()
                .release_container(&c.container_id, &c.netns)
                .await
                .unwrap();
            release.push(s.elapsed());
        }
    }
    let med = |v: &mut Vec<std::time::Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "set-up cost (median of {rounds}): new netns {:?}; pool take {:?}; \
         connect (veth + address + route) {:?}; + embedded DNS {:?}; + one published port (nft) {:?}; \
         stop (endpoint + netns release) {:?}",
        med(&mut fresh),
        med(&mut take),
        med(&mut connect),
        med(&mut connect_dns),
        med(&mut connect_port),
        med(&mut release),
    );
    let c = med(&mut connect);
    assert!(c.as_millis() < 200, "connect took {c:?}");
}
