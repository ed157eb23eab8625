//! Pull and push: the daemon's side of the distribution client.
//!
//! A pull is resolved first (manifest, platform, config: every error a
//! user can cause is known before the progress stream starts, so it gets
//! its HTTP status), then run: layers download in parallel (bounded by
//! `max-concurrent-downloads`), each streamed straight through
//! decompression, verification and the safe unpacker into the layer
//! store, while its blob is kept. Layers present are skipped; a failed pull
//! keeps the layers it completed (each verified and whole), so the next
//! one resumes with them. The image row and tags are written last.
//!
//! A push uploads layers in parallel (`max-concurrent-uploads`), asks the
//! registry first (HEAD) and mounts from another repository of the same
//! registry when the blob is known to be there.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use berth_api::image::JsonMessage;
use berth_api::units::human_size;
use berth_api::Reference;
use berth_image::compression::Compression;
use berth_image::{chain_ids, ImageError};
use berth_registry::client::endpoint;
use berth_registry::client::manifest::{self, Manifest};
use berth_registry::client::{
    AuthConfig, Client, ClientConfig, ClientError, Mount, Platform, Repo, Target,
};
use berth_store::Metadata;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::Daemon;

/// How often a layer's progress is reported while it moves.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// A failure with the HTTP status the API answers (before the stream
/// starts) and Docker's text.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DistError {
    /// HTTP status.
    pub status: u16,
    /// The message.
    pub message: String,
}

impl DistError {
    fn new(status: u16, message: impl Into<String>) -> DistError {
        DistError {
            status,
            message: message.into(),
        }
    }
}

impl From<ClientError> for DistError {
    fn from(e: ClientError) -> Self {
        DistError::new(e.http_status(), e.to_string())
    }
}

impl From<ImageError> for DistError {
    fn from(e: ImageError) -> Self {
        let status = match e {
            ImageError::NotFound(_) => 404,
            _ => 500,
        };
        DistError::new(status, e.to_string())
    }
}

type Result<T> = std::result::Result<T, DistError>;

/// Where progress messages go (the response body).
pub type Progress = mpsc::Sender<JsonMessage>;

/// The daemon's one client (connection pools, tokens) built from its config.
fn client(d: &Daemon) -> Result<&'static Client> {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let cfg = ClientConfig {
        insecure_registries: d.cfg.insecure_registries.clone(),
        registry_mirrors: d.cfg.registry_mirrors.clone(),
        certs_dir: d.cfg.certs_dir.clone(),
        ..ClientConfig::default()
    };
    let c = Client::new(&cfg).map_err(|e| DistError::new(500, e.to_string()))?;
    Ok(CLIENT.get_or_init(|| c))
}

/// Records that a repository holds a blob, for later cross-repository
/// mounts. In the metadata database, so that pushes after a restart still
/// mount; a failure only costs a mount later, so it is logged, not fatal.
fn remember_source(meta: &Metadata, digest: &str, host: &str, repo: &str) {
    if let Err(e) = meta.add_blob_source(digest, host, repo) {
        tracing::warn!(blob = digest, error = %e, "cannot record the blob's repository");
    }
}

/// Another repository of `host` known to hold `digest`.
fn source_on(meta: &Metadata, digest: &str, host: &str, not_repo: &str) -> Option<String> {
    meta.blob_source(digest, host, not_repo)
        .map_err(|e| tracing::warn!(blob = digest, error = %e, "cannot read blob sources"))
        .ok()
        .flatten()
}

fn msg(status: impl Into<String>, id: Option<&str>) -> JsonMessage {
    JsonMessage {
        status: Some(status.into()),
        id: id.map(str::to_string),
        progress_detail: id.map(|_| serde_json::json!({})),
        ..Default::default()
    }
}

/// Docker's progress bar (`JSONProgress.String` at the daemon's width):
/// `[==>     ]  1.2MB/3.4MB`.
pub fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current as f64));
    }
    let pct = ((current as f64 / total as f64 * 100.0) as usize / 2).min(50);
    let spaces = 50 - pct;
    let bar = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(spaces));
    format!(
        "{bar}{:>8}/{}",
        human_size(current as f64),
        human_size(total as f64)
    )
}

