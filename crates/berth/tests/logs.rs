//! Container logs (issue 4): json-file rotated by default and as
//! `--log-opt` or daemon.json say, compressed rotation, `none` and `local`,
//! and `logs` reading it all back — tail, since/until, timestamps,
//! details, follow across rotation, after a daemon restart, until the
//! container exits — through the docker CLI and ours.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{berth_bin, docker_bin, Daemon};

fn id_of(d: &Daemon, name: &str) -> String {
    d.docker(&["inspect", "-f", "{{.Id}}", name])
        .ok()
        .trim()
        .to_string()
}

fn container_dir(d: &Daemon, name: &str) -> PathBuf {
    d.data_root().join("containers").join(id_of(d, name))
}

/// The log files of a container (current, rotated, lock) and their bytes.
fn log_files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(".log"))
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().map(|m| m.len()).unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[track_caller]
fn failed_with(r: &common::Run, msg: &str) {
    assert!(
        r.code != 0 && r.stderr.contains(msg),
        "want {msg:?}; got {}: {}",
        r.code,
        r.stderr
    );
}

/// Asserts `text` holds `prefix1` … `prefixN` lines, each once, in order.
#[track_caller]
fn assert_numbered(text: &str, prefix: &str, n: usize) {
    let want: Vec<String> = (1..=n).map(|i| format!("{prefix}{i}")).collect();
    let got: Vec<&str> = text.lines().collect();
    if got != want {
        let first_bad = got.iter().zip(&want).position(|(a, b)| a != b);
        panic!(
            "{} lines, want {n}; first difference at {first_bad:?}: {:?}",
            got.len(),
            first_bad.map(|i| (got[i], &want[i]))
        );
    }
}

#[test]
fn json_file_is_rotated_by_default_and_options_are_checked() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&["run", "--name", "plain", "busybox", "echo", "hi"])
        .ok();
    assert_eq!(
        d.docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}",
            "plain"
        ])
        .ok(),
        "json-file {\"max-file\":\"5\",\"max-size\":\"20m\"}\n"
    );
    let dir = container_dir(&d, "plain");
    let id = id_of(&d, "plain");
    let text = std::fs::read_to_string(dir.join(format!("{id}-json.log"))).unwrap();
    let rec: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(
        (rec["log"].as_str(), rec["stream"].as_str()),
        (Some("hi\n"), Some("stdout"))
    );
    assert!(
        text.starts_with("{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"time\":\""),
        "{text}"
    );
    // Docker's errors, at create.
    for (opt, msg) in [
        ("foo=bar", "unknown log opt 'foo' for json-file log driver"),
        ("max-size=10x", "invalid suffix: 'x'"),
        ("max-size=0", "max-size must be a positive number"),
        ("max-file=0", "max-file cannot be less than 1"),
        (
            "compress=maybe",
            "strconv.ParseBool: parsing \"maybe\": invalid syntax",
        ),
    ] {
        failed_with(&d.docker(&["create", "--log-opt", opt, "busybox"]), msg);
    }
    failed_with(
        &d.docker(&[
            "create",
            "--log-opt",
            "max-file=1",
            "--log-opt",
            "max-size=1m",
            "--log-opt",
            "compress=true",
            "busybox",
        ]),
        "compress cannot be true when max-file is less than 2",
    );
    failed_with(
        &d.docker(&["create", "--log-driver", "syslog", "busybox"]),
        "logger: no log driver named 'syslog' is registered",
    );
    failed_with(
        &d.docker(&[
            "create",
            "--log-driver",
            "local",
            "--log-opt",
            "labelz=x",
            "busybox",
        ]),
        "unknown log opt 'labelz' for log driver local",
    );
    failed_with(
        &d.berth(&["create", "--log-opt", "nope=1", "busybox"]),
        "unknown log opt 'nope' for json-file log driver",
    );
    failed_with(
        &d.docker(&["run", "--log-opt", "max-size=1q", "busybox", "true"]),
        "invalid suffix: 'q'",
    );
    // Nothing half-made was left.
    assert_eq!(d.docker(&["ps", "-aq"]).ok().lines().count(), 1);
}

