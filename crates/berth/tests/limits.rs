//! Resource limits as Docker sets them: visible in the container's own
//! cgroup files (its /sys/fs/cgroup), shown by inspect, enforced by the
//! kernel (OOM kill, fork bomb), and impossible ones refused at create with
//! Docker's texts, leaving nothing behind. Through the real docker CLI.

mod common;

use common::{Daemon, Run};

fn run(d: &Daemon, opts: &[&str], script: &str) -> Run {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    d.docker(&args)
}

/// Whether this host runs cgroup v2 only (file names differ).
fn cgroup2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Reads cgroup files inside a container started with `opts`: one line per
/// file, `v1` names on cgroup v1 and `v2` names on v2 (relative to the
/// container's /sys/fs/cgroup).
fn cgroup_files(d: &Daemon, opts: &[&str], v1: &[&str], v2: &[&str]) -> Vec<String> {
    let files = if cgroup2() { v2 } else { v1 };
    let script = files
        .iter()
        .map(|f| format!("cat /sys/fs/cgroup/{f}"))
        .collect::<Vec<_>>()
        .join(" && ");
    let r = run(d, opts, &script);
    r.ok().lines().map(str::to_string).collect()
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.docker(&["inspect", "-f", format, name])
        .ok()
        .trim()
        .to_string()
}

#[test]
fn memory_limits_in_the_container_cgroup_and_inspect() {
    let d = Daemon::start();
    d.busybox();
    let got = cgroup_files(
        &d,
        &["--memory", "64m", "--memory-reservation", "32m"],
        &[
            "memory/memory.limit_in_bytes",
            "memory/memory.memsw.limit_in_bytes",
            "memory/memory.soft_limit_in_bytes",
        ],
        &["memory.max", "memory.swap.max", "memory.low"],
    );
    // Docker's rule: with only --memory, swap is as much again.
    let want = if cgroup2() {
        ["67108864", "67108864", "33554432"]
    } else {
        ["67108864", "134217728", "33554432"]
    };
    assert_eq!(got, want);
    let got = cgroup_files(
        &d,
        &["--memory", "32m", "--memory-swap", "-1"],
        &[
            "memory/memory.limit_in_bytes",
            "memory/memory.memsw.limit_in_bytes",
        ],
        &["memory.max", "memory.swap.max"],
    );
    assert_eq!(got[0], "33554432");
    // Unlimited swap: v1's "no limit" is the largest page-aligned value.
    assert!(
        got[1] == "max" || got[1].parse::<u64>().unwrap() > 1 << 62,
        "{got:?}"
    );
    if !cgroup2() {
        let got = cgroup_files(
            &d,
            &["--memory", "64m", "--memory-swappiness", "10"],
            &["memory/memory.swappiness"],
            &[],
        );
        assert_eq!(got, ["10"]);
    }
    d.docker(&[
        "create",
        "--name",
        "mem",
        "--memory",
        "64m",
        "--memory-reservation",
        "32m",
        "busybox",
    ])
    .ok();
    assert_eq!(
        inspect(
            &d,
            "mem",
            "{{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}}"
        ),
        "67108864 33554432"
    );
}

#[test]
fn over_memory_is_oom_killed() {
    let d = Daemon::start();
    d.busybox();
    // dd's 100 MB buffer cannot fit in 32 MB without swap.
    let r = d.docker(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "32m",
        "--memory-swap",
        "32m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=100M",
        "count=1",
    ]);
    assert_eq!(r.code, 137, "{r:?}");
    assert_eq!(
        inspect(&d, "hog", "{{.State.ExitCode}} {{.State.OOMKilled}}"),
        "137 true"
    );
    // The same with room to spare runs through.
    d.docker(&[
        "run",
        "--rm",
        "--memory",
        "256m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=100M",
        "count=1",
    ])
    .ok();
}

#[test]
fn oom_kill_disable() {
    let d = Daemon::start();
    d.busybox();
    let opts = ["--memory", "64m", "--oom-kill-disable"];
    if cgroup2() {
        // cgroup v2 has no such switch: Docker warns and drops it.
        let r = run(&d, &opts, "true");
        r.ok();
        assert!(
            r.stderr
                .contains("Your kernel does not support OomKillDisable"),
            "{r:?}"
        );
        return;
    }
    let got = cgroup_files(&d, &opts, &["memory/memory.oom_control"], &[]);
    assert_eq!(got[0], "oom_kill_disable 1", "{got:?}");
    // Without a memory limit it still applies, with Docker's warning.
    let r = run(&d, &["--oom-kill-disable"], "true");
    r.ok();
    assert!(
        r.stderr.contains(
            "WARNING: OOM killer is disabled for the container, but no memory limit is set"
        ),
        "{r:?}"
    );
}

