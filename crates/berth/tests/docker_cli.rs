//! The real docker CLI (28.x) pointed at berth: the everyday commands give
//! the same results as against Docker.

mod common;

use common::Daemon;

#[test]
fn run_echo_and_exit_codes() {
    let d = Daemon::start();
    d.busybox();
    let r = d.docker(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(r.ok(), "hi\n");
    let r = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(r.code, 3);
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    let e = d.docker(&["run", "--rm", "busybox", "nosuchcmd"]);
    assert!(
        e.fails(127).contains("executable file not found"),
        "{}",
        e.stderr
    );
    let e = d.docker(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert!(e.fails(126).contains("permission denied"), "{}", e.stderr);
    // --rm containers are gone afterwards.
    assert_eq!(d.docker(&["ps", "-aq"]).ok(), "");
}

#[test]
fn detached_ps_inspect_stop_rm() {
    let d = Daemon::start();
    d.busybox();
    let id = d
        .docker(&["run", "-d", "--name", "web", "busybox", "sleep", "300"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let ps = d.docker(&["ps"]).ok().to_string();
    assert!(
        ps.contains("web") && ps.contains(&id[..12]) && ps.contains("Up "),
        "{ps}"
    );
    let state = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.Name}} {{.Config.Image}}",
        "web",
    ]);
    assert_eq!(state.ok(), "running /web busybox\n");
    let conflict = d.docker(&["run", "--name", "web", "busybox", "true"]);
    assert!(
        conflict
            .fails(125)
            .contains("is already in use by container"),
        "{}",
        conflict.stderr
    );
    let rm = d.docker(&["rm", "web"]);
    assert!(
        rm.fails(1)
            .contains("You cannot remove a running container"),
        "{}",
        rm.stderr
    );
    d.docker(&["stop", "-t", "1", "web"]).ok();
    let state = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    // PID 1 without a TERM handler ignores SIGTERM: killed after -t, as with Docker.
    assert_eq!(state.ok(), "exited 137\n");
    assert!(d.docker(&["ps", "-a"]).ok().contains("Exited (137)"));
    assert_eq!(d.docker(&["rm", "web"]).ok(), "web\n");
    let gone = d.docker(&["rm", "web"]);
    assert!(
        gone.fails(1).contains("No such container: web"),
        "{}",
        gone.stderr
    );
}

#[test]
fn stop_with_a_term_handler_is_quick() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "trapper",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; while true; do sleep 0.1; done",
    ])
    .ok();
    let t0 = std::time::Instant::now();
    d.docker(&["stop", "trapper"]).ok();
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "stop took {:?}",
        t0.elapsed()
    );
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.ExitCode}}", "trapper"])
            .ok(),
        "7\n"
    );
    assert_eq!(d.docker(&["wait", "trapper"]).ok(), "7\n");
}

#[test]
fn images_tag_rmi() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&["tag", "busybox", "example.com:5000/team/app:v1"])
        .ok();
    let images = d.docker(&["images"]).ok().to_string();
    assert!(
        images.contains("busybox") && images.contains("example.com:5000/team/app"),
        "{images}"
    );
    assert!(
        images
            .lines()
            .any(|l| l.contains("example.com:5000/team/app") && l.contains("v1")),
        "{images}"
    );
    assert_eq!(
        d.docker(&["rmi", "example.com:5000/team/app:v1"]).ok(),
        "Untagged: example.com:5000/team/app:v1\n"
    );
    let e = d.docker(&["rmi", "nosuch"]);
    assert!(
        e.fails(1).contains("No such image: nosuch:latest"),
        "{}",
        e.stderr
    );
    // An image a container uses is refused without -f.
    d.docker(&["create", "--name", "c1", "busybox"]).ok();
    let e = d.docker(&["rmi", "busybox"]);
    assert!(
        e.fails(1).contains("container") && e.stderr.contains("is using its referenced image"),
        "{}",
        e.stderr
    );
    d.docker(&["rm", "c1"]).ok();
    let out = d.docker(&["rmi", "busybox"]).ok().to_string();
    assert!(
        out.starts_with("Untagged: busybox:latest\nDeleted: sha256:"),
        "{out}"
    );
    assert_eq!(d.docker(&["images", "-q"]).ok(), "");
}