fn progress_msg(status: &str, id: &str, current: u64, total: u64) -> JsonMessage {
    JsonMessage {
        status: Some(status.into()),
        id: Some(id.into()),
        progress: Some(progress_bar(current, total)),
        progress_detail: Some(serde_json::json!({"current": current, "total": total})),
        ..Default::default()
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// A pull, resolved: what to download and what to record.
#[derive(Debug)]
pub struct PullPlan {
    reference: Reference,
    target: Target,
    repo: Repo,
    manifest_digest: String,
    layers: Vec<manifest::Descriptor>,
    config: Vec<u8>,
    config_digest: String,
    diff_ids: Vec<String>,
}

/// What `POST /images/create?fromImage` asked for.
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// The image, with tag or digest (a bare name means `latest`).
    pub reference: Reference,
    /// `--platform`, when given.
    pub platform: Option<String>,
    /// Credentials.
    pub auth: AuthConfig,
}

/// Resolves a pull: manifest (by platform), config. Errors here are the
/// ones Docker answers with a status before any progress.
pub async fn resolve_pull(d: &Arc<Daemon>, req: &PullRequest) -> Result<PullPlan> {
    let c = client(d)?;
    let reference = if req.reference.is_name_only() {
        req.reference
            .with_tag("latest")
            .map_err(|e| DistError::new(400, e.to_string()))?
    } else {
        req.reference.clone()
    };
    let target = Target::from_reference(&reference);
    // Docker Hub pulls try the configured mirrors first (anonymously, as
    // Docker does), then Hub itself.
    if target.domain == endpoint::HUB_DOMAIN {
        for m in c.mirrors() {
            let repo = Repo {
                host: m.clone(),
                name: target.repository.clone(),
                auth: AuthConfig::default(),
                push: false,
            };
            match resolve_on(d, c, req, &reference, &target, repo).await {
                Ok(p) => return Ok(p),
                Err(e) => tracing::info!(mirror = %m, error = %e, "mirror cannot serve the pull"),
            }
        }
    }
    let repo = Repo {
        host: target.host.clone(),
        name: target.repository.clone(),
        auth: req.auth.clone(),
        push: false,
    };
    resolve_on(d, c, req, &reference, &target, repo).await
}

/// Resolves a pull on one registry (Hub, a mirror, or the reference's own).
async fn resolve_on(
    d: &Arc<Daemon>,
    c: &Client,
    req: &PullRequest,
    reference: &Reference,
    target: &Target,
    repo: Repo,
) -> Result<PullPlan> {
    let want = match req.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let shown = reference.familiar_string();
    let not_found = |e: ClientError| {
        match e {
        ClientError::NotFound(m) => DistError::new(404, format!("manifest for {shown} not found: {m}")),
        ClientError::Unauthorized(m) if !m.starts_with("token auth") => DistError::new(
            404,
            format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {m}",
                reference.familiar_name()
            ),
        ),
        ClientError::Registry { status: 403, message } => DistError::new(
            404,
            format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {message}",
                reference.familiar_name()
            ),
        ),
        e => e.into(),
    }
    };
    let (bytes, ct, manifest_digest) = c
        .get_manifest(&repo, &target.reference)
        .await
        .map_err(not_found)?;
    let mut m = manifest::parse(&bytes, &ct)?;
    if let Manifest::Index(idx) = &m {
        let entry = manifest::select(idx, &want)?.clone();
        let (b2, ct2, _) = c
            .get_manifest(&repo, &entry.digest)
            .await
            .map_err(not_found)?;
        m = manifest::parse(&b2, &ct2)?;
        // The digest that names the image stays the list's, as Docker
        // records it.
    }
    let Manifest::Image(im) = m else {
        return Err(DistError::new(
            500,
            "a manifest list names another manifest list; berth does not follow nested lists",
        ));
    };
    let config_digest = im.config.digest.clone();
    let config = match d.images.config(&config_digest) {
        Ok(_) => d
            .images
            .blobs()
            .read(
                &berth_store::Digest::parse(&config_digest)
                    .map_err(|e| DistError::new(500, e.to_string()))?,
            )
            .map_err(|e| DistError::new(500, e.to_string()))?,
        Err(_) => {
            c.get_blob_bytes(&repo, &config_digest, manifest::MAX_CONFIG)
                .await?
        }
    };
    let cfg: berth_image::ImageConfig = serde_json::from_slice(&config)
        .map_err(|e| DistError::new(500, format!("invalid image config {config_digest}: {e}")))?;
    if cfg.rootfs.diff_ids.len() != im.layers.len() {
        return Err(DistError::new(
            500,
            format!(
                "image config {config_digest} lists {} layers but its manifest {} ",
                cfg.rootfs.diff_ids.len(),
                im.layers.len()
            ),
        ));
    }
    for dd in &cfg.rootfs.diff_ids {
        if !manifest::valid_digest(dd) {
            return Err(DistError::new(
                500,
                format!("image config {config_digest} has an invalid diff ID {dd:?}"),
            ));
        }
    }
    Ok(PullPlan {
        reference: reference.clone(),
        target: target.clone(),
        repo,
        manifest_digest,
        layers: im.layers,
        config,
        config_digest,
        diff_ids: cfg.rootfs.diff_ids,
    })
}

