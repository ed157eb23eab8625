//! Lifecycle as Docker users know it: stop signals and timeouts, kill,
//! restart, pause, wait conditions, restart policies (also across a daemon
//! restart), --init, --rm when killed, update, top and stats.

mod common;

use std::time::{Duration, Instant};

use common::Daemon;

fn inspect(d: &Daemon, name: &str, fmt: &str) -> String {
    d.docker(&["inspect", "-f", fmt, name])
        .ok()
        .trim()
        .to_string()
}

/// Waits for a container's `ready` line: its shell has installed its
/// traps (a signal that comes earlier meets PID 1's default, ignored).
fn wait_ready(d: &Daemon, name: &str) {
    wait_until(&format!("{name} to be ready"), || {
        d.berth(&["logs", name]).stdout.contains("ready")
    });
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn stop_signals_and_timeouts() {
    let d = Daemon::start();
    d.busybox();
    // The image's or the container's stop signal is what stop sends.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 10' USR1; echo ready; while true; do sleep 0.1; done",
    ])
    .ok();
    wait_ready(&d, "usr1");
    d.docker(&["stop", "usr1"]).ok();
    assert_eq!(inspect(&d, "usr1", "{{.State.ExitCode}}"), "10");
    // --stop-timeout bounds the wait before SIGKILL.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "--stop-timeout",
        "1",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; echo ready; while true; do sleep 0.1; done",
    ])
    .ok();
    wait_ready(&d, "stubborn");
    let t0 = Instant::now();
    d.docker(&["stop", "stubborn"]).ok();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(inspect(&d, "stubborn", "{{.State.ExitCode}}"), "137");
    // kill -s.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "kk",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 3' HUP; echo ready; while true; do sleep 0.1; done",
    ])
    .ok();
    wait_ready(&d, "kk");
    d.docker(&["kill", "-s", "HUP", "kk"]).ok();
    assert_eq!(d.docker(&["wait", "kk"]).ok(), "3\n");
    let e = d.docker(&["kill", "kk"]);
    assert!(e.fails(1).contains("is not running"), "{e:?}");
    // A SIGKILL answers once the container is down: `kill && rm` works.
    for round in 0..5 {
        let name = format!("k9-{round}");
        d.docker(&["run", "-d", "--name", &name, "busybox", "sleep", "300"])
            .ok();
        d.docker(&["kill", &name]).ok();
        assert_eq!(inspect(&d, &name, "{{.State.Status}}"), "exited");
        d.docker(&["rm", &name]).ok();
    }
    // restart gives a new process.
    d.docker(&["run", "-d", "--name", "rr", "busybox", "sleep", "300"])
        .ok();
    let pid1 = inspect(&d, "rr", "{{.State.Pid}}");
    d.docker(&["restart", "-t", "0", "rr"]).ok();
    let pid2 = inspect(&d, "rr", "{{.State.Pid}}");
    assert_ne!(pid1, pid2);
    assert_eq!(inspect(&d, "rr", "{{.State.Status}}"), "running");
}

#[test]
fn rm_even_when_killed_and_wait_conditions() {
    let d = Daemon::start();
    d.busybox();
    let id = d
        .docker(&["run", "-d", "--rm", "busybox", "sleep", "300"])
        .ok()
        .trim()
        .to_string();
    d.docker(&["kill", &id]).ok();
    wait_until("the --rm container to go", || {
        d.docker(&["ps", "-aq"]).stdout.is_empty()
    });
    // wait on a created container returns at once with 0 (not-running).
    d.docker(&["create", "--name", "fresh", "busybox", "true"])
        .ok();
    assert_eq!(d.docker(&["wait", "fresh"]).ok(), "0\n");
    // The API's conditions.
    let r = d
        .request("POST", "/containers/fresh/wait?condition=bogus", None)
        .unwrap();
    assert_eq!(r.status, 400);
}

