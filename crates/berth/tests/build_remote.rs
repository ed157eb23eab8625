//! Builds that reach out (issue 8): a FROM image that is not local, pulled
//! from a registry on 127.0.0.1 (ours and Debian's `docker-registry`) with
//! the pull's progress in the build output, through `berth build` and the
//! real docker CLI's legacy builder; `--pull`; the errors of a missing
//! image and an unreachable registry; `ADD https://` from a local TLS
//! server; and the `--network` and `--platform` options.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::build::{context, docker_legacy, path};
use common::registry::{htpasswd, OurRegistry, RefRegistry};
use common::{berth_bin, Daemon, Run};

/// Every image ID, sorted.
fn image_ids(d: &Daemon) -> Vec<String> {
    let mut v: Vec<String> = d
        .berth(&["images", "-aq", "--no-trunc"])
        .ok()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

fn no_containers_left(d: &Daemon) {
    assert_eq!(d.berth(&["ps", "-aq"]).ok().trim(), "", "containers left");
}

/// Pushes busybox to `host`, removes every local copy, then builds FROM
/// the registry's copy with our CLI and with docker's.
fn from_pulls(d: &Daemon, host: &str) {
    let remote = format!("{host}/lib/busybox");
    d.berth(&["tag", "busybox", &remote]).ok();
    d.berth(&["push", &remote]).ok();
    d.berth(&["rmi", "busybox", &remote]).ok();
    assert_ne!(d.berth(&["image", "inspect", &remote]).code, 0);

    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {remote}\nRUN echo built > /built\nCMD [\"cat\", \"/built\"]\n"),
    )]);
    let text = d
        .berth(&["build", "-t", "pulled", path(&ctx)])
        .ok()
        .to_string();
    // The pull reports as `docker pull` does, between the step and its ID.
    let step = text.find("Step 1/3 : FROM").expect(&text);
    let pulling = text.find("latest: Pulling from lib/busybox").expect(&text);
    let done = text
        .find(&format!(
            "Status: Downloaded newer image for {remote}:latest"
        ))
        .expect(&text);
    let step2 = text.find("Step 2/3").expect(&text);
    assert!(step < pulling && pulling < done && done < step2, "{text}");
    // The layer may still be here (under an intermediate image of another
    // build): then it is not fetched again.
    assert!(
        text.contains("Pull complete") || text.contains("Already exists"),
        "{text}"
    );
    assert_eq!(d.berth(&["run", "--rm", "pulled"]).ok(), "built\n");
    assert!(d.berth(&["image", "inspect", &remote]).code == 0);

    // Present now: no pull, the RUN step from the cache.
    let text = d
        .berth(&["build", "-t", "pulled", path(&ctx)])
        .ok()
        .to_string();
    assert!(!text.contains("Pulling from"), "{text}");
    assert!(text.contains("Using cache"), "{text}");
    // --pull asks the registry again; same image, so the cache still holds.
    let text = d
        .berth(&["build", "--pull", "-t", "pulled", path(&ctx)])
        .ok()
        .to_string();
    assert!(
        text.contains(&format!("Status: Image is up to date for {remote}:latest")),
        "{text}"
    );
    assert!(text.contains("Using cache"), "{text}");

    // The real docker CLI's legacy builder, from nothing again.
    d.berth(&["rmi", "pulled", &remote]).ok();
    assert_ne!(d.berth(&["image", "inspect", &remote]).code, 0);
    let out = docker_legacy(d, &["build", "-t", "dpulled", "."], ctx.path());
    let text = out.ok();
    assert!(text.contains("Pulling from lib/busybox"), "{text}");
    assert!(
        text.contains(&format!(
            "Status: Downloaded newer image for {remote}:latest"
        )),
        "{text}"
    );
    assert!(
        text.contains("Successfully tagged dpulled:latest"),
        "{text}"
    );
    assert_eq!(d.docker(&["run", "--rm", "dpulled"]).ok(), "built\n");
    no_containers_left(d);
    d.berth(&["rmi", "dpulled", &remote]).ok();
    // Back to the start for the next registry.
    d.busybox();
}

#[test]
fn from_pulls_a_missing_image_from_a_registry() {
    let d = Daemon::start();
    d.busybox();
    let ours = OurRegistry::start(&["--log-level", "warn"]);
    from_pulls(&d, &ours.addr);
    let reference = RefRegistry::start(None);
    from_pulls(&d, &reference.addr);
}

#[test]
fn copy_from_an_image_pulls_it() {
    let d = Daemon::start();
    d.busybox();
    let reg = OurRegistry::start(&["--log-level", "warn"]);
    let remote = format!("{}/tools/busybox:v1", reg.addr);
    d.berth(&["tag", "busybox", &remote]).ok();
    d.berth(&["push", &remote]).ok();
    d.berth(&["rmi", &remote]).ok();
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM scratch\nCOPY --from={remote} /bin/busybox /busybox\n"),
    )]);
    let text = d
        .berth(&["build", "-t", "copied", path(&ctx)])
        .ok()
        .to_string();
    assert!(text.contains("v1: Pulling from tools/busybox"), "{text}");
    assert_eq!(
        d.berth(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", "copied"])
            .ok()
            .trim(),
        "1"
    );
}

