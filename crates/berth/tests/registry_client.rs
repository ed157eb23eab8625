//! Pull and push against real registries on 127.0.0.1: our own
//! (`berth registry serve`) and Debian's `docker-registry` (the reference
//! implementation), through our CLI, the real docker CLI and the raw API.
mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};

use common::registry::{htpasswd, OurRegistry, RefRegistry, TokenServer};
use common::{berth_bin, fixtures, Daemon, Run};

/// `berth ARGS` with its own docker config dir (credentials), stdin given.
fn berth_cfg(d: &Daemon, args: &[&str], input: Option<&str>) -> Run {
    berth_env(d, args, input, &[])
}

fn berth_env(d: &Daemon, args: &[&str], input: Option<&str>, env: &[(&str, String)]) -> Run {
    let mut cmd = Command::new(berth_bin());
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.args(["-H", &d.host()])
        .args(args)
        .env("BERTH_NO_AUTOSTART", "1")
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        if let Some(i) = input {
            stdin.write_all(i.as_bytes()).unwrap();
        }
    }
    let o = child.wait_with_output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn skopeo_digest(reference: &str, creds: Option<&str>) -> String {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"]);
    if let Some(c) = creds {
        cmd.args(["--creds", c]);
    }
    let o = cmd.arg(format!("docker://{reference}")).output().unwrap();
    assert!(
        o.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The digest a push printed (`TAG: digest: sha256:… size: N`).
fn pushed_digest(out: &str) -> String {
    let i = out.find("digest: ").expect("push printed a digest") + "digest: ".len();
    out[i..].split_whitespace().next().unwrap().to_string()
}

/// Push busybox to `host`, check it with skopeo, remove it, pull it back by
/// tag and by digest, run it, and check that repeating moves nothing.
fn round_trip(d: &Daemon, host: &str) {
    let name = format!("{host}/rt/busybox:v1");
    d.berth(&["tag", "busybox", &name]).ok();
    let out = d.berth(&["push", &name]).ok().to_string();
    assert!(
        out.contains(&format!(
            "The push refers to repository [{host}/rt/busybox]"
        )),
        "{out}"
    );
    assert!(out.contains("Pushed"), "{out}");
    let digest = pushed_digest(&out);
    assert_eq!(skopeo_digest(&name, None), digest);
    // A second push finds every layer there.
    let again = d.berth(&["push", &name]).ok().to_string();
    assert!(again.contains("Layer already exists"), "{again}");
    assert_eq!(pushed_digest(&again), digest);
    // Another repository of the same registry: the layer is mounted, not sent.
    let other = format!("{host}/rt/copy:v1");
    d.berth(&["tag", "busybox", &other]).ok();
    let out = d.berth(&["push", &other]).ok().to_string();
    assert!(out.contains("Mounted from rt/busybox"), "{out}");
    d.berth(&["rmi", &other]).ok();

    d.berth(&["rmi", &name]).ok();
    d.berth(&["rmi", "busybox"]).ok();
    let out = d.berth(&["pull", &name]).ok().to_string();
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    assert!(out.trim_end().ends_with(&name), "{out}");
    let run = d.berth(&["run", "--rm", &name, "echo", "hello from the registry"]);
    assert_eq!(run.ok().trim(), "hello from the registry");

    // Second pull: nothing downloaded.
    let out = d.berth(&["pull", &name]).ok().to_string();
    assert!(
        !out.contains("Downloading") && !out.contains("Pulling fs layer"),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}")),
        "{out}"
    );

    // By digest, from scratch.
    d.berth(&["rmi", "-f", &name]).ok();
    let by_digest = format!("{host}/rt/busybox@{digest}");
    let out = d.berth(&["pull", &by_digest]).ok().to_string();
    assert!(out.contains("Pull complete"), "{out}");
    let insp = d.berth(&[
        "image",
        "inspect",
        "-f",
        "{{json .RepoDigests}}",
        &by_digest,
    ]);
    assert!(insp.ok().contains(&by_digest), "{}", insp.stdout);
    let run = d.berth(&["run", "--rm", &by_digest, "true"]);
    run.ok();
}

#[test]
fn push_and_pull_round_trip_on_our_registry() {
    let d = Daemon::start();
    d.busybox();
    let reg = OurRegistry::start(&["--log-level", "warn"]);
    round_trip(&d, &reg.addr);
}

#[test]
fn push_and_pull_round_trip_on_the_reference_registry() {
    let d = Daemon::start();
    d.busybox();
    let reg = RefRegistry::start(None);
    round_trip(&d, &reg.addr);
}

#[test]
fn real_docker_cli_pushes_and_pulls_through_berth() {
    let d = Daemon::start();
    d.busybox();
    let reg = OurRegistry::start(&["--log-level", "warn"]);
    let name = format!("{}/dk/busybox", reg.addr);
    d.docker(&["tag", "busybox", &name]).ok();
    let out = d.docker(&["push", &name]).ok().to_string();
    assert!(out.contains("latest: digest: sha256:"), "{out}");
    d.docker(&["rmi", &name]).ok();
    d.docker(&["rmi", "busybox"]).ok();
    let out = d.docker(&["pull", &name]).ok().to_string();
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}:latest")),
        "{out}"
    );
    assert!(out.trim_end().ends_with(&format!("{name}:latest")), "{out}");
    // docker run of a missing image pulls it first.
    d.docker(&["rmi", &name]).ok();
    let run = d.docker(&["run", "--rm", &name, "echo", "pulled by run"]);
    assert_eq!(run.ok().trim(), "pulled by run");
    assert!(
        run.stderr
            .contains(&format!("Unable to find image '{name}:latest' locally")),
        "{}",
        run.stderr
    );
    // A missing tag: Docker's words, before any stream.
    let missing = format!("{name}:nothing");
    let err = d.docker(&["pull", &missing]).fails(1).to_string();
    assert!(
        err.contains(&format!(
            "Error response from daemon: manifest for {missing} not found: manifest unknown: manifest unknown"
        )),
        "{err}"
    );
}

