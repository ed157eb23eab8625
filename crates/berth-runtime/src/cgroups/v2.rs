//! cgroup v2: one tree; the container's cgroup is one directory.

use std::path::Path;
use std::time::{Duration, Instant};

use super::stats;
use super::{
    cpuset, existing_dir, nano_cpus_to_quota, parse_error, read, read_opt, set, validate, write,
    CgroupError, Resources, Write,
};

/// The CFS period the kernel starts a cgroup with (µs).
const DEFAULT_PERIOD: u64 = 100_000;

/// `cpu.shares` (2..262144) as `cpu.weight` (1..10000), runc's mapping.
fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// A v1 blkio weight (10..1000) as `io.weight` (1..10000), runc's mapping.
fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).clamp(10, 1000) - 10) * 9999 / 990
}

/// A memory value as v2 writes it: -1 is "max".
fn bytes(v: i64) -> String {
    if v == -1 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// The writes of a `docker update` (runc's v2 rules).
pub(super) fn plan_update(dir: &Path, r: &Resources) -> Result<Vec<Write>, CgroupError> {
    validate(r)?;
    let dir = existing_dir(dir.to_path_buf())?;
    let mut plan = Vec::new();

    // Docker's memory_swap is memory+swap; memory.swap.max is swap alone.
    let (mem, swap) = (set(r.memory), set(r.memory_swap));
    let swap_max = match (mem, swap) {
        (Some(-1), None) | (_, Some(-1)) => Some("max".to_string()),
        (_, None) => None,
        (m, Some(s)) => {
            let m = match m {
                Some(m) => m,
                None => current_memory_max(&dir)?.ok_or(CgroupError::Invalid {
                    field: "memory_swap",
                    value: s.to_string(),
                    reason: "a swap limit needs a memory limit",
                })? as i64,
            };
            if s < m {
                return Err(CgroupError::Invalid {
                    field: "memory_swap",
                    value: s.to_string(),
                    reason: "memory+swap limit must be at least the memory limit",
                });
            }
            Some((s - m).to_string())
        }
    };
    if let Some(v) = swap_max {
        let file = dir.join("memory.swap.max");
        // No swap accounting: "no limit" and "no swap" hold anyway.
        if file.exists() || (v != "max" && v != "0") {
            plan.push(Write::new(file, v));
        }
    }
    if let Some(m) = mem {
        plan.push(Write::new(dir.join("memory.max"), bytes(m)));
    }
    if let Some(v) = set(r.memory_reservation) {
        plan.push(Write::new(dir.join("memory.low"), bytes(v)));
    }

    if let Some(s) = r.cpu_shares.filter(|&s| s != 0) {
        plan.push(Write::new(
            dir.join("cpu.weight"),
            shares_to_weight(s).to_string(),
        ));
    }
    let (mut quota, mut period) = (set(r.cpu_quota), r.cpu_period.filter(|&p| p != 0));
    if let Some(n) = r.nano_cpus.filter(|&n| n > 0) {
        let (q, p) = nano_cpus_to_quota(n);
        (quota, period) = (Some(q), Some(p));
    }
    if quota.is_some() || period.is_some() {
        // cpu.max holds both; keep the half not asked for.
        let file = dir.join("cpu.max");
        let (cur_quota, cur_period) = match read_opt(&file)? {
            Some(text) => parse_cpu_max(&text).ok_or_else(|| parse_error(&file, &text))?,
            None => (None, DEFAULT_PERIOD),
        };
        let quota = match quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_string(),
            None => cur_quota.map_or("max".to_string(), |q| q.to_string()),
        };
        plan.push(Write::new(
            file,
            format!("{quota} {}", period.unwrap_or(cur_period)),
        ));
    }

    if let Some(v) = cpuset(&r.cpuset_cpus) {
        plan.push(Write::new(dir.join("cpuset.cpus"), v));
    }
    if let Some(v) = cpuset(&r.cpuset_mems) {
        plan.push(Write::new(dir.join("cpuset.mems"), v));
    }

    if let Some(p) = r.pids_limit {
        let value = if p <= 0 {
            "max".to_string()
        } else {
            p.to_string()
        };
        plan.push(Write::new(dir.join("pids.max"), value));
    }

    if let Some(w) = r.blkio_weight.filter(|&w| w != 0) {
        // BFQ takes v1's range as is; the io controller's own weight is
        // 1..10000. Neither: `apply` reports io.weight as unsupported.
        let bfq = dir.join("io.bfq.weight");
        plan.push(if bfq.exists() {
            Write::new(bfq, w.to_string())
        } else {
            Write::new(dir.join("io.weight"), blkio_to_io_weight(w).to_string())
        });
    }
    Ok(plan)
}

