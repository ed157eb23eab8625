//! `berth registry gc`: mark and sweep.
//!
//! Mark: every manifest of every repository (tagged or not) marks itself,
//! its config and layers, and the manifests it indexes. Sweep: every blob
//! not marked is deleted — unless it is younger than the grace period
//! (default 1 h). "Young" is the blob's mtime, which the server sets to now
//! whenever a push relies on the blob: when an upload commits it, when it
//! is mounted, when a client HEADs it (that is how a push learns it need
//! not upload it), and when a manifest naming it is pushed. So a push in
//! progress, whose manifest is not yet stored, keeps its blobs for the
//! grace period after its last step. Blobs still in an upload are not in
//! `blobs/` at all and cannot be touched.
//!
//! The race left — a manifest push checking a blob while the sweep deletes
//! it — is closed by `gc.lock`: the server holds it shared while it checks
//! and links blobs and stores manifests; the sweep holds it exclusive, and
//! lists the blobs' ages only once it has it. A push that comes after the
//! sweep finds the blob gone and is refused (MANIFEST_BLOB_UNKNOWN), never
//! stored pointing at nothing. gc may run while the server serves.
//!
//! It also removes `_layers` links to the blobs it deleted, uploads idle
//! for longer than `upload_purge_after` and temp files left by a crash.

use std::collections::HashSet;
use std::io::Write;
use std::time::SystemTime;

use super::config::Config;
use super::manifests::Manifest;
use super::names::Digest;
use super::storage::{remove_file_if_exists, Storage};
use crate::RegistryError;

/// What one run found and did.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) repositories: usize,
    pub(crate) manifests: usize,
    pub(crate) in_use: usize,
    pub(crate) deleted: usize,
    pub(crate) deleted_bytes: u64,
    pub(crate) kept_young: usize,
    pub(crate) uploads_purged: usize,
}

/// Runs gc on the store of `cfg`, writing one line per deletion to `out`.
pub(crate) fn run(
    cfg: &Config,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<Report, RegistryError> {
    let root = &cfg.root;
    if !root.join("blobs").is_dir() || !root.join("repositories").is_dir() {
        return Err(RegistryError::setting(
            "--root",
            format!(
                "{} is not a registry store (no blobs/ or repositories/)",
                root.display()
            ),
        ));
    }
    let store = Storage::open(root)?;
    let now = SystemTime::now();
    let cutoff = now
        .checked_sub(cfg.grace_period()?)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let purge_cutoff = now
        .checked_sub(cfg.upload_purge_after()?)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let verb = if dry_run { "would delete" } else { "deleted" };
    let mut report = Report::default();
    let w = |out: &mut dyn Write, line: String| {
        writeln!(out, "{line}").map_err(|e| RegistryError::io("<stdout>", e))
    };

    // Mark.
    let repos = store.all_repositories()?;
    report.repositories = repos.len();
    let mut marked: HashSet<Digest> = HashSet::new();
    for repo in &repos {
        for d in store.revisions(repo)? {
            report.manifests += 1;
            marked.insert(d.clone());
            let Some(bytes) = store.read_blob(&d)? else {
                tracing::warn!("manifest {d} of {repo} has no content");
                continue;
            };
            let m: Manifest =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::Manifest {
                    repo: repo.clone(),
                    digest: d.to_string(),
                    msg: format!("cannot be read, so gc cannot tell what it uses: {e}"),
                })?;
            let named = m
                .config
                .iter()
                .chain(m.layers.iter().flatten())
                .chain(m.children());
            marked.extend(named.filter_map(|desc| Digest::parse(&desc.digest)));
        }
    }

    // Sweep, with pushes held off.
    let lock = if dry_run {
        None
    } else {
        Some(store.lock_exclusive()?)
    };
    let mut gone: HashSet<Digest> = HashSet::new();
    for (d, size, mtime) in store.all_blobs()? {
        if marked.contains(&d) {
            report.in_use += 1;
            continue;
        }
        if mtime > cutoff {
            report.kept_young += 1;
            continue;
        }
        if !dry_run {
            store.remove_blob(&d)?;
        }
        w(out, format!("{verb} blob {d} ({size} bytes)"))?;
        report.deleted += 1;
        report.deleted_bytes += size;
        gone.insert(d);
    }
    if !dry_run {
        for repo in &repos {
            for d in store.layers(repo)? {
                if gone.contains(&d) {
                    store.unlink_layer(repo, &d)?;
                }
            }
        }
        for p in store.stale_temp_files(cutoff)? {
            remove_file_if_exists(&p)?;
        }
    }
    drop(lock);

    for (id, mtime) in store.uploads()? {
        if mtime < purge_cutoff {
            if !dry_run {
                store.remove_upload(&id)?;
            }
            w(out, format!("{verb} upload {id}"))?;
            report.uploads_purged += 1;
        }
    }
    w(
        out,
        format!(
            "gc: {} repositories, {} manifests, {} blobs in use; {} {} blobs ({} bytes); \
             {} unused blobs kept (younger than {}); {} stale uploads",
            report.repositories,
            report.manifests,
            report.in_use,
            verb,
            report.deleted,
            report.deleted_bytes,
            report.kept_young,
            cfg.gc.grace_period,
            report.uploads_purged,
        ),
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::names::Algo;

    fn cfg(root: &std::path::Path, grace: &str) -> Config {
        let mut c = Config {
            root: root.to_owned(),
            ..Default::default()
        };
        c.gc.grace_period = grace.into();
        c
    }

    #[test]
    fn marks_what_manifests_name_and_spares_young_blobs() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Storage::open(tmp.path()).unwrap();
        let layer = Digest::of(Algo::Sha256, b"layer");
        let config = Digest::of(Algo::Sha256, b"{}");
        let orphan = Digest::of(Algo::Sha256, b"orphan");
        for (d, b) in [
            (&layer, &b"layer"[..]),
            (&config, b"{}"),
            (&orphan, b"orphan"),
        ] {
            s.write_blob(d, b).unwrap();
            s.link_layer("r", d).unwrap();
        }
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":5}}]}}"#
        );
        let md = Digest::of(Algo::Sha256, m.as_bytes());
        s.write_blob(&md, m.as_bytes()).unwrap();
        s.put_revision("r", &md, "application/vnd.oci.image.manifest.v1+json")
            .unwrap();

        // Everything is young: nothing goes.
        let mut out = Vec::new();
        let r = run(&cfg(tmp.path(), "1h"), false, &mut out).unwrap();
        assert_eq!((r.deleted, r.kept_young, r.in_use), (0, 1, 3));

        // Dry run with no grace: reports the orphan, deletes nothing.
        let r = run(&cfg(tmp.path(), "0s"), true, &mut out).unwrap();
        assert_eq!(r.deleted, 1);
        assert!(s.blob_stat(&orphan).unwrap().is_some());

        let r = run(&cfg(tmp.path(), "0s"), false, &mut out).unwrap();
        assert_eq!(r.deleted, 1);
        assert!(s.blob_stat(&orphan).unwrap().is_none());
        assert!(!s.has_layer("r", &orphan));
        assert!(s.blob_stat(&layer).unwrap().is_some());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(&format!("deleted blob {orphan}")), "{text}");
    }
}
