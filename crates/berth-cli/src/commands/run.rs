//! `run`: create (pulling when missing), then — unless detached — attach,
//! wait, start and copy the streams; the exit code is the container's.
//! The order of requests is docker's: create → attach (101) → wait → start
//! → resize.

use std::sync::Arc;

use clap::{ArgAction, Args};

use super::container_opts::{build_request, ContainerOpts};
use super::create::{create_container, run_status_error, with_help, USAGE};
use super::{outln, parse_go_bool, requires_min, CmdResult, Ctx, StatusError};
use crate::attach::{self, StreamEnd, StreamOpts, TaskGuard};
use crate::client::{ClientError, Query};
use crate::tty;

/// `berth run`.
#[derive(Debug, Clone, Args)]
#[command(
    disable_help_flag = true,
    about = "Create and run a new container from an image"
)]
#[command(override_usage = "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]")]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) opts: ContainerOpts,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool, action = ArgAction::Set)]
    pub(crate) sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(
        long = "detach-keys",
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) detach_keys: String,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub(crate) help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(value_name = "IMAGE", trailing_var_arg = true)]
    pub(crate) args: Vec<String>,
}

/// Why an attached session failed.
#[derive(Debug)]
pub(crate) enum SessionError {
    /// The attach request failed.
    Attach(ClientError),
    /// `start` failed.
    Start(ClientError),
    /// Copying the streams failed.
    Stream(std::io::Error),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Attach(e) | SessionError::Start(e) => write!(f, "{e}"),
            SessionError::Stream(e) => write!(f, "{e}"),
        }
    }
}

/// Attach (when any stream is wanted), wait, start, copy the streams and
/// return the exit code: the part of docker's `runContainer` and
/// `RunStart` after the container exists.
pub(crate) async fn attach_and_start(
    ctx: &Ctx,
    id: &str,
    opts: StreamOpts,
    auto_remove: bool,
    detach_keys: &str,
) -> Result<i32, SessionError> {
    let client = &ctx.client;
    let attach = opts.stdin || opts.stdout || opts.stderr;
    let tty = opts.tty;
    let (stdout, stderr) = (opts.stdout, opts.stderr);
    let mut session = if attach {
        let query = attach::attach_query(opts.stdin, opts.stdout, opts.stderr, detach_keys);
        let conn = client
            .hijack(&format!("/containers/{id}/attach"), &query, None)
            .await
            .map_err(SessionError::Attach)?;
        Some(tokio::spawn(attach::stream(conn, opts)))
    } else {
        None
    };
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let mut wait = attach::wait_exit(client, id, condition).await;

    if let Err(e) = client
        .post_ok(&format!("/containers/{id}/start"), &Query::new())
        .await
    {
        if let Some(s) = session.take() {
            s.abort();
            let _ = s.await;
        }
        if auto_remove {
            let _ = wait.await;
        }
        return Err(SessionError::Start(e));
    }
    let Some(mut session) = session else {
        return Ok(wait.await.unwrap_or(125));
    };
    let _resize = (tty && tty::stdout_is_tty()).then(|| {
        TaskGuard(attach::monitor_size(
            Arc::clone(client),
            attach::container_base(id),
        ))
    });

    tokio::select! {
        end = &mut session => match end {
            Ok(Ok(StreamEnd::Detached)) => Ok(0),
            Ok(Err(e)) => Err(SessionError::Stream(e)),
            Ok(Ok(StreamEnd::Closed)) | Err(_) => Ok(wait.await.unwrap_or(125)),
        },
        status = &mut wait => {
            let status = status.unwrap_or(125);
            if !stdout && !stderr {
                session.abort();
            }
            let _ = session.await;
            Ok(status)
        }
    }
}

/// The detach sequence to watch for, from `--detach-keys` or docker's
/// default ctrl-p,ctrl-q (an invalid value falls back to the default, as
/// docker does after a warning).
pub(crate) fn detach_sequence(keys: &str) -> Vec<u8> {
    if keys.is_empty() {
        return tty::DEFAULT_DETACH_KEYS.to_vec();
    }
    match tty::parse_detach_keys(keys) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("WARNING: invalid detach escape keys, using default: {e}");
            tty::DEFAULT_DETACH_KEYS.to_vec()
        }
    }
}

/// `berth run`.
pub(crate) async fn run(ctx: &Ctx, args: &RunArgs) -> CmdResult {
    requires_min("run", USAGE, args.args.len(), 1)?;
    let o = &args.opts;
    let lookup = |k: &str| std::env::var(k).ok();
    let mut req = build_request(o, &args.args, tty::size(), &lookup)
        .map_err(|e| StatusError::new(125, with_help(&e, "run")))?;
    {
        let config = &mut req.body.config;
        if !args.detach {
            tty::check_tty(config.attach_stdin, config.tty)?;
        } else {
            if !o.attach.is_empty() {
                anyhow::bail!("conflicting options: cannot specify both --attach and --detach");
            }
            config.attach_stdin = false;
            config.attach_stdout = false;
            config.attach_stderr = false;
            config.stdin_once = false;
        }
    }
    let id = create_container(ctx, o, &req)
        .await
        .map_err(|e| run_status_error(&e))?;
    let config = &req.body.config;
    let _proxy = (args.sig_proxy && !args.detach)
        .then(|| TaskGuard(attach::proxy_signals(Arc::clone(&ctx.client), id.clone())));

    if args.detach {
        outln(&id)?;
        let wait =
            attach::wait_exit(&ctx.client, &id, if o.rm { "removed" } else { "next-exit" }).await;
        if let Err(e) = ctx
            .client
            .post_ok(&format!("/containers/{id}/start"), &Query::new())
            .await
        {
            if o.rm {
                let _ = wait.await;
            }
            return Err(run_status_error(&e.into()).into());
        }
        wait.abort();
        return Ok(0);
    }

    let opts = StreamOpts {
        tty: config.tty,
        stdin: config.attach_stdin,
        stdout: config.attach_stdout,
        stderr: config.attach_stderr,
        detach_keys: detach_sequence(&args.detach_keys),
    };
    match attach_and_start(ctx, &id, opts, o.rm, &args.detach_keys).await {
        Ok(status) => Ok(status),
        Err(SessionError::Start(e)) => Err(run_status_error(&e.into()).into()),
        Err(SessionError::Attach(e)) => Err(e.into()),
        Err(SessionError::Stream(e)) => Err(e.into()),
    }
}