/// The tags of a repository, for `pull --all-tags`.
pub async fn list_tags(d: &Arc<Daemon>, req: &PullRequest) -> Result<Vec<String>> {
    let c = client(d)?;
    let target = Target::from_reference(&req.reference);
    let repo = Repo {
        host: target.host,
        name: target.repository,
        auth: req.auth.clone(),
        push: false,
    };
    Ok(c.tags(&repo).await?)
}

/// Runs a resolved pull, reporting progress; returns the image ID.
pub async fn run_pull(d: &Arc<Daemon>, plan: PullPlan, out: &Progress) -> Result<String> {
    let c = client(d)?;
    // The tag, or the digest for a pull by digest.
    let id_label = plan.target.reference.clone();
    let _ = out
        .send(JsonMessage {
            status: Some(format!("Pulling from {}", plan.target.repository)),
            id: Some(id_label),
            ..Default::default()
        })
        .await;
    let chains = chain_ids(&plan.diff_ids);
    let mut lease = d.images.lease_layers();
    let mut todo = Vec::new();
    for (i, l) in plan.layers.iter().enumerate() {
        if d.images.has_layer(&mut lease, &chains[i])? {
            let _ = out
                .send(msg("Already exists", Some(short(&l.digest))))
                .await;
        } else {
            let _ = out
                .send(msg("Pulling fs layer", Some(short(&l.digest))))
                .await;
            todo.push(i);
        }
    }
    let mut leases = vec![lease];
    let sem = Arc::new(Semaphore::new(
        d.cfg.max_concurrent_downloads.max(1) as usize
    ));
    let mut set = tokio::task::JoinSet::new();
    for i in todo {
        let desc = plan.layers[i].clone();
        let parent = i.checked_sub(1).map(|j| chains[j].clone());
        let diff = plan.diff_ids[i].clone();
        let repo = plan.repo.clone();
        let out = out.clone();
        let sem = sem.clone();
        let images = d.images.clone();
        set.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .map_err(|e| DistError::new(500, e.to_string()))?;
            pull_layer(c, &images, &repo, &desc, parent, &diff, &out).await
        });
    }
    // A failed layer does not stop the others: every layer that completes
    // is kept (verified, whole), so the next pull resumes with it.
    let mut failed = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(l)) => leases.push(l),
            Ok(Err(e)) => {
                failed.get_or_insert(e);
            }
            Err(e) => {
                failed.get_or_insert(DistError::new(500, format!("pull worker failed: {e}")));
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    for l in &plan.layers {
        remember_source(&d.meta, &l.digest, &plan.repo.host, &plan.repo.name);
    }
    remember_source(
        &d.meta,
        &plan.config_digest,
        &plan.repo.host,
        &plan.repo.name,
    );
    let config_digest = d.images.store_config(&plan.config, &plan.config_digest)?;
    let mut refs = Vec::new();
    let digest_ref = Reference::parse_normalized(&format!(
        "{}@{}",
        plan.reference.name(),
        plan.manifest_digest
    ))
    .map_err(|e| DistError::new(500, e.to_string()))?;
    let before = match plan.reference.tag() {
        Some(_) => d.meta.tag(&plan.reference.to_string()).ok().flatten(),
        None => d.meta.tag(&digest_ref.to_string()).ok().flatten(),
    };
    if plan.reference.tag().is_some() {
        refs.push(
            plan.reference
                .without_tag_or_digest()
                .with_tag(plan.reference.tag().unwrap_or("latest"))
                .map_err(|e| DistError::new(500, e.to_string()))?,
        );
    }
    refs.push(digest_ref);
    let images = d.images.clone();
    let id = tokio::task::spawn_blocking(move || images.add_image(&config_digest, None, &refs))
        .await
        .map_err(|e| DistError::new(500, e.to_string()))??;
    drop(leases);
    let _ = out
        .send(JsonMessage::status(format!(
            "Digest: {}",
            plan.manifest_digest
        )))
        .await;
    let shown = plan.reference.familiar_string();
    let status = if before.as_deref() == Some(id.as_str()) {
        format!("Status: Image is up to date for {shown}")
    } else {
        format!("Status: Downloaded newer image for {shown}")
    };
    let _ = out.send(JsonMessage::status(status)).await;
    // dockerd names pull events by the reference, not the image ID.
    d.image_event("pull", &shown, &shown);
    Ok(id)
}

