//! Networking: the default bridge, user-defined networks with their
//! embedded DNS, isolation between networks, published ports, the network
//! API and commands through our CLI and the real docker CLI, and a daemon
//! restart under traffic.
//!
//! Traffic goes only to loopback and to addresses of the test's own
//! containers. Host ports are random high ports, so tests in parallel do
//! not clash.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::Daemon;

/// A host port that was free a moment ago (the kernel's choice).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

/// `GET /hostname` from busybox httpd behind `127.0.0.1:port`.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Retries while the server in the container comes up.
fn http_get_retry(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match http_get(port, path) {
            Ok(body) if body.contains("200 OK") => return body,
            other if Instant::now() > deadline => panic!("no answer on {port}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A container serving its `/etc` over HTTP on port 80.
fn httpd(d: &Daemon, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    d.docker(&args).ok().trim().to_string()
}

fn inspect(d: &Daemon, name: &str, tmpl: &str) -> String {
    d.docker(&["inspect", "-f", tmpl, name])
        .ok()
        .trim()
        .to_string()
}

fn sh_on(d: &Daemon, net: &str, script: &str) -> common::Run {
    d.docker(&[
        "run",
        "--rm",
        "--network",
        net,
        "busybox",
        "sh",
        "-c",
        script,
    ])
}

/// Like [`sh_on`], for probes of names that must not resolve: `--dns
/// 127.0.0.1` keeps any query that is forwarded inside the container, so
/// nothing leaves the machine.
fn probe_on(d: &Daemon, net: &str, script: &str) -> common::Run {
    d.docker(&[
        "run",
        "--rm",
        "--network",
        net,
        "--dns",
        "127.0.0.1",
        "busybox",
        "sh",
        "-c",
        script,
    ])
}

#[test]
fn default_bridge_addresses_files_and_traffic_by_ip() {
    let d = Daemon::start();
    d.busybox();
    httpd(&d, "alpha", &[]);
    let ip = inspect(&d, "alpha", "{{.NetworkSettings.IPAddress}}");
    let gw = inspect(&d, "alpha", "{{.NetworkSettings.Gateway}}");
    let mac = inspect(&d, "alpha", "{{.NetworkSettings.MacAddress}}");
    let net_ip = inspect(
        &d,
        "alpha",
        "{{.NetworkSettings.Networks.bridge.IPAddress}}",
    );
    assert!(!ip.is_empty() && ip == net_ip, "{ip} / {net_ip}");
    assert_eq!(
        inspect(
            &d,
            "alpha",
            "{{.NetworkSettings.Networks.bridge.IPPrefixLen}}"
        ),
        "16"
    );
    let o: Vec<u8> = ip.split('.').map(|x| x.parse().unwrap()).collect();
    assert_eq!(
        mac,
        format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    );
    assert!(gw.ends_with(".1"), "{gw}");
    let net_id = inspect(&d, "bridge", "{{.Id}}");
    assert_eq!(
        inspect(
            &d,
            "alpha",
            "{{.NetworkSettings.Networks.bridge.NetworkID}}"
        ),
        net_id
    );
    // Another container reaches it by address, not by name.
    let hostname = inspect(&d, "alpha", "{{.Config.Hostname}}");
    let out = sh_on(
        &d,
        "bridge",
        &format!("ping -c1 -W2 {ip} >/dev/null && wget -qO- http://{ip}/hostname"),
    );
    assert_eq!(out.ok(), format!("{hostname}\n"));
    let by_name = probe_on(&d, "bridge", "ping -c1 -W1 alpha");
    assert_ne!(
        by_name.code, 0,
        "the default bridge resolved a name: {by_name:?}"
    );
    // Docker's /etc/hosts and resolv.conf.
    let files = sh_on(
        &d,
        "bridge",
        "grep -v '^#' /etc/hosts; cat /etc/resolv.conf",
    );
    let text = files.ok();
    assert!(text.contains("127.0.0.1\tlocalhost\n"), "{text}");
    assert!(!text.contains("127.0.0.11"), "{text}");
    assert!(
        text.contains("# Based on host file: '/etc/resolv.conf' (legacy)"),
        "{text}"
    );
    // The network's Containers list the running one.
    let r = d.request("GET", "/v1.45/networks/bridge", None).unwrap();
    assert_eq!(r.status, 200);
    let v = r.json();
    let id = inspect(&d, "alpha", "{{.Id}}");
    assert_eq!(
        v["Containers"][&id]["IPv4Address"],
        format!("{ip}/16").as_str()
    );
    assert_eq!(
        v["Options"]["com.docker.network.bridge.default_bridge"],
        "true"
    );
    // Stopped: no address, no endpoint.
    d.docker(&["stop", "-t", "1", "alpha"]).ok();
    assert_eq!(inspect(&d, "alpha", "{{.NetworkSettings.IPAddress}}"), "");
    let v = d
        .request("GET", "/v1.45/networks/bridge", None)
        .unwrap()
        .json();
    assert_eq!(v["Containers"], serde_json::json!({}));
    // Other modes: none has loopback only; --add-host, --dns, --dns-search.
    let none = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(none.ok(), "lo\n");
    let opts = d.docker(&[
        "run",
        "--rm",
        "--hostname",
        "box1",
        "--add-host",
        "db.local:192.0.2.7",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "example.test",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf",
    ]);
    let text = opts.ok();
    assert!(text.contains("192.0.2.7\tdb.local\n"), "{text}");
    assert!(text.contains("\tbox1\n"), "{text}");
    assert!(text.contains("nameserver 192.0.2.53\n"), "{text}");
    assert!(text.contains("search example.test\n"), "{text}");
}

#[test]
fn user_network_names_aliases_and_isolation() {
    let d = Daemon::start();
    d.busybox();
    // Our CLI makes the networks.
    let id = d
        .berth(&["network", "create", "front"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    d.berth(&["network", "create", "back"]).ok();
    httpd(&d, "web", &["--network", "front", "--network-alias", "www"]);
    let hostname = inspect(&d, "web", "{{.Config.Hostname}}");
    let out = sh_on(
        &d,
        "front",
        "nslookup web >/dev/null && ping -c1 -W2 www >/dev/null && wget -qO- http://web/hostname && wget -qO- http://www/hostname && grep nameserver /etc/resolv.conf",
    );
    assert_eq!(
        out.ok(),
        format!("{hostname}\n{hostname}\nnameserver 127.0.0.11\n")
    );
    let aliases = inspect(
        &d,
        "web",
        "{{json .NetworkSettings.Networks.front.Aliases}}",
    );
    assert_eq!(aliases, r#"["www"]"#);
    let dns = inspect(
        &d,
        "web",
        "{{json .NetworkSettings.Networks.front.DNSNames}}",
    );
    assert!(dns.starts_with(r#"["web","www","#), "{dns}");
    // The top-level fields are the default bridge's only, as in Docker.
    assert_eq!(inspect(&d, "web", "{{.NetworkSettings.IPAddress}}"), "");
    let ip = inspect(&d, "web", "{{.NetworkSettings.Networks.front.IPAddress}}");
    // Another network neither resolves nor reaches it.
    let other = probe_on(
        &d,
        "back",
        &format!("ping -c1 -W1 web && echo RESOLVED; ping -c1 -W1 {ip} && echo REACHED"),
    );
    assert!(!other.stdout.contains("REACHED"), "{other:?}");
    assert!(!other.stdout.contains("RESOLVED"), "{other:?}");
    // Nor does the default bridge.
    let bridge = sh_on(&d, "bridge", &format!("ping -c1 -W1 {ip} && echo REACHED"));
    assert!(!bridge.stdout.contains("REACHED"), "{bridge:?}");
    // In use: not removable; then removable.
    let busy = d.berth(&["network", "rm", "front"]);
    assert!(busy.fails(1).contains("has active endpoints"), "{busy:?}");
    let r = d.request("DELETE", "/v1.45/networks/front", None).unwrap();
    assert_eq!(r.status, 403, "{}", r.body_string());
    d.docker(&["rm", "-f", "web"]).ok();
    assert_eq!(
        d.berth(&["network", "rm", "front", "back"]).ok(),
        "front\nback\n"
    );
    let ls = d.berth(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert_eq!(ls.ok(), "bridge bridge\nhost host\nnone null\n");
}

#[test]
fn published_ports_answer_on_loopback_and_go_away() {
    let d = Daemon::start();
    d.busybox();
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:80");
    httpd(&d, "pub", &["-p", &spec]);
    let hostname = inspect(&d, "pub", "{{.Config.Hostname}}");
    let body = http_get_retry(port, "/hostname");
    assert!(body.ends_with(&format!("\r\n\r\n{hostname}\n")), "{body}");
    assert_eq!(
        d.berth(&["port", "pub"]).ok(),
        format!("80/tcp -> 127.0.0.1:{port}\n")
    );
    assert_eq!(
        d.docker(&["port", "pub", "80"]).ok(),
        format!("127.0.0.1:{port}\n")
    );
    let ps = d.docker(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps.ok(), format!("127.0.0.1:{port}->80/tcp\n"));
    // The port is taken now: a second container cannot have it, and
    // nothing of it stays.
    let clash = d.docker(&[
        "run", "-d", "--name", "clash", "-p", &spec, "busybox", "sleep", "30",
    ]);
    assert!(
        clash.fails(125).contains("port is already allocated"),
        "{clash:?}"
    );
    assert_eq!(
        inspect(
            &d,
            "clash",
            "{{.State.Running}} {{.NetworkSettings.IPAddress}}"
        ),
        "false"
    );
    // A port a host process holds is refused too.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let held_port = held.local_addr().unwrap().port();
    let busy = d.docker(&[
        "run",
        "--rm",
        "-p",
        &format!("127.0.0.1:{held_port}:80"),
        "busybox",
        "true",
    ]);
    assert!(busy.fails(125).contains("already"), "{busy:?}");
    drop(held);
    // Stopped: gone.
    d.docker(&["stop", "-t", "1", "pub"]).ok();
    assert!(http_get(port, "/hostname").is_err(), "port still answers");
    assert_eq!(d.berth(&["port", "pub"]).ok(), "");
    // -P with an exposed port; a UDP binding beside it (network_ports.rs
    // sends datagrams through UDP bindings).
    let uport = free_port();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "all",
        "--expose",
        "80",
        "-P",
        "-p",
        &format!("127.0.0.1:{uport}:9999/udp"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ])
    .ok();
    let mapped = d.docker(&["port", "all", "80/tcp"]).ok().to_string();
    let eph: u16 = mapped
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{mapped}"));
    assert!(mapped.starts_with("0.0.0.0:"), "{mapped}");
    assert!(http_get_retry(eph, "/hostname").contains("200 OK"));
    assert_eq!(
        d.docker(&["port", "all", "9999/udp"]).ok(),
        format!("127.0.0.1:{uport}\n")
    );
    d.docker(&["rm", "-f", "all"]).ok();
    assert!(
        http_get(eph, "/hostname").is_err(),
        "port still answers after rm"
    );
}

#[test]
fn network_commands_and_errors_with_docker_cli() {
    let d = Daemon::start();
    d.busybox();
    let out = d.docker(&[
        "network",
        "create",
        "--subnet",
        "10.123.0.0/24",
        "--gateway",
        "10.123.0.254",
        "--label",
        "team=net",
        "n3",
    ]);
    let id = out.ok().trim().to_string();
    assert_eq!(
        inspect(&d, "n3", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Labels.team}} {{.Driver}} {{.Scope}}"),
        "10.123.0.0/24 10.123.0.254 net bridge local"
    );
    let ls = d.docker(&["network", "ls"]).ok().to_string();
    assert!(
        ls.starts_with("NETWORK ID     NAME      DRIVER    SCOPE\n"),
        "{ls}"
    );
    assert!(
        ls.contains(&format!("{}   n3        bridge    local\n", &id[..12])),
        "{ls}"
    );
    assert_eq!(
        d.docker(&["network", "ls", "-q", "--filter", "label=team=net"])
            .ok(),
        format!("{}\n", &id[..12])
    );
    let r = d
        .request(
            "GET",
            "/v1.45/networks?filters=%7B%22type%22%3A%5B%22custom%22%5D%7D",
            None,
        )
        .unwrap();
    let names: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["n3"]);
    // Errors, as Docker words them.
    let dup = d.docker(&["network", "create", "n3"]);
    assert!(
        dup.fails(1).contains("network with name n3 already exists"),
        "{dup:?}"
    );
    let overlap = d.docker(&["network", "create", "--subnet", "10.123.0.0/16", "n4"]);
    assert!(overlap.fails(1).contains("Pool overlaps"), "{overlap:?}");
    let bad = d.docker(&["network", "create", "--subnet", "10.300.0.0/16", "n5"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    let pre = d.docker(&["network", "rm", "bridge"]);
    assert!(
        pre.fails(1)
            .contains("bridge is a pre-defined network and cannot be removed"),
        "{pre:?}"
    );
    let missing = d.docker(&["network", "rm", "nope"]);
    assert!(
        missing.fails(1).contains("network nope not found"),
        "{missing:?}"
    );
    let r = d.request("GET", "/v1.45/networks/nope", None).unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "network nope not found");
    let run = d.docker(&["run", "--rm", "--network", "nope", "busybox", "true"]);
    assert!(run.fails(125).contains("network nope not found"), "{run:?}");
    let bridge_ip = d.docker(&["run", "--rm", "--ip", "172.17.0.9", "busybox", "true"]);
    assert!(
        bridge_ip
            .fails(125)
            .contains("user specified IP address is supported on user defined networks only"),
        "{bridge_ip:?}"
    );
    // --ip and --mac-address on a user network; the same address twice.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--network",
        "n3",
        "--ip",
        "10.123.0.50",
        "--mac-address",
        "02:11:22:33:44:55",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    assert_eq!(
        inspect(&d, "fixed", "{{.NetworkSettings.Networks.n3.IPAddress}} {{.NetworkSettings.Networks.n3.Gateway}} {{.NetworkSettings.Networks.n3.MacAddress}}"),
        "10.123.0.50 10.123.0.254 02:11:22:33:44:55"
    );
    let twice = d.docker(&[
        "run",
        "--rm",
        "--network",
        "n3",
        "--ip",
        "10.123.0.50",
        "busybox",
        "true",
    ]);
    assert!(
        twice.fails(125).contains("Address already in use"),
        "{twice:?}"
    );
    // Connect and disconnect a running container.
    d.docker(&["run", "-d", "--name", "roam", "busybox", "sleep", "60"])
        .ok();
    d.docker(&["network", "connect", "--alias", "wanderer", "n3", "roam"])
        .ok();
    let addrs = d
        .docker(&["exec", "roam", "ip", "-4", "-o", "addr"])
        .ok()
        .to_string();
    assert!(
        addrs.contains("eth1") && addrs.contains("10.123.0."),
        "{addrs}"
    );
    let found = d.docker(&["exec", "fixed", "nslookup", "wanderer"]);
    assert!(found.ok().contains("10.123.0."), "{found:?}");
    let again = d.docker(&["network", "connect", "n3", "roam"]);
    assert_eq!(again.code, 1, "{again:?}");
    d.docker(&["network", "disconnect", "n3", "roam"]).ok();
    let addrs = d
        .docker(&["exec", "roam", "ip", "-4", "-o", "addr"])
        .ok()
        .to_string();
    assert!(!addrs.contains("10.123.0."), "{addrs}");
    assert_eq!(
        inspect(
            &d,
            "roam",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"
        ),
        "bridge"
    );
    // Prune takes unused custom networks only.
    d.docker(&["network", "create", "unused"]).ok();
    let pruned = d.docker(&["network", "prune", "-f"]);
    assert_eq!(pruned.ok(), "Deleted Networks:\nunused\n\n");
    d.docker(&["rm", "-f", "fixed", "roam"]).ok();
    d.docker(&["network", "rm", "n3"]).ok();
}

#[test]
fn daemon_restart_keeps_networks_and_traffic() {
    let mut d = Daemon::start();
    d.busybox();
    d.berth(&["network", "create", "keep"]).ok();
    let port = free_port();
    httpd(
        &d,
        "svc",
        &["--network", "keep", "-p", &format!("127.0.0.1:{port}:80")],
    );
    let ip = inspect(&d, "svc", "{{.NetworkSettings.Networks.keep.IPAddress}}");
    http_get_retry(port, "/hostname");
    d.kill9();
    // The daemon is gone; the kernel still forwards.
    assert!(http_get(port, "/hostname").unwrap().contains("200 OK"));
    d.restart();
    assert!(http_get(port, "/hostname").unwrap().contains("200 OK"));
    assert_eq!(
        inspect(&d, "svc", "{{.NetworkSettings.Networks.keep.IPAddress}}"),
        ip
    );
    // Names still resolve, and a new container gets another address.
    let out = sh_on(
        &d,
        "keep",
        "wget -qO- http://svc/hostname >/dev/null && ip -4 -o addr show eth0",
    );
    let text = out.ok().to_string();
    assert!(
        text.contains("inet ") && !text.contains(&format!("inet {ip}/")),
        "{text}"
    );
    d.docker(&["stop", "-t", "1", "svc"]).ok();
    assert!(http_get(port, "/hostname").is_err());
}

#[test]
fn legacy_links_write_hosts_entries_on_the_default_bridge() {
    let d = Daemon::start();
    d.busybox();
    httpd(&d, "db", &[]);
    let ip = inspect(&d, "db", "{{.NetworkSettings.IPAddress}}");
    let host = inspect(&d, "db", "{{.Config.Hostname}}");
    // docker's CLI: an alias; the name and the host name come along.
    d.docker(&[
        "run", "-d", "--name", "web", "--link", "db:d", "busybox", "sleep", "60",
    ])
    .ok();
    let hosts = d
        .docker(&["exec", "web", "cat", "/etc/hosts"])
        .ok()
        .to_string();
    assert!(hosts.contains(&format!("\n{ip}\td {host} db\n")), "{hosts}");
    let got = d.docker(&["exec", "web", "wget", "-qO-", "http://d/hostname"]);
    assert_eq!(got.ok(), format!("{host}\n"));
    assert_eq!(
        inspect(&d, "web", "{{json .HostConfig.Links}}"),
        r#"["/db:/web/d"]"#
    );
    // Ours: no alias, beside an --add-host entry (links come after those).
    let out = d.berth(&[
        "run",
        "--rm",
        "--name",
        "web2",
        "--add-host",
        "x.test:192.0.2.1",
        "--link",
        "db",
        "busybox",
        "sh",
        "-c",
        "grep -v -e localhost -e ip6 /etc/hosts | head -2; ping -c1 -W2 db >/dev/null && echo PONG",
    ]);
    assert_eq!(
        out.ok(),
        format!("192.0.2.1\tx.test\n{ip}\tdb {host}\nPONG\n")
    );
    // Docker's link variables: ports (TCP first), the name, the linked
    // container's own variables but PATH and HOME; exec sees them too.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "db2",
        "--expose",
        "5432",
        "--expose",
        "53/udp",
        "-e",
        "PGUSER=me",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    let ip3 = inspect(&d, "db2", "{{.NetworkSettings.IPAddress}}");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "webenv",
        "--link",
        "db2:my-db",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    let env = d.docker(&["exec", "webenv", "env"]).ok().to_string();
    for want in [
        format!("MY_DB_PORT=tcp://{ip3}:5432"),
        format!("MY_DB_PORT_5432_TCP=tcp://{ip3}:5432"),
        format!("MY_DB_PORT_5432_TCP_ADDR={ip3}"),
        "MY_DB_PORT_5432_TCP_PORT=5432".to_string(),
        "MY_DB_PORT_5432_TCP_PROTO=tcp".to_string(),
        format!("MY_DB_PORT_53_UDP=udp://{ip3}:53"),
        "MY_DB_NAME=/webenv/my-db".to_string(),
        "MY_DB_ENV_PGUSER=me".to_string(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} not in\n{env}");
    }
    assert!(!env.contains("MY_DB_ENV_PATH"), "{env}");
    // A container's own -e wins over a link's variable.
    let own = d.berth(&[
        "run",
        "--rm",
        "--link",
        "db2:my-db",
        "-e",
        "MY_DB_NAME=mine",
        "busybox",
        "sh",
        "-c",
        "echo $MY_DB_NAME",
    ]);
    assert_eq!(own.ok(), "mine\n");
    // A container the link names must exist and run; host networking and
    // links do not mix.
    let missing = d.docker(&["run", "--rm", "--link", "nope:n", "busybox", "true"]);
    assert!(
        missing
            .fails(125)
            .contains("could not get container for nope"),
        "{missing:?}"
    );
    let host_net = d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--link",
        "db",
        "busybox",
        "true",
    ]);
    assert!(
        host_net
            .fails(125)
            .contains("host type networking can't be used with links"),
        "{host_net:?}"
    );
    // The linked container comes back at another address: the link
    // follows it.
    d.docker(&["stop", "-t", "1", "db"]).ok();
    d.docker(&["run", "-d", "--name", "filler", "busybox", "sleep", "60"])
        .ok();
    d.docker(&["start", "db"]).ok();
    let ip2 = inspect(&d, "db", "{{.NetworkSettings.IPAddress}}");
    assert_ne!(ip, ip2);
    let hosts = d
        .docker(&["exec", "web", "cat", "/etc/hosts"])
        .ok()
        .to_string();
    assert!(
        hosts.contains(&format!("\n{ip2}\td {host} db\n")),
        "{hosts}"
    );
    d.docker(&["stop", "-t", "1", "db"]).ok();
    let stopped = d.docker(&["run", "--rm", "--link", "db:d", "busybox", "true"]);
    assert!(
        stopped
            .fails(125)
            .contains("Cannot link to a non running container: /db AS /"),
        "{stopped:?}"
    );
}

#[test]
fn network_inspect_verbose_is_plain_for_local_networks() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&["network", "create", "--label", "k=v", "vnet"])
        .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "member",
        "--network",
        "vnet",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    for net in ["bridge", "vnet"] {
        let plain = d.docker(&["network", "inspect", net]).ok().to_string();
        assert_eq!(
            d.docker(&["network", "inspect", "--verbose", net]).ok(),
            plain,
            "docker network inspect --verbose {net}"
        );
        assert_eq!(
            d.berth(&["network", "inspect", "-v", net]).ok(),
            d.berth(&["network", "inspect", net]).ok(),
            "berth network inspect -v {net}"
        );
    }
    let plain = d.request("GET", "/v1.45/networks/vnet", None).unwrap();
    let verbose = d
        .request("GET", "/v1.45/networks/vnet?verbose=true&scope=local", None)
        .unwrap();
    assert_eq!(verbose.status, 200);
    assert_eq!(verbose.json(), plain.json());
    assert_eq!(verbose.json()["Containers"].as_object().unwrap().len(), 1);
    let bad = d
        .request("GET", "/v1.45/networks/vnet?verbose=maybe", None)
        .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body_string());
    assert!(bad
        .body_string()
        .contains("invalid value for verbose: maybe"));
    let swarm = d
        .request("GET", "/v1.45/networks/vnet?scope=swarm", None)
        .unwrap();
    assert_eq!(swarm.status, 404, "{}", swarm.body_string());
    d.docker(&["rm", "-f", "member"]).ok();
    d.docker(&["network", "rm", "vnet"]).ok();
}

/// Processes of this test's daemon: it, its shims (their command lines
/// name its directory) and everything below them. Other tests' containers
/// come and go meanwhile; they are not counted.
fn our_processes(d: &Daemon) -> usize {
    let root = d.dir.path().to_string_lossy().into_owned();
    let procs: Vec<(u32, u32, String)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            Some((pid, ppid, String::from_utf8_lossy(&cmd).into_owned()))
        })
        .collect();
    let mut ours: std::collections::HashSet<u32> = procs
        .iter()
        .filter(|(_, _, cmd)| cmd.contains(&root))
        .map(|(pid, _, _)| *pid)
        .collect();
    loop {
        let below: Vec<u32> = procs
            .iter()
            .filter(|(pid, ppid, _)| !ours.contains(pid) && ours.contains(ppid))
            .map(|(pid, _, _)| *pid)
            .collect();
        if below.is_empty() {
            return ours.len();
        }
        ours.extend(below);
    }
}

