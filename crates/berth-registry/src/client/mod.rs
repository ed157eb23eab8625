//! The distribution client: what the daemon pulls and pushes with.
//!
//! A lean client on hyper-util's pooled HTTP/1.1 client and rustls rather
//! than a general-purpose crate, because pulls and pushes here need exactly
//! the parts such crates hide: blob bodies handed over chunk by chunk (so
//! the daemon decompresses, verifies and unpacks while they arrive),
//! downloads that carry on after a dropped connection with a `Range`
//! request, uploads streamed from the blob store with a known length,
//! cross-repository mounts, and Docker's token flow with its error texts.
//!
//! Registries are reached as Docker reaches them (see [`endpoint`]): HTTPS
//! with verified certificates, except loopback and `insecure-registries`,
//! which are tried over HTTPS without checks and then plain HTTP.

pub mod auth;
pub mod endpoint;
pub mod manifest;
mod transport;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use sha2::Digest as _;
use tokio::sync::mpsc;

pub use auth::{AuthConfig, Challenge};
pub use endpoint::{Insecure, Target};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, Platform};

use transport::{Connector, TlsSettings};

/// A request body: in memory or streamed.
pub type Body = BoxBody<Bytes, io::Error>;

/// Where Docker-style per-registry certificates live by default.
pub const DEFAULT_CERTS_DIR: &str = "/etc/berth/certs.d";

/// How long one attempt to reach a registry may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a dropped blob download is resumed before giving up.
const RESUME_ATTEMPTS: u32 = 3;
/// Largest error or token body read.
const MAX_SMALL_BODY: usize = 1 << 20;
/// The OAuth2 `client_id` sent to token servers.
const CLIENT_ID: &str = "berth";

/// What can go wrong talking to a registry; each message is the text Docker
/// gives for the same failure where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The manifest, tag, blob or repository does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// Credentials are missing or wrong (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The request itself is wrong (a bad platform, a bad reference) (400).
    #[error("{0}")]
    BadRequest(String),
    /// A manifest that is malformed or of a kind berth cannot use.
    #[error("{0}")]
    BadManifest(String),
    /// Content that does not hash to its digest.
    #[error("{0}")]
    Integrity(String),
    /// Any other answer of the registry.
    #[error("{message}")]
    Registry {
        /// The HTTP status it answered.
        status: u16,
        /// Its error text.
        message: String,
    },
    /// The registry could not be reached or the connection broke.
    #[error("{0}")]
    Transport(String),
}

impl ClientError {
    /// The status the daemon answers its client with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            ClientError::NotFound(_) => 404,
            ClientError::Unauthorized(_) => 401,
            ClientError::BadRequest(_) => 400,
            ClientError::Registry { status: 403, .. } => 403,
            _ => 500,
        }
    }
}

/// Settings of a client, from the daemon's configuration.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `insecure-registries`.
    pub insecure_registries: Vec<String>,
    /// `registry-mirrors` (URLs), tried first for Docker Hub pulls.
    pub registry_mirrors: Vec<String>,
    /// Per-registry certificates (`<dir>/<host[:port]>/ca.crt`, …).
    pub certs_dir: PathBuf,
    /// `User-Agent` of requests.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            certs_dir: PathBuf::from(DEFAULT_CERTS_DIR),
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// One repository on one registry, with the credentials to use there.
#[derive(Debug, Clone)]
pub struct Repo {
    /// `host[:port]` of the API.
    pub host: String,
    /// Repository path (`library/busybox`).
    pub name: String,
    /// Credentials (anonymous when empty).
    pub auth: AuthConfig,
    /// Push access is needed, not just pull.
    pub push: bool,
}

impl Repo {
    fn scope(&self) -> String {
        let actions = if self.push { "pull,push" } else { "pull" };
        format!("repository:{}:{actions}", self.name)
    }
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// What the registry asked for when it last answered 401.
#[derive(Debug, Clone)]
enum HostAuth {
    Basic,
    Bearer { realm: String, service: String },
}

/// The outcome of a cross-repository mount request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// The blob is now in the repository.
    Mounted,
    /// The registry started an upload instead (at this location).
    Upload(String),
}

