//! The Engine API client: HTTP/1.1 over the daemon's Unix socket (hyper +
//! hyper-util's `TokioIo`), version negotiation through `/_ping`, request
//! helpers, Docker's error mapping and the attach hijack.
//!
//! Like the docker CLI, every invocation first sends `HEAD /_ping` (then
//! `GET` if the HEAD is not answered 200/500), reads `Api-Version` and puts
//! `/v{min(ours, theirs)}` in front of every later path. Sequential calls
//! share one keep-alive connection; calls made while another is pending,
//! and hijacks, get their own.

use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use berth_api::version::{ApiVersion, MAX_API_VERSION};
use bytes::{Bytes, BytesMut};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{
    HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, UPGRADE, USER_AGENT,
};
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::UnixStream;

/// The default daemon address.
pub(crate) const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
/// The version docker assumes when `/_ping` sends no `Api-Version`.
const FALLBACK_API_VERSION: &str = "1.24";
/// The `Host` header docker CLI 28 sends over Unix sockets.
const HOST_HEADER: &str = "api.moby.localhost";
/// Most of an error body that is read.
const MAX_ERROR_BODY: usize = 1 << 20;

/// A request or response body.
pub(crate) type Body = UnsyncBoxBody<Bytes, io::Error>;
/// The raw bidirectional stream of a hijacked (upgraded) connection.
pub(crate) type Hijacked = TokioIo<Upgraded>;

/// Errors talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The socket is missing or refuses connections.
    #[error("Cannot connect to the berth daemon at {host}. Is the berth daemon running?")]
    Connect {
        /// The host as given (`unix:///run/berth/berth.sock`).
        host: String,
        /// Why connecting failed.
        #[source]
        source: io::Error,
    },
    /// The socket exists but we may not use it (not root, not in its group).
    #[error("permission denied while trying to connect to the berth daemon socket at {host}: dial unix {path}: connect: permission denied")]
    ConnectDenied {
        /// The host as given.
        host: String,
        /// The socket path.
        path: String,
    },
    /// `-H` names something other than a Unix socket.
    #[error("invalid host {0:?}: berth only talks to the daemon over unix:// sockets")]
    InvalidHost(String),
    /// A 4xx/5xx answer; `message` is the daemon's text.
    #[error("Error response from daemon: {message}")]
    Daemon {
        /// HTTP status.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// An error the daemon reported inside a stream that had started.
    #[error("{0}")]
    Stream(String),
    /// The attach/exec upgrade was refused.
    #[error("unable to upgrade to tcp, received {0}")]
    Upgrade(u16),
    /// HTTP-level failure (connection reset mid-request…).
    #[error("error during connect: {0}")]
    Http(#[from] hyper::Error),
    /// A response that is not the JSON expected.
    #[error("Error reading JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Local I/O while streaming.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl ClientError {
    /// The HTTP status of a daemon error.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            ClientError::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 404 from the daemon (docker's `errdefs.IsNotFound`).
    pub(crate) fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Host {
    /// As the user wrote it, for messages.
    pub(crate) url: String,
    /// The socket path.
    pub(crate) path: PathBuf,
}

impl Host {
    /// Parses `unix:///path` (a bare absolute path is accepted too).
    pub(crate) fn parse(s: &str) -> Result<Host, ClientError> {
        let path = match s.strip_prefix("unix://") {
            Some(p) => p,
            None if s.starts_with('/') => s,
            None => return Err(ClientError::InvalidHost(s.to_string())),
        };
        if path.is_empty() {
            return Err(ClientError::InvalidHost(s.to_string()));
        }
        let url = if s.starts_with("unix://") {
            s.to_string()
        } else {
            format!("unix://{s}")
        };
        Ok(Host {
            url,
            path: PathBuf::from(path),
        })
    }
}

/// Query parameters, encoded as Go's `url.Values.Encode` does (sorted by
/// key, values in the order added).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// An empty query.
    pub(crate) fn new() -> Query {
        Query::default()
    }

    /// Adds `key=value`.
    pub(crate) fn add(mut self, key: &str, value: impl Into<String>) -> Query {
        self.0.push((key.to_string(), value.into()));
        self
    }

    /// Adds `key=value` when `cond` holds.
    pub(crate) fn add_if(self, cond: bool, key: &str, value: impl Into<String>) -> Query {
        if cond {
            self.add(key, value)
        } else {
            self
        }
    }

    /// Adds `key=value` when `value` is not empty.
    pub(crate) fn add_nonempty(self, key: &str, value: &str) -> Query {
        let nonempty = !value.is_empty();
        self.add_if(nonempty, key, value)
    }

    /// `a=1&b=2`, or empty.
    pub(crate) fn encode(&self) -> String {
        let mut pairs: Vec<&(String, String)> = self.0.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Escapes a path the way Go's `url.URL.EscapedPath` does: object names go
/// into paths as they are (`/images/127.0.0.1:5000/app/json`), only bytes
/// that cannot appear in a path are escaped.
pub(crate) fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => out.push(b as char),
            b'-' | b'_' | b'.' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+'
            | b',' | b';' | b'=' | b':' | b'@' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A JSON request body byte for byte as docker's `json.NewEncoder(…).Encode`
/// writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped, and a final newline.
pub(crate) fn json_body<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>, serde_json::Error> {
    let text = serde_json::to_string(body)?;
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    Ok(out.into_bytes())
}

/// An empty body.
pub(crate) fn empty_body() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body held in memory.
pub(crate) fn full_body(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body streamed from a reader (a file, stdin) in 64 KiB chunks, never
/// held whole in memory.
pub(crate) fn reader_body<R: AsyncRead + Send + Unpin + 'static>(reader: R) -> Body {
    let stream = futures_util::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        match reader.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(Frame::data(buf.freeze())), Some(reader))),
            Err(e) => Some((Err(e), None)),
        }
    });
    StreamBody::new(stream).boxed_unsync()
}

