//! Builds (issue 8): Dockerfiles through `berth build`, the real docker
//! CLI's legacy builder and `POST /build`; multi-stage builds, the config
//! they make, the cache (and what busts it), `.dockerignore`, heredocs,
//! and the errors a user can cause.

mod common;

use std::path::Path;
use std::process::Command;

use common::build::{context, docker_legacy, path};
use common::{Daemon, Run};

fn inspect(d: &Daemon, what: &str, format: &str) -> String {
    d.berth(&["image", "inspect", "-f", format, what])
        .ok()
        .trim()
        .to_string()
}

fn no_containers_left(d: &Daemon) {
    let ps = d.berth(&["ps", "-aq"]);
    assert_eq!(ps.ok().trim(), "", "build left containers behind");
}

#[test]
fn multi_stage_build_config_and_run() {
    let d = Daemon::start();
    d.busybox();
    let ctx = context(&[(
        "Dockerfile",
        r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM $BASE AS builder
RUN mkdir -p /out && echo artifact > /out/a.txt \
 && echo built > /built.txt
FROM busybox AS unused
RUN false

FROM ${BASE:-nothing}
ENV GREETING=hello NAME="the world"
LABEL org.example.name="demo app" version=1
WORKDIR /app
COPY --from=builder /out/a.txt ./
COPY --from=builder --chown=1234:1234 --chmod=600 /built.txt /built.txt
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=2 CMD true
RUN rm /bin/vi
USER 1234:1234
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/a.txt /built.txt; echo $GREETING $NAME; id -u; pwd"]
"#,
    )]);
    let out = d.berth(&["build", "-t", "multi:1", "-t", "multi:2", path(&ctx)]);
    let text = out.ok();
    assert!(text.contains("Step 1/"), "{text}");
    assert!(text.contains("Successfully built"), "{text}");
    assert!(text.contains("Successfully tagged multi:1"), "{text}");
    assert!(text.contains("Successfully tagged multi:2"), "{text}");
    // The stage nobody needs is not built (its RUN false would fail).
    assert!(!text.contains("RUN false"), "{text}");
    no_containers_left(&d);

    assert_eq!(inspect(&d, "multi:1", "{{.Config.WorkingDir}}"), "/app");
    assert_eq!(inspect(&d, "multi:1", "{{.Config.User}}"), "1234:1234");
    let env = inspect(&d, "multi:1", "{{json .Config.Env}}");
    assert!(
        env.contains("GREETING=hello") && env.contains("NAME=the world"),
        "{env}"
    );
    assert_eq!(
        inspect(&d, "multi:1", "{{json .Config.Entrypoint}}"),
        r#"["/bin/sh","-c"]"#
    );
    assert_eq!(
        inspect(&d, "multi:1", "{{json .Config.Cmd}}"),
        r#"["cat /app/a.txt /built.txt; echo $GREETING $NAME; id -u; pwd"]"#
    );
    let labels = inspect(&d, "multi:1", "{{json .Config.Labels}}");
    assert!(
        labels.contains(r#""org.example.name":"demo app""#),
        "{labels}"
    );
    let ports = inspect(&d, "multi:1", "{{json .Config.ExposedPorts}}");
    assert!(
        ports.contains("8080/tcp") && ports.contains("53/udp"),
        "{ports}"
    );
    assert!(inspect(&d, "multi:1", "{{json .Config.Volumes}}").contains("/data"));
    assert_eq!(inspect(&d, "multi:1", "{{.Config.StopSignal}}"), "SIGINT");
    let hc = inspect(&d, "multi:1", "{{json .Config.Healthcheck}}");
    assert!(
        hc.contains("30000000000") && hc.contains(r#""Retries":2"#),
        "{hc}"
    );
    assert_eq!(
        inspect(&d, "multi:1", "{{.Id}}"),
        inspect(&d, "multi:2", "{{.Id}}")
    );

    // --target stops at a stage.
    d.berth(&["build", "--target", "builder", "-t", "tgt", path(&ctx)])
        .ok();
    assert_eq!(
        d.berth(&["run", "--rm", "tgt", "cat", "/out/a.txt"]).ok(),
        "artifact\n"
    );
    let err = d
        .berth(&["build", "--target", "nosuch", path(&ctx)])
        .fails(1)
        .to_string();
    assert!(err.contains("failed to reach build target nosuch"), "{err}");

    let run = d.berth(&["run", "--rm", "multi:1"]);
    assert_eq!(run.ok(), "artifact\nbuilt\nhello the world\n1234\n/app\n");
    // The RUN layer records the deletion (a whiteout).
    let r = d.berth(&["run", "--rm", "--entrypoint", "ls", "multi:1", "/bin/vi"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    d.berth(&["run", "--rm", "--entrypoint", "ls", "multi:1", "/bin/ls"])
        .ok();
    // History as Docker records it: one entry per step, empty layers marked.
    let hist = d
        .berth(&["history", "--no-trunc", "multi:1"])
        .ok()
        .to_string();
    assert!(hist.contains("/bin/sh -c rm /bin/vi"), "{hist}");
    assert!(hist.contains("#(nop)  WORKDIR /app"), "{hist}");
}

#[test]
fn cache_is_reused_and_busted_exactly() {
    let d = Daemon::start();
    d.busybox();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy.txt\nCOPY b.txt /b.txt\nENV X=1\nCMD [\"cat\", \"/copy.txt\", \"/b.txt\"]\n",
        ),
        ("a.txt", "one\n"),
        ("b.txt", "bee\n"),
    ]);
    let first = d.berth(&["build", "-q", "-t", "c:1", path(&ctx)]);
    let id1 = first.ok().trim().to_string();
    assert!(id1.starts_with("sha256:"), "{id1}");

    // No change: every step from the cache, the same image.
    let t0 = std::time::Instant::now();
    let again = d.berth(&["build", "-t", "c:1", path(&ctx)]);
    let took = t0.elapsed();
    let text = again.ok();
    assert_eq!(text.matches("Using cache").count(), 5, "{text}");
    assert!(!text.contains("Running in"), "{text}");
    assert!(
        text.contains(&format!("Successfully built {}", &id1[7..19])),
        "{text}"
    );
    eprintln!("cached rebuild took {took:?}");

    // b.txt changes: the steps before its COPY stay cached, the rest not.
    std::fs::write(ctx.path().join("b.txt"), "BEE\n").unwrap();
    let text = d
        .berth(&["build", "-t", "c:1", path(&ctx)])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 2, "{text}");
    assert_eq!(d.berth(&["run", "--rm", "c:1"]).ok(), "one\nBEE\n");

    // Same size, same time, other bytes: the cache must not lie.
    std::fs::write(ctx.path().join("a.txt"), "two\n").unwrap();
    let text = d
        .berth(&["build", "-t", "c:1", path(&ctx)])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 0, "{text}");
    assert_eq!(d.berth(&["run", "--rm", "c:1"]).ok(), "two\nBEE\n");

    // A mode change busts it too.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        ctx.path().join("b.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let text = d
        .berth(&["build", "-t", "c:1", path(&ctx)])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 2, "{text}");

    // --no-cache runs everything.
    let text = d
        .berth(&["build", "--no-cache", "-t", "c:1", path(&ctx)])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 0, "{text}");
    assert!(text.contains("Running in"), "{text}");

    // A build arg in use is part of a RUN's identity.
    let ctx2 = context(&[(
        "Dockerfile",
        "FROM busybox\nARG V=a\nRUN echo $V > /v\nCMD [\"cat\", \"/v\"]\n",
    )]);
    d.berth(&["build", "-t", "args", path(&ctx2)]).ok();
    assert_eq!(d.berth(&["run", "--rm", "args"]).ok(), "a\n");
    let text = d
        .berth(&["build", "--build-arg", "V=b", "-t", "args", path(&ctx2)])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 0, "{text}");
    assert_eq!(d.berth(&["run", "--rm", "args"]).ok(), "b\n");
    // A proxy reaches RUN without being recorded or busting the cache.
    let text = d
        .berth(&[
            "build",
            "--build-arg",
            "V=b",
            "--build-arg",
            "http_proxy=http://user:pw@proxy:3128",
            "-t",
            "args",
            path(&ctx2),
        ])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 3, "{text}");
    assert!(!text.contains("not consumed"), "{text}");
    let hist = d.berth(&["history", "--no-trunc", "args"]).ok().to_string();
    assert!(!hist.contains("proxy"), "{hist}");
    no_containers_left(&d);
}

