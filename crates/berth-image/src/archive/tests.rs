//! Save/load round trips and hostile archives, on a real filesystem.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::sync::Arc;

use berth_api::Reference;
use berth_store::{Digest, Metadata};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::stage::clean_name;
use super::{LoadedImage, SaveRequest};
use crate::unpack::UnpackOptions;
use crate::{
    host_arch, layer_media_type, History, ImageConfig, ImageError, ImageStore, ImportOptions,
    RootFsConfig,
};

struct Fixture {
    dir: tempfile::TempDir,
    store: ImageStore,
}

fn store() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(Metadata::open_in_memory().unwrap());
    let store = ImageStore::open(dir.path(), meta).unwrap();
    Fixture { dir, store }
}

fn r(s: &str) -> Reference {
    Reference::parse_docker_ref(s).unwrap()
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn hexof(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A layer tar of regular files.
fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An archive entry for hand-made (possibly hostile) archives.
enum E<'a> {
    F(&'a str, Vec<u8>),
    D(&'a str),
    L(&'a str, &'a str),
    Dev(&'a str),
}

/// Writes names and link targets into the headers as given, unchecked.
fn archive(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (name, data, kind, link): (&str, &[u8], _, Option<&str>) = match e {
            E::F(n, d) => (n, d, tar::EntryType::Regular, None),
            E::D(n) => (n, &[], tar::EntryType::Directory, None),
            E::L(n, t) => (n, &[], tar::EntryType::Symlink, Some(t)),
            E::Dev(n) => (n, &[], tar::EntryType::Char, None),
        };
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(t) = link {
            old.linkname[..t.len()].copy_from_slice(t.as_bytes());
        }
        h.set_size(data.len() as u64);
        h.set_mode(if matches!(e, E::D(_)) { 0o755 } else { 0o644 });
        h.set_mtime(0);
        h.set_entry_type(kind);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An image config over these (uncompressed) layer tars.
fn config(layers: &[&[u8]], created: &str) -> Vec<u8> {
    let c = ImageConfig {
        architecture: host_arch().to_string(),
        os: "linux".into(),
        created: Some(created.to_string()),
        rootfs: RootFsConfig {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| sha(l)).collect(),
        },
        history: layers
            .iter()
            .map(|_| History {
                created_by: Some("test".into()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    c.to_bytes()
}

/// Adds an image by hand: each blob (plain or compressed) is unpacked and
/// kept as the layer's blob.
fn make_image(s: &ImageStore, blobs: &[Vec<u8>], created: &str, tags: &[&str]) -> String {
    let mut lease = s.layers().lease();
    let mut parent: Option<String> = None;
    let mut diff_ids = Vec::new();
    for raw in blobs {
        let (u, comp) = s
            .layers()
            .unpack(
                &mut lease,
                Cursor::new(raw),
                parent.as_deref(),
                None,
                &UnpackOptions::default(),
            )
            .unwrap();
        let d = s.blobs().put(raw).unwrap();
        s.meta()
            .set_layer_blob(&u.row.chain_id, d.as_str(), layer_media_type(comp))
            .unwrap();
        diff_ids.push(u.row.diff_id.clone());
        parent = Some(u.row.chain_id.clone());
    }
    let c = ImageConfig {
        architecture: host_arch().to_string(),
        os: "linux".into(),
        created: Some(created.to_string()),
        rootfs: RootFsConfig {
            kind: "layers".into(),
            diff_ids,
        },
        ..Default::default()
    };
    let d = s.blobs().put(&c.to_bytes()).unwrap();
    let tags: Vec<Reference> = tags.iter().map(|t| r(t)).collect();
    s.add_image(&d, None, &tags).unwrap()
}

/// A file of an image, from its topmost layer that has it.
fn read_file(s: &ImageStore, image: &str, path: &str) -> Option<Vec<u8>> {
    let img = s.resolve(image).unwrap();
    for d in s.lower_dirs(&img.row).unwrap() {
        let p = d.join(path);
        if p.symlink_metadata().is_ok() {
            return Some(fs::read(p).unwrap());
        }
    }
    None
}

/// Entries of a tar: name → (type, data).
fn entries(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, u64, Vec<u8>)> {
    let mut a = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((
            e.path().unwrap().to_string_lossy().into_owned(),
            h.entry_type(),
            h.mtime().unwrap(),
            data,
        ));
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
    }
    out
}

fn file<'a>(ents: &'a [(String, tar::EntryType, u64, Vec<u8>)], name: &str) -> &'a [u8] {
    &ents
        .iter()
        .find(|e| e.0 == name)
        .unwrap_or_else(|| panic!("no {name} in archive"))
        .3
}

fn load(s: &ImageStore, bytes: &[u8]) -> Result<(Vec<LoadedImage>, Vec<String>), ImageError> {
    let mut lines = Vec::new();
    let loaded = s.load(Cursor::new(bytes), &mut |l| lines.push(l))?;
    Ok((loaded, lines))
}

fn dir_names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Nothing of a failed load is left: no image, tag, layer (row or dir),
/// blob, or staging file.
fn assert_clean(f: &Fixture) {
    let s = &f.store;
    assert!(s.meta().images().unwrap().is_empty(), "images left");
    assert!(s.meta().all_tags().unwrap().is_empty(), "tags left");
    assert!(s.meta().layers().unwrap().is_empty(), "layer rows left");
    assert_eq!(
        dir_names(&f.dir.path().join("layers")),
        vec!["empty"],
        "layer dirs left"
    );
    assert!(s.blobs().list().unwrap().is_empty(), "blobs left");
    assert!(
        dir_names(&f.dir.path().join("blobs/ingest")).is_empty(),
        "ingest files left"
    );
    assert!(dir_names(&s.tmp_dir()).is_empty(), "staging left");
}

fn expect_bad(f: &Fixture, bytes: &[u8], needle: &str) -> String {
    match load(&f.store, bytes) {
        Err(ImageError::BadArchive(m)) => {
            assert!(m.contains(needle), "message {m:?} lacks {needle:?}");
            assert_clean(f);
            m
        }
        other => panic!("expected BadArchive containing {needle:?}, got {other:?}"),
    }
}

// ---- round trips ----

#[test]
fn save_then_load_round_trips_with_shared_layer_written_once() {
    let a = store();
    let base = layer(&[("etc/os-release", b"berth test\n"), ("bin/sh", b"#!fake\n")]);
    let top1 = layer(&[("app/one", b"one\n")]);
    let top2 = layer(&[("app/two", b"two\n")]);
    // The shared base is stored plain, the tops compressed: save must
    // write them all uncompressed.
    let id1 = make_image(
        &a.store,
        &[base.clone(), gzip(&top1)],
        "2024-01-02T03:04:05Z",
        &["app:one"],
    );
    let id2 = make_image(
        &a.store,
        &[base.clone(), zstd::encode_all(&top2[..], 3).unwrap()],
        "2024-02-02T03:04:05Z",
        &["app:two", "example.com/other/x:v2"],
    );
    let tarball = gzip(&layer(&[("data", b"imported\n")]));
    let id3 = a
        .store
        .import(
            Cursor::new(tarball),
            &ImportOptions {
                source: "-".into(),
                ..Default::default()
            },
        )
        .unwrap();

    let reqs = vec![
        SaveRequest {
            id: id1.clone(),
            refs: vec![r("app:one")],
        },
        SaveRequest {
            id: id2.clone(),
            refs: vec![r("app:two"), r("example.com/other/x:v2")],
        },
        SaveRequest {
            id: id3.clone(),
            refs: vec![],
        },
        // The same image twice merges.
        SaveRequest {
            id: id1.clone(),
            refs: vec![r("app:one")],
        },
    ];
    let mut out = Vec::new();
    a.store.save(&reqs, &mut out).unwrap();
    let mut again = Vec::new();
    a.store.save(&reqs, &mut again).unwrap();
    assert!(out == again, "save is not deterministic");

    let ents = entries(&out);
    let names: Vec<&str> = ents.iter().map(|e| e.0.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted");
    assert_eq!(names[..2], ["blobs/", "blobs/sha256/"]);
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == format!("blobs/sha256/{}", hexof(&base)))
            .count(),
        1
    );
    // config, manifest per image + 4 distinct layers
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("blobs/sha256/") && n.len() > 13)
            .count(),
        3 + 3 + 4
    );
    assert!(names.ends_with(&["index.json", "manifest.json", "oci-layout", "repositories"]));
    // Layers are uncompressed, named by diff ID.
    assert_eq!(
        file(&ents, &format!("blobs/sha256/{}", hexof(&top1))),
        &top1[..]
    );
    assert_eq!(
        file(&ents, &format!("blobs/sha256/{}", hexof(&top2))),
        &top2[..]
    );
    // The config keeps its bytes and the image's created time.
    let cfg_entry = ents
        .iter()
        .find(|e| e.0 == format!("blobs/sha256/{}", &id1[7..]))
        .unwrap();
    assert_eq!(sha(&cfg_entry.3), id1);
    assert_eq!(cfg_entry.2, 1704164645);

    let manifest: Value = serde_json::from_slice(file(&ents, "manifest.json")).unwrap();
    let m = manifest.as_array().unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(m[0]["Config"], format!("blobs/sha256/{}", &id1[7..]));
    assert_eq!(m[0]["RepoTags"], json!(["app:one"]));
    assert_eq!(
        m[0]["Layers"],
        json!([
            format!("blobs/sha256/{}", hexof(&base)),
            format!("blobs/sha256/{}", hexof(&top1))
        ])
    );
    assert_eq!(
        m[1]["RepoTags"],
        json!(["app:two", "example.com/other/x:v2"])
    );
    assert_eq!(m[2]["RepoTags"], Value::Null);
    assert!(m[0].get("LayerSources").is_none());
    let repos: Value = serde_json::from_slice(file(&ents, "repositories")).unwrap();
    assert_eq!(
        repos,
        json!({"app": {"one": hexof(&top1), "two": hexof(&top2)}, "example.com/other/x": {"v2": hexof(&top2)}})
    );
    assert_eq!(
        file(&ents, "oci-layout"),
        br#"{"imageLayoutVersion": "1.0.0"}"#
    );
    let index: Value = serde_json::from_slice(file(&ents, "index.json")).unwrap();
    let descs = index["manifests"].as_array().unwrap();
    assert_eq!(descs.len(), 4);
    assert_eq!(
        descs[0]["annotations"]["io.containerd.image.name"],
        "docker.io/library/app:one"
    );
    assert_eq!(
        descs[0]["annotations"]["org.opencontainers.image.ref.name"],
        "one"
    );
    assert_eq!(
        descs[2]["annotations"]["io.containerd.image.name"],
        "example.com/other/x:v2"
    );
    assert!(descs[3].get("annotations").is_none());
    // Every manifest in the index is in the archive, and names the config.
    let m0 = file(
        &ents,
        &format!(
            "blobs/sha256/{}",
            &descs[0]["digest"].as_str().unwrap()[7..]
        ),
    );
    let m0: Value = serde_json::from_slice(m0).unwrap();
    assert_eq!(m0["config"]["digest"], id1.as_str());
    assert_eq!(m0["layers"][1]["size"], top1.len());

    let b = store();
    let (loaded, lines) = load(&b.store, &out).unwrap();
    assert_eq!(
        loaded,
        vec![
            LoadedImage {
                id: id1.clone(),
                refs: vec![r("app:one")]
            },
            LoadedImage {
                id: id2.clone(),
                refs: vec![r("app:two"), r("example.com/other/x:v2")]
            },
            LoadedImage {
                id: id3.clone(),
                refs: vec![]
            },
        ]
    );
    assert_eq!(
        lines,
        vec![
            "Loaded image: app:one".to_string(),
            "Loaded image: app:two".into(),
            "Loaded image: example.com/other/x:v2".into(),
            format!("Loaded image ID: {id3}"),
        ]
    );
    assert_eq!(b.store.resolve("app:one").unwrap().id(), id1);
    assert_eq!(b.store.resolve("example.com/other/x:v2").unwrap().id(), id2);
    assert_eq!(
        read_file(&b.store, "app:one", "etc/os-release").unwrap(),
        b"berth test\n"
    );
    assert_eq!(read_file(&b.store, "app:one", "app/one").unwrap(), b"one\n");
    assert_eq!(read_file(&b.store, "app:two", "app/two").unwrap(), b"two\n");
    assert!(read_file(&b.store, "app:two", "app/one").is_none());
    assert_eq!(read_file(&b.store, &id3, "data").unwrap(), b"imported\n");
    // base, top1, top2, the import's layer: the base once.
    let layers = b.store.meta().layers().unwrap();
    assert_eq!(layers.len(), 4);
    assert!(layers.iter().all(|l| l.blob_digest.is_some()));
    assert_eq!(b.store.meta().images().unwrap().len(), 3);

    // Saved again from the second store, the archive is the same.
    let mut out2 = Vec::new();
    b.store.save(&reqs, &mut out2).unwrap();
    assert!(out == out2, "a loaded image saves to the same bytes");

    // Loading again changes nothing and moves no tag.
    let (_, lines) = load(&b.store, &gzip(&out)).unwrap();
    assert!(lines.iter().all(|l| !l.contains("renaming")), "{lines:?}");
    assert_eq!(b.store.meta().layers().unwrap().len(), 4);
}

#[test]
fn load_moves_a_tag_and_says_so() {
    let a = store();
    let l1 = layer(&[("f", b"1")]);
    let l2 = layer(&[("f", b"2")]);
    let id1 = make_image(&a.store, &[l1], "2024-01-01T00:00:00Z", &[]);
    let id2 = make_image(&a.store, &[l2], "2024-01-01T00:00:00Z", &[]);
    let mut first = Vec::new();
    a.store
        .save(
            &[SaveRequest {
                id: id1.clone(),
                refs: vec![r("busybox")],
            }],
            &mut first,
        )
        .unwrap();
    let mut second = Vec::new();
    a.store
        .save(
            &[SaveRequest {
                id: id2.clone(),
                refs: vec![r("busybox:latest")],
            }],
            &mut second,
        )
        .unwrap();

    let b = store();
    load(&b.store, &first).unwrap();
    let (_, lines) = load(&b.store, &second).unwrap();
    assert_eq!(
        lines,
        vec![
            format!("The image busybox:latest already exists, renaming the old one with ID {id1} to empty string"),
            "Loaded image: busybox:latest".to_string(),
        ]
    );
    assert_eq!(b.store.resolve("busybox").unwrap().id(), id2);
    assert!(b.store.meta().tags_of(&id1).unwrap().is_empty());
}

/// The layout docker save wrote before Docker 25.
fn legacy_archive() -> (Vec<u8>, String, String, Vec<u8>, Vec<u8>) {
    let l1 = layer(&[("etc/hostname", b"legacy\n")]);
    let l2 = layer(&[("usr/bin/tool", b"tool v1\n")]);
    // The first layer again on top: docker writes a symlink for it.
    let cfg = config(&[&l1, &l2, &l1], "2020-05-05T05:05:05Z");
    let cfg_hex = hexof(&cfg);
    let small = layer(&[("only", b"small\n")]);
    let cfg2 = config(&[&small], "2020-06-06T06:06:06Z");
    let (v1, v2, v3, v4) = (
        "a".repeat(64),
        "b".repeat(64),
        "c".repeat(64),
        "d".repeat(64),
    );
    let manifest = json!([
        {"Config": format!("{cfg_hex}.json"), "RepoTags": ["legacy:1"],
         "Layers": [format!("{v1}/layer.tar"), format!("{v2}/layer.tar"), format!("{v3}/layer.tar")]},
        {"Config": format!("{}.json", hexof(&cfg2)), "RepoTags": null, "Layers": [format!("{v4}/layer.tar")]}
    ]);
    let repos = json!({"legacy": {"1": v3}, "legacy-two": {"x": v4}});
    let link = format!("../{v1}/layer.tar");
    let (n1, n2, n3, n4) = (
        format!("{v1}/layer.tar"),
        format!("{v2}/layer.tar"),
        format!("{v3}/layer.tar"),
        format!("{v4}/layer.tar"),
    );
    let (c1, c2) = (format!("{cfg_hex}.json"), format!("{}.json", hexof(&cfg2)));
    let bytes = archive(&[
        E::D(&format!("{v1}/")),
        E::F(&format!("{v1}/VERSION"), b"1.0".to_vec()),
        E::F(&format!("{v1}/json"), b"{}".to_vec()),
        E::F(&n1, l1.clone()),
        E::D(&format!("{v2}/")),
        E::F(&n2, l2.clone()),
        E::D(&format!("{v3}/")),
        E::L(&n3, &link),
        E::F(&n4, small),
        E::F(&c1, cfg.clone()),
        E::F(&c2, cfg2.clone()),
        E::F("manifest.json", serde_json::to_vec(&manifest).unwrap()),
        E::F("repositories", serde_json::to_vec(&repos).unwrap()),
    ]);
    (bytes, sha(&cfg), sha(&cfg2), l1, l2)
}

#[test]
fn loads_pre_25_docker_archive_with_symlinked_layer() {
    let (bytes, id, id2, l1, _) = legacy_archive();
    let f = store();
    let (loaded, lines) = load(&f.store, &bytes).unwrap();
    assert_eq!(
        loaded[0],
        LoadedImage {
            id: id.clone(),
            refs: vec![r("legacy:1")]
        }
    );
    // Tagged from `repositories`, as its manifest entry has no RepoTags.
    assert_eq!(
        loaded[1],
        LoadedImage {
            id: id2.clone(),
            refs: vec![r("legacy-two:x")]
        }
    );
    assert_eq!(
        lines,
        vec!["Loaded image: legacy:1", "Loaded image: legacy-two:x"]
    );
    assert_eq!(
        read_file(&f.store, "legacy:1", "etc/hostname").unwrap(),
        b"legacy\n"
    );
    assert_eq!(
        read_file(&f.store, "legacy:1", "usr/bin/tool").unwrap(),
        b"tool v1\n"
    );
    assert_eq!(
        read_file(&f.store, "legacy-two:x", "only").unwrap(),
        b"small\n"
    );
    let img = f.store.resolve("legacy:1").unwrap();
    assert_eq!(img.row.chain_ids.len(), 3);
    // The plain layer.tar is kept as the blob.
    let bottom = f
        .store
        .meta()
        .layer(&img.row.chain_ids[0])
        .unwrap()
        .unwrap();
    assert_eq!(bottom.blob_digest.as_deref(), Some(sha(&l1).as_str()));
    assert_eq!(
        bottom.blob_media_type.as_deref(),
        Some("application/vnd.oci.image.layer.v1.tar")
    );
    assert!(dir_names(&f.store.tmp_dir()).is_empty());
}

/// An OCI layout: a gzip layer named by containerd's annotation, and a
/// nested multi-platform index (zstd layer, Docker manifest type) named by
/// the OCI ref name; the other platform's manifest is not in the archive.
#[test]
fn loads_oci_layout_with_compressed_layers_and_nested_index() {
    let l1 = layer(&[("hello", b"from oci\n")]);
    let gz = gzip(&l1);
    let cfg = config(&[&l1], "2023-03-03T03:03:03Z");
    let m1 = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&cfg), "size": cfg.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(&gz), "size": gz.len()}]
    }))
    .unwrap();

    let l2 = layer(&[("hello", b"from nested\n")]);
    let zs = zstd::encode_all(&l2[..], 3).unwrap();
    let cfg2 = config(&[&l2], "2023-04-04T04:04:04Z");
    let m2 = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": sha(&cfg2), "size": cfg2.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": sha(&zs), "size": zs.len()}]
    }))
    .unwrap();
    let other = "sha256:".to_string() + &"e".repeat(64);
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": other, "size": 100,
             "platform": {"os": "linux", "architecture": "s390x-not-this"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": sha(&m2), "size": m2.len(),
             "platform": {"os": "linux", "architecture": host_arch()}}
        ]
    }))
    .unwrap();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&m1), "size": m1.len(),
             "annotations": {"io.containerd.image.name": "registry.example:5000/team/oci:1",
                             "org.opencontainers.image.ref.name": "1"}},
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(&nested), "size": nested.len(),
             "annotations": {"org.opencontainers.image.ref.name": "nested:2"}}
        ]
    }))
    .unwrap();
    let blob = |d: &[u8]| format!("blobs/sha256/{}", hexof(d));
    let (b1, b2, b3, b4, b5, b6, b7) = (
        blob(&gz),
        blob(&cfg),
        blob(&m1),
        blob(&zs),
        blob(&cfg2),
        blob(&m2),
        blob(&nested),
    );
    let bytes = archive(&[
        E::F("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        E::F("index.json", index.clone()),
        E::D("blobs/"),
        E::D("blobs/sha256/"),
        E::F(&b1, gz.clone()),
        E::F(&b2, cfg.clone()),
        E::F(&b3, m1),
        E::F(&b4, zs.clone()),
        E::F(&b5, cfg2.clone()),
        E::F(&b6, m2),
        E::F(&b7, nested),
    ]);
    let f = store();
    // The whole archive gzip-compressed, as `docker save | gzip` makes it.
    let (loaded, lines) = load(&f.store, &gzip(&bytes)).unwrap();
    assert_eq!(
        loaded,
        vec![
            LoadedImage {
                id: sha(&cfg),
                refs: vec![r("registry.example:5000/team/oci:1")]
            },
            LoadedImage {
                id: sha(&cfg2),
                refs: vec![r("nested:2")]
            },
        ]
    );
    assert_eq!(
        lines,
        vec![
            "Loaded image: registry.example:5000/team/oci:1",
            "Loaded image: nested:2"
        ]
    );
    assert_eq!(
        read_file(&f.store, "registry.example:5000/team/oci:1", "hello").unwrap(),
        b"from oci\n"
    );
    assert_eq!(
        read_file(&f.store, "nested:2", "hello").unwrap(),
        b"from nested\n"
    );
    // The compressed blobs are kept as they came.
    let chain = &f.store.resolve("nested:2").unwrap().row.chain_ids[0];
    let row = f.store.meta().layer(chain).unwrap().unwrap();
    assert_eq!(row.blob_digest.as_deref(), Some(sha(&zs).as_str()));
    assert_eq!(
        row.blob_media_type.as_deref(),
        Some("application/vnd.oci.image.layer.v1.tar+zstd")
    );
    let chain = &f
        .store
        .resolve("registry.example:5000/team/oci:1")
        .unwrap()
        .row
        .chain_ids[0];
    let row = f.store.meta().layer(chain).unwrap().unwrap();
    assert_eq!(row.blob_digest.as_deref(), Some(sha(&gz).as_str()));

    // And it saves back out uncompressed.
    let mut out = Vec::new();
    f.store
        .save(
            &[SaveRequest {
                id: sha(&cfg2),
                refs: vec![r("nested:2")],
            }],
            &mut out,
        )
        .unwrap();
    assert_eq!(
        file(&entries(&out), &format!("blobs/sha256/{}", hexof(&l2))),
        &l2[..]
    );
}

