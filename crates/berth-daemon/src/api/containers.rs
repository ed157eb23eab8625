//! `/containers/...` handlers.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::container::{ContainerCreateBody, ContainerSummary, CreateResponse, WaitResponse};

use super::Query;
use crate::core::logs::{self, LogsRequest};
use crate::core::{wait, CreateRequest, Daemon, Status, WaitCondition};
use crate::error::{DaemonError, Result};

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn create(
    State(d): State<Arc<Daemon>>,
    q: Query,
    body: Bytes,
) -> Result<Response> {
    let body: ContainerCreateBody = if body.is_empty() {
        ContainerCreateBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| DaemonError::BadRequest(format!("invalid JSON: {e}")))?
    };
    let req = CreateRequest {
        name: q.get("name").map(str::to_string),
        body,
    };
    let d2 = d.clone();
    let (id, warnings) = tokio::task::spawn_blocking(move || d2.create(req))
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))??;
    Ok((StatusCode::CREATED, Json(CreateResponse { id, warnings })).into_response())
}

const LIST_FILTERS: &[&str] = &[
    "status", "name", "id", "label", "ancestor", "exited", "before", "since", "network", "volume",
    "health", "is-task", "publish", "expose",
];

fn matches_label(labels: &std::collections::BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

/// The ports a `publish=` or `expose=` filter names, as Docker reads them:
/// `PORT[/PROTO]` or `START-END[/PROTO]` (tcp by default), no host part.
fn port_filter(key: &str, values: &[String]) -> Result<std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeSet::new();
    for value in values {
        if value.contains(':') {
            return Err(DaemonError::BadRequest(format!(
                "filter for '{key}' should not contain ':': {value}"
            )));
        }
        let (ports, proto) = match value.split_once('/') {
            Some((p, "")) => (p, "tcp".to_string()),
            Some((p, proto)) => (p, proto.to_ascii_lowercase()),
            None => (value.as_str(), "tcp".to_string()),
        };
        // Docker's wording (go-connections' nat.ParsePortRange).
        let bad = |why: String| {
            DaemonError::BadRequest(format!("error while looking up for {key} {value}: {why}"))
        };
        if ports.is_empty() {
            return Err(bad("empty string specified for ports".into()));
        }
        let num = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| bad(format!("strconv.ParseUint: parsing {s:?}: invalid syntax")))
        };
        let (start, end) = match ports.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(ports)?, num(ports)?),
        };
        if start > end {
            return Err(bad(format!("invalid range specified for port: {ports}")));
        }
        for p in start..=end {
            out.insert(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

/// `80` → `80/tcp`, as the keys of `PortBindings` and `ExposedPorts` mean.
fn port_key(k: &str) -> String {
    match k.split_once('/') {
        Some((p, proto)) => format!("{p}/{}", proto.to_ascii_lowercase()),
        None => format!("{k}/tcp"),
    }
}

pub(super) async fn list(
    State(d): State<Arc<Daemon>>,
    q: Query,
) -> Result<Json<Vec<ContainerSummary>>> {
    let filters = q.filters()?;
    if let Some(k) = filters.unknown_key(LIST_FILTERS) {
        return Err(DaemonError::BadRequest(format!("invalid filter '{k}'")));
    }
    for s in filters.get("status") {
        if ![
            "created",
            "restarting",
            "running",
            "removing",
            "paused",
            "exited",
            "dead",
        ]
        .contains(&s.as_str())
        {
            return Err(DaemonError::BadRequest(format!(
                "invalid filter 'status={s}'"
            )));
        }
    }
    for h in filters.get("health") {
        if !["starting", "healthy", "unhealthy", "none"].contains(&h.as_str()) {
            return Err(DaemonError::BadRequest(format!(
                "Unrecognised filter value for health: {h}"
            )));
        }
    }
    let publish = port_filter("publish", filters.get("publish"))?;
    let expose = port_filter("expose", filters.get("expose"))?;
    let all =
        q.flag("all") || !filters.get("status").is_empty() || !filters.get("exited").is_empty();
    let limit = q.int("limit")?.filter(|n| *n > 0);
    let mut out: Vec<ContainerSummary> = Vec::new();
    let mut containers = d.containers();
    containers.reverse(); // newest first
    let ancestors: Vec<String> = filters
        .get("ancestor")
        .iter()
        .filter_map(|a| d.images.resolve(a).ok().map(|i| i.id().to_string()))
        .collect();
    let pos = |name: &str| -> Result<usize> {
        let c = d.container(name)?;
        Ok(containers.iter().position(|x| x.id == c.id).unwrap_or(0))
    };
    let before = filters.get("before").first().map(|n| pos(n)).transpose()?;
    let since = filters.get("since").first().map(|n| pos(n)).transpose()?;
    for (i, c) in containers.iter().enumerate() {
        let r = c.snapshot();
        if !all && !r.state.status.is_active() {
            continue;
        }
        if before.is_some_and(|b| i <= b) || since.is_some_and(|s| i >= s) {
            continue;
        }
        let f_status = filters.get("status");
        if !f_status.is_empty() && !f_status.iter().any(|s| s == r.state.status.as_str()) {
            continue;
        }
        let f_exited = filters.get("exited");
        let exited_with = |e: &String| e.parse::<i64>().ok() == Some(r.state.exit_code);
        if !f_exited.is_empty()
            && (r.state.status != Status::Exited || !f_exited.iter().any(exited_with))
        {
            continue;
        }
        let f_name = filters.get("name");
        if !f_name.is_empty()
            && !f_name
                .iter()
                .any(|n| r.name.contains(n.trim_start_matches('/')))
        {
            continue;
        }
        let f_id = filters.get("id");
        if !f_id.is_empty() && !f_id.iter().any(|p| r.id.starts_with(p.as_str())) {
            continue;
        }
        let labels = r.config.labels.clone().unwrap_or_default();
        if !filters
            .get("label")
            .iter()
            .all(|l| matches_label(&labels, l))
        {
            continue;
        }
        if !filters.get("ancestor").is_empty() && !ancestors.contains(&r.image_id) {
            continue;
        }
        let f_health = filters.get("health");
        if !f_health.is_empty() {
            let h = r
                .state
                .health
                .as_ref()
                .map_or("none", |h| h.status.as_str());
            if !f_health.iter().any(|x| x == h) {
                continue;
            }
        }
        // Docker matches the container's own ports: `publish` the keys of
        // `HostConfig.PortBindings`, `expose` those of `Config.ExposedPorts`.
        let has_port = |keys: Option<&std::collections::BTreeMap<String, serde_json::Value>>,
                        want: &std::collections::BTreeSet<String>| {
            keys.into_iter()
                .flatten()
                .any(|(k, _)| want.contains(&port_key(k)))
        };
        if !publish.is_empty() && !has_port(r.host_config.port_bindings.as_ref(), &publish) {
            continue;
        }
        if !expose.is_empty() && !has_port(r.config.exposed_ports.as_ref(), &expose) {
            continue;
        }
        let f_net = filters.get("network");
        if !f_net.is_empty() {
            let nets = d.container_network_names(&r);
            if !f_net.iter().any(|n| nets.contains(n)) {
                continue;
            }
        }
        out.push(d.summary(c));
        if limit.is_some_and(|l| out.len() as i64 >= l) {
            break;
        }
    }
    Ok(Json(out))
}

pub(super) async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response> {
    let c = d.container(&id)?;
    Ok(Json(d.inspect(&c)).into_response())
}

pub(super) async fn start(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response> {
    let c = d.container(&id)?;
    d.start(&c).await?;
    Ok(no_content())
}

pub(super) async fn stop(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let c = d.container(&id)?;
    d.stop(&c, q.int("t")?, q.get("signal")).await?;
    Ok(no_content())
}

pub(super) async fn restart(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let c = d.container(&id)?;
    d.restart(&c, q.int("t")?, q.get("signal")).await?;
    Ok(no_content())
}

pub(super) async fn kill(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let c = d.container(&id).map_err(|e| match e {
        DaemonError::NotFound(m) => {
            DaemonError::NotFound(format!("Cannot kill container: {id}: {m}"))
        }
        other => other,
    })?;
    d.kill(&c, q.get("signal")).await?;
    Ok(no_content())
}

pub(super) async fn wait(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let cond = WaitCondition::parse(q.get("condition"))?;
    let c = match d.container(&id) {
        Ok(c) => c,
        Err(e) => {
            // An --rm container can be gone before the CLI's wait arrives.
            if let Some(code) = d.tombstone(&id) {
                return Ok(Json(WaitResponse {
                    status_code: code,
                    error: None,
                })
                .into_response());
            }
            return Err(e);
        }
    };
    // Headers go out now; the body when the condition is met.
    let body = Body::from_stream(futures_util::stream::once(async move {
        let code = wait::wait(&c, cond).await;
        let mut v = serde_json::to_vec(&WaitResponse {
            status_code: code,
            error: None,
        })
        .unwrap_or_default();
        v.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(v))
    }));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

pub(super) async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let c = d.container(&id)?;
    let mounts = c.rec().mounts.clone();
    d.remove(&c, q.flag("force")).await?;
    if q.flag("v") {
        d.remove_anonymous_volumes(&mounts);
    }
    Ok(no_content())
}

pub(super) async fn rename(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let c = d.container(&id)?;
    let name = q.get("name").unwrap_or("");
    d.rename(&c, name)?;
    Ok(no_content())
}

pub(super) async fn resize(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let c = d.container(&id)?;
    let h = q.int("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = q.int("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let client = c
        .shim_client()
        .filter(|_| c.status().is_active())
        .ok_or_else(|| DaemonError::Conflict(format!("Container {} is not running", c.id)))?;
    client
        .request(&berth_runtime::protocol::Request::Resize {
            height: h,
            width: w,
        })
        .await?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn logs(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    version: Option<axum::Extension<super::RequestedVersion>>,
    q: Query,
) -> Result<Response> {
    let c = d.container(&id)?;
    let time = |key: &str| -> Result<Option<i64>> {
        match q.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => logs::parse_time_ns(v)
                .map(|t| Some(t).filter(|t| *t != 0))
                .ok_or_else(|| DaemonError::BadRequest(format!("invalid value for {key}: {v}"))),
        }
    };
    let req = LogsRequest {
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        since: time("since")?,
        until: time("until")?,
        // Docker: anything but a number ≥ 0 means all.
        tail: q
            .get("tail")
            .and_then(|t| t.trim().parse::<i64>().ok())
            .and_then(|n| u64::try_from(n).ok()),
        timestamps: q.flag("timestamps"),
        details: q.flag("details"),
        follow: q.flag("follow"),
    };
    let (tty, rx) = d.logs(&c, req)?;
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    // dockerd names the stream type from API 1.42 on; before, none.
    let mut resp = (StatusCode::OK, Body::from_stream(chunks)).into_response();
    if super::attach::api_version(version.as_ref().map(|v| &v.0))
        >= berth_api::version::ApiVersion(1, 42)
    {
        let ctype = if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        };
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(ctype),
        );
    }
    Ok(resp)
}