#[test]
fn dockerignore_heredocs_and_stdin() {
    let d = Daemon::start();
    d.busybox();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY . /ctx/\nRUN <<EOF\nset -e\nls -a /ctx | sort > /list\necho from heredoc > /hd\nEOF\nARG WHO=you\nCOPY <<EOF /greeting\nhello $WHO\nEOF\nRUN cat <<EOF > /other\nshell heredoc\nEOF\nCMD [\"sh\", \"-c\", \"cat /list /hd /greeting /other\"]\n",
        ),
        (".dockerignore", "secret*\n!secret-ok.txt\nlogs\n"),
        ("secret.key", "s"),
        ("secret-ok.txt", "fine"),
        ("logs/a.log", "l"),
        ("app.txt", "a"),
    ]);
    d.berth(&["build", "-t", "ign", path(&ctx)]).ok();
    let out = d.berth(&["run", "--rm", "ign"]).ok().to_string();
    assert_eq!(
        out,
        ".\n..\n.dockerignore\nDockerfile\napp.txt\nsecret-ok.txt\nfrom heredoc\nhello you\nshell heredoc\n"
    );

    // -f - : the Dockerfile on stdin, the context from the directory.
    let r = d.berth_stdin(
        &["build", "-t", "fromstdin", "-f", "-", path(&ctx)],
        Some(b"FROM busybox\nCOPY app.txt /\nCMD [\"cat\", \"/app.txt\"]\n"),
    );
    r.ok();
    assert_eq!(d.berth(&["run", "--rm", "fromstdin"]).ok(), "a");

    // `-`: a Dockerfile alone on stdin (no context).
    let r = d.berth_stdin(
        &["build", "-t", "bare", "-"],
        Some(b"FROM busybox\nRUN echo bare > /b\nCMD [\"cat\", \"/b\"]\n"),
    );
    r.ok();
    assert_eq!(d.berth(&["run", "--rm", "bare"]).ok(), "bare\n");

    // `--iidfile` and `--label`.
    let iid = ctx.path().join("iid");
    d.berth(&[
        "build",
        "-q",
        "--label",
        "a=b",
        "--iidfile",
        iid.to_str().unwrap(),
        "-t",
        "lbl",
        path(&ctx),
    ])
    .ok();
    let id = std::fs::read_to_string(&iid).unwrap();
    assert_eq!(id, inspect(&d, "lbl", "{{.Id}}"));
    assert_eq!(inspect(&d, "lbl", "{{index .Config.Labels \"a\"}}"), "b");
}

