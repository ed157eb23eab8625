//! `cp` through `HEAD/GET/PUT /containers/{id}/archive`: both directions,
//! running and stopped containers, volumes, both CLIs; and a suite of
//! hostile symlinks and tarballs that must never reach outside the
//! container's root.

mod common;

use std::path::Path;

use common::Daemon;

/// A tar with one entry whose header is written by hand (tar::Builder
/// refuses hostile names).
fn raw_entry(name: &str, kind: u8, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn finish(mut parts: Vec<u8>) -> Vec<u8> {
    parts.extend_from_slice(&[0u8; 1024]);
    parts
}

fn stat_header(d: &Daemon, c: &str, path: &str) -> (u16, serde_json::Value) {
    use base64::Engine as _;
    let r = d
        .request(
            "HEAD",
            &format!("/v1.45/containers/{c}/archive?path={path}"),
            None,
        )
        .unwrap();
    let v = r
        .header("X-Docker-Container-Path-Stat")
        .and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    (r.status, v)
}

#[test]
fn cp_both_ways_stopped_and_running() {
    let d = Daemon::start();
    d.busybox();
    let work = d.dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("f.txt"), "hello\n").unwrap();
    std::fs::create_dir_all(work.join("tree/sub")).unwrap();
    std::fs::write(work.join("tree/sub/deep.txt"), "deep").unwrap();

    d.berth(&[
        "create", "--name", "st", "-v", "vol:/vol", "busybox", "true",
    ])
    .ok();
    // Into a stopped container: a file, a tree, a volume path.
    let f = work.join("f.txt").display().to_string();
    d.berth(&["cp", &f, "st:/tmp/"]).ok();
    d.berth(&["cp", &f, "st:/tmp/renamed.txt"]).ok();
    let t = work.join("tree").display().to_string();
    d.berth(&["cp", &t, "st:/opt"]).ok();
    d.docker(&["cp", &f, "st:/vol/"]).ok();

    // HEAD stat.
    let (status, st) = stat_header(&d, "st", "/tmp/f.txt");
    assert_eq!(status, 200);
    assert_eq!(st["name"], "f.txt");
    assert_eq!(st["size"], 6);
    assert_eq!(st["mode"], 0o644);
    let (_, st) = stat_header(&d, "st", "/tmp");
    assert_eq!(st["mode"].as_u64().unwrap() & (1 << 31), 1 << 31);
    let (status, _) = stat_header(&d, "st", "/nonexist");
    assert_eq!(status, 404);

    // Out of the stopped container.
    let out = d.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let o = out.display().to_string();
    d.berth(&["cp", "st:/tmp/renamed.txt", &o]).ok();
    assert_eq!(
        std::fs::read_to_string(out.join("renamed.txt")).unwrap(),
        "hello\n"
    );
    d.docker(&["cp", "st:/opt", &format!("{o}/opt-copy")]).ok();
    assert_eq!(
        std::fs::read_to_string(out.join("opt-copy/sub/deep.txt")).unwrap(),
        "deep"
    );
    d.berth(&["cp", "st:/vol/f.txt", &format!("{o}/from-vol.txt")])
        .ok();
    assert_eq!(
        std::fs::read_to_string(out.join("from-vol.txt")).unwrap(),
        "hello\n"
    );
    // The volume really got it.
    let r = d
        .berth(&["run", "--rm", "-v", "vol:/v", "busybox", "cat", "/v/f.txt"])
        .ok()
        .to_string();
    assert_eq!(r, "hello\n");

    // Errors.
    let r = d.berth(&["cp", "st:/nonexist", &o]);
    assert!(
        r.fails(1)
            .contains("Could not find the file /nonexist in container st"),
        "{}",
        r.stderr
    );
    let r = d.docker(&["cp", "st:/nonexist", &o]);
    assert!(
        r.stderr
            .contains("Could not find the file /nonexist in container st"),
        "{}",
        r.stderr
    );
    let r = d.berth(&["cp", &f, "st:/no/such/dir/x"]);
    assert_ne!(r.code, 0);
    let r = d.berth(&["cp", "nosuch:/x", &o]);
    assert!(
        r.stderr.contains("No such container: nosuch"),
        "{}",
        r.stderr
    );

    // Running container: both ways.
    d.berth(&["run", "-d", "--name", "rn", "busybox", "sleep", "30"])
        .ok();
    d.berth(&["cp", &f, "rn:/tmp/"]).ok();
    let r = d
        .berth(&["exec", "rn", "cat", "/tmp/f.txt"])
        .ok()
        .to_string();
    assert_eq!(r, "hello\n");
    d.berth(&["exec", "rn", "sh", "-c", "echo made > /made.txt"])
        .ok();
    d.docker(&["cp", "rn:/made.txt", &format!("{o}/made.txt")])
        .ok();
    assert_eq!(
        std::fs::read_to_string(out.join("made.txt")).unwrap(),
        "made\n"
    );

    // `-` streams a tar both ways.
    let tar = d.berth(&["cp", "rn:/made.txt", "-"]);
    assert_eq!(tar.code, 0);
    let mut ar = tar::Archive::new(tar.stdout.as_bytes());
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["made.txt"]);
    let input = finish(raw_entry("streamed.txt", b'0', "", b"via stdin"));
    let r = d.berth_stdin(&["cp", "-", "rn:/tmp"], Some(&input));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = d
        .berth(&["exec", "rn", "cat", "/tmp/streamed.txt"])
        .ok()
        .to_string();
    assert_eq!(r, "via stdin");
    d.berth(&["rm", "-f", "rn"]).ok();
}

