//! `attach`: docker's `RunAttach`. The wait request goes first (no
//! condition), then inspect refuses a stopped, paused or restarting
//! container, the hijacked `POST /containers/{name}/attach` is streamed
//! (signals proxied without a TTY, the TTY nudged to size+1 then resized),
//! and the exit code comes from the wait answer. The detach keys end the
//! session with docker's "read escape sequence" (exit 1).

use std::sync::Arc;

use berth_api::container::ContainerInspect;
use clap::{ArgAction, Args};

use super::exec::detached;
use super::run::detach_sequence;
use super::{parse_go_bool, requires_exact, CmdResult, Ctx, StatusError};
use crate::attach::{self, StreamEnd, StreamOpts, TaskGuard};
use crate::client::Query;
use crate::tty;

/// `berth attach`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Attach local standard input, output, and error streams to a running container",
    override_usage = "berth attach [OPTIONS] CONTAINER"
)]
pub(crate) struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(
        long = "detach-keys",
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) detach_keys: String,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub(crate) no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool, action = ArgAction::Set)]
    pub(crate) sig_proxy: bool,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub(crate) args: Vec<String>,
}

/// docker's `inspectContainerAndCheckState`.
pub(crate) fn check_state(c: &ContainerInspect) -> Result<(), StatusError> {
    let refuse = |m: &str| Err(StatusError::new(1, m));
    if !c.state.running {
        return refuse("You cannot attach to a stopped container, start it first");
    }
    if c.state.paused {
        return refuse("You cannot attach to a paused container, unpause it first");
    }
    if c.state.restarting {
        return refuse("You cannot attach to a restarting container, wait until it is running");
    }
    Ok(())
}

async fn inspect_running(ctx: &Ctx, name: &str) -> anyhow::Result<ContainerInspect> {
    let c: ContainerInspect = ctx
        .client
        .get_json(&format!("/containers/{name}/json"), &Query::new())
        .await?;
    check_state(&c)?;
    Ok(c)
}

/// `berth attach CONTAINER`.
pub(crate) async fn attach(ctx: &Ctx, args: &AttachArgs, path: &str) -> CmdResult {
    requires_exact(path, "[OPTIONS] CONTAINER", args.args.len(), 1)?;
    let name = &args.args[0];
    let client = &ctx.client;
    let wait = attach::wait_request(client, name, "").await;
    let c = inspect_running(ctx, name).await?;
    tty::check_tty(!args.no_stdin, c.config.tty)?;
    let stdin = !args.no_stdin && c.config.open_stdin;
    let _proxy = (args.sig_proxy && !c.config.tty)
        .then(|| TaskGuard(attach::proxy_signals(Arc::clone(client), name.clone())));
    let conn = client
        .hijack(
            &format!("/containers/{name}/attach"),
            &attach::attach_query(stdin, true, true, &args.detach_keys),
            None,
        )
        .await?;
    // The container may have stopped between the two looks.
    inspect_running(ctx, name).await?;

    let _resize = if c.config.tty && tty::stdout_is_tty() {
        // docker nudges the size by one first so that a re-attached shell
        // redraws its prompt, then sets the real size.
        let base = attach::container_base(name);
        let (h, w) = tty::size();
        let _ = attach::resize_to(client, &base, h.saturating_add(1), w.saturating_add(1)).await;
        Some(TaskGuard(attach::monitor_size(Arc::clone(client), base)))
    } else {
        None
    };
    let opts = StreamOpts {
        tty: c.config.tty,
        stdin,
        stdout: true,
        stderr: true,
        detach_keys: detach_sequence(&args.detach_keys),
    };
    match attach::stream(conn, opts).await {
        Ok(StreamEnd::Detached) => return Err(detached().into()),
        Ok(StreamEnd::Closed) => {}
        Err(e) => return Err(e.into()),
    }
    match wait.await {
        Ok(Ok(w)) => match w.error {
            Some(e) if !e.message.is_empty() => Err(anyhow::Error::msg(e.message)),
            _ if w.status_code != 0 => Err(StatusError::silent(w.status_code as i32).into()),
            _ => Ok(0),
        },
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_in_dockers_words() {
        let mut c = ContainerInspect::default();
        assert_eq!(
            check_state(&c).unwrap_err().message,
            "You cannot attach to a stopped container, start it first"
        );
        c.state.running = true;
        assert!(check_state(&c).is_ok());
        c.state.paused = true;
        assert_eq!(
            check_state(&c).unwrap_err().message,
            "You cannot attach to a paused container, unpause it first"
        );
        c.state.paused = false;
        c.state.restarting = true;
        assert!(check_state(&c)
            .unwrap_err()
            .message
            .starts_with("You cannot attach to a restarting container"));
    }
}
