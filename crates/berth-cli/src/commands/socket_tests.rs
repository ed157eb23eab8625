//! Commands against canned daemon answers on a temporary Unix socket:
//! the requests they send (bodies byte for byte as docker CLI 28.2 sends
//! them) and the exit codes and errors they end with.

use std::sync::Arc;

use berth_api::stream::{frame, StreamKind};
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{CmdResult, Ctx, StatusError};
use crate::client::socket_tests::{client_for, json_response, serve, upgrade, Recorded, Seen};
use crate::client::Host;

const RUNNING: &str = r#"{"Id":"c1full","Name":"/web","State":{"Status":"running","Running":true,"Paused":false,"Restarting":false},"Config":{"Tty":false,"OpenStdin":false},"HostConfig":{}}"#;
const STOPPED: &str = r#"{"Id":"c2full","Name":"/old","State":{"Status":"exited","Running":false,"Paused":false,"Restarting":false,"ExitCode":3},"Config":{"Tty":false,"OpenStdin":false},"HostConfig":{}}"#;
const STATS: &str = r#"{"read":"2026-01-01T00:00:01Z","pids_stats":{"current":3},
 "blkio_stats":{"io_service_bytes_recursive":[{"major":8,"minor":0,"op":"Read","value":4096000},{"major":8,"minor":0,"op":"Write","value":12288}]},
 "cpu_stats":{"cpu_usage":{"total_usage":123456789000},"system_cpu_usage":9876543210000000,"online_cpus":2},
 "precpu_stats":{"cpu_usage":{"total_usage":123356789000},"system_cpu_usage":9876541210000000,"online_cpus":2},
 "memory_stats":{"usage":7340032,"stats":{"total_inactive_file":1048576},"limit":2084020224},
 "name":"/web","id":"c1full","networks":{"eth0":{"rx_bytes":1296,"tx_bytes":0}}}"#;

