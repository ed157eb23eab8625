//! Test cgroups on the real kernel, removed even when a test fails: each
//! guard thaws its cgroups, kills every process in them, reaps its own
//! children and removes the directories (and unmounts what it mounted).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::Hierarchy;

/// A name no other test or test run uses: `berth-test-<pid>-<n>-<nanos>`.
pub(super) fn unique_name() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "berth-test-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `done` every 10 ms for up to 30 s, then fails the test.
pub(super) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A shell that writes 1, 2, 3… to `file`, about 50 times a second.
pub(super) fn counter_loop(file: &Path) -> Child {
    Command::new("sh")
        .args([
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > \"$1\"; sleep 0.02; done",
            "sh",
        ])
        .arg(file)
        .spawn()
        .expect("spawn sh")
}

/// The counter's value (0 before the first write or mid-write).
pub(super) fn read_counter(file: &Path) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The state letter of `/proc/<pid>/stat` (R, S, D, T…).
pub(super) fn proc_state(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .unwrap_or("?")
        .to_string()
}

/// CPUs the kernel could bring online (`cpuacct.usage_percpu` has one
/// number per possible CPU).
pub(super) fn possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    super::parse_cpuset(&text).unwrap().len()
}

/// Kills every process listed in `dir`'s and its descendants'
/// `cgroup.procs`.
fn kill_all_in(dir: &Path) {
    let mut pids = Vec::new();
    let _ = super::collect_pids(dir, &mut pids);
    for pid in pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Kills and reaps our own children.
fn reap(children: &mut Vec<Child>) {
    for mut c in children.drain(..) {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Removes a cgroup directory and the cgroups below it, retrying while the
/// killed processes die (rmdir is EBUSY until they have).
fn remove_tree(dir: &Path) -> Result<(), String> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("rmdir {}: {e}", dir.display()))
            }
            Err(_) => {
                kill_all_in(dir);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Fails the test with `errors` unless it is failing already (a panic in a
/// drop during a panic would abort and hide the first failure).
fn report(errors: &[String]) {
    if errors.is_empty() {
        return;
    }
    eprintln!("test cgroup cleanup failed: {errors:?}");
    if !std::thread::panicking() {
        panic!("test cgroup cleanup failed: {errors:?}");
    }
}

/// `/sys/fs/cgroup/<controller>/berth-test-…` for each controller asked.
pub(super) struct V1TestCgroup {
    root: PathBuf,
    name: String,
    controllers: Vec<&'static str>,
    children: Vec<Child>,
}

impl V1TestCgroup {
    /// Creates the cgroup in each controller's tree (a cpuset one gets its
    /// parent's CPUs and memory nodes, without which it takes no process).
    pub(super) fn create(controllers: &[&'static str]) -> V1TestCgroup {
        let mut cg = V1TestCgroup {
            root: PathBuf::from(super::CGROUP_ROOT),
            name: unique_name(),
            controllers: Vec::new(),
            children: Vec::new(),
        };
        for &c in controllers {
            let parent = cg.root.join(c);
            assert!(
                parent.join("cgroup.procs").exists(),
                "cgroup v1 controller {c} is not mounted at {}; these tests need the v1 hierarchy",
                parent.display()
            );
            let dir = parent.join(&cg.name);
            std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            cg.controllers.push(c);
            if c == "cpuset" {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = std::fs::read_to_string(parent.join(f)).unwrap();
                    std::fs::write(dir.join(f), v.trim()).unwrap();
                }
            }
        }
        cg
    }

    pub(super) fn hierarchy(&self) -> Hierarchy {
        Hierarchy::V1 {
            root: self.root.clone(),
        }
    }

    /// The cgroup path, as in an OCI spec.
    pub(super) fn path(&self) -> String {
        format!("/{}", self.name)
    }

    pub(super) fn dir(&self, controller: &str) -> PathBuf {
        self.root.join(controller).join(&self.name)
    }

    /// Moves `child` into the cgroup of every controller; the guard owns it.
    pub(super) fn adopt(&mut self, child: Child) -> i32 {
        let pid = child.id() as i32;
        self.children.push(child);
        for c in &self.controllers {
            let procs = self.dir(c).join("cgroup.procs");
            std::fs::write(&procs, pid.to_string())
                .unwrap_or_else(|e| panic!("add {pid} to {}: {e}", procs.display()));
        }
        pid
    }

    /// Waits up to 60 s for an adopted child to exit.
    pub(super) fn wait(&mut self, pid: i32) -> ExitStatus {
        let child = self
            .children
            .iter_mut()
            .find(|c| c.id() as i32 == pid)
            .expect("an adopted child");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "child {pid} did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for V1TestCgroup {
    fn drop(&mut self) {
        if self.controllers.contains(&"freezer") {
            // Frozen processes do not die.
            let _ = std::fs::write(self.dir("freezer").join("freezer.state"), "THAWED");
        }
        for c in &self.controllers {
            kill_all_in(&self.dir(c));
        }
        reap(&mut self.children);
        let errors: Vec<String> = self
            .controllers
            .iter()
            .filter_map(|c| remove_tree(&self.dir(c)).err())
            .collect();
        report(&errors);
    }
}

/// A cgroup2 filesystem mounted on a temp dir, with `berth-test-…` made in
/// it. On a hybrid host the mount is the same tree as
/// `/sys/fs/cgroup/unified`, without memory/cpu controllers; the core files
/// (`cgroup.procs`, `cgroup.freeze`, `cgroup.events`, `cpu.stat`) work.
pub(super) struct V2TestCgroup {
    /// Never dropped while mounted: removing the temp dir would rmdir
    /// every empty cgroup of the host's tree.
    mount: Option<tempfile::TempDir>,
    mounted: bool,
    name: String,
    children: Vec<Child>,
}

impl V2TestCgroup {
    pub(super) fn create() -> V2TestCgroup {
        let mut cg = V2TestCgroup {
            mount: Some(tempfile::tempdir().unwrap()),
            mounted: false,
            name: unique_name(),
            children: Vec::new(),
        };
        let at = cg.mount_point().to_path_buf();
        nix::mount::mount(
            Some("none"),
            &at,
            Some("cgroup2"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap_or_else(|e| panic!("mount cgroup2 on {}: {e}", at.display()));
        cg.mounted = true;
        std::fs::create_dir(cg.dir()).unwrap();
        cg
    }

    fn mount_point(&self) -> &Path {
        self.mount.as_ref().expect("mount dir").path()
    }

    pub(super) fn hierarchy(&self) -> Hierarchy {
        Hierarchy::V2 {
            root: self.mount_point().to_path_buf(),
        }
    }

    pub(super) fn path(&self) -> String {
        format!("/{}", self.name)
    }

    pub(super) fn dir(&self) -> PathBuf {
        self.mount_point().join(&self.name)
    }

    /// Makes a cgroup below the test cgroup.
    pub(super) fn mkdir(&self, name: &str) -> PathBuf {
        let d = self.dir().join(name);
        std::fs::create_dir(&d).unwrap();
        d
    }

    /// Moves `child` into the test cgroup or `into`; the guard owns it.
    pub(super) fn adopt(&mut self, child: Child, into: Option<&Path>) -> i32 {
        let pid = child.id() as i32;
        self.children.push(child);
        let procs = into
            .map_or_else(|| self.dir(), Path::to_path_buf)
            .join("cgroup.procs");
        std::fs::write(&procs, pid.to_string())
            .unwrap_or_else(|e| panic!("add {pid} to {}: {e}", procs.display()));
        pid
    }
}

impl Drop for V2TestCgroup {
    fn drop(&mut self) {
        let mut errors = Vec::new();
        if self.mounted {
            let dir = self.dir();
            let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
            kill_all_in(&dir);
            reap(&mut self.children);
            errors.extend(remove_tree(&dir).err());
            let at = self.mount_point().to_path_buf();
            if let Err(e) = nix::mount::umount2(&at, nix::mount::MntFlags::MNT_DETACH) {
                errors.push(format!("umount {}: {e}", at.display()));
                // Leave the temp dir (and the mount) rather than empty it.
                std::mem::forget(self.mount.take());
            }
        }
        reap(&mut self.children);
        report(&errors);
    }
}
