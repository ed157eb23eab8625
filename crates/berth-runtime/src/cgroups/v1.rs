//! cgroup v1: one tree per controller, `<root>/<controller>/<cgroup path>`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{
    cpuset, existing_dir, nano_cpus_to_quota, parse_u64, read, set, validate, write, CgroupError,
    Resources, Write,
};

/// The controllers whose cgroup lists the container's processes, in the
/// order they are looked for (the runtime puts its processes in all).
const PROCS_CONTROLLERS: [&str; 6] = ["freezer", "pids", "devices", "memory", "cpu", "cpuacct"];

fn dir(root: &Path, controller: &str, rel: &Path) -> PathBuf {
    root.join(controller).join(rel)
}

/// The writes of a `docker update`, in order (runc's order and rules).
pub(super) fn plan_update(
    root: &Path,
    rel: &Path,
    r: &Resources,
) -> Result<Vec<Write>, CgroupError> {
    validate(r)?;
    let mut plan = Vec::new();

    let (mem, mut swap, reservation) =
        (set(r.memory), set(r.memory_swap), set(r.memory_reservation));
    if mem.is_some() || swap.is_some() || reservation.is_some() {
        let d = existing_dir(dir(root, "memory", rel))?;
        let memsw = d.join("memory.memsw.limit_in_bytes");
        // Unlimited memory without a word on swap: unlimited swap too, when
        // the kernel accounts swap at all.
        if mem == Some(-1) && swap.is_none() && memsw.exists() {
            swap = Some(-1);
        }
        let limit = |v: i64| Write::new(d.join("memory.limit_in_bytes"), v.to_string());
        let memsw_limit = |v: i64| Write::new(memsw.clone(), v.to_string());
        match (mem, swap) {
            (Some(m), Some(s)) => {
                // The kernel wants memsw ≥ memory at every step: raising,
                // memsw goes first; lowering, memory goes first.
                let file = d.join("memory.limit_in_bytes");
                let current = parse_u64(&file, &read(&file)?)?;
                if s == -1 || current < s as u64 {
                    plan.extend([memsw_limit(s), limit(m)]);
                } else {
                    plan.extend([limit(m), memsw_limit(s)]);
                }
            }
            (Some(m), None) => plan.push(limit(m)),
            (None, Some(s)) => plan.push(memsw_limit(s)),
            (None, None) => {}
        }
        if let Some(v) = reservation {
            plan.push(Write::new(
                d.join("memory.soft_limit_in_bytes"),
                v.to_string(),
            ));
        }
    }

    let (mut quota, mut period) = (set(r.cpu_quota), r.cpu_period.filter(|&p| p != 0));
    if let Some(n) = r.nano_cpus.filter(|&n| n > 0) {
        let (q, p) = nano_cpus_to_quota(n);
        (quota, period) = (Some(q), Some(p));
    }
    let shares = r.cpu_shares.filter(|&s| s != 0);
    if shares.is_some() || quota.is_some() || period.is_some() {
        let d = existing_dir(dir(root, "cpu", rel))?;
        if let Some(s) = shares {
            plan.push(Write::new(d.join("cpu.shares"), s.to_string()));
        }
        if let Some(p) = period {
            plan.push(Write {
                path: d.join("cpu.cfs_period_us"),
                value: p.to_string(),
                // A shorter period can be refused until the new quota is in.
                retry_after_next: quota.is_some(),
            });
        }
        if let Some(q) = quota {
            plan.push(Write::new(d.join("cpu.cfs_quota_us"), q.to_string()));
        }
    }

    let (cpus, mems) = (cpuset(&r.cpuset_cpus), cpuset(&r.cpuset_mems));
    if cpus.is_some() || mems.is_some() {
        let d = existing_dir(dir(root, "cpuset", rel))?;
        if let Some(v) = cpus {
            plan.push(Write::new(d.join("cpuset.cpus"), v));
        }
        if let Some(v) = mems {
            plan.push(Write::new(d.join("cpuset.mems"), v));
        }
    }

    if let Some(p) = r.pids_limit {
        let d = existing_dir(dir(root, "pids", rel))?;
        let value = if p <= 0 {
            "max".to_string()
        } else {
            p.to_string()
        };
        plan.push(Write::new(d.join("pids.max"), value));
    }

    if let Some(w) = r.blkio_weight.filter(|&w| w != 0) {
        let d = existing_dir(dir(root, "blkio", rel))?;
        // CFQ's file, else BFQ's (same range); neither: `apply` reports
        // blkio.weight as unsupported.
        let bfq = d.join("blkio.bfq.weight");
        let file = if !d.join("blkio.weight").exists() && bfq.exists() {
            bfq
        } else {
            d.join("blkio.weight")
        };
        plan.push(Write::new(file, w.to_string()));
    }
    Ok(plan)
}