#[test]
fn missing_tag_and_missing_local_image() {
    let d = Daemon::start();
    d.busybox();
    let reg = RefRegistry::start(None);
    let name = format!("{}/mt/busybox:v1", reg.addr);
    d.berth(&["tag", "busybox", &name]).ok();
    d.berth(&["push", &name]).ok();
    let missing = format!("{}/mt/busybox:nope", reg.addr);
    let err = d.berth(&["pull", &missing]).fails(1).to_string();
    assert!(
        err.contains(&format!(
            "manifest for {missing} not found: manifest unknown: manifest unknown"
        )),
        "{err}"
    );
    let r = d
        .request(
            "POST",
            &format!(
                "/v1.41/images/create?fromImage={}%2Fmt%2Fbusybox&tag=nope",
                reg.addr
            ),
            None,
        )
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body_string());
    // Pushing a tag that does not exist here: in-band, Docker's text.
    let out = d.berth(&["push", &format!("{}/mt/other:v1", reg.addr)]);
    let err = out.fails(1);
    assert!(
        err.contains(&format!(
            "An image does not exist locally with the tag: {}/mt/other",
            reg.addr
        )),
        "{err}"
    );
    // run --pull never does not pull; missing does.
    d.berth(&["rmi", &name]).ok();
    let err = d
        .berth(&["run", "--rm", "--pull", "never", &name, "true"])
        .fails(125)
        .to_string();
    assert!(err.contains("No such image"), "{err}");
    let ok = d.berth(&["run", "--rm", &name, "echo", "ok"]);
    assert_eq!(ok.ok().trim(), "ok");
    assert!(ok.stderr.contains("Unable to find image"), "{}", ok.stderr);
}

