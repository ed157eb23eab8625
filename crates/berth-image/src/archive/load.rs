//! `load`: a docker-archive or OCI-layout tar becomes images and tags.
//!
//! Three steps, so that a bad archive adds nothing:
//!
//! 1. [`Staged::stage`] reads the stream once into a temp dir.
//! 2. [`plan`] reads the manifests (manifest.json, else index.json) and
//!    every config, and checks what can be checked without unpacking:
//!    digests, layer counts, that every named file is there.
//! 3. Every layer of every image is unpacked (or found) under one lease,
//!    verified against its diff ID; only then are configs stored and image
//!    rows and tags added. On any error the lease is dropped and gc removes
//!    what was unpacked.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read};

use berth_api::Reference;
use berth_store::{Digest, LayerState};

use super::docker_archive::{ManifestItem, Repositories, MANIFEST_FILE, REPOSITORIES_FILE};
use super::oci_layout::{self as oci, Descriptor, Index, Manifest, Sniff, INDEX_FILE};
use super::stage::{Staged, StagedFile};
use super::LoadedImage;
use crate::compression::{self, HashingReader};
use crate::layers::Lease;
use crate::unpack::{UnpackError, UnpackOptions};
use crate::{chain_ids, host_arch, layer_media_type, ImageConfig, ImageError, ImageStore};

/// Deepest nesting of indexes followed.
const MAX_INDEX_DEPTH: usize = 8;

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::BadArchive(msg.into())
}

/// One image of the archive, checked but not yet added.
#[derive(Debug)]
struct Plan {
    /// The config bytes, verbatim.
    config: Vec<u8>,
    /// Their digest: the image ID.
    id: Digest,
    diff_ids: Vec<String>,
    /// The layer files (names as the manifest gives them), bottom first.
    layers: Vec<(String, StagedFile)>,
    refs: Vec<Reference>,
    /// The parent image named by manifest.json.
    parent: Option<String>,
    /// The top layer's legacy ID (docker-archive), to match `repositories`.
    top_id: Option<String>,
}

impl ImageStore {
    /// Reads a docker-archive or OCI-layout tar (plain or compressed stream),
    /// adds its images and tags. `progress` gets one line per event:
    /// "Loaded image: busybox:latest", "Loaded image ID: sha256:…", and
    /// "The image busybox:latest already exists, renaming the old one with
    /// ID sha256:… to empty string" when a tag moves.
    ///
    /// A bad archive fails with [`ImageError::BadArchive`] and adds nothing.
    pub fn load<R: Read>(
        &self,
        r: R,
        progress: &mut dyn FnMut(String),
    ) -> Result<Vec<LoadedImage>, ImageError> {
        let staged = Staged::stage(r, &self.tmp_dir())?;
        let plans = plan(&staged)?;
        let mut lease = self.layers().lease();
        let result = self.apply(&plans, &mut lease, progress);
        drop(lease);
        drop(staged);
        if result.is_err() {
            // Layers unpacked for images that never got a row, and their blobs.
            if let Err(e) = self.gc_layers() {
                tracing::warn!(error = %e, "cleaning up after a failed load");
            }
        }
        result
    }

    fn apply(
        &self,
        plans: &[Plan],
        lease: &mut Lease,
        progress: &mut dyn FnMut(String),
    ) -> Result<Vec<LoadedImage>, ImageError> {
        for p in plans {
            let chains = chain_ids(&p.diff_ids);
            for (i, (name, file)) in p.layers.iter().enumerate() {
                let parent = i.checked_sub(1).map(|j| chains[j].as_str());
                self.ensure_layer(lease, name, file, &chains[i], parent, &p.diff_ids[i])?;
            }
        }
        let ids: HashMap<&str, &Plan> = plans.iter().map(|p| (p.id.as_str(), p)).collect();
        let mut out = Vec::with_capacity(plans.len());
        for p in plans {
            let digest = self.blobs().put(&p.config)?;
            if digest != p.id {
                return Err(ImageError::Store(berth_store::StoreError::DigestMismatch {
                    expected: p.id.to_string(),
                    actual: digest.to_string(),
                }));
            }
            // Like docker, a parent is kept only when it came in the same
            // archive and really is a parent (its layers a prefix of ours).
            let parent = p.parent.as_deref().filter(|parent| {
                ids.get(parent).is_some_and(|pp| {
                    pp.id != p.id
                        && pp.diff_ids.len() < p.diff_ids.len()
                        && p.diff_ids.starts_with(&pp.diff_ids)
                })
            });
            let mut lines = Vec::new();
            for r in &p.refs {
                match self.meta().tag(&r.to_string())? {
                    Some(prev) if prev != p.id.as_str() => lines.push(format!(
                        "The image {} already exists, renaming the old one with ID {prev} to empty string",
                        r.familiar_string()
                    )),
                    _ => {}
                }
                lines.push(format!("Loaded image: {}", r.familiar_string()));
            }
            let id = self.add_image(&digest, parent, &p.refs)?;
            if p.refs.is_empty() {
                lines.push(format!("Loaded image ID: {id}"));
            }
            for l in lines {
                progress(l);
            }
            out.push(LoadedImage {
                id,
                refs: p.refs.clone(),
            });
        }
        Ok(out)
    }