/// Downloads one layer and ingests it in the same pass.
#[allow(clippy::too_many_arguments)]
async fn pull_layer(
    c: &'static Client,
    images: &Arc<berth_image::ImageStore>,
    repo: &Repo,
    desc: &manifest::Descriptor,
    parent: Option<String>,
    diff_id: &str,
    out: &Progress,
) -> Result<berth_image::LayerLease> {
    let id = short(&desc.digest).to_string();
    let total = desc.size as u64;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(32);
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let reader = SyncIoBridge::new(StreamReader::new(Box::pin(stream)));
    let images2 = images.clone();
    let diff = diff_id.to_string();
    let digest = desc.digest.clone();
    // Each layer has its own lease, handed back so that it outlives the
    // task: the layer stays protected until the image row refers to it.
    let ingest = tokio::task::spawn_blocking(move || {
        let mut own = images2.lease_layers();
        let r = images2.ingest_layer(&mut own, reader, parent.as_deref(), &diff, &digest);
        (r, own)
    });
    let last = Mutex::new(Instant::now() - PROGRESS_EVERY);
    let out2 = out.clone();
    let id2 = id.clone();
    let report = move |n: u64| {
        let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
        if l.elapsed() >= PROGRESS_EVERY || n == total {
            *l = Instant::now();
            let _ = out2.try_send(progress_msg("Downloading", &id2, n, total));
        }
    };
    let dl = c
        .download_blob(repo, &desc.digest, 0, total, &tx, &report)
        .await;
    drop(tx);
    let (ingested, own) = ingest
        .await
        .map_err(|e| DistError::new(500, format!("layer {}: {e}", desc.digest)))?;
    dl.map_err(|e| DistError::new(500, format!("failed to register layer {id}: {e}")))?;
    ingested.map_err(|e| DistError::new(500, format!("failed to register layer {id}: {e}")))?;
    let _ = out.send(msg("Verifying Checksum", Some(&id))).await;
    let _ = out.send(msg("Download complete", Some(&id))).await;
    let _ = out
        .send(progress_msg("Extracting", &id, total, total))
        .await;
    let _ = out.send(msg("Pull complete", Some(&id))).await;
    Ok(own)
}

/// What `POST /images/{name}/push` asked for.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The repository, with the tag to push (none: every tag).
    pub reference: Reference,
    /// Credentials.
    pub auth: AuthConfig,
}

/// Pushes every tag asked for; progress and in-band errors go to `out`.
pub async fn push(d: &Arc<Daemon>, req: &PushRequest, out: &Progress) -> Result<()> {
    let c = client(d)?;
    let name = req.reference.without_tag_or_digest();
    let _ = out
        .send(JsonMessage::status(format!(
            "The push refers to repository [{}]",
            name.name()
        )))
        .await;
    let refs: Vec<Reference> = match req.reference.tag() {
        Some(_) => vec![req.reference.clone()],
        None => {
            let repo = name.to_string();
            let mut v = Vec::new();
            for (tag, _) in d
                .meta
                .all_tags()
                .map_err(|e| DistError::new(500, e.to_string()))?
            {
                if let Ok(t) = Reference::parse_normalized(&tag) {
                    if t.tag().is_some() && t.without_tag_or_digest().to_string() == repo {
                        v.push(t);
                    }
                }
            }
            v
        }
    };
    if refs.is_empty() || d.images.resolve(&refs[0].to_string()).is_err() {
        return Err(DistError::new(
            404,
            format!(
                "An image does not exist locally with the tag: {}",
                name.familiar_name()
            ),
        ));
    }
    for r in refs {
        push_one(c, d, &r, &req.auth, out).await?;
    }
    Ok(())
}

