//! The registry server: the OCI Distribution Spec v1.1 over HTTP(S).
//!
//! Repository names may hold slashes, so `/v2/<name>/…` cannot be routed by
//! path patterns: [`Route::parse`] reads a path from its right end (the
//! last segments say which endpoint it is, the rest is the name), checks
//! the name against the spec's grammar, and [`dispatch`] checks read-only
//! mode and permissions before handing the request to the module of that
//! endpoint. Every response carries `Docker-Distribution-API-Version`, and
//! one log line (see `access_log.rs`).

mod access_log;
mod auth;
mod blobs;
mod catalog;
pub(crate) mod config;
mod errors;
pub(crate) mod gc;
mod manifests;
mod names;
mod referrers;
mod sendfile;
mod storage;
mod tags;
mod tls;
mod token;
mod uploads;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use self::auth::{Actions, Auth, Identity, Origin, Resource};
use self::config::Config;
use self::errors::ApiError;
use self::names::valid_name;
use self::storage::Storage;
use crate::RegistryError;

/// Everything the handlers share.
pub(crate) struct AppState {
    pub(crate) store: Storage,
    pub(crate) uploads: uploads::Sessions,
    pub(crate) auth: Option<Auth>,
    pub(crate) read_only: bool,
    pub(crate) tls: bool,
}

pub(crate) type Shared = Arc<AppState>;

/// What a handler gets besides the body.
pub(crate) struct Ctx {
    pub(crate) st: Shared,
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) who: Identity,
    /// Set on plain-HTTP connections: blob bodies may go by sendfile.
    pub(crate) sendfile: Option<sendfile::Slot>,
}

impl Ctx {
    /// The first value of query parameter `k`.
    pub(crate) fn param(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the caller may also do `want` on another repository (a
    /// mount's source); everything is allowed without authentication.
    pub(crate) fn may(&self, repo: &str, want: Actions) -> bool {
        match &self.st.auth {
            Some(a) => a.permits(&self.who, Resource::Repo(repo), want),
            None => true,
        }
    }
}

/// The endpoints of the spec.
#[derive(Debug, PartialEq)]
enum Route {
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
    Referrers(String, String),
}

impl Route {
    /// Reads `/v2/…` from the right: the endpoint's fixed segments come
    /// last, whatever is before them is the repository name.
    fn parse(path: &str) -> Result<Route, ApiError> {
        let unknown = || ApiError::new(StatusCode::NOT_FOUND, "UNSUPPORTED", "unknown endpoint");
        let rest = path.strip_prefix("/v2/").ok_or_else(unknown)?;
        if rest == "_catalog" {
            return Ok(Route::Catalog);
        }
        let segs: Vec<&str> = rest.split('/').collect();
        let n = segs.len();
        if n < 2 {
            return Err(unknown());
        }
        let name = |k: usize| segs[..k].join("/");
        let last = segs[n - 1].to_owned();
        let route = if n >= 3 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
            if last.is_empty() {
                Route::UploadStart(name(n - 3))
            } else {
                Route::Upload(name(n - 3), last)
            }
        } else {
            match (segs[n - 2], last.as_str()) {
                ("blobs", "uploads") => Route::UploadStart(name(n - 2)),
                ("blobs", _) => Route::Blob(name(n - 2), last),
                ("manifests", _) => Route::Manifest(name(n - 2), last),
                ("referrers", _) => Route::Referrers(name(n - 2), last),
                ("tags", "list") => Route::Tags(name(n - 2)),
                _ => return Err(unknown()),
            }
        };
        let repo = route.repo().unwrap_or_default();
        if !valid_name(repo) {
            return Err(ApiError::name_invalid(repo));
        }
        Ok(route)
    }

    fn repo(&self) -> Option<&str> {
        match self {
            Route::Catalog => None,
            Route::Tags(n)
            | Route::Manifest(n, _)
            | Route::Blob(n, _)
            | Route::UploadStart(n)
            | Route::Upload(n, _)
            | Route::Referrers(n, _) => Some(n),
        }
    }

    /// What `method` on this endpoint needs; `None`: not allowed here.
    fn needs(&self, method: &Method) -> Option<Actions> {
        let read = method == Method::GET || method == Method::HEAD;
        match self {
            Route::Catalog | Route::Tags(_) | Route::Referrers(..) => {
                (method == Method::GET).then_some(Actions::PULL)
            }
            Route::Manifest(..) | Route::Blob(..) if read => Some(Actions::PULL),
            Route::Manifest(..) if method == Method::PUT => Some(Actions::PUSH),
            Route::Manifest(..) | Route::Blob(..) if method == Method::DELETE => {
                Some(Actions::DELETE)
            }
            Route::UploadStart(_) => (method == Method::POST).then_some(Actions::PUSH),
            Route::Upload(..)
                if [Method::GET, Method::PATCH, Method::PUT, Method::DELETE].contains(method) =>
            {
                Some(Actions::PUSH)
            }
            _ => None,
        }
    }
}

/// The scheme and Host of a request, for the realm of Bearer challenges.
/// A Host with characters a URL's authority cannot hold is not echoed.
pub(crate) fn origin_of<'a>(headers: &'a HeaderMap, st: &AppState) -> Origin<'a> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        });
    Origin {
        scheme: if st.tls { "https" } else { "http" },
        host,
    }
}

