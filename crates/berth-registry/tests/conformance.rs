//! Conformance of `berth registry serve` to the OCI Distribution Spec v1.1,
//! written from the spec (spec.md and the flows of its conformance suite):
//! every endpoint, its status codes, headers and error codes, against a real
//! server on 127.0.0.1. Manifests and referrers are in
//! `conformance/manifests.rs`; auth, TLS and settings in
//! `conformance/auth.rs`; concurrency, kill -9, gc and memory in
//! `conformance/faults.rs`.

#[path = "conformance/auth.rs"]
mod auth;
mod common;
#[path = "conformance/faults.rs"]
mod faults;
#[path = "conformance/manifests.rs"]
mod manifests;

use common::*;
use serde_json::json;

#[tokio::test]
async fn base_endpoint_answers_with_the_api_version() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    for path in ["/v2/", "/v2"] {
        let r = api.get(path).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("docker-distribution-api-version").as_deref(),
            Some("registry/2.0")
        );
    }
    // Errors carry it too.
    let r = api.get("/v2/nope/manifests/latest").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("docker-distribution-api-version").as_deref(),
        Some("registry/2.0")
    );
    // One log line per request: method, path, status, bytes, duration.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let log = reg.logs();
    assert!(
        log.lines()
            .any(|l| l.contains("\"GET /v2/nope/manifests/latest\" 404 ") && l.contains("ms")),
        "{log}"
    );
}

#[tokio::test]
async fn blob_post_then_put_get_head_and_ranges() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let data = rand_bytes(2048);
    let d = sha256(&data);
    let missing = api.get(&format!("/v2/r/blobs/{d}")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "BLOB_UNKNOWN");
    assert_eq!(api.head(&format!("/v2/r/blobs/{d}")).await.status, 404);

    let r = api
        .req(
            "POST",
            "/v2/r/blobs/uploads/",
            &[("content-length", "0")],
            vec![],
        )
        .await;
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap();
    assert!(loc.contains("/v2/r/blobs/uploads/"), "{loc}");
    assert!(r.header("docker-upload-uuid").is_some());
    let r = api
        .req(
            "PUT",
            &format!("{loc}?digest={d}"),
            &[("content-type", "application/octet-stream")],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location").unwrap(), format!("/v2/r/blobs/{d}"));
    assert_eq!(r.header("docker-content-digest").unwrap(), d);

    let r = api.head(&format!("/v2/r/blobs/{d}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length").unwrap(), "2048");
    assert_eq!(r.header("docker-content-digest").unwrap(), d);
    assert!(r.body.is_empty());
    let r = api.get(&format!("/v2/r/blobs/{d}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    assert_eq!(r.header("docker-content-digest").unwrap(), d);

    // Ranges, as the conformance suite asks them.
    let range = |h: &'static str| {
        let api = api.clone();
        let p = format!("/v2/r/blobs/{d}");
        async move { api.req("GET", &p, &[("range", h)], vec![]).await }
    };
    let r = range("bytes=500-1499").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range").unwrap(), "bytes 500-1499/2048");
    assert_eq!(r.body, data[500..1500]);
    let r = range("bytes=500-").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[500..]);
    let r = range("bytes=-500").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range").unwrap(), "bytes 1548-2047/2048");
    assert_eq!(r.body, data[1548..]);
    let r = range("bytes=2000-5000").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[2000..]);
    assert_eq!(range("bytes=500-0").await.status, 416);
    let r = range("bytes=5000-10000").await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range").unwrap(), "bytes */2048");

    // A blob is served only by repositories it was pushed or mounted to.
    assert_eq!(api.get(&format!("/v2/other/blobs/{d}")).await.status, 404);
}

