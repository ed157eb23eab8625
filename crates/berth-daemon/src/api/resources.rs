//! `pause`, `unpause`, `update`, `top` and `stats` of containers.

use std::sync::Arc;
use std::time::Duration;

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

fn line(v: &serde_json::Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
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
    let stream = q.flag_or("stream", true);
    let one_shot = q.flag("one-shot");
    let with_pre = |mut cur: serde_json::Value, prev: Option<&serde_json::Value>| {
        let (pre_read, pre_cpu) = match prev {
            Some(p) => (p["read"].clone(), p["cpu_stats"].clone()),
            None => (
                json!(crate::core::container::ZERO_TIME),
                json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}}),
            ),
        };
        cur["preread"] = pre_read;
        cur["precpu_stats"] = pre_cpu;
        cur
    };
    if !stream {
        let first = d.stats_sample(&c).await;
        let v = if one_shot || !c.status().is_active() {
            with_pre(first, None)
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let second = d.stats_sample(&c).await;
            with_pre(second, Some(&first))
        };
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            line(&v),
        )
            .into_response());
    }
    let body = Body::from_stream(futures_util::stream::unfold(
        (d, c, None::<serde_json::Value>),
        move |(d, c, prev)| async move {
            if prev.is_some() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let cur = d.stats_sample(&c).await;
            let out = with_pre(cur.clone(), prev.as_ref());
            Some((Ok::<_, std::io::Error>(line(&out)), (d, c, Some(cur))))
        },
    ));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
