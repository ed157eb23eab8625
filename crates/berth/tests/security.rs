//! Attacks on a default container's confinement (seccomp, capabilities,
//! masked and read-only paths, device cgroup), each of which must fail, and
//! the options that lift or tighten it as Docker's do: `--privileged`,
//! `--cap-add/--cap-drop`, `--security-opt`, `--read-only`, `--tmpfs`,
//! `--ulimit`, `--sysctl`, `--device`, and the host namespaces.
//! All through the real docker CLI against a private daemon.

mod common;

use common::{Daemon, Run};

/// Docker's default capability set as a CapEff mask.
const DEFAULT_CAP_MASK: u64 = 0xa80425fb;

fn run(d: &Daemon, opts: &[&str], script: &str) -> Run {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    d.docker(&args)
}

/// Output of a script that must succeed, stdout and stderr together (the
/// probes report failures on stderr).
fn sh(d: &Daemon, opts: &[&str], script: &str) -> String {
    let r = run(d, opts, script);
    r.ok();
    format!("{}{}", r.stdout, r.stderr)
}

fn status_field(out: &str, field: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {out}"))
        .trim()
        .to_string()
}

fn host_status(field: &str) -> String {
    status_field(
        &std::fs::read_to_string("/proc/self/status").unwrap(),
        field,
    )
}

/// The daemon's bounding set, as far as berth knows capabilities (up to
/// CAP_CHECKPOINT_RESTORE, 40).
fn host_bounding() -> u64 {
    u64::from_str_radix(&host_status("CapBnd"), 16).unwrap() & ((1 << 41) - 1)
}

fn cap_eff(out: &str) -> u64 {
    u64::from_str_radix(&status_field(out, "CapEff"), 16).unwrap()
}

/// Probes run in one container: each prints `name=<exit code>`.
const PROBES: &str = "
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
unshare -U true; echo unshare=$?
mkdir -p /mnt; mount -t tmpfs x /mnt; echo mount=$?
head -c 8192 /dev/zero > /tmp/x.ko; insmod /tmp/x.ko; echo insmod=$?
echo 1 > /proc/sys/net/ipv4/ip_forward; echo procsys=$?
true > /proc/sysrq-trigger; echo sysrq=$?
echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c)
echo keys=$(cat /proc/keys | wc -c)
echo timer_list=$(cat /proc/timer_list | wc -c)
mknod /tmp/kmsg c 1 11; true < /tmp/kmsg; echo kmsg=$?
cat /sys/fs/cgroup/memory/memory.limit_in_bytes > /dev/null 2>&1 || cat /sys/fs/cgroup/memory.max > /dev/null; echo cgroup_read=$?
f=/sys/fs/cgroup/memory/memory.limit_in_bytes; [ -e $f ] || f=/sys/fs/cgroup/memory.max
v=$(cat $f); echo $v > $f; echo cgroup_write=$?
mkdir /sys/fs/cgroup/mine; echo cgroup_mkdir=$?
true";