#[test]
fn pull_errors_are_docker_s_and_leave_nothing() {
    let d = Daemon::start();
    d.busybox();
    let reg = OurRegistry::start(&["--log-level", "warn"]);
    let before = image_ids(&d);

    // A tag the registry does not have, in a repository it has.
    let remote = format!("{}/lib/busybox", reg.addr);
    d.berth(&["tag", "busybox", &remote]).ok();
    d.berth(&["push", &remote]).ok();
    d.berth(&["rmi", &remote]).ok();
    let ctx = context(&[("Dockerfile", &format!("FROM {remote}:v9\nRUN true\n"))]);
    let err = d
        .berth(&["build", "-t", "never", path(&ctx)])
        .fails(1)
        .to_string();
    assert!(
        err.contains(&format!(
            "manifest for {remote}:v9 not found: manifest unknown"
        )),
        "{err}"
    );
    let dk = docker_legacy(&d, &["build", "-t", "never", "."], ctx.path());
    assert_eq!(dk.code, 1, "{}", dk.stdout);
    assert!(dk.stderr.contains("manifest unknown"), "{}", dk.stderr);

    // A repository the registry does not have.
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {}/nope/missing:v9\nRUN true\n", reg.addr),
    )]);
    let err = d
        .berth(&["build", "-t", "never", path(&ctx)])
        .fails(1)
        .to_string();
    assert!(err.contains("nope/missing"), "{err}");
    assert!(err.contains("not found"), "{err}");

    // A registry nobody answers on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM 127.0.0.1:{port}/busybox\nRUN true\n"),
    )]);
    let err = d
        .berth(&["build", "-t", "never", path(&ctx)])
        .fails(1)
        .to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.to_lowercase().contains("connection refused"), "{err}");

    // --pull asks the registry even for an image present here: one only
    // ever tagged locally is not found there.
    let local = format!("{remote}:localonly");
    d.berth(&["tag", "busybox", &local]).ok();
    let ctx = context(&[("Dockerfile", &format!("FROM {local}\nRUN true\n"))]);
    d.berth(&["build", "-q", path(&ctx)]).ok();
    let err = d
        .berth(&["build", "--pull", "-t", "never", path(&ctx)])
        .fails(1)
        .to_string();
    assert!(err.contains("manifest unknown"), "{err}");
    d.berth(&["rmi", &local]).ok();
    // The image the plain build made is the only thing left to remove.
    for id in image_ids(&d) {
        if !before.contains(&id) {
            d.berth(&["rmi", &id]).ok();
        }
    }

    assert_eq!(image_ids(&d), before, "a failed build left images");
    assert!(!d.berth(&["images"]).ok().contains("never"));
    no_containers_left(&d);
}

/// The interface names a RUN step saw, one a line.
fn interfaces_seen(d: &Daemon, network: Option<&str>) -> Vec<String> {
    let ctx = context(&[(
        "Dockerfile",
        // Bust the cache per network mode: each run must look afresh.
        &format!(
            "FROM busybox\nRUN echo {} && cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' > /ifaces\nCMD [\"cat\", \"/ifaces\"]\n",
            network.unwrap_or("unset")
        ),
    )]);
    let mut args = vec!["build", "-q", "-t", "net"];
    if let Some(n) = network {
        args.extend(["--network", n]);
    }
    args.push(path(&ctx));
    d.berth(&args).ok();
    let text = d
        .berth(&["run", "--rm", "--network", "none", "net"])
        .ok()
        .to_string();
    d.berth(&["rmi", "net"]).ok();
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn network_and_platform_options() {
    let d = Daemon::start();
    d.busybox();
    assert_eq!(interfaces_seen(&d, Some("none")), ["lo"]);
    let default = interfaces_seen(&d, None);
    assert!(default.contains(&"eth0".to_string()), "{default:?}");
    assert_eq!(interfaces_seen(&d, Some("default")), default);
    // The host's interfaces, whatever they are, are what --network host sees.
    let host = interfaces_seen(&d, Some("host"));
    let mut want: Vec<String> = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_string())
        .collect();
    want.sort();
    // Interfaces come and go as other tests run: compare a stable one.
    assert!(host.contains(&"lo".to_string()), "{host:?}");
    assert!(
        want.iter().any(|w| w != "lo" && host.contains(w)),
        "host {host:?} vs {want:?}"
    );
    no_containers_left(&d);

    // --platform: the host's is accepted, another refused before any step.
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let other = if arch == "amd64" { "arm64" } else { "amd64" };
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN true\n")]);
    d.berth(&["build", "--platform", &format!("linux/{arch}"), path(&ctx)])
        .ok();
    let err = d
        .berth(&["build", "--platform", &format!("linux/{other}"), path(&ctx)])
        .fails(1)
        .to_string();
    assert!(err.contains(&format!("linux/{other}")), "{err}");
    assert!(err.contains("not supported"), "{err}");
    let err = d
        .berth(&["build", "--platform", "windows/amd64", path(&ctx)])
        .fails(1)
        .to_string();
    assert!(err.contains("operating system is not supported"), "{err}");
    let out = docker_legacy(
        &d,
        &["build", "--platform", &format!("linux/{other}"), "."],
        ctx.path(),
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("not supported"), "{}", out.stderr);
    no_containers_left(&d);
}