#[test]
fn daemon_json_log_defaults() {
    let mut d = Daemon::start();
    d.busybox();
    std::fs::write(
        d.dir.path().join("daemon.json"),
        r#"{"log-driver": "json-file", "log-opts": {"max-size": "2k", "max-file": "2"}}"#,
    )
    .unwrap();
    d.restart();
    d.docker(&[
        "run",
        "--name",
        "small",
        "busybox",
        "sh",
        "-c",
        "seq 1 2000",
    ])
    .ok();
    assert_eq!(
        d.docker(&[
            "inspect",
            "-f",
            "{{json .HostConfig.LogConfig.Config}}",
            "small"
        ])
        .ok(),
        "{\"max-file\":\"2\",\"max-size\":\"2k\"}\n"
    );
    // The container's own options win over the daemon's.
    d.docker(&[
        "run",
        "--name",
        "own",
        "--log-opt",
        "max-size=1m",
        "busybox",
        "true",
    ])
    .ok();
    assert_eq!(
        d.docker(&[
            "inspect",
            "-f",
            "{{json .HostConfig.LogConfig.Config}}",
            "own"
        ])
        .ok(),
        "{\"max-file\":\"2\",\"max-size\":\"1m\"}\n"
    );
    // Two files of ~2 kB: the budget, whatever was written.
    let files = log_files(&container_dir(&d, "small"));
    let total: u64 = files
        .iter()
        .filter(|(n, _)| !n.ends_with(".lock"))
        .map(|(_, s)| s)
        .sum();
    assert!(total < 2 * 2100, "{files:?}");
    let logs = d.docker(&["logs", "small"]).ok().to_string();
    let last: Vec<&str> = logs.lines().rev().take(3).collect();
    assert_eq!(last, ["2000", "1999", "1998"]);
    // The daemon's default driver.
    std::fs::write(
        d.dir.path().join("daemon.json"),
        r#"{"log-driver": "local"}"#,
    )
    .unwrap();
    d.restart();
    d.docker(&[
        "run",
        "--name",
        "loc",
        "busybox",
        "echo",
        "local by default",
    ])
    .ok();
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "loc"])
            .ok(),
        "local\n"
    );
    assert_eq!(d.docker(&["logs", "loc"]).ok(), "local by default\n");
}

#[test]
fn nothing_lost_across_rotation() {
    let d = Daemon::start();
    d.busybox();
    for (name, extra) in [("plain", None), ("gz", Some("compress=true"))] {
        let mut args = vec![
            "run",
            "--name",
            name,
            "--log-opt",
            "max-size=10k",
            "--log-opt",
            "max-file=100",
        ];
        if let Some(e) = extra {
            args.extend(["--log-opt", e]);
        }
        args.extend([
            "busybox",
            "sh",
            "-c",
            "seq 1 5000 | sed 's/^/n/'; seq 1 300 | sed 's/^/e/' >&2",
        ]);
        d.docker(&args).ok();
        let dir = container_dir(&d, name);
        let files = log_files(&dir);
        let rotated = files
            .iter()
            .filter(|(n, _)| n.contains("-json.log."))
            .count();
        assert!(rotated > 5, "{name}: {files:?}");
        if extra.is_some() {
            assert!(files.iter().any(|(n, _)| n.ends_with(".1.gz")), "{files:?}");
        }
        let r = d.docker(&["logs", name]);
        assert_numbered(r.ok(), "n", 5000);
        assert_numbered(&r.stderr, "e", 300);
        // Ours too, and --tail across files.
        let r = d.berth(&["logs", name]);
        assert_numbered(r.ok(), "n", 5000);
        let r = d.berth(&["logs", "--tail", "2000", name]);
        let out: Vec<&str> = r.ok().lines().collect();
        let err: Vec<&str> = r.stderr.lines().collect();
        // Docker counts --tail over both streams together.
        assert_eq!(out.len() + err.len(), 2000, "{name}");
        assert_eq!(err.len(), 300);
        assert_eq!(out.last(), Some(&"n5000"));
        assert_eq!(out.first(), Some(&"n3301"));
    }
}

#[test]
fn no_container_fills_the_disk() {
    let d = Daemon::start();
    d.busybox();
    // About 8 MB of output into 3 files of 100 kB.
    d.docker(&[
        "run",
        "--name",
        "flood",
        "--log-opt",
        "max-size=100k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "yes 0123456789abcdef0123456789abcdef0123456789abcdef | head -c 8000000",
    ])
    .ok();
    let files = log_files(&container_dir(&d, "flood"));
    let total: u64 = files
        .iter()
        .filter(|(n, _)| !n.ends_with(".lock"))
        .map(|(_, s)| s)
        .sum();
    assert!(total <= 3 * 100_200, "{files:?}");
    assert_eq!(
        files.iter().filter(|(n, _)| !n.ends_with(".lock")).count(),
        3,
        "{files:?}"
    );
    let tail = d.docker(&["logs", "--tail", "3", "flood"]).ok().to_string();
    assert_eq!(tail.lines().count(), 3);
}

