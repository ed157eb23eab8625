//! Our own CLI against a private daemon: the commands, flags, output and
//! exit codes of issue 2, as a Docker user expects them.

mod common;

use common::Daemon;

fn import_busybox(d: &Daemon) -> String {
    let tar = common::fixtures().join("busybox-rootfs.tar");
    let out = d.berth(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        tar.to_str().unwrap(),
        "busybox:latest",
    ]);
    let id = out.ok().trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    id
}

#[test]
fn import_from_stdin_with_changes() {
    let d = Daemon::start();
    let tar = std::fs::read(common::fixtures().join("busybox-rootfs.tar")).unwrap();
    let out = d.berth_stdin(
        &[
            "import",
            "-c",
            "ENV X=from-change",
            "-c",
            "CMD [\"sh\",\"-c\",\"echo $X\"]",
            "-m",
            "piped",
            "-",
            "piped:v1",
        ],
        Some(&tar),
    );
    assert!(out.ok().starts_with("sha256:"));
    assert_eq!(d.berth(&["run", "--rm", "piped:v1"]).ok(), "from-change\n");
    assert_eq!(
        d.berth(&["inspect", "-f", "{{.Comment}}", "piped:v1"]).ok(),
        "piped\n"
    );
    let e = d.berth_stdin(&["import", "-c", "RUN true", "-", "x"], Some(&tar));
    assert!(
        e.fails(1).contains("RUN is not a valid change command"),
        "{}",
        e.stderr
    );
}

#[test]
fn images_listing_flags() {
    let d = Daemon::start();
    let id = import_busybox(&d);
    let short = &id[7..19];
    d.berth(&["tag", "busybox", "localhost:5000/tools/bb:1.0"])
        .ok();
    let table = d.berth(&["images"]).ok().to_string();
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(
        table.contains("localhost:5000/tools/bb") && table.contains("1.0") && table.contains(short),
        "{table}"
    );
    // One row per tag, as docker prints them.
    assert_eq!(
        d.berth(&["images", "-q"]).ok(),
        format!("{short}\n{short}\n")
    );
    assert!(d.berth(&["images", "--no-trunc"]).ok().contains(&id));
    assert!(d
        .berth(&["images", "--digests"])
        .ok()
        .lines()
        .next()
        .unwrap()
        .contains("DIGEST"));
    let filtered = d
        .berth(&["images", "--filter", "reference=busy*"])
        .ok()
        .to_string();
    assert!(
        filtered.contains("busybox") && !filtered.contains("localhost:5000"),
        "{filtered}"
    );
    assert_eq!(
        d.berth(&["images", "-q", "--filter", "dangling=true"]).ok(),
        ""
    );
    assert!(d
        .berth(&["image", "ls", "busybox"])
        .ok()
        .contains("busybox"));
    // Untag vs delete.
    assert_eq!(
        d.berth(&["rmi", "localhost:5000/tools/bb:1.0"]).ok(),
        "Untagged: localhost:5000/tools/bb:1.0\n"
    );
    let e = d.berth(&["tag", "busybox", "Bad/Name"]);
    assert_ne!(e.code, 0);
    assert!(
        e.stderr.contains("invalid reference format"),
        "{}",
        e.stderr
    );
}

#[test]
fn history_and_inspect() {
    let d = Daemon::start();
    let id = import_busybox(&d);
    let hist = d.berth(&["history", "busybox"]).ok().to_string();
    assert!(
        hist.lines().next().unwrap().contains("CREATED BY"),
        "{hist}"
    );
    assert!(hist.contains(&id[7..19]), "{hist}");
    let v: serde_json::Value =
        serde_json::from_str(d.berth(&["image", "inspect", "busybox"]).ok()).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(v[0]["RepoTags"][0], "busybox:latest");
    assert_eq!(v[0]["Config"]["Cmd"][0], "sh");
    let e = d.berth(&["inspect", "nothing-here"]);
    assert_eq!(e.code, 1);
    assert_eq!(e.stdout.trim(), "[]");
    assert!(
        e.stderr.contains("No such object: nothing-here"),
        "{}",
        e.stderr
    );
}