/// Blob bodies over plain HTTP go by sendfile in 1 MiB pieces: a blob of
/// several pieces, ranges across their edges, and other requests between
/// them on the same (pooled) connection all come out byte for byte.
#[tokio::test]
async fn large_blobs_and_ranges_on_a_reused_connection() {
    let reg = Registry::start(&["--log-level", "warn"]);
    let api = reg.api();
    let data = rand_bytes((5 << 20) / 2 + 7);
    let d = api.push_blob("big", &data).await;
    let p = format!("/v2/big/blobs/{d}");
    for _ in 0..2 {
        let r = api.get(&p).await;
        assert_eq!(r.status, 200);
        assert!(r.body == data, "blob body differs");
        assert_eq!(api.head(&p).await.status, 200);
        assert_eq!(api.get("/v2/").await.status, 200);
    }
    let mib = 1 << 20;
    for (a, b) in [
        (mib - 3, mib + 3),
        (mib - 1, 2 * mib),
        (0, 0),
        (7, 2 * mib + 100),
    ] {
        let h = format!("bytes={a}-{b}");
        let r = api.req("GET", &p, &[("range", &h)], vec![]).await;
        assert_eq!(r.status, 206, "{h}");
        assert!(r.body == data[a..=b], "{h}: body differs");
    }
    assert_eq!(
        api.get(&format!("/v2/big/blobs/{}", sha256(b"x")))
            .await
            .status,
        404
    );
    let r = api.get(&p).await;
    assert!(r.body == data, "blob body differs after a 404");
}

#[tokio::test]
async fn single_post_monolithic_upload() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let data = rand_bytes(5000);
    let d = sha256(&data);
    let r = api
        .req(
            "POST",
            &format!("/v2/a/b/blobs/uploads/?digest={d}"),
            &[("content-type", "application/octet-stream")],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location").unwrap(), format!("/v2/a/b/blobs/{d}"));
    assert_eq!(api.get(&format!("/v2/a/b/blobs/{d}")).await.body, data);

    // The same with a wrong digest: 400 DIGEST_INVALID, nothing stored.
    let other = sha256(b"other");
    let r = api
        .req(
            "POST",
            &format!("/v2/a/b/blobs/uploads/?digest={other}"),
            &[],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "DIGEST_INVALID");
    assert_eq!(
        api.head(&format!("/v2/a/b/blobs/{other}")).await.status,
        404
    );

    // An empty POST with a digest falls back to POST-then-PUT (202).
    let r = api
        .req(
            "POST",
            &format!("/v2/a/b/blobs/uploads/?digest={other}"),
            &[("content-length", "0")],
            vec![],
        )
        .await;
    assert_eq!(r.status, 202);
    assert!(r.header("location").is_some());
}

