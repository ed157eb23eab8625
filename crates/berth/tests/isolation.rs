//! What a container is: its own namespaces, a copy-on-write root, Docker's
//! /proc, /sys, /dev and /etc files, and PID 1 being the command.

mod common;

use common::Daemon;

fn sh(d: &Daemon, script: &str) -> String {
    d.docker(&["run", "--rm", "busybox", "sh", "-c", script])
        .ok()
        .to_string()
}

#[test]
fn own_namespaces_and_pid1() {
    let d = Daemon::start();
    d.busybox();
    assert_eq!(sh(&d, "echo $$"), "1\n");
    // The shell is PID 1 and sees only its own processes.
    let ps = sh(&d, "ps -o pid,comm");
    let pids: Vec<u32> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(pids[0], 1, "{ps}");
    assert!(pids.iter().all(|p| *p < 10), "{ps}");
    for ns in ["pid", "mnt", "uts", "ipc", "net"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let inside = sh(&d, &format!("readlink /proc/self/ns/{ns}"));
        assert_ne!(
            inside.trim(),
            host.to_str().unwrap(),
            "{ns} namespace is shared with the host"
        );
    }
    // Its own interfaces: eth0 on the default bridge, or loopback only.
    assert_eq!(sh(&d, "ls /sys/class/net"), "eth0\nlo\n");
    let none = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(none.ok(), "lo\n");
    // Hostname is the short ID, also in /etc/hostname and /etc/hosts.
    let out = d.docker(&[
        "run",
        "--name",
        "hn",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hostname; grep -c $(hostname) /etc/hosts",
    ]);
    let id = d
        .docker(&["inspect", "-f", "{{.Id}}", "hn"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(out.ok(), format!("{0}\n{0}\n1\n", &id[..12]));
    let custom = d.docker(&["run", "--rm", "--hostname", "box1", "busybox", "hostname"]);
    assert_eq!(custom.ok(), "box1\n");
}

#[test]
fn docker_default_mounts_and_security() {
    let d = Daemon::start();
    d.busybox();
    let mounts = sh(&d, "cat /proc/mounts");
    for want in [
        " /proc proc ",
        " /dev tmpfs ",
        " /dev/pts devpts ",
        " /dev/shm tmpfs ",
        " /sys sysfs ro,",
        " /etc/hosts ",
        " /etc/resolv.conf ",
        " /etc/hostname ",
    ] {
        assert!(mounts.contains(want), "missing {want:?} in\n{mounts}");
    }
    assert!(
        mounts
            .lines()
            .next()
            .unwrap()
            .starts_with("overlay / overlay"),
        "{mounts}"
    );
    // Minimal /dev.
    let dev = sh(&d, "ls /dev | sort | tr '\\n' ' '");
    for want in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx",
    ] {
        assert!(
            dev.split(' ').any(|x| x == want),
            "/dev lacks {want}: {dev}"
        );
    }
    assert!(
        !dev.contains("sda") && !dev.contains("vda"),
        "host devices leaked: {dev}"
    );
    // Masked and read-only paths.
    assert_eq!(sh(&d, "cat /proc/kcore | wc -c"), "0\n");
    let ro = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo 1 > /proc/sys/kernel/ostype",
    ]);
    assert_ne!(ro.code, 0);
    // Docker's capability set: no SYS_ADMIN, so no mounting.
    let m = d.docker(&[
        "run", "--rm", "busybox", "mount", "-t", "tmpfs", "x", "/mnt",
    ]);
    assert_ne!(m.code, 0);
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "--privileged",
            "busybox",
            "sh",
            "-c",
            "mkdir -p /mnt && mount -t tmpfs x /mnt && echo ok"
        ])
        .ok(),
        "ok\n"
    );
}

#[test]
fn copy_on_write_root() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "echo changed > /etc/motd2; rm /bin/vi",
    ])
    .ok();
    // Neither the image nor another container sees the writes.
    assert_eq!(
        sh(&d, "ls /etc/motd2 2>&1; ls /bin/vi"),
        "ls: /etc/motd2: No such file or directory\n/bin/vi\n"
    );
    // The writer keeps its own changes across restarts.
    d.docker(&["start", "writer"]).ok();
    assert_eq!(d.docker(&["wait", "writer"]).ok(), "1\n"); // rm /bin/vi fails the second time
                                                           // The layer itself is untouched.
    let layers = d.data_root().join("layers");
    let found = std::fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .any(|e| e.path().join("bin/vi").exists());
    assert!(found, "the image layer lost /bin/vi");
}

