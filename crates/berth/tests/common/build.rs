//! Helpers of the build tests: a context directory from (name, content)
//! pairs, and the real docker CLI with its legacy builder.

use std::path::Path;
use std::process::Command;

use super::{docker_bin, Daemon, Run};

/// Writes files (name, content) under a new context dir.
pub fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    for (n, c) in files {
        let p = t.path().join(n);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
    t
}

pub fn path(t: &tempfile::TempDir) -> &str {
    t.path().to_str().unwrap()
}

/// The real docker CLI with the legacy builder.
pub fn docker_legacy(d: &Daemon, args: &[&str], dir: &Path) -> Run {
    let o = Command::new(docker_bin())
        .args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CLI_HINTS", "false")
        .output()
        .expect("docker runs");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}