/// The current `memory.max` (`None` for "max"); unsupported without it.
fn current_memory_max(dir: &Path) -> Result<Option<u64>, CgroupError> {
    let file = dir.join("memory.max");
    let text = read_opt(&file)?.ok_or(CgroupError::Unsupported { path: file.clone() })?;
    stats::parse_limit(&text).map_err(|()| parse_error(&file, &text))
}

/// `cpu.max` ("max 100000", "50000 100000") as (quota, period).
fn parse_cpu_max(text: &str) -> Option<(Option<u64>, u64)> {
    let mut fields = text.split_ascii_whitespace();
    let quota = match fields.next()? {
        "max" => None,
        q => Some(q.parse().ok()?),
    };
    let period = match fields.next() {
        Some(p) => p.parse().ok()?,
        None => DEFAULT_PERIOD,
    };
    Some((quota, period))
}

/// Writes `cgroup.freeze` and waits for `cgroup.events` to report the
/// state. A freeze that times out is undone.
pub(super) fn set_frozen(dir: &Path, frozen: bool, timeout: Duration) -> Result<(), CgroupError> {
    let dir = existing_dir(dir.to_path_buf())?;
    let file = dir.join("cgroup.freeze");
    if !file.exists() {
        // Kernels before 5.2, or the root cgroup.
        return Err(CgroupError::Unsupported { path: file });
    }
    write(&file, if frozen { "1" } else { "0" })?;
    let events = dir.join("cgroup.events");
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    while frozen_in(&events)? != frozen {
        if Instant::now() >= deadline {
            if frozen {
                let _ = write(&file, "0");
            }
            return Err(CgroupError::Timeout {
                path: events,
                state: if frozen { "frozen 1" } else { "frozen 0" },
                timeout,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    Ok(())
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    frozen_in(&existing_dir(dir.to_path_buf())?.join("cgroup.events"))
}

/// The `frozen` line of `cgroup.events` (absent before 5.2: not frozen).
fn frozen_in(events: &Path) -> Result<bool, CgroupError> {
    Ok(stats::parse_flat_keyed(&read(events)?).get("frozen") == Some(&1))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{self, V2TestCgroup};
    use super::super::{BlkioEntry, CgroupError, CpuStats, Hierarchy, PidsStats, Throttling};
    use super::*;
    use std::process::Command;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(1 << 20), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(parse_cpu_max("max 100000\n"), Some((None, 100_000)));
        assert_eq!(
            parse_cpu_max("50000 250000\n"),
            Some((Some(50_000), 250_000))
        );
        assert_eq!(parse_cpu_max("50000"), Some((Some(50_000), 100_000)));
        assert_eq!(parse_cpu_max("lots 1"), None);
    }

    /// A v2 cgroup as plain files, as a fresh container's look.
    fn fixture(extra: &[(&str, &str)]) -> (tempfile::TempDir, Hierarchy) {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("berth/c1");
        std::fs::create_dir_all(&dir).unwrap();
        let files = [
            ("memory.max", "max\n"),
            ("memory.swap.max", "max\n"),
            ("memory.low", "0\n"),
            ("cpu.weight", "100\n"),
            ("cpu.max", "max 100000\n"),
            ("cpuset.cpus", "\n"),
            ("cpuset.mems", "\n"),
            ("pids.max", "max\n"),
            ("io.weight", "default 100\n"),
        ];
        for (name, content) in files.iter().chain(extra) {
            std::fs::write(dir.join(name), content).unwrap();
        }
        let h = Hierarchy::V2 {
            root: t.path().to_path_buf(),
        };
        (t, h)
    }

    fn file(t: &tempfile::TempDir, name: &str) -> String {
        std::fs::read_to_string(t.path().join("berth/c1").join(name)).unwrap()
    }

    #[test]
    fn writers_write_runc_strings() {
        let (t, h) = fixture(&[]);
        h.update(
            "/berth/c1",
            &Resources {
                memory: Some(256 << 20),
                memory_swap: Some(512 << 20),
                memory_reservation: Some(128 << 20),
                cpu_shares: Some(512),
                nano_cpus: Some(1_500_000_000),
                cpuset_cpus: Some("0-1".into()),
                cpuset_mems: Some("0".into()),
                pids_limit: Some(100),
                blkio_weight: Some(500),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(file(&t, "memory.max"), "268435456");
        assert_eq!(file(&t, "memory.swap.max"), "268435456");
        assert_eq!(file(&t, "memory.low"), "134217728");
        assert_eq!(file(&t, "cpu.weight"), "20");
        assert_eq!(file(&t, "cpu.max"), "150000 100000");
        assert_eq!(file(&t, "cpuset.cpus"), "0-1");
        assert_eq!(file(&t, "cpuset.mems"), "0");
        assert_eq!(file(&t, "pids.max"), "100");
        assert_eq!(file(&t, "io.weight"), "4950");

        // A new period keeps the quota; a quota of -1 keeps the period.
        h.update(
            "/berth/c1",
            &Resources {
                cpu_period: Some(50_000),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(file(&t, "cpu.max"), "150000 50000");
        h.update(
            "/berth/c1",
            &Resources {
                cpu_quota: Some(-1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(file(&t, "cpu.max"), "max 50000");

        // Swap alone: against the current memory.max.
        h.update(
            "/berth/c1",
            &Resources {
                memory_swap: Some(300 << 20),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(file(&t, "memory.swap.max"), (44 << 20).to_string());

        // Unlimited: memory -1 takes swap along; pids 0 and -1 are "max".
        h.update(
            "/berth/c1",
            &Resources {
                memory: Some(-1),
                pids_limit: Some(-1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(file(&t, "memory.max"), "max");
        assert_eq!(file(&t, "memory.swap.max"), "max");
        assert_eq!(file(&t, "pids.max"), "max");

        // Memory equal to memory+swap: no swap.
        h.update(
            "/berth/c1",
            &Resources {
                memory: Some(64 << 20),
                memory_swap: Some(64 << 20),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(file(&t, "memory.swap.max"), "0");

        // 0 is "unset" everywhere it is in Docker's API.
        let before = file(&t, "memory.max");
        h.update(
            "/berth/c1",
            &Resources {
                memory: Some(0),
                memory_swap: Some(0),
                cpu_shares: Some(0),
                cpuset_cpus: Some(String::new()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(file(&t, "memory.max"), before);
        assert_eq!(file(&t, "cpuset.cpus"), "0-1");
    }

    #[test]
    fn swap_without_memory_limit_and_missing_files() {
        let (t, h) = fixture(&[]);
        let swap_only = Resources {
            memory_swap: Some(1 << 30),
            ..Default::default()
        };
        assert!(matches!(
            h.update("/berth/c1", &swap_only),
            Err(CgroupError::Invalid {
                field: "memory_swap",
                ..
            })
        ));
        // No swap accounting: "no swap" is skipped, a real limit refused.
        std::fs::remove_file(t.path().join("berth/c1/memory.swap.max")).unwrap();
        h.update(
            "/berth/c1",
            &Resources {
                memory: Some(64 << 20),
                memory_swap: Some(64 << 20),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(file(&t, "memory.max"), "67108864");
        let r = Resources {
            memory: Some(32 << 20),
            memory_swap: Some(64 << 20),
            pids_limit: Some(5),
            ..Default::default()
        };
        match h.update("/berth/c1", &r) {
            Err(CgroupError::Unsupported { path }) => {
                assert_eq!(path, t.path().join("berth/c1/memory.swap.max"))
            }
            other => panic!("{other:?}"),
        }
        // Nothing was written.
        assert_eq!(file(&t, "memory.max"), "67108864");
        assert_eq!(file(&t, "pids.max"), "max\n");

        // io.bfq.weight wins when present, with v1's range.
        std::fs::write(t.path().join("berth/c1/io.bfq.weight"), "default 100\n").unwrap();
        h.update(
            "/berth/c1",
            &Resources {
                blkio_weight: Some(300),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(file(&t, "io.bfq.weight"), "300");
        std::fs::remove_file(t.path().join("berth/c1/io.bfq.weight")).unwrap();
        std::fs::remove_file(t.path().join("berth/c1/io.weight")).unwrap();
        assert!(matches!(
            h.update(
                "/berth/c1",
                &Resources {
                    blkio_weight: Some(300),
                    ..Default::default()
                }
            ),
            Err(CgroupError::Unsupported { .. })
        ));
        assert!(matches!(
            h.update(
                "/berth/gone",
                &Resources {
                    pids_limit: Some(1),
                    ..Default::default()
                }
            ),
            Err(CgroupError::NotFound { .. })
        ));
    }

    // memory.stat of a v2 container (kernel 6.1), trimmed of zero lines.
    const MEMORY_STAT: &str = "anon 1220608
file 8192000
kernel 585728
kernel_stack 32768
pagetables 90112
sec_pagetables 0
percpu 1440
sock 0
vmalloc 0
shmem 0
file_mapped 4055040
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
inactive_anon 1187840
active_anon 28672
inactive_file 6807552
active_file 1384448
unevictable 0
slab_reclaimable 227088
slab_unreclaimable 192792
slab 419880
workingset_refault_anon 0
workingset_refault_file 0
pgscan 0
pgsteal 0
pgfault 3381
pgmajfault 71
thp_fault_alloc 0
";

    #[test]
    fn stats_from_fixture_files() {
        let (t, h) = fixture(&[
            ("memory.current", "10153984\n"),
            ("memory.max", "268435456\n"),
            ("memory.stat", MEMORY_STAT),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n",
            ),
            (
                "cpu.stat",
                "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n\
                 core_sched.force_idle_usec 0\nnr_periods 40\nnr_throttled 5\n\
                 throttled_usec 7000\nnr_bursts 0\nburst_usec 0\n",
            ),
            (
                "io.stat",
                "254:0 rbytes=4096000 wbytes=8192 rios=250 wios=2 dbytes=0 dios=0\n",
            ),
            ("pids.current", "3\n"),
            ("pids.max", "100\n"),
        ]);
        let s = h.stats("/berth/c1").unwrap();
        assert_eq!(
            s.cpu,
            CpuStats {
                total_usage: 123_456_000,
                percpu_usage: vec![],
                usage_in_kernelmode: 23_456_000,
                usage_in_usermode: 100_000_000,
                throttling: Throttling {
                    periods: 40,
                    throttled_periods: 5,
                    throttled_time: 7_000_000
                }
            }
        );
        assert_eq!(s.memory.usage, 10153984);
        assert_eq!(s.memory.max_usage, None);
        assert_eq!(s.memory.limit, Some(268435456));
        assert_eq!(s.memory.failcnt, Some(2));
        assert_eq!(s.memory.stats.len(), 30);
        assert_eq!(s.memory.stats.get("inactive_file"), Some(6807552));
        assert_eq!(
            s.pids,
            PidsStats {
                current: 3,
                limit: Some(100)
            }
        );
        let e = |op: &str, value| BlkioEntry {
            major: 254,
            minor: 0,
            op: op.into(),
            value,
        };
        assert_eq!(
            s.blkio.io_service_bytes_recursive,
            [e("read", 4096000), e("write", 8192)]
        );
        assert_eq!(
            s.blkio.io_serviced_recursive,
            [e("read", 250), e("write", 2)]
        );
        assert_eq!(h.oom_kills("/berth/c1"), Some(1));

        // No controllers enabled: defaults, not errors.
        let (t2, bare) = fixture(&[]);
        for f in ["memory.max", "pids.max", "cpu.max"] {
            std::fs::remove_file(t2.path().join("berth/c1").join(f)).unwrap();
        }
        let s = bare.stats("/berth/c1").unwrap();
        assert_eq!(s.memory.limit, None);
        assert_eq!(s.pids, PidsStats::default());
        assert_eq!(bare.oom_kills("/berth/c1"), None);
        assert!(matches!(
            bare.stats("/berth/gone"),
            Err(CgroupError::NotFound { .. })
        ));
        // No cgroup.freeze (kernel before 5.2).
        std::fs::write(t2.path().join("berth/c1/cgroup.events"), "populated 1\n").unwrap();
        assert!(!bare.is_frozen("/berth/c1").unwrap());
        assert!(matches!(
            bare.freeze("/berth/c1"),
            Err(CgroupError::Unsupported { .. })
        ));
        drop(t);
    }

    #[test]
    fn freeze_thaw_and_pids_on_a_real_cgroup2_mount() {
        let mut cg = V2TestCgroup::create();
        let h = cg.hierarchy();
        let path = cg.path();
        let work = tempfile::tempdir().unwrap();
        let counter = work.path().join("counter");
        let pid = cg.adopt(testing::counter_loop(&counter), None);
        // A second process in a cgroup below: pids() walks the subtree.
        let inner = cg.mkdir("inner");
        let sleeper = cg.adopt(
            Command::new("sleep").arg("600").spawn().unwrap(),
            Some(&inner),
        );
        let read_counter = || testing::read_counter(&counter);
        testing::wait_until("the counter to move", || read_counter() > 2);

        let pids = h.pids(&path).unwrap();
        assert!(pids.contains(&pid) && pids.contains(&sleeper), "{pids:?}");
        assert_eq!(h.pids(&format!("{path}/inner")).unwrap(), [sleeper]);

        assert!(!h.is_frozen(&path).unwrap());
        h.freeze(&path).unwrap();
        // freeze() saw "frozen 1"; a fork that was under way can make the
        // kernel report "frozen 0" again for a moment (seen under load).
        testing::wait_until("the cgroup to stay frozen", || h.is_frozen(&path).unwrap());
        assert!(h.is_frozen(&format!("{path}/inner")).unwrap());
        assert_eq!(
            std::fs::read_to_string(cg.dir().join("cgroup.freeze"))
                .unwrap()
                .trim(),
            "1"
        );
        eprintln!("state of the frozen shell: {}", testing::proc_state(pid));
        let before = read_counter();
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(read_counter(), before, "the counter moved while frozen");

        h.thaw(&path).unwrap();
        assert!(!h.is_frozen(&path).unwrap());
        testing::wait_until("the counter to move again", || read_counter() > before);

        // cpu.stat is a core file: usage shows without the cpu controller.
        let s = h.stats(&path).unwrap();
        assert!(s.cpu.total_usage > 0, "{s:?}");
        assert!(s.cpu.percpu_usage.is_empty());
    }
}