/// The daemon of these tests: `web` runs, `old` has exited, anything else
/// is missing; one exec (`ex1`, exit code 7) writes "out" and "err".
fn daemon(rec: &Recorded, req: Request<()>) -> Response<Full<Bytes>> {
    let path = req.uri().path().trim_start_matches("/v1.41").to_string();
    let missing = |name: &str| {
        json_response(
            404,
            &format!(r#"{{"message":"No such container: {name}"}}"#),
        )
    };
    match (req.method().as_str(), path.as_str()) {
        (_, "/_ping") => json_response(200, "OK"),
        ("GET", "/containers/web/json") => json_response(200, RUNNING),
        ("GET", "/containers/old/json") => json_response(200, STOPPED),
        ("POST", "/containers/web/exec") => json_response(201, r#"{"Id":"ex1"}"#),
        ("POST", "/containers/old/exec") => {
            json_response(409, r#"{"message":"Container c2full is not running"}"#)
        }
        ("POST", "/exec/ex1/start") if rec.headers.get("upgrade").is_some() => {
            upgrade(req, |mut io| async move {
                let mut wire = frame(StreamKind::Stdout, b"out\n");
                wire.extend(frame(StreamKind::Stderr, b"err\n"));
                io.write_all(&wire).await.unwrap();
                // Wait for the client's half-close, then end the stream.
                let mut rest = Vec::new();
                io.read_to_end(&mut rest).await.unwrap();
                io.shutdown().await.unwrap();
            })
        }
        ("POST", "/exec/ex1/start") => json_response(200, "{}"),
        ("GET", "/exec/ex1/json") => {
            json_response(200, r#"{"ID":"ex1","Running":false,"ExitCode":7}"#)
        }
        ("POST", "/containers/web/wait") | ("POST", "/containers/old/wait") => {
            json_response(200, r#"{"StatusCode":3,"Error":null}"#)
        }
        ("GET", "/containers/web/stats") => json_response(200, STATS),
        ("POST", "/containers/web/update") => json_response(
            200,
            r#"{"Warnings":["Your kernel does not support swap limit capabilities"]}"#,
        ),
        ("POST", "/containers/web/pause") => {
            let mut resp = Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = hyper::StatusCode::NO_CONTENT;
            resp
        }
        (_, p) => missing(p.split('/').nth(2).unwrap_or("")),
    }
}

async fn setup(dir: &std::path::Path) -> (Ctx, Arc<Seen>) {
    let (host, seen): (Host, Arc<Seen>) = serve(dir, Arc::new(daemon));
    let ctx = Ctx {
        client: Arc::new(client_for(host).await),
        debug: false,
    };
    (ctx, seen)
}

/// The requests after the ping.
fn calls(seen: &Seen) -> Vec<String> {
    seen.lines()
        .into_iter()
        .filter(|l| !l.ends_with("/_ping"))
        .collect()
}

fn body(seen: &Seen, prefix: &str) -> String {
    String::from_utf8(seen.find(prefix).unwrap().body.to_vec()).unwrap()
}

fn exit_code(r: CmdResult) -> (i32, String) {
    match r {
        Ok(code) => (code, String::new()),
        Err(e) => match e.downcast_ref::<StatusError>() {
            Some(s) => (s.code, s.message.clone()),
            None => (1, e.to_string()),
        },
    }
}

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    Exec(super::exec::ExecArgs),
    Attach(super::attach::AttachArgs),
    Stats(super::stats::StatsArgs),
    Update(super::update::UpdateArgs),
    Pause(super::lifecycle::PauseArgs),
}

fn parse(args: &[&str]) -> Cmd {
    Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
        .unwrap()
        .cmd
}

async fn run(ctx: &Ctx, args: &[&str]) -> (i32, String) {
    let r = match parse(args) {
        Cmd::Exec(a) => super::exec::exec(ctx, &a, "exec").await,
        Cmd::Attach(a) => super::attach::attach(ctx, &a, "attach").await,
        Cmd::Stats(a) => super::stats::stats(ctx, &a).await,
        Cmd::Update(a) => super::update::update(ctx, &a, "update").await,
        Cmd::Pause(a) => super::lifecycle::pause(ctx, &a, "pause", "pause").await,
    };
    exit_code(r)
}

#[tokio::test]
async fn exec_hijacks_the_start_and_exits_with_the_exec_code() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, seen) = setup(dir.path()).await;
    assert_eq!(
        run(&ctx, &["exec", "web", "sh", "-c", "echo a > b"]).await,
        (7, String::new())
    );
    assert_eq!(
        calls(&seen),
        vec![
            "GET /v1.41/containers/web/json",
            "POST /v1.41/containers/web/exec",
            "POST /v1.41/exec/ex1/start",
            "GET /v1.41/exec/ex1/json",
        ]
    );
    assert_eq!(
        body(&seen, "POST /v1.41/containers/web/exec"),
        "{\"User\":\"\",\"Privileged\":false,\"Tty\":false,\"AttachStdin\":false,\"AttachStderr\":true,\"AttachStdout\":true,\"Detach\":false,\"DetachKeys\":\"\",\"Env\":null,\"WorkingDir\":\"\",\"Cmd\":[\"sh\",\"-c\",\"echo a \\u003e b\"]}\n"
    );
    let start = seen.find("POST /v1.41/exec/ex1/start").unwrap();
    assert_eq!(start.body, "{\"Detach\":false,\"Tty\":false}\n");
    assert_eq!(start.headers["connection"], "Upgrade");
    assert_eq!(start.headers["upgrade"], "tcp");
    assert_eq!(start.headers["content-type"], "application/json");
}

#[tokio::test]
async fn exec_detached_starts_without_hijack_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, seen) = setup(dir.path()).await;
    assert_eq!(
        run(&ctx, &["exec", "-d", "web", "true"]).await,
        (0, String::new())
    );
    let start = seen.find("POST /v1.41/exec/ex1/start").unwrap();
    assert_eq!(start.body, "{\"Detach\":true,\"Tty\":false}\n");
    assert!(start.headers.get("upgrade").is_none());
    assert!(seen.find("GET /v1.41/exec/ex1/json").is_none());
}