#[test]
fn errors_are_clear_and_leave_nothing() {
    let d = Daemon::start();
    d.busybox();
    let ctx = context(&[("Dockerfile", "FROM busybox\nBOGUS thing\n")]);
    let r = d.berth(&["build", path(&ctx)]);
    let err = r.fails(1);
    assert!(
        err.contains("unknown instruction: BOGUS") && err.contains("line 2"),
        "{err}"
    );

    let ctx = context(&[("Dockerfile", "# just a comment\nRUN true\n")]);
    let err = d.berth(&["build", path(&ctx)]).fails(1).to_string();
    assert!(err.contains("no build stage"), "{err}");

    let ctx = context(&[("Dockerfile", "FROM busybox\nCOPY missing.txt /\n")]);
    let err = d.berth(&["build", path(&ctx)]).fails(1).to_string();
    assert!(
        err.contains("missing.txt") && err.contains("not found"),
        "{err}"
    );

    let ctx = context(&[("Dockerfile", "FROM busybox\nCOPY ../outside /\n")]);
    let err = d.berth(&["build", path(&ctx)]).fails(1).to_string();
    assert!(err.contains("outside the build context"), "{err}");

    // A `--from` that names no stage names an image, and a missing image is
    // pulled, as docker does: names on a closed port of 127.0.0.1 keep the
    // test off the internet (build_remote.rs pulls from real registries).
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nCOPY --from=127.0.0.1:9/nostage /x /\n",
    )]);
    let err = d.berth(&["build", path(&ctx)]).fails(1).to_string();
    assert!(err.contains("nostage"), "{err}");

    let ctx = context(&[("Dockerfile", "FROM 127.0.0.1:9/nosuchimage\n")]);
    let err = d.berth(&["build", path(&ctx)]).fails(1).to_string();
    assert!(err.contains("nosuchimage"), "{err}");

    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo before\nRUN false\n")]);
    let r = d.berth(&["build", "-t", "never", path(&ctx)]);
    let err = r.fails(1).to_string();
    assert!(
        err.contains("The command '/bin/sh -c false' returned a non-zero code: 1"),
        "{err}"
    );
    assert!(r.stdout.contains("before"), "{}", r.stdout);
    no_containers_left(&d);
    // No tag for a failed build.
    d.berth(&["image", "inspect", "never"]).fails(1);

    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN exit 3\n")]);
    d.berth(&["build", path(&ctx)]).fails(3);

    // The docker CLI shows the same.
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN false\n")]);
    let r = docker_legacy(&d, &["build", "."], ctx.path());
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("The command '/bin/sh -c false' returned a non-zero code: 1"),
        "{}",
        r.stderr
    );
    no_containers_left(&d);
}