/// `openssl s_server -WWW` on 127.0.0.1 serving `dir`, with a certificate
/// for 127.0.0.1 signed by a CA of its own (`dir/ca.pem`).
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &Path) -> TlsServer {
        let ossl = |args: &[&str]| {
            let o = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl");
            assert!(o.status.success(), "openssl {args:?}: {o:?}");
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        ossl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=berth test CA",
                ],
            ]
            .concat(),
        );
        ossl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "srv.key",
                    "-out",
                    "srv.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        ossl(&[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args([
                "s_server", "-quiet", "-WWW", "-cert", "srv.pem", "-key", "srv.key",
            ])
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let server = TlsServer { child, port };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "s_server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn add_https_url_checks_the_certificate() {
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("data.txt"), "over tls\n").unwrap();
    let srv = TlsServer::start(www.path());
    let ca = www.path().join("ca.pem");
    let url = format!("https://127.0.0.1:{}/data.txt", srv.port);
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM busybox\nADD {url} /srv/\nCMD [\"cat\", \"/srv/data.txt\"]\n"),
    )]);

    // The daemon trusts the test CA: the file arrives.
    let d = Daemon::start_with_env(&[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    d.busybox();
    d.berth(&["build", "-t", "tls", path(&ctx)]).ok();
    assert_eq!(d.berth(&["run", "--rm", "tls"]).ok(), "over tls\n");
    let dk = docker_legacy(&d, &["build", "-t", "tls2", "."], ctx.path());
    assert!(dk.ok().contains("Successfully tagged tls2:latest"));
    drop(d);

    // One that does not refuses the server, and makes nothing.
    let d = Daemon::start();
    d.busybox();
    let before = image_ids(&d);
    let err = d
        .berth(&["build", "-t", "tls", path(&ctx)])
        .fails(1)
        .to_string();
    assert!(err.contains(&format!("failed to download {url}")), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert_eq!(image_ids(&d), before);
    no_containers_left(&d);
}

/// `berth build` with a docker config dir of its choosing (credentials).
fn berth_build_cfg(d: &Daemon, config: &Path, args: &[&str]) -> Run {
    let o = Command::new(berth_bin())
        .args(["-H", &d.host(), "build"])
        .args(args)
        .env("BERTH_NO_AUTOSTART", "1")
        .env("DOCKER_CONFIG", config)
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn from_pulls_with_the_client_s_credentials() {
    let d = Daemon::start();
    d.busybox();
    let tmp = tempfile::tempdir().unwrap();
    let ht = htpasswd(tmp.path(), &[("alice", "secret")]);
    let reg = RefRegistry::start(Some(&ht));
    let remote = format!("{}/private/busybox:v1", reg.addr);
    d.docker(&["login", "-u", "alice", "-p", "secret", &reg.addr])
        .ok();
    d.docker(&["tag", "busybox", &remote]).ok();
    d.docker(&["push", &remote]).ok();
    d.docker(&["rmi", &remote]).ok();
    let ctx = context(&[("Dockerfile", &format!("FROM {remote}\nRUN true\n"))]);

    // Without credentials the registry refuses, and nothing is made.
    let before = image_ids(&d);
    let anon = tempfile::tempdir().unwrap();
    let out = berth_build_cfg(&d, anon.path(), &["-t", "priv", path(&ctx)]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("no basic auth credentials") || out.stderr.contains("unauthorized"),
        "{}",
        out.stderr
    );
    assert_eq!(image_ids(&d), before);

    // The CLIs send what `login` stored (X-Registry-Config).
    let cfg = d.dir.path().join("docker-config");
    let out = berth_build_cfg(&d, &cfg, &["-t", "priv", path(&ctx)]);
    assert!(
        out.ok().contains("v1: Pulling from private/busybox"),
        "{}",
        out.stdout
    );
    d.berth(&["rmi", "priv", &remote]).ok();
    let out = docker_legacy(&d, &["build", "-t", "priv2", "."], ctx.path());
    assert!(
        out.ok().contains("v1: Pulling from private/busybox"),
        "{}",
        out.stdout
    );
    no_containers_left(&d);
}
