//! The Docker Engine API over HTTP: routing, version prefixes, Docker's
//! standard headers, and the handlers (one file per object).

mod archive;
mod attach;
mod attach_ws;
mod build;
mod commit;
mod containers;
mod distribution;
mod events;
mod exec;
mod images;
mod networks;
mod prune;
mod query;
mod resources;
mod system;
mod volumes;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use berth_api::version::{check_version, split_version_prefix, MAX_API_VERSION};

use crate::core::Daemon;
use crate::error::DaemonError;

pub(crate) use query::Query;

/// The API version a request asked for in its path prefix.
#[derive(Debug, Clone)]
struct RequestedVersion(Option<String>);

/// Strips `/v1.NN` before routing, remembering the version.
fn strip_version(mut req: Request) -> Request {
    let path = req.uri().path().to_string();
    let (ver, rest) = split_version_prefix(&path);
    let ver = ver.map(str::to_string);
    if ver.is_some() {
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(RequestedVersion(ver));
    req
}

/// Refuses unsupported versions and adds Docker's headers to every answer.
async fn versions_and_headers(req: Request, next: Next) -> Response {
    let requested = req
        .extensions()
        .get::<RequestedVersion>()
        .and_then(|v| v.0.clone());
    let mut resp = match requested.as_deref().map(check_version) {
        Some(Err(e)) => DaemonError::BadRequest(e.to_string()).into_response(),
        _ => next.run(req).await,
    };
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(MAX_API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "berth/{} (linux)",
        berth_api::version::ENGINE_VERSION
    )) {
        h.insert("Server", v);
    }
    resp
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(berth_api::system::ErrorResponse {
            message: "page not found".into(),
        }),
    )
        .into_response()
}

/// The router, before version stripping.
fn router(d: Arc<Daemon>) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(events::events))
        .route("/build", post(build::build))
        .route("/auth", post(distribution::auth))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save_many))
        .route("/images/{*rest}", any(images::dispatch))
        .route("/system/df", get(prune::df))
        .route("/containers/prune", post(prune::containers))
        .route("/images/prune", post(prune::images))
        .route("/build/prune", post(prune::build_cache))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/containers/json", get(containers::list))
        .route("/containers/create", post(containers::create))
        .route("/containers/{id}/json", get(containers::inspect))
        .route(
            "/containers/{id}/archive",
            get(archive::get).head(archive::head).put(archive::put),
        )
        .route("/containers/{id}/export", get(archive::export))
        .route("/commit", post(commit::commit))
        .route("/containers/{id}/changes", get(commit::changes))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/attach", post(attach::attach))
        .route("/containers/{id}/attach/ws", get(attach_ws::attach_ws))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/containers/{id}/pause", post(resources::pause))
        .route("/containers/{id}/unpause", post(resources::unpause))
        .route("/containers/{id}/update", post(resources::update))
        .route("/containers/{id}/top", get(resources::top))
        .route("/containers/{id}/stats", get(resources::stats))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/exec/{id}/resize", post(exec::resize))
        .route(
            "/containers/{id}",
            axum::routing::delete(containers::remove),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(versions_and_headers))
        .with_state(d)
}

/// The whole HTTP service: version prefix stripped before routing.
pub fn service(d: Arc<Daemon>) -> tower::util::MapRequest<Router, fn(Request) -> Request> {
    tower::util::MapRequest::new(router(d), strip_version as fn(Request) -> Request)
}
