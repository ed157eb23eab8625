//! [`ImageStore`]: images, tags and layers over the blob store and the
//! metadata database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::image::DeleteItem;
use berth_api::reference::{is_full_id, is_id_prefix};
use berth_api::Reference;
use berth_store::{BlobStore, Digest, ImageRow, Metadata};

use crate::layers::Layers;
use crate::{ImageConfig, ImageError};

/// An image found by name or ID.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// Its row (ID, chain).
    pub row: ImageRow,
    /// Its parsed config.
    pub config: ImageConfig,
}

impl ResolvedImage {
    /// `sha256:<hex>`.
    pub fn id(&self) -> &str {
        &self.row.id
    }
}

/// What `delete` did.
#[derive(Debug, Clone, Default)]
pub struct DeleteOutcome {
    /// Docker's `Untagged`/`Deleted` entries, in order.
    pub items: Vec<DeleteItem>,
}

/// A container that uses an image, as far as `delete` needs to know.
#[derive(Debug, Clone)]
pub struct ImageUser {
    /// Container ID.
    pub id: String,
    /// Running (cannot be forced) or not.
    pub running: bool,
}

/// Images, tags and layers.
#[derive(Debug)]
pub struct ImageStore {
    blobs: BlobStore,
    meta: Arc<Metadata>,
    layers: Layers,
    root: PathBuf,
}

impl ImageStore {
    /// Opens the store under `data_root` (`blobs/`, `layers/`), repairing
    /// what an interrupted operation left: half-unpacked layers, layers no
    /// image uses, blobs no row refers to.
    pub fn open(data_root: &Path, meta: Arc<Metadata>) -> Result<ImageStore, ImageError> {
        let blobs = BlobStore::open(data_root.join("blobs"))?;
        // Staging space of loads and imports; whatever is there was interrupted.
        let tmp = data_root.join("tmp");
        // A build interrupted by a crash may have left overlays mounted here.
        crate::mount::unmount_under(&tmp);
        crate::layers::remove_tree(&tmp)?;
        std::fs::create_dir_all(&tmp).map_err(|e| ImageError::io("create", &tmp, e))?;
        let layers = Layers::open(data_root.join("layers"), meta.clone())?;
        let store = ImageStore {
            blobs,
            meta,
            layers,
            root: data_root.to_path_buf(),
        };
        store.sweep_blobs()?;
        Ok(store)
    }

    fn sweep_blobs(&self) -> Result<(), ImageError> {
        let referenced = self.meta.referenced_blobs()?;
        for d in self.blobs.list()? {
            if !referenced.contains(d.as_str()) {
                tracing::info!(blob = %d, "removing blob no image refers to");
                self.blobs.delete(&d)?;
            }
        }
        Ok(())
    }

    /// The blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The metadata database.
    pub fn meta(&self) -> &Arc<Metadata> {
        &self.meta
    }