fn ts_of(line: &str) -> &str {
    line.split(' ').next().unwrap()
}

#[test]
fn tail_since_until_timestamps() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "--name",
        "tt",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2; sleep 1.2; echo three; echo four",
    ])
    .ok();
    let r = d.docker(&["logs", "-t", "tt"]);
    let out: Vec<String> = r.ok().lines().map(str::to_string).collect();
    assert_eq!(out.len(), 3, "{out:?}");
    // Docker's fixed-width RFC3339Nano.
    for l in &out {
        let ts = ts_of(l);
        assert_eq!(ts.len(), 30, "{l}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{l}");
    }
    assert!(out[0].ends_with(" one") && out[2].ends_with(" four"));
    assert!(r.stderr.ends_with(" two\n"), "{}", r.stderr);
    let t_three = ts_of(&out[1]).to_string();
    let t_one = ts_of(&out[0]).to_string();
    // --since (RFC 3339) keeps messages at or after; --until at or before.
    let r = d.docker(&["logs", "--since", &t_three, "tt"]);
    assert_eq!((r.ok(), r.stderr.as_str()), ("three\nfour\n", ""));
    let r = d.berth(&["logs", "--until", &t_one, "tt"]);
    assert_eq!(r.ok(), "one\n");
    // Unix time with a fraction, straight to the API.
    let secs = unix_secs(&t_three);
    assert!(secs.contains('.'), "{secs}");
    let r = d
        .request(
            "GET",
            &format!("/containers/tt/logs?stdout=1&since={secs}"),
            None,
        )
        .unwrap();
    assert_eq!(
        &r.body[8..],
        b"three\n\x01\x00\x00\x00\x00\x00\x00\x05four\n"
    );
    // Relative times, turned into absolute ones by the CLIs.
    for cli in [
        Daemon::docker as fn(&Daemon, &[&str]) -> common::Run,
        Daemon::berth,
    ] {
        assert_eq!(
            cli(&d, &["logs", "--since", "10m", "tt"]).ok(),
            "one\nthree\nfour\n"
        );
        assert_eq!(cli(&d, &["logs", "--until", "10m", "tt"]).ok(), "");
        assert_eq!(cli(&d, &["logs", "--tail", "1", "tt"]).ok(), "four\n");
        assert_eq!(
            cli(&d, &["logs", "-n", "all", "tt"]).ok(),
            "one\nthree\nfour\n"
        );
        assert_eq!(cli(&d, &["logs", "--tail", "0", "tt"]).ok(), "");
    }
    // The API's own answers.
    let r = d
        .request("GET", "/containers/tt/logs?stdout=1&tail=2", None)
        .unwrap();
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.docker.multiplexed-stream")
    );
    let r41 = d
        .request("GET", "/v1.41/containers/tt/logs?stdout=1&tail=2", None)
        .unwrap();
    assert_eq!((r41.header("content-type"), &r41.body), (None, &r.body));
    assert_eq!(
        r.body,
        b"\x01\x00\x00\x00\x00\x00\x00\x06three\n\x01\x00\x00\x00\x00\x00\x00\x05four\n"
    );
    let r = d
        .request("GET", "/containers/tt/logs?stderr=1&tail=2", None)
        .unwrap();
    assert_eq!(r.body, b"");
    let r = d
        .request("GET", "/containers/tt/logs?stderr=1&tail=junk", None)
        .unwrap();
    assert_eq!(r.body, b"\x02\x00\x00\x00\x00\x00\x00\x04two\n");
    let r = d.request("GET", "/containers/tt/logs", None).unwrap();
    assert_eq!(r.status, 400);
    let r = d
        .request("GET", "/containers/tt/logs?stdout=1&since=yesterday", None)
        .unwrap();
    assert_eq!(r.status, 400);
}

