//! Registries on 127.0.0.1 for pull/push tests: our own (`berth registry
//! serve`) and Debian's `docker-registry` (the reference implementation).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let auth = match htpasswd {
            Some(p) => format!(
                "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                p.display()
            ),
            None => String::new(),
        };
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed by scripts/deps.sh");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "docker-registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        RefRegistry {
            child,
            addr,
            _dir: dir,
        }
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