/// What `/_ping` told us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ping {
    /// `Api-Version`, when sent.
    pub(crate) api_version: Option<String>,
    /// `Ostype`.
    pub(crate) os_type: Option<String>,
}

/// How a request body is described to the daemon.
pub(crate) enum Payload {
    /// No body (`Content-Length: 0` on POST/PUT).
    None,
    /// JSON text.
    Json(Vec<u8>),
    /// A streamed body of the given content type (sent chunked).
    Stream(&'static str, Body),
}

/// A connection to the daemon, after version negotiation.
#[derive(Debug)]
pub(crate) struct Client {
    host: Host,
    version: String,
    debug: bool,
    idle: Mutex<Option<SendRequest<Body>>>,
}

impl Client {
    /// A client for `host`; call [`Client::negotiate`] before other calls.
    pub(crate) fn new(host: Host, debug: bool) -> Client {
        Client {
            host,
            version: MAX_API_VERSION.to_string(),
            debug,
            idle: Mutex::new(None),
        }
    }

    /// The API version in use (`1.45`, or lower after negotiation).
    pub(crate) fn api_version(&self) -> &str {
        &self.version
    }

    /// True when the negotiated version is at least `v` (docker's
    /// `versions.GreaterThanOrEqualTo(ClientVersion(), v)`).
    pub(crate) fn api_at_least(&self, v: &str) -> bool {
        match (ApiVersion::parse(&self.version), ApiVersion::parse(v)) {
            (Some(ours), Some(min)) => ours >= min,
            _ => false,
        }
    }

    /// Pings and settles the API version as docker does: the lower of ours
    /// and the daemon's, `1.24` when the daemon does not say.
    pub(crate) async fn negotiate(&mut self) -> Result<Ping, ClientError> {
        let ping = self.ping().await?;
        let server = ping
            .api_version
            .clone()
            .unwrap_or_else(|| FALLBACK_API_VERSION.to_string());
        self.version = negotiated_version(MAX_API_VERSION, &server);
        Ok(ping)
    }

