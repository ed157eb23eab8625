//! `exec`: runs a command in a running container, as docker's `RunExec`:
//! inspect (so "no such container" wins), `POST /containers/{name}/exec`,
//! then either a plain `POST /exec/{id}/start` (`-d`) or the hijacked start
//! streamed like an attach, the TTY resized, and the exit code read back
//! from `GET /exec/{id}/json`.
//!
//! The daemon refuses a stopped or paused container at the create call
//! (dockerd 20.10: `409 Container <id> is not running`); the CLI only
//! inspects.

use std::sync::Arc;

use berth_api::container::CreateResponse;
use clap::Args;
use serde::{Deserialize, Serialize};

use super::container_opts::{parse_kv_file, resolve_env};
use super::run::detach_sequence;
use super::{open_error, requires_min, CmdResult, Ctx, StatusError};
use crate::attach::{self, StreamEnd, StreamOpts, TaskGuard};
use crate::client::{json_body, ClientError, Query};
use crate::tty;

const USAGE: &str = "[OPTIONS] CONTAINER COMMAND [ARG...]";

/// `berth exec`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Execute a command in a running container",
    override_usage = "berth exec [OPTIONS] CONTAINER COMMAND [ARG...]"
)]
pub(crate) struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(
        long = "detach-keys",
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) detach_keys: String,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list", value_parser = env_flag)]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub(crate) env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub(crate) privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub(crate) tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(
        short = 'u',
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) user: String,
    /// Working directory inside the container
    #[arg(
        short = 'w',
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) workdir: String,
    /// CONTAINER COMMAND [ARG...]
    #[arg(value_name = "CONTAINER", trailing_var_arg = true)]
    pub(crate) args: Vec<String>,
}

/// `-e` is checked (and a bare `KEY` filled from our environment) while the
/// flags are parsed, as docker's `ValidateEnv` does.
fn env_flag(s: &str) -> Result<String, String> {
    resolve_env(s, &|k| std::env::var(k).ok())
}

/// Body of `POST /containers/{name}/exec` (docker's `container.ExecOptions`,
/// fields in its order).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExecCreateBody {
    pub(crate) user: String,
    pub(crate) privileged: bool,
    pub(crate) tty: bool,
    /// `[height, width]`, sent from API 1.42 on when `Tty`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) console_size: Option<[u16; 2]>,
    pub(crate) attach_stdin: bool,
    pub(crate) attach_stderr: bool,
    pub(crate) attach_stdout: bool,
    pub(crate) detach: bool,
    pub(crate) detach_keys: String,
    pub(crate) env: Option<Vec<String>>,
    pub(crate) working_dir: String,
    pub(crate) cmd: Vec<String>,
}

/// Body of `POST /exec/{id}/start` (docker's `ExecStartOptions`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExecStartBody {
    pub(crate) detach: bool,
    pub(crate) tty: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) console_size: Option<[u16; 2]>,
}

/// The part of `GET /exec/{id}/json` the CLI reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecInspect {
    exit_code: Option<i64>,
}

/// docker's `parseExec`: env files first, then `-e`; stdout and stderr
/// attached unless detached, stdin with `-i`.
pub(crate) fn exec_body(
    args: &ExecArgs,
    read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
    lookup: super::container_opts::Lookup<'_>,
) -> Result<ExecCreateBody, String> {
    let mut env = Vec::new();
    for f in &args.env_file {
        env.extend(parse_kv_file(f, &read(f)?, Some(lookup))?);
    }
    env.extend(args.env.iter().cloned());
    let attached = !args.detach;
    Ok(ExecCreateBody {
        user: args.user.clone(),
        privileged: args.privileged,
        tty: args.tty,
        console_size: None,
        attach_stdin: attached && args.interactive,
        attach_stderr: attached,
        attach_stdout: attached,
        detach: args.detach,
        detach_keys: args.detach_keys.clone(),
        env: (!env.is_empty()).then_some(env),
        working_dir: args.workdir.clone(),
        cmd: args.args.get(1..).unwrap_or_default().to_vec(),
    })
}

/// `ConsoleSize` as docker sends it: our terminal's size (0×0 without one)
/// with a TTY, from API 1.42 on.
fn console_size(ctx: &Ctx, tty: bool) -> Option<[u16; 2]> {
    (tty && ctx.client.api_at_least("1.42")).then(|| {
        let (h, w) = tty::size();
        [h, w]
    })
}