#[test]
fn cp_follow_link_and_dir_contents() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&[
        "run",
        "--name",
        "lk",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /d/in && echo a > /d/in/a && ln -s /d/in/a /link",
    ])
    .ok();
    let out = d.dir.path().join("o");
    std::fs::create_dir(&out).unwrap();
    let o = out.display().to_string();
    // Without -L the link itself; with -L its target's content.
    d.berth(&["cp", "lk:/link", &format!("{o}/l1")]).ok();
    assert!(std::fs::symlink_metadata(out.join("l1"))
        .unwrap()
        .file_type()
        .is_symlink());
    d.berth(&["cp", "-L", "lk:/link", &format!("{o}/l2")]).ok();
    assert_eq!(std::fs::read_to_string(out.join("l2")).unwrap(), "a\n");
    // dir/. copies the content.
    std::fs::create_dir(out.join("c")).unwrap();
    d.berth(&["cp", "lk:/d/.", &format!("{o}/c")]).ok();
    assert_eq!(std::fs::read_to_string(out.join("c/in/a")).unwrap(), "a\n");
}

/// Host files a hostile container tries to reach.
fn bait(d: &Daemon) -> std::path::PathBuf {
    let p = d.dir.path().join("host-secret");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("secret"), "HOST SECRET").unwrap();
    p
}

