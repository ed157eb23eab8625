//! `/images/...` handlers.

use std::io::Write;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::container::GraphDriver;
use berth_api::image::{
    HistoryItem, ImageInspect, ImageMetadata, ImageSummary, JsonMessage, RootFs,
};
use berth_api::reference::{is_full_id, validate_tag};
use berth_api::Reference;
use berth_image::{ImportOptions, ResolvedImage, SaveRequest};
use futures_util::TryStreamExt;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::Query;
use crate::core::Daemon;
use crate::error::{DaemonError, Result};

fn blocking_err(e: tokio::task::JoinError) -> DaemonError {
    DaemonError::Internal(format!("worker failed: {e}"))
}

/// A request body as a blocking reader (use inside spawn_blocking).
fn body_reader(body: Body) -> SyncIoBridge<impl tokio::io::AsyncRead + Unpin> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    SyncIoBridge::new(StreamReader::new(stream))
}

/// Reads what is left of a request body. An error answered while the
/// client is still uploading would otherwise reach it as a broken pipe
/// instead of the message.
fn drain(r: &mut impl std::io::Read) {
    let _ = std::io::copy(r, &mut std::io::sink());
}

/// Async twin of [`drain`], for errors found before the upload is read.
async fn drain_body(body: Body) {
    use futures_util::StreamExt;
    let mut s = body.into_data_stream();
    while let Some(Ok(_)) = s.next().await {}
}

/// Checks an import's source and `repo`/`tag` before any byte is read.
fn import_target(src: &str, q: &Query) -> Result<Option<Reference>> {
    if src != "-" {
        return Err(DaemonError::BadRequest(format!(
            "importing from a URL ({src}) is not supported yet: download it and import the file"
        )));
    }
    let Some(repo) = q.get("repo").filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let bad = |e: berth_api::ReferenceError| DaemonError::BadRequest(e.to_string());
    let r = Reference::parse_normalized(repo).map_err(bad)?;
    Ok(Some(match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => r.with_tag(t).map_err(bad)?,
        // `import FILE repo` tags `repo:latest`, as dockerd does.
        None if r.is_name_only() => r.with_tag("latest").map_err(bad)?,
        None => r,
    }))
}

/// A blocking writer whose bytes become a response body.
struct ChannelWriter(mpsc::Sender<std::io::Result<Bytes>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn receiver_body(rx: mpsc::Receiver<std::io::Result<Bytes>>) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|x| (x, rx))
    }))
}

