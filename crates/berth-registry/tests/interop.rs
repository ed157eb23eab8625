//! Interoperability with clients nobody here wrote: Debian's `skopeo`
//! copies the fixture image (a docker-archive) to the registry, inspects it,
//! and copies it back to `dir:` and `oci:` layouts, without auth, with
//! htpasswd, with tokens and over TLS. The same round trip runs against
//! Debian's `docker-registry` (the reference implementation), which proves
//! the test itself right; both must give the same content digests.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Runs skopeo, failing loudly with its output.
fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("REGISTRY_AUTH_FILE", "/nonexistent/auth.json")
        .output()
        .expect("skopeo is installed by scripts/deps.sh");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn skopeo_fails(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("REGISTRY_AUTH_FILE", "/nonexistent/auth.json")
        .output()
        .unwrap();
    assert!(!out.status.success(), "skopeo {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sh(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The fixture's config digest and layer diff IDs, from the archive itself.
fn fixture_ids(archive: &Path) -> (String, Vec<String>) {
    let a = archive.display();
    let manifest: Value =
        serde_json::from_str(&sh(&format!("tar -xOf {a} manifest.json"))).unwrap();
    let config_name = manifest[0]["Config"].as_str().unwrap().to_owned();
    let config: Value = serde_json::from_str(&sh(&format!("tar -xOf {a} {config_name}"))).unwrap();
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    (
        format!("sha256:{}", config_name.trim_end_matches(".json")),
        diff_ids,
    )
}

/// What a round trip found: the config digest and the uncompressed
/// digests of the layers as they came back.
#[derive(Debug, PartialEq)]
struct Found {
    config: String,
    diff_ids: Vec<String>,
}

/// docker-archive → registry → inspect → dir: and oci:, and an OCI layout
/// → registry → OCI layout; `cred` is `user:pass` or empty, `host` is
/// HOST:PORT.
fn round_trip(host: &str, cred: &str) -> Found {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    let fx = fixtures().join("big-image.tar");
    let (config_digest, diff_ids) = fixture_ids(&fx);
    let dest: Vec<&str> = if cred.is_empty() {
        vec![]
    } else {
        vec!["--dest-creds", cred]
    };
    let src: Vec<&str> = if cred.is_empty() {
        vec![]
    } else {
        vec!["--src-creds", cred]
    };
    let creds: Vec<&str> = if cred.is_empty() {
        vec![]
    } else {
        vec!["--creds", cred]
    };
    let image = format!("docker://{host}/berth/big:v1");

    let mut args = vec!["copy", "--dest-tls-verify=false"];
    args.extend(&dest);
    let archive = format!("docker-archive:{}", fx.display());
    args.extend([archive.as_str(), image.as_str()]);
    skopeo(&args);

    // inspect: the config and the layers are what was pushed.
    let mut args = vec!["inspect", "--tls-verify=false"];
    args.extend(&creds);
    args.push(&image);
    let info: Value = serde_json::from_str(&skopeo(&args)).unwrap();
    assert_eq!(info["Labels"]["org.berth.fixture"], "big");
    assert_eq!(info["Layers"].as_array().unwrap().len(), 3);
    let mut raw_args = vec!["inspect", "--raw", "--tls-verify=false"];
    raw_args.extend(&creds);
    raw_args.push(&image);
    let raw = skopeo(&raw_args);
    let manifest: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(manifest["config"]["digest"], config_digest);
    assert_eq!(info["Digest"], sha256(raw.as_bytes()));
    let layer_digests: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();

    // Back to dir: every file hashes to its name, the layers unpack to
    // the fixture's diff IDs.
    let dir = format!("dir:{t}/dir");
    let mut args = vec!["copy", "--src-tls-verify=false"];
    args.extend(&src);
    args.extend([image.as_str(), dir.as_str()]);
    skopeo(&args);
    let mut got_diff_ids = Vec::new();
    for l in &layer_digests {
        let hex = l.trim_start_matches("sha256:");
        let f = format!("{t}/dir/{hex}");
        assert_eq!(
            format!("sha256:{}", sh(&format!("sha256sum < {f} | cut -d' ' -f1"))),
            *l
        );
        let unpacked = sh(&format!(
            "(gzip -dc < {f} 2>/dev/null || cat {f}) | sha256sum | cut -d' ' -f1"
        ));
        got_diff_ids.push(format!("sha256:{unpacked}"));
    }
    let cfg_file = format!("{t}/dir/{}", config_digest.trim_start_matches("sha256:"));
    assert_eq!(
        format!(
            "sha256:{}",
            sh(&format!("sha256sum < {cfg_file} | cut -d' ' -f1"))
        ),
        config_digest
    );

    // Back to an OCI layout: same layer blobs.
    let oci = format!("oci:{t}/oci:v1");
    let mut args = vec!["copy", "--src-tls-verify=false"];
    args.extend(&src);
    args.extend([image.as_str(), oci.as_str()]);
    skopeo(&args);
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{t}/oci/index.json")).unwrap())
            .unwrap();
    let md = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let oci_manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{t}/oci/blobs/sha256/{md}")).unwrap(),
    )
    .unwrap();
    let oci_layers: Vec<String> = oci_manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(oci_layers, layer_digests);

    // An OCI layout through the registry comes back byte for byte (the
    // manifest digest is kept).
    let oci_image = format!("docker://{host}/berth/oci:v1");
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    args.extend(&dest);
    args.extend([oci.as_str(), oci_image.as_str()]);
    skopeo(&args);
    let oci2 = format!("oci:{t}/oci2:v1");
    let mut args = vec!["copy", "--src-tls-verify=false"];
    args.extend(&src);
    args.extend([oci_image.as_str(), oci2.as_str()]);
    skopeo(&args);
    let index2: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{t}/oci2/index.json")).unwrap())
            .unwrap();
    assert_eq!(
        index2["manifests"][0]["digest"],
        index["manifests"][0]["digest"]
    );
    assert_eq!(
        index2["manifests"][0]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );

    assert_eq!(got_diff_ids, diff_ids, "layers come back as they went");
    Found {
        config: config_digest,
        diff_ids: got_diff_ids,
    }
}

/// Debian's docker-registry on a free port, filesystem storage in a temp
/// dir, optionally with htpasswd.
struct Reference {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Reference {
    fn start(htpasswd: Option<&Path>) -> Reference {
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
        Reference {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn skopeo_round_trip_without_auth_matches_the_reference_registry() {
    let reference = Reference::start(None);
    let want = round_trip(&reference.addr, "");
    let reg = Registry::start(&["--log-level", "warn"]);
    let got = round_trip(&reg.addr, "");
    assert_eq!(got, want);
    assert!(reg.check_store() >= 4);
}

#[test]
fn skopeo_round_trip_with_htpasswd_matches_the_reference_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let ht = htpasswd(tmp.path(), &[("alice", "secret")]);
    let reference = Reference::start(Some(&ht));
    let want = round_trip(&reference.addr, "alice:secret");
    let bad = skopeo_fails(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:wrong",
        &format!("docker://{}/berth/big:v1", reference.addr),
    ]);
    assert!(bad.contains("unauthorized") || bad.contains("401"), "{bad}");

    let reg = Registry::start(&["--log-level", "warn", "--htpasswd", ht.to_str().unwrap()]);
    let got = round_trip(&reg.addr, "alice:secret");
    assert_eq!(got, want);
    // The same refusals as the reference.
    let image = format!("docker://{}/berth/big:v1", reg.addr);
    let bad = skopeo_fails(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:wrong",
        &image,
    ]);
    assert!(bad.contains("unauthorized") || bad.contains("401"), "{bad}");
    skopeo_fails(&["inspect", "--tls-verify=false", &image]);
}

#[test]
fn skopeo_round_trip_with_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let ht = htpasswd(tmp.path(), &[("alice", "secret"), ("bob", "bob")]);
    let cfg = tmp.path().join("reg.toml");
    std::fs::write(
        &cfg,
        "[[auth.access]]\naccount = \"alice\"\nrepository = \"*\"\nactions = [\"*\"]\n\
         [[auth.access]]\naccount = \"bob\"\nrepository = \"*\"\nactions = [\"pull\"]\n",
    )
    .unwrap();
    let reg = Registry::start(&[
        "--log-level",
        "warn",
        "--config",
        cfg.to_str().unwrap(),
        "--htpasswd",
        ht.to_str().unwrap(),
        "--auth-token",
    ]);
    let (config, diff_ids) = fixture_ids(&fixtures().join("big-image.tar"));
    assert_eq!(
        round_trip(&reg.addr, "alice:secret"),
        Found { config, diff_ids }
    );
    // bob may pull, not push.
    let image = format!("docker://{}/berth/big:v1", reg.addr);
    skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "bob:bob",
        &image,
    ]);
    let err = skopeo_fails(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        "bob:bob",
        "--dest-creds",
        "bob:bob",
        &image,
        &format!("docker://{}/bob/copy:v1", reg.addr),
    ]);
    assert!(
        err.contains("denied") || err.contains("403") || err.contains("unauthorized"),
        "{err}"
    );
}

#[test]
fn skopeo_round_trip_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key): (PathBuf, PathBuf) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    sh(&format!(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
         -addext subjectAltName=IP:127.0.0.1 -keyout {} -out {} 2>/dev/null",
        key.display(),
        cert.display()
    ));
    let reg = Registry::start(&[
        "--log-level",
        "warn",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(reg.url.starts_with("https://"));
    let (config, diff_ids) = fixture_ids(&fixtures().join("big-image.tar"));
    assert_eq!(round_trip(&reg.addr, ""), Found { config, diff_ids });
}