#[test]
fn cpu_limits() {
    let d = Daemon::start();
    d.busybox();
    let got = cgroup_files(
        &d,
        &["--cpus", "0.5"],
        &["cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us"],
        &["cpu.max"],
    );
    if cgroup2() {
        assert_eq!(got, ["50000 100000"]);
    } else {
        assert_eq!(got, ["50000", "100000"]);
    }
    let got = cgroup_files(
        &d,
        &["--cpu-period", "50000", "--cpu-quota", "25000"],
        &["cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us"],
        &["cpu.max"],
    );
    if cgroup2() {
        assert_eq!(got, ["25000 50000"]);
    } else {
        assert_eq!(got, ["25000", "50000"]);
    }
    let got = cgroup_files(
        &d,
        &["--cpu-shares", "512", "--cpuset-cpus", "0"],
        &["cpu/cpu.shares", "cpuset/cpuset.cpus"],
        &["cpuset.cpus"],
    );
    assert_eq!(got.last().unwrap(), "0");
    if !cgroup2() {
        assert_eq!(got[0], "512");
    }
    // The process really is confined to CPU 0.
    let r = run(
        &d,
        &["--cpuset-cpus", "0"],
        "grep Cpus_allowed_list /proc/self/status",
    );
    assert!(r.ok().trim_end().ends_with("\t0"), "{r:?}");
    d.docker(&[
        "create",
        "--name",
        "cpu",
        "--cpus",
        "1.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "busybox",
    ])
    .ok();
    assert_eq!(
        inspect(
            &d,
            "cpu",
            "{{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}}"
        ),
        "1500000000 512 0"
    );
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let d = Daemon::start();
    d.busybox();
    let got = cgroup_files(
        &d,
        &["--pids-limit", "20"],
        &["pids/pids.max"],
        &["pids.max"],
    );
    assert_eq!(got, ["20"]);
    // 50 sleepers wanted; the fork that would pass 20 processes fails, and
    // the count (read without forking) stays at the limit.
    let bomb = "(for i in $(seq 50); do sleep 30 & done) 2>/dev/null
        f=/sys/fs/cgroup/pids/pids.current; [ -e $f ] || f=/sys/fs/cgroup/pids.current
        read n < $f; echo $n";
    let r = run(&d, &["--pids-limit", "20"], bomb);
    let n: u32 = r.ok().trim().parse().unwrap();
    // (The subshell that met the limit has exited by then.)
    assert!((18..=20).contains(&n), "{r:?}");
    // Without the limit all 50 start.
    let r = run(&d, &[], bomb);
    assert!(r.ok().trim().parse::<u32>().unwrap() > 50, "{r:?}");
    // 0 and -1 mean no limit.
    let got = cgroup_files(
        &d,
        &["--pids-limit", "-1"],
        &["pids/pids.max"],
        &["pids.max"],
    );
    assert_eq!(got, ["max"]);
}

#[test]
fn blkio_weight_where_supported() {
    let d = Daemon::start();
    d.busybox();
    let r = run(
        &d,
        &["--blkio-weight", "300"],
        "cat /sys/fs/cgroup/blkio/blkio.weight /sys/fs/cgroup/blkio/blkio.bfq.weight /sys/fs/cgroup/io.weight /sys/fs/cgroup/io.bfq.weight 2>/dev/null; true",
    );
    let supported = if cgroup2() {
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .unwrap()
            .split_whitespace()
            .any(|c| c == "io")
    } else {
        ["blkio.weight", "blkio.bfq.weight"].iter().any(|f| {
            std::path::Path::new("/sys/fs/cgroup/blkio")
                .join(f)
                .exists()
        })
    };
    if supported {
        assert!(r.ok().contains("300"), "{r:?}");
    } else {
        r.ok();
        assert!(
            r.stderr.contains("WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."),
            "{r:?}"
        );
    }
}

#[test]
fn impossible_limits_create_nothing() {
    let d = Daemon::start();
    d.busybox();
    let ncpu = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|l| {
            l.trim()
                .split(',')
                .map(|r| match r.split_once('-') {
                    Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
                    None => 1,
                })
                .sum::<usize>()
        })
        .unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--memory", "1k"],
            "Minimum memory limit allowed is 6MB".into(),
        ),
        (
            vec!["--memory", "64m", "--memory-swap", "32m"],
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        ),
        (
            vec!["--memory-reservation", "1m"],
            "Minimum memory reservation allowed is 6MB".into(),
        ),
        (
            vec!["--cpus", "99"],
            format!(
                "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            ),
        ),
        (
            vec!["--cpus", "0.5", "--cpu-period", "100000"],
            "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
        ),
        (
            vec!["--cpu-period", "100"],
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .into(),
        ),
        (
            vec!["--cpu-quota", "100"],
            "CPU cfs quota can not be less than 1ms (i.e. 1000)".into(),
        ),
        (
            vec!["--cpuset-cpus", "0-1023"],
            "Requested CPUs are not available - requested 0-1023, available: ".into(),
        ),
        (
            vec!["--cap-add", "FOO"],
            "invalid CapAdd: unknown capability: \"CAP_FOO\"".into(),
        ),
    ];
    for (opts, want) in &cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["busybox", "true"]);
        let r = d.docker(&args);
        assert!(
            r.fails(125)
                .contains(&format!("Error response from daemon: {want}")),
            "{opts:?}: {r:?}"
        );
        let mut args = vec!["create"];
        args.extend_from_slice(opts);
        args.push("busybox");
        let r = d.docker(&args);
        assert!(r.fails(1).contains(want.as_str()), "{opts:?}: {r:?}");
    }
    // The API answers the same.
    let r = d
        .request(
            "POST",
            "/v1.45/containers/create",
            Some(br#"{"Image":"busybox","HostConfig":{"Memory":1024}}"#),
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "Minimum memory limit allowed is 6MB");
    // (The docker CLI checks swappiness itself.)
    let r = d
        .request(
            "POST",
            "/v1.45/containers/create",
            Some(br#"{"Image":"busybox","HostConfig":{"MemorySwappiness":101}}"#),
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Invalid value: 101, valid memory swappiness range is 0-100"
    );
    assert_eq!(d.docker(&["ps", "-aq"]).ok(), "");
    // Nothing on disk either: no container directory was made.
    let containers = d.data_root().join("containers");
    let left = std::fs::read_dir(&containers)
        .map(|it| it.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "{containers:?} is not empty");
}