#[test]
fn docker_cli_legacy_build_and_api_stream() {
    let d = Daemon::start();
    d.busybox();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo built > /built.txt\nCMD [\"cat\", \"/built.txt\"]\n",
    )]);
    let r = docker_legacy(&d, &["build", "-t", "flow-b", "."], ctx.path());
    let text = r.ok();
    assert!(text.contains("Step 1/3 : FROM busybox"), "{text}");
    assert!(text.contains("Successfully built"), "{text}");
    assert!(text.contains("Successfully tagged flow-b:latest"), "{text}");
    assert_eq!(d.docker(&["run", "--rm", "flow-b"]).ok(), "built\n");

    // The raw stream, as docker-py reads it.
    let mut b = tar::Builder::new(Vec::new());
    let df = b"FROM busybox\nLABEL x=y\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let resp = d
        .request(
            "POST",
            "/v1.41/build?t=api-built&t=api-built:two",
            Some(&tar),
        )
        .unwrap();
    assert_eq!(resp.status, 200);
    let body = resp.body_string();
    assert!(
        body.contains(r#"{"stream":"Step 1/2 : FROM busybox\n"}"#),
        "{body}"
    );
    assert!(body.contains(r#"{"aux":{"ID":"sha256:"#), "{body}");
    assert!(body.contains("Successfully tagged api-built:two"), "{body}");
    // A parse error before any step is an HTTP error.
    let mut b = tar::Builder::new(Vec::new());
    let df = b"FROM busybox\nNOPE\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let resp = d.request("POST", "/v1.41/build", Some(&tar)).unwrap();
    assert_eq!(resp.status, 400, "{}", resp.body_string());
    let resp = d
        .request("POST", "/v1.41/build?dockerfile=Other", Some(&tar))
        .unwrap();
    assert_eq!(resp.status, 400);
    assert!(resp
        .body_string()
        .contains("Cannot locate specified Dockerfile: Other"));
}

#[test]
fn add_archives_onbuild_scratch_and_escapes() {
    let d = Daemon::start();
    d.busybox();
    let ctx = context(&[
        ("f", "from scratch\n"),
        ("a.txt", "A"),
        ("b.txt", "B"),
        ("c.md", "C"),
    ]);
    // A local tar (and a gzipped one) are unpacked by ADD, not by COPY.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1);
    b.append_data(&mut h, "inner/hello.txt", &b"hello\n"[..])
        .unwrap();
    let tar_bytes = b.into_inner().unwrap();
    std::fs::write(ctx.path().join("arch.tar"), &tar_bytes).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar_bytes).unwrap();
    std::fs::write(ctx.path().join("arch.tar.gz"), gz.finish().unwrap()).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", ctx.path().join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../..", ctx.path().join("up")).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nADD arch.tar /opt/\nADD arch.tar.gz /gz\nCOPY arch.tar /copied/\nCOPY *.txt /txt/\nCMD [\"sh\", \"-c\", \"cat /opt/inner/hello.txt /gz/inner/hello.txt; ls /copied; ls /txt\"]\n",
    )
    .unwrap();
    d.berth(&["build", "-t", "adds", path(&ctx)]).ok();
    assert_eq!(
        d.berth(&["run", "--rm", "adds"]).ok(),
        "hello\nhello\narch.tar\na.txt\nb.txt\n"
    );

    // Symlinks in the context resolve inside it, never on the host.
    for src in ["evil", "up/etc/passwd"] {
        std::fs::write(
            ctx.path().join("Dockerfile"),
            format!("FROM busybox\nCOPY {src} /x\n"),
        )
        .unwrap();
        let err = d.berth(&["build", path(&ctx)]).fails(1).to_string();
        assert!(
            err.contains("not found") || err.contains("does not exist"),
            "{err}"
        );
    }

    // ONBUILD triggers fire in the child build, and are not inherited.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nONBUILD RUN echo triggered > /trig\nONBUILD COPY f /f\n",
    )
    .unwrap();
    d.berth(&["build", "-t", "parent", path(&ctx)]).ok();
    assert!(inspect(&d, "parent", "{{json .Config.OnBuild}}").contains("RUN echo triggered"));
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM parent\nCMD [\"cat\", \"/trig\", \"/f\"]\n",
    )
    .unwrap();
    let text = d
        .berth(&["build", "-t", "child", path(&ctx)])
        .ok()
        .to_string();
    assert!(text.contains("Executing 2 build triggers"), "{text}");
    assert_eq!(
        d.berth(&["run", "--rm", "child"]).ok(),
        "triggered\nfrom scratch\n"
    );
    assert_eq!(inspect(&d, "child", "{{json .Config.OnBuild}}"), "null");

    // FROM scratch, a binary from an image, fully cached on a rebuild.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY --from=busybox /bin/busybox /bin/busybox\nCOPY f /f\nENTRYPOINT [\"/bin/busybox\"]\nCMD [\"cat\", \"/f\"]\n",
    )
    .unwrap();
    d.berth(&["build", "-t", "scratchy", path(&ctx)]).ok();
    assert_eq!(d.berth(&["run", "--rm", "scratchy"]).ok(), "from scratch\n");
    let text = d
        .berth(&["build", "-t", "scratchy", path(&ctx)])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 4, "{text}");
    assert_eq!(inspect(&d, "scratchy", "{{len .RootFS.Layers}}"), "2");
    no_containers_left(&d);
}

