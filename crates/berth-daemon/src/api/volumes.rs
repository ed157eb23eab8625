//! `/volumes/...` handlers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::Query;
use crate::core::volumes::{volume_json, Volume, VolumeCreate};
use crate::core::Daemon;
use crate::error::{DaemonError, Result};

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))?
}

pub(super) async fn create(State(d): State<Arc<Daemon>>, body: Bytes) -> Result<Response> {
    let req: VolumeCreate = if body.is_empty() {
        VolumeCreate::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| DaemonError::BadRequest(format!("invalid JSON: {e}")))?
    };
    let d2 = d.clone();
    let (v, _) = blocking(move || d2.volume_create(req)).await?;
    Ok((StatusCode::CREATED, Json(volume_json(&d, &v, None))).into_response())
}

fn label_matches(v: &Volume, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
        None => v.labels.contains_key(want),
    }
}

fn bool_filter(key: &str, vals: &[String]) -> Result<Option<bool>> {
    match vals.last().map(String::as_str) {
        None => Ok(None),
        Some("1" | "true" | "True") => Ok(Some(true)),
        Some("0" | "false" | "False") => Ok(Some(false)),
        Some(v) => Err(DaemonError::BadRequest(format!(
            "invalid filter '{key}={v}'"
        ))),
    }
}

pub(super) async fn list(State(d): State<Arc<Daemon>>, q: Query) -> Result<Json<Value>> {
    let f = q.filters()?;
    if let Some(k) = f.unknown_key(&["dangling", "name", "label", "driver"]) {
        return Err(DaemonError::BadRequest(format!("invalid filter '{k}'")));
    }
    let dangling = bool_filter("dangling", f.get("dangling"))?;
    let vols = d.volumes()?;
    let out: Vec<Value> = vols
        .iter()
        .filter(|v| {
            let names = f.get("name");
            names.is_empty() || names.iter().any(|n| v.name.contains(n.as_str()))
        })
        .filter(|v| {
            let drivers = f.get("driver");
            drivers.is_empty() || drivers.iter().any(|n| &v.driver == n)
        })
        .filter(|v| f.get("label").iter().all(|l| label_matches(v, l)))
        .filter(|v| match dangling {
            None => true,
            Some(want) => d.volume_users(&v.name).is_empty() == want,
        })
        .map(|v| volume_json(&d, v, None))
        .collect();
    Ok(Json(json!({"Volumes": out, "Warnings": null})))
}

pub(super) async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    let v = d.volume(&name)?;
    Ok(Json(volume_json(&d, &v, None)))
}

pub(super) async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response> {
    let force = q.flag("force");
    blocking(move || d.volume_remove(&name, force)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// From API 1.42 only anonymous volumes go unless `all=true`; before, as
/// dockerd does for older clients, every unused volume goes. `label` and
/// `label!` select.
pub(super) async fn prune(
    State(d): State<Arc<Daemon>>,
    version: Option<axum::Extension<super::RequestedVersion>>,
    q: Query,
) -> Result<Json<Value>> {
    let f = q.filters()?;
    if let Some(k) = f.unknown_key(&["label", "label!", "all"]) {
        return Err(DaemonError::BadRequest(format!("invalid filter '{k}'")));
    }
    let old_api = super::attach::api_version(version.as_ref().map(|v| &v.0))
        < berth_api::version::ApiVersion(1, 42);
    let all = bool_filter("all", f.get("all"))?.unwrap_or(old_api);
    let labels = f.get("label").to_vec();
    let not_labels = f.get("label!").to_vec();
    let (names, bytes) = blocking(move || {
        d.volumes_prune(all, &|v| {
            labels.iter().all(|l| label_matches(v, l))
                && !not_labels.iter().any(|l| label_matches(v, l))
        })
    })
    .await?;
    Ok(Json(json!({
        "VolumesDeleted": if names.is_empty() { Value::Null } else { json!(names) },
        "SpaceReclaimed": bytes,
    })))
}
