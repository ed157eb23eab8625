//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (new session, single-POST
//! monolithic upload with `?digest=`, cross-repository `?mount=&from=`),
//! and on `/v2/<name>/blobs/uploads/<uuid>`: `PATCH` (a chunk with
//! `Content-Range`, or a stream without), `PUT ?digest=` (optional last
//! chunk, then commit), `GET` (status) and `DELETE` (cancel).
//!
//! A session's bytes go to `uploads/<uuid>/data` while a running hash is
//! kept in memory, so the commit needs no second read. The body is written
//! in 1 MiB batches on the blocking pool while the next batch is received.
//! At `PUT` the digest is checked first; only then is the file fsynced and
//! renamed into `blobs/` — a wrong digest is 400 DIGEST_INVALID and the
//! session is dropped. A chunk that arrives out of order is 416 and leaves
//! the session as it was; a chunk shorter or longer than its
//! `Content-Range` is rolled back (400 SIZE_INVALID). Sessions survive a
//! restart: an unknown uuid is looked up on disk and its hash recomputed
//! from the data file.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::json;

use super::auth::Actions;
use super::blobs::{parse_digest, DIGEST_HEADER};
use super::errors::ApiError;
use super::names::{decimal, valid_name, Algo, Digest, Hasher};
use super::storage::{blocking, new_uuid, valid_uuid, Storage};
use super::{drain, Ctx};
use crate::RegistryError;

/// Bytes gathered before one write to disk.
const BATCH: usize = 1 << 20;

/// What a refused chunk may cost us to drain (see [`drain`]).
const CHUNK_DRAIN: usize = 64 << 20;

/// The sessions in progress. The outer lock is held only to look up; each
/// session has its own async lock, held for the whole of a request on it.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Session>>>>,
}

struct Session {
    repo: String,
    algo: Algo,
    size: u64,
    /// The hash of the `size` bytes so far; `None` after a restart or a
    /// lost write, recomputed from the file when next needed.
    hasher: Option<Hasher>,
    data: PathBuf,
    /// Committed or cancelled: later requests get 404.
    gone: bool,
}

impl Sessions {
    fn insert(&self, id: &str, s: Arc<tokio::sync::Mutex<Session>>) {
        self.map.lock().expect("sessions").insert(id.to_owned(), s);
    }

    fn remove(&self, id: &str) {
        self.map.lock().expect("sessions").remove(id);
    }

    /// The session `id`, from memory or (after a restart) from disk.
    async fn get(
        &self,
        store: &Storage,
        id: &str,
    ) -> Result<Arc<tokio::sync::Mutex<Session>>, ApiError> {
        if !valid_uuid(id) {
            return Err(ApiError::upload_unknown(id));
        }
        if let Some(s) = self.map.lock().expect("sessions").get(id) {
            return Ok(s.clone());
        }
        let (st, i) = (store.clone(), id.to_owned());
        let Some((repo, size)) = blocking(move || st.upload_state(&i)).await? else {
            return Err(ApiError::upload_unknown(id));
        };
        let s = Session {
            repo,
            algo: Algo::Sha256,
            size,
            hasher: None,
            data: store.upload_dir(id).join("data"),
            gone: false,
        };
        let mut map = self.map.lock().expect("sessions");
        Ok(map
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(s)))
            .clone())
    }
}

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// 202 (or 204 for status) with where the session stands.
fn session_response(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    Response::builder()
        .status(status)
        .header(header::LOCATION, upload_location(name, id))
        .header(header::RANGE, format!("0-{}", size.saturating_sub(1)))
        .header("docker-upload-uuid", id)
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("response")
}

/// 201 for a blob now in the repository.
fn created(name: &str, d: &Digest) -> Response {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/blobs/{d}"))
        .header(DIGEST_HEADER, d.to_string())
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("response")
}