#[test]
fn run_flags_and_exit_codes() {
    let d = Daemon::start();
    import_busybox(&d);
    assert_eq!(
        d.berth(&["run", "--rm", "busybox", "echo", "hello from berth"])
            .ok(),
        "hello from berth\n"
    );
    let r = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    let e = d.berth(&["run", "--rm", "busybox", "no-such-binary"]);
    assert!(
        e.fails(127).contains("executable file not found"),
        "{}",
        e.stderr
    );
    let e = d.berth(&["run", "--rm", "busybox", "/etc"]);
    assert_eq!(e.code, 126, "{}", e.stderr);
    let e = d.berth(&["run", "--rm", "no-such-image"]);
    assert_eq!(e.code, 125, "{}", e.stderr);
    assert!(
        e.stderr
            .contains("Unable to find image 'no-such-image:latest' locally"),
        "{}",
        e.stderr
    );
    let env_file = d.dir.path().join("env");
    std::fs::write(&env_file, "FILE_VAR=f\n").unwrap();
    let r = d.berth(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "--env-file",
        env_file.to_str().unwrap(),
        "-w",
        "/srv",
        "-u",
        "33",
        "--hostname",
        "h1",
        "-l",
        "k=v",
        "busybox",
        "sh",
        "-c",
        "echo $A $FILE_VAR $(pwd) $(id -u) $(hostname)",
    ]);
    assert_eq!(r.ok(), "1 f /srv 33 h1\n");
    assert_eq!(
        d.berth(&[
            "run",
            "--rm",
            "--entrypoint",
            "printf",
            "busybox",
            "%s-%s",
            "a",
            "b"
        ])
        .ok(),
        "a-b"
    );
    // Piped stdin reaches the container and EOF ends it.
    let r = d.berth_stdin(&["run", "-i", "--rm", "busybox", "cat"], Some(b"hi\n"));
    assert_eq!(r.ok(), "hi\n");
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "");
}