/// An RFC 3339 UTC time (`2024-01-02T03:04:05.123456789Z`) as Unix
/// seconds with nanoseconds (`1704164645.123456789`).
fn unix_secs(ts: &str) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", ts, "+%s.%N"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn details_show_labels_env_and_tag() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "--name",
        "det",
        "--label",
        "app=web shop",
        "--label",
        "other=x",
        "-e",
        "FOO=bar",
        "--log-opt",
        "labels=app",
        "--log-opt",
        "env=FOO",
        "--log-opt",
        "tag={{.Name}}",
        "busybox",
        "echo",
        "hello",
    ])
    .ok();
    assert_eq!(
        d.docker(&["logs", "--details", "det"]).ok(),
        "FOO=bar,app=web+shop,tag=det hello\n"
    );
    assert_eq!(
        d.berth(&["logs", "--details", "det"]).ok(),
        "FOO=bar,app=web+shop,tag=det hello\n"
    );
    let r = d.docker(&["logs", "--details", "-t", "det"]);
    let line = r.ok().to_string();
    assert!(
        line.ends_with("Z FOO=bar,app=web+shop,tag=det hello\n") && line.as_bytes()[30] == b' ',
        "{line}"
    );
    assert_eq!(d.docker(&["logs", "det"]).ok(), "hello\n");
    // Without attributes, --details adds Docker's lone space.
    d.docker(&["run", "--name", "bare", "busybox", "echo", "x"])
        .ok();
    assert_eq!(d.docker(&["logs", "--details", "bare"]).ok(), " x\n");
    // The local driver keeps them too.
    d.docker(&[
        "run",
        "--name",
        "ldet",
        "--log-driver",
        "local",
        "-e",
        "FOO=1",
        "--log-opt",
        "env=FOO",
        "busybox",
        "echo",
        "y",
    ])
    .ok();
    assert_eq!(d.docker(&["logs", "--details", "ldet"]).ok(), "FOO=1 y\n");
}

#[test]
fn none_driver_keeps_nothing() {
    let d = Daemon::start();
    d.busybox();
    let r = d.docker(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "attached output still shows",
    ]);
    assert_eq!(r.ok(), "attached output still shows\n");
    let r = d.docker(&["logs", "quiet"]);
    assert!(
        r.fails(1)
            .contains("configured logging driver does not support reading"),
        "{}",
        r.stderr
    );
    let r = d.berth(&["logs", "quiet"]);
    assert!(
        r.stderr
            .contains("configured logging driver does not support reading"),
        "{}",
        r.stderr
    );
    assert_ne!(r.code, 0);
    let r = d
        .request("GET", "/containers/quiet/logs?stdout=1", None)
        .unwrap();
    assert_eq!(r.status, 501);
    assert!(log_files(&container_dir(&d, "quiet")).is_empty());
    assert_eq!(
        d.docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "quiet"])
            .ok(),
        "{\"Type\":\"none\",\"Config\":{}}\n"
    );
}

#[test]
fn local_driver_is_compact_and_rotates() {
    let d = Daemon::start();
    d.busybox();
    let script = "seq 1 20000 | sed 's/^/line-/'";
    d.docker(&[
        "run",
        "--name",
        "jj",
        "--log-opt",
        "max-size=100m",
        "busybox",
        "sh",
        "-c",
        script,
    ])
    .ok();
    d.docker(&[
        "run",
        "--name",
        "ll",
        "--log-driver",
        "local",
        "busybox",
        "sh",
        "-c",
        script,
    ])
    .ok();
    let jsize: u64 = log_files(&container_dir(&d, "jj"))
        .iter()
        .filter(|(n, _)| n.ends_with("-json.log"))
        .map(|(_, s)| s)
        .sum();
    let lfiles = log_files(&container_dir(&d, "ll").join("local-logs"));
    let lsize: u64 = lfiles
        .iter()
        .filter(|(n, _)| n == "container.log")
        .map(|(_, s)| s)
        .sum();
    assert!(
        lsize > 0 && lsize * 4 < jsize,
        "local {lsize} vs json-file {jsize}: {lfiles:?}"
    );
    assert_numbered(d.docker(&["logs", "ll"]).ok(), "line-", 20000);
    assert_eq!(
        d.berth(&["logs", "--tail", "2", "ll"]).ok(),
        "line-19999\nline-20000\n"
    );
    // Rotation and compression, read back across files.
    d.docker(&[
        "run",
        "--name",
        "lr",
        "--log-driver",
        "local",
        "--log-opt",
        "max-size=20k",
        "--log-opt",
        "max-file=50",
        "busybox",
        "sh",
        "-c",
        script,
    ])
    .ok();
    let files = log_files(&container_dir(&d, "lr").join("local-logs"));
    assert!(files.iter().any(|(n, _)| n.ends_with(".gz")), "{files:?}");
    assert_numbered(d.docker(&["logs", "lr"]).ok(), "line-", 20000);
}