    /// The data root this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Scratch space on the data root's filesystem, emptied at every start.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn layers(&self) -> &Layers {
        &self.layers
    }

    /// Loads and parses an image's config blob.
    pub fn config(&self, id: &str) -> Result<ImageConfig, ImageError> {
        let d = Digest::parse(id)?;
        let bytes = self.blobs.read(&d)?;
        serde_json::from_slice(&bytes).map_err(|source| ImageError::BadConfig {
            digest: id.to_string(),
            source,
        })
    }

    /// Finds an image the way dockerd does: a full ID (with or without
    /// `sha256:`), a reference (`busybox` means `busybox:latest`; digests
    /// too), then an ID prefix.
    pub fn resolve(&self, name: &str) -> Result<ResolvedImage, ImageError> {
        let id = self.resolve_id(name)?;
        let row = self
            .meta
            .image(&id)?
            .ok_or_else(|| ImageError::NotFound(name.to_string()))?;
        let config = self.config(&id)?;
        Ok(ResolvedImage { row, config })
    }

    fn resolve_id(&self, name: &str) -> Result<String, ImageError> {
        let bare = name.strip_prefix("sha256:").unwrap_or(name);
        if is_full_id(bare) {
            let id = format!("sha256:{bare}");
            return match self.meta.image(&id)? {
                Some(_) => Ok(id),
                None => Err(ImageError::NotFound(name.to_string())),
            };
        }
        let parsed = Reference::parse_normalized(name);
        if let Ok(r) = &parsed {
            let full = if r.is_name_only() {
                r.with_tag("latest")?
            } else {
                r.clone()
            };
            if let Some(id) = self.meta.tag(&full.to_string())? {
                return Ok(id);
            }
            if !r.is_name_only() || !is_id_prefix(name) {
                return Err(ImageError::NotFound(full.familiar_string()));
            }
        }
        if is_id_prefix(name) || name.starts_with("sha256:") && is_id_prefix(bare) {
            let ids = self.meta.image_ids_with_prefix(&format!("sha256:{bare}"))?;
            return match ids.len() {
                1 => Ok(ids.into_iter().next().expect("one")),
                0 => Err(ImageError::NotFound(match &parsed {
                    Ok(r) => r
                        .with_tag("latest")
                        .map(|r| r.familiar_string())
                        .unwrap_or_else(|_| name.to_string()),
                    Err(_) => name.to_string(),
                })),
                _ => Err(ImageError::Ambiguous(name.to_string())),
            };
        }
        match parsed {
            Ok(_) => Err(ImageError::NotFound(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// All images (newest first) with their configs.
    pub fn list(&self) -> Result<Vec<ResolvedImage>, ImageError> {
        let mut out = Vec::new();
        for row in self.meta.images()? {
            let config = self.config(&row.id)?;
            out.push(ResolvedImage { row, config });
        }
        Ok(out)
    }

    /// Tags (full references) of an image, split into (tags, digests).
    pub fn references(&self, id: &str) -> Result<(Vec<Reference>, Vec<Reference>), ImageError> {
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for name in self.meta.tags_of(id)? {
            if let Ok(r) = Reference::parse_normalized(&name) {
                if r.digest().is_some() {
                    digests.push(r);
                } else {
                    tags.push(r);
                }
            }
        }
        Ok((tags, digests))
    }

    /// Unpacked size of an image: the sum of its layers.
    pub fn size(&self, row: &ImageRow) -> Result<i64, ImageError> {
        let mut total = 0;
        for c in &row.chain_ids {
            if let Some(l) = self.meta.layer(c)? {
                total += l.size;
            }
        }
        Ok(total)
    }

    /// Points `reference` (tag added if absent) at the image.
    pub fn tag(&self, id: &str, reference: &Reference) -> Result<(), ImageError> {
        let r = if reference.is_name_only() {
            reference.with_tag("latest")?
        } else {
            reference.clone()
        };
        self.meta.set_tag(&r.to_string(), id)?;
        Ok(())
    }

    /// Lower dirs (topmost first) for a container of this image.
    pub fn lower_dirs(&self, row: &ImageRow) -> Result<Vec<PathBuf>, ImageError> {
        self.layers.lower_dirs(&row.chain_ids)
    }

    /// Lower dirs (topmost first) for a container whose image's top layer
    /// is `top` (none for an image without layers). Works even after the
    /// image itself was force-removed, as the container keeps its layers.
    pub fn lower_dirs_from(&self, top: Option<&str>) -> Result<Vec<PathBuf>, ImageError> {
        let mut chain = Vec::new();
        let mut cur = top.map(str::to_string);
        while let Some(c) = cur {
            let row = self
                .meta
                .layer(&c)?
                .ok_or_else(|| ImageError::NotFound(format!("layer {c}")))?;
            cur = row.parent.clone();
            chain.push(c);
        }
        chain.reverse();
        self.layers.lower_dirs(&chain)
    }

    /// Removes unused layers; returns their chain IDs.
    pub fn gc_layers(&self) -> Result<Vec<String>, ImageError> {
        let removed = self.layers.gc()?;
        for row in &removed {
            if let Some(b) = &row.blob_digest {
                self.release_blob(b)?;
            }
        }
        Ok(removed.into_iter().map(|r| r.chain_id).collect())
    }

    /// Deletes a blob once no row refers to it any more. Only named blobs
    /// are touched: a full sweep could take a blob that a concurrent import
    /// has written but not yet recorded (the sweep at start is safe).
    fn release_blob(&self, digest: &str) -> Result<(), ImageError> {
        if !self.meta.blob_referenced(digest)? {
            if let Ok(d) = Digest::parse(digest) {
                self.blobs.delete(&d)?;
            }
        }
        Ok(())
    }

    /// Adds an image whose config blob is already stored and whose layers
    /// are all unpacked; tags it. Returns the image ID.
    pub fn add_image(
        &self,
        config_digest: &Digest,
        parent: Option<&str>,
        tags: &[Reference],
    ) -> Result<String, ImageError> {
        let config = self.config(config_digest.as_str())?;
        let chains = crate::chain_ids(&config.rootfs.diff_ids);
        // Verify every layer is present before the image becomes visible.
        self.layers.lower_dirs(&chains)?;
        let names: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        self.meta
            .insert_image(config_digest.as_str(), parent, &chains, &names)?;
        Ok(config_digest.to_string())
    }

    /// `docker rmi` semantics (dockerd's ImageDelete): a reference is
    /// untagged, and the image goes when no reference is left; an ID deletes
    /// the image. Containers using it and child images are conflicts; `force`
    /// overrides the soft ones (stopped containers, other tags). With
    /// `prune` (docker's default; `--no-prune` turns it off) the untagged
    /// parents a build left go too (see `prune_parents`).
    pub fn delete(
        &self,
        name: &str,
        force: bool,
        prune: bool,
        users: &dyn Fn(&str) -> Vec<ImageUser>,
    ) -> Result<DeleteOutcome, ImageError> {
        let img = self.resolve(name)?;
        let id = img.id().to_string();
        let mut refs = self.meta.tags_of(&id)?;
        let mut out = DeleteOutcome::default();
        let mut removed_ref = false;

        if let Some(r) = self.ref_for_name(name, &refs) {
            if !force && is_single_reference(&refs) {
                if let Some(u) = users(&id).first() {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                        &u.id[..12],
                        &id[7..19]
                    )));
                }
            }
            self.meta.remove_tag(&r)?;
            out.items.push(untagged(&r));
            refs.retain(|t| t != &r);
            // A removed tag takes the digest references of its repository
            // with it when no other tag of that repository is left.
            if !r.contains('@') {
                let repo = repo_of(&r);
                if !refs.iter().any(|t| !t.contains('@') && repo_of(t) == repo) {
                    for d in refs
                        .clone()
                        .iter()
                        .filter(|t| t.contains('@') && repo_of(t) == repo)
                    {
                        self.meta.remove_tag(d)?;
                        out.items.push(untagged(d));
                        refs.retain(|t| t != d);
                    }
                }
            }
            if !refs.is_empty() {
                return Ok(out);
            }
            removed_ref = true;
        } else if is_single_reference(&refs) {
            self.check_conflicts(&id, force, false, users)?;
            for r in &refs {
                self.meta.remove_tag(r)?;
                out.items.push(untagged(r));
            }
            refs.clear();
        }

        if let Err(e) = self.check_conflicts(&id, force, !refs.is_empty(), users) {
            // Having untagged by name, an image still in use just stays as
            // it is (dangling) rather than failing the whole command.
            if removed_ref {
                return Ok(out);
            }
            return Err(e);
        }
        for r in &refs {
            self.meta.remove_tag(r)?;
            out.items.push(untagged(r));
        }
        self.meta.delete_image(&id)?;
        out.items.push(DeleteItem {
            untagged: None,
            deleted: Some(id.clone()),
        });
        self.release_blob(&id)?;
        if prune {
            self.prune_parents(img.row.parent.clone(), users, &mut out);
        }
        for chain in self.gc_layers()? {
            out.items.push(DeleteItem {
                untagged: None,
                deleted: Some(chain),
            });
        }
        Ok(out)
    }

    /// dockerd's implicit delete of a deleted image's parent, and of its
    /// parent in turn: each goes while it has no reference, no other child
    /// and no container; the first that must stay ends it, quietly (never
    /// forced; a failure only stops it: the image asked for is gone).
    fn prune_parents(
        &self,
        mut parent: Option<String>,
        users: &dyn Fn(&str) -> Vec<ImageUser>,
        out: &mut DeleteOutcome,
    ) {
        while let Some(p) = parent {
            let Ok(Some(row)) = self.meta.image(&p) else {
                break;
            };
            let unused = self.meta.tags_of(&p).is_ok_and(|t| t.is_empty())
                && self.meta.children(&p).is_ok_and(|c| c.is_empty())
                && users(&p).is_empty();
            if !unused || self.meta.delete_image(&p).is_err() {
                break;
            }
            out.items.push(DeleteItem {
                untagged: None,
                deleted: Some(p.clone()),
            });
            if self.release_blob(&p).is_err() {
                break;
            }
            parent = row.parent;
        }
    }

    /// dockerd's checkImageDeleteConflict: hard conflicts (running
    /// containers, child images) always count; soft ones (stopped
    /// containers, remaining references) only without `force`.
    fn check_conflicts(
        &self,
        id: &str,
        force: bool,
        has_refs: bool,
        users: &dyn Fn(&str) -> Vec<ImageUser>,
    ) -> Result<(), ImageError> {
        let short = &id[7..19];
        let hard = |why: String| {
            ImageError::Conflict(format!(
                "conflict: unable to delete {short} (cannot be forced) - {why}"
            ))
        };
        let soft = |why: String| {
            ImageError::Conflict(format!(
                "conflict: unable to delete {short} (must be forced) - {why}"
            ))
        };
        if !self.meta.children(id)?.is_empty() {
            return Err(hard("image has dependent child images".into()));
        }
        let using = users(id);
        if let Some(u) = using.iter().find(|u| u.running) {
            return Err(hard(format!(
                "image is being used by running container {}",
                &u.id[..12]
            )));
        }
        if !force {
            if has_refs {
                return Err(soft("image is referenced in multiple repositories".into()));
            }
            if let Some(u) = using.first() {
                return Err(soft(format!(
                    "image is being used by stopped container {}",
                    &u.id[..12]
                )));
            }
        }
        Ok(())
    }

    fn ref_for_name(&self, name: &str, refs: &[String]) -> Option<String> {
        let bare = name.strip_prefix("sha256:").unwrap_or(name);
        if is_full_id(bare) {
            return None;
        }
        let r = Reference::parse_normalized(name).ok()?;
        let full = if r.is_name_only() {
            r.with_tag("latest").ok()?
        } else {
            r
        };
        let s = full.to_string();
        refs.contains(&s).then_some(s)
    }
}