fn login_cycle(d: &Daemon, host: &str) {
    let bad = berth_cfg(
        d,
        &["login", "-u", "alice", "--password-stdin", host],
        Some("wrong\n"),
    );
    let err = bad.fails(1).to_string();
    assert!(err.contains("Error response from daemon:"), "{err}");
    assert!(
        err.contains("401 Unauthorized") || err.contains("unauthorized"),
        "{err}"
    );
    let cfg = d.dir.path().join("docker-config/config.json");
    assert!(!cfg.exists() || !std::fs::read_to_string(&cfg).unwrap().contains(host));

    // Anonymous push is refused.
    let name = format!("{host}/auth/busybox:v1");
    d.berth(&["tag", "busybox", &name]).ok();
    let denied = berth_cfg(d, &["push", &name], None);
    assert_ne!(denied.code, 0, "{}", denied.stdout);

    let ok = berth_cfg(
        d,
        &["login", "-u", "alice", "--password-stdin", host],
        Some("secret\n"),
    );
    assert!(ok.ok().contains("Login Succeeded"), "{}", ok.stdout);
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains(host) && text.contains("\"auth\""), "{text}");
    let out = berth_cfg(d, &["push", &name], None);
    let digest = pushed_digest(out.ok());
    assert_eq!(skopeo_digest(&name, Some("alice:secret")), digest);
    d.berth(&["rmi", &name]).ok();
    let out = berth_cfg(d, &["pull", &name], None);
    assert!(
        out.ok().contains(&format!("Digest: {digest}")),
        "{}",
        out.stdout
    );

    let out = berth_cfg(d, &["logout", host], None);
    assert!(out
        .ok()
        .contains(&format!("Removing login credentials for {host}")));
    d.berth(&["rmi", &name]).ok();
    let out = berth_cfg(d, &["pull", &name], None);
    assert_ne!(out.code, 0, "anonymous pull after logout: {}", out.stdout);
}

#[test]
fn login_with_htpasswd_basic_auth() {
    let d = Daemon::start();
    d.busybox();
    let tmp = tempfile::tempdir().unwrap();
    let ht = htpasswd(tmp.path(), &[("alice", "secret")]);
    let reg = OurRegistry::start(&["--log-level", "warn", "--htpasswd", ht.to_str().unwrap()]);
    login_cycle(&d, &reg.addr);
    // The reference registry with Basic auth, through the real docker CLI.
    let reference = RefRegistry::start(Some(&ht));
    let err = d
        .docker(&["login", "-u", "alice", "-p", "nope", &reference.addr])
        .fails(1)
        .to_string();
    assert!(
        err.contains(&format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            reference.addr
        )),
        "{err}"
    );
    let ok = d.docker(&["login", "-u", "alice", "-p", "secret", &reference.addr]);
    assert!(ok.ok().contains("Login Succeeded"), "{}", ok.stdout);
    let name = format!("{}/dk/busybox:v1", reference.addr);
    d.docker(&["tag", "busybox", &name]).ok();
    d.docker(&["push", &name]).ok();
}

#[test]
fn login_with_token_auth() {
    let d = Daemon::start();
    d.busybox();
    let tmp = tempfile::tempdir().unwrap();
    let ht = htpasswd(tmp.path(), &[("alice", "secret")]);
    let reg = OurRegistry::start(&[
        "--log-level",
        "warn",
        "--htpasswd",
        ht.to_str().unwrap(),
        "--auth-token",
    ]);
    login_cycle(&d, &reg.addr);
}

/// `POST /images/create` of `image:tag` through curl with this
/// `X-Registry-Auth` (an API client's own credentials): status and body.
fn api_pull(d: &Daemon, image: &str, tag: &str, auth: &serde_json::Value) -> (u16, String) {
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE.encode(auth.to_string());
    let sock = d.host().trim_start_matches("unix://").to_string();
    let o = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            "--unix-socket",
            &sock,
            "-w",
            "\n%{http_code}",
            "-H",
        ])
        .arg(format!("X-Registry-Auth: {header}"))
        .arg(format!(
            "http://docker/v1.41/images/create?fromImage={}&tag={tag}",
            image.replace('/', "%2F")
        ))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