/// `berth exec CONTAINER COMMAND [ARG...]`.
pub(crate) async fn exec(ctx: &Ctx, args: &ExecArgs, path: &str) -> CmdResult {
    requires_min(path, USAGE, args.args.len(), 2)?;
    let name = &args.args[0];
    let read = |f: &str| std::fs::read(f).map_err(|e| open_error(f, &e));
    let lookup = |k: &str| std::env::var(k).ok();
    let mut body = exec_body(args, &read, &lookup).map_err(anyhow::Error::msg)?;
    let client = &ctx.client;
    client
        .get_bytes(&format!("/containers/{name}/json"), &Query::new())
        .await?;
    if !args.detach {
        tty::check_tty(body.attach_stdin, body.tty)?;
    }
    body.console_size = console_size(ctx, body.tty);
    let created: CreateResponse = client
        .post_json(&format!("/containers/{name}/exec"), &Query::new(), &body)
        .await?;
    let id = created.id;
    if id.is_empty() {
        anyhow::bail!("exec ID empty");
    }
    let start = ExecStartBody {
        detach: args.detach,
        tty: body.tty,
        console_size: body.console_size,
    };
    let start_path = format!("/exec/{id}/start");
    if args.detach {
        client
            .post_json_ok(&start_path, &Query::new(), &start)
            .await?;
        return Ok(0);
    }

    let conn = client
        .hijack(&start_path, &Query::new(), Some(json_body(&start)?))
        .await?;
    let opts = StreamOpts {
        tty: body.tty,
        stdin: body.attach_stdin,
        stdout: body.attach_stdout,
        stderr: body.attach_stderr,
        detach_keys: detach_sequence(&args.detach_keys),
    };
    let session = tokio::spawn(attach::stream(conn, opts));
    let resize = (body.tty && tty::stdin_is_tty()).then(|| {
        TaskGuard(attach::monitor_size(
            Arc::clone(client),
            format!("/exec/{id}"),
        ))
    });
    let end = session.await;
    drop(resize);
    match end {
        Ok(Ok(StreamEnd::Detached)) => return Err(detached().into()),
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(StreamEnd::Closed)) | Err(_) => {}
    }
    exit_status(ctx, &id).await
}

/// What docker prints when the detach keys end an `exec` or `attach`
/// session (moby/term's `EscapeError`, exit 1).
pub(crate) fn detached() -> StatusError {
    StatusError::new(1, "read escape sequence")
}

/// docker's `getExecExitStatus`: the exec's `ExitCode` becomes ours; a
/// daemon that went away gives 255 (docker's status -1).
async fn exit_status(ctx: &Ctx, id: &str) -> CmdResult {
    match ctx
        .client
        .get_json::<ExecInspect>(&format!("/exec/{id}/json"), &Query::new())
        .await
    {
        Ok(inspect) => match inspect.exit_code.unwrap_or(0) {
            0 => Ok(0),
            code => Err(StatusError::silent(code as i32).into()),
        },
        Err(ClientError::Connect { .. }) => Err(StatusError::silent(255).into()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ExecArgs,
    }

    fn parse(args: &[&str]) -> ExecArgs {
        T::try_parse_from(std::iter::once("exec").chain(args.iter().copied()))
            .unwrap()
            .a
    }

    fn body(args: &[&str]) -> String {
        let files = |f: &str| match f {
            "envf" => Ok(b"A=1\n# comment\nB\nC\n".to_vec()),
            other => Err(format!("open {other}: no such file or directory")),
        };
        let lookup = |k: &str| (k == "B").then(|| "fromenv".to_string());
        serde_json::to_string(&exec_body(&parse(args), &files, &lookup).unwrap()).unwrap()
    }

    #[test]
    fn create_bodies_match_docker() {
        // Captured from docker CLI 28.2 against a fake daemon.
        assert_eq!(
            body(&["flow-e", "sh", "-c", "echo hi"]),
            r#"{"User":"","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["sh","-c","echo hi"]}"#
        );
        assert_eq!(
            body(&[
                "-d",
                "-e",
                "X=1",
                "--env-file",
                "envf",
                "-u",
                "1000:1000",
                "-w",
                "/tmp",
                "--privileged",
                "--detach-keys",
                "ctrl-a",
                "flow-e",
                "ls",
                "-l"
            ]),
            r#"{"User":"1000:1000","Privileged":true,"Tty":false,"AttachStdin":false,"AttachStderr":false,"AttachStdout":false,"Detach":true,"DetachKeys":"ctrl-a","Env":["A=1","B=fromenv","X=1"],"WorkingDir":"/tmp","Cmd":["ls","-l"]}"#
        );
        assert_eq!(
            body(&["-it", "flow-e", "sh"]),
            r#"{"User":"","Privileged":false,"Tty":true,"AttachStdin":true,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["sh"]}"#
        );
        let files = |f: &str| Err(format!("open {f}: no such file or directory"));
        let e = exec_body(
            &parse(&["--env-file", "nope", "c", "true"]),
            &files,
            &|_| None,
        );
        assert_eq!(e.unwrap_err(), "open nope: no such file or directory");
    }

    #[test]
    fn console_size_and_start_bodies() {
        let mut b = ExecCreateBody {
            tty: true,
            console_size: Some([30, 100]),
            ..Default::default()
        };
        b.cmd = vec!["sh".into()];
        let text = serde_json::to_string(&b).unwrap();
        assert!(text.contains(r#""Tty":true,"ConsoleSize":[30,100],"AttachStdin""#));
        let start = ExecStartBody {
            detach: false,
            tty: true,
            console_size: Some([30, 100]),
        };
        assert_eq!(
            serde_json::to_string(&start).unwrap(),
            r#"{"Detach":false,"Tty":true,"ConsoleSize":[30,100]}"#
        );
        let start = ExecStartBody {
            detach: true,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&start).unwrap(),
            r#"{"Detach":true,"Tty":false}"#
        );
    }

    #[test]
    fn flags_after_the_container_belong_to_the_command() {
        let a = parse(&["-i", "c", "ls", "-la", "-e", "X"]);
        assert!(a.interactive);
        assert!(a.env.is_empty());
        assert_eq!(a.args, vec!["c", "ls", "-la", "-e", "X"]);
        assert!(T::try_parse_from(["exec", "-e", "=x", "c", "true"]).is_err());
    }
}