    /// Makes sure layer `chain` is unpacked and has a blob, leased.
    fn ensure_layer(
        &self,
        lease: &mut Lease,
        name: &str,
        file: &StagedFile,
        chain: &str,
        parent: Option<&str>,
        diff_id: &str,
    ) -> Result<(), ImageError> {
        // Leased before looking, so gc cannot take it in between.
        lease.add(chain);
        if let Some(row) = self.meta().layer(chain)? {
            if row.state == LayerState::Ready {
                if row.blob_digest.is_none() {
                    self.attach_blob(name, file, chain, diff_id)?;
                }
                return Ok(());
            }
        }
        let raw = BufReader::with_capacity(256 * 1024, open(file)?);
        let (layer, comp) = self
            .layers()
            .unpack(lease, raw, parent, Some(diff_id), &UnpackOptions::default())
            .map_err(|e| layer_err(name, e))?;
        if !layer.existed || layer.row.blob_digest.is_none() {
            // The layer as the archive has it (the plain layer.tar, or the
            // compressed blob), checked against what staging hashed.
            let (d, _) = self
                .blobs()
                .put_reader(&mut open(file)?, Some(&file.digest))?;
            self.meta()
                .set_layer_blob(chain, d.as_str(), layer_media_type(comp))?;
        }
        Ok(())
    }

    /// Gives a layer that exists without a blob the archive's copy, after
    /// checking that it holds the same content.
    fn attach_blob(
        &self,
        name: &str,
        file: &StagedFile,
        chain: &str,
        diff_id: &str,
    ) -> Result<(), ImageError> {
        let read_err = |e: io::Error| bad(format!("layer {name}: reading layer: {e}"));
        let (comp, plain) =
            compression::decompress(BufReader::new(open(file)?)).map_err(read_err)?;
        let mut h = HashingReader::new(plain);
        io::copy(&mut h, &mut io::sink()).map_err(read_err)?;
        let got = h.digest();
        if got != diff_id {
            return Err(bad(format!(
                "layer {name}: layer content does not match its digest: expected {diff_id}, got {got}"
            )));
        }
        let (d, _) = self
            .blobs()
            .put_reader(&mut open(file)?, Some(&file.digest))?;
        self.meta()
            .set_layer_blob(chain, d.as_str(), layer_media_type(comp))?;
        Ok(())
    }
}

fn open(f: &StagedFile) -> Result<File, ImageError> {
    File::open(&f.path).map_err(|e| ImageError::io("open", &f.path, e))
}

/// Names the layer in errors that are the archive's fault.
fn layer_err(name: &str, e: ImageError) -> ImageError {
    match e {
        ImageError::BadArchive(m) => bad(format!("layer {name}: {m}")),
        ImageError::Unpack(
            u @ (UnpackError::Malformed { .. }
            | UnpackError::Truncated { .. }
            | UnpackError::InvalidEntry { .. }),
        ) => bad(format!("layer {name}: {u}")),
        other => other,
    }
}

