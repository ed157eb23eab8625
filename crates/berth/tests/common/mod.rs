//! Shared helpers of the integration tests: a private daemon per test (own
//! data root, run root and socket in a temp dir), commands run through our
//! CLI or the real docker CLI against it, raw API requests, and the fixture
//! images. The daemon's log is printed when a test fails.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod build;
pub mod registry;

/// The berth binary under test.
pub fn berth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// The fixture images, made once per test run by scripts/fixtures.sh.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = root.join("target/fixtures");
        let lock = std::fs::File::create(root.join("target/fixtures.lock")).expect("lock file");
        lock_file(&lock);
        if !dir.join("big-image.tar").exists() {
            let st = Command::new(root.join("scripts/fixtures.sh"))
                .arg(&dir)
                .status()
                .expect("run fixtures.sh");
            assert!(st.success(), "scripts/fixtures.sh failed");
        }
        dir
    })
}

/// Several test binaries may ask for the fixtures at once.
fn lock_file(f: &std::fs::File) {
    f.lock().expect("lock fixtures");
}

/// Output of a command, with helpers for asserting.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "command failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts failure with this exit code; returns stderr.
    #[track_caller]
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stderr
    }
}

/// A private daemon.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    child: Option<std::process::Child>,
    log: PathBuf,
    env: Vec<(String, String)>,
    /// Started under `nohup` (SIGHUP ignored), as some users start it.
    nohup: bool,
}

impl Daemon {
    /// Starts a daemon on a fresh root and waits until it answers.
    pub fn start() -> Daemon {
        Daemon::start_with_env(&[])
    }

    /// Starts a daemon with extra environment variables.
    pub fn start_with_env(env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("bt-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let socket = dir.path().join("s.sock");
        let log = dir.path().join("daemon.log");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut d = Daemon {
            dir,
            socket,
            child: None,
            log,
            env,
            nohup: false,
        };
        d.spawn();
        d
    }

    /// Starts a daemon under `nohup`: it and what it starts begin with
    /// SIGHUP ignored.
    pub fn start_nohup() -> Daemon {
        let mut d = Daemon::start_with_env(&[]);
        d.kill9();
        d.nohup = true;
        d.spawn();
        d
    }

    /// The data root.
    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let mut cmd = if self.nohup {
            let mut c = Command::new("nohup");
            c.arg(berth_bin());
            c
        } else {
            Command::new(berth_bin())
        };
        let child = cmd
            .arg("daemon")
            .arg("--host")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.dir.path().join("run"))
            .arg("--log-level")
            .arg("debug")
            // The machine's /etc/berth/daemon.json is not the test's: a
            // test writes its own here when it needs one.
            .arg("--config-file")
            .arg(self.dir.path().join("daemon.json"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = self.request("GET", "/_ping", None) {
                if r.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "daemon did not answer within 20 s; log:\n{}",
            self.log_text()
        );
    }

    /// Kills the daemon with SIGKILL (containers keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the daemon with SIGTERM; returns how long it took to exit
    /// (`None`: still running after `limit`, then killed).
    pub fn term(&mut self, limit: Duration) -> Option<Duration> {
        let mut c = self.child.take()?;
        let start = Instant::now();
        let _ = nix_kill_term(c.id());
        while start.elapsed() < limit {
            if let Ok(Some(_)) = c.try_wait() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// Starts the daemon again on the same roots.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `unix://` host string.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Runs `berth ARGS` against this daemon.
    pub fn berth(&self, args: &[&str]) -> Run {
        self.berth_stdin(args, None)
    }

    /// Runs `berth ARGS` with `input` on stdin.
    pub fn berth_stdin(&self, args: &[&str], input: Option<&[u8]>) -> Run {
        let mut cmd = Command::new(berth_bin());
        cmd.args(["-H", &self.host()])
            .args(args)
            .env("BERTH_NO_AUTOSTART", "1");
        run_with_input(cmd, input)
    }

    /// Runs the real `docker ARGS` against this daemon.
    pub fn docker(&self, args: &[&str]) -> Run {
        self.docker_stdin(args, None)
    }

    /// Runs the docker 20.10 client (API 1.41) against this daemon.
    pub fn docker20(&self, args: &[&str]) -> Run {
        let bin = Path::new(DOCKER_20_10);
        assert!(
            bin.exists(),
            "{DOCKER_20_10} is missing: scripts/deps.sh installs it"
        );
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        run_with_input(cmd, None)
    }

    /// Runs `docker ARGS` with `input` on stdin.
    pub fn docker_stdin(&self, args: &[&str], input: Option<&[u8]>) -> Run {
        let mut cmd = Command::new(docker_bin());
        cmd.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env("DOCKER_CLI_HINTS", "false");
        run_with_input(cmd, input)
    }

    /// Imports the busybox fixture as `busybox:latest` (through the API, so
    /// tests of one client do not depend on the other).
    pub fn busybox(&self) {
        let tar = std::fs::read(fixtures().join("busybox-rootfs.tar")).expect("fixture");
        let r = self
            .request("POST", "/v1.41/images/create?fromSrc=-&repo=busybox&tag=latest&changes=CMD%20%5B%22sh%22%5D", Some(&tar))
            .expect("import request");
        assert_eq!(r.status, 200, "import failed: {}", r.body_string());
    }

    /// A raw API request; the body is returned whole.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> std::io::Result<HttpResponse> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes())?;
        // A server may answer (and close) before reading a body it has no
        // use for, as dockerd does for a missing container: still read it.
        if let Err(e) = s.write_all(body) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(e);
            }
        }
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        Ok(HttpResponse::parse(&raw))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Containers first, so no mount or process outlives the test.
        if self.child.is_some() {
            let ids = self
                .request("GET", "/containers/json?all=1", None)
                .map(|r| r.body_string())
                .unwrap_or_default();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&ids) {
                for c in v.as_array().into_iter().flatten() {
                    if let Some(id) = c["Id"].as_str() {
                        let _ = self.request("DELETE", &format!("/containers/{id}?force=1"), None);
                    }
                }
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = nix_kill_term(c.id());
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- daemon log ({}) ----\n{}",
                self.log.display(),
                self.log_text()
            );
        }
        // Anything still mounted under the temp dir would make its removal fail.
        if let Ok(m) = std::fs::read_to_string("/proc/self/mountinfo") {
            let root = self.dir.path().display().to_string();
            for target in m
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|t| t.starts_with(&root))
            {
                let _ = Command::new("umount").arg("-l").arg(target).status();
            }
        }
    }
}

fn nix_kill_term(pid: u32) -> std::io::Result<()> {
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .map(|_| ())
}

/// Debian's docker 20.10 client, installed by scripts/deps.sh.
pub const DOCKER_20_10: &str = "/usr/local/lib/berth-test/docker-20.10";

/// The docker CLI to test against: `docker` on PATH (28.x here).
pub fn docker_bin() -> PathBuf {
    for p in ["/usr/local/bin/docker", "/usr/bin/docker"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("the docker CLI is not installed: scripts/deps.sh installs Debian's docker.io client");
}

fn run_with_input(mut cmd: Command, input: Option<&[u8]>) -> Run {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn command");
    if let Some(data) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    Run::from(child.wait_with_output().expect("wait for command"))
}

/// A parsed HTTP/1.1 response (chunked bodies decoded).
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    fn parse(raw: &[u8]) -> HttpResponse {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw.get(split + 4..).unwrap_or_default().to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        HttpResponse {
            status,
            headers,
            body,
        }
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn body_string(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body_string()))
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}
