//! Faults and load: 100 concurrent uploads of one blob, kill -9 in the
//! middle of uploads (then every stored blob must hash to its name), gc
//! against pushes in progress, and memory under 50 parallel downloads.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_uploads_of_one_blob() {
    let reg = Registry::start(&["--log-level", "warn"]);
    let api = reg.api();
    let data = rand_bytes(1 << 20);
    let d = sha256(&data);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (api, data) = (api.clone(), data.clone());
            // Half into one repository, half each into its own.
            let repo = if i % 2 == 0 {
                "same".to_string()
            } else {
                format!("own/r{i}")
            };
            tokio::spawn(async move { (repo.clone(), api.push_blob(&repo, &data).await) })
        })
        .collect();
    for t in tasks {
        let (repo, got) = t.await.expect("upload task");
        assert_eq!(got, d);
        let r = api.head(&format!("/v2/{repo}/blobs/{d}")).await;
        assert_eq!(r.status, 200, "{repo}");
    }
    assert_eq!(
        reg.check_store(),
        1,
        "one blob stored, whatever the uploads"
    );
    assert_eq!(
        std::fs::read_dir(reg.root().join("uploads"))
            .unwrap()
            .count(),
        0
    );
    let (status, len, digest) = api.get_streamed(&format!("/v2/same/blobs/{d}")).await;
    assert_eq!((status, len, digest), (200, data.len() as u64, d));
}

