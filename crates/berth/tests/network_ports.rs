//! Published UDP ports carrying real datagrams, and `ps --filter
//! publish=…` / `expose=…`.
//!
//! Traffic goes only to loopback and to the host side of the test daemon's
//! own bridge. The fixture's busybox `nc` has no UDP mode (Debian's
//! busybox-static builds the small nc: no `-u`), and no other applet serves
//! UDP on a chosen port, so the UDP server is a socket the test opens in the
//! container's network namespace: the datagrams still take the published
//! path (DNAT on the host, the veth, the container's own stack).

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::time::Duration;

use common::Daemon;

/// A host UDP port that was free a moment ago.
fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().unwrap().port()
}

fn inspect(d: &Daemon, name: &str, tmpl: &str) -> String {
    d.docker(&["inspect", "-f", tmpl, name])
        .ok()
        .trim()
        .to_string()
}

/// Binds a UDP socket at `0.0.0.0:port` inside the network namespace of
/// the process `pid` (a thread joins the namespace; the socket stays in it).
fn udp_in_netns(pid: &str, port: u16) -> UdpSocket {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("open netns");
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            ns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).expect("bind in container");
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s
    })
    .join()
    .expect("netns thread")
}

/// Answers one datagram with `reply:` + what came; returns what came and
/// where it came from.
fn serve_one(s: &UdpSocket) -> std::io::Result<(String, SocketAddr)> {
    let mut buf = [0u8; 1500];
    let (n, peer) = s.recv_from(&mut buf)?;
    let got = String::from_utf8_lossy(&buf[..n]).to_string();
    s.send_to(format!("reply:{got}").as_bytes(), peer)?;
    Ok((got, peer))
}

/// A client socket on the host that sends `msg` to `to`, the server
/// answering in a thread; returns (what the server got, the client's reply).
fn exchange(client: &UdpSocket, server: &UdpSocket, to: SocketAddr, msg: &str) -> (String, String) {
    let srv = server.try_clone().unwrap();
    let t = std::thread::spawn(move || serve_one(&srv));
    client.send_to(msg.as_bytes(), to).expect("send");
    let mut buf = [0u8; 1500];
    let reply = match client.recv_from(&mut buf) {
        Ok((n, from)) => {
            assert_eq!(from, to, "the reply comes from the published address");
            String::from_utf8_lossy(&buf[..n]).to_string()
        }
        Err(e) => format!("no reply: {e}"),
    };
    let got = match t.join().unwrap() {
        Ok((got, _)) => got,
        Err(e) => format!("nothing arrived: {e}"),
    };
    (got, reply)
}

fn client(bind: &str) -> UdpSocket {
    let c = UdpSocket::bind(bind).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    c
}

#[test]
fn udp_ports_carry_datagrams_both_ways() {
    let d = Daemon::start();
    d.busybox();
    let (lo_port, all_port) = (free_udp_port(), free_udp_port());
    d.docker(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        &format!("127.0.0.1:{lo_port}:5353/udp"),
        "-p",
        &format!("{all_port}:53/udp"),
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    assert_eq!(
        d.berth(&["port", "udp"]).ok(),
        format!("53/udp -> 0.0.0.0:{all_port}\n5353/udp -> 127.0.0.1:{lo_port}\n")
    );
    assert_eq!(
        d.docker(&["ps", "--format", "{{.Ports}}"]).ok(),
        format!("0.0.0.0:{all_port}->53/udp, 127.0.0.1:{lo_port}->5353/udp\n")
    );
    let pid = inspect(&d, "udp", "{{.State.Pid}}");
    let gw: Ipv4Addr = inspect(&d, "udp", "{{.NetworkSettings.Gateway}}")
        .parse()
        .unwrap();
    let s5353 = udp_in_netns(&pid, 5353);
    let s53 = udp_in_netns(&pid, 53);

    // Host loopback → 127.0.0.1-bound port (a connected client: it hears
    // of ICMP errors, see below).
    let lo_client = client("127.0.0.1:0");
    let to = SocketAddr::from(([127, 0, 0, 1], lo_port));
    lo_client.connect(to).unwrap();
    assert_eq!(
        exchange(&lo_client, &s5353, to, "ping"),
        ("ping".into(), "reply:ping".into())
    );
    // Again from the same source port: the flow's NAT holds.
    assert_eq!(
        exchange(&lo_client, &s5353, to, "again"),
        ("again".into(), "reply:again".into())
    );
    // The all-addresses port answers on loopback and on the host side of
    // the bridge.
    let to = SocketAddr::from(([127, 0, 0, 1], all_port));
    assert_eq!(
        exchange(&client("127.0.0.1:0"), &s53, to, "lo"),
        ("lo".into(), "reply:lo".into())
    );
    let to = SocketAddr::from((gw, all_port));
    assert_eq!(
        exchange(&client("0.0.0.0:0"), &s53, to, "gw"),
        ("gw".into(), "reply:gw".into())
    );
    // The 127.0.0.1 binding is not on the bridge's address.
    let c = client("0.0.0.0:0");
    c.send_to(b"stray", (gw, lo_port)).unwrap();
    s5353
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        s5353.recv_from(&mut buf).is_err(),
        "a 127.0.0.1 binding answered on {gw}"
    );
    drop((s5353, s53));

    // Stopped: the port is gone, for a new client and for the one whose
    // flow was forwarded (its tracked NAT went with the port): a datagram
    // meets the host's closed port (ICMP port unreachable, which a
    // connected socket sees as a refusal).
    d.docker(&["stop", "-t", "1", "udp"]).ok();
    assert_eq!(d.berth(&["port", "udp"]).ok(), "");
    let fresh = client("127.0.0.1:0");
    fresh.connect(("127.0.0.1", lo_port)).unwrap();
    for c in [&fresh, &lo_client] {
        c.send(b"late").unwrap();
        let err = c.recv(&mut buf).expect_err("an answer after stop");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err:?}");
    }
    d.docker(&["rm", "udp"]).ok();
}