#[test]
fn add_url_is_fetched_and_keyed_on_content() {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let d = Daemon::start();
    d.busybox();
    let body = Arc::new(Mutex::new("version one\n".to_string()));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let served = body.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let b = served.lock().unwrap().clone();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                b.len()
            );
        }
    });
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox\nADD http://127.0.0.1:{port}/files/data.txt /srv/\nCMD [\"cat\", \"/srv/data.txt\"]\n"
        ),
    )]);
    d.berth(&["build", "-t", "url", path(&ctx)]).ok();
    assert_eq!(d.berth(&["run", "--rm", "url"]).ok(), "version one\n");
    let text = d
        .berth(&["build", "-t", "url", path(&ctx)])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 2, "{text}");
    // New content at the same URL is never served from the cache.
    *body.lock().unwrap() = "version two\n".into();
    let text = d
        .berth(&["build", "-t", "url", path(&ctx)])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 0, "{text}");
    assert_eq!(d.berth(&["run", "--rm", "url"]).ok(), "version two\n");

    // COPY of a URL is refused.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM busybox\nCOPY http://127.0.0.1:{port}/x /x\n"),
    )
    .unwrap();
    let err = d.berth(&["build", path(&ctx)]).fails(1).to_string();
    assert!(err.contains("can't be a URL for COPY"), "{err}");
}

