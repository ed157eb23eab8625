//! `POST /build`: the legacy builder's API. The tar context is unpacked
//! once into the store's scratch space, each file hashed as it is written
//! (COPY's cache check then reads nothing again); `remote` contexts (git,
//! URLs) are refused and `cachefrom` is accepted, not used. Errors found
//! before the first step (bad query, no Dockerfile, parse errors) are HTTP
//! errors, later ones `errorDetail` lines in the 200 stream, as dockerd
//! does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::image::{ErrorDetail, JsonMessage};
use berth_api::Reference;
use berth_build::{BuildError, BuildOptions, BuildOutput, Builder};
use berth_registry::client::endpoint::{api_host, normalize_server};
use berth_registry::client::{AuthConfig, Platform};
use futures_util::TryStreamExt;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::Query;
use crate::core::build::BuildBackend;
use crate::core::Daemon;
use crate::error::{DaemonError, Result};

fn json_line(m: &JsonMessage) -> Bytes {
    let mut v = serde_json::to_vec(m).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn build_err(e: BuildError) -> DaemonError {
    match e {
        BuildError::NotFound(m) if m.starts_with("pull access denied") => DaemonError::NotFound(m),
        BuildError::Internal(m) => DaemonError::Internal(m),
        other => DaemonError::BadRequest(other.to_string()),
    }
}

/// A JSON map query parameter (`buildargs`, `labels`).
fn json_map<T: serde::de::DeserializeOwned>(q: &Query, key: &str) -> Result<BTreeMap<String, T>> {
    match q.get(key).filter(|v| !v.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(v) => serde_json::from_str(v)
            .map_err(|e| DaemonError::BadRequest(format!("invalid {key} {v:?}: {e}"))),
    }
}

/// `--platform`: builds run their steps here, so only the host's platform
/// can be built (dockerd would need an emulator for another).
fn check_platform(p: &str) -> Result<()> {
    let want = Platform::parse(p).map_err(|e| DaemonError::BadRequest(e.to_string()))?;
    let host = Platform::host();
    if want.os != host.os {
        return Err(DaemonError::BadRequest(format!(
            "{p:?}: operating system is not supported"
        )));
    }
    if want.architecture != host.architecture
        || want
            .variant
            .as_ref()
            .is_some_and(|v| host.variant.as_ref() != Some(v))
    {
        return Err(DaemonError::BadRequest(format!(
            "{p:?}: platform is not supported: this daemon builds only for {}/{}",
            host.os, host.architecture
        )));
    }
    Ok(())
}

/// `X-Registry-Config`: base64 JSON of registry → credentials, the ones a
/// build may pull with. A header that does not decode is anonymous, as
/// dockerd treats it.
fn registry_config(headers: &HeaderMap) -> HashMap<String, AuthConfig> {
    use base64::Engine as _;
    let Some(v) = headers
        .get("X-Registry-Config")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
    else {
        return HashMap::new();
    };
    let v = v.trim_end_matches('=');
    let bytes = [
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ]
    .iter()
    .find_map(|e| e.decode(v).ok());
    let Some(map) =
        bytes.and_then(|b| serde_json::from_slice::<HashMap<String, serde_json::Value>>(&b).ok())
    else {
        return HashMap::new();
    };
    map.into_iter()
        .filter_map(|(server, a)| {
            let a = serde_json::from_value::<AuthConfig>(a).ok()?.normalized();
            Some((api_host(&normalize_server(&server)).to_string(), a))
        })
        .collect()
}

/// Removes the unpacked context when the build ends, however it ends.
struct ContextDir(std::path::PathBuf);

impl Drop for ContextDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `POST /build`.
pub(super) async fn build(
    State(d): State<Arc<Daemon>>,
    q: Query,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let mut tags = Vec::new();
    for t in q.all("t") {
        let r = Reference::parse_normalized(&t)
            .map_err(|e| DaemonError::BadRequest(format!("invalid tag {t:?}: {e}")))?;
        if r.digest().is_some() {
            return Err(DaemonError::BadRequest(format!(
                "invalid tag {t:?}: a tag cannot contain a digest"
            )));
        }
        tags.push(r);
    }
    // A git repository or URL would have the daemon fetch the context.
    if let Some(r) = q.get("remote").filter(|r| !r.is_empty()) {
        return Err(DaemonError::NotImplemented(format!(
            "building from a remote context ({r}) is not supported: send the context as the request body"
        )));
    }
    // `cachefrom` is checked and accepted; the steps of images built here
    // are in the local cache already, and an image pulled from elsewhere
    // is not matched step by step against its history (documented).
    if let Some(v) = q.get("cachefrom").filter(|v| !v.is_empty()) {
        let refs: Vec<String> = serde_json::from_str(v)
            .map_err(|e| DaemonError::BadRequest(format!("invalid cachefrom {v:?}: {e}")))?;
        tracing::debug!(
            ?refs,
            "build: cache-from images are not used as cache sources"
        );
    }
    let build_args: BTreeMap<String, Option<String>> = json_map(&q, "buildargs")?;
    let labels: BTreeMap<String, String> = json_map(&q, "labels")?;
    let dockerfile_name = q
        .get("dockerfile")
        .filter(|f| !f.is_empty())
        .unwrap_or("Dockerfile")
        .to_string();
    let quiet = q.flag("q");
    let rm = q.flag_or("rm", true) || q.flag("forcerm");
    let no_cache = q.flag("nocache");
    let target = q
        .get("target")
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let pull = q.flag("pull");
    let network_mode = q
        .get("networkmode")
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let platform = q
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let auths = registry_config(&headers);

    // Unpack the context (the whole body) before anything is answered.
    let ctx_dir = d
        .images
        .tmp_dir()
        .join(format!("context-{}", crate::core::new_id()));
    std::fs::create_dir_all(&ctx_dir)
        .map_err(|e| DaemonError::Internal(format!("create {}: {e}", ctx_dir.display())))?;
    let guard = ContextDir(ctx_dir.clone());
    // The digests taken while unpacking are keyed by real paths.
    let ctx_dir = std::fs::canonicalize(&ctx_dir)
        .map_err(|e| DaemonError::Internal(format!("resolve {}: {e}", ctx_dir.display())))?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut reader = SyncIoBridge::new(StreamReader::new(stream));
    let dir = ctx_dir.clone();
    // Each file is hashed as it is written: COPY's cache check reads none.
    let digests = tokio::task::spawn_blocking(move || {
        let r = berth_build::unpack_context(&mut reader, &dir);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        r
    })
    .await
    .map_err(|e| DaemonError::Internal(format!("worker failed: {e}")))?
    .map_err(build_err)?;

    // Checked once the body is read: a client still sending it would see
    // a broken pipe instead of the answer.
    if let Some(p) = &platform {
        check_platform(p)?;
    }
    let df_path = berth_build::ignore::clean(&dockerfile_name);
    let dockerfile = match std::fs::read_to_string(ctx_dir.join(&df_path)) {
        Ok(t) if !df_path.is_empty() => t,
        _ => {
            return Err(DaemonError::BadRequest(format!(
                "Cannot locate specified Dockerfile: {dockerfile_name}"
            )))
        }
    };
    let opts = BuildOptions {
        dockerfile,
        context: ctx_dir.clone(),
        context_digests: Arc::new(digests),
        tags: tags.clone(),
        build_args,
        target,
        no_cache,
        labels,
        rm,
        pull,
        network_mode,
        platform,
    };
    Builder::check(&opts).map_err(build_err)?;

    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(64);
    let backend = Arc::new(BuildBackend::new(
        d.clone(),
        tokio::runtime::Handle::current(),
        auths,
    ));
    let builder = Builder::new(d.images.clone(), backend);
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let send = |m: JsonMessage| {
            let _ = tx.blocking_send(Ok(json_line(&m)));
        };
        let mut out = |o: BuildOutput| match o {
            BuildOutput::Stream(s) if !quiet => send(JsonMessage::stream(s)),
            BuildOutput::Stream(_) => {}
            BuildOutput::Progress(m) if !quiet => send(m),
            BuildOutput::Progress(_) => {}
            BuildOutput::Aux(id) => send(JsonMessage {
                aux: Some(serde_json::json!({ "ID": id })),
                ..Default::default()
            }),
        };
        match builder.build(&opts, &mut out) {
            Ok(id) => {
                out(BuildOutput::Aux(id.clone()));
                if quiet {
                    send(JsonMessage::stream(format!("{id}\n")));
                } else {
                    let short = &id.strip_prefix("sha256:").unwrap_or(&id)[..12];
                    send(JsonMessage::stream(format!("Successfully built {short}\n")));
                    for t in &tags {
                        let t = if t.is_name_only() {
                            t.with_tag("latest").unwrap_or_else(|_| t.clone())
                        } else {
                            t.clone()
                        };
                        send(JsonMessage::stream(format!(
                            "Successfully tagged {}\n",
                            t.familiar_string()
                        )));
                    }
                }
            }
            Err(e) => {
                let code = match &e {
                    BuildError::RunFailed { code, .. } => Some(*code),
                    _ => None,
                };
                let text = e.to_string();
                send(JsonMessage {
                    error_detail: Some(ErrorDetail {
                        code,
                        message: text.clone(),
                    }),
                    error: Some(text),
                    ..Default::default()
                });
            }
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|x| (x, rx))
        })),
    )
        .into_response())
}