/// Reads the archive's manifests into plans, one per image (merged by ID).
fn plan(staged: &Staged) -> Result<Vec<Plan>, ImageError> {
    let plans = if staged.has(MANIFEST_FILE) {
        plan_docker(staged)?
    } else if staged.has(INDEX_FILE) {
        plan_oci(staged)?
    } else {
        return Err(bad(format!(
            "not an image archive: it has neither {MANIFEST_FILE} nor {INDEX_FILE}"
        )));
    };
    let mut merged: Vec<Plan> = Vec::with_capacity(plans.len());
    for p in plans {
        match merged.iter_mut().find(|m| m.id == p.id) {
            Some(m) => {
                for r in p.refs {
                    if !m.refs.contains(&r) {
                        m.refs.push(r);
                    }
                }
                m.parent = m.parent.take().or(p.parent);
            }
            None => merged.push(p),
        }
    }
    Ok(merged)
}

/// The digest a file name claims: `<hex>.json`, `sha256:<hex>`,
/// `blobs/sha256/<hex>`.
fn digest_in_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = base.strip_prefix("sha256:").unwrap_or(base);
    let base = base.strip_suffix(".json").unwrap_or(base);
    Digest::parse(&format!("sha256:{base}")).ok()
}

/// Reads, verifies and parses an image config.
fn read_config(
    staged: &Staged,
    name: &str,
    expected: Option<&Digest>,
) -> Result<(Vec<u8>, Digest, ImageConfig), ImageError> {
    let (bytes, digest) = staged.read_small(name)?;
    if let Some(exp) = expected.cloned().or_else(|| digest_in_name(name)) {
        if exp != digest {
            return Err(bad(format!(
                "config {name} does not match its digest: expected {exp}, got {digest}"
            )));
        }
    }
    let config: ImageConfig = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("invalid image config {name}: {e}")))?;
    if !config.os.is_empty() && config.os != "linux" {
        return Err(bad(format!(
            "cannot load {} image {digest} on linux",
            config.os
        )));
    }
    for d in &config.rootfs.diff_ids {
        Digest::parse(d)
            .map_err(|_| bad(format!("invalid image config {name}: bad diff ID {d:?}")))?;
    }
    Ok((bytes, digest, config))
}

/// A docker-archive: `manifest.json` (and `repositories` for images
/// without RepoTags).
fn plan_docker(staged: &Staged) -> Result<Vec<Plan>, ImageError> {
    let (bytes, _) = staged.read_small(MANIFEST_FILE)?;
    let items: Option<Vec<ManifestItem>> =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid {MANIFEST_FILE}: {e}")))?;
    let items = items.ok_or_else(|| bad(format!("invalid {MANIFEST_FILE}: null")))?;
    let mut plans = Vec::with_capacity(items.len());
    let mut used_tags = HashSet::new();
    for item in items {
        let (config, id, cfg) = read_config(staged, &item.config, None)?;
        if item.layers.len() != cfg.rootfs.diff_ids.len() {
            return Err(bad(format!(
                "invalid {MANIFEST_FILE}: image {id} lists {} layers but its config has {}",
                item.layers.len(),
                cfg.rootfs.diff_ids.len()
            )));
        }
        let mut layers = Vec::with_capacity(item.layers.len());
        for l in &item.layers {
            let f = staged
                .file_for(l)
                .map_err(|e| bad(format!("{e} (a layer of image {id} in {MANIFEST_FILE})")))?;
            layers.push((l.clone(), f.clone()));
        }
        let mut refs = Vec::new();
        for t in item.repo_tags.iter().flatten() {
            let r = parse_tag(t)
                .map_err(|e| bad(format!("invalid tag {t:?} in {MANIFEST_FILE}: {e}")))?;
            used_tags.insert(r.to_string());
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
        let top_id = item.layers.last().and_then(|l| legacy_layer_id(l));
        plans.push(Plan {
            config,
            id,
            diff_ids: cfg.rootfs.diff_ids,
            layers,
            refs,
            parent: item.parent.filter(|p| !p.is_empty()),
            top_id,
        });
    }
    if staged.has(REPOSITORIES_FILE) {
        apply_repositories(staged, &mut plans, &used_tags);
    }
    Ok(plans)
}

/// `name:tag` as docker-archive writes it; a digest is not a tag.
fn parse_tag(t: &str) -> Result<Reference, ImageError> {
    let r = Reference::parse_normalized(t)?;
    if r.digest().is_some() {
        return Err(bad("a digest reference is not a tag"));
    }
    Ok(if r.is_name_only() {
        r.with_tag("latest")?
    } else {
        r
    })
}

/// The ID `repositories` uses for a layer path: `<id>/layer.tar` (before
/// Docker 25) or `blobs/sha256/<hex>`.
fn legacy_layer_id(path: &str) -> Option<String> {
    let clean = super::stage::clean_name(path).ok()??;
    if let Some(hex) = clean.strip_prefix("blobs/sha256/") {
        return Some(hex.to_string());
    }
    clean.strip_suffix("/layer.tar").map(str::to_string)
}

/// Tags from the legacy `repositories` file, for images whose manifest
/// entry has no RepoTags: a tag is taken when no manifest entry lists it
/// and exactly one untagged image has the top layer it names. (Docker 25+
/// names top layers by diff ID, which images can share.)
fn apply_repositories(staged: &Staged, plans: &mut [Plan], used: &HashSet<String>) {
    let repos: Repositories = match staged
        .read_small(REPOSITORIES_FILE)
        .map(|(b, _)| serde_json::from_slice(&b))
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "ignoring invalid repositories file in archive");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "ignoring unreadable repositories file in archive");
            return;
        }
    };
    let untagged: Vec<usize> = (0..plans.len())
        .filter(|&i| plans[i].refs.is_empty())
        .collect();
    for (name, tags) in &repos {
        for (tag, top) in tags {
            let Ok(r) = parse_tag(&format!("{name}:{tag}")) else {
                tracing::warn!(
                    name,
                    tag,
                    "ignoring invalid reference in archive's repositories file"
                );
                continue;
            };
            if used.contains(&r.to_string()) {
                continue;
            }
            let mut matching = untagged
                .iter()
                .filter(|&&i| plans[i].top_id.as_deref() == Some(top.as_str()));
            if let (Some(&i), None) = (matching.next(), matching.next()) {
                if !plans[i].refs.contains(&r) {
                    plans[i].refs.push(r);
                }
            }
        }
    }
}

