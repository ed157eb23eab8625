//! `events`: Docker's event stream, through the API, our CLI and the real
//! docker CLI; past events replayed from a journal that survives a daemon
//! restart; filters and their errors.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{docker_bin, Daemon};

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Past events in [since, now] through the API, as JSON values.
fn replay(d: &Daemon, since: f64, filters: &str) -> Vec<serde_json::Value> {
    let path = format!(
        "/v1.41/events?since={since:.3}&until={:.3}&filters={}",
        now_secs() + 0.001,
        urlencode(filters)
    );
    let r = d.request("GET", &path, None).unwrap();
    assert_eq!(r.status, 200, "{}", r.body_string());
    r.body_string()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn actions(evs: &[serde_json::Value]) -> Vec<String> {
    evs.iter()
        .map(|e| e["Action"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn container_lifecycle_events_in_dockers_shape_and_order() {
    let d = Daemon::start();
    d.busybox();
    let t0 = now_secs();
    d.berth(&[
        "run", "--name", "ev1", "--label", "team=a", "busybox", "true",
    ])
    .ok();
    d.berth(&["run", "-d", "--name", "ev2", "busybox", "sleep", "100"])
        .ok();
    d.berth(&["exec", "ev2", "sh", "-c", "exit 3"]).fails(3);
    // PID 1 ignores SIGTERM: stop ends with SIGKILL, as with Docker.
    d.berth(&["stop", "-t", "1", "ev2"]).ok();
    d.berth(&["rm", "ev1", "ev2"]).ok();

    let evs = replay(&d, t0, r#"{"container":["ev1"]}"#);
    let acts: Vec<String> = actions(&evs)
        .into_iter()
        .filter(|a| a != "attach")
        .collect();
    assert_eq!(acts, ["create", "start", "die", "destroy"], "{evs:#?}");
    let die = evs.iter().find(|e| e["Action"] == "die").unwrap();
    assert_eq!(die["Type"], "container");
    assert_eq!(die["status"], "die");
    assert_eq!(die["from"], "busybox");
    assert_eq!(die["scope"], "local");
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "0");
    assert_eq!(die["Actor"]["Attributes"]["name"], "ev1");
    assert_eq!(die["Actor"]["Attributes"]["team"], "a");
    assert_eq!(die["id"], die["Actor"]["ID"]);
    assert!(die["timeNano"].as_i64().unwrap() / 1_000_000_000 == die["time"].as_i64().unwrap());

    let evs = replay(&d, t0, r#"{"container":["ev2"]}"#);
    let acts = actions(&evs);
    let want = [
        "create",
        "start",
        "exec_create: sh -c exit 3",
        "exec_start: sh -c exit 3",
        "exec_die",
        "kill",
        "kill",
        "die",
        "stop",
        "destroy",
    ];
    let got: Vec<&str> = acts
        .iter()
        .map(String::as_str)
        .filter(|a| want.contains(a))
        .collect();
    assert_eq!(got, want, "{acts:?}");
    let exec_die = evs.iter().find(|e| e["Action"] == "exec_die").unwrap();
    assert_eq!(exec_die["Actor"]["Attributes"]["exitCode"], "3");
    let kills: Vec<&serde_json::Value> = evs.iter().filter(|e| e["Action"] == "kill").collect();
    assert_eq!(kills[0]["Actor"]["Attributes"]["signal"], "15");
    assert_eq!(kills[1]["Actor"]["Attributes"]["signal"], "9");
    let die = evs.iter().find(|e| e["Action"] == "die").unwrap();
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "137");

    // Filters combine: type and event.
    let evs = replay(&d, t0, r#"{"type":["container"],"event":["die"]}"#);
    assert_eq!(actions(&evs), ["die", "die"]);
    // Image events.
    d.berth(&["tag", "busybox", "mybox:1"]).ok();
    d.berth(&["rmi", "mybox:1"]).ok();
    let evs = replay(&d, t0, r#"{"type":["image"]}"#);
    assert_eq!(actions(&evs), ["tag", "untag"], "{evs:#?}");
    assert_eq!(evs[0]["Actor"]["Attributes"]["name"], "mybox:1");
}

#[test]
fn past_events_survive_a_daemon_restart() {
    let mut d = Daemon::start();
    d.busybox();
    let t0 = now_secs();
    d.berth(&["create", "--name", "keep", "busybox"]).ok();
    d.restart();
    let evs = replay(&d, t0, r#"{"container":["keep"]}"#);
    assert_eq!(actions(&evs), ["create"]);
    // The docker CLI reads the same journal.
    let out = d
        .docker(&[
            "events",
            "--since",
            &format!("{t0:.3}"),
            // "0s" would be the current second, truncated: a moment ahead
            // instead, so that the create just made is inside the window.
            "--until",
            &format!("{:.3}", now_secs() + 0.3),
            "--filter",
            "container=keep",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        .ok()
        .to_string();
    assert_eq!(out.trim(), "container create keep");
}

/// Reads lines of a streaming `events` process until `n` have arrived.
fn follow(mut cmd: Command, act: impl FnOnce(), n: usize) -> Vec<String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The subscription must be in place before the events happen.
    std::thread::sleep(Duration::from_millis(500));
    act();
    let mut lines = Vec::new();
    while lines.len() < n {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn live_events_through_both_clients() {
    let d = Daemon::start();
    d.busybox();
    let mut docker = Command::new(docker_bin());
    docker
        .args([
            "events",
            "--filter",
            "type=container",
            "--filter",
            "event=start",
            "--filter",
            "event=die",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
        ])
        .env("DOCKER_HOST", d.host());
    let lines = follow(
        docker,
        || {
            d.berth(&[
                "run", "--rm", "--name", "live1", "busybox", "sh", "-c", "exit 7",
            ])
            .fails(7);
        },
        2,
    );
    // Go prints a missing map key as "<no value>", as docker does.
    assert_eq!(lines, ["start live1 <no value>", "die live1 7"]);

    let mut berth = Command::new(common::berth_bin());
    berth
        .args(["-H", &d.host(), "events", "--filter", "event=create"])
        .env("BERTH_NO_AUTOSTART", "1");
    let lines = follow(
        berth,
        || {
            d.berth(&["create", "--name", "live2", "busybox"]).ok();
        },
        1,
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(" container create ") && lines[0].contains("name=live2"),
        "{lines:?}"
    );
}

#[test]
fn bad_filters_and_times_are_refused() {
    let d = Daemon::start();
    let r = d
        .request(
            "GET",
            "/events?filters=%7B%22foo%22%3A%5B%22x%22%5D%7D",
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.body_string().contains("invalid filter 'foo'"),
        "{}",
        r.body_string()
    );
    let r = d.request("GET", "/events?since=yesterday", None).unwrap();
    assert_eq!(r.status, 400, "{}", r.body_string());
    let e = d.berth(&["events", "--filter", "foo=bar"]);
    assert_eq!(e.code, 1, "{e:?}");
    assert!(e.stderr.contains("invalid filter 'foo'"), "{e:?}");
    let e = d.docker(&["events", "--filter", "foo=bar", "--until", "0s"]);
    assert_ne!(e.code, 0);
    assert!(e.stderr.contains("invalid filter 'foo'"), "{e:?}");
}
