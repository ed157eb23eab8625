//! Registries on 127.0.0.1 for pull/push tests: our own (`berth registry
//! serve`) and Debian's `docker-registry` (the reference implementation).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use super::berth_bin;

/// `berth registry serve` on a free port, its root in a temp dir.
pub struct OurRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its root is `dir/root`, its log `dir/log`.
    pub dir: tempfile::TempDir,
}

impl OurRegistry {
    // The child is killed and reaped by Drop once the struct exists, and
    // before the panic that ends a failed start.
    #[allow(clippy::zombie_processes)]
    pub fn start(args: &[&str]) -> OurRegistry {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut child = Command::new(berth_bin())
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(dir.path().join("root"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start berth registry serve");
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(i) = text.find("listening on ") {
                let url: String = text[i + "listening on ".len()..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                let addr = url.split("://").nth(1).unwrap().to_string();
                return OurRegistry { child, addr, dir };
            }
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("registry did not start: {text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn blob(&self, digest: &str) -> PathBuf {
        self.dir
            .path()
            .join("root/blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }
}

impl Drop for OurRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's docker-registry on a free port, optionally with htpasswd.
pub struct RefRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl RefRegistry {
    pub fn start(htpasswd: Option<&Path>) -> RefRegistry {
        let auth = match htpasswd {
            Some(p) => format!(
                "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                p.display()
            ),
            None => String::new(),
        };
        RefRegistry::start_with(&auth, "")
    }

    /// With `auth` (a top-level `auth:` section, or nothing) and `http`
    /// (more keys of the `http:` section, indented by two spaces).
    pub fn start_with(auth: &str, http: &str) -> RefRegistry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{http}{auth}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = dir.path().join("log");
        // Its access log (one line per request) goes to stdout.
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(std::fs::File::create(dir.path().join("access.log")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("docker-registry is installed by scripts/deps.sh");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            if t0.elapsed() > Duration::from_secs(20) || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "docker-registry did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        RefRegistry {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl RefRegistry {
    /// The access log so far: `"METHOD PATH HTTP/1.1" STATUS …` lines.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for RefRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An htpasswd file (bcrypt) for `users` in `dir`.
pub fn htpasswd(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let p = dir.join("htpasswd");
    let text: String = users
        .iter()
        .map(|(u, pw)| format!("{u}:{}\n", bcrypt::hash(pw, 4).unwrap()))
        .collect();
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `openssl ARGS`, panicking with its output when it fails.
pub fn openssl(args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// What a token server was asked, one entry per token request, e.g.
/// `GET basic:alice offline`, `POST refresh_token:alice`, `GET anonymous`.
pub type Grants = Arc<Mutex<Vec<String>>>;

/// A small token server for docker-registry's `auth: token:` (Docker's
/// token spec): `GET /token` with Basic credentials (and `offline_token=
/// true` for a refresh token), and the OAuth2 form `POST /token` with
/// `grant_type=password` (`access_type=offline` for a refresh token) or
/// `grant_type=refresh_token`. Tokens are RS256 JWTs signed (by the
/// openssl program) with a key whose self-signed certificate travels in
/// `x5c` and is the registry's `rootcertbundle`. Known users get every
/// action they ask for; anonymous requests get none.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// Every request, in order.
    pub grants: Grants,
    dir: tempfile::TempDir,
}

const TOKEN_SERVICE: &str = "berth-test-registry";
const TOKEN_ISSUER: &str = "berth-test-issuer";

struct TokenState {
    users: HashMap<String, String>,
    /// Refresh token → user.
    refresh: Mutex<HashMap<String, String>>,
    key: PathBuf,
    x5c: String,
    grants: Grants,
    serial: AtomicU64,
}

impl TokenServer {
    pub fn start(users: &[(&str, &str)]) -> TokenServer {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let der = dir.path().join("cert.der");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=berth-test-token-signer",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]);
        openssl(&[
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ]);
        let x5c = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&der).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let grants = Grants::default();
        let st = Arc::new(TokenState {
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            refresh: Mutex::default(),
            key,
            x5c,
            grants: grants.clone(),
            serial: AtomicU64::new(0),
        });
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || serve_token(&st, conn));
            }
        });
        TokenServer { realm, grants, dir }
    }

    /// docker-registry's `auth:` section for this server.
    pub fn registry_auth(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
            self.realm,
            self.dir.path().join("cert.pem").display()
        )
    }

    /// The requests so far.
    pub fn grants(&self) -> Vec<String> {
        self.grants.lock().unwrap().clone()
    }
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl TokenState {
    fn jwt(&self, sub: &str, scopes: &[String]) -> String {
        let access: Vec<serde_json::Value> = if sub.is_empty() {
            Vec::new()
        } else {
            scopes
                .iter()
                .flat_map(|s| s.split(' '))
                .filter_map(|s| {
                    let (kind, rest) = s.split_once(':')?;
                    let (name, actions) = rest.rsplit_once(':')?;
                    Some(serde_json::json!({
                        "type": kind, "name": name,
                        "actions": actions.split(',').collect::<Vec<_>>(),
                    }))
                })
                .collect()
        };
        let t = now_secs();
        let n = self.serial.fetch_add(1, Ordering::SeqCst);
        let head = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER, "sub": sub, "aud": TOKEN_SERVICE,
            "exp": t + 300, "nbf": t - 10, "iat": t, "jti": format!("jti-{n}"),
            "access": access,
        });
        let input = format!(
            "{}.{}",
            b64url(head.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl dgst");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "openssl dgst -sign failed");
        format!("{input}.{}", b64url(&o.stdout))
    }

    fn new_refresh(&self, user: &str) -> String {
        let n = self.serial.fetch_add(1, Ordering::SeqCst);
        let t = format!("refresh-{user}-{n}-{}", now_secs());
        self.refresh
            .lock()
            .unwrap()
            .insert(t.clone(), user.to_string());
        t
    }

    /// (status, body) for one request.
    fn answer(&self, method: &str, query: &str, authz: Option<&str>, body: &str) -> (u16, String) {
        let denied = |what: &str| (401, serde_json::json!({"details": what}).to_string());
        let check = |user: &str, pass: &str| self.users.get(user).map(String::as_str) == Some(pass);
        let (sub, scopes, offline, what) = if method == "POST" {
            let f = berth_api::query::pairs(body);
            let field = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let scopes: Vec<String> = field("scope").into_iter().collect();
            let offline = field("access_type").as_deref() == Some("offline");
            match field("grant_type").as_deref() {
                Some("password") => {
                    let user = field("username").unwrap_or_default();
                    if !check(&user, &field("password").unwrap_or_default()) {
                        return denied("wrong user name or password");
                    }
                    (
                        user.clone(),
                        scopes,
                        offline,
                        format!("POST password:{user}"),
                    )
                }
                Some("refresh_token") => {
                    let t = field("refresh_token").unwrap_or_default();
                    let Some(user) = self.refresh.lock().unwrap().get(&t).cloned() else {
                        return denied("invalid refresh token");
                    };
                    (
                        user.clone(),
                        scopes,
                        false,
                        format!("POST refresh_token:{user}"),
                    )
                }
                _ => return (400, r#"{"error":"unsupported_grant_type"}"#.into()),
            }
        } else {
            let q = berth_api::query::pairs(query);
            let scopes: Vec<String> = q
                .iter()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.clone())
                .collect();
            let offline = q.iter().any(|(k, v)| k == "offline_token" && v == "true");
            match authz.and_then(|a| a.strip_prefix("Basic ")) {
                Some(cred) => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(cred.trim())
                        .unwrap_or_default();
                    let raw = String::from_utf8_lossy(&raw).into_owned();
                    let (user, pass) = raw.split_once(':').unwrap_or((&raw, ""));
                    if !check(user, pass) {
                        return denied("wrong user name or password");
                    }
                    (
                        user.to_string(),
                        scopes,
                        offline,
                        format!("GET basic:{user}"),
                    )
                }
                None => (String::new(), scopes, false, "GET anonymous".to_string()),
            }
        };
        let what = if offline {
            format!("{what} offline")
        } else {
            what
        };
        self.grants.lock().unwrap().push(what);
        let token = self.jwt(&sub, &scopes);
        let mut body = serde_json::json!({
            "token": token, "access_token": token, "expires_in": 300,
        });
        if offline && !sub.is_empty() {
            body["refresh_token"] = serde_json::json!(self.new_refresh(&sub));
        }
        (200, body.to_string())
    }
}

fn serve_token(st: &TokenState, conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    // Keep-alive: clients pool connections to the token server.
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut authz = None;
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "authorization" => authz = Some(v.trim().to_string()),
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let (status, text) = if path == "/token" {
            st.answer(
                &method,
                query,
                authz.as_deref(),
                &String::from_utf8_lossy(&body),
            )
        } else {
            (404, "{}".to_string())
        };
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            _ => "Not Found",
        };
        let resp = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