/// `logs -f` in the background; its output when it ends.
struct Follower {
    child: std::process::Child,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
}

impl Follower {
    fn start(d: &Daemon, cli: &str, name: &str) -> Follower {
        let mut cmd = if cli == "docker" {
            let mut c = Command::new(docker_bin());
            c.env("DOCKER_HOST", d.host())
                .env("DOCKER_CONFIG", d.dir.path().join("docker-config"));
            c
        } else {
            let mut c = Command::new(berth_bin());
            c.args(["-H", &d.host()]).env("BERTH_NO_AUTOSTART", "1");
            c
        };
        let mut child = cmd
            .args(["logs", "-f", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let out = drain(Box::new(child.stdout.take().unwrap()));
        let err = drain(Box::new(child.stderr.take().unwrap()));
        Follower { child, out, err }
    }

    /// Waits (at most `limit`) for it to end by itself.
    fn finish(mut self, limit: Duration) -> (String, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let (out, err) = (self.out.join().unwrap(), self.err.join().unwrap());
                assert!(st.success(), "logs -f failed: {err}");
                return (out, err);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("logs -f did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn follow_survives_rotation_and_ends_with_the_container() {
    let d = Daemon::start();
    d.busybox();
    for (name, driver) in [("fj", "json-file"), ("fl", "local")] {
        d.docker(&[
            "run",
            "-d",
            "--name",
            name,
            "--log-driver",
            driver,
            "--log-opt",
            "max-size=8k",
            "--log-opt",
            "max-file=1000",
            "busybox",
            "sh",
            "-c",
            // Slow at first, then bursts that rotate many times between reads.
            "i=1; while [ $i -le 30 ]; do echo n$i; i=$((i+1)); sleep 0.02; done; \
             for b in 1 2 3 4; do seq $i $((i+2999)) | sed 's/^/n/'; i=$((i+3000)); sleep 0.2; done",
        ])
        .ok();
        let docker = Follower::start(&d, "docker", name);
        let ours = Follower::start(&d, "berth", name);
        let (out, _) = docker.finish(Duration::from_secs(30));
        assert_numbered(&out, "n", 12_030);
        let (out, _) = ours.finish(Duration::from_secs(30));
        assert_numbered(&out, "n", 12_030);
    }
    // On a stopped container -f returns at once.
    let t0 = Instant::now();
    assert_eq!(
        d.docker(&["logs", "-f", "--tail", "1", "fj"]).ok(),
        "n12030\n"
    );
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[test]
fn follow_wakes_up_promptly() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "ww",
        "busybox",
        "sh",
        "-c",
        "sleep 1; echo ping; sleep 1",
    ])
    .ok();
    let mut child = Command::new(docker_bin())
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .args(["logs", "-f", "ww"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 5];
    out.read_exact(&mut buf).unwrap();
    let seen = Instant::now();
    assert_eq!(&buf, b"ping\n");
    // The line arrives well before the container ends, and -f ends soon
    // after the container does.
    let st = child.wait().unwrap();
    assert!(st.success());
    let tail = seen.elapsed();
    assert!(
        tail > Duration::from_millis(500) && tail < Duration::from_secs(3),
        "{tail:?}"
    );
}

#[test]
fn logs_survive_a_daemon_restart_and_follow_continues() {
    let mut d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "rr",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=100",
        "busybox",
        "sh",
        "-c",
        "i=1; while [ $i -le 60 ]; do echo n$i; i=$((i+1)); sleep 0.05; done",
    ])
    .ok();
    std::thread::sleep(Duration::from_millis(600));
    d.kill9();
    // The shim keeps writing while no daemon runs.
    std::thread::sleep(Duration::from_millis(500));
    d.restart();
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.Running}}", "rr"])
            .ok(),
        "true\n"
    );
    let (out, _) = Follower::start(&d, "docker", "rr").finish(Duration::from_secs(20));
    assert_numbered(&out, "n", 60);
    assert_numbered(d.berth(&["logs", "rr"]).ok(), "n", 60);
}
