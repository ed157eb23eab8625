//! Volumes and bind mounts through our CLI, the real docker CLI and the raw
//! API: the `/volumes` endpoints, `-v`/`--mount`/`--volumes-from`, copy-up,
//! `rm -v`, in-use refusal, and Docker's errors for bad specs.

mod common;

use common::Daemon;
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn volume_api_shapes_and_errors() {
    let d = Daemon::start();
    let r = d
        .request(
            "POST",
            "/v1.45/volumes/create",
            Some(br#"{"Name":"data1","Labels":{"team":"a"}}"#),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body_string());
    let v = r.json();
    assert_eq!(v["Name"], "data1");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["team"], "a");
    assert!(v["Options"].is_null());
    let mp = v["Mountpoint"].as_str().unwrap();
    assert!(mp.ends_with("/volumes/data1/_data"), "{mp}");
    assert!(std::path::Path::new(mp).is_dir());
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'));

    // Create is idempotent.
    let again = d
        .request(
            "POST",
            "/v1.45/volumes/create",
            Some(br#"{"Name":"data1"}"#),
        )
        .unwrap();
    assert_eq!(again.status, 201);

    let r = d.request("GET", "/v1.45/volumes", None).unwrap();
    let list = r.json();
    assert_eq!(list["Volumes"].as_array().unwrap().len(), 1);
    assert!(list["Warnings"].is_null());

    let r = d.request("GET", "/v1.45/volumes/nope", None).unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "get nope: no such volume");

    let r = d
        .request("POST", "/v1.45/volumes/create", Some(br#"{"Name":"a/b"}"#))
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body_string());

    let r = d
        .request(
            "POST",
            "/v1.45/volumes/create",
            Some(br#"{"Name":"x1","DriverOpts":{"bogus":"1"}}"#),
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body_string());

    // Filters.
    d.request(
        "POST",
        "/v1.45/volumes/create",
        Some(br#"{"Name":"other"}"#),
    )
    .unwrap();
    let q = |f: &str| {
        let r = d
            .request("GET", &format!("/v1.45/volumes?filters={f}"), None)
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body_string());
        let mut names: Vec<String> = r.json()["Volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["Name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(q("%7B%22label%22%3A%5B%22team%3Da%22%5D%7D"), ["data1"]);
    assert_eq!(q("%7B%22name%22%3A%5B%22oth%22%5D%7D"), ["other"]);
    assert_eq!(
        q("%7B%22dangling%22%3A%5B%22true%22%5D%7D"),
        ["data1", "other"]
    );
    assert_eq!(
        q("%7B%22driver%22%3A%5B%22local%22%5D%7D"),
        ["data1", "other"]
    );

    let r = d.request("DELETE", "/v1.45/volumes/other", None).unwrap();
    assert_eq!(r.status, 204);
    let r = d.request("DELETE", "/v1.45/volumes/other", None).unwrap();
    assert_eq!(r.status, 404);
    let r = d
        .request("DELETE", "/v1.45/volumes/other?force=1", None)
        .unwrap();
    assert_eq!(r.status, 204);
}

#[test]
fn named_volume_persists_and_is_in_use() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&["volume", "create", "--label", "k=v", "keep"])
        .ok();
    d.berth(&[
        "run",
        "--name",
        "wr",
        "-v",
        "keep:/data",
        "busybox",
        "sh",
        "-c",
        "echo hello > /data/f",
    ])
    .ok();
    // The data outlives the container.
    let out = d
        .berth(&["run", "--rm", "-v", "keep:/d:ro", "busybox", "cat", "/d/f"])
        .ok()
        .to_string();
    assert_eq!(out.trim(), "hello");
    // Read-only is read-only.
    let r = d.berth(&[
        "run",
        "--rm",
        "-v",
        "keep:/d:ro",
        "busybox",
        "touch",
        "/d/x",
    ]);
    assert_ne!(r.code, 0);

    // In use by the stopped container "w".
    let id = d
        .berth(&["inspect", "-f", "{{.Id}}", "wr"])
        .ok()
        .trim()
        .to_string();
    let r = d.berth(&["volume", "rm", "keep"]);
    let err = r.fails(1);
    assert!(
        err.contains(&format!("remove keep: volume is in use - [{id}]")),
        "{err}"
    );
    let r = d.docker(&["volume", "rm", "keep"]);
    assert!(r.stderr.contains("volume is in use"), "{}", r.stderr);

    // Inspect shows the mount.
    let mounts = json(d.berth(&["inspect", "-f", "{{json .Mounts}}", "wr"]).ok());
    assert_eq!(mounts[0]["Type"], "volume");
    assert_eq!(mounts[0]["Name"], "keep");
    assert_eq!(mounts[0]["Destination"], "/data");
    assert_eq!(mounts[0]["Driver"], "local");
    assert_eq!(mounts[0]["RW"], true);

    // ls / inspect through both CLIs.
    let ls = d.berth(&["volume", "ls"]).ok().to_string();
    assert!(ls.starts_with("DRIVER    VOLUME NAME\n"), "{ls}");
    assert!(ls.contains("local     keep"), "{ls}");
    let dls = d.docker(&["volume", "ls", "-q"]).ok().to_string();
    assert_eq!(dls.trim(), "keep");
    let insp = d
        .docker(&["volume", "inspect", "-f", "{{.Labels.k}}", "keep"])
        .ok()
        .to_string();
    assert_eq!(insp.trim(), "v");

    d.berth(&["rm", "wr"]).ok();
    assert_eq!(d.berth(&["volume", "rm", "keep"]).ok().trim(), "keep");
    let r = d.berth(&["volume", "rm", "keep"]);
    assert!(r.fails(1).contains("get keep: no such volume"));
}

#[test]
fn anonymous_volumes_copy_up_and_rm_v() {
    let d = Daemon::start();
    d.busybox();
    // Copy-up: a new volume at /etc gets the image's /etc.
    let out = d
        .berth(&[
            "run",
            "--name",
            "an",
            "-v",
            "/etc",
            "busybox",
            "cat",
            "/etc/passwd",
        ])
        .ok()
        .to_string();
    assert!(out.contains("root:"), "{out}");
    let mounts = json(d.berth(&["inspect", "-f", "{{json .Mounts}}", "an"]).ok());
    let name = mounts[0]["Name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), 64);
    let src = mounts[0]["Source"].as_str().unwrap().to_string();
    assert!(std::path::Path::new(&src).join("passwd").exists());

    // Named volume via --mount with volume-nocopy stays empty.
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=nc,dst=/etc,volume-nocopy",
            "busybox",
            "ls",
            "/etc",
        ])
        .ok()
        .to_string();
    assert_eq!(out.trim(), "");

    // rm -v removes the anonymous volume; named ones stay.
    d.berth(&["rm", "-v", "an"]).ok();
    let ls = d.berth(&["volume", "ls", "-q"]).ok().to_string();
    assert!(!ls.contains(&name), "{ls}");
    assert!(ls.contains("nc"), "{ls}");
    assert!(!std::path::Path::new(&src).exists());

    // --rm takes anonymous volumes along too.
    d.berth(&["run", "--rm", "-v", "/anon", "busybox", "true"])
        .ok();
    let ls = d.berth(&["volume", "ls", "-q"]).ok().to_string();
    assert_eq!(ls.trim(), "nc");
}

#[test]
fn volumes_from_and_tmpfs_volume() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&[
        "create",
        "--name",
        "src",
        "-v",
        "shared:/shared",
        "busybox",
        "true",
    ])
    .ok();
    d.berth(&[
        "run",
        "--rm",
        "--volumes-from",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo x > /shared/y",
    ])
    .ok();
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--volumes-from",
            "src:ro",
            "busybox",
            "cat",
            "/shared/y",
        ])
        .ok()
        .to_string();
    assert_eq!(out.trim(), "x");
    let r = d.berth(&["create", "--volumes-from", "nosuch", "busybox", "true"]);
    assert_ne!(r.code, 0);

    // A tmpfs volume (local driver options) mounted at first use.
    d.berth(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "tv",
    ])
    .ok();
    let out = d
        .berth(&[
            "run",
            "--rm",
            "-v",
            "tv:/t",
            "busybox",
            "sh",
            "-c",
            "grep ' /t ' /proc/mounts",
        ])
        .ok()
        .to_string();
    assert!(out.contains("tmpfs"), "{out}");
    let insp = json(d.berth(&["volume", "inspect", "tv"]).ok());
    assert_eq!(insp[0]["Options"]["type"], "tmpfs");
}