async fn push_one(
    c: &'static Client,
    d: &Arc<Daemon>,
    r: &Reference,
    auth: &AuthConfig,
    out: &Progress,
) -> Result<()> {
    let img = d.images.resolve(&r.to_string()).map_err(|_| {
        DistError::new(
            404,
            format!(
                "An image does not exist locally with the tag: {}",
                r.familiar_name()
            ),
        )
    })?;
    let target = Target::from_reference(r);
    let repo = Repo {
        host: target.host.clone(),
        name: target.repository.clone(),
        auth: auth.clone(),
        push: true,
    };
    let chains = img.row.chain_ids.clone();
    let diff_ids = img.config.rootfs.diff_ids.clone();
    for dd in diff_ids.iter().rev() {
        let _ = out.send(msg("Preparing", Some(short(dd)))).await;
    }
    let sem = Arc::new(Semaphore::new(d.cfg.max_concurrent_uploads.max(1) as usize));
    let mut set = tokio::task::JoinSet::new();
    for (i, chain) in chains.iter().enumerate() {
        let chain = chain.clone();
        let id = short(&diff_ids[i]).to_string();
        let images = d.images.clone();
        let meta = d.meta.clone();
        let repo = repo.clone();
        let out = out.clone();
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .map_err(|e| DistError::new(500, e.to_string()))?;
            let images2 = images.clone();
            let ch = chain.clone();
            let blob = tokio::task::spawn_blocking(move || images2.push_blob(&ch))
                .await
                .map_err(|e| DistError::new(500, e.to_string()))??;
            push_layer(c, &images, &meta, &repo, &blob, &id, &out).await?;
            Ok::<_, DistError>((i, blob))
        });
    }
    let mut blobs = vec![None; chains.len()];
    while let Some(res) = set.join_next().await {
        match res {
            Ok(Ok((i, b))) => blobs[i] = Some(b),
            Ok(Err(e)) => {
                set.abort_all();
                return Err(e);
            }
            Err(e) => {
                set.abort_all();
                return Err(DistError::new(500, format!("push worker failed: {e}")));
            }
        }
    }
    let config = d
        .images
        .blobs()
        .read(
            &berth_store::Digest::parse(img.id())
                .map_err(|e| DistError::new(500, e.to_string()))?,
        )
        .map_err(|e| DistError::new(500, e.to_string()))?;
    let config_len = config.len();
    let config_digest = push_config(c, &d.meta, &repo, img.id(), config).await?;
    let any_zstd = blobs
        .iter()
        .flatten()
        .any(|b| b.compression == Compression::Zstd);
    // Docker's own manifest, unless a layer is zstd, which only OCI names.
    let (mt, config_mt) = if any_zstd {
        (manifest::OCI_MANIFEST, manifest::OCI_CONFIG)
    } else {
        (manifest::DOCKER_MANIFEST, manifest::DOCKER_CONFIG)
    };
    let layers: Vec<serde_json::Value> = blobs
        .iter()
        .flatten()
        .map(|b| {
            let lmt = match (b.compression, any_zstd) {
                (Compression::Gzip, false) => manifest::DOCKER_LAYER_GZIP,
                (Compression::None, false) => manifest::DOCKER_LAYER_TAR,
                (Compression::Gzip, true) => manifest::OCI_LAYER_GZIP,
                (Compression::None, true) => manifest::OCI_LAYER_TAR,
                (Compression::Zstd, _) => manifest::OCI_LAYER_ZSTD,
            };
            serde_json::json!({"mediaType": lmt, "size": b.size, "digest": b.digest.as_str()})
        })
        .collect();
    let body = serde_json::to_vec_pretty(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": config_mt, "size": config_len, "digest": config_digest},
        "layers": layers,
    }))
    .map_err(|e| DistError::new(500, e.to_string()))?;
    let size = body.len();
    let tag = r.tag().unwrap_or("latest").to_string();
    let digest = c.put_manifest(&repo, &tag, mt, Bytes::from(body)).await?;
    for b in blobs.iter().flatten() {
        remember_source(&d.meta, b.digest.as_str(), &repo.host, &repo.name);
    }
    remember_source(&d.meta, &config_digest, &repo.host, &repo.name);
    if let Ok(dref) = Reference::parse_normalized(&format!("{}@{digest}", r.name())) {
        let _ = d.images.tag(img.id(), &dref);
    }
    d.image_event("push", &r.familiar_string(), &r.familiar_string());
    let _ = out
        .send(JsonMessage::status(format!(
            "{tag}: digest: {digest} size: {size}"
        )))
        .await;
    let _ = out
        .send(JsonMessage {
            progress_detail: Some(serde_json::json!({})),
            aux: Some(serde_json::json!({"Tag": tag, "Digest": digest, "Size": size})),
            ..Default::default()
        })
        .await;
    Ok(())
}