/// A distribution API client; cheap to share, pools connections per host.
#[derive(Debug)]
pub struct Client {
    http: HttpClient<Connector, Body>,
    insecure: Arc<Insecure>,
    user_agent: String,
    mirrors: Vec<String>,
    /// Where per-registry TLS files are read from (named in errors).
    certs_dir: PathBuf,
    /// Scheme per host, decided at the first contact.
    schemes: Mutex<HashMap<String, &'static str>>,
    /// The auth scheme each host asked for.
    host_auth: Mutex<HashMap<String, HostAuth>>,
    /// Bearer tokens by (host, credentials hash, scopes).
    tokens: Mutex<HashMap<(String, String, String), Token>>,
}

fn transport_err(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(format!("{what}: {e}"))
}

/// A full error chain as text (hyper's errors hide the cause otherwise).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Docker's text for a registry's `{"errors":[{"code","message"}]}`:
/// `manifest unknown: manifest unknown`.
fn registry_error_text(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errs {
        #[serde(default)]
        errors: Vec<Err1>,
    }
    #[derive(serde::Deserialize)]
    struct Err1 {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errs>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|x| {
                let code = x.code.to_ascii_lowercase().replace('_', " ");
                if x.message.is_empty() {
                    code
                } else {
                    format!("{code}: {}", x.message)
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join(", ");
        }
    }
    format!(
        "unexpected status from registry: {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

async fn read_small(resp: Response<Incoming>) -> Result<Vec<u8>, ClientError> {
    read_limited(resp, MAX_SMALL_BODY).await
}

async fn read_limited(resp: Response<Incoming>, max: usize) -> Result<Vec<u8>, ClientError> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| transport_err("reading response", chain(&e)))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(ClientError::BadManifest(format!(
                    "response larger than the {max} bytes allowed"
                )));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// `sha256:` digest of bytes.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

impl Client {
    /// A client with these settings.
    pub fn new(cfg: &ClientConfig) -> Result<Client, ClientError> {
        let insecure =
            Arc::new(Insecure::new(&cfg.insecure_registries).map_err(ClientError::BadRequest)?);
        let tls = Arc::new(TlsSettings::new(cfg.certs_dir.clone(), insecure.clone()));
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            .build(Connector { tls });
        // A mirror is spoken to with the scheme its URL names, never
        // probed, as Docker does.
        let mut mirrors = Vec::new();
        let mut schemes = HashMap::new();
        for m in &cfg.registry_mirrors {
            let (scheme, host) = endpoint::parse_mirror(m).map_err(ClientError::BadRequest)?;
            schemes.insert(host.clone(), scheme);
            mirrors.push(host);
        }
        Ok(Client {
            http,
            insecure,
            user_agent: cfg.user_agent.clone(),
            mirrors,
            certs_dir: cfg.certs_dir.clone(),
            schemes: Mutex::new(schemes),
            host_auth: Mutex::default(),
            tokens: Mutex::default(),
        })
    }

    /// The mirrors configured for Docker Hub, as hosts.
    pub fn mirrors(&self) -> &[String] {
        &self.mirrors
    }

    async fn raw(&self, req: Request<Body>) -> Result<Response<Incoming>, ClientError> {
        let what = format!("{} \"{}\"", title(req.method()), req.uri());
        let host_port = match (req.uri().host(), req.uri().port_u16()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        };
        match tokio::time::timeout(CONNECT_TIMEOUT * 4, self.http.request(req)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                let text = chain(&e);
                Err(match self.client_cert_hint(&host_port, &text) {
                    Some(hint) => transport_err(&what, format!("{text}: {hint}")),
                    None => transport_err(&what, text),
                })
            }
            Err(_) => Err(transport_err(&what, "timed out")),
        }
    }

    /// What to tell the user when a registry refused the TLS session for
    /// want of a client certificate, or refused the one given: where berth
    /// looked for it.
    fn client_cert_hint(&self, host_port: &str, err: &str) -> Option<String> {
        if !tls_refused(err) {
            return None;
        }
        let dir = self.certs_dir.join(host_port);
        let cert = dir.join("client.cert");
        Some(if cert.is_file() && dir.join("client.key").is_file() {
            format!(
                "the registry at {host_port} refused the client certificate {}",
                cert.display()
            )
        } else {
            format!(
                "the registry at {host_port} requires a TLS client certificate: none in {} (client.cert and client.key)",
                dir.display()
            )
        })
    }

    /// `https` or `http` for a host. Secure hosts are always HTTPS; insecure
    /// ones are tried over HTTPS first, as Docker does.
    async fn scheme(&self, host: &str) -> Result<&'static str, ClientError> {
        if let Some(s) = self
            .schemes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
        {
            return Ok(s);
        }
        let scheme = if self.insecure.contains(host) {
            let req = self
                .request_builder(Method::GET, &format!("https://{host}/v2/"))
                .body(empty())
                .map_err(|e| ClientError::BadRequest(e.to_string()))?;
            match tokio::time::timeout(CONNECT_TIMEOUT, self.http.request(req)).await {
                Ok(Ok(_)) => "https",
                // The server speaks TLS but wants a client certificate:
                // staying on HTTPS gives the error that says so, where plain
                // HTTP would get a puzzling 400.
                Ok(Err(e)) if tls_refused(&chain(&e)) => "https",
                _ => "http",
            }
        } else {
            "https"
        };
        self.schemes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), scheme);
        Ok(scheme)
    }

    /// The base URL of a host's API (`http://127.0.0.1:5000`).
    pub async fn base_url(&self, host: &str) -> Result<String, ClientError> {
        Ok(format!("{}://{host}", self.scheme(host).await?))
    }

    fn request_builder(&self, method: Method, url: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(url)
            .header(header::USER_AGENT, &self.user_agent)
            .header("Docker-Distribution-API-Version", "registry/2.0")
    }

    /// The Authorization header for a request to `repo` with `scopes`,
    /// when one is known.
    fn cached_auth(&self, host: &str, auth: &AuthConfig, scopes: &[String]) -> Option<String> {
        let kind = self
            .host_auth
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .cloned()?;
        match kind {
            HostAuth::Basic => auth.basic_header(),
            HostAuth::Bearer { .. } => {
                if !auth.registry_token.is_empty() {
                    return Some(format!("Bearer {}", auth.registry_token));
                }
                let key = (host.to_string(), cred_key(auth), scopes.join(" "));
                let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
                tokens
                    .get(&key)
                    .filter(|t| t.expires > Instant::now())
                    .map(|t| format!("Bearer {}", t.value))
            }
        }
    }

    /// The Authorization header to start a request with: a cached one, or
    /// a fresh token when the host uses tokens and the cached one ran out
    /// (or was for other scopes), which saves a 401 round trip.
    async fn preauth(
        &self,
        host: &str,
        auth: &AuthConfig,
        scopes: &[String],
    ) -> Result<Option<String>, ClientError> {
        if let Some(h) = self.cached_auth(host, auth, scopes) {
            return Ok(Some(h));
        }
        let known = self
            .host_auth
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .cloned();
        let Some(HostAuth::Bearer { realm, service }) = known else {
            return Ok(None);
        };
        let (token, _) = self
            .fetch_token(&realm, &service, auth, scopes, false)
            .await?;
        let key = (host.to_string(), cred_key(auth), scopes.join(" "));
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, token.clone());
        Ok(Some(format!("Bearer {}", token.value)))
    }

    /// Answers a 401: learns the host's scheme from the challenge and gets
    /// credentials for it. Returns the header to retry with, and the
    /// refresh token the token server gave when `offline` asked for one
    /// (else empty).
    async fn authenticate(
        &self,
        host: &str,
        auth: &AuthConfig,
        scopes: &[String],
        headers: &HeaderMap,
        url: &str,
        offline: bool,
    ) -> Result<(String, String), ClientError> {
        let challenges: Vec<Challenge> = headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(auth::parse_challenges)
            .collect();
        let unauthorized = || {
            ClientError::Unauthorized(format!(
                "Get \"{url}\": unauthorized: authentication required"
            ))
        };
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = c.param("realm").unwrap_or_default().to_string();
            if !realm.starts_with("http://") && !realm.starts_with("https://") {
                return Err(ClientError::Unauthorized(format!(
                    "the registry at {host} asked for a token from an invalid realm {realm:?}"
                )));
            }
            let service = c.param("service").unwrap_or_default().to_string();
            self.host_auth
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(
                    host.to_string(),
                    HostAuth::Bearer {
                        realm: realm.clone(),
                        service: service.clone(),
                    },
                );
            if !auth.registry_token.is_empty() {
                return Ok((format!("Bearer {}", auth.registry_token), String::new()));
            }
            let (token, refresh) = self
                .fetch_token(&realm, &service, auth, scopes, offline)
                .await?;
            let key = (host.to_string(), cred_key(auth), scopes.join(" "));
            self.tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, token.clone());
            return Ok((format!("Bearer {}", token.value), refresh));
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            self.host_auth
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(host.to_string(), HostAuth::Basic);
            let h = auth.basic_header().ok_or_else(unauthorized)?;
            return Ok((h, String::new()));
        }
        Err(ClientError::Unauthorized(format!(
            "{url}: the registry answered 401 without a usable WWW-Authenticate challenge"
        )))
    }

    /// Gets a token from the token server: a GET with Basic credentials,
    /// or, with an identity token, the OAuth2 `refresh_token` grant (a form
    /// POST), as Docker does. `offline` asks for a refresh token too
    /// (login); the second value is the one given, else empty.
    async fn fetch_token(
        &self,
        realm: &str,
        service: &str,
        auth: &AuthConfig,
        scopes: &[String],
        offline: bool,
    ) -> Result<(Token, String), ClientError> {
        let mut url = realm.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        let mut add = |k: &str, v: &str| {
            url.push(sep);
            sep = '&';
            url.push_str(k);
            url.push('=');
            url.push_str(&pct(v));
        };
        if !service.is_empty() {
            add("service", service);
        }
        for s in scopes {
            add("scope", s);
        }
        if !auth.username.is_empty() {
            add("account", &auth.username);
        }
        if offline && auth.identity_token.is_empty() {
            add("offline_token", "true");
            add("client_id", CLIENT_ID);
        }
        let req = if auth.identity_token.is_empty() {
            let mut b = self.request_builder(Method::GET, &url);
            if let Some(h) = auth.basic_header() {
                b = b.header(header::AUTHORIZATION, h);
            }
            b.body(empty())
        } else {
            // An identity token is an OAuth2 refresh token: exchanged with
            // the form POST of the token spec.
            let mut form = format!(
                "grant_type=refresh_token&refresh_token={}&client_id={CLIENT_ID}",
                pct(&auth.identity_token)
            );
            if !service.is_empty() {
                form.push_str(&format!("&service={}", pct(service)));
            }
            if !scopes.is_empty() {
                form.push_str(&format!("&scope={}", pct(&scopes.join(" "))));
            }
            self.request_builder(Method::POST, realm)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(full(form))
        }
        .map_err(|e| ClientError::BadRequest(format!("token request to {realm}: {e}")))?;
        let resp = self.raw(req).await?;
        let status = resp.status();
        let body = read_small(resp).await?;
        if !status.is_success() {
            let reason = status.canonical_reason().unwrap_or("");
            let text = format!(
                "token auth attempt for registry: {url} request failed with status: {} {reason}",
                status.as_u16()
            );
            return Err(
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    ClientError::Unauthorized(text)
                } else {
                    ClientError::Registry {
                        status: status.as_u16(),
                        message: text,
                    }
                },
            );
        }
        let t: auth::TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| transport_err(&format!("token from {realm}"), e))?;
        if t.bearer().is_empty() {
            return Err(ClientError::Unauthorized(format!(
                "the token server at {realm} answered without a token"
            )));
        }
        // Tokens are refreshed a little before they run out; 60 s is the
        // spec's default lifetime.
        let life = if t.expires_in == 0 { 60 } else { t.expires_in };
        let token = Token {
            value: t.bearer().to_string(),
            expires: Instant::now() + Duration::from_secs(life.saturating_sub(5).max(1)),
        };
        Ok((token, t.refresh_token))
    }

    /// Sends a request to `repo`'s registry, authenticating on a 401 and
    /// retrying once. `body` is rebuilt for the retry, so it is in memory.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        host: &str,
        auth: &AuthConfig,
        scopes: &[String],
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, String)],
        body: Option<Bytes>,
    ) -> Result<Response<Incoming>, ClientError> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base_url(host).await?)
        };
        let build = |authz: Option<&str>| {
            let mut b = self.request_builder(method.clone(), &url);
            for (k, v) in headers {
                b = b.header(k, v);
            }
            if let Some(a) = authz {
                b = b.header(header::AUTHORIZATION, a);
            }
            let body = match &body {
                Some(bytes) => full(bytes.clone()),
                None => empty(),
            };
            b.body(body)
                .map_err(|e| ClientError::BadRequest(format!("{url}: {e}")))
        };
        let cached = self.preauth(host, auth, scopes).await?;
        let resp = self.raw(build(cached.as_deref())?).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let (authz, _) = self
            .authenticate(host, auth, scopes, resp.headers(), &url, false)
            .await?;
        let resp = self.raw(build(Some(&authz))?).await?;
        Ok(resp)
    }

    async fn send_repo(
        &self,
        repo: &Repo,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, String)],
        body: Option<Bytes>,
    ) -> Result<Response<Incoming>, ClientError> {
        self.send(
            &repo.host,
            &repo.auth,
            &[repo.scope()],
            method,
            path,
            headers,
            body,
        )
        .await
    }

    /// Checks credentials against a registry, as `docker login` does: a
    /// `GET /v2/` that must succeed once authenticated. Returns the API URL
    /// and the identity token: the refresh token a token server gives when
    /// asked for offline access (empty when it gives none, or for Basic).
    pub async fn login(
        &self,
        host: &str,
        auth: &AuthConfig,
    ) -> Result<(String, String), ClientError> {
        let base = self.base_url(host).await?;
        let url = format!("{base}/v2/");
        let get = |authz: Option<&str>| {
            let mut b = self.request_builder(Method::GET, &url);
            if let Some(a) = authz {
                b = b.header(header::AUTHORIZATION, a);
            }
            b.body(empty())
                .map_err(|e| ClientError::BadRequest(format!("{url}: {e}")))
        };
        // No cached token: login must reach the token server itself, so
        // that it checks the credentials and can hand out a refresh token.
        let mut resp = self.raw(get(None)?).await?;
        let mut identity = String::new();
        if resp.status() == StatusCode::UNAUTHORIZED {
            let got = self
                .authenticate(host, auth, &[], resp.headers(), &url, true)
                .await;
            let (authz, refresh) = match got {
                Err(ClientError::Unauthorized(m)) => {
                    return Err(ClientError::Unauthorized(if m.starts_with("token auth") {
                        format!("Get \"{url}\": {m}")
                    } else {
                        format!("login attempt to {url} failed with status: 401 Unauthorized")
                    }))
                }
                other => other?,
            };
            identity = refresh;
            resp = self.raw(get(Some(&authz))?).await?;
        }
        let st = resp.status();
        if st.is_success() {
            return Ok((url, identity));
        }
        let reason = st.canonical_reason().unwrap_or("");
        let text = format!(
            "login attempt to {url} failed with status: {} {reason}",
            st.as_u16()
        );
        Err(
            if st == StatusCode::UNAUTHORIZED || st == StatusCode::FORBIDDEN {
                ClientError::Unauthorized(text)
            } else {
                ClientError::Registry {
                    status: st.as_u16(),
                    message: text,
                }
            },
        )
    }

    /// Fetches a manifest by tag or digest: its bytes, media type and
    /// digest. A digest reference must match the bytes.
    pub async fn get_manifest(
        &self,
        repo: &Repo,
        reference: &str,
    ) -> Result<(Vec<u8>, String, String), ClientError> {
        let path = format!("/v2/{}/manifests/{reference}", repo.name);
        let resp = self
            .send_repo(
                repo,
                Method::GET,
                &path,
                &[(header::ACCEPT, manifest::ACCEPT.to_string())],
                None,
            )
            .await?;
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if !status.is_success() {
            let body = read_small(resp).await.unwrap_or_default();
            return Err(self.status_error(status, &body));
        }
        let body = read_limited(resp, manifest::MAX_MANIFEST).await?;
        let digest = sha256(&body);
        if reference.contains(':') && reference != digest {
            return Err(ClientError::Integrity(format!(
                "manifest verification failed for digest {reference}: the registry sent content with digest {digest}"
            )));
        }
        Ok((body, ct, digest))
    }

    fn status_error(&self, status: StatusCode, body: &[u8]) -> ClientError {
        let text = registry_error_text(status, body);
        match status {
            StatusCode::NOT_FOUND => ClientError::NotFound(text),
            StatusCode::UNAUTHORIZED => ClientError::Unauthorized(text),
            s => ClientError::Registry {
                status: s.as_u16(),
                message: text,
            },
        }
    }

    /// Reads a small blob (a config) whole, checked against its digest.
    pub async fn get_blob_bytes(
        &self,
        repo: &Repo,
        digest: &str,
        max: u64,
    ) -> Result<Vec<u8>, ClientError> {
        let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(16);
        let collect = async {
            let mut out = Vec::new();
            while let Some(chunk) = rx.recv().await {
                let chunk: Bytes = chunk.map_err(|e| transport_err(digest, e))?;
                if (out.len() + chunk.len()) as u64 > max {
                    return Err(ClientError::BadManifest(format!(
                        "blob {digest} is larger than the {max} bytes allowed"
                    )));
                }
                out.extend_from_slice(&chunk);
            }
            Ok::<_, ClientError>(out)
        };
        let (r, out) = tokio::join!(
            async move {
                let r = self.download_blob(repo, digest, 0, max, &tx, &|_| {}).await;
                drop(tx);
                r
            },
            collect
        );
        r?;
        let out = out?;
        let got = sha256(&out);
        if got != digest {
            return Err(ClientError::Integrity(format!(
                "blob {digest} does not match its digest: got {got}"
            )));
        }
        Ok(out)
    }

    /// Streams a blob into `tx` from byte `offset` on, following redirects
    /// and resuming with `Range` when the connection drops (the receiver
    /// sees one unbroken stream). `progress` gets the bytes sent so far.
    /// More than `limit` bytes (the descriptor's size) is an error, so a
    /// registry cannot fill the disk; the receiver verifies the digest.
    pub async fn download_blob(
        &self,
        repo: &Repo,
        digest: &str,
        offset: u64,
        limit: u64,
        tx: &mpsc::Sender<io::Result<Bytes>>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, ClientError> {
        let mut sent = offset;
        let mut attempts = 0;
        loop {
            let resp = self.open_blob(repo, digest, sent).await?;
            let status = resp.status();
            if sent > 0 && status != StatusCode::PARTIAL_CONTENT {
                return Err(ClientError::Transport(format!(
                    "blob {digest}: the registry cannot resume a download (status {})",
                    status.as_u16()
                )));
            }
            let mut body = resp.into_body();
            let mut broke = None;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Ok(data) = f.into_data() {
                            sent += data.len() as u64;
                            if sent > limit {
                                let e = ClientError::Integrity(format!(
                                    "blob {digest} is larger than the {limit} bytes its descriptor gives"
                                ));
                                let _ = tx
                                    .send(Err(io::Error::new(
                                        io::ErrorKind::InvalidData,
                                        e.to_string(),
                                    )))
                                    .await;
                                return Err(e);
                            }
                            if tx.send(Ok(data)).await.is_err() {
                                // The reader stopped (it failed): nothing more to do.
                                return Ok(sent);
                            }
                            progress(sent);
                        }
                    }
                    Err(e) => {
                        broke = Some(chain(&e));
                        break;
                    }
                }
            }
            match broke {
                None => return Ok(sent),
                Some(e) if attempts < RESUME_ATTEMPTS => {
                    attempts += 1;
                    tracing::info!(blob = digest, at = sent, error = %e, "blob download broke; resuming");
                }
                Some(e) => {
                    return Err(ClientError::Transport(format!(
                        "downloading blob {digest}: {e}"
                    )))
                }
            }
        }
    }

    async fn open_blob(
        &self,
        repo: &Repo,
        digest: &str,
        offset: u64,
    ) -> Result<Response<Incoming>, ClientError> {
        let path = format!("/v2/{}/blobs/{digest}", repo.name);
        let range: Vec<(header::HeaderName, String)> = if offset > 0 {
            vec![(header::RANGE, format!("bytes={offset}-"))]
        } else {
            vec![]
        };
        let mut resp = self
            .send_repo(repo, Method::GET, &path, &range, None)
            .await?;
        let base = self.base_url(&repo.host).await?;
        let mut current = format!("{base}{path}");
        for _ in 0..5 {
            if !resp.status().is_redirection() {
                break;
            }
            let loc = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| transport_err(&current, "redirect without a Location"))?;
            let next = resolve(&current, loc);
            // Storage backends behind a redirect get no registry credentials.
            let mut b = self.request_builder(Method::GET, &next);
            for (k, v) in &range {
                b = b.header(k, v);
            }
            let req = b
                .body(empty())
                .map_err(|e| ClientError::BadRequest(format!("{next}: {e}")))?;
            resp = self.raw(req).await?;
            current = next;
        }
        let st = resp.status();
        if st.is_success() {
            return Ok(resp);
        }
        let body = read_small(resp).await.unwrap_or_default();
        Err(self.status_error(st, &body))
    }

    /// Whether the repository has the blob (HEAD).
    pub async fn blob_exists(&self, repo: &Repo, digest: &str) -> Result<bool, ClientError> {
        let path = format!("/v2/{}/blobs/{digest}", repo.name);
        let resp = self.send_repo(repo, Method::HEAD, &path, &[], None).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(self.status_error(s, &[])),
        }
    }

    /// Asks the registry to mount `digest` from repository `from` into
    /// `repo` (cross-repository blob mount).
    pub async fn mount_blob(
        &self,
        repo: &Repo,
        digest: &str,
        from: &str,
    ) -> Result<Mount, ClientError> {
        let path = format!(
            "/v2/{}/blobs/uploads/?mount={digest}&from={}",
            repo.name,
            pct(from)
        );
        let scopes = [repo.scope(), format!("repository:{from}:pull")];
        let resp = self
            .send(
                &repo.host,
                &repo.auth,
                &scopes,
                Method::POST,
                &path,
                &[],
                None,
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Upload(self.location(repo, &resp).await?)),
            s => {
                let body = read_small(resp).await.unwrap_or_default();
                Err(self.status_error(s, &body))
            }
        }
    }

    async fn location(
        &self,
        repo: &Repo,
        resp: &Response<Incoming>,
    ) -> Result<String, ClientError> {
        let loc = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Transport("upload started without a Location".into()))?;
        let base = self.base_url(&repo.host).await?;
        Ok(resolve(&format!("{base}/v2/"), loc))
    }

    /// Starts an upload; returns its location.
    pub async fn start_upload(&self, repo: &Repo) -> Result<String, ClientError> {
        let path = format!("/v2/{}/blobs/uploads/", repo.name);
        let resp = self.send_repo(repo, Method::POST, &path, &[], None).await?;
        match resp.status() {
            StatusCode::ACCEPTED => self.location(repo, &resp).await,
            s => {
                let body = read_small(resp).await.unwrap_or_default();
                Err(self.status_error(s, &body))
            }
        }
    }

    /// Completes an upload started with [`Client::start_upload`] in one PUT
    /// of `size` bytes streamed from `body`. The session's credentials were
    /// settled by the POST, so a streamed body is never sent twice.
    pub async fn finish_upload(
        &self,
        repo: &Repo,
        location: &str,
        digest: &str,
        size: u64,
        body: Body,
    ) -> Result<(), ClientError> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={digest}");
        let mut b = self
            .request_builder(Method::PUT, &url)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, size);
        if let Some(a) = self
            .preauth(&repo.host, &repo.auth, &[repo.scope()])
            .await?
        {
            b = b.header(header::AUTHORIZATION, a);
        }
        let req = b
            .body(body)
            .map_err(|e| ClientError::BadRequest(format!("{url}: {e}")))?;
        let resp = self.raw(req).await?;
        let st = resp.status();
        if st == StatusCode::CREATED || st.is_success() {
            return Ok(());
        }
        let body = read_small(resp).await.unwrap_or_default();
        Err(self.status_error(st, &body))
    }

    /// Uploads a small blob (a config) from memory.
    pub async fn upload_bytes(&self, repo: &Repo, data: Bytes) -> Result<String, ClientError> {
        let digest = sha256(&data);
        if self.blob_exists(repo, &digest).await? {
            return Ok(digest);
        }
        let loc = self.start_upload(repo).await?;
        let len = data.len() as u64;
        self.finish_upload(repo, &loc, &digest, len, full(data))
            .await?;
        Ok(digest)
    }

    /// Puts a manifest under a tag (or its digest); returns its digest.
    pub async fn put_manifest(
        &self,
        repo: &Repo,
        reference: &str,
        media_type: &str,
        data: Bytes,
    ) -> Result<String, ClientError> {
        let digest = sha256(&data);
        let path = format!("/v2/{}/manifests/{reference}", repo.name);
        let resp = self
            .send_repo(
                repo,
                Method::PUT,
                &path,
                &[(header::CONTENT_TYPE, media_type.to_string())],
                Some(data),
            )
            .await?;
        let st = resp.status();
        if st.is_success() {
            return Ok(digest);
        }
        let body = read_small(resp).await.unwrap_or_default();
        Err(self.status_error(st, &body))
    }

    /// The tags of a repository (`--all-tags`), following `Link` pages.
    pub async fn tags(&self, repo: &Repo) -> Result<Vec<String>, ClientError> {
        #[derive(serde::Deserialize)]
        struct List {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut out = Vec::new();
        let mut path = format!("/v2/{}/tags/list", repo.name);
        for _ in 0..1000 {
            let resp = self.send_repo(repo, Method::GET, &path, &[], None).await?;
            let st = resp.status();
            let next = link_next(resp.headers());
            let body = read_small(resp).await?;
            if !st.is_success() {
                return Err(self.status_error(st, &body));
            }
            let l: List = serde_json::from_slice(&body)
                .map_err(|e| ClientError::BadManifest(format!("tag list of {}: {e}", repo.name)))?;
            out.extend(l.tags.unwrap_or_default());
            match next {
                Some(n) => path = n,
                None => break,
            }
        }
        Ok(out)
    }
}