fn probe(out: &str, name: &str) -> i32 {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn default_container_resists_attacks() {
    let d = Daemon::start();
    d.busybox();
    let out = sh(&d, &[], PROBES);
    // Docker's capabilities, Docker's seccomp filter, no_new_privs unset.
    assert_eq!(cap_eff(&out), DEFAULT_CAP_MASK, "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");
    // User namespaces (seccomp: unshare needs SYS_ADMIN), mounting,
    // kernel modules: refused with EPERM.
    assert_ne!(probe(&out, "unshare"), 0, "{out}");
    assert!(
        out.contains("unshare: unshare(0x10000000): Operation not permitted"),
        "{out}"
    );
    assert_ne!(probe(&out, "mount"), 0, "{out}");
    assert_ne!(probe(&out, "insmod"), 0, "{out}");
    assert!(
        out.contains("can't insert '/tmp/x.ko': Operation not permitted"),
        "{out}"
    );
    // /proc/sys is read-only; so is /proc/sysrq-trigger (absent on kernels
    // without magic SysRq, where the write fails as well).
    assert_ne!(probe(&out, "procsys"), 0, "{out}");
    assert!(
        out.contains("/proc/sys/net/ipv4/ip_forward: Read-only file system"),
        "{out}"
    );
    assert_ne!(probe(&out, "sysrq"), 0, "{out}");
    // Masked: nothing to read, though the host's have content.
    assert_eq!(probe(&out, "kcore"), 0, "{out}");
    assert_eq!(probe(&out, "keys"), 0, "{out}");
    assert_eq!(probe(&out, "timer_list"), 0, "{out}");
    assert!(
        !std::fs::read("/proc/timer_list").unwrap().is_empty(),
        "the host's /proc/timer_list is empty: the masking check proves nothing"
    );
    // The device cgroup lets a node be made but not opened.
    assert_ne!(probe(&out, "kmsg"), 0, "{out}");
    assert!(
        out.contains("can't open /tmp/kmsg: Operation not permitted"),
        "{out}"
    );
    // The container sees its cgroup but cannot raise its own limits.
    assert_eq!(probe(&out, "cgroup_read"), 0, "{out}");
    assert_ne!(probe(&out, "cgroup_write"), 0, "{out}");
    assert_ne!(probe(&out, "cgroup_mkdir"), 0, "{out}");
    // If the host has them, the paths are really masked (bound to /dev/null)
    // or read-only, not just missing.
    let mounts = sh(&d, &[], "cat /proc/mounts");
    if std::path::Path::new("/proc/sysrq-trigger").exists() {
        assert!(
            mounts
                .lines()
                .any(|l| l.contains(" /proc/sysrq-trigger ") && l.contains(" ro,")),
            "{mounts}"
        );
    }
    if std::path::Path::new("/proc/kcore").exists() {
        assert!(mounts.contains(" /proc/kcore "), "{mounts}");
    }
}

#[test]
fn privileges_lift_exactly_what_they_name() {
    let d = Daemon::start();
    d.busybox();
    // No seccomp filter: user namespaces work (they need no capability),
    // mounting still does not (no SYS_ADMIN).
    let out = sh(&d, &["--security-opt", "seccomp=unconfined"], PROBES);
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert_eq!(probe(&out, "unshare"), 0, "{out}");
    assert_ne!(probe(&out, "mount"), 0, "{out}");
    // SYS_ADMIN opens mount and unshare in the seccomp profile too.
    let out = sh(&d, &["--cap-add", "SYS_ADMIN"], PROBES);
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert_eq!(probe(&out, "mount"), 0, "{out}");
    assert_eq!(probe(&out, "unshare"), 0, "{out}");
    // SYS_MODULE lets init_module through to the kernel, which then
    // answers for itself (no module support on some kernels).
    let out = sh(&d, &["--cap-add", "SYS_MODULE"], PROBES);
    assert!(
        !out.contains("can't insert '/tmp/x.ko': Operation not permitted"),
        "{out}"
    );
    // Unmasked system paths.
    let out = sh(&d, &["--security-opt", "systempaths=unconfined"], PROBES);
    assert!(probe(&out, "timer_list") > 0, "{out}");
    // Privileged: everything the daemon holds, no filter, writable /proc/sys,
    // the host's devices and a writable cgroup.
    let out = sh(&d, &["--privileged"], PROBES);
    let bnd = host_bounding();
    assert_eq!(cap_eff(&out), bnd, "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert_eq!(probe(&out, "mount"), 0, "{out}");
    assert_eq!(probe(&out, "procsys"), 0, "{out}");
    assert!(probe(&out, "timer_list") > 0, "{out}");
    assert!(
        !out.contains("can't insert '/tmp/x.ko': Operation not permitted"),
        "{out}"
    );
    let host_devs = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .filter(|e| {
            use std::os::unix::fs::FileTypeExt;
            e.file_type().is_ok_and(|t| t.is_char_device())
        })
        .count();
    let devs: usize = sh(&d, &["--privileged"], "ls -l /dev | grep -c '^c'")
        .trim()
        .parse()
        .unwrap();
    assert!(
        devs + 3 >= host_devs,
        "{devs} char devices of the host's {host_devs}"
    );
}

#[test]
fn capability_sets() {
    let d = Daemon::start();
    d.busybox();
    let status = |opts: &[&str]| sh(&d, opts, "cat /proc/self/status");
    assert_eq!(cap_eff(&status(&["--cap-drop", "ALL"])), 0);
    let bnd = host_bounding();
    assert_eq!(cap_eff(&status(&["--cap-add", "ALL"])), bnd);
    assert_eq!(
        cap_eff(&status(&[
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_BIND_SERVICE"
        ])),
        1 << 10
    );
    assert_eq!(
        cap_eff(&status(&["--cap-drop", "chown", "--cap-add", "sys_ptrace"])),
        (DEFAULT_CAP_MASK & !1) | (1 << 19)
    );
    // Raw sockets need NET_RAW, which Docker's set has (on the host network,
    // where loopback is up, ping gets an answer).
    let ping = "ping -c1 -W2 127.0.0.1";
    let ok = run(&d, &["--network", "host"], ping);
    assert!(ok.ok().contains("1 packets received"), "{ok:?}");
    let no_raw = run(&d, &["--network", "host", "--cap-drop", "NET_RAW"], ping);
    assert!(no_raw.fails(1).contains("permission denied"), "{no_raw:?}");
    let e = d.docker(&["run", "--rm", "--cap-add", "FOO", "busybox", "true"]);
    assert!(
        e.fails(125)
            .contains("invalid CapAdd: unknown capability: \"CAP_FOO\""),
        "{e:?}"
    );
    let e = d.docker(&["run", "--rm", "--cap-drop", "BAR", "busybox", "true"]);
    assert!(
        e.fails(125)
            .contains("invalid CapDrop: unknown capability: \"CAP_BAR\""),
        "{e:?}"
    );
    assert_eq!(d.docker(&["ps", "-aq"]).ok(), "");
}

#[test]
fn security_options() {
    let d = Daemon::start();
    d.busybox();
    let out = sh(
        &d,
        &["--security-opt", "no-new-privileges"],
        "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
    );
    assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{out}");
    // The filter still applies (loaded after the capabilities are dropped).
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    let out = sh(
        &d,
        &["--security-opt", "no-new-privileges=false"],
        "grep NoNewPrivs /proc/self/status",
    );
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");
    // A profile of one's own: the docker CLI sends the file's contents.
    let profile = d.dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let r = run(&d, &["--security-opt", &opt], "mkdir /x");
    assert!(r.fails(1).contains("Operation not permitted"), "{r:?}");
    // What the default forbids, this profile allows.
    let out = sh(&d, &["--security-opt", &opt], "unshare -U true && echo ok");
    assert!(out.contains("ok"), "{out}");
    sh(&d, &[], "mkdir /x");
    // Accepted and ignored: there is no AppArmor or SELinux here.
    sh(
        &d,
        &[
            "--security-opt",
            "apparmor=unconfined",
            "--security-opt",
            "label=disable",
        ],
        "true",
    );
    // (Not JSON at all, the docker CLI itself refuses.)
    std::fs::write(
        d.dir.path().join("bad.json"),
        r#"{"defaultAction":"SCMP_ACT_MAYBE"}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", d.dir.path().join("bad.json").display());
    let e = run(&d, &["--security-opt", &opt], "true");
    assert!(
        e.fails(125).contains("Decoding seccomp profile failed"),
        "{e:?}"
    );
    let e = run(&d, &["--security-opt", "foo=bar"], "true");
    assert!(
        e.fails(125)
            .contains("invalid --security-opt 2: \"foo=bar\""),
        "{e:?}"
    );
    assert_eq!(d.docker(&["ps", "-aq"]).ok(), "");
}

#[test]
fn read_only_root_tmpfs_and_shm() {
    let d = Daemon::start();
    d.busybox();
    let out = sh(
        &d,
        &[
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/run:exec,size=1m",
        ],
        "touch /root-file; echo root=$?
         touch /tmp/a && echo tmp=$?
         echo x >> /etc/hosts; echo hosts=$?
         touch /dev/shm/a && echo shm=$?
         grep -E ' /(tmp|run) ' /proc/mounts",
    );
    assert!(
        out.contains("touch: /root-file: Read-only file system"),
        "{out}"
    );
    assert!(out.contains("root=1"), "{out}");
    assert!(out.contains("tmp=0"), "{out}");
    assert!(out.contains("hosts=1"), "{out}");
    assert!(out.contains("shm=0"), "{out}");
    // Docker's tmpfs defaults, overridden by the options given.
    assert!(
        out.contains("tmpfs /tmp tmpfs rw,nosuid,nodev,noexec,"),
        "{out}"
    );
    let run_line = out.lines().find(|l| l.contains(" /run ")).unwrap();
    assert!(
        !run_line.contains("noexec") && run_line.contains("size=1024k"),
        "{out}"
    );
    let shm = sh(&d, &["--shm-size", "8m"], "grep ' /dev/shm ' /proc/mounts");
    assert!(shm.contains("size=8192k"), "{shm}");
    let e = d.docker(&["run", "--rm", "--tmpfs", "/x:bogus", "busybox", "true"]);
    assert!(
        e.fails(125).contains("invalid tmpfs option \"bogus\""),
        "{e:?}"
    );
}

#[test]
fn ulimits() {
    let d = Daemon::start();
    d.busybox();
    let out = sh(&d, &["--ulimit", "nofile=100:200"], "ulimit -n; ulimit -Hn");
    assert_eq!(out, "100\n200\n");
    let out = sh(&d, &["--ulimit", "core=0"], "ulimit -c; ulimit -Hc");
    assert_eq!(out, "0\n0\n");
    // Above the daemon's own hard limit: clamped, with a warning.
    let hard: u64 = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).map(str::to_string))
        .unwrap()
        .parse()
        .unwrap_or(u64::MAX);
    if hard < 1 << 20 {
        let r = run(&d, &["--ulimit", "nofile=1024:1048576"], "ulimit -Hn");
        assert_eq!(r.ok(), format!("{hard}\n"));
        assert!(
            r.stderr.contains(
                "WARNING: Ulimit nofile hard limit 1048576 is above the daemon's hard limit"
            ),
            "{r:?}"
        );
    }
    // The API checks what the docker CLI checks before sending.
    let create = |body: &str| {
        d.request("POST", "/v1.45/containers/create", Some(body.as_bytes()))
            .unwrap()
    };
    let r = create(
        r#"{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":200,"Hard":100}]}}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "ulimit soft limit must be less than or equal to hard limit: 200 > 100"
    );
    let r = create(
        r#"{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"bogus","Soft":1,"Hard":1}]}}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "invalid ulimit type: bogus");
    assert_eq!(d.docker(&["ps", "-aq"]).ok(), "");
}

#[test]
fn sysctls() {
    let d = Daemon::start();
    d.busybox();
    let out = sh(
        &d,
        &[
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "kernel.shmmax=123456789",
        ],
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax",
    );
    assert_eq!(out, "1\n123456789\n");
    // Docker's defaults for a private network namespace.
    let out = sh(&d, &[], "cat /proc/sys/net/ipv4/ping_group_range");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "2147483647"]
    );
    // The docker CLI refuses non-namespaced ones itself; the daemon does too.
    let e = d.docker(&[
        "run",
        "--rm",
        "--sysctl",
        "kernel.printk=1",
        "busybox",
        "true",
    ]);
    assert!(
        e.fails(125)
            .contains("sysctl 'kernel.printk=1' is not allowed"),
        "{e:?}"
    );
    let r = d
        .request(
            "POST",
            "/v1.45/containers/create",
            Some(br#"{"Image":"busybox","HostConfig":{"Sysctls":{"kernel.printk":"1"}}}"#),
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "sysctl 'kernel.printk=1' is not allowed"
    );
    let e = d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "busybox",
        "true",
    ]);
    assert!(
        e.fails(125)
            .contains("sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"),
        "{e:?}"
    );
    assert_eq!(d.docker(&["ps", "-aq"]).ok(), "");
}