#[tokio::test]
async fn exec_into_missing_or_stopped_containers_fails_like_docker() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, seen) = setup(dir.path()).await;
    assert_eq!(
        run(&ctx, &["exec", "nope", "true"]).await,
        (
            1,
            "Error response from daemon: No such container: nope".into()
        )
    );
    assert!(seen.find("POST /v1.41/containers/nope/exec").is_none());
    assert_eq!(
        run(&ctx, &["exec", "old", "true"]).await,
        (
            1,
            "Error response from daemon: Container c2full is not running".into()
        )
    );
}

#[tokio::test]
async fn attach_refuses_a_stopped_container() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, seen) = setup(dir.path()).await;
    assert_eq!(
        run(&ctx, &["attach", "old"]).await,
        (
            1,
            "You cannot attach to a stopped container, start it first".into()
        )
    );
    // The wait goes first (no condition), then the inspect; no attach.
    assert_eq!(
        calls(&seen),
        vec![
            "POST /v1.41/containers/old/wait",
            "GET /v1.41/containers/old/json"
        ]
    );
    assert_eq!(
        run(&ctx, &["attach", "nope"]).await,
        (
            1,
            "Error response from daemon: No such container: nope".into()
        )
    );
}

#[tokio::test]
async fn stats_no_stream_reads_one_sample_per_container() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, seen) = setup(dir.path()).await;
    assert_eq!(
        run(&ctx, &["stats", "--no-stream", "web"]).await,
        (0, String::new())
    );
    assert_eq!(
        calls(&seen),
        vec!["GET /v1.41/containers/web/stats?stream=0"]
    );
    assert_eq!(
        run(&ctx, &["stats", "--no-stream", "web", "nope"]).await,
        (
            1,
            "Error response from daemon: No such container: nope".into()
        )
    );
}

#[tokio::test]
async fn update_sends_the_whole_config_and_reports_each_container() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, seen) = setup(dir.path()).await;
    assert_eq!(
        run(
            &ctx,
            &["update", "--memory", "64m", "--cpus", "1.5", "web", "nope"]
        )
        .await,
        (
            1,
            "Error response from daemon: No such container: nope".into()
        )
    );
    let want = "{\"CpuShares\":0,\"Memory\":67108864,\"NanoCpus\":1500000000,\"CgroupParent\":\"\",\"BlkioWeight\":0,\"BlkioWeightDevice\":null,\"BlkioDeviceReadBps\":null,\"BlkioDeviceWriteBps\":null,\"BlkioDeviceReadIOps\":null,\"BlkioDeviceWriteIOps\":null,\"CpuPeriod\":0,\"CpuQuota\":0,\"CpuRealtimePeriod\":0,\"CpuRealtimeRuntime\":0,\"CpusetCpus\":\"\",\"CpusetMems\":\"\",\"Devices\":null,\"DeviceCgroupRules\":null,\"DeviceRequests\":null,\"MemoryReservation\":0,\"MemorySwap\":0,\"MemorySwappiness\":null,\"OomKillDisable\":null,\"PidsLimit\":null,\"Ulimits\":null,\"CpuCount\":0,\"CpuPercent\":0,\"IOMaximumIOps\":0,\"IOMaximumBandwidth\":0,\"RestartPolicy\":{\"Name\":\"\",\"MaximumRetryCount\":0}}\n";
    assert_eq!(body(&seen, "POST /v1.41/containers/web/update"), want);
    assert_eq!(body(&seen, "POST /v1.41/containers/nope/update"), want);
    assert_eq!(
        run(&ctx, &["update", "web"]).await,
        (
            1,
            "you must provide one or more flags when using this command".into()
        )
    );
}

#[tokio::test]
async fn pause_reports_every_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, seen) = setup(dir.path()).await;
    assert_eq!(
        run(&ctx, &["pause", "web", "nope"]).await,
        (
            1,
            "Error response from daemon: No such container: nope".into()
        )
    );
    assert!(seen.find("POST /v1.41/containers/web/pause").is_some());
}