#[test]
fn an_existing_layer_without_blob_gets_the_archives() {
    let l1 = layer(&[("x", b"x\n")]);
    let a = store();
    let id = make_image(
        &a.store,
        std::slice::from_ref(&l1),
        "2024-01-01T00:00:00Z",
        &[],
    );
    let mut out = Vec::new();
    a.store
        .save(
            &[SaveRequest {
                id: id.clone(),
                refs: vec![r("x:1")],
            }],
            &mut out,
        )
        .unwrap();

    let b = store();
    let mut lease = b.store.layers().lease();
    let (u, _) = b
        .store
        .layers()
        .unpack(
            &mut lease,
            Cursor::new(&l1),
            None,
            None,
            &UnpackOptions::default(),
        )
        .unwrap();
    assert!(u.row.blob_digest.is_none());
    load(&b.store, &out).unwrap();
    drop(lease);
    let row = b.store.meta().layer(&u.row.chain_id).unwrap().unwrap();
    assert_eq!(row.blob_digest.as_deref(), Some(sha(&l1).as_str()));
}

// ---- save errors ----

#[test]
fn save_of_unknown_image_is_not_found() {
    let f = store();
    let err = f.store.save(
        &[SaveRequest {
            id: format!("sha256:{}", "0".repeat(64)),
            refs: vec![],
        }],
        Vec::new(),
    );
    assert!(matches!(err, Err(ImageError::NotFound(_))), "{err:?}");
}