/// docker-registry with token auth from the test's token server: `login`
/// asks for offline access, gets a refresh token and stores it as
/// `identitytoken` instead of the password; push and pull then get their
/// tokens with the OAuth2 `refresh_token` grant (a form POST), never with
/// the password. An API client may send just the identity token.
#[test]
fn login_identity_token_is_used_by_push_and_pull() {
    use base64::Engine as _;
    let d = Daemon::start();
    d.busybox();
    let ts = TokenServer::start(&[("alice", "secret")]);
    let reg = RefRegistry::start_with(&ts.registry_auth(), "");
    let host = reg.addr.as_str();
    let bad = berth_cfg(
        &d,
        &["login", "-u", "alice", "--password-stdin", host],
        Some("wrong\n"),
    );
    let err = bad.fails(1).to_string();
    assert!(err.contains("401 Unauthorized"), "{err}");
    let ok = berth_cfg(
        &d,
        &["login", "-u", "alice", "--password-stdin", host],
        Some("secret\n"),
    );
    assert!(ok.ok().contains("Login Succeeded"), "{}", ok.stderr);
    assert!(
        ts.grants().contains(&"GET basic:alice offline".to_string()),
        "{:?}",
        ts.grants()
    );
    let cfg_text = std::fs::read_to_string(d.dir.path().join("docker-config/config.json")).unwrap();
    let cfg: serde_json::Value = serde_json::from_str(&cfg_text).unwrap();
    let entry = &cfg["auths"][host];
    let identity = entry["identitytoken"]
        .as_str()
        .unwrap_or_else(|| panic!("no identitytoken stored: {cfg_text}"))
        .to_string();
    assert!(identity.starts_with("refresh-alice-"), "{identity}");
    let auth = base64::engine::general_purpose::STANDARD
        .decode(entry["auth"].as_str().unwrap())
        .unwrap();
    assert_eq!(auth, b"alice:", "the password is not kept: {cfg_text}");

    let before = ts.grants().len();
    let name = format!("{host}/idt/busybox:v1");
    d.berth(&["tag", "busybox", &name]).ok();
    let out = berth_cfg(&d, &["push", &name], None);
    let digest = pushed_digest(out.ok());
    d.berth(&["rmi", &name]).ok();
    d.berth(&["rmi", "busybox"]).ok();
    let out = berth_cfg(&d, &["pull", &name], None);
    assert!(
        out.ok().contains(&format!("Digest: {digest}")),
        "{}",
        out.stdout
    );
    let used = ts.grants()[before..].to_vec();
    assert!(
        !used.is_empty() && used.iter().all(|g| g == "POST refresh_token:alice"),
        "push and pull must use the refresh grant only: {used:?}"
    );

    // An API client with only the identity token in X-Registry-Auth.
    d.berth(&["rmi", &name]).ok();
    let repo = format!("{host}/idt/busybox");
    let (status, body) = api_pull(
        &d,
        &repo,
        "v1",
        &serde_json::json!({"identitytoken": identity, "serveraddress": host}),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Status: Downloaded newer image"), "{body}");
    // A token the server never gave: its refusal, before any progress.
    d.berth(&["rmi", &name]).ok();
    let (status, body) = api_pull(
        &d,
        &repo,
        "v1",
        &serde_json::json!({"identitytoken": "refresh-forged", "serveraddress": host}),
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("401 Unauthorized"), "{body}");
}

/// The repositories a pushed blob came from outlive the daemon: pushed
/// to one repository, then (after a restart) to another of the same
/// registry, every blob is mounted (`POST …?mount=…&from=…`), none is
/// uploaded again.
#[test]
fn cross_repository_mount_after_a_daemon_restart() {
    let mut d = Daemon::start();
    d.busybox();
    let reg = RefRegistry::start(None);
    let a = format!("{}/mnt/a:v1", reg.addr);
    d.berth(&["tag", "busybox", &a]).ok();
    let out = d.berth(&["push", &a]).ok().to_string();
    assert!(out.contains("Pushed"), "{out}");
    d.restart();
    let before = reg.access_log().len();
    let b = format!("{}/mnt/b:v1", reg.addr);
    d.berth(&["tag", "busybox", &b]).ok();
    let out = d.berth(&["push", &b]).ok().to_string();
    assert!(out.contains("Mounted from mnt/a"), "{out}");
    assert!(!out.contains("Pushed"), "{out}");
    let log = reg.access_log()[before..].to_string();
    let mounts: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("POST /v2/mnt/b/blobs/uploads/?mount=sha256:") && l.contains("from=mnt%2Fa")
        })
        .collect();
    // The layer and the config.
    assert_eq!(mounts.len(), 2, "{log}");
    assert!(mounts.iter().all(|l| l.contains("\" 201 ")), "{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("PUT /v2/mnt/b/blobs/uploads/")),
        "nothing uploaded: {log}"
    );
}