/// Whether a connection error is a TLS server refusing the client's
/// certificate, or its absence (rustls names the alert it received).
fn tls_refused(err: &str) -> bool {
    err.contains("received fatal alert: CertificateRequired")
        || err.contains("received fatal alert: BadCertificate")
}

fn title(m: &Method) -> String {
    let s = m.as_str();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_string() + &c.as_str().to_ascii_lowercase(),
        None => String::new(),
    }
}

/// `Link: </v2/x/tags/list?last=a&n=100>; rel="next"` → the path.
fn link_next(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::LINK)?.to_str().ok()?;
    let start = v.find('<')? + 1;
    let end = v[start..].find('>')? + start;
    v.contains("rel=\"next\"")
        .then(|| v[start..end].to_string())
}

/// Resolves a Location against the URL it came from.
fn resolve(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    if loc.starts_with('/') {
        format!("{}{loc}", &base[..host_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|i| *i >= host_end)
            .unwrap_or(host_end);
        format!("{}/{loc}", &base[..dir_end])
    }
}

/// What tokens are cached under for a set of credentials: a hash of all
/// of them, so that a token got with the right password is never handed to
/// a request that brings the same user name with a wrong one.
fn cred_key(auth: &AuthConfig) -> String {
    sha256(
        format!(
            "{}\0{}\0{}\0{}",
            auth.username, auth.password, auth.identity_token, auth.registry_token
        )
        .as_bytes(),
    )
}

/// Percent-encodes a query value.
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_like_docker() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            registry_error_text(StatusCode::NOT_FOUND, body),
            "manifest unknown: manifest unknown"
        );
        assert_eq!(
            registry_error_text(StatusCode::BAD_GATEWAY, b"<html>"),
            "unexpected status from registry: 502 Bad Gateway"
        );
    }

    #[test]
    fn locations() {
        assert_eq!(
            resolve("http://h:5/v2/", "/v2/x/blobs/uploads/u?s=1"),
            "http://h:5/v2/x/blobs/uploads/u?s=1"
        );
        assert_eq!(resolve("http://h/v2/", "https://s3/x"), "https://s3/x");
        assert_eq!(resolve("http://h/v2/a/b", "c"), "http://h/v2/a/c");
        assert_eq!(pct("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }
}
