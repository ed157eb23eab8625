//! Shared helpers of the registry's integration tests: a private registry
//! process per test (own root in a temp dir, port picked by the server and
//! read from its log), an HTTP client, and digests. The server's log is
//! printed when a test fails.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::Digest as _;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth-registry"))
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fixture images, made by scripts/fixtures.sh when missing.
pub fn fixtures() -> PathBuf {
    let root = workspace();
    let dir = root.join("target/fixtures");
    std::fs::create_dir_all(root.join("target")).unwrap();
    let lock = std::fs::File::create(root.join("target/fixtures.lock")).expect("lock file");
    lock.lock().expect("lock fixtures");
    if !dir.join("big-image.tar").exists() {
        let st = Command::new(root.join("scripts/fixtures.sh"))
            .arg(&dir)
            .status()
            .expect("run fixtures.sh");
        assert!(st.success(), "scripts/fixtures.sh failed");
    }
    dir
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// A registry server of our own, in its own temp dir.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub addr: String,
    child: Option<Child>,
    args: Vec<String>,
    log: PathBuf,
    starts: usize,
}

impl Registry {
    /// Starts `berth-registry serve --addr 127.0.0.1:0 --root DIR/root ARGS`.
    pub fn start(args: &[&str]) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Registry {
            log: dir.path().join("server-0.log"),
            dir,
            url: String::new(),
            addr: String::new(),
            child: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            starts: 0,
        };
        r.spawn();
        r
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn spawn(&mut self) {
        self.log = self.dir.path().join(format!("server-{}.log", self.starts));
        self.starts += 1;
        let log = std::fs::File::create(&self.log).unwrap();
        let child = Command::new(bin())
            .arg("serve")
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--root")
            .arg(self.root())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth-registry");
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(i) = text.find("listening on ") {
                let url: String = text[i + "listening on ".len()..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                self.addr = url.split("://").nth(1).unwrap().to_owned();
                self.url = url;
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("registry exited with {st}: {text}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "registry did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts again on the same root (a new port).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Starts again on the same root with other flags.
    pub fn restart_with(&mut self, args: &[&str]) {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self.restart();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// All the logs of this registry so far.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for i in 0..self.starts {
            let p = self.dir.path().join(format!("server-{i}.log"));
            out.push_str(&std::fs::read_to_string(p).unwrap_or_default());
        }
        out
    }

    pub fn api(&self) -> Api {
        Api::new(&self.url)
    }

    /// Every blob in the store hashes to its name.
    pub fn check_store(&self) -> usize {
        let dir = self.root().join("blobs/sha256");
        let mut n = 0;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return 0;
        };
        for ent in entries {
            let ent = ent.unwrap();
            let name = ent.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(".tmp"), "temp file in blobs/: {name}");
            let data = std::fs::read(ent.path()).unwrap();
            assert_eq!(
                sha256(&data),
                format!("sha256:{name}"),
                "blob {name} does not hash to its name"
            );
            n += 1;
        }
        n
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "----- registry log -----\n{}\n------------------------",
                self.logs()
            );
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, k: &str) -> Option<String> {
        self.headers.get(k).map(|v| v.to_str().unwrap().to_owned())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The code of the first error of the body.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {:?}", self))
            .to_owned()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP client bound to one registry.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    pub auth: Option<String>,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            auth: None,
        }
    }

    pub fn with_auth(mut self, value: &str) -> Api {
        self.auth = Some(value.to_owned());
        self
    }

    pub fn basic(self, user: &str, pass: &str) -> Api {
        use base64::Engine as _;
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        self.with_auth(&format!("Basic {v}"))
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Request<Full<Bytes>> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        };
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(url);
        if let Some(a) = &self.auth {
            b = b.header("authorization", a);
        }
        for (k, v) in headers {
            b = b.header(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        b.body(Full::new(Bytes::from(body))).unwrap()
    }

    /// A request; `None` when the connection fails (a server killed).
    pub async fn try_req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Option<Resp> {
        let resp = self
            .client
            .request(self.request(method, path, headers, body))
            .await
            .ok()?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.ok()?.to_bytes().to_vec();
        Some(Resp {
            status,
            headers,
            body,
        })
    }

    pub async fn req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        self.try_req(method, path, headers, body)
            .await
            .unwrap_or_else(|| panic!("{method} {path}: no response"))
    }

    /// A GET whose body is hashed as it streams, never held whole:
    /// (status, length, sha256 digest).
    pub async fn get_streamed(&self, path: &str) -> (u16, u64, String) {
        let resp = self
            .client
            .request(self.request("GET", path, &[], Vec::new()))
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut h = sha2::Sha256::new();
        let mut n = 0u64;
        while let Some(f) = body.frame().await {
            if let Ok(d) = f.expect("body").into_data() {
                n += d.len() as u64;
                h.update(&d);
            }
        }
        (status, n, format!("sha256:{}", hex::encode(h.finalize())))
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.req("GET", path, &[], Vec::new()).await
    }

    pub async fn head(&self, path: &str) -> Resp {
        self.req("HEAD", path, &[], Vec::new()).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.req("DELETE", path, &[], Vec::new()).await
    }

    /// POST + PUT upload of `data` to `repo`; returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha256(data);
        let r = self
            .req(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Vec::new(),
            )
            .await;
        assert_eq!(r.status, 202, "{r:?}");
        let loc = r.header("location").unwrap();
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = self
            .req(
                "PUT",
                &format!("{loc}{sep}digest={d}"),
                &[("content-type", "application/octet-stream")],
                data.to_vec(),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        d
    }

    /// PUT of a manifest; returns the response.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Resp {
        self.req(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type)],
            body.to_vec(),
        )
        .await
    }

    /// Pushes a small image (config + `layers` random layers) to
    /// `repo:tag`; returns (manifest bytes, manifest digest, blob digests).
    pub async fn push_image(
        &self,
        repo: &str,
        tag: &str,
        layers: usize,
    ) -> (Vec<u8>, String, Vec<String>) {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","n":"{}"}}"#,
            rand_hex(8)
        );
        let cd = self.push_blob(repo, config.as_bytes()).await;
        let mut blobs = vec![cd.clone()];
        let mut descs = Vec::new();
        for _ in 0..layers {
            let data = rand_bytes(1000);
            let d = self.push_blob(repo, &data).await;
            descs.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": d, "size": data.len()
            }));
            blobs.push(d);
        }
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": descs,
        })
        .to_string()
        .into_bytes();
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
        assert_eq!(r.status, 201, "{r:?} {}", r.text());
        let md = sha256(&m);
        assert_eq!(r.header("docker-content-digest").unwrap(), md);
        (m, md, blobs)
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub fn rand_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).unwrap();
    b
}

pub fn rand_hex(n: usize) -> String {
    hex::encode(rand_bytes(n))
}

/// Writes an htpasswd file with bcrypt entries (cost 4: tests need speed,
/// not strength).
pub fn htpasswd(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let p = dir.join("htpasswd");
    let text: String = users
        .iter()
        .map(|(u, pw)| format!("{u}:{}\n", bcrypt::hash(pw, 4).unwrap()))
        .collect();
    std::fs::write(&p, text).unwrap();
    p
}

/// Peak resident memory (VmHWM) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}
