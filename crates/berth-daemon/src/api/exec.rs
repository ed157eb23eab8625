//! `/containers/{id}/exec` and `/exec/{id}/...`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::container::CreateResponse;

use berth_api::version::ApiVersion;

use super::attach::{
    api_version, detach_keys, is_upgrade, upgrade_and_serve, Session, StdinMode, Wanted,
};
use super::{Query, RequestedVersion};
use crate::core::exec::ExecConfig;
use crate::core::Daemon;
use crate::error::{DaemonError, Result};

fn json_body<T: serde::de::DeserializeOwned + Default>(b: &[u8]) -> Result<T> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(b).map_err(|e| DaemonError::BadRequest(format!("invalid JSON: {e}")))
}

pub(super) async fn create(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let c = d.container(&id)?;
    let cfg: ExecConfig = json_body(&body)?;
    if !cfg.detach_keys.is_empty() {
        // dockerd checks them here; the exec's attach uses them.
        detach_keys(&cfg.detach_keys, "escape")?;
    }
    let exec_id = d.exec_create(&c, cfg)?;
    Ok((
        StatusCode::CREATED,
        Json(CreateResponse {
            id: exec_id,
            warnings: Vec::new(),
        }),
    )
        .into_response())
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
    tty: bool,
}

pub(super) async fn start(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    mut req: Request,
) -> Result<Response> {
    let e = d.exec(&id)?;
    let upgrade = is_upgrade(&req);
    let version = api_version(req.extensions().get::<RequestedVersion>());
    let body = std::mem::take(req.body_mut());
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|err| DaemonError::BadRequest(format!("reading body: {err}")))?;
    let start: StartBody = json_body(&bytes)?;
    if start.detach {
        d.exec_start(&e).await?;
        return Ok(StatusCode::OK.into_response());
    }
    // Subscribe before the process runs: the shim holds its output until the
    // daemon connects, and the daemon hands it to this subscriber.
    let output = e.stdio.subscribe();
    let tty = e.config.tty || start.tty;
    let wanted = Wanted {
        stdout: e.config.attach_stdout,
        stderr: e.config.attach_stderr,
        raw: tty,
    };
    // As dockerd: the stream is up before the process starts, and a failed
    // start is reported inside it (the client reads the exit code, 126/127,
    // from the exec's inspect).
    let d2 = d.clone();
    let e2 = e.clone();
    let run = async move {
        if let Err(err) = d2.exec_start(&e2).await {
            let text = format!("{err}\r\n");
            e2.stdio.output(1, Bytes::from(text)).await;
            e2.stdio.end();
        }
    };
    if upgrade {
        // dockerd's exec attach: CloseStdin is always set, the detach keys
        // are the exec's own (checked at create).
        let stdin = e.config.attach_stdin.then(|| StdinMode {
            tty,
            detach_keys: detach_keys(&e.config.detach_keys, "escape").unwrap_or_default(),
            close_stdin: true,
        });
        let session = Session {
            hub: e.stdio.clone(),
            output: Some(output),
            prelude: Vec::new(),
            wanted,
            stdin,
        };
        let ctype = if !tty && version >= ApiVersion(1, 42) {
            "application/vnd.docker.multiplexed-stream"
        } else {
            "application/vnd.docker.raw-stream"
        };
        let resp = upgrade_and_serve(&mut req, session, ctype);
        tokio::spawn(run);
        return Ok(resp);
    }
    tokio::spawn(run);
    let body = Body::from_stream(futures_util::stream::unfold(
        output,
        move |mut sub| async move {
            loop {
                let (stream, data) = sub.recv().await?;
                if let Some(b) = wanted.encode(stream, &data) {
                    return Some((Ok::<_, std::io::Error>(b), sub));
                }
            }
        },
    ));
    Ok((StatusCode::OK, body).into_response())
}

pub(super) async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response> {
    let e = d.exec(&id)?;
    Ok(Json(e.inspect()).into_response())
}

pub(super) async fn resize(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let e = d.exec(&id)?;
    let h = q.int("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = q.int("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    d.exec_resize(&e, h, w).await?;
    Ok(StatusCode::OK.into_response())
}