#[test]
fn pause_unpause() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "pz",
        "busybox",
        "sh",
        "-c",
        "while true; do date +%s%N > /tmp/t; usleep 50000; done",
    ])
    .ok();
    std::thread::sleep(Duration::from_millis(300));
    d.docker(&["pause", "pz"]).ok();
    assert_eq!(
        inspect(&d, "pz", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    assert!(d.docker(&["ps"]).ok().contains("(Paused)"));
    let e = d.docker(&["pause", "pz"]);
    assert!(e.fails(1).contains("is already paused"), "{e:?}");
    let e = d.docker(&["exec", "pz", "true"]);
    assert!(e.stderr.contains("is paused"), "{e:?}");
    // Frozen: the counter does not move.
    let data = d.data_root();
    let id = inspect(&d, "pz", "{{.Id}}");
    let file = data.join("containers").join(&id).join("upper/tmp/t");
    let a = std::fs::read_to_string(&file).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        a,
        std::fs::read_to_string(&file).unwrap(),
        "the container ran while paused"
    );
    d.docker(&["unpause", "pz"]).ok();
    // Thawed, it writes again soon; a loaded machine may take a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&file).unwrap() == a && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(
        a,
        std::fs::read_to_string(&file).unwrap(),
        "the container did not resume"
    );
    let e = d.docker(&["unpause", "pz"]);
    assert!(e.fails(1).contains("is not paused"), "{e:?}");
    // A paused container can still be stopped.
    d.docker(&["pause", "pz"]).ok();
    d.docker(&["stop", "-t", "1", "pz"]).ok();
    assert_eq!(inspect(&d, "pz", "{{.State.Status}}"), "exited");
}

#[test]
fn restart_policies() {
    let mut d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 4",
    ])
    .ok();
    wait_until("on-failure to give up", || {
        inspect(&d, "flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    });
    assert_eq!(inspect(&d, "flaky", "{{.State.ExitCode}}"), "4");
    // A start by hand gives the policy its two retries again (dockerd
    // resets the count): three starts from here on, not one.
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string()
    };
    std::thread::sleep(Duration::from_millis(1100));
    let since = now();
    d.docker(&["start", "flaky"]).ok();
    let starts = || {
        // Up to the current second: a later --until would wait for it.
        let until = now();
        let args = [
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "container=flaky",
            "--filter",
            "event=start",
            "--format",
            "{{.Action}}",
        ];
        d.docker(&args).ok().lines().count()
    };
    wait_until("the retries to run again", || {
        starts() == 3 && inspect(&d, "flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    });
    d.docker(&[
        "run",
        "-d",
        "--name",
        "ok",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ])
    .ok();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&d, "ok", "{{.RestartCount}}"), "0");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
    ])
    .ok();
    wait_until("always to restart", || {
        inspect(&d, "always", "{{.RestartCount}}") != "0"
    });
    // A manual stop ends it.
    d.docker(&["stop", "-t", "1", "always"]).ok();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(inspect(&d, "always", "{{.State.Status}}"), "exited");
    // Across a daemon restart: always comes back even after a manual stop,
    // unless-stopped only when it was not stopped by hand.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "us-stopped",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    d.docker(&["stop", "-t", "0", "us-stopped"]).ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "us-running",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1",
    ])
    .ok();
    // Both run for a second or less at a time: a polled "running" can miss
    // every run on a loaded machine, a new start time cannot.
    let started = |d: &Daemon, name: &str| inspect(d, name, "{{.State.StartedAt}}");
    let (us_running, always) = (started(&d, "us-running"), started(&d, "always"));
    d.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    d.restart();
    wait_until("policies to resume", || {
        started(&d, "us-running") != us_running
    });
    assert_eq!(inspect(&d, "us-stopped", "{{.State.Status}}"), "exited");
    wait_until("always to come back", || started(&d, "always") != always);
    // And its policy holds again: the manual stop is forgotten (dockerd
    // resets it with the restart manager), so it keeps restarting.
    let count = inspect(&d, "always", "{{.RestartCount}}");
    wait_until("always to restart by policy again", || {
        inspect(&d, "always", "{{.RestartCount}}") != count
    });
    let e = d.docker(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_eq!(e.code, 125);
}