/// The cgroup directory whose `cgroup.procs` lists the container.
pub(super) fn pids_dir(root: &Path, rel: &Path) -> Result<PathBuf, CgroupError> {
    PROCS_CONTROLLERS
        .iter()
        .map(|c| dir(root, c, rel))
        .find(|d| d.is_dir())
        .ok_or_else(|| CgroupError::NotFound {
            path: dir(root, PROCS_CONTROLLERS[0], rel),
        })
}

/// Writes FROZEN or THAWED to `freezer.state` until the kernel reports it
/// (freezing goes through FREEZING while tasks are caught; writing again
/// retries the ones that were not). A freeze that times out is undone.
pub(super) fn set_frozen(
    root: &Path,
    rel: &Path,
    frozen: bool,
    timeout: Duration,
) -> Result<(), CgroupError> {
    let file = existing_dir(dir(root, "freezer", rel))?.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        write(&file, want)?;
        if read(&file)?.trim() == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            if frozen {
                let _ = write(&file, "THAWED");
            }
            return Err(CgroupError::Timeout {
                path: file,
                state: want,
                timeout,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

pub(super) fn is_frozen(root: &Path, rel: &Path) -> Result<bool, CgroupError> {
    let file = existing_dir(dir(root, "freezer", rel))?.join("freezer.state");
    Ok(read(&file)?.trim() == "FROZEN")
}

#[cfg(test)]
mod tests {
    use super::super::testing::{self, V1TestCgroup};
    use super::super::{CgroupError, Hierarchy};
    use super::*;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    /// A fixture tree of plain files for the planner.
    fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let p = t.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        t
    }

    fn planned(plan: &[Write], root: &Path) -> Vec<(String, String)> {
        plan.iter()
            .map(|w| {
                let p = w.path.strip_prefix(root).unwrap();
                (p.to_string_lossy().into_owned(), w.value.clone())
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn memory_and_swap_order_follows_the_direction() {
        let t = fixture(&[
            ("memory/c/memory.limit_in_bytes", "268435456\n"),
            ("memory/c/memory.memsw.limit_in_bytes", "536870912\n"),
        ]);
        let rel = Path::new("c");
        let r = |m: i64, s: i64| Resources {
            memory: Some(m),
            memory_swap: Some(s),
            ..Default::default()
        };
        // Raising past the current limit: memsw first.
        let plan = plan_update(t.path(), rel, &r(512 << 20, 1 << 30)).unwrap();
        assert_eq!(
            planned(&plan, t.path()),
            pairs(&[
                ("memory/c/memory.memsw.limit_in_bytes", "1073741824"),
                ("memory/c/memory.limit_in_bytes", "536870912"),
            ])
        );
        // Lowering: memory first.
        let plan = plan_update(t.path(), rel, &r(64 << 20, 128 << 20)).unwrap();
        assert_eq!(
            planned(&plan, t.path()),
            pairs(&[
                ("memory/c/memory.limit_in_bytes", "67108864"),
                ("memory/c/memory.memsw.limit_in_bytes", "134217728"),
            ])
        );
        // Unlimited memory alone takes swap along.
        let plan = plan_update(
            t.path(),
            rel,
            &Resources {
                memory: Some(-1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            planned(&plan, t.path()),
            pairs(&[
                ("memory/c/memory.memsw.limit_in_bytes", "-1"),
                ("memory/c/memory.limit_in_bytes", "-1"),
            ])
        );
    }

    #[test]
    fn cpu_plan_from_nano_cpus_and_fields() {
        let t = fixture(&[("cpu/c/cpu.shares", "1024")]);
        let rel = Path::new("c");
        let plan = plan_update(
            t.path(),
            rel,
            &Resources {
                nano_cpus: Some(1_500_000_000),
                cpu_shares: Some(512),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            planned(&plan, t.path()),
            pairs(&[
                ("cpu/c/cpu.shares", "512"),
                ("cpu/c/cpu.cfs_period_us", "100000"),
                ("cpu/c/cpu.cfs_quota_us", "150000"),
            ])
        );
        assert!(plan[1].retry_after_next);
        let plan = plan_update(
            t.path(),
            rel,
            &Resources {
                cpu_period: Some(50_000),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(!plan[0].retry_after_next);
    }

    #[test]
    fn missing_cgroup_and_missing_blkio_weight() {
        let t = fixture(&[("blkio/c/blkio.throttle.io_serviced", "Total 0\n")]);
        let r = Resources {
            pids_limit: Some(10),
            ..Default::default()
        };
        assert!(matches!(
            plan_update(t.path(), Path::new("c"), &r),
            Err(CgroupError::NotFound { .. })
        ));
        let h = Hierarchy::V1 {
            root: t.path().to_path_buf(),
        };
        let r = Resources {
            blkio_weight: Some(300),
            ..Default::default()
        };
        match h.update("/c", &r) {
            Err(CgroupError::Unsupported { path }) => {
                assert_eq!(path, t.path().join("blkio/c/blkio.weight"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            h.stats("/gone"),
            Err(CgroupError::NotFound { .. })
        ));
        assert!(matches!(h.pids("/gone"), Err(CgroupError::NotFound { .. })));
        assert!(matches!(
            h.freeze("/gone"),
            Err(CgroupError::NotFound { .. })
        ));
        assert_eq!(h.oom_kills("/gone"), None);
    }

    /// Waits until `pid` runs `comm` (after an exec).
    fn wait_for_comm(pid: i32, comm: &str) {
        testing::wait_until("process exec", || {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        });
    }

    #[test]
    fn v1_update_stats_and_pids_on_the_real_hierarchy() {
        let mut cg = V1TestCgroup::create(&[
            "memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "blkio",
        ]);
        let h = cg.hierarchy();
        let path = cg.path();

        // Waits for a line, burns some CPU inside the cgroup, then sleeps.
        let mut child = Command::new("sh")
            .args([
                "-c",
                "read go; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 600",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let pid = cg.adopt(child);
        writeln!(stdin, "go").unwrap();
        wait_for_comm(pid, "sleep");

        assert_eq!(h.pids(&path).unwrap(), [pid]);
        let s = h.stats(&path).unwrap();
        assert!(s.cpu.total_usage > 0, "{s:?}");
        assert_eq!(s.cpu.percpu_usage.len(), testing::possible_cpus(), "{s:?}");
        assert_eq!(s.cpu.percpu_usage.iter().sum::<u64>(), s.cpu.total_usage);
        assert!(s.memory.usage > 0, "{s:?}");
        assert!(s.memory.max_usage.unwrap() >= s.memory.usage);
        assert_eq!(s.memory.limit, None);
        assert!(s.memory.stats.get("total_inactive_file").is_some(), "{s:?}");
        assert_eq!(s.pids.current, 1);
        assert_eq!(s.pids.limit, None);
        assert_eq!(h.oom_kills(&path), Some(0));

        let blkio_weight_supported = ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .any(|f| cg.dir("blkio").join(f).exists());
        let r = Resources {
            memory: Some(64 << 20),
            memory_swap: Some(128 << 20),
            memory_reservation: Some(32 << 20),
            nano_cpus: Some(500_000_000),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0".into()),
            cpuset_mems: Some("0".into()),
            pids_limit: Some(50),
            // Only where the I/O scheduler offers weights (BFQ/CFQ).
            blkio_weight: blkio_weight_supported.then_some(300),
            ..Default::default()
        };
        h.update(&path, &r).unwrap();
        let file = |c: &str, f: &str| {
            std::fs::read_to_string(cg.dir(c).join(f))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(file("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(file("memory", "memory.memsw.limit_in_bytes"), "134217728");
        assert_eq!(file("memory", "memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(file("cpu", "cpu.shares"), "512");
        assert_eq!(file("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(file("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(file("cpuset", "cpuset.cpus"), "0");
        assert_eq!(file("cpuset", "cpuset.mems"), "0");
        assert_eq!(file("pids", "pids.max"), "50");
        if blkio_weight_supported {
            let weight = ["blkio.weight", "blkio.bfq.weight"]
                .iter()
                .find_map(|f| std::fs::read_to_string(cg.dir("blkio").join(f)).ok())
                .unwrap();
            assert!(weight.contains("300"), "{weight}");
        }
        let s = h.stats(&path).unwrap();
        assert_eq!(s.memory.limit, Some(64 << 20));
        assert_eq!(s.pids.limit, Some(50));

        // Lowering both (memory first) and raising both (memsw first).
        for (m, s) in [(32 << 20, 48 << 20), (256 << 20, 512 << 20)] {
            let r = Resources {
                memory: Some(m),
                memory_swap: Some(s),
                ..Default::default()
            };
            h.update(&path, &r).unwrap();
            assert_eq!(file("memory", "memory.limit_in_bytes"), m.to_string());
            assert_eq!(file("memory", "memory.memsw.limit_in_bytes"), s.to_string());
        }

        // Everything back to unlimited.
        let r = Resources {
            memory: Some(-1),
            cpu_quota: Some(-1),
            pids_limit: Some(0),
            ..Default::default()
        };
        h.update(&path, &r).unwrap();
        assert_eq!(
            file("memory", "memory.limit_in_bytes"),
            "9223372036854771712"
        );
        assert_eq!(
            file("memory", "memory.memsw.limit_in_bytes"),
            "9223372036854771712"
        );
        assert_eq!(file("cpu", "cpu.cfs_quota_us"), "-1");
        assert_eq!(file("pids", "pids.max"), "max");

        // Below current usage: the kernel refuses, and the error says where.
        let r = Resources {
            memory: Some(4096),
            ..Default::default()
        };
        match h.update(&path, &r) {
            Err(e @ CgroupError::Write { .. }) => {
                let text = e.to_string();
                assert!(text.contains("memory.limit_in_bytes"), "{text}");
                assert!(text.contains("\"4096\""), "{text}");
                let CgroupError::Write { source, .. } = e else {
                    unreachable!()
                };
                assert_eq!(source.raw_os_error(), Some(libc::EBUSY), "{source}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            file("memory", "memory.limit_in_bytes"),
            "9223372036854771712"
        );

        // Bad input writes nothing.
        let r = Resources {
            pids_limit: Some(7),
            cpuset_cpus: Some("0-x".into()),
            ..Default::default()
        };
        assert!(matches!(
            h.update(&path, &r),
            Err(CgroupError::Invalid { .. })
        ));
        assert_eq!(file("pids", "pids.max"), "max");
    }

    #[test]
    fn v1_freeze_stops_the_processes_and_thaw_resumes_them() {
        let mut cg = V1TestCgroup::create(&["freezer", "cpu", "cpuacct", "memory"]);
        let h = cg.hierarchy();
        let path = cg.path();
        let work = tempfile::tempdir().unwrap();
        let counter = work.path().join("counter");
        let child = testing::counter_loop(&counter);
        let pid = cg.adopt(child);
        let read_counter = || testing::read_counter(&counter);
        testing::wait_until("the counter to move", || read_counter() > 2);

        assert!(!h.is_frozen(&path).unwrap());
        h.freeze(&path).unwrap();
        assert!(h.is_frozen(&path).unwrap());
        assert_eq!(
            std::fs::read_to_string(cg.dir("freezer").join("freezer.state"))
                .unwrap()
                .trim(),
            "FROZEN"
        );
        // The v1 freezer parks tasks uninterruptibly.
        assert_eq!(testing::proc_state(pid), "D");
        let before = read_counter();
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(read_counter(), before, "the counter moved while frozen");
        assert!(h.pids(&path).unwrap().contains(&pid));
        // Freezing twice is harmless.
        h.freeze(&path).unwrap();

        h.thaw(&path).unwrap();
        assert!(!h.is_frozen(&path).unwrap());
        testing::wait_until("the counter to move again", || read_counter() > before);
    }

    #[test]
    fn v1_oom_kill_is_counted() {
        let mut cg = V1TestCgroup::create(&["memory"]);
        let h = cg.hierarchy();
        let path = cg.path();
        assert_eq!(h.oom_kills(&path), Some(0));
        h.update(
            &path,
            &Resources {
                memory: Some(8 << 20),
                memory_swap: Some(8 << 20),
                ..Default::default()
            },
        )
        .unwrap();
        // Doubles a string until the limit is hit.
        let mut child = Command::new("sh")
            .args(["-c", "read go; a=x; while :; do a=\"$a$a\"; done"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let pid = cg.adopt(child);
        writeln!(stdin, "go").unwrap();
        let status = cg.wait(pid);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        assert_eq!(h.oom_kills(&path), Some(1));
        let s = h.stats(&path).unwrap();
        // memory+swap hit its limit first, so memory.failcnt may stay 0.
        assert!(s.memory.failcnt.is_some(), "{s:?}");
        assert_eq!(s.memory.max_usage, Some(8 << 20), "{s:?}");
        assert_eq!(s.memory.limit, Some(8 << 20));
    }
}
