//! Registry endpoints: pull (`POST /images/create?fromImage`), push
//! (`POST /images/{name}/push`) and `POST /auth`, with Docker's JSON
//! progress streams. Errors found before the stream starts get their HTTP
//! status; later ones are in-band `{"errorDetail","error"}` lines.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::image::JsonMessage;
use berth_api::Reference;
use berth_registry::client::endpoint::{api_host, normalize_server};
use berth_registry::client::AuthConfig;
use tokio::sync::mpsc;

use super::Query;
use crate::core::distribution::{self as dist, DistError, PullRequest, PushRequest};
use crate::core::Daemon;

fn error_response(e: &DistError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(serde_json::json!({ "message": e.message }))).into_response()
}

fn registry_auth(headers: &HeaderMap) -> AuthConfig {
    headers
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
        .map(AuthConfig::from_header)
        .unwrap_or_default()
}

fn json_line(m: &JsonMessage) -> Bytes {
    let mut v = serde_json::to_vec(m).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// A streaming JSON response fed by the returned sender.
fn stream_response() -> (mpsc::Sender<JsonMessage>, Response) {
    let (tx, rx) = mpsc::channel::<JsonMessage>(256);
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|m| (Ok::<_, std::io::Error>(json_line(&m)), rx))
    }));
    let resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    (tx, resp)
}

fn bad(e: impl std::fmt::Display) -> Response {
    error_response(&DistError {
        status: 400,
        message: e.to_string(),
    })
}

/// `POST /images/create?fromImage=NAME&tag=TAG[&platform=]`.
pub(super) async fn pull(d: Arc<Daemon>, q: &Query, headers: &HeaderMap) -> Response {
    let image = q.get("fromImage").unwrap_or_default();
    let tag = q.get("tag").filter(|t| !t.is_empty());
    let mut reference = match Reference::parse_normalized(image) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let mut all_tags = false;
    if let Some(t) = tag {
        // `tag` may carry a digest (docker pull name@sha256:…).
        let full = if t.contains(':') {
            format!("{}@{t}", reference.name())
        } else {
            format!("{}:{t}", reference.name())
        };
        reference = match Reference::parse_normalized(&full) {
            Ok(r) => r,
            Err(e) => return bad(e),
        };
    } else if reference.is_name_only() {
        all_tags = true;
    }
    let req = PullRequest {
        reference: reference.clone(),
        platform: q.get("platform").map(str::to_string),
        auth: registry_auth(headers),
    };
    let plans = if all_tags {
        let tags = match dist::list_tags(&d, &req).await {
            Ok(t) => t,
            Err(e) => return error_response(&e),
        };
        let mut plans = Vec::new();
        for t in tags {
            let Ok(r) = reference.with_tag(&t) else {
                continue;
            };
            let one = PullRequest {
                reference: r,
                ..req.clone()
            };
            match dist::resolve_pull(&d, &one).await {
                Ok(p) => plans.push(p),
                Err(e) => return error_response(&e),
            }
        }
        plans
    } else {
        match dist::resolve_pull(&d, &req).await {
            Ok(p) => vec![p],
            Err(e) => return error_response(&e),
        }
    };
    let (tx, resp) = stream_response();
    tokio::spawn(async move {
        for plan in plans {
            if let Err(e) = dist::run_pull(&d, plan, &tx).await {
                let _ = tx.send(JsonMessage::error(e.message)).await;
                return;
            }
        }
        if all_tags {
            let _ = tx
                .send(JsonMessage::status(format!(
                    "Status: Downloaded newer images for {}",
                    reference.familiar_name()
                )))
                .await;
        }
    });
    resp
}

/// `POST /images/{name}/push?tag=TAG`.
pub(super) async fn push(d: Arc<Daemon>, name: &str, q: &Query, headers: &HeaderMap) -> Response {
    let mut reference = match Reference::parse_normalized(name) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    if let Some(t) = q.get("tag").filter(|t| !t.is_empty()) {
        reference = match reference.with_tag(t) {
            Ok(r) => r,
            Err(e) => return bad(e),
        };
    }
    let req = PushRequest {
        reference,
        auth: registry_auth(headers),
    };
    let (tx, resp) = stream_response();
    tokio::spawn(async move {
        if let Err(e) = dist::push(&d, &req, &tx).await {
            let _ = tx.send(JsonMessage::error(e.message)).await;
        }
    });
    resp
}

/// `POST /auth`: checks credentials against the registry.
pub(super) async fn auth(
    axum::extract::State(d): axum::extract::State<Arc<Daemon>>,
    body: Bytes,
) -> Response {
    let a: AuthConfig = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return bad(format!("invalid auth configuration: {e}")),
    };
    let a = a.normalized();
    let domain = normalize_server(&a.server_address);
    match dist::login(&d, api_host(&domain), &a).await {
        Ok(identity) => {
            Json(serde_json::json!({"Status": "Login Succeeded", "IdentityToken": identity}))
                .into_response()
        }
        Err(e) => error_response(&e),
    }
}