/// A client that keeps its source port across a container's replacement
/// (a resolver, a syslog sender) reaches the new container: the old flow's
/// NAT does not outlive the port it was made for.
#[test]
fn udp_flow_follows_a_replaced_container() {
    let d = Daemon::start();
    d.busybox();
    let port = free_udp_port();
    let spec = format!("127.0.0.1:{port}:53/udp");
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let c = client("127.0.0.1:0");
    let mut ips = Vec::new();
    for (i, name) in ["first", "second"].into_iter().enumerate() {
        if i == 1 {
            // Takes the address the first one had, if the allocator would
            // hand it out again.
            d.docker(&["run", "-d", "--name", "filler", "busybox", "sleep", "60"])
                .ok();
        }
        d.docker(&[
            "run", "-d", "--name", name, "-p", &spec, "busybox", "sleep", "300",
        ])
        .ok();
        ips.push(inspect(&d, name, "{{.NetworkSettings.IPAddress}}"));
        let s = udp_in_netns(&inspect(&d, name, "{{.State.Pid}}"), 53);
        assert_eq!(
            exchange(&c, &s, to, name),
            (name.to_string(), format!("reply:{name}")),
            "container {name} at {}",
            ips[i]
        );
        drop(s);
        d.docker(&["rm", "-f", name]).ok();
    }
    assert_ne!(ips[0], ips[1]);
}

/// `ps --filter publish=…` matches the container ports of `-p` (the keys
/// of `HostConfig.PortBindings`), `expose=…` those of `ExposedPorts` (`-p`,
/// `--expose` and the image's): a port, a range, tcp unless told.
#[test]
fn ps_filters_publish_and_expose() {
    let d = Daemon::start();
    d.busybox();
    let run = |name: &str, extra: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "sleep", "300"]);
        d.docker(&args).ok();
    };
    let (p1, p2) = (free_udp_port(), free_udp_port());
    run("web", &["-p", &format!("127.0.0.1:{p1}:8080")]);
    run("dns", &["-p", &format!("127.0.0.1:{p2}:53/udp")]);
    run("exp", &["--expose", "9000-9002", "--expose", "7000/udp"]);
    run("auto", &["--expose", "8081", "-P"]);
    run("plain", &[]);
    let names = |filters: &[&str], berth: bool| {
        let mut args = vec!["ps", "--format", "{{.Names}}"];
        for f in filters {
            args.extend_from_slice(&["--filter", f]);
        }
        let out = if berth {
            d.berth(&args)
        } else {
            d.docker(&args)
        };
        let mut v: Vec<String> = out.ok().lines().map(str::to_string).collect();
        v.sort();
        v.join(" ")
    };
    for berth in [false, true] {
        let cli = if berth { "berth" } else { "docker" };
        let case = |f: &[&str], want: &str| {
            assert_eq!(names(f, berth), want, "{cli} ps --filter {f:?}");
        };
        case(&["publish=8080"], "web");
        case(&["publish=8080/tcp"], "web");
        case(&["publish=8080/udp"], "");
        case(&["publish=53/udp"], "dns");
        case(&["publish=53"], "");
        case(&["publish=8000-8100"], "web");
        // -P binds at start; the filter reads what was asked (Docker's).
        case(&["publish=8081"], "");
        case(&["publish=8080", "publish=53/udp"], "dns web");
        case(&["expose=8080"], "web");
        case(&["expose=9001"], "exp");
        case(&["expose=9002/tcp"], "exp");
        case(&["expose=7000"], "");
        case(&["expose=7000/udp"], "exp");
        case(&["expose=8081"], "auto");
        case(&["expose=50-60/udp"], "dns");
        case(&["expose=8000-9000"], "auto exp web");
        case(&["expose=9000-9002", "publish=8080"], "");
        case(&["expose=8080", "publish=8080"], "web");
    }
    d.docker(&["stop", "-t", "0", "web"]).ok();
    assert_eq!(names(&["publish=8080"], false), "");
    assert_eq!(
        d.docker(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            "publish=8080"
        ])
        .ok(),
        "web\n"
    );
    // Bad values, as Docker words them.
    let bad = d.docker(&["ps", "--filter", "publish=127.0.0.1:8080"]);
    assert!(
        bad.fails(1)
            .contains("filter for 'publish' should not contain ':': 127.0.0.1:8080"),
        "{bad:?}"
    );
    let bad = d.docker(&["ps", "--filter", "expose=http"]);
    assert!(
        bad.fails(1)
            .contains("error while looking up for expose http"),
        "{bad:?}"
    );
    let r = d
        .request(
            "GET",
            "/v1.45/containers/json?filters=%7B%22publish%22%3A%5B%2290-80%22%5D%7D",
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body_string());
}