fn json_line(m: &JsonMessage) -> Bytes {
    let mut v = serde_json::to_vec(m).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn familiar(refs: &[Reference]) -> Vec<String> {
    refs.iter().map(|r| r.familiar_string()).collect()
}

fn summary(d: &Daemon, img: &ResolvedImage) -> Result<ImageSummary> {
    let (tags, digests) = d.images.references(img.id())?;
    let size = d.images.size(&img.row)?;
    Ok(ImageSummary {
        containers: -1,
        created: img.config.created_unix(),
        id: img.id().to_string(),
        labels: img.config.config.as_ref().and_then(|c| c.labels.clone()),
        parent_id: img.row.parent.clone().unwrap_or_default(),
        repo_digests: Some(familiar(&digests)),
        repo_tags: Some(familiar(&tags)),
        shared_size: -1,
        size,
        virtual_size: size,
    })
}

const IMAGE_FILTERS: &[&str] = &["dangling", "label", "reference", "before", "since", "until"];

/// path.Match-style glob: `*` and `?` within a path segment, `[...]` classes not needed here.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && t[0] != b'/' && go(p, &t[1..])),
            (Some(b'?'), Some(&c)) if c != b'/' => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

pub(super) async fn list(
    State(d): State<Arc<Daemon>>,
    q: Query,
) -> Result<Json<Vec<ImageSummary>>> {
    let filters = q.filters()?;
    if let Some(k) = filters.unknown_key(IMAGE_FILTERS) {
        return Err(DaemonError::BadRequest(format!("invalid filter '{k}'")));
    }
    let all = q.flag("all");
    let dangling = match filters.get("dangling").first().map(String::as_str) {
        None => None,
        Some("true") | Some("1") => Some(true),
        Some("false") | Some("0") => Some(false),
        Some(v) => {
            return Err(DaemonError::BadRequest(format!(
                "Invalid filter 'dangling=[{v}]'"
            )))
        }
    };
    let created_of =
        |name: &str| -> Result<i64> { Ok(d.images.resolve(name)?.config.created_unix()) };
    let before = filters
        .get("before")
        .first()
        .map(|n| created_of(n))
        .transpose()?;
    let since = filters
        .get("since")
        .first()
        .map(|n| created_of(n))
        .transpose()?;
    let mut out = Vec::new();
    for img in d.images.list()? {
        let (tags, digests) = d.images.references(img.id())?;
        let is_dangling = tags.is_empty() && digests.is_empty();
        if !all && is_dangling && !d.meta.children(img.id())?.is_empty() {
            continue; // an intermediate build image
        }
        if dangling.is_some_and(|want| want != is_dangling) {
            continue;
        }
        let refs = filters.get("reference");
        let mut s = summary(&d, &img)?;
        if !refs.is_empty() {
            let keep: Vec<String> = tags
                .iter()
                .filter(|t| {
                    refs.iter()
                        .any(|p| glob(p, &t.familiar_name()) || glob(p, &t.familiar_string()))
                })
                .map(|t| t.familiar_string())
                .collect();
            if keep.is_empty() {
                continue;
            }
            s.repo_tags = Some(keep);
        }
        let labels = img
            .config
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let label_ok = filters
            .get("label")
            .iter()
            .all(|l| match l.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(l.as_str()),
            });
        if !label_ok {
            continue;
        }
        if before.is_some_and(|b| s.created >= b) || since.is_some_and(|x| s.created <= x) {
            continue;
        }
        out.push(s);
    }
    Ok(Json(out))
}

/// `POST /images/create`: import (`fromSrc`) or pull (`fromImage`).
pub(super) async fn create(
    State(d): State<Arc<Daemon>>,
    q: Query,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response> {
    if let Some(src) = q.get("fromSrc") {
        let tag = match import_target(src, &q) {
            Ok(t) => t,
            Err(e) => {
                drain_body(body).await;
                return Err(e);
            }
        };
        let opts = ImportOptions {
            changes: q.all("changes"),
            message: q
                .get("message")
                .filter(|m| !m.is_empty())
                .map(str::to_string),
            source: src.to_string(),
            tag,
        };
        let mut reader = body_reader(body);
        let images = d.images.clone();
        let id = tokio::task::spawn_blocking(move || {
            let res = images.import(&mut reader, &opts);
            if res.is_err() {
                drain(&mut reader);
            }
            res
        })
        .await
        .map_err(blocking_err)??;
        d.image_event("import", &id, &id);
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json_line(&JsonMessage::status(id)),
        )
            .into_response());
    }
    if q.get("fromImage").is_some() {
        return Ok(super::distribution::pull(d, &q, &headers).await);
    }
    Err(DaemonError::BadRequest(
        "either fromSrc or fromImage must be given".into(),
    ))
}

