//! `pause`, `unpause`, `update`, `top` and `stats` of containers.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::Query;
use crate::core::resources::UpdateBody;
use crate::core::Daemon;
use crate::error::{DaemonError, Result};

pub(super) async fn pause(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response> {
    let c = d.container(&id)?;
    d.pause(&c).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn unpause(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response> {
    let c = d.container(&id)?;
    d.unpause(&c).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn update(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let c = d.container(&id)?;
    let u: UpdateBody = if body.iter().all(u8::is_ascii_whitespace) {
        UpdateBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| DaemonError::BadRequest(format!("invalid JSON: {e}")))?
    };
    let warnings = d.update(&c, u).await?;
    Ok(Json(json!({"Warnings": warnings})).into_response())
}

pub(super) async fn top(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let c = d.container(&id)?;
    Ok(Json(d.top(&c, q.get("ps_args").unwrap_or("")).await?).into_response())
}

/// `GET /containers/{id}/stats`: one sample a second while streaming; with
/// `stream=0` one answer carrying two samples a second apart (the CLI
/// computes CPU % from their difference); `one-shot` skips the wait.
pub(super) async fn stats(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let c = d.container(&id)?;
    let json = [(header::CONTENT_TYPE, "application/json")];
    if !q.flag_or("stream", true) {
        let line = d.stats_once(&c, q.flag("one-shot")).await;
        return Ok((StatusCode::OK, json, line).into_response());
    }
    let sub = d.stats_stream(&c).await;
    let body = Body::from_stream(futures_util::stream::unfold(sub, |mut sub| async move {
        let line = sub.next_line().await?;
        Some((Ok::<_, std::io::Error>(Bytes::from(line)), sub))
    }));
    Ok((StatusCode::OK, json, body).into_response())
}