#[test]
fn user_workdir_env_entrypoint() {
    let d = Daemon::start();
    d.busybox();
    let env_file = d.dir.path().join("env.list");
    std::fs::write(&env_file, "# comment\nFROM_FILE=1\n").unwrap();
    let r = d.docker(&[
        "run",
        "--rm",
        "-e",
        "A=b c",
        "--env-file",
        env_file.to_str().unwrap(),
        "-w",
        "/tmp/work",
        "-u",
        "33:33",
        "busybox",
        "sh",
        "-c",
        "echo $A $FROM_FILE; pwd; id -u; id -g; echo $HOME; echo $PATH",
    ]);
    assert_eq!(
        r.ok(),
        "b c 1\n/tmp/work\n33\n33\n/var/www\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    assert_eq!(
        d.docker(&["run", "--rm", "-u", "nobody", "busybox", "id", "-un"])
            .ok(),
        "nobody\n"
    );
    let e = d.docker(&["run", "--rm", "-u", "ghost", "busybox", "true"]);
    assert!(
        e.fails(125)
            .contains("unable to find user ghost: no matching entries in passwd file"),
        "{}",
        e.stderr
    );
    assert_eq!(
        d.docker(&["run", "--rm", "--entrypoint", "echo", "busybox", "x", "y"])
            .ok(),
        "x y\n"
    );
    let lbl = d.docker(&["create", "-l", "tier=web", "--name", "lbl", "busybox"]);
    lbl.ok();
    assert_eq!(
        d.docker(&["inspect", "-f", "{{index .Config.Labels \"tier\"}}", "lbl"])
            .ok(),
        "web\n"
    );
    assert_eq!(
        d.docker(&[
            "ps",
            "-a",
            "--filter",
            "label=tier=web",
            "--format",
            "{{.Names}}"
        ])
        .ok(),
        "lbl\n"
    );
}

#[test]
fn runc_runs_the_same_bundle() {
    if which("runc").is_none() {
        panic!("runc is not installed: scripts/deps.sh installs Debian's runc");
    }
    let d = Daemon::start();
    d.busybox();
    let r = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "busybox",
        "sh",
        "-c",
        "echo $$ $(hostname | wc -c); exit 4",
    ]);
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(r.stdout, "1 13\n");
    let e = d.docker(&["run", "--rm", "--runtime", "nosuch", "busybox", "true"]);
    assert!(
        e.fails(125).contains("Unknown runtime specified nosuch"),
        "{}",
        e.stderr
    );
}

#[test]
fn shim_hands_over_to_the_small_monitor() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&["run", "-d", "--name", "mon", "busybox", "sleep", "300"])
        .ok();
    let id = d
        .docker(&["inspect", "-f", "{{.Id}}", "mon"])
        .ok()
        .trim()
        .to_string();
    // The process watching the container is berth-shim, not the full binary.
    let out = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&out.stdout);
    assert!(
        ps.lines()
            .any(|l| l.contains("berth-shim ") && l.contains(&id)),
        "{ps}"
    );
    assert_eq!(d.docker(&["exec", "mon", "echo", "ok"]).ok(), "ok\n");
    d.docker(&["stop", "-t", "0", "mon"]).ok();
    // Its cgroup is gone once it exited.
    let leftovers = std::fs::read_dir("/sys/fs/cgroup/memory")
        .unwrap()
        .flatten()
        .any(|e| e.path().join(&id).exists());
    assert!(!leftovers, "the container's memory cgroup is still there");
    // Without the small binary (or when asked), the full one monitors.
    let d2 = Daemon::start_with_env(&[("BERTH_SHIM_INPROCESS", "1")]);
    d2.busybox();
    let r = d2.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo in-process; exit 3",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (3, "in-process\n"));
}

#[test]
fn runtimes_from_daemon_json() {
    let mut d = Daemon::start();
    d.busybox();
    std::fs::write(
        d.dir.path().join("daemon.json"),
        r#"{"runtimes": {"my-runc": {"path": "/usr/sbin/runc"}}, "default-runtime": "my-runc"}"#,
    )
    .unwrap();
    d.restart();
    // The configured default applies to containers that name none.
    d.docker(&["run", "--name", "viafile", "busybox", "true"])
        .ok();
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.HostConfig.Runtime}}", "viafile"])
            .ok(),
        "my-runc\n"
    );
    let info = d
        .docker(&["info", "--format", "{{.DefaultRuntime}}"])
        .ok()
        .to_string();
    assert_eq!(info, "my-runc\n");
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "--runtime",
            "berth",
            "busybox",
            "echo",
            "builtin"
        ])
        .ok(),
        "builtin\n"
    );
}

fn which(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(cmd))
        .find(|p| p.is_file())
}
