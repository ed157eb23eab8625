//! The Engine API as clients see it on the wire: version negotiation,
//! headers, error statuses and texts.

mod common;

use common::Daemon;

#[test]
fn ping_and_version_prefixes() {
    let d = Daemon::start();
    let head = d.request("HEAD", "/_ping", None).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("api-version"), Some("1.45"));
    assert_eq!(head.header("ostype"), Some("linux"));
    assert!(head.body.is_empty());
    let get = d.request("GET", "/_ping", None).unwrap();
    assert_eq!(get.body_string(), "OK");
    for v in ["1.41", "1.43", "1.45"] {
        let r = d.request("GET", &format!("/v{v}/version"), None).unwrap();
        assert_eq!(r.status, 200, "v{v}");
        assert_eq!(r.json()["ApiVersion"], "1.45");
    }
    let old = d.request("GET", "/v1.40/version", None).unwrap();
    assert_eq!(old.status, 400);
    assert_eq!(
        old.json()["message"],
        "client version 1.40 is too old. Minimum supported API version is 1.41, please upgrade your client to a newer version"
    );
    let new = d.request("GET", "/v1.46/info", None).unwrap();
    assert_eq!(new.status, 400);
    assert_eq!(
        new.json()["message"],
        "client version 1.46 is too new. Maximum supported API version is 1.45"
    );
    let info = d.request("GET", "/info", None).unwrap();
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["Swarm"]["LocalNodeState"], "inactive");
    let missing = d.request("GET", "/v1.41/nothing/here", None).unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "page not found");
}

#[test]
fn error_statuses() {
    let d = Daemon::start();
    d.busybox();
    let r = d.request("GET", "/containers/nope/json", None).unwrap();
    assert_eq!(
        (r.status, r.json()["message"].as_str().unwrap()),
        (404, "No such container: nope")
    );
    let r = d.request("GET", "/images/nope/json", None).unwrap();
    assert_eq!(
        (r.status, r.json()["message"].as_str().unwrap()),
        (404, "No such image: nope:latest")
    );
    let r = d
        .request("POST", "/containers/create", Some(br#"{"Image":"nope"}"#))
        .unwrap();
    assert_eq!(
        (r.status, r.json()["message"].as_str().unwrap()),
        (404, "No such image: nope:latest")
    );
    let r = d
        .request(
            "POST",
            "/containers/create",
            Some(br#"{"Image":"Bad:Ref"}"#),
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body_string());
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("invalid reference format"));
    let r = d
        .request(
            "POST",
            "/containers/create?name=x%20y",
            Some(br#"{"Image":"busybox"}"#),
        )
        .unwrap();
    assert_eq!(r.status, 400);
    let r = d
        .request("POST", "/containers/create", Some(b"{not json"))
        .unwrap();
    assert_eq!(r.status, 400);
    let r = d
        .request(
            "POST",
            "/containers/create?name=one",
            Some(br#"{"Image":"busybox","Cmd":["true"]}"#),
        )
        .unwrap();
    assert_eq!(r.status, 201);
    let id = r.json()["Id"].as_str().unwrap().to_string();
    let r = d
        .request(
            "POST",
            "/containers/create?name=one",
            Some(br#"{"Image":"busybox"}"#),
        )
        .unwrap();
    assert_eq!(r.status, 409);
    assert!(r.json()["message"].as_str().unwrap().contains(&id));
    let r = d.request("POST", "/containers/one/kill", None).unwrap();
    assert_eq!(r.status, 409, "{}", r.body_string());
    let r = d.request("POST", "/containers/nope/kill", None).unwrap();
    assert_eq!(
        r.json()["message"],
        "Cannot kill container: nope: No such container: nope"
    );
    let r = d.request("POST", "/containers/one/stop", None).unwrap();
    assert_eq!(r.status, 304);
    // Short ID prefix lookup.
    let r = d
        .request("GET", &format!("/containers/{}/json", &id[..12]), None)
        .unwrap();
    assert_eq!(r.json()["Name"], "/one");
}

#[test]
fn unescaped_image_names_in_paths() {
    let d = Daemon::start();
    d.busybox();
    let r = d
        .request(
            "POST",
            "/v1.41/images/busybox/tag?repo=127.0.0.1%3A5000%2Fflow-b&tag=latest",
            None,
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body_string());
    let r = d
        .request("GET", "/v1.41/images/127.0.0.1:5000/flow-b/json", None)
        .unwrap();
    assert_eq!(r.status, 200);
    let tags = r.json()["RepoTags"].clone();
    assert!(
        tags.as_array()
            .unwrap()
            .iter()
            .any(|t| t == "127.0.0.1:5000/flow-b:latest"),
        "{tags}"
    );
    let r = d
        .request("DELETE", "/v1.41/images/127.0.0.1:5000/flow-b", None)
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["Untagged"], "127.0.0.1:5000/flow-b:latest");
}

#[test]
fn running_container_survives_daemon_kill9() {
    let mut d = Daemon::start();
    d.busybox();
    let id = d
        .docker(&[
            "run",
            "-d",
            "busybox",
            "sh",
            "-c",
            "echo before; sleep 2; echo after; exit 5",
        ])
        .ok()
        .trim()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.restart();
    // The same process, still running, reconnected.
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.Status}}", &id]).ok(),
        "running\n"
    );
    assert_eq!(d.docker(&["wait", &id]).ok(), "5\n");
    let logs = d.docker(&["logs", &id]).ok().to_string();
    assert_eq!(logs, "before\nafter\n");
    // exec, logs and stop work on a container started by the previous daemon.
    let long = d
        .docker(&["run", "-d", "busybox", "sh", "-c", "echo up; sleep 300"])
        .ok()
        .trim()
        .to_string();
    d.kill9();
    d.restart();
    assert_eq!(
        d.docker(&["exec", &long, "echo", "exec-after-restart"])
            .ok(),
        "exec-after-restart\n"
    );
    assert_eq!(d.docker(&["logs", &long]).ok(), "up\n");
    d.docker(&["stop", "-t", "1", &long]).ok();
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.Status}}", &long])
            .ok(),
        "exited\n"
    );
    // An exit while the daemon is down is found at the next start.
    let id2 = d
        .docker(&["run", "-d", "busybox", "sh", "-c", "sleep 0.5; exit 9"])
        .ok()
        .trim()
        .to_string();
    d.kill9();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    d.restart();
    assert_eq!(
        d.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &id2
        ])
        .ok(),
        "exited 9\n"
    );
}