#[test]
fn save_fails_on_a_corrupt_blob() {
    for compress in [false, true] {
        let f = store();
        let l = layer(&[("f", &[7u8; 5000][..])]);
        let raw = if compress { gzip(&l) } else { l.clone() };
        let id = make_image(
            &f.store,
            std::slice::from_ref(&raw),
            "2024-01-01T00:00:00Z",
            &[],
        );
        let p = f.store.blobs().path(&Digest::parse(&sha(&raw)).unwrap());
        let mut bytes = fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 30] ^= 1;
        fs::write(&p, &bytes).unwrap();
        let err = f
            .store
            .save(&[SaveRequest { id, refs: vec![] }], Vec::new())
            .unwrap_err();
        assert!(
            matches!(
                &err,
                ImageError::Store(berth_store::StoreError::DigestMismatch { .. })
                    | ImageError::Io { .. }
            ),
            "compress={compress}: {err:?}"
        );
    }
}

// ---- hostile archives ----

/// A valid docker 25+ archive of one two-layer image, and its parts.
fn good_parts() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let l1 = layer(&[("a", b"a\n")]);
    let l2 = layer(&[("b", b"b\n")]);
    let cfg = config(&[&l1, &l2], "2024-01-01T00:00:00Z");
    (l1, l2, cfg)
}