/// Layers of the big fixture image, pushed and pulled, with one blob gone
/// from the registry: the pull fails, keeps the layers it completed, and
/// the next pull (blob back) downloads only what is missing.
#[test]
fn interrupted_pull_resumes_with_the_layers_it_has() {
    let d = Daemon::start();
    let reg = OurRegistry::start(&["--log-level", "warn"]);
    let tar = std::fs::read(fixtures().join("big-image.tar")).unwrap();
    let r = d
        .request("POST", "/v1.41/images/load?quiet=1", Some(&tar))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body_string());
    let name = format!("{}/big/image:v1", reg.addr);
    d.berth(&["tag", "berth-fixture/big:latest", &name]).ok();
    let out = d.berth(&["push", &name]).ok().to_string();
    let digest = pushed_digest(&out);
    // The manifest names the layers; the largest is the one to break.
    let manifest = std::fs::read(reg.blob(&digest)).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    let big = layers
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    d.berth(&["rmi", &name]).ok();
    d.berth(&["rmi", "berth-fixture/big:latest"]).ok();
    let blob = reg.blob(&big);
    let aside = blob.with_extension("aside");
    std::fs::rename(&blob, &aside).unwrap();
    let failed = d.berth(&["pull", &name]);
    assert_ne!(failed.code, 0, "{}", failed.stdout);
    let images = d.berth(&["images", "-q"]).ok().to_string();
    assert!(
        images.trim().is_empty(),
        "no image from a failed pull: {images}"
    );
    std::fs::rename(&aside, &blob).unwrap();
    let out = d.berth(&["pull", &name]).ok().to_string();
    let short = &big.trim_start_matches("sha256:")[..12];
    assert!(out.contains(&format!("{short}: Pull complete")), "{out}");
    assert_eq!(out.matches("Already exists").count(), 2, "{out}");
    let run = d.berth(&["run", "--rm", &name, "cat", "/data/small"]);
    run.ok();
}

/// A blob whose bytes do not match its digest is refused and nothing of
/// it is kept.
#[test]
fn corrupt_blob_is_refused() {
    let d = Daemon::start();
    d.busybox();
    let reg = OurRegistry::start(&["--log-level", "warn"]);
    let name = format!("{}/bad/busybox:v1", reg.addr);
    d.berth(&["tag", "busybox", &name]).ok();
    let digest = pushed_digest(d.berth(&["push", &name]).ok());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reg.blob(&digest)).unwrap()).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let path = reg.blob(&layer);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    d.berth(&["rmi", &name]).ok();
    d.berth(&["rmi", "busybox"]).ok();
    let out = d.berth(&["pull", &name]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(d.berth(&["images", "-q"]).ok().trim().is_empty());
    let blobs = std::fs::read_dir(d.data_root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "no blob of a refused layer is kept");
}