/// The router: `/v2/`, the `/v2/…` endpoints, and `/token`.
pub(crate) fn app(st: Shared) -> Router {
    Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/{*rest}", any(dispatch))
        .route("/token", get(token::get_token).post(token::post_token))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "UNSUPPORTED", "unknown endpoint")
        })
        .layer(axum::middleware::from_fn(access_log::access_log))
        .with_state(st)
}

/// `GET /v2/`: 200 to signed-in callers; with authentication on, 401 and
/// the challenge to anonymous ones, which is how clients learn the scheme.
async fn base(State(st): State<Shared>, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::unsupported(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            .into_response();
    }
    if let Some(auth) = &st.auth {
        let origin = origin_of(req.headers(), &st);
        match auth.identify(req.headers(), &origin).await {
            // A signed-in user, or any valid token (anonymous ones too).
            Ok(who)
                if who.account.is_some() || (auth.token_key().is_some() && has_bearer(&req)) =>
            {
                return access_log::with_user(json_ok("{}"), who.account);
            }
            Ok(_) => return auth.challenge(&origin, None, None).into_response(),
            Err(e) => return e.into_response(),
        }
    }
    json_ok("{}")
}

fn has_bearer(req: &Request) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
}

/// Reads and drops up to `cap` bytes of a request body that is refused
/// before it was read: a client still sending when the connection closes
/// may never see the answer.
pub(crate) async fn drain(body: Body, cap: usize) {
    use futures_util::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut seen = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > cap {
            break;
        }
    }
}

/// What a refused request's body may cost us to drain: enough for a
/// manifest or a small blob, not for a layer.
const REFUSED_DRAIN: usize = 4 << 20;