/// The staged blob a descriptor names, checked against its digest and size.
fn blob<'s>(
    staged: &'s Staged,
    d: &Descriptor,
    what: &str,
) -> Result<(&'s StagedFile, Digest), ImageError> {
    let digest = Digest::parse(&d.digest)
        .map_err(|_| bad(format!("invalid digest {:?} of {what}", d.digest)))?;
    let f = staged
        .file_for(&oci::blob_path(digest.hex()))
        .map_err(|_| bad(format!("archive has no blob {digest} ({what})")))?;
    if f.digest != digest {
        return Err(bad(format!(
            "blob of {what} does not match its digest: expected {digest}, got {}",
            f.digest
        )));
    }
    if d.size > 0 && f.size != d.size as u64 {
        return Err(bad(format!(
            "blob {digest} of {what} is {} bytes, its descriptor says {}",
            f.size, d.size
        )));
    }
    Ok((f, digest))
}

/// An OCI image layout: `index.json`, nested indexes, manifests.
fn plan_oci(staged: &Staged) -> Result<Vec<Plan>, ImageError> {
    let (bytes, _) = staged.read_small(INDEX_FILE)?;
    let index: Index =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid {INDEX_FILE}: {e}")))?;
    let mut plans = Vec::new();
    for d in &index.manifests {
        let names = names_of(d);
        walk(staged, d, &names, &[], 0, &mut plans)?;
    }
    Ok(plans)
}

/// The image names an `index.json` entry carries: containerd's full name,
/// else the OCI ref name when it is a reference rather than a bare tag
/// (a bare tag names no repository, so it cannot name an image here).
fn names_of(d: &Descriptor) -> Vec<String> {
    if let Some(n) = d
        .annotations
        .get(oci::ANNOTATION_IMAGE_NAME)
        .filter(|n| !n.is_empty())
    {
        return vec![n.clone()];
    }
    match d.annotations.get(oci::ANNOTATION_REF_NAME) {
        Some(n) if n.contains(['/', ':', '@']) => vec![n.clone()],
        _ => Vec::new(),
    }
}