/// A TCP proxy to `upstream` that cuts the first connection whose answer
/// passes `cut_after` bytes: a registry dropping the line mid-layer.
fn cutting_proxy(upstream: String, cut_after: u64) -> String {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cut = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            let cut = cut.clone();
            std::thread::spawn(move || {
                let (mut s_in, mut c_out) = (server, client);
                let mut buf = vec![0u8; 64 * 1024];
                let mut sent = 0u64;
                loop {
                    let n = match s_in.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n as u64;
                    if sent > cut_after && !cut.swap(true, Ordering::SeqCst) {
                        let _ = c_out.shutdown(std::net::Shutdown::Both);
                        let _ = s_in.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

/// The connection drops in the middle of the big layer: the download goes
/// on from where it stopped (a Range request) and the pull succeeds.
#[test]
fn dropped_connection_mid_layer_resumes_with_a_range_request() {
    let d = Daemon::start();
    let reg = OurRegistry::start(&["--log-level", "warn"]);
    let tar = std::fs::read(fixtures().join("big-image.tar")).unwrap();
    let r = d
        .request("POST", "/v1.41/images/load?quiet=1", Some(&tar))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body_string());
    let name = format!("{}/big/image:v1", reg.addr);
    d.berth(&["tag", "berth-fixture/big:latest", &name]).ok();
    d.berth(&["push", &name]).ok();
    d.berth(&["rmi", &name]).ok();
    d.berth(&["rmi", "berth-fixture/big:latest"]).ok();
    let proxy = cutting_proxy(reg.addr.clone(), 8 << 20);
    let via = format!("{proxy}/big/image:v1");
    let out = d.berth(&["pull", &via]).ok().to_string();
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert!(
        d.log_text().contains("blob download broke; resuming"),
        "the cut was not seen"
    );
    d.berth(&["run", "--rm", &via, "cat", "/data/small"]).ok();
}

/// A manifest list: the host's platform is chosen by default, `--platform`
/// picks another entry, and a platform the list lacks is Docker's error.
#[test]
fn manifest_list_platform_selection() {
    let d = Daemon::start();
    d.busybox();
    let reg = OurRegistry::start(&["--log-level", "warn"]);
    let name = format!("{}/multi/busybox:single", reg.addr);
    d.berth(&["tag", "busybox", &name]).ok();
    let out = d.berth(&["push", &name]).ok().to_string();
    let digest = pushed_digest(&out);
    let size = std::fs::metadata(reg.blob(&digest)).unwrap().len();
    let mt = "application/vnd.docker.distribution.manifest.v2+json";
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": mt, "digest": digest, "size": size,
             "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
            {"mediaType": mt, "digest": digest, "size": size,
             "platform": {"architecture": "amd64", "os": "linux"}},
        ]
    });
    let st = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H"])
        .arg("Content-Type: application/vnd.docker.distribution.manifest.list.v2+json")
        .arg("--data-binary")
        .arg(list.to_string())
        .arg(format!(
            "http://{}/v2/multi/busybox/manifests/list",
            reg.addr
        ))
        .status()
        .unwrap();
    assert!(st.success(), "PUT of the manifest list failed");
    let list_ref = format!("{}/multi/busybox:list", reg.addr);
    let out = d.berth(&["pull", &list_ref]).ok().to_string();
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    d.berth(&["rmi", &list_ref]).ok();
    d.berth(&["pull", "--platform", "linux/arm/v7", &list_ref])
        .ok();
    let err = d
        .berth(&["pull", "--platform", "linux/s390x", &list_ref])
        .fails(1)
        .to_string();
    assert!(
        err.contains("no matching manifest for linux/s390x in the manifest list entries"),
        "{err}"
    );
}

/// With `registry-mirrors` in daemon.json, a Docker Hub name is pulled
/// from the mirror (there is no Hub here: this only works through it).
#[test]
fn docker_hub_pulls_go_through_the_mirror() {
    let mut d = Daemon::start();
    d.busybox();
    let reg = OurRegistry::start(&["--log-level", "warn"]);
    let on_mirror = format!("{}/library/busybox:latest", reg.addr);
    d.berth(&["tag", "busybox", &on_mirror]).ok();
    d.berth(&["push", &on_mirror]).ok();
    std::fs::write(
        d.dir.path().join("daemon.json"),
        serde_json::json!({ "registry-mirrors": [format!("http://{}", reg.addr)] }).to_string(),
    )
    .unwrap();
    d.restart();
    d.berth(&["rmi", &on_mirror]).ok();
    d.berth(&["rmi", "busybox"]).ok();
    let out = d.berth(&["pull", "busybox"]).ok().to_string();
    assert!(
        out.contains("Status: Downloaded newer image for busybox:latest"),
        "{out}"
    );
    assert!(out.contains("Pulling from library/busybox"), "{out}");
    d.berth(&["run", "--rm", "busybox", "true"]).ok();
    // Every tag of a repository (`pull -a`).
    let other = format!("{}/library/busybox:other", reg.addr);
    d.berth(&["tag", "busybox", &other]).ok();
    d.berth(&["push", &other]).ok();
    d.berth(&["rmi", &other]).ok();
    let repo = format!("{}/library/busybox", reg.addr);
    d.berth(&["pull", "-a", &repo]).ok();
    let tags = d
        .berth(&["images", "--format", "{{.Tag}}", &repo])
        .ok()
        .to_string();
    assert!(tags.contains("latest") && tags.contains("other"), "{tags}");
}

/// A TCP proxy to `upstream` that counts the connections it forwards and
/// those that open with a TLS handshake record (0x16).
fn sniffing_proxy(
    upstream: String,
) -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (conns, tls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c2, t2) = (conns.clone(), tls.clone());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            c2.fetch_add(1, Ordering::SeqCst);
            let mut first = [0u8; 1];
            if client.peek(&mut first).unwrap_or(0) == 1 && first[0] == 0x16 {
                t2.fetch_add(1, Ordering::SeqCst);
            }
            let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let (mut s_in, mut c_out) = (server, client);
                let _ = std::io::copy(&mut s_in, &mut c_out);
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (addr, conns, tls)
}

