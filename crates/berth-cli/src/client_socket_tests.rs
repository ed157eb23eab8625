//! The client against a tiny hyper server on a temporary Unix socket:
//! version negotiation, error mapping, keep-alive, and the attach hijack
//! with its half-close and multiplexed frames.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use berth_api::stream::{frame, StreamKind};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use super::*;
use crate::attach::Splitter;

/// One request the fake daemon received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// `POST /v1.41/containers/x/attach?stream=1`.
    pub(crate) line: String,
    /// Its headers.
    pub(crate) headers: HeaderMap,
    /// Its body.
    pub(crate) body: Bytes,
}

/// What the fake daemon saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Every request, in order of arrival.
    pub(crate) recorded: Mutex<Vec<Recorded>>,
    /// Connections accepted.
    pub(crate) connections: AtomicUsize,
}

impl Seen {
    /// The request lines, in order.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.recorded
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.line.clone())
            .collect()
    }

    /// The request whose line starts with `prefix`.
    pub(crate) fn find(&self, prefix: &str) -> Option<Recorded> {
        self.recorded
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.line.starts_with(prefix))
            .cloned()
    }
}

/// Answers one request: its record, and the request itself (body already
/// read) for `hyper::upgrade::on`.
pub(crate) type Handler =
    Arc<dyn Fn(&Recorded, Request<()>) -> Response<Full<Bytes>> + Send + Sync>;

/// A daemon on `dir/berth.sock` answering with `handler`; `/_ping` is
/// answered by the caller's handler too.
pub(crate) fn serve(dir: &std::path::Path, handler: Handler) -> (Host, Arc<Seen>) {
    let path = dir.join("berth.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let seen = Arc::new(Seen::default());
    let seen2 = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            seen2.connections.fetch_add(1, Ordering::SeqCst);
            let seen3 = Arc::clone(&seen2);
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let seen = Arc::clone(&seen3);
                    let handler = Arc::clone(&handler);
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let target = parts
                            .uri
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default();
                        let rec = Recorded {
                            line: format!("{} {target}", parts.method),
                            headers: parts.headers.clone(),
                            body,
                        };
                        seen.recorded.lock().unwrap().push(rec.clone());
                        let resp = handler(&rec, Request::from_parts(parts, ()));
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (
        Host::parse(&format!("unix://{}", path.display())).unwrap(),
        seen,
    )
}

/// A response with `status` and a JSON body.
pub(crate) fn json_response(status: u16, body: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut()
        .insert("Api-Version", HeaderValue::from_static("1.41"));
    resp
}

/// `101 UPGRADED`; `then` runs on the raw stream once the client has it.
pub(crate) fn upgrade<F, Fut>(req: Request<()>, then: F) -> Response<Full<Bytes>>
where
    F: FnOnce(Hijacked) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    resp.headers_mut()
        .insert("Upgrade", HeaderValue::from_static("tcp"));
    resp.headers_mut()
        .insert("Connection", HeaderValue::from_static("Upgrade"));
    tokio::spawn(async move {
        let upgraded = hyper::upgrade::on(req).await.unwrap();
        then(TokioIo::new(upgraded)).await;
    });
    resp
}

/// A negotiated client (API 1.41) of the daemon at `host`.
pub(crate) async fn client_for(host: Host) -> Client {
    let mut client = Client::new(host, false);
    client.negotiate().await.unwrap();
    client
}

/// Starts the fake daemon of the client tests; `api` is its `Api-Version`
/// (None: no header), `head_ok` whether `HEAD /_ping` is answered 200
/// (else 405).
fn fake_daemon(
    dir: &std::path::Path,
    api: Option<&'static str>,
    head_ok: bool,
) -> (Host, Arc<Seen>) {
    serve(
        dir,
        Arc::new(move |rec: &Recorded, req: Request<()>| handle(rec, req, api, head_ok)),
    )
}