/// What [`try_mount`] did.
enum Mounted {
    /// The blob was mounted from this repository.
    From(String),
    /// Not mounted; the upload the registry started instead, if it did.
    No(Option<String>),
}

/// Mounts `digest` into `repo` from another repository of its registry
/// known to hold it. A refused mount is not fatal: the blob is uploaded.
async fn try_mount(c: &Client, meta: &Metadata, repo: &Repo, digest: &str) -> Mounted {
    let Some(from) = source_on(meta, digest, &repo.host, &repo.name) else {
        return Mounted::No(None);
    };
    match c.mount_blob(repo, digest, &from).await {
        Ok(Mount::Mounted) => Mounted::From(from),
        Ok(Mount::Upload(loc)) => Mounted::No(Some(loc)),
        Err(e) => {
            tracing::debug!(error = %e, "cross-repository mount refused");
            Mounted::No(None)
        }
    }
}

/// Pushes the image config: there already, mounted, or uploaded.
async fn push_config(
    c: &Client,
    meta: &Metadata,
    repo: &Repo,
    digest: &str,
    config: Vec<u8>,
) -> Result<String> {
    if c.blob_exists(repo, digest).await? {
        return Ok(digest.to_string());
    }
    let location = match try_mount(c, meta, repo, digest).await {
        Mounted::From(_) => return Ok(digest.to_string()),
        Mounted::No(Some(l)) => l,
        Mounted::No(None) => c.start_upload(repo).await?,
    };
    let len = config.len() as u64;
    let body = http_body_util::Full::new(Bytes::from(config))
        .map_err(|never| match never {})
        .boxed();
    c.finish_upload(repo, &location, digest, len, body).await?;
    Ok(digest.to_string())
}

async fn push_layer(
    c: &'static Client,
    images: &Arc<berth_image::ImageStore>,
    meta: &Metadata,
    repo: &Repo,
    blob: &berth_image::PushBlob,
    id: &str,
    out: &Progress,
) -> Result<()> {
    let digest = blob.digest.as_str();
    if c.blob_exists(repo, digest).await? {
        let _ = out.send(msg("Layer already exists", Some(id))).await;
        return Ok(());
    }
    let location = match try_mount(c, meta, repo, digest).await {
        Mounted::From(from) => {
            let _ = out
                .send(msg(format!("Mounted from {from}"), Some(id)))
                .await;
            return Ok(());
        }
        Mounted::No(location) => location,
    };
    let location = match location {
        Some(l) => l,
        None => c.start_upload(repo).await?,
    };
    let path = images.blobs().path(&blob.digest);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| DistError::new(500, format!("open {}: {e}", path.display())))?;
    let total = blob.size;
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let last = Arc::new(Mutex::new(Instant::now() - PROGRESS_EVERY));
    let out2 = out.clone();
    let id2 = id.to_string();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
        if let Ok(b) = &chunk {
            let n = sent.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed)
                + b.len() as u64;
            let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
            if l.elapsed() >= PROGRESS_EVERY || n == total {
                *l = Instant::now();
                let _ = out2.try_send(progress_msg("Pushing", &id2, n, total));
            }
        }
        chunk.map(hyper::body::Frame::data)
    });
    let body = BodyExt::boxed(http_body_util::StreamBody::new(stream));
    c.finish_upload(repo, &location, digest, total, body)
        .await?;
    let _ = out.send(msg("Pushed", Some(id))).await;
    Ok(())
}

/// `docker login`: checks the credentials with the registry; returns the
/// identity token (a refresh token) when the registry's token server gave
/// one, for the client to store instead of the password.
pub async fn login(d: &Arc<Daemon>, host: &str, auth: &AuthConfig) -> Result<String> {
    let c = client(d)?;
    let (_, identity) = c.login(host, auth).await?;
    Ok(identity)
}