/// `POST /v2/<name>/blobs/uploads/`.
pub(crate) async fn start(ctx: &Ctx, name: &str, body: Body) -> Result<Response, ApiError> {
    if let Some(m) = ctx.param("mount") {
        let d = parse_digest(m)?;
        if mount(ctx, name, &d).await? {
            return Ok(created(name, &d));
        }
        // Not mountable: an ordinary session, as the spec says (202).
    }
    let algo = match ctx.param("digest-algorithm") {
        None => Algo::Sha256,
        Some(a) => Algo::parse(a).ok_or_else(|| {
            ApiError::digest_invalid("unsupported digest algorithm (sha256, sha512)")
                .detail(json!({ "digest-algorithm": a }))
        })?,
    };
    let digest = ctx.param("digest").map(parse_digest).transpose()?;
    let algo = digest.as_ref().map_or(algo, Digest::algo);
    let id = new_uuid();
    let (st, i, n) = (ctx.st.store.clone(), id.clone(), name.to_owned());
    let data = blocking(move || st.new_upload(&i, &n)).await?;
    let session = Arc::new(tokio::sync::Mutex::new(Session {
        repo: name.to_owned(),
        algo,
        size: 0,
        hasher: Some(algo.hasher()),
        data,
        gone: false,
    }));
    let Some(d) = digest else {
        ctx.st.uploads.insert(&id, session);
        return Ok(session_response(StatusCode::ACCEPTED, name, &id, 0));
    };
    // Monolithic single POST: the whole blob is the body.
    let mut s = session.lock().await;
    if let Err(e) = append(&mut s, body, None).await {
        let (st, i) = (ctx.st.store.clone(), id.clone());
        blocking(move || st.remove_upload(&i)).await?;
        return Err(e);
    }
    if s.size == 0 && d != Digest::of(d.algo(), b"") {
        // An empty body with a digest: the client means POST-then-PUT.
        drop(s);
        ctx.st.uploads.insert(&id, session.clone());
        return Ok(session_response(StatusCode::ACCEPTED, name, &id, 0));
    }
    finish(ctx, &mut s, name, &id, &d).await
}

/// Links blob `d` into `name` when the caller may read it where it is:
/// in `from` (pull permission there needed), or — only without
/// authentication, where every repository is readable — anywhere.
async fn mount(ctx: &Ctx, name: &str, d: &Digest) -> Result<bool, ApiError> {
    let from = ctx.param("from").map(str::to_owned);
    match &from {
        Some(f) if !valid_name(f) || !ctx.may(f, Actions::PULL) => return Ok(false),
        None if ctx.st.auth.is_some() => return Ok(false),
        _ => {}
    }
    let (st, n, dd) = (ctx.st.store.clone(), name.to_owned(), d.clone());
    blocking(move || {
        if let Some(f) = &from {
            if st.repo_blob(f, &dd)?.is_none() {
                return Ok(false);
            }
        }
        // Held so that gc cannot sweep the blob between check and link.
        let _lock = st.lock_shared()?;
        if !st.touch_blob(&dd)? {
            return Ok(false);
        }
        st.link_layer(&n, &dd)?;
        Ok(true)
    })
    .await
}

/// Requests on an existing session.
pub(crate) async fn handle(
    ctx: &Ctx,
    name: &str,
    id: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let session = ctx.st.uploads.get(&ctx.st.store, id).await?;
    let mut s = session.lock().await;
    // gc purges idle uploads from disk behind the server's back.
    if !s.gone && tokio::fs::metadata(&s.data).await.is_err() {
        s.gone = true;
        ctx.st.uploads.remove(id);
    }
    if s.gone || s.repo != name {
        return Err(ApiError::upload_unknown(id));
    }
    match ctx.method {
        Method::GET => Ok(session_response(StatusCode::NO_CONTENT, name, id, s.size)),
        Method::DELETE => {
            s.gone = true;
            ctx.st.uploads.remove(id);
            let (st, i) = (ctx.st.store.clone(), id.to_owned());
            blocking(move || st.remove_upload(&i)).await?;
            Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .header(header::CONTENT_LENGTH, 0)
                .body(Body::empty())
                .expect("response"))
        }
        Method::PATCH => {
            let range = match content_range(ctx, name, id, s.size) {
                Ok(r) => r,
                Err(e) => {
                    drain(body, CHUNK_DRAIN).await;
                    return Err(e);
                }
            };
            append(&mut s, body, range).await?;
            Ok(session_response(StatusCode::ACCEPTED, name, id, s.size))
        }
        Method::PUT => {
            let Some(d) = ctx.param("digest") else {
                return Err(ApiError::digest_invalid("the closing PUT needs ?digest="));
            };
            let d = parse_digest(d)?;
            let range = match content_range(ctx, name, id, s.size) {
                Ok(r) => r,
                Err(e) => {
                    drain(body, CHUNK_DRAIN).await;
                    return Err(e);
                }
            };
            append(&mut s, body, range).await?;
            finish(ctx, &mut s, name, id, &d).await
        }
        _ => Err(ApiError::unsupported(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        )),
    }
}