/// Many creates at once (each looks through every container for its name
/// while others are being added) all finish: the container list once
/// locked two records at a time and deadlocked under this load.
#[test]
fn parallel_creates_all_finish() {
    let d = Daemon::start();
    d.busybox();
    std::thread::scope(|s| {
        for t in 0..16 {
            let d = &d;
            s.spawn(move || {
                for i in 0..32 {
                    let r = d
                        .request(
                            "POST",
                            &format!("/v1.41/containers/create?name=par-{t}-{i}"),
                            Some(br#"{"Image":"busybox","Cmd":["true"]}"#),
                        )
                        .unwrap();
                    assert_eq!(r.status, 201, "{}", r.body_string());
                }
            });
        }
    });
    let r = d
        .request("GET", "/v1.41/containers/json?all=1", None)
        .unwrap();
    assert_eq!(r.json().as_array().unwrap().len(), 16 * 32);
}

/// SIGTERM stops the daemon even while clients hold streams that never end
/// on their own (`events`, `logs -f`), and the container keeps running for
/// the next daemon.
#[test]
fn sigterm_with_open_streams_still_stops() {
    let mut d = Daemon::start();
    d.busybox();
    let id = d
        .berth(&["run", "-d", "busybox", "sh", "-c", "echo up; sleep 300"])
        .ok()
        .trim()
        .to_string();
    let follow = |args: &[&str]| {
        std::process::Command::new(common::berth_bin())
            .args(["-H", &d.host()])
            .args(args)
            .env("BERTH_NO_AUTOSTART", "1")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut events = follow(&["events"]);
    let mut logs = follow(&["logs", "-f", &id]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let took = d.term(std::time::Duration::from_secs(15));
    let _ = (events.kill(), logs.kill(), events.wait(), logs.wait());
    let took = took.expect("daemon still running 15 s after SIGTERM");
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
    d.restart();
    assert_eq!(
        d.berth(&["inspect", "-f", "{{.State.Status}}", &id]).ok(),
        "running\n"
    );
}