#[test]
fn host_namespaces() {
    let d = Daemon::start();
    d.busybox();
    let me = std::process::id();
    // --pid host: the host's processes, this test's among them.
    let out = sh(
        &d,
        &["--pid", "host"],
        &format!("echo $$; test -d /proc/{me} && echo seen"),
    );
    let mut lines = out.lines();
    assert_ne!(lines.next(), Some("1"), "{out}");
    assert_eq!(lines.next(), Some("seen"), "{out}");
    let out = sh(
        &d,
        &[],
        &format!("echo $$; test -d /proc/{me} || echo unseen"),
    );
    assert_eq!(out, "1\nunseen\n");
    // --ipc host / --uts host: the same namespaces as this process.
    let host = |ns: &str| {
        std::fs::read_link(format!("/proc/self/ns/{ns}"))
            .unwrap()
            .display()
            .to_string()
    };
    let script = "readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; hostname";
    let out = sh(&d, &["--ipc", "host", "--uts", "host"], script);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        out,
        format!("{}\n{}\n{}", host("ipc"), host("uts"), hostname)
    );
    let out = sh(&d, &[], script);
    assert!(
        !out.contains(&host("ipc")) && !out.contains(&host("uts")),
        "{out}"
    );
    // --ipc host shares the host's /dev/shm; --ipc none has none.
    let marker = format!("berth-sec-{me}");
    std::fs::write(format!("/dev/shm/{marker}"), "x").unwrap();
    let seen = run(&d, &["--ipc", "host"], &format!("cat /dev/shm/{marker}"));
    let _ = std::fs::remove_file(format!("/dev/shm/{marker}"));
    assert_eq!(seen.ok(), "x");
    let out = sh(
        &d,
        &["--ipc", "none"],
        "grep -c ' /dev/shm ' /proc/mounts || true",
    );
    assert_eq!(out, "0\n");
    let e = d.docker(&["run", "--rm", "--ipc", "container:nope", "busybox", "true"]);
    assert!(e.fails(125).contains("not supported yet"), "{e:?}");
    let e = d.docker(&["run", "--rm", "--ipc", "bogus", "busybox", "true"]);
    assert!(e.fails(125).contains("invalid IPC mode: bogus"), "{e:?}");
}

#[test]
fn devices() {
    let d = Daemon::start();
    d.busybox();
    let out = sh(
        &d,
        &["--device", "/dev/null:/dev/mynull"],
        "ls -l /dev/mynull; echo hi > /dev/mynull && echo written; wc -c < /dev/mynull",
    );
    assert!(out.starts_with("crw-rw-rw-"), "{out}");
    assert!(out.contains("1,   3 "), "{out}");
    assert!(out.contains("written\n0\n"), "{out}");
    // Read-only in the device cgroup: opening for reading works, for
    // writing it does not (a device outside Docker's default rules).
    let r = run(
        &d,
        &["--device", "/dev/loop-control:/dev/lc:r"],
        "true < /dev/lc && echo read; true > /dev/lc",
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout, "read\n");
    assert!(
        r.stderr
            .contains("can't create /dev/lc: Operation not permitted"),
        "{r:?}"
    );
    let e = d.docker(&["run", "--rm", "--device", "/dev/nope", "busybox", "true"]);
    assert_ne!(e.code, 0);
    assert!(
        e.stderr.contains(
            "error gathering device information while adding custom device \"/dev/nope\": no such file or directory"
        ),
        "{e:?}"
    );
}