#[test]
fn bind_mounts_and_bad_specs() {
    let d = Daemon::start();
    d.busybox();
    let host = d.dir.path().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from host").unwrap();
    let spec = format!("{}:/h:ro,z", host.display());
    let out = d
        .berth(&["run", "--rm", "-v", &spec, "busybox", "cat", "/h/in.txt"])
        .ok()
        .to_string();
    assert_eq!(out, "from host");
    let r = d.berth(&["run", "--rm", "-v", &spec, "busybox", "touch", "/h/x"]);
    assert_ne!(r.code, 0);

    // -v creates a missing source; --mount refuses it.
    let missing = d.dir.path().join("made-by-v");
    let spec = format!("{}:/m", missing.display());
    d.berth(&["run", "--rm", "-v", &spec, "busybox", "true"])
        .ok();
    assert!(missing.is_dir());
    let gone = d.dir.path().join("not-there");
    let m = format!("type=bind,src={},dst=/x", gone.display());
    let r = d.berth(&["run", "--rm", "--mount", &m, "busybox", "true"]);
    let err = r.fails(125);
    assert!(
        err.contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            gone.display()
        )),
        "{err}"
    );
    let r = d.docker(&["run", "--rm", "--mount", &m, "busybox", "true"]);
    assert!(
        r.stderr.contains("bind source path does not exist"),
        "{}",
        r.stderr
    );

    // Propagation and the bind's inspect view.
    let m = format!(
        "type=bind,src={},dst=/p,bind-propagation=rshared",
        host.display()
    );
    d.berth(&["create", "--name", "pr", "--mount", &m, "busybox", "true"])
        .ok();
    let mounts = json(d.berth(&["inspect", "-f", "{{json .Mounts}}", "pr"]).ok());
    assert_eq!(mounts[0]["Type"], "bind");
    assert_eq!(mounts[0]["Propagation"], "rshared");
    d.berth(&["start", "-a", "pr"]).ok();

    // tmpfs via --mount.
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,dst=/tt,tmpfs-size=2m,tmpfs-mode=1770",
            "busybox",
            "sh",
            "-c",
            "grep ' /tt ' /proc/mounts",
        ])
        .ok()
        .to_string();
    assert!(out.contains("size=2048k"), "{out}");
    assert!(out.contains("mode=1770"), "{out}");

    // Bad specs: Docker's errors, nothing made.
    let before = d.berth(&["volume", "ls", "-q"]).ok().to_string();
    let r = d.berth(&["create", "-v", "data:rel", "busybox"]);
    assert!(
        r.stderr
            .contains("invalid mount path: 'rel' mount path must be absolute"),
        "{}",
        r.stderr
    );
    let r = d.berth(&["create", "-v", "/a:/b:bogus", "busybox"]);
    assert!(r.stderr.contains("invalid mode: bogus"), "{}", r.stderr);
    let r = d.berth(&["create", "-v", "v1:/d", "-v", "v2:/d", "busybox"]);
    assert!(
        r.stderr.contains("Duplicate mount point: /d"),
        "{}",
        r.stderr
    );
    let after = d.berth(&["volume", "ls", "-q"]).ok().to_string();
    assert_eq!(before, after, "a failed create left volumes behind");
}