fn untagged(full: &str) -> DeleteItem {
    let shown = Reference::parse_normalized(full)
        .map(|r| r.familiar_string())
        .unwrap_or_else(|_| full.to_string());
    DeleteItem {
        untagged: Some(shown),
        deleted: None,
    }
}

/// The repository part of a full reference (`docker.io/library/busybox`).
fn repo_of(full: &str) -> &str {
    if let Some((name, _)) = full.split_once('@') {
        return name;
    }
    match full.rfind(':') {
        Some(i) if !full[i..].contains('/') => &full[..i],
        _ => full,
    }
}

/// dockerd's isSingleReference: at most one tag, and any digest references
/// belong to that tag's repository.
fn is_single_reference(refs: &[String]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let tags: Vec<&String> = refs.iter().filter(|r| !r.contains('@')).collect();
    if tags.len() > 1 {
        return false;
    }
    let digest_repos: std::collections::HashSet<&str> = refs
        .iter()
        .filter(|r| r.contains('@'))
        .map(|r| repo_of(r))
        .collect();
    let single = tags.first().copied().unwrap_or(&refs[0]);
    digest_repos.len() == 1 && digest_repos.contains(repo_of(single))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_reference_rule() {
        let t = |s: &str| s.to_string();
        assert!(!is_single_reference(&[]));
        assert!(is_single_reference(&[t("docker.io/library/a:1")]));
        assert!(!is_single_reference(&[
            t("docker.io/library/a:1"),
            t("docker.io/library/a:2")
        ]));
        assert!(is_single_reference(&[
            t("docker.io/library/a:1"),
            t("docker.io/library/a@sha256:00")
        ]));
        assert!(!is_single_reference(&[
            t("docker.io/library/a:1"),
            t("docker.io/library/b@sha256:00")
        ]));
        assert_eq!(repo_of("127.0.0.1:5000/x:tag"), "127.0.0.1:5000/x");
        assert_eq!(repo_of("127.0.0.1:5000/x"), "127.0.0.1:5000/x");
    }
}