/// `registry-mirrors` are spoken to with the scheme their URL names, in
/// order, the next one tried when one fails: a dead mirror, then an
/// `https://` one that only speaks HTTP (no quiet fallback to plain
/// HTTP), then an `http://` one, which serves the pull without ever being
/// offered a TLS handshake (loopback hosts are otherwise probed with TLS
/// first). A bad mirror URL stops the daemon at start.
#[test]
fn mirror_urls_keep_their_scheme_and_fall_through() {
    use std::sync::atomic::Ordering;
    let mut d = Daemon::start();
    d.busybox();
    let reg = OurRegistry::start(&["--log-level", "warn"]);
    let on_mirror = format!("{}/library/busybox:latest", reg.addr);
    d.berth(&["tag", "busybox", &on_mirror]).ok();
    d.berth(&["push", &on_mirror]).ok();
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let port = reg.addr.rsplit(':').next().unwrap();
    let (proxy, conns, tls) = sniffing_proxy(reg.addr.clone());
    std::fs::write(
        d.dir.path().join("daemon.json"),
        serde_json::json!({ "registry-mirrors": [
            format!("http://{dead}"),
            format!("https://localhost:{port}/"),
            format!("http://{proxy}"),
        ]})
        .to_string(),
    )
    .unwrap();
    d.restart();
    d.berth(&["rmi", &on_mirror]).ok();
    d.berth(&["rmi", "busybox"]).ok();
    let out = d.berth(&["pull", "busybox"]).ok().to_string();
    assert!(
        out.contains("Status: Downloaded newer image for busybox:latest"),
        "{out}"
    );
    assert!(
        conns.load(Ordering::SeqCst) > 0,
        "the http:// mirror served nothing"
    );
    assert_eq!(
        tls.load(Ordering::SeqCst),
        0,
        "TLS offered to an http:// mirror"
    );
    d.berth(&["run", "--rm", "busybox", "true"]).ok();

    let bad = tempfile::tempdir().unwrap();
    let cfg = bad.path().join("daemon.json");
    std::fs::write(&cfg, r#"{"registry-mirrors": ["mirror.example:5000"]}"#).unwrap();
    // Its own socket and roots, and a time limit, in case it did start.
    let o = Command::new("timeout")
        .arg("20")
        .arg(berth_bin())
        .args(["daemon", "--config-file"])
        .arg(&cfg)
        .arg("--host")
        .arg(format!("unix://{}", bad.path().join("s.sock").display()))
        .arg("--data-root")
        .arg(bad.path().join("data"))
        .arg("--exec-root")
        .arg(bad.path().join("run"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("invalid mirror"), "{err}");
}

/// A registry that asks for TLS client certificates (docker-registry with
/// `http.tls.clientcas`): berth presents `client.cert` + `client.key` from
/// `certs.d/<host:port>/` (here under the daemon's `certs-dir`); without
/// them, the error says which certificate is missing and where.
#[test]
fn certs_d_client_certificate() {
    use common::registry::openssl;
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n).display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=berth-test-ca",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.crt"),
    ]);
    std::fs::write(
        tmp.path().join("server.ext"),
        "subjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("client.ext"),
        "extendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    for who in ["server", "client"] {
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN=berth-test-{who}"),
            "-keyout",
            &p(&format!("{who}.key")),
            "-out",
            &p(&format!("{who}.csr")),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p(&format!("{who}.csr")),
            "-CA",
            &p("ca.crt"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p(&format!("{who}.ext")),
            "-out",
            &p(&format!("{who}.crt")),
        ]);
    }
    let reg = RefRegistry::start_with(
        "",
        &format!(
            "  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
            p("server.crt"),
            p("server.key"),
            p("ca.crt")
        ),
    );
    let mut d = Daemon::start();
    d.busybox();
    let certs = tmp.path().join("certs.d");
    let dir = certs.join(&reg.addr);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        d.dir.path().join("daemon.json"),
        serde_json::json!({ "certs-dir": certs }).to_string(),
    )
    .unwrap();
    d.restart();
    let name = format!("{}/tls/busybox:v1", reg.addr);
    d.berth(&["tag", "busybox", &name]).ok();
    let r = d.berth(&["push", &name]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    let err = format!("{}{}", r.stdout, r.stderr);
    assert!(
        err.contains(&format!(
            "the registry at {} requires a TLS client certificate: none in {}",
            reg.addr,
            dir.display()
        )),
        "{err}"
    );

    std::fs::copy(tmp.path().join("client.crt"), dir.join("client.cert")).unwrap();
    std::fs::copy(tmp.path().join("client.key"), dir.join("client.key")).unwrap();
    d.restart();
    let digest = pushed_digest(d.berth(&["push", &name]).ok());
    d.berth(&["rmi", &name]).ok();
    d.berth(&["rmi", "busybox"]).ok();
    let out = d.berth(&["pull", &name]).ok().to_string();
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    d.berth(&["run", "--rm", &name, "true"]).ok();
}

