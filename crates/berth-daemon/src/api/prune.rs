//! `GET /system/df` and the prunes of containers, images and build cache.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::Query;
use crate::core::prune::{parse_until, PruneFilter};
use crate::core::Daemon;
use crate::error::{DaemonError, Result};

fn prune_filter(q: &Query, allowed: &[&str]) -> Result<(PruneFilter, berth_api::Filters)> {
    let f = q.filters()?;
    if let Some(k) = f.unknown_key(allowed) {
        return Err(DaemonError::BadRequest(format!("invalid filter '{k}'")));
    }
    let until = match f.get("until").last() {
        None => None,
        Some(v) => Some(parse_until(v).ok_or_else(|| {
            DaemonError::BadRequest(format!(
                "failed to parse value as time or duration: \"{v}\""
            ))
        })?),
    };
    let pf = PruneFilter {
        until,
        labels: f.get("label").to_vec(),
        not_labels: f.get("label!").to_vec(),
    };
    Ok((pf, f))
}

pub(super) async fn df(State(d): State<Arc<Daemon>>) -> Result<Json<Value>> {
    let v = tokio::task::spawn_blocking(move || d.disk_usage())
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))??;
    Ok(Json(v))
}

pub(super) async fn containers(State(d): State<Arc<Daemon>>, q: Query) -> Result<Json<Value>> {
    let (f, _) = prune_filter(&q, &["until", "label", "label!"])?;
    Ok(Json(d.prune_containers(&f).await?))
}

pub(super) async fn images(State(d): State<Arc<Daemon>>, q: Query) -> Result<Json<Value>> {
    let (f, raw) = prune_filter(&q, &["until", "label", "label!", "dangling"])?;
    let all = match raw.get("dangling").last().map(String::as_str) {
        None | Some("1" | "true" | "True") => false,
        Some("0" | "false" | "False") => true,
        Some(v) => {
            return Err(DaemonError::BadRequest(format!(
                "invalid filter 'dangling={v}'"
            )))
        }
    };
    let v = tokio::task::spawn_blocking(move || d.prune_images(all, &f))
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))??;
    Ok(Json(v))
}

/// `POST /build/prune`: the builder's cache keys (the images they point
/// at are layers shared with tagged images, freed by image prune).
pub(super) async fn build_cache(State(d): State<Arc<Daemon>>, q: Query) -> Result<Json<Value>> {
    let _ = q.filters()?;
    let dir = d.images.root().join("buildcache");
    let bytes = crate::core::volumes::dir_size(&dir);
    let images = d.images.clone();
    tokio::task::spawn_blocking(move || berth_build::Builder::prune_cache(&images))
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))?;
    Ok(Json(
        json!({"CachesDeleted": null, "SpaceReclaimed": bytes}),
    ))
}