/// Seconds since boot (`/proc/uptime`, 10 ms steps) as a RUN step wrote
/// them.
fn uptime(text: &str) -> f64 {
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not an uptime: {text:?}"))
}

#[test]
fn independent_stages_build_in_parallel() {
    let d = Daemon::start();
    d.busybox();
    // Each stage's RUN notes when it started and ended; run one after
    // the other, one would start only after the other ended.
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS a\nRUN cat /proc/uptime > /a.start && sleep 1 && cat /proc/uptime > /a.end\nFROM busybox AS b\nRUN cat /proc/uptime > /b.start && sleep 1 && cat /proc/uptime > /b.end\nFROM busybox AS unused\nRUN exit 3\nFROM busybox\nCOPY --from=a /a.start /a.end /t/\nCOPY --from=b /b.start /b.end /t/\nCMD [\"sh\", \"-c\", \"cat /t/a.start /t/a.end /t/b.start /t/b.end\"]\n",
    )]);
    let text = d
        .berth(&["build", "-t", "par", path(&ctx)])
        .ok()
        .to_string();
    // The output still reads in step order; the stage nobody needs is
    // not built (its RUN would fail).
    let steps: Vec<usize> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Step "))
        .filter_map(|l| l.split('/').next()?.parse().ok())
        .collect();
    assert_eq!(steps, (1..=8).collect::<Vec<_>>(), "{text}");
    assert!(!text.contains("exit 3"), "{text}");
    let times: Vec<f64> = d
        .berth(&["run", "--rm", "par"])
        .ok()
        .lines()
        .map(uptime)
        .collect();
    let [a0, a1, b0, b1] = times[..] else {
        panic!("{times:?}")
    };
    assert!(
        a0 < b1 && b0 < a1,
        "stages did not overlap: a {a0}..{a1}, b {b0}..{b1}"
    );

    // --target builds the target and what it needs, nothing else.
    let text = d
        .berth(&[
            "build",
            "--no-cache",
            "--target",
            "b",
            "-t",
            "only-b",
            path(&ctx),
        ])
        .ok()
        .to_string();
    assert!(
        text.contains("b.start") && !text.contains("a.start"),
        "{text}"
    );
    assert!(!text.contains("exit 3"), "{text}");

    // A failing stage fails the build; nothing is left running.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox AS a\nRUN sleep 1 && exit 7\nFROM busybox AS b\nRUN echo fine\nFROM busybox\nCOPY --from=a /x /x\nCOPY --from=b /y /y\n",
    )
    .unwrap();
    d.berth(&["build", path(&ctx)]).fails(7);
    no_containers_left(&d);
}

/// Writes `len` bytes that do not compress (xorshift) to `p`.
fn write_random(p: &Path, len: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(p).unwrap());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut left = len;
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        let n = left.min(8);
        f.write_all(&b[..n]).unwrap();
        left -= n;
    }
    f.flush().unwrap();
}

/// Runs `berth ARGS` and samples its peak RSS (`VmHWM`, bytes) until it
/// exits.
fn berth_peak_rss(d: &Daemon, args: &[&str]) -> (Run, u64) {
    let out = tempfile::tempdir().unwrap();
    let (o, e) = (out.path().join("out"), out.path().join("err"));
    let mut child = Command::new(common::berth_bin())
        .args(["-H", &d.host()])
        .args(args)
        .env("BERTH_NO_AUTOSTART", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .expect("berth runs");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        // VmHWM only grows: the last reading before the exit is the peak.
        if let Ok(s) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb * 1024);
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&o).unwrap(),
        stderr: std::fs::read_to_string(&e).unwrap(),
    };
    (run, peak)
}