#[test]
fn init_reaps_and_forwards() {
    let d = Daemon::start();
    d.busybox();
    let ps = d
        .docker(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm"])
        .ok()
        .to_string();
    assert!(ps.lines().nth(1).unwrap().contains("berth-init"), "{ps}");
    // Its command line names no host path (the monitor's binary, the data
    // root).
    let args = d
        .docker(&["run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline"])
        .ok()
        .to_string();
    assert_eq!(args.trim_end_matches('\0'), "berth-init", "{args:?}");
    // The orphan is reaped: no zombie stays.
    let ps = d
        .docker(&[
            "run",
            "--rm",
            "--init",
            "busybox",
            "sh",
            "-c",
            "(sleep 0.1 &); sleep 0.5; ps -o stat,comm",
        ])
        .ok()
        .to_string();
    assert!(!ps.contains("Z "), "{ps}");
    assert_eq!(
        d.docker(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 6"])
            .code,
        6
    );
    // SIGTERM reaches the command through the init (without it, PID 1 would ignore it).
    d.docker(&[
        "run", "-d", "--name", "fwd", "--init", "busybox", "sleep", "300",
    ])
    .ok();
    // Once the command runs, the init's handlers are in place.
    wait_until("sleep under the init", || {
        d.berth(&["top", "fwd"]).stdout.contains("sleep 300")
    });
    let t0 = Instant::now();
    d.docker(&["stop", "fwd"]).ok();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(inspect(&d, "fwd", "{{.State.ExitCode}}"), "143");
}

#[test]
fn update_top_stats() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "uu",
        "busybox",
        "sh",
        "-c",
        "while true; do sleep 0.2; done",
    ])
    .ok();
    // A stream open across the update shows the new limits: the daemon
    // keeps the cgroup's files open, and limits read once.
    let mut stream = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET /containers/uu/stats?stream=1 HTTP/1.1\r\nHost: berth\r\n\r\n",
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut read_until = |what: &[&str]| {
        let deadline = Instant::now() + Duration::from_secs(10);
        let start = seen.len();
        let mut buf = [0u8; 8192];
        while Instant::now() < deadline {
            let text = String::from_utf8_lossy(&seen[start..]).to_string();
            if what.iter().all(|w| text.contains(w)) {
                return;
            }
            let n = std::io::Read::read(&mut stream, &mut buf).unwrap();
            assert!(n > 0, "stream ended: {text}");
            seen.extend_from_slice(&buf[..n]);
        }
        panic!("no {what:?} in {}", String::from_utf8_lossy(&seen[start..]));
    };
    read_until(&["\"memory_stats\""]);
    assert_eq!(
        d.docker(&[
            "update",
            "--memory",
            "96m",
            "--memory-swap",
            "192m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "40",
            "uu"
        ])
        .ok(),
        "uu\n"
    );
    let cg = d.docker(&[
        "exec",
        "uu",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        "/sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(cg.ok(), format!("{}\n50000\n40\n", 96 << 20));
    read_until(&[&format!("\"limit\":{}}}", 96 << 20), "\"limit\":40}"]);
    drop(stream);
    assert_eq!(
        inspect(
            &d,
            "uu",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}"
        ),
        format!("{} 500000000 40", 96 << 20)
    );
    let e = d.docker(&["update", "--memory", "1k", "uu"]);
    assert!(
        e.fails(1).contains("Minimum memory limit allowed is 6MB"),
        "{e:?}"
    );
    let top = d.docker(&["top", "uu"]).ok().to_string();
    assert!(
        top.lines().next().unwrap().contains("PID") && top.contains("while true"),
        "{top}"
    );
    let stats = d
        .docker(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}} {{.PIDs}}",
            "uu",
        ])
        .ok()
        .to_string();
    assert!(
        stats.starts_with("uu ") && stats.contains("/ 96MiB"),
        "{stats}"
    );
    let r = d
        .request("GET", "/containers/uu/stats?stream=0", None)
        .unwrap()
        .json();
    assert!(r["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    assert!(
        r["precpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(r["memory_stats"]["usage"].as_u64().unwrap() > 0);
    assert!(r["pids_stats"]["current"].as_u64().unwrap() >= 1);
    d.docker(&["stop", "-t", "0", "uu"]).ok();
    let e = d.docker(&["top", "uu"]);
    assert!(e.fails(1).contains("is not running"), "{e:?}");
}

/// A daemon started with SIGHUP ignored (under `nohup`) must not pass that
/// on: containers and exec'd processes start with every signal at its
/// default and none blocked, so a shell in them can trap HUP.
#[test]
fn containers_start_with_default_signals() {
    let d = Daemon::start_nohup();
    d.busybox();
    let status = "grep -E '^Sig(Blk|Ign)' /proc/self/status";
    let zero = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
    assert_eq!(
        d.berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            &format!("exec {status}")
        ])
        .ok(),
        zero
    );
    d.berth(&[
        "run",
        "-d",
        "--name",
        "hup",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 3' HUP; touch /ready; while true; do sleep 0.1; done",
    ])
    .ok();
    wait_until("the trap to be set", || {
        d.berth(&["exec", "hup", "test", "-e", "/ready"]).code == 0
    });
    assert_eq!(
        d.berth(&["exec", "hup", "sh", "-c", &format!("exec {status}")])
            .ok(),
        zero
    );
    d.berth(&["kill", "-s", "HUP", "hup"]).ok();
    assert_eq!(d.berth(&["wait", "hup"]).ok(), "3\n");
}
