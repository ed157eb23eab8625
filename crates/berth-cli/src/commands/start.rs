//! `start`: plain (one request per name) or with `-a`/`-i`, attached like
//! `run` and exiting with the container's code.

use std::sync::Arc;

use berth_api::container::ContainerInspect;
use clap::Args;

use super::run::{attach_and_start, detach_sequence, SessionError};
use super::{outln, requires_min, CmdResult, Ctx, StatusError};
use crate::attach::{self, StreamOpts, TaskGuard};
use crate::client::Query;

/// `berth start`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Start one or more stopped containers",
    override_usage = "berth start [OPTIONS] CONTAINER [CONTAINER...]"
)]
pub(crate) struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub(crate) attach: bool,
    /// Override the key sequence for detaching a container
    #[arg(
        long = "detach-keys",
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) detach_keys: String,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// CONTAINER [CONTAINER...]
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// `berth start CONTAINER...`.
pub(crate) async fn start(ctx: &Ctx, args: &StartArgs, path: &str) -> CmdResult {
    requires_min(
        path,
        "[OPTIONS] CONTAINER [CONTAINER...]",
        args.containers.len(),
        1,
    )?;
    if args.attach || args.interactive {
        if args.containers.len() > 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        let name = &args.containers[0];
        let c: ContainerInspect = ctx
            .client
            .get_json(&format!("/containers/{name}/json"), &Query::new())
            .await?;
        let _proxy = (!c.config.tty)
            .then(|| TaskGuard(attach::proxy_signals(Arc::clone(&ctx.client), c.id.clone())));
        let opts = StreamOpts {
            tty: c.config.tty,
            stdin: args.interactive && c.config.open_stdin,
            stdout: true,
            stderr: true,
            detach_keys: detach_sequence(&args.detach_keys),
        };
        return match attach_and_start(
            ctx,
            &c.id,
            opts,
            c.host_config.auto_remove,
            &args.detach_keys,
        )
        .await
        {
            Ok(0) => Ok(0),
            Ok(status) => Err(StatusError::silent(status).into()),
            Err(SessionError::Attach(e) | SessionError::Start(e)) => Err(e.into()),
            Err(SessionError::Stream(e)) => Err(e.into()),
        };
    }
    let mut failed = Vec::new();
    for name in &args.containers {
        match ctx
            .client
            .post_ok(&format!("/containers/{name}/start"), &Query::new())
            .await
        {
            Ok(()) => outln(name)?,
            Err(e) => {
                eprintln!("{e}");
                failed.push(name.clone());
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("Error: failed to start containers: {}", failed.join(", "));
    }
    Ok(0)
}