    /// `HEAD /_ping`, then `GET /_ping` when HEAD is not answered 200/500.
    pub(crate) async fn ping(&self) -> Result<Ping, ClientError> {
        match self
            .raw(Method::HEAD, "/_ping".into(), Payload::None, &[])
            .await
        {
            Ok(resp) if matches!(resp.status().as_u16(), 200 | 500) => return Ok(ping_from(&resp)),
            Err(e @ (ClientError::Connect { .. } | ClientError::ConnectDenied { .. })) => {
                return Err(e)
            }
            _ => {}
        }
        let resp = self
            .raw(Method::GET, "/_ping".into(), Payload::None, &[])
            .await?;
        if resp.status().as_u16() >= 400 {
            return Err(self.error_from(resp, "/_ping").await);
        }
        let ping = ping_from(&resp);
        let _ = resp.into_body().collect().await;
        Ok(ping)
    }

    fn versioned(&self, path: &str, query: &Query) -> String {
        let q = query.encode();
        let p = format!("/v{}{}", self.version, path_escape(path));
        if q.is_empty() {
            p
        } else {
            format!("{p}?{q}")
        }
    }

    /// Sends a request to `/v{version}{path}`; a 4xx/5xx answer becomes
    /// [`ClientError::Daemon`].
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        query: &Query,
        payload: Payload,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>, ClientError> {
        let uri = self.versioned(path, query);
        let resp = self.raw(method, uri.clone(), payload, headers).await?;
        if resp.status().as_u16() >= 400 {
            return Err(self.error_from(resp, &uri).await);
        }
        Ok(resp)
    }

    /// `GET` and decode JSON.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Query,
    ) -> Result<T, ClientError> {
        let body = self.get_bytes(path, query).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// `GET`, the whole body.
    pub(crate) async fn get_bytes(&self, path: &str, query: &Query) -> Result<Bytes, ClientError> {
        let resp = self
            .request(Method::GET, path, query, Payload::None, &[])
            .await?;
        read_body(resp).await
    }

    /// `GET` whose body the caller streams.
    pub(crate) async fn get_stream(
        &self,
        path: &str,
        query: &Query,
    ) -> Result<Response<Incoming>, ClientError> {
        self.request(Method::GET, path, query, Payload::None, &[])
            .await
    }

    /// `POST` without a body; the body of the answer is left to the caller.
    pub(crate) async fn post(
        &self,
        path: &str,
        query: &Query,
    ) -> Result<Response<Incoming>, ClientError> {
        self.request(Method::POST, path, query, Payload::None, &[])
            .await
    }

    /// `POST` without a body, answer discarded.
    pub(crate) async fn post_ok(&self, path: &str, query: &Query) -> Result<(), ClientError> {
        let resp = self.post(path, query).await?;
        read_body(resp).await.map(|_| ())
    }

    /// `POST` a JSON body and decode the JSON answer.
    pub(crate) async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Query,
        body: &B,
    ) -> Result<T, ClientError> {
        let payload = Payload::Json(json_body(body)?);
        let resp = self
            .request(Method::POST, path, query, payload, &[])
            .await?;
        Ok(serde_json::from_slice(&read_body(resp).await?)?)
    }

    /// `POST` a JSON body, answer discarded.
    pub(crate) async fn post_json_ok<B: Serialize>(
        &self,
        path: &str,
        query: &Query,
        body: &B,
    ) -> Result<(), ClientError> {
        let payload = Payload::Json(json_body(body)?);
        let resp = self
            .request(Method::POST, path, query, payload, &[])
            .await?;
        read_body(resp).await.map(|_| ())
    }

    /// `DELETE`, the whole answer.
    pub(crate) async fn delete(&self, path: &str, query: &Query) -> Result<Bytes, ClientError> {
        let resp = self
            .request(Method::DELETE, path, query, Payload::None, &[])
            .await?;
        read_body(resp).await
    }