/// Follows a descriptor to its manifest(s) and plans the image.
/// `via` holds the digests of the indexes passed on the way, which a
/// digest reference may name.
fn walk(
    staged: &Staged,
    d: &Descriptor,
    names: &[String],
    via: &[Digest],
    depth: usize,
    plans: &mut Vec<Plan>,
) -> Result<(), ImageError> {
    if depth > MAX_INDEX_DEPTH {
        return Err(bad("image indexes nested too deeply"));
    }
    let (f, digest) = blob(staged, d, &format!("manifest {}", d.digest))?;
    let (bytes, _) = staged.read_small(&oci::blob_path(digest.hex()))?;
    debug_assert_eq!(f.digest, digest);
    let kind = if d.media_type.is_empty() {
        let s: Sniff = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("invalid manifest {digest}: {e}")))?;
        match s.media_type {
            Some(m) if !m.is_empty() => m,
            _ if s.manifests.is_some() => oci::MEDIA_OCI_INDEX.to_string(),
            _ if s.config.is_some() => oci::MEDIA_OCI_MANIFEST.to_string(),
            _ => String::new(),
        }
    } else {
        d.media_type.clone()
    };
    let mut via = via.to_vec();
    via.push(digest.clone());
    if oci::is_index_type(&kind) {
        let idx: Index = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("invalid index {digest}: {e}")))?;
        let child = choose_platform(staged, &idx).ok_or_else(|| {
            bad(format!(
                "index {digest} has no image for linux/{} in the archive",
                host_arch()
            ))
        })?;
        return walk(staged, child, names, &via, depth + 1, plans);
    }
    if !oci::is_manifest_type(&kind) {
        return Err(bad(format!("unsupported media type {kind:?} of {digest}")));
    }
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("invalid manifest {digest}: {e}")))?;
    if !m.config.media_type.is_empty() && !oci::is_config_type(&m.config.media_type) {
        return Err(bad(format!(
            "manifest {digest} is not a container image (config media type {:?})",
            m.config.media_type
        )));
    }
    let (_, config_digest) = blob(
        staged,
        &m.config,
        &format!("the config of manifest {digest}"),
    )?;
    let (config, id, cfg) = read_config(
        staged,
        &oci::blob_path(config_digest.hex()),
        Some(&config_digest),
    )?;
    if m.layers.len() != cfg.rootfs.diff_ids.len() {
        return Err(bad(format!(
            "manifest {digest} lists {} layers but its config has {}",
            m.layers.len(),
            cfg.rootfs.diff_ids.len()
        )));
    }
    let mut layers = Vec::with_capacity(m.layers.len());
    for (i, l) in m.layers.iter().enumerate() {
        if !l.media_type.is_empty() && !oci::is_layer_type(&l.media_type) {
            return Err(bad(format!(
                "layer {} of manifest {digest} has unsupported media type {:?}",
                l.digest, l.media_type
            )));
        }
        let (f, ld) = blob(staged, l, &format!("layer {i} of manifest {digest}"))?;
        layers.push((oci::blob_path(ld.hex()), f.clone()));
    }
    let mut refs = Vec::new();
    for n in names {
        let r = Reference::parse_normalized(n)
            .map_err(|e| bad(format!("invalid image name {n:?} in {INDEX_FILE}: {e}")))?;
        let r = match r.digest() {
            // A digest reference must name what it points at.
            Some(rd) if via.iter().any(|v| v.as_str() == rd) => r,
            Some(rd) => {
                tracing::warn!(name = %n, digest = rd, "ignoring image name whose digest is not the loaded manifest's");
                continue;
            }
            None if r.is_name_only() => r.with_tag("latest")?,
            None => r,
        };
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    plans.push(Plan {
        config,
        id,
        diff_ids: cfg.rootfs.diff_ids,
        layers,
        refs,
        parent: None,
        top_id: None,
    });
    Ok(())
}

/// The entry of a (multi-platform) index for this machine: a Linux image
/// of the host architecture, or one without a platform, whose blob the
/// archive has. Attestations are skipped.
fn choose_platform<'i>(staged: &Staged, idx: &'i Index) -> Option<&'i Descriptor> {
    idx.manifests.iter().find(|d| {
        if d.annotations
            .get(oci::ANNOTATION_REFERENCE_TYPE)
            .is_some_and(|t| t == "attestation-manifest")
        {
            return false;
        }
        let fits = match &d.platform {
            None => true,
            Some(p) => p.os == "linux" && p.architecture == host_arch(),
        };
        let present =
            Digest::parse(&d.digest).is_ok_and(|dg| staged.has(&oci::blob_path(dg.hex())));
        fits && present
    })
}