#[test]
fn version_and_info() {
    let d = Daemon::start();
    let v = d.docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(v.ok(), "1.45\n");
    let info = d.docker(&[
        "info",
        "--format",
        "{{.Driver}} {{.CgroupDriver}} {{.DockerRootDir}}",
    ]);
    assert_eq!(
        info.ok().trim(),
        format!("overlay2 cgroupfs {}", d.data_root().display())
    );
}

#[test]
fn docker_20_10_client() {
    let d = Daemon::start();
    d.busybox();
    assert_eq!(
        d.docker20(&[
            "version",
            "--format",
            "{{.Client.APIVersion}} {{.Server.APIVersion}}"
        ])
        .ok(),
        "1.41 1.45\n"
    );
    assert_eq!(
        d.docker20(&["run", "--rm", "busybox", "echo", "hi"]).ok(),
        "hi\n"
    );
    let r = d.docker20(&["run", "--rm", "busybox", "sh", "-c", "echo e >&2; exit 5"]);
    assert_eq!((r.code, r.stderr.as_str()), (5, "e\n"));
    let e = d.docker20(&["run", "--rm", "busybox", "nosuch"]);
    assert_eq!(e.code, 127, "{}", e.stderr);
    d.docker20(&["run", "-d", "--name", "old", "busybox", "sleep", "30"])
        .ok();
    assert!(d.docker20(&["ps"]).ok().contains("old"));
    assert_eq!(
        d.docker20(&["inspect", "-f", "{{.State.Running}}", "old"])
            .ok(),
        "true\n"
    );
    assert_eq!(d.docker20(&["rm", "-f", "old"]).ok(), "old\n");
    d.docker20(&["tag", "busybox", "bb:old"]).ok();
    assert!(d.docker20(&["images"]).ok().contains("bb"));
    let tar = d.dir.path().join("old.tar");
    d.docker20(&["save", "-o", tar.to_str().unwrap(), "bb:old"])
        .ok();
    assert_eq!(d.docker20(&["rmi", "bb:old"]).ok(), "Untagged: bb:old\n");
    assert_eq!(
        d.docker20(&["load", "-i", tar.to_str().unwrap()]).ok(),
        "Loaded image: bb:old\n"
    );
}

#[test]
fn exec_into_running_container() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "box",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    let r = d.docker(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 4"]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (4, "out\n", "err\n")
    );
    let r = d.docker(&[
        "exec",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "33",
        "box",
        "sh",
        "-c",
        "echo $FOO $FROM_RUN $(pwd) $(id -u)",
    ]);
    assert_eq!(r.ok(), "bar 1 /tmp 33\n");
    assert_eq!(
        d.docker_stdin(&["exec", "-i", "box", "cat"], Some(b"piped\n"))
            .ok(),
        "piped\n"
    );
    let e = d.docker(&["exec", "box", "no-such-cmd"]);
    assert_eq!(e.code, 127, "{e:?}");
    assert!(e.stdout.contains("executable file not found"), "{e:?}");
    d.docker(&["exec", "-d", "box", "sh", "-c", "touch /tmp/from-detached"])
        .ok();
    std::thread::sleep(std::time::Duration::from_millis(500));
    d.docker(&["exec", "box", "test", "-e", "/tmp/from-detached"])
        .ok();
    // The exec shares the container's namespaces: same hostname, sees PID 1.
    let host = d.docker(&["exec", "box", "hostname"]).ok().to_string();
    assert_eq!(host.trim().len(), 12);
    assert!(d.docker(&["exec", "box", "ps"]).ok().contains("sleep 300"));
    d.docker(&["stop", "-t", "0", "box"]).ok();
    let e = d.docker(&["exec", "box", "true"]);
    assert_ne!(e.code, 0);
    assert!(e.stderr.contains("is not running"), "{e:?}");
}