/// A block of `n` host ports on 127.0.0.1 that were all free a moment ago.
fn free_port_range(n: u16) -> u16 {
    for attempt in 0..50u32 {
        let base = 20000 + ((std::process::id() + attempt * 7919) % 40) as u16 * 1000;
        if (base..base + n).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
    panic!("no free block of {n} ports");
}

/// Publishing is kernel forwarding only: a 1000-port range adds no process
/// beyond what any container has (its shim and its own processes), and a
/// port inside the range answers.
#[test]
fn a_thousand_published_ports_add_no_process() {
    let d = Daemon::start();
    d.busybox();
    let before = our_processes(&d);
    httpd(&d, "plain", &[]);
    let with_plain = our_processes(&d);
    let base = free_port_range(1000);
    let range = format!("127.0.0.1:{base}-{}:8000-8999", base + 999);
    d.docker(&[
        "run", "-d", "--name", "many", "-p", &range, "busybox", "httpd", "-f", "-p", "8500", "-h",
        "/etc",
    ])
    .ok();
    let with_many = our_processes(&d);
    let body = http_get_retry(base + 500, "/hostname");
    assert!(body.contains("200 OK"), "{body}");
    // Each container costs the same few processes, published ports or not.
    let plain_cost = with_plain - before;
    let many_cost = with_many - with_plain;
    assert!(plain_cost >= 2, "shim and httpd not seen: {plain_cost}");
    assert_eq!(
        many_cost, plain_cost,
        "a plain container added {plain_cost} processes, one with 1000 ports {many_cost}"
    );
    let ports = d.docker(&["port", "many"]).ok().lines().count();
    assert_eq!(ports, 1000);
    d.docker(&["rm", "-f", "plain", "many"]).ok();
}
