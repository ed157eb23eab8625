//! `diff` and `commit` (issue 9): `GET /containers/{id}/changes` and
//! `POST /commit`, through our CLI, the real docker CLI and the raw API;
//! the committed image as `image inspect`, `history` and `run` see it; and
//! a daemon killed in the middle of a commit.

mod common;

use std::time::{Duration, Instant};

use common::Daemon;

/// A container that added, changed and deleted files, then exited.
fn changed_container(d: &Daemon, name: &str) {
    d.berth(&[
        "run",
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "mkdir -p /tmp/new && echo x > /tmp/new/f && echo 'extra:x:5:5::/:/bin/sh' >> /etc/passwd && rm /bin/ls",
    ])
    .ok();
}

fn inspect(d: &Daemon, image: &str) -> serde_json::Value {
    let r = d
        .request("GET", &format!("/v1.45/images/{image}/json"), None)
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body_string());
    r.json()
}

fn layers(v: &serde_json::Value) -> Vec<String> {
    v["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

fn is_image_id(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn diff_lists_added_changed_and_deleted_paths() {
    let d = Daemon::start();
    d.busybox();
    changed_container(&d, "d1");

    let ours = d.berth(&["diff", "d1"]).ok().to_string();
    let lines: Vec<&str> = ours.lines().collect();
    for want in [
        "C /bin",
        "D /bin/ls",
        "C /etc/passwd",
        "A /tmp/new",
        "A /tmp/new/f",
    ] {
        assert!(lines.contains(&want), "{want} missing from:\n{ours}");
    }
    // What the runtime mounts is not the container's change.
    for hidden in [
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
        "/proc",
        "/sys",
        "/dev",
    ] {
        assert!(
            !lines.iter().any(|l| l.ends_with(hidden)),
            "{hidden} listed:\n{ours}"
        );
    }
    // Parents come before their children, as dockerd's walk has them.
    let pos = |l: &str| lines.iter().position(|x| *x == l).unwrap();
    assert!(pos("A /tmp/new") < pos("A /tmp/new/f"));
    assert!(pos("C /bin") < pos("D /bin/ls"));

    // The docker CLI prints the same from the same API.
    assert_eq!(d.docker(&["diff", "d1"]).ok(), ours);
    assert_eq!(d.docker(&["container", "diff", "d1"]).ok(), ours);
    assert_eq!(d.berth(&["container", "diff", "d1"]).ok(), ours);

    let r = d
        .request("GET", "/v1.45/containers/d1/changes", None)
        .unwrap();
    assert_eq!(r.status, 200);
    let v = r.json();
    let items = v.as_array().unwrap();
    assert!(items.contains(&serde_json::json!({"Path": "/tmp/new/f", "Kind": 1})));
    assert!(items.contains(&serde_json::json!({"Path": "/etc/passwd", "Kind": 0})));
    assert!(items.contains(&serde_json::json!({"Path": "/bin/ls", "Kind": 2})));

    // A container that changed nothing: no lines, `null` from the API.
    d.berth(&["create", "--name", "fresh", "busybox"]).ok();
    assert_eq!(d.berth(&["diff", "fresh"]).ok(), "");
    let r = d
        .request("GET", "/v1.45/containers/fresh/changes", None)
        .unwrap();
    assert_eq!(r.body_string().trim(), "null");

    // A running container, changed through exec.
    d.berth(&["run", "-d", "--name", "live", "busybox", "sleep", "60"])
        .ok();
    d.berth(&["exec", "live", "touch", "/root/made-live"]).ok();
    let out = d.docker(&["diff", "live"]).ok().to_string();
    assert!(out.lines().any(|l| l == "A /root/made-live"), "{out}");

    // Errors: docker's text and exit code from both CLIs, 404 from the API.
    let e = d.berth(&["diff", "nope"]).fails(1).to_string();
    assert_eq!(
        e.trim(),
        "Error response from daemon: No such container: nope"
    );
    let e = d.docker(&["diff", "nope"]).fails(1).to_string();
    assert!(e.contains("No such container: nope"), "{e}");
    let r = d
        .request("GET", "/v1.45/containers/nope/changes", None)
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "No such container: nope");
    let e = d.berth(&["diff"]).fails(1).to_string();
    assert!(e.contains("'berth diff' requires 1 argument"), "{e}");
}

#[test]
fn commit_applies_changes_message_and_author() {
    let d = Daemon::start();
    d.busybox();
    let base = inspect(&d, "busybox");
    d.berth(&[
        "run",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo hello > /greeting",
    ])
    .ok();
    let id = d
        .berth(&[
            "commit",
            "-m",
            "my message",
            "-a",
            "Ann <ann@example.com>",
            "-c",
            r#"CMD ["cat","/greeting"]"#,
            "-c",
            "ENV FOO=bar",
            "--change",
            "EXPOSE 8080",
            "-c",
            "LABEL team=core",
            "-c",
            "USER nobody",
            "-c",
            "WORKDIR /srv",
            "-c",
            "VOLUME /data",
            "-c",
            "STOPSIGNAL SIGUSR1",
            "-c",
            "ONBUILD RUN true",
            "c1",
            "mine:v1",
        ])
        .ok()
        .trim()
        .to_string();
    assert!(is_image_id(&id), "{id}");

    let v = inspect(&d, "mine:v1");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["RepoTags"], serde_json::json!(["mine:v1"]));
    assert_eq!(v["Comment"], "my message");
    assert_eq!(v["Author"], "Ann <ann@example.com>");
    assert_eq!(v["Parent"], base["Id"]);
    let c1 = d
        .berth(&["inspect", "-f", "{{.Id}}", "c1"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(v["Container"], c1.as_str());
    let cfg = &v["Config"];
    assert_eq!(cfg["Cmd"], serde_json::json!(["cat", "/greeting"]));
    assert!(cfg["Env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("FOO=bar")));
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some(), "{cfg}");
    assert_eq!(cfg["Labels"]["team"], "core");
    assert_eq!(cfg["User"], "nobody");
    assert_eq!(cfg["WorkingDir"], "/srv");
    assert!(cfg["Volumes"].get("/data").is_some(), "{cfg}");
    assert_eq!(cfg["StopSignal"], "SIGUSR1");
    assert_eq!(cfg["OnBuild"], serde_json::json!(["RUN true"]));
    // One new layer on top of the parent's.
    let (old, new) = (layers(&base), layers(&v));
    assert_eq!(new.len(), old.len() + 1);
    assert_eq!(new[..old.len()], old[..]);

    // History: the new entry on top, with its comment and the command.
    let h = d
        .request("GET", "/v1.45/images/mine:v1/history", None)
        .unwrap()
        .json();
    assert_eq!(h[0]["Id"], id.as_str());
    assert_eq!(h[0]["Comment"], "my message");
    assert_eq!(h[0]["CreatedBy"], "sh -c echo hello > /greeting");
    assert!(h[0]["Size"].as_i64().unwrap() > 0, "{h}");
    let out = d
        .berth(&["history", "--no-trunc", "mine:v1"])
        .ok()
        .to_string();
    let top = out.lines().nth(1).unwrap();
    assert!(top.starts_with(&id) && top.contains("my message"), "{out}");
    let out = d.docker(&["history", "mine:v1"]).ok().to_string();
    assert!(out.lines().nth(1).unwrap().contains("my message"), "{out}");

    // The image runs with its new config and file.
    assert_eq!(d.berth(&["run", "--rm", "mine:v1"]).ok(), "hello\n");
    let out = d
        .berth(&[
            "run",
            "--rm",
            "mine:v1",
            "sh",
            "-c",
            "id -u; pwd; echo $FOO",
        ])
        .ok()
        .to_string();
    assert_eq!(out, "65534\n/srv\nbar\n");

    // The container itself is unchanged by being committed.
    assert_eq!(
        d.berth(&["inspect", "-f", "{{.State.Status}}", "c1"]).ok(),
        "exited\n"
    );
}

#[test]
fn docker_cli_commits_and_sees_the_result() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&[
        "run",
        "--name",
        "c2",
        "busybox",
        "sh",
        "-c",
        "echo from-docker > /f",
    ])
    .ok();
    let id = d
        .docker(&["commit", "-m", "via docker", "-a", "Bob", "c2", "dimg"])
        .ok()
        .trim()
        .to_string();
    assert!(is_image_id(&id), "{id}");
    assert_eq!(
        d.docker(&[
            "image",
            "inspect",
            "-f",
            "{{.Comment}}|{{.Author}}|{{index .RepoTags 0}}",
            "dimg"
        ])
        .ok(),
        "via docker|Bob|dimg:latest\n"
    );
    assert_eq!(
        d.docker(&["run", "--rm", "dimg", "cat", "/f"]).ok(),
        "from-docker\n"
    );
    let out = d
        .docker(&["history", "--no-trunc", "dimg"])
        .ok()
        .to_string();
    assert!(out.lines().nth(1).unwrap().contains("via docker"), "{out}");

    // `container commit`, a new entrypoint dropping the command (as a
    // Dockerfile's does), and `--pause=false`.
    d.docker(&[
        "container",
        "commit",
        "--pause=false",
        "--change",
        r#"ENTRYPOINT ["/bin/echo","said"]"#,
        "c2",
        "echoer:1",
    ])
    .ok();
    let v = inspect(&d, "echoer:1");
    assert_eq!(
        v["Config"]["Entrypoint"],
        serde_json::json!(["/bin/echo", "said"])
    );
    assert_eq!(v["Config"]["Cmd"], serde_json::Value::Null);
    assert_eq!(
        d.docker(&["run", "--rm", "echoer:1", "hi"]).ok(),
        "said hi\n"
    );

    // The docker 20.10 client (API 1.41) too.
    let old = d
        .docker20(&["commit", "-m", "old client", "c2", "old:1"])
        .ok()
        .trim()
        .to_string();
    assert!(is_image_id(&old), "{old}");
    assert_eq!(inspect(&d, "old:1")["Comment"], "old client");
    assert!(d
        .docker20(&["diff", "c2"])
        .ok()
        .lines()
        .any(|l| l == "A /f"));

    // Without a reference: an untagged image, its ID printed.
    let bare = d
        .berth(&["container", "commit", "c2"])
        .ok()
        .trim()
        .to_string();
    assert!(is_image_id(&bare));
    assert_eq!(inspect(&d, &bare)["RepoTags"], serde_json::json!([]));

    // Docker's errors, from both CLIs.
    let e = d.berth(&["commit", "nope"]).fails(1).to_string();
    assert_eq!(
        e.trim(),
        "Error response from daemon: No such container: nope"
    );
    let e = d.docker(&["commit", "nope"]).fails(1).to_string();
    assert!(e.contains("No such container: nope"), "{e}");
    let e = d
        .berth(&["commit", "-c", "ADD . /", "c2"])
        .fails(1)
        .to_string();
    assert!(e.contains("ADD is not a valid change command"), "{e}");
    let e = d
        .docker(&["commit", "-c", "FROM x", "c2"])
        .fails(1)
        .to_string();
    assert!(e.contains("FROM is not a valid change command"), "{e}");
    let e = d.berth(&["commit"]).fails(1).to_string();
    assert!(
        e.contains("'berth commit' requires at least 1 and at most 2 arguments"),
        "{e}"
    );
    let r = d
        .request("POST", "/v1.45/commit?container=nope", None)
        .unwrap();
    assert_eq!(r.status, 404);
    let r = d
        .request("POST", "/v1.45/commit?container=c2&repo=Bad%20Name", None)
        .unwrap();
    assert_eq!(r.status, 400);
}

#[test]
fn commit_api_body_config_and_empty_layer() {
    let d = Daemon::start();
    d.busybox();
    let base = inspect(&d, "busybox");
    d.berth(&["create", "--name", "same", "-e", "KEEP=1", "busybox", "sh"])
        .ok();
    // A config in the body: merged with the container's where it is silent.
    let r = d
        .request(
            "POST",
            "/v1.45/commit?container=same&repo=api&tag=t&comment=by%20api&changes=LABEL%20x%3Dy",
            Some(br#"{"Cmd":["echo","body"],"Env":["NEW=2"],"HostConfig":{}}"#),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body_string());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    assert!(is_image_id(&id));
    let v = inspect(&d, "api:t");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["echo", "body"]));
    let env: Vec<&str> = v["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"NEW=2") && env.contains(&"KEEP=1"), "{env:?}");
    assert_eq!(v["Config"]["Labels"]["x"], "y");
    // Nothing changed in the filesystem: no new layer, an empty history entry.
    assert_eq!(layers(&v), layers(&base));
    let h = d
        .request("GET", "/v1.45/images/api:t/history", None)
        .unwrap()
        .json();
    assert_eq!(h[0]["Comment"], "by api");
    assert_eq!(h[0]["Size"], 0);
    assert_eq!(d.berth(&["run", "--rm", "api:t"]).ok(), "body\n");
}

/// The pause, unpause and commit events of a container since a time.
fn actions(d: &Daemon, since: i64, name: &str) -> Vec<String> {
    let until = unix_now() + 1;
    let r = d
        .request(
            "GET",
            &format!("/v1.45/events?since={since}&until={until}&filters=%7B%22container%22%3A%5B%22{name}%22%5D%7D"),
            None,
        )
        .unwrap();
    r.body_string()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["Actor"]["Attributes"]["name"] == name)
        .map(|e| e["Action"].as_str().unwrap_or("").to_string())
        .filter(|a| matches!(a.as_str(), "pause" | "unpause" | "commit"))
        .collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn commit_pauses_a_running_container_unless_told_not_to() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "run1",
        "busybox",
        "sh",
        "-c",
        "echo live > /live; sleep 120",
    ])
    .ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.berth(&["diff", "run1"]).ok().contains("A /live") {
        assert!(Instant::now() < deadline, "the container never wrote /live");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t0 = unix_now() - 1;
    d.berth(&["commit", "run1", "snap:1"]).ok();
    d.berth(&["commit", "--pause=false", "run1", "snap:2"]).ok();
    // Still running, not left paused.
    assert_eq!(
        d.berth(&["inspect", "-f", "{{.State.Status}}", "run1"])
            .ok(),
        "running\n"
    );
    std::thread::sleep(Duration::from_millis(300));
    let acts = actions(&d, t0, "run1");
    assert_eq!(
        acts,
        vec!["pause", "commit", "unpause", "commit"],
        "events: {acts:?}"
    );
    assert_eq!(
        d.berth(&["run", "--rm", "snap:2", "cat", "/live"]).ok(),
        "live\n"
    );
    // A paused container is committed as it is, and stays paused.
    d.berth(&["pause", "run1"]).ok();
    d.docker(&["commit", "run1", "snap:3"]).ok();
    assert_eq!(
        d.berth(&["inspect", "-f", "{{.State.Status}}", "run1"])
            .ok(),
        "paused\n"
    );
    d.berth(&["unpause", "run1"]).ok();
}

#[test]
fn daemon_killed_mid_commit_leaves_nothing_half_made() {
    let mut d = Daemon::start();
    d.busybox();
    d.berth(&[
        "run",
        "--name",
        "big",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=/blob$i bs=1M count=16 2>/dev/null; done",
    ])
    .ok();
    let layers_dir = d.data_root().join("layers");
    let mut child = std::process::Command::new(common::berth_bin())
        .args(["-H", &d.host(), "commit", "big", "half:made"])
        .env("BERTH_NO_AUTOSTART", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill the daemon once the new layer is being unpacked.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut saw_unpack = false;
    while Instant::now() < deadline {
        let busy = std::fs::read_dir(&layers_dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("tmp-"));
        if busy {
            saw_unpack = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        saw_unpack,
        "the commit ended before it could be interrupted"
    );
    d.kill9();
    let _ = child.wait();
    d.restart();

    // No tag points at a half-made image; the interrupted work is swept.
    let e = d
        .berth(&["image", "inspect", "half:made"])
        .fails(1)
        .to_string();
    assert!(e.contains("No such image: half:made"), "{e}");
    let leftovers: Vec<String> = std::fs::read_dir(&layers_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Everything still referenced works: the image, the container, its changes.
    assert_eq!(
        d.berth(&["run", "--rm", "busybox", "echo", "ok"]).ok(),
        "ok\n"
    );
    assert!(d.berth(&["diff", "big"]).ok().contains("A /blob8"));
    // And the commit, done again, completes.
    d.berth(&["commit", "big", "half:made"]).ok();
    let out = d
        .berth(&["run", "--rm", "half:made", "sh", "-c", "ls /blob* | wc -l"])
        .ok()
        .to_string();
    assert_eq!(out.trim(), "8");
}

/// Names in a tar file (`tar tf`).
fn tar_names(path: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("tar")
        .arg("tf")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "tar tf {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn export_writes_the_container_filesystem_without_its_mounts() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "ex1",
        "-v",
        "exv:/data",
        "busybox",
        "sh",
        "-c",
        "echo made > /made && echo vol > /data/v && rm /bin/ls && touch /ready && sleep 1000",
    ])
    .ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.berth(&["exec", "ex1", "test", "-e", "/ready"]).code != 0 {
        assert!(Instant::now() < deadline, "container never got ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Running, with -o: the overlay alone (no volume, no /proc contents).
    let out = d.dir.path().join("running.tar");
    d.berth(&["export", "-o", out.to_str().unwrap(), "ex1"])
        .ok();
    let names = tar_names(&out);
    for want in [
        "made",
        "bin/",
        "bin/busybox",
        "etc/passwd",
        "proc/",
        "data/",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    for gone in ["bin/ls", "data/v", "proc/self", "proc/1/"] {
        assert!(!names.iter().any(|n| n == gone), "{gone} in export");
    }
    assert!(names
        .iter()
        .all(|n| !n.starts_with('/') && !n.starts_with("./")));

    // Stopped, with the docker CLI, to stdout; then imported and run.
    d.berth(&["kill", "ex1"]).ok();
    let piped = d.dir.path().join("stopped.tar");
    let status = std::process::Command::new(common::docker_bin())
        .args(["export", "ex1"])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdout(std::fs::File::create(&piped).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(tar_names(&piped), names, "stopped export differs");
    d.berth(&["import", piped.to_str().unwrap(), "exported:1"])
        .ok();
    assert_eq!(
        d.berth(&["run", "--rm", "exported:1", "cat", "/made"]).ok(),
        "made\n"
    );
    assert_ne!(
        d.berth(&["run", "--rm", "exported:1", "test", "-e", "/bin/ls"])
            .code,
        0
    );

    // Errors in docker's words; a failed -o leaves no file behind.
    let err = d.berth(&["export", "-o", "/tmp/berth-export-nope.tar", "nosuch"]);
    assert!(
        err.fails(1).contains("No such container: nosuch"),
        "{err:?}"
    );
    assert!(!std::path::Path::new("/tmp/berth-export-nope.tar").exists());
    assert!(d
        .berth(&["container", "export"])
        .fails(1)
        .contains("requires 1 argument"));
}