/// Issue 8: a big context goes to the daemon as a stream (the client
/// never holds it: its memory stays flat), is unpacked and hashed once,
/// and a rebuild with nothing changed copies nothing again.
#[test]
fn big_context_is_streamed_and_cached() {
    let d = Daemon::start();
    d.busybox();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY big.bin /big.bin\nCOPY small.txt /small.txt\nRUN sha256sum /big.bin > /sum\n",
        ),
        ("small.txt", "small\n"),
    ]);
    let big = ctx.path().join("big.bin");
    write_random(&big, 64 << 20);
    let (run, peak) = berth_peak_rss(&d, &["build", "-t", "big", path(&ctx)]);
    let text = run.ok().to_string();
    assert!(
        text.contains("Sending build context to Docker daemon  67.1"),
        "{text}"
    );
    // Holding the 64 MiB tar would show; the client's own size does not
    // come near.
    assert!(peak < 40 << 20, "client peak RSS {peak} bytes");
    let host_sum = Command::new("sha256sum").arg(&big).output().unwrap();
    let host_sum = String::from_utf8_lossy(&host_sum.stdout);
    let image_sum = d
        .berth(&["run", "--rm", "big", "cat", "/sum"])
        .ok()
        .to_string();
    assert_eq!(
        host_sum.split_whitespace().next(),
        image_sum.split_whitespace().next(),
        "the image's copy differs"
    );

    // Nothing changed: every step from the cache, nothing copied again.
    let text = d
        .berth(&["build", "-t", "big", path(&ctx)])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 3, "{text}");

    // One byte in the middle of the big file changes: its COPY and what
    // follows are built again, with the new bytes.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
        f.seek(SeekFrom::Start(32 << 20)).unwrap();
        f.write_all(b"!").unwrap();
    }
    let text = d
        .berth(&["build", "-t", "big", path(&ctx)])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 0, "{text}");
    let host_sum = Command::new("sha256sum").arg(&big).output().unwrap();
    let host_sum = String::from_utf8_lossy(&host_sum.stdout);
    let image_sum = d
        .berth(&["run", "--rm", "big", "cat", "/sum"])
        .ok()
        .to_string();
    assert_eq!(
        host_sum.split_whitespace().next(),
        image_sum.split_whitespace().next()
    );
    no_containers_left(&d);
}

/// A context tar on stdin (plain or gzip) is streamed as it comes; remote
/// contexts (git, URLs) are refused with a clear error, by the client and
/// by the API; `--cache-from` is accepted.
#[test]
fn stdin_tar_remote_contexts_and_cache_from() {
    let d = Daemon::start();
    d.busybox();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n",
        ),
        ("f", "from a tar\n"),
    ]);
    for gz in [false, true] {
        let mut b = tar::Builder::new(Vec::new());
        b.append_dir_all(".", ctx.path()).unwrap();
        let mut tar = b.into_inner().unwrap();
        if gz {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&tar).unwrap();
            tar = e.finish().unwrap();
        }
        d.berth_stdin(&["build", "-t", "fromtar", "-"], Some(&tar))
            .ok();
        assert_eq!(d.berth(&["run", "--rm", "fromtar"]).ok(), "from a tar\n");
    }

    let err = d
        .berth(&["build", "github.com/example/app"])
        .fails(1)
        .to_string();
    assert!(err.contains("building from a git repository"), "{err}");
    let err = d
        .berth(&["build", "https://example.com/context.tar.gz"])
        .fails(1)
        .to_string();
    assert!(err.contains("building from a URL"), "{err}");
    let r = d
        .request(
            "POST",
            "/v1.41/build?remote=https%3A%2F%2Fexample.com%2Fapp.git",
            None,
        )
        .unwrap();
    assert_eq!(r.status, 501, "{}", r.body_string());
    assert!(
        r.body_string().contains("remote context"),
        "{}",
        r.body_string()
    );

    // --cache-from: accepted; the local cache still serves.
    let text = d
        .berth(&[
            "build",
            "--cache-from",
            "busybox",
            "-t",
            "fromtar",
            path(&ctx),
        ])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 2, "{text}");
    let r = d
        .request("POST", "/v1.41/build?cachefrom=notjson", None)
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body_string());
}

