//! Health checks: `--health-*` flags and image `HEALTHCHECK`, the probe run
//! on schedule as an exec, `State.Health` in inspect, `(healthy)` in `ps`,
//! `health_status` events, `ps --filter health=`, timeouts and truncation.
//! Intervals are short (200ms) to keep the tests fast.

mod common;

use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::Value;

fn health(d: &Daemon, name: &str) -> Value {
    let r = d.request("GET", &format!("/v1.41/containers/{name}/json"), None);
    let v = r.unwrap().json();
    v["State"]["Health"].clone()
}

/// Polls `State.Health` until `pred` holds (or panics after 15 s).
#[track_caller]
fn wait_health(d: &Daemon, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let h = health(d, name);
        if pred(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "health never matched: {h}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn status_is(s: &'static str) -> impl Fn(&Value) -> bool {
    move |h| h["Status"] == s
}

#[test]
fn passing_check_turns_healthy_everywhere() {
    let d = Daemon::start();
    d.busybox();
    let id = d
        .berth(&[
            "run",
            "-d",
            "--name",
            "hok",
            "--health-cmd",
            "echo ok",
            "--health-interval",
            "200ms",
            "busybox",
            "sleep",
            "100",
        ])
        .ok()
        .trim()
        .to_string();
    let cfg = d
        .berth(&["inspect", "-f", "{{json .Config.Healthcheck}}", "hok"])
        .ok()
        .trim()
        .to_string();
    let cfg: Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(
        cfg,
        serde_json::json!({"Test": ["CMD-SHELL", "echo ok"], "Interval": 200_000_000})
    );
    let h = wait_health(&d, "hok", status_is("healthy"));
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().unwrap();
    assert_eq!(log[0]["ExitCode"], 0);
    assert_eq!(log[0]["Output"], "ok\n");
    assert!(log[0]["Start"].as_str().unwrap().starts_with("20"));
    assert!(log[0]["End"].as_str().unwrap().starts_with("20"));

    // ps shows it, and filters by it; probe execs are not left in ExecIDs.
    let ps = d.berth(&["ps", "--format", "{{.Status}}"]).ok().to_string();
    assert!(ps.trim().ends_with("(healthy)"), "{ps}");
    let docker_ps = d
        .docker(&["ps", "--format", "{{.Status}}"])
        .ok()
        .to_string();
    assert!(docker_ps.trim().ends_with("(healthy)"), "{docker_ps}");
    for (f, want) in [
        ("health=healthy", true),
        ("health=unhealthy", false),
        ("health=starting", false),
        ("health=none", false),
    ] {
        let out = d
            .berth(&["ps", "-q", "--no-trunc", "--filter", f])
            .ok()
            .to_string();
        assert_eq!(out.contains(&id), want, "{f}: {out}");
    }
    let docker_h = d
        .docker(&["inspect", "-f", "{{.State.Health.Status}}", "hok"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(docker_h, "healthy");
    // A probe may be running right now; give it time to end.
    std::thread::sleep(Duration::from_millis(150));
    let v = d
        .request("GET", "/v1.41/containers/hok/json", None)
        .unwrap()
        .json();
    let execs = v["ExecIDs"].as_array().map_or(0, Vec::len);
    assert!(execs <= 1, "{}", v["ExecIDs"]);

    // The event, with Docker's action string.
    let r = d
        .request(
            "GET",
            &format!(
                "/v1.41/events?since=0&until={}&filters=%7B%22container%22%3A%5B%22hok%22%5D%7D",
                now_secs() + 1
            ),
            None,
        )
        .unwrap();
    let body = r.body_string();
    assert!(
        body.contains(r#""Action":"health_status: healthy""#),
        "{body}"
    );
    assert!(
        body.contains(r#""status":"health_status: healthy""#),
        "{body}"
    );

    // A container without a check is `none`.
    d.berth(&["run", "-d", "--name", "plain", "busybox", "sleep", "100"])
        .ok();
    let none = d
        .berth(&["ps", "--format", "{{.Names}}", "--filter", "health=none"])
        .ok()
        .to_string();
    assert_eq!(none.trim(), "plain");
    assert!(health(&d, "plain").is_null());

    // Stopping the container stops the monitor; Docker then says unhealthy.
    d.berth(&["stop", "-t", "1", "hok"]).ok();
    let h = health(&d, "hok");
    assert_eq!(h["Status"], "unhealthy", "{h}");
    d.berth(&["rm", "-f", "plain"]).ok();
}

#[test]
fn failing_check_turns_unhealthy_after_retries_and_keeps_five_logs() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "hbad",
        "--health-cmd",
        "echo bad; exit 3",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "100",
    ])
    .ok();
    let h = wait_health(&d, "hbad", status_is("unhealthy"));
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 3);
    assert_eq!(h["Log"][0]["Output"], "bad\n");
    let ps = d.berth(&["ps", "--format", "{{.Status}}"]).ok().to_string();
    assert!(ps.trim().ends_with("(unhealthy)"), "{ps}");
    let h = wait_health(&d, "hbad", |h| {
        h["FailingStreak"].as_i64().unwrap_or(0) >= 7
    });
    assert_eq!(h["Log"].as_array().unwrap().len(), 5, "{h}");
    let ev = d
        .request(
            "GET",
            &format!(
                "/v1.41/events?since=0&until={}&filters=%7B%22container%22%3A%5B%22hbad%22%5D%7D",
                now_secs() + 1
            ),
            None,
        )
        .unwrap()
        .body_string();
    assert!(ev.contains("health_status: unhealthy"), "{ev}");
    d.berth(&["rm", "-f", "hbad"]).ok();
}

#[test]
fn hung_check_is_killed_at_its_timeout_and_flood_is_truncated() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "hhang",
        "--health-cmd",
        "echo partial; sleep 30",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "100",
    ])
    .ok();
    let h = wait_health(&d, "hhang", status_is("unhealthy"));
    let entry = &h["Log"][0];
    assert_eq!(entry["ExitCode"], -1);
    assert_eq!(
        entry["Output"],
        "Health check exceeded timeout (300ms): partial\n"
    );
    // The killed probe is gone from the container.
    let top = d.berth(&["top", "hhang"]).ok().to_string();
    assert!(!top.contains("sleep 30"), "{top}");

    d.berth(&[
        "run",
        "-d",
        "--name",
        "hflood",
        "--health-cmd",
        "head -c 10000 /dev/zero | tr '\\0' a",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "100",
    ])
    .ok();
    let h = wait_health(&d, "hflood", status_is("healthy"));
    let out = h["Log"][0]["Output"].as_str().unwrap();
    assert_eq!(out.len(), 4096 + 3);
    assert!(out.ends_with("aaa..."), "{out}");
    d.berth(&["rm", "-f", "hhang", "hflood"]).ok();
}