/// The length a chunk must have, from `Content-Range: <start>-<end>`
/// (inclusive). A chunk must start where the session ends: anything else,
/// or a range that does not parse, is 416 with the session's Range.
fn content_range(ctx: &Ctx, name: &str, id: &str, size: u64) -> Result<Option<u64>, ApiError> {
    let Some(v) = ctx.headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let refuse = |why: &str| {
        ApiError::upload_invalid(StatusCode::RANGE_NOT_SATISFIABLE, why)
            .detail(json!({ "Content-Range": v.to_str().unwrap_or("?"), "offset": size }))
            .header(header::LOCATION, &upload_location(name, id))
            .header(header::RANGE, &format!("0-{}", size.saturating_sub(1)))
            .header("docker-upload-uuid".parse().expect("header name"), id)
    };
    let text = v.to_str().unwrap_or("");
    // The spec's form is "a-b"; "bytes a-b/total" is accepted too.
    let text = text
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    let text = text.split('/').next().unwrap_or("");
    let Some((a, b)) = text
        .split_once('-')
        .and_then(|(a, b)| Some((decimal(a)?, decimal(b)?)))
    else {
        return Err(refuse("Content-Range is not <start>-<end>"));
    };
    if b < a {
        return Err(refuse("Content-Range ends before it starts"));
    }
    if a != size {
        return Err(refuse(
            "chunk out of order: it must start at the session's offset",
        ));
    }
    Ok(Some(b - a + 1))
}

/// Where one body write stands.
struct Writer {
    file: std::fs::File,
    hasher: Hasher,
    written: u64,
}

enum PumpError {
    Body(axum::Error),
    Io(std::io::Error),
    /// The write task died: the hash state is gone with it.
    Lost(String),
}

/// Streams `body` to the writer, 1 MiB at a time, each batch written and
/// hashed on the blocking pool while the next one is received.
async fn pump(w: Writer, body: Body) -> (Option<Writer>, Result<(), PumpError>) {
    let mut stream = body.into_data_stream();
    let mut idle = Some(w);
    let mut pending: Option<tokio::task::JoinHandle<(Writer, std::io::Result<()>)>> = None;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_len = 0usize;
    let mut outcome = Ok(());
    loop {
        let (end, err) = match stream.next().await {
            Some(Ok(b)) => {
                batch_len += b.len();
                batch.push(b);
                (false, None)
            }
            Some(Err(e)) => (true, Some(e)),
            None => (true, None),
        };
        if batch_len >= BATCH || (end && batch_len > 0) {
            if let Some(p) = pending.take() {
                match p.await {
                    Ok((w, Ok(()))) => idle = Some(w),
                    Ok((w, Err(e))) => return (Some(w), Err(PumpError::Io(e))),
                    Err(e) => return (None, Err(PumpError::Lost(e.to_string()))),
                }
            }
            let Some(mut w) = idle.take() else {
                return (None, Err(PumpError::Lost("no writer".into())));
            };
            let bufs = std::mem::take(&mut batch);
            batch_len = 0;
            pending = Some(tokio::task::spawn_blocking(move || {
                let r = bufs.iter().try_for_each(|b| {
                    w.file.write_all(b)?;
                    w.hasher.update(b);
                    w.written += b.len() as u64;
                    Ok(())
                });
                (w, r)
            }));
        }
        if let Some(e) = err {
            outcome = Err(PumpError::Body(e));
        }
        if end {
            break;
        }
    }
    if let Some(p) = pending.take() {
        match p.await {
            Ok((w, Ok(()))) => idle = Some(w),
            Ok((w, Err(e))) => return (Some(w), Err(PumpError::Io(e))),
            Err(e) => return (None, Err(PumpError::Lost(e.to_string()))),
        }
    }
    (idle, outcome)
}