#[test]
fn lifecycle_ps_wait_rm_rename() {
    let d = Daemon::start();
    import_busybox(&d);
    let id = d
        .berth(&[
            "run", "-d", "--name", "svc", "-l", "role=db", "busybox", "sleep", "300",
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    d.berth(&["create", "--name", "idle", "busybox", "true"])
        .ok();
    let ps = d.berth(&["ps"]).ok().to_string();
    assert!(ps.contains("svc") && !ps.contains("idle"), "{ps}");
    let all = d
        .berth(&["ps", "-a", "--format", "{{.Names}}"])
        .ok()
        .to_string();
    assert_eq!(all, "idle\nsvc\n");
    assert_eq!(
        d.berth(&["ps", "-a", "-n", "1", "--format", "{{.Names}}"])
            .ok(),
        "idle\n"
    );
    assert_eq!(d.berth(&["ps", "-q", "--no-trunc"]).ok(), format!("{id}\n"));
    assert_eq!(
        d.berth(&["ps", "-aq", "--filter", "status=created"])
            .ok()
            .trim()
            .len(),
        12
    );
    assert_eq!(
        d.berth(&["ps", "-a", "--filter", "name=sv", "--format", "{{.Names}}"])
            .ok(),
        "svc\n"
    );
    assert_eq!(
        d.berth(&[
            "ps",
            "-a",
            "--filter",
            "label=role=db",
            "--format",
            "{{.Names}}"
        ])
        .ok(),
        "svc\n"
    );
    assert_eq!(
        d.berth(&[
            "ps",
            "-a",
            "--filter",
            &format!("id={}", &id[..6]),
            "--format",
            "{{.Names}}"
        ])
        .ok(),
        "svc\n"
    );
    assert_eq!(
        d.berth(&["ps", "-a", "--filter", "ancestor=busybox", "-q"])
            .ok()
            .lines()
            .count(),
        2
    );
    d.berth(&["rename", "svc", "svc2"]).ok();
    let e = d.berth(&["rename", "idle", "svc2"]);
    assert!(e.fails(1).contains("is already in use"), "{}", e.stderr);
    let e = d.berth(&["rm", "svc2"]);
    assert!(
        e.fails(1).contains("cannot remove a running container"),
        "{}",
        e.stderr
    );
    assert_eq!(d.berth(&["rm", "-f", "svc2"]).ok(), "svc2\n");
    assert_eq!(d.berth(&["start", "-a", "idle"]).code, 0);
    assert_eq!(d.berth(&["wait", "idle"]).ok(), "0\n");
    d.berth(&["run", "--name", "three", "busybox", "sh", "-c", "exit 3"])
        .fails(3);
    assert_eq!(d.berth(&["wait", "three"]).ok(), "3\n");
    assert_eq!(
        d.berth(&["inspect", "-f", "{{.State.ExitCode}}", "three"])
            .ok(),
        "3\n"
    );
    assert_eq!(
        d.berth(&["rm", "-v", "idle", "three"]).ok(),
        "idle\nthree\n"
    );
    let e = d.berth(&["rm", "ghost"]);
    assert!(
        e.fails(1).contains("No such container: ghost"),
        "{}",
        e.stderr
    );
}

#[test]
fn save_load_round_trip() {
    let d = Daemon::start();
    let id = import_busybox(&d);
    let big = common::fixtures().join("big-image.tar");
    let out = d
        .berth(&["load", "-i", big.to_str().unwrap()])
        .ok()
        .to_string();
    assert_eq!(out, "Loaded image: berth-fixture/big:latest\n");
    let both = d.dir.path().join("both.tar");
    d.berth(&[
        "save",
        "-o",
        both.to_str().unwrap(),
        "busybox",
        "berth-fixture/big",
    ])
    .ok();
    let big_id = d
        .berth(&["inspect", "-f", "{{.Id}}", "berth-fixture/big"])
        .ok()
        .trim()
        .to_string();
    d.berth(&["rmi", "busybox", "berth-fixture/big"]).ok();
    assert_eq!(d.berth(&["images", "-q"]).ok(), "");
    let loaded = d
        .berth_stdin(&["load"], Some(&std::fs::read(&both).unwrap()))
        .ok()
        .to_string();
    assert!(
        loaded.contains("Loaded image: busybox:latest")
            && loaded.contains("Loaded image: berth-fixture/big:latest"),
        "{loaded}"
    );
    assert_eq!(
        d.berth(&["inspect", "-f", "{{.Id}}", "busybox"])
            .ok()
            .trim(),
        id
    );
    assert_eq!(
        d.berth(&["inspect", "-f", "{{.Id}}", "berth-fixture/big"])
            .ok()
            .trim(),
        big_id
    );
    // The whiteout in the top layer hides the base layer's file.
    let r = d.berth(&[
        "run",
        "--rm",
        "berth-fixture/big",
        "sh",
        "-c",
        "test -e /etc/motd || echo gone; cat /data/small",
    ]);
    assert_eq!(r.ok(), "gone\nsmall\n");
    // The real docker CLI reads what berth saved.
    let one = d.dir.path().join("one.tar");
    d.docker(&["save", "-o", one.to_str().unwrap(), "busybox"])
        .ok();
    d.berth(&["rmi", "busybox"]).ok();
    assert_eq!(
        d.docker(&["load", "-i", one.to_str().unwrap()]).ok(),
        "Loaded image: busybox:latest\n"
    );
    let e = d.berth_stdin(&["load"], Some(b"definitely not a tarball"));
    assert_eq!(e.code, 1, "{e:?}");
}