pub(crate) fn json_ok(body: &'static str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Every `/v2/<name>/…` request: route, read-only, permission, handler.
async fn dispatch(State(st): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let route = match Route::parse(parts.uri.path()) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some(needs) = route.needs(&parts.method) else {
        drain(body, REFUSED_DRAIN).await;
        return ApiError::unsupported(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            .into_response();
    };
    if st.read_only && needs.intersect(Actions::PUSH.union(Actions::DELETE)) != Actions::NONE {
        drain(body, REFUSED_DRAIN).await;
        return ApiError::unsupported(
            StatusCode::METHOD_NOT_ALLOWED,
            "the registry is in read-only mode",
        )
        .into_response();
    }
    let mut who = Identity::default();
    if let Some(auth) = &st.auth {
        let origin = origin_of(&parts.headers, &st);
        let res = match route.repo() {
            Some(r) => Resource::Repo(r),
            None => Resource::Catalog,
        };
        let checked = match auth.identify(&parts.headers, &origin).await {
            Ok(w) => auth.check(&w, res, needs, &origin).map(|()| w),
            Err(e) => Err(e),
        };
        match checked {
            Ok(w) => who = w,
            Err(e) => {
                drain(body, REFUSED_DRAIN).await;
                return e.into_response();
            }
        }
    }
    let account = who.account.clone();
    let sendfile = parts.extensions.get::<sendfile::Slot>().cloned();
    let ctx = Ctx {
        st: st.clone(),
        method: parts.method,
        query: berth_api::query::pairs(parts.uri.query().unwrap_or("")),
        headers: parts.headers,
        who,
        sendfile,
    };
    let resp = match route {
        Route::Catalog => catalog::list(&ctx).await,
        Route::Tags(name) => tags::list(&ctx, &name).await,
        Route::Referrers(name, d) => referrers::list(&ctx, &name, &d).await,
        Route::Blob(name, d) => blobs::handle(&ctx, &name, &d).await,
        Route::Manifest(name, r) => manifests::handle(&ctx, &name, &r, body).await,
        Route::UploadStart(name) => uploads::start(&ctx, &name, body).await,
        Route::Upload(name, id) => uploads::handle(&ctx, &name, &id, body).await,
    };
    access_log::with_user(resp.unwrap_or_else(IntoResponse::into_response), account)
}

/// Serves until SIGINT or SIGTERM.
pub(crate) async fn serve(cfg: Config) -> Result<(), RegistryError> {
    let store = Storage::open(&cfg.root)?;
    let auth = Auth::new(&cfg)?;
    let acceptor = match &cfg.tls {
        Some(t) => Some(tls::acceptor(&t.cert, &t.key)?),
        None => None,
    };
    let st = Arc::new(AppState {
        uploads: uploads::Sessions::default(),
        store,
        auth,
        read_only: cfg.read_only,
        tls: acceptor.is_some(),
    });
    let listener = TcpListener::bind(&cfg.addr)
        .await
        .map_err(|e| RegistryError::Listen {
            addr: cfg.addr.clone(),
            source: e,
        })?;
    let local = listener.local_addr().map_err(|e| RegistryError::Listen {
        addr: cfg.addr.clone(),
        source: e,
    })?;
    // Printed whatever the log level: scripts and tests read the address
    // from it when they asked for port 0.
    eprintln!(
        "berth registry: listening on {}://{local} (root {}{}{})",
        if st.tls { "https" } else { "http" },
        cfg.root.display(),
        if st.auth.is_some() { ", auth on" } else { "" },
        if st.read_only { ", read-only" } else { "" },
    );
    let app = app(st);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: wait, do not spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let slot = acceptor.is_none().then(sendfile::Slot::default);
            let conn_slot = slot.clone();
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(access_log::Peer(peer));
                    if let Some(s) = &conn_slot {
                        req.extensions_mut().insert(s.clone());
                    }
                    app.clone().oneshot(req.map(Body::new))
                },
            );
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30));
            let served = match acceptor {
                Some(acc) => match acc.accept(tcp).await {
                    Ok(s) => http.serve_connection(TokioIo::new(s), svc).await,
                    Err(e) => {
                        tracing::debug!("TLS handshake with {peer}: {e}");
                        return;
                    }
                },
                None => {
                    // Queued body buffers, never copied: sendfile.rs tells
                    // its placeholders apart by address.
                    http.writev(true);
                    let io = sendfile::SendfileIo::new(tcp, slot.unwrap_or_default());
                    http.serve_connection(TokioIo::new(io), svc).await
                }
            };
            if let Err(e) = served {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
    tracing::info!("shutting down");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Adds the header every response of a registry carries.
pub(crate) fn api_version_header(resp: &mut Response) {
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_read_from_the_right() {
        let r = |p: &str| Route::parse(p).map_err(|e| e.code);
        assert_eq!(r("/v2/_catalog"), Ok(Route::Catalog));
        assert_eq!(r("/v2/a/b/tags/list"), Ok(Route::Tags("a/b".into())));
        assert_eq!(
            r("/v2/a/manifests/latest"),
            Ok(Route::Manifest("a".into(), "latest".into()))
        );
        assert_eq!(
            r("/v2/x/blobs/manifests/sha256:1"),
            Ok(Route::Manifest("x/blobs".into(), "sha256:1".into()))
        );
        assert_eq!(
            r("/v2/a/blobs/uploads/"),
            Ok(Route::UploadStart("a".into()))
        );
        assert_eq!(r("/v2/a/blobs/uploads"), Ok(Route::UploadStart("a".into())));
        assert_eq!(
            r("/v2/a/b/blobs/uploads/id"),
            Ok(Route::Upload("a/b".into(), "id".into()))
        );
        assert_eq!(
            r("/v2/a/blobs/sha256:x"),
            Ok(Route::Blob("a".into(), "sha256:x".into()))
        );
        assert_eq!(
            r("/v2/a/referrers/sha256:x"),
            Ok(Route::Referrers("a".into(), "sha256:x".into()))
        );
        assert_eq!(r("/v2/../../etc/manifests/x"), Err("NAME_INVALID"));
        assert_eq!(r("/v2/a/%2e%2e/manifests/x"), Err("NAME_INVALID"));
        assert_eq!(r("/v2/blobs/sha256:x"), Err("NAME_INVALID"));
        assert_eq!(r("/v2/a/b/c"), Err("UNSUPPORTED"));
    }

    #[test]
    fn queries_decode() {
        assert_eq!(
            berth_api::query::pairs("a=1&b=x%3Ay+z&c&tag=1&tag=2"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x:y z".into()),
                ("c".into(), "".into()),
                ("tag".into(), "1".into()),
                ("tag".into(), "2".into()),
            ]
        );
        assert_eq!(
            berth_api::query::pairs("x=%zz%4"),
            vec![("x".into(), "%zz%4".into())]
        );
    }
}