/// `credsStore` in config.json: login stores through the helper program,
/// pull and push get their credentials from it, logout erases them.
#[test]
fn credential_helper_programs_are_used() {
    let d = Daemon::start();
    d.busybox();
    let tmp = tempfile::tempdir().unwrap();
    let ht = htpasswd(tmp.path(), &[("alice", "secret")]);
    let reg = OurRegistry::start(&["--log-level", "warn", "--htpasswd", ht.to_str().unwrap()]);
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let store = tmp.path().join("store.json");
    let helper = bin.join("docker-credential-berthtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n store) cat > {s} ;;\n get) cat >/dev/null; if [ -f {s} ]; then cat {s}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n erase) cat >/dev/null; rm -f {s} ;;\nesac\n",
            s = store.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg_dir = d.dir.path().join("docker-config");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    std::fs::write(cfg_dir.join("config.json"), r#"{"credsStore":"berthtest"}"#).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [("PATH", path)];
    let ok = berth_env(
        &d,
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        Some("secret\n"),
        &env,
    );
    assert!(ok.ok().contains("Login Succeeded"), "{}", ok.stderr);
    let stored = std::fs::read_to_string(&store).unwrap();
    assert!(stored.contains("\"Secret\":\"secret\""), "{stored}");
    let cfg = std::fs::read_to_string(cfg_dir.join("config.json")).unwrap();
    assert!(!cfg.contains("auths"), "no plain-text copy: {cfg}");
    let name = format!("{}/helper/busybox:v1", reg.addr);
    d.berth(&["tag", "busybox", &name]).ok();
    berth_env(&d, &["push", &name], None, &env).ok();
    let out = berth_env(&d, &["logout", &reg.addr], None, &env);
    out.ok();
    assert!(!store.exists());
    let denied = berth_env(&d, &["push", &name], None, &env);
    assert_ne!(denied.code, 0, "{}", denied.stdout);
}

/// An OCI image with zstd layers (written by skopeo) pulls and runs; pushed
/// back, its layers stay zstd, under an OCI manifest.
#[test]
fn zstd_layers_from_an_oci_manifest() {
    let d = Daemon::start();
    d.busybox();
    let reg = OurRegistry::start(&["--log-level", "warn"]);
    let archive = d.dir.path().join("bb.tar");
    d.berth(&["save", "-o", archive.to_str().unwrap(), "busybox"])
        .ok();
    let name = format!("{}/z/busybox:zstd", reg.addr);
    let o = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            "--format",
            "oci",
            "--dest-compress-format",
            "zstd",
        ])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.berth(&["rmi", "busybox"]).ok();
    let out = d.berth(&["pull", &name]).ok().to_string();
    assert!(out.contains("Pull complete"), "{out}");
    let run = d.berth(&["run", "--rm", &name, "echo", "zstd"]);
    assert_eq!(run.ok().trim(), "zstd");
    let back = format!("{}/z/again:v1", reg.addr);
    d.berth(&["tag", &name, &back]).ok();
    let digest = pushed_digest(d.berth(&["push", &back]).ok());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reg.blob(&digest)).unwrap()).unwrap();
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
}