/// Appends `body` to the session. With `expect` (a chunk with a
/// Content-Range) a body of another length, or one cut short, is rolled
/// back; a stream keeps what arrived, and the client can ask where it
/// stands.
async fn append(s: &mut Session, body: Body, expect: Option<u64>) -> Result<(), ApiError> {
    ensure_hasher(s).await?;
    let before = (s.size, s.hasher.clone());
    let data = s.data.clone();
    let file = blocking(move || {
        std::fs::OpenOptions::new()
            .append(true)
            .open(&data)
            .map_err(|e| RegistryError::io(&data, e))
    })
    .await?;
    let hasher = s.hasher.clone().unwrap_or_else(|| s.algo.hasher());
    let (w, res) = pump(
        Writer {
            file,
            hasher,
            written: 0,
        },
        body,
    )
    .await;
    match &w {
        Some(w) => {
            s.size += w.written;
            s.hasher = Some(w.hasher.clone());
        }
        None => s.hasher = None,
    }
    let got = w.as_ref().map(|w| w.written);
    let failed = match res {
        Err(PumpError::Body(e)) => Some(ApiError::upload_invalid(
            StatusCode::BAD_REQUEST,
            format!("reading the request body: {e}"),
        )),
        Err(PumpError::Io(e)) => Some(ApiError::internal(format!("{}: {e}", s.data.display()))),
        Err(PumpError::Lost(e)) => Some(ApiError::internal(format!("upload writer: {e}"))),
        Ok(()) => match expect {
            Some(n) if got != Some(n) => Some(ApiError::size_invalid(format!(
                "Content-Range announces {n} bytes, the body has {}",
                got.unwrap_or(0)
            ))),
            _ => None,
        },
    };
    let Some(err) = failed else {
        return Ok(());
    };
    if expect.is_some() || s.hasher.is_none() {
        // Back to the state before this chunk (or to what is on disk when
        // the hash state was lost).
        let (size, hasher) = before;
        let data = s.data.clone();
        let roll_back = expect.is_some();
        let len = blocking(move || {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&data)
                .map_err(|e| RegistryError::io(&data, e))?;
            if roll_back {
                f.set_len(size).map_err(|e| RegistryError::io(&data, e))?;
            }
            f.metadata()
                .map(|m| m.len())
                .map_err(|e| RegistryError::io(&data, e))
        })
        .await?;
        s.size = len;
        s.hasher = if roll_back { hasher } else { None };
    }
    Err(err)
}

/// Recomputes the running hash from the data file when it is not known.
async fn ensure_hasher(s: &mut Session) -> Result<(), ApiError> {
    if s.hasher.is_some() {
        return Ok(());
    }
    let (data, algo) = (s.data.clone(), s.algo);
    let (h, n) = blocking(move || hash_file(&data, algo)).await?;
    s.hasher = Some(h);
    s.size = n;
    Ok(())
}

fn hash_file(path: &PathBuf, algo: Algo) -> Result<(Hasher, u64), RegistryError> {
    let mut f = std::fs::File::open(path).map_err(|e| RegistryError::io(path, e))?;
    let mut h = algo.hasher();
    let mut buf = vec![0u8; BATCH];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| RegistryError::io(path, e))?;
        if k == 0 {
            return Ok((h, n));
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
}

/// Checks the digest and commits the upload as blob `d` of `name`.
async fn finish(
    ctx: &Ctx,
    s: &mut Session,
    name: &str,
    id: &str,
    d: &Digest,
) -> Result<Response, ApiError> {
    ensure_hasher(s).await?;
    let computed = if s.algo == d.algo() {
        s.hasher.clone().map(Hasher::finish)
    } else {
        let (data, algo) = (s.data.clone(), d.algo());
        Some(blocking(move || hash_file(&data, algo)).await?.0.finish())
    };
    let store = ctx.st.store.clone();
    let (i, n, dd, data) = (id.to_owned(), name.to_owned(), d.clone(), s.data.clone());
    s.gone = true;
    ctx.st.uploads.remove(id);
    if computed.as_ref() != Some(d) {
        let computed = computed.map(|c| c.to_string());
        blocking(move || store.remove_upload(&i)).await?;
        return Err(
            ApiError::digest_invalid("provided digest did not match uploaded content")
                .detail(json!({ "digest": d.to_string(), "computed": computed })),
        );
    }
    blocking(move || {
        std::fs::File::open(&data)
            .and_then(|f| f.sync_all())
            .map_err(|e| RegistryError::io(&data, e))?;
        // Held so that gc cannot sweep the blob before its link exists.
        let _lock = store.lock_shared()?;
        store.commit_blob(&data, &dd)?;
        store.link_layer(&n, &dd)?;
        store.remove_upload(&i)
    })
    .await?;
    Ok(created(name, d))
}