    /// `POST` with `Connection: Upgrade` / `Upgrade: tcp` on a connection of
    /// its own; after the daemon's `101` the connection is a raw stream.
    pub(crate) async fn hijack(
        &self,
        path: &str,
        query: &Query,
        json: Option<Vec<u8>>,
    ) -> Result<Hijacked, ClientError> {
        let uri = self.versioned(path, query);
        self.trace(&Method::POST, &uri);
        let mut sender = self.connect().await?;
        let (len, body, ctype) = match json {
            Some(b) => (b.len(), full_body(b), "application/json"),
            None => (0, empty_body(), "text/plain"),
        };
        let req = self.build(
            Method::POST,
            &uri,
            body,
            Some(len),
            Some(ctype),
            &[("Connection", "Upgrade"), ("Upgrade", "tcp")],
        );
        let resp = sender.send_request(req).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = resp.status().as_u16();
            if status >= 400 {
                return Err(self.error_from(resp, &uri).await);
            }
            return Err(ClientError::Upgrade(status));
        }
        let upgraded = hyper::upgrade::on(resp).await?;
        Ok(TokioIo::new(upgraded))
    }

    fn trace(&self, method: &Method, uri: &str) {
        if self.debug {
            eprintln!("DEBU[0000] {method} {uri}");
        }
    }

    async fn connect(&self) -> Result<SendRequest<Body>, ClientError> {
        let stream = UnixStream::connect(&self.host.path)
            .await
            .map_err(|source| {
                if source.kind() == io::ErrorKind::PermissionDenied {
                    ClientError::ConnectDenied {
                        host: self.host.url.clone(),
                        path: self.host.path.display().to_string(),
                    }
                } else {
                    ClientError::Connect {
                        host: self.host.url.clone(),
                        source,
                    }
                }
            })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    /// An idle keep-alive connection, or a new one.
    async fn sender(&self) -> Result<(SendRequest<Body>, bool), ClientError> {
        let cached = self.idle.lock().map(|mut slot| slot.take()).unwrap_or(None);
        if let Some(s) = cached {
            if !s.is_closed() {
                if s.is_ready() {
                    return Ok((s, true));
                }
                tokio::task::yield_now().await;
                if s.is_ready() {
                    return Ok((s, true));
                }
            }
        }
        Ok((self.connect().await?, false))
    }

    fn recycle(&self, sender: SendRequest<Body>) {
        if let Ok(mut slot) = self.idle.lock() {
            if slot.is_none() {
                *slot = Some(sender);
            }
        }
    }

    fn build(
        &self,
        method: Method,
        uri: &str,
        body: Body,
        len: Option<usize>,
        ctype: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Request<Body> {
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = uri.parse().unwrap_or_default();
        let h = req.headers_mut();
        h.insert(HOST, HeaderValue::from_static(HOST_HEADER));
        if let Ok(ua) = HeaderValue::from_str(&format!(
            "Berth-Client/{} (linux)",
            env!("CARGO_PKG_VERSION")
        )) {
            h.insert(USER_AGENT, ua);
        }
        if let Some(len) = len {
            h.insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
        if let Some(ct) = ctype.and_then(|c| HeaderValue::from_str(c).ok()) {
            h.insert(CONTENT_TYPE, ct);
        }
        for (k, v) in headers {
            let name = match k.to_ascii_lowercase().as_str() {
                "connection" => CONNECTION,
                "upgrade" => UPGRADE,
                other => match hyper::header::HeaderName::from_bytes(other.as_bytes()) {
                    Ok(n) => n,
                    Err(_) => continue,
                },
            };
            if let Ok(v) = HeaderValue::from_str(v) {
                h.insert(name, v);
            }
        }
        req
    }

    /// Sends one request to an already versioned `uri`, whatever the status.
    async fn raw(
        &self,
        method: Method,
        uri: String,
        payload: Payload,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>, ClientError> {
        self.trace(&method, &uri);
        let has_body_method = matches!(method, Method::POST | Method::PUT);
        let retryable = matches!(payload, Payload::None | Payload::Json(_));
        let json = match &payload {
            Payload::Json(b) => Some(b.clone()),
            _ => None,
        };
        let mut payload = Some(payload);
        for attempt in 0..2 {
            let (mut sender, reused) = self.sender().await?;
            let (body, len, ctype): (Body, Option<usize>, Option<&str>) = match payload.take() {
                Some(Payload::None) | None => (empty_body(), has_body_method.then_some(0), None),
                Some(Payload::Json(b)) => {
                    let n = b.len();
                    (full_body(b), Some(n), Some("application/json"))
                }
                Some(Payload::Stream(ct, body)) => (body, None, Some(ct)),
            };
            let req = self.build(method.clone(), &uri, body, len, ctype, headers);
            match sender.send_request(req).await {
                Ok(resp) => {
                    self.recycle(sender);
                    return Ok(resp);
                }
                Err(e)
                    if reused
                        && retryable
                        && attempt == 0
                        && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) =>
                {
                    payload = Some(match &json {
                        Some(b) => Payload::Json(b.clone()),
                        None => Payload::None,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ClientError::Connect {
            host: self.host.url.clone(),
            source: io::Error::other("connection closed"),
        })
    }

    /// Docker's `checkResponseErr`: the JSON `message`, else the body text.
    async fn error_from(&self, resp: Response<Incoming>, uri: &str) -> ClientError {
        let status = resp.status();
        let status_text = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let is_json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        let mut body = Vec::new();
        let mut incoming = resp.into_body();
        while let Some(Ok(frame)) = incoming.frame().await {
            if let Ok(data) = frame.into_data() {
                body.extend_from_slice(&data);
                if body.len() > MAX_ERROR_BODY {
                    break;
                }
            }
        }
        let url = format!("http://{HOST_HEADER}{uri}");
        let message = if body.is_empty() {
            format!("request returned {status_text} for API route and version {url}, check if the server supports the requested API version")
        } else if is_json || body.first() == Some(&b'{') {
            match serde_json::from_slice::<berth_api::system::ErrorResponse>(&body) {
                Ok(e) if !e.message.trim().is_empty() => e.message.trim().to_string(),
                Ok(_) => format!(
                    "API returned a {} ({}) but provided no error-message",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ),
                Err(_) => String::from_utf8_lossy(&body).trim().to_string(),
            }
        } else {
            String::from_utf8_lossy(&body).trim().to_string()
        };
        ClientError::Daemon {
            status: status.as_u16(),
            message,
        }
    }
}

fn ping_from(resp: &Response<Incoming>) -> Ping {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Ping {
        api_version: header("api-version"),
        os_type: header("ostype"),
    }
}

/// The lower of two API versions (`1.45` vs `1.41` → `1.41`).
pub(crate) fn negotiated_version(ours: &str, server: &str) -> String {
    match (ApiVersion::parse(ours), ApiVersion::parse(server)) {
        (Some(a), Some(b)) if b < a => server.to_string(),
        _ => ours.to_string(),
    }
}

/// Reads a whole response body.
pub(crate) async fn read_body(resp: Response<Incoming>) -> Result<Bytes, ClientError> {
    Ok(resp.into_body().collect().await?.to_bytes())
}

/// The next data chunk of a streamed body, `None` at its end.
pub(crate) async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>, ClientError> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

/// Decodes a stream of concatenated JSON values (docker's `json.Decoder`
/// over a chunked body): progress messages, wait results, events.
#[derive(Debug)]
pub(crate) struct JsonStream {
    body: Incoming,
    buf: Vec<u8>,
    done: bool,
}

impl JsonStream {
    /// Wraps a response body.
    pub(crate) fn new(resp: Response<Incoming>) -> JsonStream {
        JsonStream {
            body: resp.into_body(),
            buf: Vec::new(),
            done: false,
        }
    }

    /// The next value, `None` at the end of the stream.
    pub(crate) async fn next<T: DeserializeOwned>(&mut self) -> Option<Result<T, ClientError>> {
        loop {
            if self.buf.iter().any(|b| !b.is_ascii_whitespace()) {
                let mut it = serde_json::Deserializer::from_slice(&self.buf).into_iter::<T>();
                match it.next() {
                    Some(Ok(v)) => {
                        let used = it.byte_offset();
                        self.buf.drain(..used);
                        return Some(Ok(v));
                    }
                    Some(Err(e)) if e.is_eof() && !self.done => {}
                    Some(Err(e)) => {
                        self.buf.clear();
                        return Some(Err(e.into()));
                    }
                    None => self.buf.clear(),
                }
            } else {
                self.buf.clear();
                if self.done {
                    return None;
                }
            }
            match next_chunk(&mut self.body).await {
                Ok(Some(data)) => self.buf.extend_from_slice(&data),
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    self.buf.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let h = Host::parse("unix:///tmp/x.sock").unwrap();
        assert_eq!(h.path, PathBuf::from("/tmp/x.sock"));
        assert_eq!(h.url, "unix:///tmp/x.sock");
        assert_eq!(
            Host::parse("/tmp/y.sock").unwrap().url,
            "unix:///tmp/y.sock"
        );
        assert!(Host::parse("tcp://1.2.3.4:2375").is_err());
        assert!(Host::parse("unix://").is_err());
    }

    #[test]
    fn queries_encode_like_go() {
        let q = Query::new()
            .add("stream", "1")
            .add("stdout", "1")
            .add("stderr", "1");
        assert_eq!(q.encode(), "stderr=1&stdout=1&stream=1");
        let q = Query::new()
            .add("fromImage", "127.0.0.1:5000/flow-bb")
            .add("tag", "latest");
        assert_eq!(
            q.encode(),
            "fromImage=127.0.0.1%3A5000%2Fflow-bb&tag=latest"
        );
        let q = Query::new()
            .add("names", "b")
            .add("names", "a")
            .add("changes", "CMD [\"x\"]");
        assert_eq!(q.encode(), "changes=CMD+%5B%22x%22%5D&names=b&names=a");
        assert_eq!(
            Query::new()
                .add_nonempty("a", "")
                .add_if(false, "b", "1")
                .encode(),
            ""
        );
    }

    #[test]
    fn json_bodies_like_go_encoder() {
        let body = serde_json::json!({"Cmd": ["sh", "-c", "echo a > b && c <x>"]});
        assert_eq!(
            String::from_utf8(json_body(&body).unwrap()).unwrap(),
            "{\"Cmd\":[\"sh\",\"-c\",\"echo a \\u003e b \\u0026\\u0026 c \\u003cx\\u003e\"]}\n"
        );
    }

    #[test]
    fn paths_keep_names_unescaped() {
        assert_eq!(
            path_escape("/images/127.0.0.1:5000/app:v1/json"),
            "/images/127.0.0.1:5000/app:v1/json"
        );
        assert_eq!(
            path_escape("/containers/a b?/json"),
            "/containers/a%20b%3F/json"
        );
    }

    #[test]
    fn version_negotiation() {
        assert_eq!(negotiated_version("1.45", "1.41"), "1.41");
        assert_eq!(negotiated_version("1.45", "1.51"), "1.45");
        assert_eq!(negotiated_version("1.45", "1.45"), "1.45");
        assert_eq!(negotiated_version("1.45", "1.24"), "1.24");
        assert_eq!(negotiated_version("1.45", "garbage"), "1.45");
    }
}

#[cfg(test)]
#[path = "client_socket_tests.rs"]
pub(crate) mod socket_tests;