/// The distinct image IDs `images -a` lists.
fn all_image_ids(d: &Daemon) -> std::collections::BTreeSet<String> {
    d.berth(&["images", "-a", "-q", "--no-trunc"])
        .ok()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Issue 8: as with dockerd, `rmi` of a built image removes the untagged
/// parents its build left, up to the first one that has a tag, another
/// child or a container; `--no-prune` keeps them.
#[test]
fn rmi_removes_untagged_build_parents() {
    let d = Daemon::start();
    d.busybox();
    let base = all_image_ids(&d);
    assert_eq!(base.len(), 1, "{base:?}");
    let shared = "FROM busybox\nRUN echo 1 > /one\nENV A=1\n";
    let ctx = context(&[
        (
            "Dockerfile",
            &format!("{shared}COPY f /f\nCMD [\"cat\", \"/f\"]\n"),
        ),
        ("f", "f\n"),
    ]);
    d.berth(&["build", "-t", "kept", path(&ctx)]).ok();
    // RUN, ENV, COPY and CMD each made an image.
    assert_eq!(all_image_ids(&d).len(), 5);
    let other = context(&[("Dockerfile", &format!("{shared}RUN echo 2 > /two\n"))]);
    let text = d
        .berth(&["build", "-t", "other", path(&other)])
        .ok()
        .to_string();
    assert_eq!(text.matches("Using cache").count(), 2, "{text}");
    assert_eq!(all_image_ids(&d).len(), 6);
    let kept = inspect(&d, "kept", "{{.Id}}");
    let env_step = inspect(&d, "other", "{{.Parent}}");
    assert!(env_step.starts_with("sha256:"), "{env_step}");

    // kept's own steps go; those other still builds on stay.
    let text = d.berth(&["rmi", "kept"]).ok().to_string();
    assert!(text.contains("Untagged: kept:latest"), "{text}");
    assert!(text.contains(&format!("Deleted: {kept}")), "{text}");
    // The image, its COPY step (and that step's layer).
    assert!(text.matches("Deleted: sha256:").count() >= 2, "{text}");
    assert_eq!(all_image_ids(&d).len(), 4);
    assert!(all_image_ids(&d).contains(&env_step));
    assert_eq!(
        d.berth(&["run", "--rm", "other", "cat", "/one", "/two"])
            .ok(),
        "1\n2\n"
    );

    // --no-prune: only the image named goes.
    d.berth(&["rmi", "--no-prune", "other"]).ok();
    let left = all_image_ids(&d);
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&env_step));
    // Its parent, now childless and untagged, goes by ID with its own
    // parent; busybox, tagged, stays.
    d.berth(&["rmi", &env_step]).ok();
    assert_eq!(all_image_ids(&d), base);
    assert_eq!(d.berth(&["run", "--rm", "busybox", "true"]).ok(), "");
}

#[test]
fn docker_py_images_build() {
    let d = Daemon::start();
    d.busybox();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo py > /py\nCMD [\"cat\", \"/py\"]\n",
    )]);
    let script = format!(
        "import docker\nc = docker.DockerClient(base_url='unix://{}')\nimg, logs = c.images.build(path='{}', tag='py:1')\nprint(img.id)\nprint(''.join(l.get('stream', '') for l in logs))\ntry:\n    c.images.build(path='{}', dockerfile='Nope')\nexcept docker.errors.APIError as e:\n    print('APIError', e.status_code)\n",
        d.socket.display(),
        path(&ctx),
        path(&ctx)
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let id = stdout.lines().next().unwrap_or_default();
    assert_eq!(id, inspect(&d, "py:1", "{{.Id}}"));
    assert!(stdout.contains("Successfully tagged py:1"), "{stdout}");
    assert!(stdout.contains("APIError 400"), "{stdout}");
    assert_eq!(d.berth(&["run", "--rm", "py:1"]).ok(), "py\n");
}