#[tokio::test]
async fn chunked_upload_with_out_of_order_and_bad_ranges() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let data = rand_bytes(3 * 1024 * 1024 + 17);
    let d = sha256(&data);
    let r = api
        .req(
            "POST",
            "/v2/c/blobs/uploads/",
            &[("content-length", "0")],
            vec![],
        )
        .await;
    assert_eq!(r.status, 202);
    let mut loc = r.header("location").unwrap();

    let chunk = 1024 * 1024;
    let patch = |loc: String, range: String, body: Vec<u8>| {
        let api = api.clone();
        async move {
            api.req(
                "PATCH",
                &loc,
                &[
                    ("content-type", "application/octet-stream"),
                    ("content-range", &range),
                ],
                body,
            )
            .await
        }
    };
    // First chunk.
    let r = patch(
        loc.clone(),
        format!("0-{}", chunk - 1),
        data[..chunk].to_vec(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("range").unwrap(), format!("0-{}", chunk - 1));
    loc = r.header("location").unwrap();

    // Out of order (skips ahead): 416, the session unchanged.
    let r = patch(
        loc.clone(),
        format!("{}-{}", 2 * chunk, 3 * chunk - 1),
        data[2 * chunk..3 * chunk].to_vec(),
    )
    .await;
    assert_eq!(r.status, 416);
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    // Back to the beginning: 416 too.
    let r = patch(
        loc.clone(),
        format!("0-{}", chunk - 1),
        data[..chunk].to_vec(),
    )
    .await;
    assert_eq!(r.status, 416);
    // Not a range at all, or reversed: 416.
    assert_eq!(patch(loc.clone(), "junk".into(), vec![1]).await.status, 416);
    assert_eq!(
        patch(loc.clone(), format!("{}-{}", chunk + 5, chunk), vec![1])
            .await
            .status,
        416
    );
    // A body shorter than its range: rolled back, 400 SIZE_INVALID.
    let r = patch(
        loc.clone(),
        format!("{}-{}", chunk, 2 * chunk - 1),
        data[chunk..chunk + 10].to_vec(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "SIZE_INVALID");

    // Status: 204 with where it stands.
    let r = api.get(&loc).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("range").unwrap(), format!("0-{}", chunk - 1));
    loc = r.header("location").unwrap();

    // Second chunk in order, then the last one in the closing PUT.
    let r = patch(
        loc.clone(),
        format!("{}-{}", chunk, 2 * chunk - 1),
        data[chunk..2 * chunk].to_vec(),
    )
    .await;
    assert_eq!(r.status, 202);
    loc = r.header("location").unwrap();
    let r = api
        .req(
            "PUT",
            &format!("{loc}?digest={d}"),
            &[(
                "content-range",
                &format!("{}-{}", 2 * chunk, data.len() - 1),
            )],
            data[2 * chunk..].to_vec(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(api.get(&format!("/v2/c/blobs/{d}")).await.body, data);
    // The session is gone.
    assert_eq!(api.get(&loc).await.status, 404);
}

#[tokio::test]
async fn streamed_upload_and_put_without_digest() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let data = rand_bytes(200_000);
    let d = sha256(&data);
    let r = api.req("POST", "/v2/s/blobs/uploads/", &[], vec![]).await;
    let loc = r.header("location").unwrap();
    // Streamed: PATCHes without Content-Range append.
    let r = api.req("PATCH", &loc, &[], data[..100_000].to_vec()).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range").unwrap(), "0-99999");
    let r = api.req("PATCH", &loc, &[], data[100_000..].to_vec()).await;
    assert_eq!(r.header("range").unwrap(), "0-199999");
    // The closing PUT needs the digest.
    let r = api.req("PUT", &loc, &[], vec![]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "DIGEST_INVALID");
    let r = api
        .req("PUT", &format!("{loc}?digest={d}"), &[], vec![])
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(api.get(&format!("/v2/s/blobs/{d}")).await.body, data);
}

#[tokio::test]
async fn wrong_and_malformed_digests_are_digest_invalid() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let r = api.req("POST", "/v2/w/blobs/uploads/", &[], vec![]).await;
    let loc = r.header("location").unwrap();
    let wrong = sha256(b"something else");
    let r = api
        .req(
            "PUT",
            &format!("{loc}?digest={wrong}"),
            &[],
            b"data".to_vec(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "DIGEST_INVALID");
    assert_eq!(api.head(&format!("/v2/w/blobs/{wrong}")).await.status, 404);
    // The session was dropped with its data.
    assert_eq!(api.get(&loc).await.code(), "BLOB_UPLOAD_UNKNOWN");

    for bad in [
        "sha256:baddigeststring",
        "md5:0123",
        "sha256:ABC",
        "nonsense",
    ] {
        let r = api.req("POST", "/v2/w/blobs/uploads/", &[], vec![]).await;
        let loc = r.header("location").unwrap();
        let r = api
            .req("PUT", &format!("{loc}?digest={bad}"), &[], b"x".to_vec())
            .await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.code(), "DIGEST_INVALID", "{bad}");
        let r = api.get(&format!("/v2/w/blobs/{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
    }
    // sha512 is supported, chosen up front or at the end.
    let data = b"sha512 content".to_vec();
    let d512 = {
        use sha2::Digest as _;
        format!("sha512:{}", hex::encode(sha2::Sha512::digest(&data)))
    };
    let r = api
        .req(
            "POST",
            "/v2/w/blobs/uploads/?digest-algorithm=sha512",
            &[],
            vec![],
        )
        .await;
    let loc = r.header("location").unwrap();
    let r = api
        .req("PUT", &format!("{loc}?digest={d512}"), &[], data.clone())
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = api.get(&format!("/v2/w/blobs/{d512}")).await;
    assert_eq!(r.body, data);
    let r = api
        .req(
            "POST",
            "/v2/w/blobs/uploads/?digest-algorithm=md5",
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn cancel_upload() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let r = api.req("POST", "/v2/x/blobs/uploads/", &[], vec![]).await;
    let loc = r.header("location").unwrap();
    api.req("PATCH", &loc, &[], b"partial".to_vec()).await;
    let r = api.delete(&loc).await;
    assert_eq!(r.status, 204);
    let r = api.get(&loc).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(api.delete(&loc).await.status, 404);
    let r = api.req("PATCH", &loc, &[], b"more".to_vec()).await;
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    // A session belongs to its repository.
    let r = api.req("POST", "/v2/x/blobs/uploads/", &[], vec![]).await;
    let loc = r.header("location").unwrap();
    let other = loc.replace("/v2/x/", "/v2/y/");
    assert_eq!(api.get(&other).await.code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(reg.check_store(), 0);
}

#[tokio::test]
async fn cross_repository_mount() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let data = rand_bytes(4000);
    let d = api.push_blob("src/repo", &data).await;
    let r = api
        .req(
            "POST",
            &format!("/v2/dst/blobs/uploads/?mount={d}&from=src/repo"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location").unwrap(), format!("/v2/dst/blobs/{d}"));
    assert_eq!(r.header("docker-content-digest").unwrap(), d);
    assert_eq!(api.get(&format!("/v2/dst/blobs/{d}")).await.body, data);

    // Without `from` (no auth here: every repository is readable).
    let r = api
        .req(
            "POST",
            &format!("/v2/anon/blobs/uploads/?mount={d}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, 201);

    // A blob the source does not have: 202 and an upload session.
    let missing = sha256(b"missing");
    let r = api
        .req(
            "POST",
            &format!("/v2/dst2/blobs/uploads/?mount={missing}&from=src/repo"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap();
    let r = api
        .req(
            "PUT",
            &format!("{loc}?digest={missing}"),
            &[],
            b"missing".to_vec(),
        )
        .await;
    assert_eq!(r.status, 201);
    // One copy of the content, however many repositories link it.
    assert_eq!(reg.check_store(), 2);
}

#[tokio::test]
async fn tags_list_and_pagination() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let (m, _, _) = api.push_image("t", "a", 0).await;
    for tag in ["B", "c", "_d", "e.1", "e-2"] {
        assert_eq!(
            api.put_manifest("t", tag, OCI_MANIFEST, &m).await.status,
            201
        );
    }
    let all = ["B", "_d", "a", "c", "e-2", "e.1"];
    let r = api.get("/v2/t/tags/list").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"name": "t", "tags": all}));
    assert!(r.header("link").is_none());

    // Walk with n=2 following Link headers.
    let mut seen = Vec::new();
    let mut next = Some("/v2/t/tags/list?n=2".to_string());
    while let Some(p) = next {
        let r = api.get(&p).await;
        let page: Vec<String> = serde_json::from_value(r.json()["tags"].clone()).unwrap();
        assert!(page.len() <= 2);
        seen.extend(page);
        next = r.header("link").map(|l| {
            assert!(l.ends_with("; rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_owned()
        });
    }
    assert_eq!(seen, all);
    let r = api.get("/v2/t/tags/list?n=2&last=c").await;
    assert_eq!(r.json()["tags"], json!(["e-2", "e.1"]));
    assert!(r.header("link").is_none());
    let r = api.get("/v2/t/tags/list?last=c").await;
    assert_eq!(r.json()["tags"], json!(["e-2", "e.1"]));
    let r = api.get("/v2/t/tags/list?n=0").await;
    assert_eq!(r.json()["tags"], json!([]));
    assert!(r.header("link").is_none());
    assert_eq!(api.get("/v2/t/tags/list?n=-1").await.status, 400);
    let r = api.get("/v2/none/tags/list").await;
    assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));
}

#[tokio::test]
async fn catalog_and_pagination() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    assert_eq!(
        api.get("/v2/_catalog").await.json(),
        json!({"repositories": []})
    );
    let names = ["a", "a/b", "b/c/d", "z"];
    for n in names {
        api.push_image(n, "latest", 0).await;
    }
    // A repository with blobs only is not listed.
    api.push_blob("blobs-only", b"x").await;
    let r = api.get("/v2/_catalog").await;
    assert_eq!(r.json()["repositories"], json!(names));
    let r = api.get("/v2/_catalog?n=3").await;
    assert_eq!(r.json()["repositories"], json!(["a", "a/b", "b/c/d"]));
    let link = r.header("link").unwrap();
    assert_eq!(link, "</v2/_catalog?n=3&last=b/c/d>; rel=\"next\"");
    let r = api.get("/v2/_catalog?n=3&last=b/c/d").await;
    assert_eq!(r.json()["repositories"], json!(["z"]));
    assert!(r.header("link").is_none());
}

#[tokio::test]
async fn deletes() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let (m, md, blobs) = api.push_image("del", "v1", 1).await;
    api.put_manifest("del", "v2", OCI_MANIFEST, &m).await;

    // Tag delete: the tag goes, the manifest stays.
    assert_eq!(api.delete("/v2/del/manifests/v1").await.status, 202);
    assert_eq!(api.get("/v2/del/manifests/v1").await.status, 404);
    assert_eq!(
        api.get(&format!("/v2/del/manifests/{md}")).await.status,
        200
    );
    assert_eq!(
        api.delete("/v2/del/manifests/v1").await.code(),
        "MANIFEST_UNKNOWN"
    );

    // Manifest delete by digest: it and every tag on it go.
    assert_eq!(
        api.delete(&format!("/v2/del/manifests/{md}")).await.status,
        202
    );
    assert_eq!(
        api.get(&format!("/v2/del/manifests/{md}")).await.status,
        404
    );
    assert_eq!(api.get("/v2/del/manifests/v2").await.status, 404);
    assert_eq!(api.get("/v2/del/tags/list").await.json()["tags"], json!([]));
    let r = api.delete(&format!("/v2/del/manifests/{md}")).await;
    assert_eq!((r.status, r.code().as_str()), (404, "MANIFEST_UNKNOWN"));
    let r = api.delete(&format!("/v2/nothing/manifests/{md}")).await;
    assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));

    // Blob delete: unlinked from the repository (gc frees the content).
    let r = api.delete(&format!("/v2/del/blobs/{}", blobs[1])).await;
    assert_eq!(r.status, 202);
    assert_eq!(
        api.get(&format!("/v2/del/blobs/{}", blobs[1])).await.status,
        404
    );
    let r = api.delete(&format!("/v2/del/blobs/{}", blobs[1])).await;
    assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UNKNOWN"));

    // Methods an endpoint does not have: 405.
    assert_eq!(
        api.req("POST", "/v2/del/manifests/v1", &[], vec![])
            .await
            .status,
        405
    );
    assert_eq!(
        api.req("PUT", "/v2/del/tags/list", &[], vec![])
            .await
            .status,
        405
    );
}

#[tokio::test]
async fn names_that_walk_out_are_name_invalid() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    api.push_image("ok", "v1", 0).await;
    for path in [
        "/v2/../../etc/manifests/passwd",
        "/v2/a/../../../manifests/latest",
        "/v2/a/%2e%2e/%2e%2e/manifests/latest",
        "/v2/a/./b/tags/list",
        "/v2/A/tags/list",
        "/v2/a//b/tags/list",
        "/v2/_layers/tags/list",
        "/v2/ok/_manifests/tags/list",
        "/v2/.hidden/blobs/uploads/",
    ] {
        let r = api.req("GET", path, &[], vec![]).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert_eq!(r.code(), "NAME_INVALID", "{path}");
    }
    let r = api
        .req("POST", "/v2/a/../b/blobs/uploads/", &[], vec![])
        .await;
    assert_eq!(r.code(), "NAME_INVALID");
    // An upload id is never a path.
    for id in ["..", "..%2f..%2fetc", "x"] {
        let r = api.get(&format!("/v2/ok/blobs/uploads/{id}")).await;
        assert_eq!(r.status, 404, "{id}");
    }
    // Nothing was written outside the store.
    let root = reg.root();
    let entries: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut entries = entries;
    entries.sort();
    assert_eq!(entries, ["blobs", "gc.lock", "repositories", "uploads"]);
}

#[tokio::test]
async fn read_only_mode_refuses_writes() {
    let mut reg = Registry::start(&[]);
    let api = reg.api();
    let (_, md, blobs) = api.push_image("ro", "v1", 1).await;
    reg.restart_with(&["--read-only"]);
    let api = reg.api();
    assert_eq!(api.get("/v2/ro/manifests/v1").await.status, 200);
    assert_eq!(
        api.get(&format!("/v2/ro/blobs/{}", blobs[0])).await.status,
        200
    );
    for (method, path) in [
        ("POST", "/v2/ro/blobs/uploads/".to_string()),
        ("PUT", "/v2/ro/manifests/v2".to_string()),
        ("DELETE", format!("/v2/ro/manifests/{md}")),
        ("DELETE", format!("/v2/ro/blobs/{}", blobs[0])),
    ] {
        let r = api.req(method, &path, &[], vec![]).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.code(), "UNSUPPORTED");
    }
    assert_eq!(api.get("/v2/ro/manifests/v1").await.status, 200);
}