#[test]
fn hostile_symlinks_never_escape() {
    let d = Daemon::start();
    d.busybox();
    let host = bait(&d);
    let h = host.display().to_string();
    let ups = "../../../../../../../../..";
    let script = format!(
        "ln -s / /abs && ln -s {ups}{h} /dots && ln -s {h} /hostdir && \
         ln -s /proc/self/root{h} /procroot && ln -s /proc/1/root{h} /pid1root && \
         mkdir -p /w && ln -s {ups} /w/up && ln -s loop2 /loop1 && ln -s loop1 /loop2"
    );
    d.berth(&["run", "--name", "evil", "busybox", "sh", "-c", &script])
        .ok();
    let running = format!("{script} && sleep 30");
    d.berth(&[
        "run", "-d", "--name", "evilrun", "busybox", "sh", "-c", &running,
    ])
    .ok();
    let out = d.dir.path().join("loot");
    std::fs::create_dir(&out).unwrap();
    let o = out.display().to_string();

    let check = |d: &Daemon, c: &str| {
        for p in [
            "/dots/secret".to_string(),
            "/hostdir/secret".to_string(),
            "/procroot/secret".to_string(),
            "/pid1root/secret".to_string(),
            format!("/w/up{h}/secret"),
            format!("/abs{h}/secret"),
        ] {
            let r = d.berth(&["cp", &format!("{c}:{p}"), &format!("{o}/x")]);
            assert_ne!(r.code, 0, "cp of {p} succeeded");
            assert!(!out.join("x").exists(), "{p} leaked a host file");
            let r = d.berth(&["cp", &format!("{c}:{p}"), "-"]);
            assert!(!r.stdout.contains("HOST SECRET"), "{p} leaked");
        }
        // Writing through the links lands inside the container, or nowhere.
        let f = d.dir.path().join("payload");
        std::fs::write(&f, "PWNED").unwrap();
        let fp = f.display().to_string();
        for dst in ["/hostdir/", "/dots/", "/procroot/", "/w/up/tmp/"] {
            let _ = d.berth(&["cp", &fp, &format!("{c}:{dst}")]);
        }
        assert!(!host.join("payload").exists(), "wrote to the host dir");
        assert!(
            !Path::new("/tmp/payload").exists(),
            "wrote to the host /tmp"
        );
        let r = d.berth(&["cp", &format!("{c}:/loop1"), "-"]);
        assert_eq!(
            r.code, 0,
            "a link loop as the last component is the link itself: {}",
            r.stderr
        );
        let r = d.berth(&["cp", &format!("{c}:/loop1/"), &format!("{o}/y")]);
        assert_ne!(r.code, 0);
    };
    // Stopped, then running (walked through /proc/<pid>/root).
    check(&d, "evil");
    check(&d, "evilrun");
}

#[test]
fn hostile_tarballs_are_refused() {
    let d = Daemon::start();
    d.busybox();
    let host = bait(&d);
    d.berth(&["create", "--name", "tgt", "busybox", "true"])
        .ok();
    d.berth(&[
        "run",
        "--name",
        "tgt2",
        "busybox",
        "sh",
        "-c",
        &format!("ln -s {} /lnk && mkdir /dd", host.display()),
    ])
    .ok();
    let put = |c: &str, path: &str, body: &[u8]| {
        d.request(
            "PUT",
            &format!("/v1.45/containers/{c}/archive?path={path}"),
            Some(body),
        )
        .unwrap()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            finish(raw_entry(
                "../../../../../../../../tmp/escape-berth",
                b'0',
                "",
                b"x",
            )),
        ),
        (
            "absolute",
            finish(raw_entry("/tmp/escape-berth", b'0', "", b"x")),
        ),
        (
            "through a symlink",
            finish(
                [
                    raw_entry("l", b'2', "/", b""),
                    raw_entry("l/tmp/escape-berth", b'0', "", b"x"),
                ]
                .concat(),
            ),
        ),
        (
            "hardlink out",
            finish(raw_entry("h", b'1', "../../../../../../etc/passwd", b"")),
        ),
    ];
    for (what, body) in &cases {
        let r = put("tgt", "/tmp", body);
        assert_eq!(r.status, 400, "{what}: {}", r.body_string());
        assert!(!Path::new("/tmp/escape-berth").exists(), "{what} escaped");
    }
    // An existing link in the container as the target of a PUT: the link
    // is resolved inside the root (so the host dir is not found).
    let ok = finish(raw_entry("dropped", b'0', "", b"x"));
    let r = put("tgt2", "/lnk", &ok);
    assert_eq!(r.status, 404, "{}", r.body_string());
    assert!(!host.join("dropped").exists());
    // A file where a directory is needed.
    let r = put("tgt2", "/bin/sh", &ok);
    assert_eq!(r.status, 400, "{}", r.body_string());
    // The good tar still works.
    let r = put("tgt2", "/dd", &ok);
    assert_eq!(r.status, 200, "{}", r.body_string());
    // Read-only rootfs.
    d.berth(&["create", "--name", "ro", "--read-only", "busybox", "true"])
        .ok();
    let r = put("ro", "/tmp", &ok);
    assert_eq!(r.status, 403, "{}", r.body_string());
}