fn handle(
    rec: &Recorded,
    req: Request<()>,
    api: Option<&'static str>,
    head_ok: bool,
) -> Response<Full<Bytes>> {
    let conn_hdr = rec
        .headers
        .get("connection")
        .map(|v| v.to_str().unwrap_or("").to_string());
    let mut resp = Response::new(Full::new(Bytes::new()));
    if let Some(v) = api {
        resp.headers_mut()
            .insert("Api-Version", HeaderValue::from_static(v));
    }
    match (req.method().as_str(), req.uri().path()) {
        ("HEAD", "/_ping") if !head_ok => *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED,
        (_, "/_ping") => *resp.body_mut() = Full::new(Bytes::from_static(b"OK")),
        (_, "/v1.41/version") | (_, "/v1.24/version") => {
            *resp.body_mut() = Full::new(Bytes::from_static(br#"{"Version":"0.1.0"}"#));
        }
        (_, "/v1.41/containers/nope/json") => {
            *resp.status_mut() = StatusCode::NOT_FOUND;
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            *resp.body_mut() = Full::new(Bytes::from_static(
                b"{\"message\":\"No such container: nope\"}\n",
            ));
        }
        (_, "/v1.41/plain-error") => {
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            *resp.body_mut() = Full::new(Bytes::from_static(b"boom\n"));
        }
        ("POST", "/v1.41/containers/x/attach") => {
            assert_eq!(conn_hdr.as_deref(), Some("Upgrade"));
            return upgrade(req, |mut io| async move {
                // Read the client's stdin up to its half-close, then answer
                // on both streams and close.
                let mut input = Vec::new();
                io.read_to_end(&mut input).await.unwrap();
                let mut out = frame(StreamKind::Stdout, b"got: ");
                out.extend(frame(StreamKind::Stdout, &input));
                out.extend(frame(StreamKind::Stderr, b"warning\n"));
                io.write_all(&out).await.unwrap();
                io.shutdown().await.unwrap();
            });
        }
        _ => *resp.status_mut() = StatusCode::NOT_FOUND,
    }
    resp
}

#[tokio::test]
async fn negotiation_follows_api_version_and_keeps_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (host, seen) = fake_daemon(dir.path(), Some("1.41"), true);
    let mut client = Client::new(host, false);
    let ping = client.negotiate().await.unwrap();
    assert_eq!(ping.api_version.as_deref(), Some("1.41"));
    assert_eq!(client.api_version(), "1.41");
    let v = client.get_bytes("/version", &Query::new()).await.unwrap();
    assert_eq!(&v[..], br#"{"Version":"0.1.0"}"#);
    assert_eq!(seen.lines(), vec!["HEAD /_ping", "GET /v1.41/version"]);
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        1,
        "ping and the next call share a connection"
    );
}

#[tokio::test]
async fn ping_falls_back_to_get_and_to_1_24() {
    let dir = tempfile::tempdir().unwrap();
    let (host, seen) = fake_daemon(dir.path(), None, false);
    let mut client = Client::new(host, false);
    client.negotiate().await.unwrap();
    assert_eq!(client.api_version(), "1.24");
    client.get_bytes("/version", &Query::new()).await.unwrap();
    assert_eq!(
        seen.lines(),
        vec!["HEAD /_ping", "GET /_ping", "GET /v1.24/version"]
    );
}

#[tokio::test]
async fn daemon_errors_and_dead_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _) = fake_daemon(dir.path(), Some("1.41"), true);
    let mut client = Client::new(host, false);
    client.negotiate().await.unwrap();
    let e = client
        .get_bytes("/containers/nope/json", &Query::new())
        .await
        .unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(
        e.to_string(),
        "Error response from daemon: No such container: nope"
    );
    let e = client
        .get_bytes("/plain-error", &Query::new())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "Error response from daemon: boom");
    let e = client
        .get_bytes("/unknown", &Query::new())
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("Error response from daemon: request returned 404 Not Found for API route and version http://api.moby.localhost/v1.41/unknown"));

    let missing = Host::parse(&format!("unix://{}/none.sock", dir.path().display())).unwrap();
    let e = Client::new(missing.clone(), false)
        .negotiate()
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Cannot connect to the berth daemon at {}. Is the berth daemon running?",
            missing.url
        )
    );
}

#[tokio::test]
async fn hijack_half_close_and_demux() {
    let dir = tempfile::tempdir().unwrap();
    let (host, seen) = fake_daemon(dir.path(), Some("1.41"), true);
    let mut client = Client::new(host, false);
    client.negotiate().await.unwrap();
    let q = Query::new()
        .add("stream", "1")
        .add("stdin", "1")
        .add("stdout", "1")
        .add("stderr", "1");
    let mut conn = client
        .hijack("/containers/x/attach", &q, None)
        .await
        .unwrap();
    conn.write_all(b"hello\n").await.unwrap();
    conn.shutdown().await.unwrap();
    let mut wire = Vec::new();
    conn.read_to_end(&mut wire).await.unwrap();
    let mut split = Splitter::new(Vec::new(), Vec::new());
    split.feed(&wire).unwrap();
    let (out, err) = split.into_parts();
    assert_eq!(out, b"got: hello\n");
    assert_eq!(err, b"warning\n");
    assert!(seen.lines().contains(
        &"POST /v1.41/containers/x/attach?stderr=1&stdin=1&stdout=1&stream=1".to_string()
    ));
    let e = client
        .hijack("/containers/y/attach", &q, None)
        .await
        .unwrap_err();
    assert!(e.is_not_found());
}