fn docker_archive(
    cfg: &[u8],
    cfg_name: &str,
    layers: &[(&str, Vec<u8>)],
    extra: Vec<E<'_>>,
) -> Vec<u8> {
    let manifest = json!([{"Config": cfg_name, "RepoTags": ["evil:1"], "Layers": layers.iter().map(|l| l.0).collect::<Vec<_>>()}]);
    let mut ents = extra;
    ents.push(E::F(cfg_name, cfg.to_vec()));
    for (n, d) in layers {
        ents.push(E::F(n, d.clone()));
    }
    ents.push(E::F(
        "manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    ));
    archive(&ents)
}

#[test]
fn refuses_dotdot_entry() {
    let f = store();
    let m = expect_bad(&f, &archive(&[E::F("../evil", b"x".to_vec())]), "../evil");
    assert!(m.contains(".."), "{m}");
    let m = expect_bad(
        &f,
        &archive(&[E::F("blobs/../../evil", b"x".to_vec())]),
        "blobs/../../evil",
    );
    assert!(m.contains(".."), "{m}");
    assert!(!f.dir.path().parent().unwrap().join("evil").exists());
}

#[test]
fn refuses_absolute_entry() {
    let f = store();
    expect_bad(
        &f,
        &archive(&[E::F("/tmp/berth-evil", b"x".to_vec())]),
        "absolute",
    );
    assert!(!Path::new("/tmp/berth-evil").exists());
}

#[test]
fn refuses_symlink_out_of_the_archive() {
    let f = store();
    expect_bad(
        &f,
        &archive(&[E::L("x/layer.tar", "../../etc/passwd")]),
        "outside the archive",
    );
    expect_bad(
        &f,
        &archive(&[E::L("layer.tar", "/etc/passwd")]),
        "outside the archive",
    );
    // Nor may anything be written through a link.
    expect_bad(
        &f,
        &archive(&[E::L("d", "e"), E::F("d/x", b"x".to_vec())]),
        "is a link",
    );
}

#[test]
fn refuses_device_nodes() {
    let f = store();
    expect_bad(&f, &archive(&[E::Dev("dev/null")]), "not allowed");
    // ... and inside a layer.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("dev/sda").unwrap();
    h.set_size(0);
    h.set_mode(0o600);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Block);
    h.set_device_major(8).unwrap();
    h.set_device_minor(0).unwrap();
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    let dev_layer = b.into_inner().unwrap();
    let cfg = config(&[&dev_layer], "2024-01-01T00:00:00Z");
    let bytes = docker_archive(
        &cfg,
        &format!("{}.json", hexof(&cfg)),
        &[("l/layer.tar", dev_layer)],
        vec![],
    );
    expect_bad(&f, &bytes, "device");
}

#[test]
fn refuses_config_digest_mismatch() {
    let f = store();
    let (l1, l2, cfg) = good_parts();
    let wrong = "f".repeat(64);
    let m = expect_bad(
        &f,
        &docker_archive(
            &cfg,
            &format!("{wrong}.json"),
            &[("1/layer.tar", l1.clone()), ("2/layer.tar", l2.clone())],
            vec![],
        ),
        "does not match",
    );
    assert!(m.contains(&wrong) && m.contains(&hexof(&cfg)), "{m}");
    // A blob whose content is not its name.
    let m = expect_bad(
        &f,
        &docker_archive(
            &cfg,
            &format!("blobs/sha256/{wrong}"),
            &[("1/layer.tar", l1), ("2/layer.tar", l2)],
            vec![],
        ),
        "does not match",
    );
    assert!(m.contains(&wrong) && m.contains(&hexof(&cfg)), "{m}");
}

#[test]
fn refuses_layer_diff_id_mismatch_and_removes_unpacked_layers() {
    let f = store();
    let (l1, l2, cfg) = good_parts();
    let other = layer(&[("b", b"not b\n")]);
    // The first layer is fine and gets unpacked; the second is not.
    let bytes = docker_archive(
        &cfg,
        &format!("{}.json", hexof(&cfg)),
        &[("1/layer.tar", l1), ("2/layer.tar", gzip(&other))],
        vec![],
    );
    let m = expect_bad(&f, &bytes, "does not match");
    assert!(m.contains(&sha(&l2)) && m.contains(&sha(&other)), "{m}");
    assert!(m.contains("2/layer.tar"), "{m}");
}

#[test]
fn refuses_manifest_naming_a_missing_file() {
    let f = store();
    let (l1, _, cfg) = good_parts();
    let manifest = json!([{"Config": format!("{}.json", hexof(&cfg)), "RepoTags": ["evil:1"], "Layers": ["1/layer.tar", "2/layer.tar"]}]);
    let c = format!("{}.json", hexof(&cfg));
    let bytes = archive(&[
        E::F(&c, cfg.clone()),
        E::F("1/layer.tar", l1),
        E::F("manifest.json", serde_json::to_vec(&manifest).unwrap()),
    ]);
    expect_bad(&f, &bytes, "2/layer.tar");
    // A missing config, and a layer path climbing out.
    let manifest = json!([{"Config": "nope.json", "RepoTags": [], "Layers": []}]);
    expect_bad(
        &f,
        &archive(&[E::F(
            "manifest.json",
            serde_json::to_vec(&manifest).unwrap(),
        )]),
        "nope.json",
    );
    let manifest = json!([{"Config": c, "RepoTags": [], "Layers": ["../../etc/passwd", "x"]}]);
    expect_bad(
        &f,
        &archive(&[
            E::F(&c, cfg),
            E::F("manifest.json", serde_json::to_vec(&manifest).unwrap()),
        ]),
        "../../etc/passwd",
    );
    // No manifest at all.
    expect_bad(
        &f,
        &archive(&[E::F("hello", b"x".to_vec())]),
        "neither manifest.json nor index.json",
    );
}

#[test]
fn refuses_truncated_archives() {
    let a = store();
    let (l1, l2, _) = good_parts();
    let id = make_image(&a.store, &[l1, l2], "2024-01-01T00:00:00Z", &[]);
    let mut full = Vec::new();
    a.store
        .save(
            &[SaveRequest {
                id,
                refs: vec![r("t:1")],
            }],
            &mut full,
        )
        .unwrap();
    let f = store();
    // Inside an entry, at a header boundary, and without the end marker.
    expect_bad(&f, &full[..full.len() / 2 + 100], "truncated");
    expect_bad(&f, &full[..1024], "truncated");
    expect_bad(&f, &full[..full.len() - 1024], "truncated");
    // A cut gzip stream.
    let gz = gzip(&full);
    match load(&f.store, &gz[..gz.len() / 2]) {
        Err(ImageError::BadArchive(_)) => assert_clean(&f),
        other => panic!("{other:?}"),
    }
    // And the whole thing loads.
    load(&f.store, &full).unwrap();
}

#[test]
fn refuses_garbage() {
    let f = store();
    let random = crate::testdata::noise(10_000, 0x9e37_79b9_7f4a_7c15);
    expect_bad(&f, &random, "not a tar archive");
    expect_bad(&f, b"", "empty");
    expect_bad(&f, &[0u8; 1024], "neither manifest.json nor index.json");
    expect_bad(&f, b"{\"not\": \"a tar\"}", "");
}

#[test]
fn refuses_bad_oci_layouts() {
    let f = store();
    let l1 = layer(&[("a", b"a\n")]);
    let cfg = config(&[&l1], "2024-01-01T00:00:00Z");
    let manifest = |layer_digest: &str, size: usize| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&cfg), "size": cfg.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": size}]
        }))
        .unwrap()
    };
    let build = |m: &[u8], with_layer: bool| {
        let index = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(m), "size": m.len(),
             "annotations": {"io.containerd.image.name": "docker.io/library/bad:1"}}]}))
        .unwrap();
        let (bc, bm, bl) = (
            format!("blobs/sha256/{}", hexof(&cfg)),
            format!("blobs/sha256/{}", hexof(m)),
            format!("blobs/sha256/{}", hexof(&l1)),
        );
        let mut e = vec![
            E::F("index.json", index),
            E::F(&bc, cfg.clone()),
            E::F(&bm, m.to_vec()),
        ];
        if with_layer {
            e.push(E::F(&bl, l1.clone()));
        }
        archive(&e)
    };
    // The layer blob is missing.
    expect_bad(
        &f,
        &build(&manifest(&sha(&l1), l1.len()), false),
        "has no blob",
    );
    // The descriptor's size is wrong.
    expect_bad(
        &f,
        &build(&manifest(&sha(&l1), l1.len() + 1), true),
        "descriptor says",
    );
    // A layer that is not the config's diff ID (here: another valid blob).
    expect_bad(&f, &build(&manifest(&sha(&cfg), cfg.len()), true), "");
    // Sanity: the right one loads.
    let (loaded, _) = load(&f.store, &build(&manifest(&sha(&l1), l1.len()), true)).unwrap();
    assert_eq!(loaded[0].refs, vec![r("bad:1")]);
}