#[test]
fn image_healthcheck_start_period_and_no_healthcheck() {
    let d = Daemon::start();
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=200ms --retries=1 CMD [\"test\", \"-e\", \"/tmp/ready\"]\n",
    )
    .unwrap();
    d.berth(&["build", "-q", "-t", "hc", ctx.path().to_str().unwrap()])
        .ok();

    // The image's check runs; a long start period keeps failures from counting.
    d.berth(&[
        "run",
        "-d",
        "--name",
        "himg",
        "--health-start-period",
        "60s",
        "--health-start-interval",
        "200ms",
        "hc",
        "sleep",
        "100",
    ])
    .ok();
    let cfg = d
        .berth(&["inspect", "-f", "{{json .Config.Healthcheck}}", "himg"])
        .ok()
        .trim()
        .to_string();
    assert!(
        cfg.contains(r#""Test":["CMD","test","-e","/tmp/ready"]"#),
        "{cfg}"
    );
    assert!(cfg.contains(r#""StartPeriod":60000000000"#), "{cfg}");
    let h = wait_health(&d, "himg", |h| {
        h["Log"].as_array().is_some_and(|l| l.len() >= 2)
    });
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    let ps = d.berth(&["ps", "--format", "{{.Status}}"]).ok().to_string();
    assert!(ps.trim().ends_with("(health: starting)"), "{ps}");
    let starting = d
        .berth(&[
            "ps",
            "--format",
            "{{.Names}}",
            "--filter",
            "health=starting",
        ])
        .ok()
        .to_string();
    assert_eq!(starting.trim(), "himg");
    d.berth(&["exec", "himg", "touch", "/tmp/ready"]).ok();
    wait_health(&d, "himg", status_is("healthy"));

    // --no-healthcheck disables the image's check.
    d.berth(&[
        "run",
        "-d",
        "--name",
        "hnone",
        "--no-healthcheck",
        "hc",
        "sleep",
        "100",
    ])
    .ok();
    let cfg = d
        .berth(&["inspect", "-f", "{{json .Config.Healthcheck}}", "hnone"])
        .ok()
        .trim()
        .to_string();
    // As in Docker, the image's other settings are merged in; NONE wins.
    assert!(cfg.contains(r#""Test":["NONE"]"#), "{cfg}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(health(&d, "hnone").is_null());
    d.berth(&["rm", "-f", "himg", "hnone"]).ok();
}

#[test]
fn health_monitor_resumes_after_daemon_restart() {
    let mut d = Daemon::start();
    d.busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "hre",
        "--health-cmd",
        "test ! -e /tmp/sick",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "100",
    ])
    .ok();
    wait_health(&d, "hre", status_is("healthy"));
    d.restart();
    // Persisted across the restart, and the checks run again.
    assert!(!health(&d, "hre").is_null());
    d.berth(&["exec", "hre", "touch", "/tmp/sick"]).ok();
    let h = wait_health(&d, "hre", status_is("unhealthy"));
    assert_eq!(h["Log"].as_array().unwrap().last().unwrap()["ExitCode"], 1);
    d.berth(&["rm", "-f", "hre"]).ok();
}

#[test]
fn bad_health_settings_are_refused_like_docker() {
    let d = Daemon::start();
    d.busybox();
    let err = d
        .berth(&[
            "create",
            "--no-healthcheck",
            "--health-cmd",
            "true",
            "busybox",
        ])
        .fails(125)
        .to_string();
    assert!(
        err.contains("--no-healthcheck conflicts with --health-* options"),
        "{err}"
    );
    let err = d
        .berth(&["create", "--health-interval", "-1s", "busybox"])
        .fails(125)
        .to_string();
    assert!(
        err.contains("--health-interval cannot be negative"),
        "{err}"
    );
    let err = d
        .berth(&["create", "--health-interval", "soon", "busybox"])
        .fails(125)
        .to_string();
    assert!(err.contains(r#"time: invalid duration "soon""#), "{err}");
    let body = br#"{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"Interval":5}}"#;
    let r = d
        .request("POST", "/v1.41/containers/create", Some(body))
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.body_string()
            .contains("Interval in Healthcheck cannot be less than 1ms"),
        "{}",
        r.body_string()
    );
    let err = d
        .berth(&["ps", "--filter", "health=great"])
        .fails(1)
        .to_string();
    assert!(
        err.contains("Unrecognised filter value for health: great"),
        "{err}"
    );
}