#[test]
fn image_volume_is_anonymous_and_prune() {
    let d = Daemon::start();
    d.busybox();
    // An image with a VOLUME: import with a change.
    let tar = std::fs::read(common::fixtures().join("busybox-rootfs.tar")).unwrap();
    let r = d
        .request(
            "POST",
            "/v1.41/images/create?fromSrc=-&repo=withvol&tag=latest&changes=VOLUME%20%2Fvar%2Flib%2Fx&changes=CMD%20%5B%22sh%22%5D",
            Some(&tar),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body_string());
    d.berth(&["create", "--name", "iv", "withvol"]).ok();
    let mounts = json(d.berth(&["inspect", "-f", "{{json .Mounts}}", "iv"]).ok());
    assert_eq!(mounts[0]["Destination"], "/var/lib/x");
    let anon = mounts[0]["Name"].as_str().unwrap().to_string();

    d.berth(&["volume", "create", "named1"]).ok();
    // In use: prune keeps it; named: kept without --all.
    let out = d.berth(&["volume", "prune", "-f"]).ok().to_string();
    assert!(out.contains("Total reclaimed space"), "{out}");
    let ls = d.berth(&["volume", "ls", "-q"]).ok().to_string();
    assert!(ls.contains(&anon) && ls.contains("named1"), "{ls}");
    d.berth(&["rm", "iv"]).ok();
    let out = d.docker(&["volume", "prune", "-f"]).ok().to_string();
    assert!(out.contains(&anon), "{out}");
    let ls = d.berth(&["volume", "ls", "-q"]).ok().to_string();
    assert_eq!(ls.trim(), "named1");
    d.berth(&["volume", "prune", "-f", "-a"]).ok();
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().trim(), "");
}

#[test]
fn docker_cli_volume_flags() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&["volume", "create", "dv"]).ok();
    d.docker(&[
        "run",
        "--name",
        "dc",
        "--mount",
        "source=dv,target=/m",
        "busybox",
        "sh",
        "-c",
        "echo hi > /m/f",
    ])
    .ok();
    let out = d
        .docker(&["run", "--rm", "-v", "dv:/m:ro", "busybox", "cat", "/m/f"])
        .ok()
        .to_string();
    assert_eq!(out.trim(), "hi");
    let insp = d
        .docker(&["inspect", "-f", "{{(index .Mounts 0).Name}}", "dc"])
        .ok()
        .to_string();
    assert_eq!(insp.trim(), "dv");
    d.docker(&["rm", "-v", "dc"]).ok();
    d.docker(&["volume", "rm", "dv"]).ok();
}

/// `POST /volumes/prune`: from API 1.42 only anonymous volumes go unless
/// `all=true`; older clients get dockerd's old answer, every unused volume.
#[test]
fn volume_prune_follows_the_api_version() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&["volume", "create", "named1"]).ok();
    d.berth(&["run", "--name", "anon", "-v", "/data", "busybox", "true"])
        .ok();
    d.berth(&["rm", "anon"]).ok();
    let names = |r: common::HttpResponse| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.body_string());
        let v = r.json();
        v["VolumesDeleted"]
            .as_array()
            .map(|a| a.iter().map(|n| n.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let new = names(d.request("POST", "/v1.45/volumes/prune", None).unwrap());
    assert_eq!(new.len(), 1, "only the anonymous volume: {new:?}");
    assert!(!new.contains(&"named1".to_string()));
    let old = names(d.request("POST", "/v1.41/volumes/prune", None).unwrap());
    assert_eq!(old, vec!["named1".to_string()]);
}