#[test]
fn names_are_cleaned() {
    assert_eq!(
        clean_name("./manifest.json").unwrap().as_deref(),
        Some("manifest.json")
    );
    assert_eq!(
        clean_name("blobs//sha256/./x").unwrap().as_deref(),
        Some("blobs/sha256/x")
    );
    assert_eq!(clean_name("./").unwrap(), None);
    assert!(clean_name("a/../b").is_err());
    assert!(clean_name("/a").is_err());
}

#[test]
fn save_writes_nothing_but_what_it_should() {
    // An image with no layers saves and loads too.
    let a = store();
    let c = ImageConfig {
        architecture: host_arch().into(),
        os: "linux".into(),
        ..Default::default()
    };
    let d = a.store.blobs().put(&c.to_bytes()).unwrap();
    let id = a.store.add_image(&d, None, &[]).unwrap();
    let mut out = Vec::new();
    a.store
        .save(
            &[SaveRequest {
                id: id.clone(),
                refs: vec![r("scratchy:1")],
            }],
            &mut out,
        )
        .unwrap();
    let ents = entries(&out);
    let names: BTreeMap<&str, ()> = ents.iter().map(|e| (e.0.as_str(), ())).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    assert!(
        !names.contains_key("repositories"),
        "no top layer, no repositories entry"
    );
    let b = store();
    let (loaded, _) = load(&b.store, &out).unwrap();
    assert_eq!(
        loaded,
        vec![LoadedImage {
            id,
            refs: vec![r("scratchy:1")]
        }]
    );
}