/// Pushes random blobs until the server goes away.
async fn push_until_failure(api: Api, repo: String) {
    loop {
        let data = rand_bytes(256 * 1024);
        let d = sha256(&data);
        let Some(r) = api
            .try_req("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], vec![])
            .await
        else {
            return;
        };
        let Some(loc) = r.header("location") else {
            return;
        };
        if api
            .try_req("PUT", &format!("{loc}?digest={d}"), &[], data)
            .await
            .is_none()
        {
            return;
        }
    }
}

fn gc(root: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("gc")
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "gc failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_upload_then_restart() {
    let mut reg = Registry::start(&["--log-level", "warn"]);
    let api = reg.api();
    let (m, _, blobs) = api.push_image("crash", "v1", 2).await;

    // A chunked upload with its first chunk in.
    let data = rand_bytes(3 << 20);
    let d = sha256(&data);
    let loc = api
        .req("POST", "/v2/crash/blobs/uploads/", &[], vec![])
        .await
        .header("location")
        .unwrap();
    let r = api
        .req(
            "PATCH",
            &loc,
            &[("content-range", &format!("0-{}", (1 << 20) - 1))],
            data[..1 << 20].to_vec(),
        )
        .await;
    assert_eq!(r.status, 202);

    // Uploads whose bodies are half sent when the server dies.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let l = api
            .req("POST", "/v2/crash/blobs/uploads/", &[], vec![])
            .await
            .header("location")
            .unwrap();
        let mut s = tokio::net::TcpStream::connect(&reg.addr).await.unwrap();
        let head = format!(
            "PATCH {l} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n\r\n",
            reg.addr,
            8 << 20
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&rand_bytes(2 << 20)).await.unwrap();
        stalled.push((l, s));
    }
    // And pushes racing the kill.
    let racers: Vec<_> = (0..8)
        .map(|i| tokio::spawn(push_until_failure(api.clone(), format!("race/r{i}"))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    reg.kill9();
    for r in racers {
        r.await.unwrap();
    }

    reg.restart();
    let n = reg.check_store();
    assert!(n >= 3, "the image's blobs are there ({n})");
    let api = reg.api();
    assert_eq!(api.get("/v2/crash/manifests/v1").await.body, m);
    for b in &blobs {
        let (status, _, got) = api.get_streamed(&format!("/v2/crash/blobs/{b}")).await;
        assert_eq!((status, got.as_str()), (200, b.as_str()));
    }
    // Every blob a racer committed is whole and linked.
    let races = std::fs::read_dir(reg.root().join("repositories/race"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(races > 0, "the racers pushed something before the kill");

    // The chunked session survived the crash and resumes where it stood.
    let r = api.get(&loc).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("range").unwrap(), format!("0-{}", (1 << 20) - 1));
    let r = api
        .req(
            "PATCH",
            &loc,
            &[("content-range", &format!("{}-{}", 1 << 20, data.len() - 1))],
            data[1 << 20..].to_vec(),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let r = api
        .req("PUT", &format!("{loc}?digest={d}"), &[], vec![])
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(api.get_streamed(&format!("/v2/crash/blobs/{d}")).await.2, d);

    // The half-sent ones kept what reached the disk, and can be cancelled.
    for (l, _) in &stalled {
        let r = api.get(l).await;
        assert_eq!(r.status, 204);
        assert_eq!(api.delete(l).await.status, 204);
    }

    // gc after the crash (no grace) leaves a consistent store.
    gc(&reg.root(), &["--grace-period", "0s"]);
    reg.check_store();
    assert_eq!(api.get("/v2/crash/manifests/v1").await.body, m);
    for b in &blobs {
        assert_eq!(
            api.get_streamed(&format!("/v2/crash/blobs/{b}")).await.2,
            *b
        );
    }
}

fn blob_file(root: &Path, d: &str) -> std::path::PathBuf {
    root.join("blobs/sha256")
        .join(d.trim_start_matches("sha256:"))
}

fn age(root: &Path, d: &str, by: Duration) {
    let f = std::fs::File::open(blob_file(root, d)).unwrap();
    f.set_modified(SystemTime::now() - by).unwrap();
}

#[tokio::test]
async fn gc_collects_unreferenced_blobs_and_spares_pushes_in_progress() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let root = reg.root();
    let (_, a_md, a_blobs) = api.push_image("gc/a", "v1", 2).await;
    let (b_m, _, b_blobs) = api.push_image("gc/b", "v1", 1).await;
    // A second manifest in gc/a sharing a's config and b's layer (mounted).
    let r = api
        .req(
            "POST",
            &format!("/v2/gc/a/blobs/uploads/?mount={}&from=gc/b", b_blobs[1]),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, 201);
    let shared = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": a_blobs[0], "size": 1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": b_blobs[1], "size": 1}],
    })
    .to_string();
    assert_eq!(
        api.put_manifest("gc/a", "shared", OCI_MANIFEST, shared.as_bytes())
            .await
            .status,
        201
    );
    assert_eq!(
        api.delete(&format!("/v2/gc/a/manifests/{a_md}"))
            .await
            .status,
        202
    );
    let unused = [&a_blobs[1], &a_blobs[2], &a_md];
    let total = reg.check_store();

    // Everything is young: the default grace period keeps it all.
    let out = gc(&root, &[]);
    assert!(out.contains("deleted 0 blobs"), "{out}");
    assert_eq!(reg.check_store(), total);

    // Dry run, no grace: lists what would go, deletes nothing.
    let out = gc(&root, &["--dry-run", "--grace-period", "0s"]);
    for d in unused {
        assert!(out.contains(&format!("would delete blob {d}")), "{out}");
    }
    assert!(!out.contains(&b_blobs[1]), "{out}");
    assert_eq!(reg.check_store(), total);

    let out = gc(&root, &["--grace-period", "0s"]);
    assert!(out.contains("deleted 3 blobs"), "{out}");
    assert_eq!(reg.check_store(), total - 3);
    assert_eq!(api.get("/v2/gc/b/manifests/v1").await.body, b_m);
    for b in &b_blobs {
        assert_eq!(
            api.get_streamed(&format!("/v2/gc/b/blobs/{b}")).await.0,
            200
        );
    }
    assert_eq!(api.get("/v2/gc/a/manifests/shared").await.status, 200);
    for b in [&a_blobs[0], &b_blobs[1]] {
        assert_eq!(
            api.get_streamed(&format!("/v2/gc/a/blobs/{b}")).await.0,
            200
        );
    }
    assert_eq!(
        api.get(&format!("/v2/gc/a/blobs/{}", a_blobs[1]))
            .await
            .status,
        404
    );

    // A push in progress (blobs up, manifest not yet): the grace period
    // keeps its blobs, and the manifest lands.
    let image = |config: &str, layer: &str| {
        json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 1}],
        })
        .to_string()
    };
    let c = api.push_blob("gc/c", b"{\"c\":1}").await;
    let l = api.push_blob("gc/c", &rand_bytes(500)).await;
    gc(&root, &[]);
    let r = api
        .put_manifest("gc/c", "v1", OCI_MANIFEST, image(&c, &l).as_bytes())
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    // With no grace the layers go first; the manifest naming them is then
    // refused, never stored pointing at nothing.
    let c = api.push_blob("gc/d", b"{\"d\":1}").await;
    let l = api.push_blob("gc/d", &rand_bytes(500)).await;
    gc(&root, &["--grace-period", "0s"]);
    let r = api
        .put_manifest("gc/d", "v1", OCI_MANIFEST, image(&c, &l).as_bytes())
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    assert_eq!(api.get("/v2/gc/d/manifests/v1").await.status, 404);

    // An old unreferenced blob that a pusher HEADs (to skip uploading it)
    // counts as used again; left alone, it goes.
    let old = api.push_blob("gc/e", &rand_bytes(100)).await;
    age(&root, &old, Duration::from_secs(7200));
    assert_eq!(api.head(&format!("/v2/gc/e/blobs/{old}")).await.status, 200);
    let out = gc(&root, &[]);
    assert!(!out.contains(&old), "{out}");
    age(&root, &old, Duration::from_secs(7200));
    let out = gc(&root, &[]);
    assert!(out.contains(&format!("deleted blob {old}")), "{out}");
    assert_eq!(api.head(&format!("/v2/gc/e/blobs/{old}")).await.status, 404);
    reg.check_store();

    // Stale uploads are purged.
    let loc = api
        .req("POST", "/v2/gc/f/blobs/uploads/", &[], vec![])
        .await
        .header("location")
        .unwrap();
    let out = gc(&root, &["--upload-purge-after", "0s"]);
    assert!(out.contains("deleted upload"), "{out}");
    assert_eq!(api.get(&loc).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_blob_gets_keep_memory_flat() {
    let reg = Registry::start(&["--log-level", "warn"]);
    let api = reg.api();
    let data = rand_bytes(16 << 20);
    let d = api.push_blob("mem", &data).await;
    drop(data);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let api = api.clone();
            let p = format!("/v2/mem/blobs/{d}");
            tokio::spawn(async move { api.get_streamed(&p).await })
        })
        .collect();
    for t in tasks {
        let (status, len, got) = t.await.unwrap();
        assert_eq!((status, len, got.as_str()), (200, 16 << 20, d.as_str()));
    }
    // 50 × 16 MiB would be 800 MiB if blobs were read whole.
    let peak = peak_rss_kib(reg.pid());
    assert!(peak < 64 * 1024, "server peak RSS {peak} KiB");
}
