//! `/networks/...` handlers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::Query;
use crate::core::network::{self, ConnectBody, DisconnectBody, NetworkCreateBody};
use crate::core::Daemon;
use crate::error::{DaemonError, Result};

fn body<T: DeserializeOwned + Default>(b: &Bytes) -> Result<T> {
    if b.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(b).map_err(|e| DaemonError::BadRequest(format!("invalid JSON: {e}")))
}

pub(super) async fn list(State(d): State<Arc<Daemon>>, q: Query) -> Result<Json<Vec<Value>>> {
    let filters = q.filters()?;
    let n = d.networking()?;
    let mut out = Vec::new();
    for m in n.list() {
        let in_use = !n.net.endpoints_of(&m.id).is_empty();
        if network::network_matches(&m, &filters, in_use)? {
            out.push(d.network_view(&m, false));
        }
    }
    Ok(Json(out))
}

/// `GET /networks/{id}?verbose=…&scope=…`. Every network here is local:
/// `verbose` adds nothing to a local network's answer (Docker's verbose
/// details are swarm services), and a `scope` other than `local` finds
/// nothing, as in Docker.
pub(super) async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Json<Value>> {
    // Go's strconv.ParseBool reads it in Docker.
    const GO_BOOLS: [&str; 12] = [
        "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False",
    ];
    if let Some(v) = q.get("verbose").filter(|v| !v.is_empty()) {
        if !GO_BOOLS.contains(&v) {
            return Err(DaemonError::BadRequest(format!(
                "invalid value for verbose: {v}: strconv.ParseBool: parsing {v:?}: invalid syntax"
            )));
        }
    }
    let m = d.networking()?.find(&id)?;
    let scope = q.get("scope").unwrap_or_default();
    if !scope.is_empty() && scope != "local" {
        return Err(DaemonError::NotFound(format!("network {id} not found")));
    }
    Ok(Json(d.network_view(&m, true)))
}

pub(super) async fn create(State(d): State<Arc<Daemon>>, b: Bytes) -> Result<Response> {
    let req: NetworkCreateBody = body(&b)?;
    let id = d.create_network(req).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id, "Warning": ""}))).into_response())
}

pub(super) async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response> {
    d.remove_network(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn prune(State(d): State<Arc<Daemon>>, q: Query) -> Result<Json<Value>> {
    let filters = q.filters()?;
    if let Some(k) = filters.unknown_key(&["label", "label!", "until"]) {
        return Err(DaemonError::BadRequest(format!("invalid filter '{k}'")));
    }
    let labels = filters.get("label").to_vec();
    let not_labels = filters.get("label!").to_vec();
    let until = filters
        .get("until")
        .first()
        .map(|u| {
            crate::core::logs::parse_time(u)
                .ok_or_else(|| DaemonError::BadRequest(format!("invalid until filter {u:?}")))
        })
        .transpose()?;
    let has = |m: &network::NetworkMeta, l: &str| match l.split_once('=') {
        Some((k, v)) => m.labels.get(k).is_some_and(|x| x == v),
        None => m.labels.contains_key(l),
    };
    let gone = d
        .prune_networks(|m| {
            let created = chrono::DateTime::parse_from_rfc3339(&m.created)
                .map(|t| t.timestamp() as f64)
                .unwrap_or(0.0);
            !labels.iter().all(|l| has(m, l))
                || not_labels.iter().any(|l| has(m, l))
                || until.is_some_and(|u| created >= u)
        })
        .await?;
    Ok(Json(json!({ "NetworksDeleted": gone })))
}

pub(super) async fn connect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<Response> {
    let req: ConnectBody = body(&b)?;
    d.connect_network(&id, req).await?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn disconnect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<Response> {
    let req: DisconnectBody = body(&b)?;
    d.disconnect_network(&id, req).await?;
    Ok(StatusCode::OK.into_response())
}