/// `POST /images/load`: a tar in, progress lines out.
pub(super) async fn load(State(d): State<Arc<Daemon>>, _q: Query, body: Body) -> Result<Response> {
    let reader = body_reader(body);
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let images = d.images.clone();
    tokio::task::spawn_blocking(move || {
        let progress_tx = tx.clone();
        let mut progress = |line: String| {
            let _ =
                progress_tx.blocking_send(Ok(json_line(&JsonMessage::stream(format!("{line}\n")))));
        };
        if let Err(e) = images.load(reader, &mut progress) {
            let _ = tx.blocking_send(Ok(json_line(&JsonMessage::error(e.to_string()))));
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        receiver_body(rx),
    )
        .into_response())
}

/// Which images (and references) `save` of `names` means, as dockerd does:
/// a bare repository name takes all its tags.
fn save_requests(d: &Daemon, names: &[String]) -> Result<Vec<SaveRequest>> {
    let mut out: Vec<SaveRequest> = Vec::new();
    let mut add = |id: String, r: Option<Reference>| match out.iter_mut().find(|s| s.id == id) {
        Some(s) => s.refs.extend(r),
        None => out.push(SaveRequest {
            id,
            refs: r.into_iter().collect(),
        }),
    };
    for name in names {
        let bare = name.strip_prefix("sha256:").unwrap_or(name);
        if is_full_id(bare) || (name.starts_with("sha256:")) {
            add(d.images.resolve(name)?.id().to_string(), None);
            continue;
        }
        match Reference::parse_normalized(name) {
            Ok(r) if r.is_name_only() => {
                let repo = r.name();
                let mut found = false;
                for (tag, id) in d.meta.all_tags()? {
                    if let Ok(t) = Reference::parse_normalized(&tag) {
                        if t.name() == repo && t.digest().is_none() {
                            add(id, Some(t));
                            found = true;
                        }
                    }
                }
                if !found {
                    add(d.images.resolve(name)?.id().to_string(), None);
                }
            }
            Ok(r) => {
                let img = d.images.resolve(name)?;
                add(img.id().to_string(), Some(r));
            }
            Err(_) => add(d.images.resolve(name)?.id().to_string(), None),
        }
    }
    Ok(out)
}

async fn save(d: Arc<Daemon>, names: Vec<String>) -> Result<Response> {
    let reqs = save_requests(&d, &names)?;
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
    let images = d.images.clone();
    tokio::task::spawn_blocking(move || {
        let w = std::io::BufWriter::with_capacity(256 * 1024, ChannelWriter(tx.clone()));
        if let Err(e) = images.save(&reqs, w) {
            // Mid-stream there is no status to change: cut the stream so the
            // client sees a broken tar rather than a complete-looking one.
            tracing::error!("save: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-tar")],
        receiver_body(rx),
    )
        .into_response())
}

pub(super) async fn save_many(State(d): State<Arc<Daemon>>, q: Query) -> Result<Response> {
    save(d, q.all("names")).await
}

fn inspect_view(d: &Daemon, img: &ResolvedImage) -> Result<ImageInspect> {
    let (tags, digests) = d.images.references(img.id())?;
    let size = d.images.size(&img.row)?;
    let lowers = d.images.lower_dirs(&img.row).unwrap_or_default();
    let mut data = std::collections::BTreeMap::new();
    if let Some((top, rest)) = lowers.split_first() {
        data.insert("UpperDir".to_string(), top.display().to_string());
        if !rest.is_empty() {
            data.insert(
                "LowerDir".to_string(),
                rest.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
            );
        }
    }
    let c = &img.config;
    Ok(ImageInspect {
        id: img.id().to_string(),
        repo_tags: familiar(&tags),
        repo_digests: familiar(&digests),
        parent: img.row.parent.clone().unwrap_or_default(),
        // As dockerd: the config's comment, else the last history entry's
        // (where `commit -m` puts it).
        comment: c
            .extra
            .get("comment")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .or_else(|| c.history.last().and_then(|h| h.comment.as_deref()))
            .unwrap_or_default()
            .to_string(),
        created: c.created.clone().unwrap_or_default(),
        container: c.container.clone().unwrap_or_default(),
        container_config: c.container_config.clone(),
        docker_version: c.docker_version.clone().unwrap_or_default(),
        author: c.author.clone().unwrap_or_default(),
        config: c.config.clone(),
        architecture: c.architecture.clone(),
        variant: c.variant.clone(),
        os: c.os.clone(),
        size,
        virtual_size: size,
        graph_driver: GraphDriver {
            name: "overlay2".into(),
            data: Some(data),
        },
        root_fs: RootFs {
            kind: "layers".into(),
            layers: c.rootfs.diff_ids.clone(),
        },
        metadata: ImageMetadata {
            last_tag_time: img.row.last_tag_time.clone(),
        },
    })
}

fn history(d: &Daemon, img: &ResolvedImage) -> Result<Vec<HistoryItem>> {
    let (tags, _) = d.images.references(img.id())?;
    let mut sizes = Vec::new();
    for chain in &img.row.chain_ids {
        sizes.push(d.meta.layer(chain)?.map(|l| l.size).unwrap_or(0));
    }
    let mut layer_idx = 0;
    let mut items = Vec::new();
    let entries = &img.config.history;
    for h in entries {
        let size = if h.empty_layer {
            0
        } else {
            let s = sizes.get(layer_idx).copied().unwrap_or(0);
            layer_idx += 1;
            s
        };
        items.push(HistoryItem {
            id: "<missing>".into(),
            created: h
                .created
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map(|t| t.timestamp())
                .unwrap_or(0),
            created_by: h.created_by.clone().unwrap_or_default(),
            tags: None,
            size,
            comment: h.comment.clone().unwrap_or_default(),
        });
    }
    items.reverse();
    if let Some(top) = items.first_mut() {
        top.id = img.id().to_string();
        top.tags = Some(familiar(&tags));
    } else {
        items.push(HistoryItem {
            id: img.id().to_string(),
            created: img.config.created_unix(),
            created_by: String::new(),
            tags: Some(familiar(&tags)),
            size: d.images.size(&img.row)?,
            comment: String::new(),
        });
    }
    Ok(items)
}

fn tag(d: &Daemon, name: &str, q: &Query) -> Result<Response> {
    let img = d.images.resolve(name)?;
    let repo = q.get("repo").unwrap_or("");
    let r =
        Reference::parse_normalized(repo).map_err(|e| DaemonError::BadRequest(e.to_string()))?;
    if r.digest().is_some() {
        return Err(DaemonError::BadRequest(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    let r = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => {
            validate_tag(t).map_err(|e| DaemonError::BadRequest(e.to_string()))?;
            r.with_tag(t)
                .map_err(|e| DaemonError::BadRequest(e.to_string()))?
        }
        None if r.tag().is_some() => r,
        None => r
            .with_tag("latest")
            .map_err(|e| DaemonError::BadRequest(e.to_string()))?,
    };
    d.images.tag(img.id(), &r)?;
    d.image_event("tag", img.id(), &r.familiar_string());
    Ok(StatusCode::CREATED.into_response())
}

/// `/images/{name}/json|history|tag|push|get` and `DELETE /images/{name}`:
/// names arrive unescaped (`/images/127.0.0.1:5000/app/json`), so the verb
/// is found at the end.
pub(super) async fn dispatch(
    State(d): State<Arc<Daemon>>,
    Path(rest): Path<String>,
    q: Query,
    req: Request,
) -> Result<Response> {
    let method = req.method().clone();
    let split = rest.rsplit_once('/');
    match (&method, split) {
        (&Method::GET, Some((name, "json"))) => {
            let img = d.images.resolve(name)?;
            Ok(Json(inspect_view(&d, &img)?).into_response())
        }
        (&Method::GET, Some((name, "history"))) => {
            let img = d.images.resolve(name)?;
            Ok(Json(history(&d, &img)?).into_response())
        }
        (&Method::GET, Some((name, "get"))) => save(d, vec![name.to_string()]).await,
        (&Method::POST, Some((name, "tag"))) => tag(&d, name, &q),
        (&Method::POST, Some((name, "push"))) => {
            Ok(super::distribution::push(d.clone(), name, &q, req.headers()).await)
        }
        (&Method::DELETE, _) => {
            let force = q.flag("force");
            // docker rmi removes the untagged parents a build left unless
            // told `--no-prune`.
            let prune = !q.flag("noprune");
            let image_id = d.images.resolve(&rest).map(|i| i.id().to_string()).ok();
            let d2 = d.clone();
            let name = rest.clone();
            let out = tokio::task::spawn_blocking(move || {
                let users = |id: &str| d2.image_users(id);
                d2.images.delete(&name, force, prune, &users)
            })
            .await
            .map_err(blocking_err)??;
            for item in &out.items {
                if let Some(name) = &item.untagged {
                    d.image_event("untag", image_id.as_deref().unwrap_or(name), name);
                }
                if let Some(id) = &item.deleted {
                    d.image_event("delete", id, id);
                }
            }
            Ok(Json(out.items).into_response())
        }
        _ => Err(DaemonError::NotFound("page not found".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_like_go() {
        assert!(glob("busybox", "busybox"));
        assert!(glob("busy*", "busybox"));
        assert!(glob("*:latest", "busybox:latest"));
        assert!(!glob("*", "library/busybox"));
        assert!(glob("*/*", "library/busybox"));
        assert!(!glob("busybox", "busybox:latest"));
    }
}
