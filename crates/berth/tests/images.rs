//! Images in and out: import with changes, bad tarballs refused with nothing
//! half-written, and the store's crash repair.

mod common;

use common::Daemon;

/// What the store holds on disk: layer dirs (besides "empty") and blobs.
fn store_contents(d: &Daemon) -> (usize, usize) {
    let root = d.data_root();
    let layers = std::fs::read_dir(root.join("layers"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "empty")
        .count();
    let blobs = std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .count();
    (layers, blobs)
}

fn tar_with_raw_name(name: &str) -> Vec<u8> {
    // tar::Builder refuses hostile names, so write the header by hand.
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(b"00000000003\0");
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    let mut data = [0u8; 512];
    data[..3].copy_from_slice(b"bad");
    out.extend_from_slice(&data);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn import_with_changes_and_message() {
    let d = Daemon::start();
    let tar = std::fs::read(common::fixtures().join("busybox-rootfs.tar")).unwrap();
    let q = "/images/create?fromSrc=-&repo=local/tool&tag=v2&message=hand%20made\
             &changes=ENV%20GREETING%3Dhello&changes=WORKDIR%20%2Fsrv&changes=CMD%20%5B%22sh%22%2C%22-c%22%2C%22echo%20%24GREETING%20%24(pwd)%22%5D\
             &changes=EXPOSE%208080&changes=LABEL%20team%3Dcore&changes=USER%20nobody";
    let r = d.request("POST", q, Some(&tar)).unwrap();
    assert_eq!(r.status, 200, "{}", r.body_string());
    assert!(r.body_string().contains("\"status\":\"sha256:"));
    let img = d
        .request("GET", "/images/local/tool:v2/json", None)
        .unwrap()
        .json();
    assert_eq!(img["Comment"], "hand made");
    assert_eq!(img["Config"]["WorkingDir"], "/srv");
    assert_eq!(img["Config"]["User"], "nobody");
    assert_eq!(img["Config"]["Labels"]["team"], "core");
    assert!(img["Config"]["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        d.docker(&["run", "--rm", "local/tool:v2"]).ok(),
        "hello /srv\n"
    );
    let hist = d
        .docker(&["history", "--format", "{{.Comment}}", "local/tool:v2"])
        .ok()
        .to_string();
    assert_eq!(hist, "hand made\n");
    // Same content again: same layer, no second copy.
    let before = store_contents(&d);
    let r = d
        .request("POST", "/images/create?fromSrc=-&repo=again", Some(&tar))
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(store_contents(&d).0, before.0);
    // A repository without a tag is tagged `latest`, from either client.
    let file = common::fixtures().join("busybox-rootfs.tar");
    d.berth(&["import", file.to_str().unwrap(), "again2"]).ok();
    d.docker(&["import", file.to_str().unwrap(), "again3"]).ok();
    let tags = d
        .berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .ok()
        .to_string();
    for want in ["again:latest", "again2:latest", "again3:latest"] {
        assert!(tags.lines().any(|l| l == want), "{want} not in {tags}");
    }
}

#[test]
fn bad_imports_leave_nothing() {
    let d = Daemon::start();
    let empty = store_contents(&d);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not a tar",
            b"this is not a tarball at all, just some text that is long enough".repeat(20),
            "tar",
        ),
        ("traversal", tar_with_raw_name("../escape"), "escapes"),
        ("absolute", tar_with_raw_name("/etc/evil"), "absolute"),
        (
            "truncated",
            {
                let mut t = std::fs::read(common::fixtures().join("busybox-rootfs.tar")).unwrap();
                t.truncate(t.len() / 2);
                t
            },
            "",
        ),
    ];
    for (what, body, needle) in cases {
        let r = d
            .request("POST", "/images/create?fromSrc=-&repo=bad", Some(&body))
            .unwrap();
        assert_eq!(r.status, 400, "{what}: {}", r.body_string());
        let msg = r.json()["message"].as_str().unwrap().to_lowercase();
        assert!(msg.contains(needle), "{what}: {msg}");
        assert_eq!(store_contents(&d), empty, "{what} left files behind");
        assert_eq!(
            d.request("GET", "/images/json", None).unwrap().json(),
            serde_json::json!([]),
            "{what}"
        );
    }
    assert!(!std::path::Path::new("/escape").exists());
    let r = d
        .request(
            "POST",
            "/images/create?fromSrc=-&repo=x&changes=ADD%20.%20%2F",
            Some(b""),
        )
        .unwrap();
    assert_eq!(
        (r.status, r.json()["message"].as_str().unwrap()),
        (400, "ADD is not a valid change command")
    );
    let r = d
        .request(
            "POST",
            "/images/create?fromSrc=-&repo=Bad%20Name",
            Some(b""),
        )
        .unwrap();
    assert_eq!(r.status, 400);
}

#[test]
fn store_repairs_what_a_crash_left() {
    let mut d = Daemon::start();
    d.busybox();
    let (layers, blobs) = store_contents(&d);
    d.kill9();
    // Leftovers of an interrupted import/load: a half-unpacked layer, a
    // layer dir without a row, a partial blob, an orphan blob.
    let root = d.data_root();
    std::fs::create_dir_all(root.join("layers/tmp-1-2-3/etc")).unwrap();
    std::fs::create_dir_all(root.join("layers/999/bin")).unwrap();
    std::fs::write(root.join("blobs/ingest/partial"), b"half").unwrap();
    std::fs::write(root.join("blobs/sha256").join("ab".repeat(32)), b"orphan").unwrap();
    std::fs::create_dir_all(root.join("tmp/load-1")).unwrap();
    d.restart();
    assert_eq!(store_contents(&d), (layers, blobs));
    assert!(!root.join("blobs/ingest/partial").exists());
    assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    // And it still works.
    assert_eq!(
        d.docker(&["run", "--rm", "busybox", "echo", "ok"]).ok(),
        "ok\n"
    );
}

fn sql(d: &Daemon, q: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(d.data_root().join("berth.db"))
        .arg(q)
        .output()
        .expect("sqlite3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn kill9_during_load_is_repaired() {
    use std::io::Write;
    let mut d = Daemon::start();
    let big = std::fs::read(common::fixtures().join("big-image.tar")).unwrap();
    // None: killed while the body is half sent; Some(ms): killed that long
    // after the whole body was sent (during unpacking or after it).
    for kill_after in [None, Some(0), Some(40), Some(150), Some(600)] {
        let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
        let head = format!(
            "POST /v1.41/images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
            big.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        match kill_after {
            None => {
                s.write_all(&big[..big.len() / 2]).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Some(ms) => {
                let body = big.clone();
                let mut s2 = s.try_clone().unwrap();
                let writer = std::thread::spawn(move || {
                    let _ = s2.write_all(&body);
                });
                let _ = writer.join();
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
        d.restart();
        drop(s);
        let (layer_dirs, blobs) = store_contents(&d);
        let images = d.request("GET", "/images/json", None).unwrap().json();
        let loaded = images.as_array().unwrap().len();
        // All or nothing: 3 layers + 3 layer blobs + 1 config, or nothing.
        if loaded == 1 {
            assert_eq!((layer_dirs, blobs), (3, 4), "kill after {kill_after:?}");
            assert_eq!(
                d.docker(&["run", "--rm", "berth-fixture/big", "cat", "/data/small"])
                    .ok(),
                "small\n"
            );
            d.docker(&["rmi", "berth-fixture/big"]).ok();
        } else {
            assert_eq!(
                (loaded, layer_dirs, blobs),
                (0, 0, 0),
                "kill after {kill_after:?}"
            );
        }
        // No row without its files, no file without its row.
        assert_eq!(
            sql(&d, "select count(*) from layers"),
            "0",
            "kill after {kill_after:?}"
        );
        assert_eq!(sql(&d, "select count(*) from images"), "0");
        assert_eq!(
            std::fs::read_dir(d.data_root().join("tmp"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(d.data_root().join("blobs/ingest"))
                .unwrap()
                .count(),
            0
        );
    }
}
