//! Manifests (push, pull, validation, size limit) and the referrers API.

use serde_json::json;

use super::common::*;

#[tokio::test]
async fn manifests_push_pull_and_validation() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let (m, md, blobs) = api.push_image("img", "v1", 2).await;

    for reference in ["v1", md.as_str()] {
        let r = api.get(&format!("/v2/img/manifests/{reference}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, m);
        assert_eq!(r.header("content-type").unwrap(), OCI_MANIFEST);
        assert_eq!(r.header("docker-content-digest").unwrap(), md);
        let r = api.head(&format!("/v2/img/manifests/{reference}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length").unwrap(), m.len().to_string());
        assert_eq!(r.header("docker-content-digest").unwrap(), md);
    }
    let r = api.get("/v2/img/manifests/nope").await;
    assert_eq!((r.status, r.code().as_str()), (404, "MANIFEST_UNKNOWN"));
    let r = api
        .get(&format!("/v2/img/manifests/{}", sha256(b"x")))
        .await;
    assert_eq!(r.status, 404);
    let r = api.get("/v2/img/manifests/sha256:baddigeststring").await;
    assert!(r.status == 400 || r.status == 404);
    let r = api.get("/v2/unknown-repo/manifests/v1").await;
    assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));

    // The Content-Type is served as pushed (Docker schema 2 here).
    let docker = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": blobs[0], "size": 1},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": blobs[1], "size": 1}],
    })
    .to_string();
    let r = api
        .put_manifest("img", "docker", DOCKER_MANIFEST, docker.as_bytes())
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = api.get("/v2/img/manifests/docker").await;
    assert_eq!(r.header("content-type").unwrap(), DOCKER_MANIFEST);

    // An index of manifests in the repository; and one naming a manifest
    // that is not.
    let index = |child: &str| {
        json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": 1,
                           "platform": {"architecture": "amd64", "os": "linux"}}],
        })
        .to_string()
    };
    let r = api
        .put_manifest("img", "multi", OCI_INDEX, index(&md).as_bytes())
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let absent = sha256(b"absent manifest");
    let r = api
        .put_manifest("img", "multi2", OCI_INDEX, index(&absent).as_bytes())
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );

    // Missing blobs: one MANIFEST_BLOB_UNKNOWN per digest.
    let (a, b) = (sha256(b"no config"), sha256(b"no layer"));
    let bad = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": a, "size": 1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": b, "size": 1}],
    })
    .to_string();
    let r = api
        .put_manifest("img", "bad", OCI_MANIFEST, bad.as_bytes())
        .await;
    assert_eq!(r.status, 400);
    let errors = r.json()["errors"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e["code"] == "MANIFEST_BLOB_UNKNOWN"));
    assert_eq!(errors[0]["detail"]["digest"], a);
    assert_eq!(api.get("/v2/img/manifests/bad").await.status, 404);
    // A blob of another repository does not count.
    let other = api.push_blob("elsewhere", b"elsewhere").await;
    let bad = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": other, "size": 9},
        "layers": [],
    })
    .to_string();
    let r = api
        .put_manifest("img", "bad", OCI_MANIFEST, bad.as_bytes())
        .await;
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");

    // Not JSON, not a manifest, mediaType against Content-Type, schema 1.
    for (ct, body) in [
        (OCI_MANIFEST, "not json".to_string()),
        (OCI_MANIFEST, "{}".to_string()),
        (DOCKER_MANIFEST, String::from_utf8(m.clone()).unwrap()),
        (
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            r#"{"schemaVersion":1}"#.to_string(),
        ),
        ("text/plain", String::from_utf8(m.clone()).unwrap()),
    ] {
        let r = api.put_manifest("img", "bad", ct, body.as_bytes()).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "MANIFEST_INVALID"),
            "{ct} {body}"
        );
    }

    // Pushing by digest: the digest must match; ?tag= adds tags (OCI-Tag).
    let r = api
        .put_manifest("img", &sha256(b"wrong"), OCI_MANIFEST, &m)
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "DIGEST_INVALID"));
    let r = api
        .put_manifest("img", "sha256:baddigeststring", OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status, 400);
    let r = api
        .put_manifest("img", &format!("{md}?tag=t1&tag=t2"), OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status, 201);
    let tags: Vec<String> = r
        .headers
        .get_all("oci-tag")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(tags, vec!["t1", "t2"]);
    assert_eq!(api.get("/v2/img/manifests/t2").await.body, m);
    // An invalid tag.
    let r = api.put_manifest("img", ".bad-tag", OCI_MANIFEST, &m).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn manifest_over_4_mib_is_413() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let (m, _, _) = api.push_image("big", "v1", 1).await;
    let mut v: serde_json::Value = serde_json::from_slice(&m).unwrap();
    v["annotations"] = json!({ "pad": "x".repeat(4 << 20) });
    let body = v.to_string().into_bytes();
    assert!(body.len() > 4 << 20);
    let r = api.put_manifest("big", "huge", OCI_MANIFEST, &body).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.code(), "MANIFEST_INVALID");
    // Just under the limit is fine.
    v["annotations"] = json!({ "pad": "x".repeat((4 << 20) - m.len() - 100) });
    let body = v.to_string().into_bytes();
    assert!(body.len() <= 4 << 20);
    let r = api.put_manifest("big", "large", OCI_MANIFEST, &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn referrers_and_oci_subject() {
    let reg = Registry::start(&[]);
    let api = reg.api();
    let (_, subject, _) = api.push_image("ref", "v1", 1).await;
    let empty = api.push_blob("ref", b"{}").await;
    let layer = api.push_blob("ref", b"signature").await;
    let artifact = |artifact_type: Option<&str>, config_type: &str, n: u32| {
        let mut m = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": 9}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
            "annotations": {"n": n.to_string()},
        });
        if let Some(t) = artifact_type {
            m["artifactType"] = json!(t);
        }
        m.to_string().into_bytes()
    };
    let sig = artifact(
        Some("application/vnd.example.sig"),
        "application/vnd.oci.empty.v1+json",
        1,
    );
    let sbom = artifact(None, "application/vnd.example.sbom", 2);
    for m in [&sig, &sbom] {
        let r = api.put_manifest("ref", &sha256(m), OCI_MANIFEST, m).await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.header("oci-subject").unwrap(), subject);
    }
    let r = api.get(&format!("/v2/ref/referrers/{subject}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").unwrap(), OCI_INDEX);
    let idx = r.json();
    assert_eq!(idx["schemaVersion"], 2);
    assert_eq!(idx["mediaType"], OCI_INDEX);
    let mut got: Vec<(String, String)> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["digest"].as_str().unwrap().to_owned(),
                d["artifactType"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (sha256(&sig), "application/vnd.example.sig".to_owned()),
        (sha256(&sbom), "application/vnd.example.sbom".to_owned()),
    ];
    want.sort();
    assert_eq!(got, want);
    let d = &idx["manifests"].as_array().unwrap()[0];
    assert_eq!(d["mediaType"], OCI_MANIFEST);
    assert!(d["size"].as_u64().unwrap() > 0);
    assert!(d["annotations"]["n"].is_string());

    // The artifactType filter, announced.
    let r = api
        .get(&format!(
            "/v2/ref/referrers/{subject}?artifactType=application/vnd.example.sbom"
        ))
        .await;
    assert_eq!(r.header("oci-filters-applied").unwrap(), "artifactType");
    let m = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["digest"], sha256(&sbom));

    // No referrers: an empty index, never 404; a bad digest: 400.
    let r = api
        .get(&format!("/v2/ref/referrers/{}", sha256(b"none")))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["manifests"], json!([]));
    assert_eq!(api.get("/v2/ref/referrers/sha256:bad").await.status, 400);

    // A subject that is not (yet) pushed is accepted.
    let mut orphan: serde_json::Value = serde_json::from_slice(&sig).unwrap();
    orphan["subject"]["digest"] = json!(sha256(b"future"));
    let orphan = orphan.to_string().into_bytes();
    let r = api
        .put_manifest("ref", "orphan", OCI_MANIFEST, &orphan)
        .await;
    assert_eq!(r.status, 201);
    let r = api
        .get(&format!("/v2/ref/referrers/{}", sha256(b"future")))
        .await;
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1);

    // Deleting a referrer drops it from the list.
    assert_eq!(
        api.delete(&format!("/v2/ref/manifests/{}", sha256(&sig)))
            .await
            .status,
        202
    );
    let r = api.get(&format!("/v2/ref/referrers/{subject}")).await;
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1);
}
