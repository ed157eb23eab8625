//! berth's registry as a container: the image scripts/registry-image.sh
//! builds (with `berth build`), run with a published port and a named
//! volume. An image pushed through one container is pulled back through a
//! second one on the same volume, after the first is gone.
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{berth_bin, Daemon};

const IMAGE: &str = "berth-registry:test";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `GET /v2/` on 127.0.0.1:`port` answers 200.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut head = Vec::new();
    s.write_all(req.as_bytes()).is_ok()
        && s.read_to_end(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.1 200")
}

/// Runs the registry image as `name` on `port` with the `regdata` volume,
/// and waits until it answers.
fn run_registry(d: &Daemon, name: &str, port: u16) {
    let publish = format!("{port}:5000");
    d.berth(&[
        "run",
        "-d",
        "--name",
        name,
        "-p",
        &publish,
        "-v",
        "regdata:/var/lib/registry",
        IMAGE,
    ])
    .ok();
    let t0 = Instant::now();
    while !answers(port) {
        if t0.elapsed() > Duration::from_secs(20) {
            let logs = d.berth(&["logs", name]);
            panic!(
                "the registry container does not answer on {port}\n{}{}",
                logs.stdout, logs.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The digest a push printed (`TAG: digest: sha256:… size: N`).
fn pushed_digest(out: &str) -> String {
    let i = out.find("digest: ").expect("push printed a digest") + "digest: ".len();
    out[i..].split_whitespace().next().unwrap().to_string()
}

#[test]
fn registry_image_keeps_pushed_images_in_its_volume() {
    let d = Daemon::start();
    d.busybox();

    // The script is what users run; here with the debug binary that
    // `cargo test` built beside berth (the script builds it when missing).
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = berth_bin()
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let out = Command::new(repo.join("scripts/registry-image.sh"))
        .args(["--debug", "-t", IMAGE])
        .env("CARGO_TARGET_DIR", &target)
        .env("BERTH", berth_bin())
        .env("BERTH_HOST", d.host())
        .env("BERTH_NO_AUTOSTART", "1")
        .output()
        .expect("run scripts/registry-image.sh");
    assert!(
        out.status.success(),
        "registry-image.sh failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = d
        .berth(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Entrypoint}} {{json .Config.ExposedPorts}} {{json .Config.Volumes}}",
            IMAGE,
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(
        cfg,
        r#"["/berth-registry","serve","--addr","0.0.0.0:5000","--root","/var/lib/registry"] {"5000/tcp":{}} {"/var/lib/registry":{}}"#
    );

    let port = free_port();
    run_registry(&d, "reg1", port);
    let name = format!("127.0.0.1:{port}/ct/busybox:v1");
    d.berth(&["tag", "busybox", &name]).ok();
    let out = d.berth(&["push", &name]).ok().to_string();
    assert!(out.contains("Pushed"), "{out}");
    let digest = pushed_digest(&out);
    // One log line per request, in the container's log.
    let logs = d.berth(&["logs", "reg1"]);
    assert!(
        logs.stderr.contains("listening on http://0.0.0.0:5000")
            && logs
                .stderr
                .contains("\"PUT /v2/ct/busybox/manifests/v1\" 201"),
        "{}{}",
        logs.stdout,
        logs.stderr
    );

    // A new container on the same volume serves what the first stored.
    d.berth(&["rm", "-f", "reg1"]).ok();
    d.berth(&["rmi", &name]).ok();
    d.berth(&["rmi", "busybox"]).ok();
    run_registry(&d, "reg2", port);
    let out = d.berth(&["pull", &name]).ok().to_string();
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    let run = d.berth(&["run", "--rm", &name, "echo", "pulled back"]);
    assert_eq!(run.ok().trim(), "pulled back");
    d.berth(&["rm", "-f", "reg2"]).ok();
}
