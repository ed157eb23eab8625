//! Container verbs that act on several names and print each one done:
//! `wait`, `rm`, `stop`, `kill`, `restart`, `pause`, `unpause`, plus
//! `rename`. Failures are
//! collected and printed at the end (exit 1), as docker's `errors.Join`.

use berth_api::container::WaitResponse;
use clap::Args;
use futures_util::future::join_all;

use super::{joined, outln, requires_exact, requires_min, CmdResult, Ctx};
use crate::client::{JsonStream, Query};

/// `berth wait`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Block until one or more containers stop, then print their exit codes",
    override_usage = "berth wait CONTAINER [CONTAINER...]"
)]
pub(crate) struct WaitArgs {
    /// CONTAINER [CONTAINER...]
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// `berth rm`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Remove one or more containers",
    override_usage = "berth rm [OPTIONS] CONTAINER [CONTAINER...]"
)]
pub(crate) struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub(crate) link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub(crate) volumes: bool,
    /// CONTAINER [CONTAINER...]
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// `berth stop` / `berth restart`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth (stop|restart) [OPTIONS] CONTAINER [CONTAINER...]")]
pub(crate) struct StopArgs {
    /// Signal to send to the container
    #[arg(
        short = 's',
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) signal: String,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", alias = "time", value_name = "int", allow_hyphen_values = true, value_parser = super::parse_go_int)]
    pub(crate) timeout: Option<i64>,
    /// CONTAINER [CONTAINER...]
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// `berth kill`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Kill one or more running containers",
    override_usage = "berth kill [OPTIONS] CONTAINER [CONTAINER...]"
)]
pub(crate) struct KillArgs {
    /// Signal to send to the container
    #[arg(
        short = 's',
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) signal: String,
    /// CONTAINER [CONTAINER...]
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// `berth pause` / `berth unpause`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth (pause|unpause) CONTAINER [CONTAINER...]")]
pub(crate) struct PauseArgs {
    /// CONTAINER [CONTAINER...]
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// `berth rename`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Rename a container",
    override_usage = "berth rename CONTAINER NEW_NAME"
)]
pub(crate) struct RenameArgs {
    /// CONTAINER NEW_NAME
    #[arg(value_name = "NAME")]
    pub(crate) args: Vec<String>,
}

/// Runs `op` on every name at once, then prints the names that succeeded
/// in the order given and returns the errors joined.
async fn each<F, Fut>(names: &[String], op: F) -> CmdResult
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let results = join_all(names.iter().map(|n| op(n.clone()))).await;
    let mut errors = Vec::new();
    for (name, r) in names.iter().zip(results) {
        match r {
            Ok(()) => outln(name)?,
            Err(e) => errors.push(e),
        }
    }
    joined(errors)
}

/// `berth wait CONTAINER...`: `POST /containers/{name}/wait`, one exit
/// code per line.
pub(crate) async fn wait(ctx: &Ctx, args: &WaitArgs, path: &str) -> CmdResult {
    requires_min(path, "CONTAINER [CONTAINER...]", args.containers.len(), 1)?;
    let mut errors = Vec::new();
    for name in &args.containers {
        let result = async {
            let resp = ctx
                .client
                .post(&format!("/containers/{name}/wait"), &Query::new())
                .await?;
            match JsonStream::new(resp).next::<WaitResponse>().await {
                Some(r) => Ok(r?),
                None => Err(crate::client::ClientError::Stream("unexpected EOF".into())),
            }
        }
        .await;
        match result {
            Ok(w) => outln(&w.status_code.to_string())?,
            Err(e) => errors.push(e.to_string()),
        }
    }
    joined(errors)
}

/// `berth rm CONTAINER...`: `DELETE /containers/{name}?force=1&v=1`.
pub(crate) async fn rm(ctx: &Ctx, args: &RmArgs, path: &str) -> CmdResult {
    requires_min(
        path,
        "[OPTIONS] CONTAINER [CONTAINER...]",
        args.containers.len(),
        1,
    )?;
    let query = Query::new()
        .add_if(args.volumes, "v", "1")
        .add_if(args.link, "link", "1")
        .add_if(args.force, "force", "1");
    let results = join_all(args.containers.iter().map(|name| {
        let query = query.clone();
        async move {
            let id = name.trim_matches('/');
            if id.is_empty() {
                return Err((false, "container name cannot be empty".to_string()));
            }
            ctx.client
                .delete(&format!("/containers/{id}"), &query)
                .await
                .map(|_| ())
                .map_err(|e| (e.is_not_found(), e.to_string()))
        }
    }))
    .await;
    let mut errors = Vec::new();
    for (name, r) in args.containers.iter().zip(results) {
        match r {
            Ok(()) => outln(name)?,
            Err((true, e)) if args.force => eprintln!("{e}"),
            Err((_, e)) => errors.push(e),
        }
    }
    joined(errors)
}

fn stop_query(args: &StopArgs) -> Query {
    Query::new()
        .add_if(
            args.timeout.is_some(),
            "t",
            args.timeout.unwrap_or(0).to_string(),
        )
        .add_nonempty("signal", &args.signal)
}

/// `berth stop CONTAINER...`: `POST /containers/{name}/stop[?t=N][&signal=S]`.
pub(crate) async fn stop(ctx: &Ctx, args: &StopArgs, path: &str) -> CmdResult {
    requires_min(
        path,
        "[OPTIONS] CONTAINER [CONTAINER...]",
        args.containers.len(),
        1,
    )?;
    let query = stop_query(args);
    each(&args.containers, |name| {
        let query = query.clone();
        async move {
            ctx.client
                .post_ok(&format!("/containers/{name}/stop"), &query)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await
}

/// `berth restart CONTAINER...`, one after the other as docker does.
pub(crate) async fn restart(ctx: &Ctx, args: &StopArgs, path: &str) -> CmdResult {
    requires_min(
        path,
        "[OPTIONS] CONTAINER [CONTAINER...]",
        args.containers.len(),
        1,
    )?;
    let query = stop_query(args);
    let mut errors = Vec::new();
    for name in &args.containers {
        match ctx
            .client
            .post_ok(&format!("/containers/{name}/restart"), &query)
            .await
        {
            Ok(()) => outln(name)?,
            Err(e) => errors.push(e.to_string()),
        }
    }
    joined(errors)
}

/// `berth kill CONTAINER...`: `POST /containers/{name}/kill[?signal=S]`.
pub(crate) async fn kill(ctx: &Ctx, args: &KillArgs, path: &str) -> CmdResult {
    requires_min(
        path,
        "[OPTIONS] CONTAINER [CONTAINER...]",
        args.containers.len(),
        1,
    )?;
    let query = Query::new().add_nonempty("signal", &args.signal);
    each(&args.containers, |name| {
        let query = query.clone();
        async move {
            ctx.client
                .post_ok(&format!("/containers/{name}/kill"), &query)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await
}

/// `berth pause CONTAINER...` (`verb` "pause") and `berth unpause
/// CONTAINER...` ("unpause"): `POST /containers/{name}/{verb}` for all at
/// once, as docker's `parallelOperation`.
pub(crate) async fn pause(ctx: &Ctx, args: &PauseArgs, verb: &str, path: &str) -> CmdResult {
    requires_min(path, "CONTAINER [CONTAINER...]", args.containers.len(), 1)?;
    each(&args.containers, |name| async move {
        ctx.client
            .post_ok(&format!("/containers/{name}/{verb}"), &Query::new())
            .await
            .map_err(|e| e.to_string())
    })
    .await
}

/// `berth rename OLD NEW`: `POST /containers/{old}/rename?name=NEW`.
pub(crate) async fn rename(ctx: &Ctx, args: &RenameArgs, path: &str) -> CmdResult {
    requires_exact(path, "CONTAINER NEW_NAME", args.args.len(), 2)?;
    let (old, new) = (args.args[0].trim(), args.args[1].trim());
    if old.is_empty() || new.is_empty() {
        anyhow::bail!("Error: Neither old nor new names may be empty");
    }
    let query = Query::new().add("name", new);
    if let Err(e) = ctx
        .client
        .post_ok(&format!("/containers/{old}/rename"), &query)
        .await
    {
        eprintln!("{e}");
        anyhow::bail!("Error: failed to rename container named {old}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: StopArgs,
    }

    #[test]
    fn stop_queries() {
        let q = |a: &[&str]| {
            stop_query(
                &T::try_parse_from(std::iter::once("stop").chain(a.iter().copied()))
                    .unwrap()
                    .a,
            )
            .encode()
        };
        assert_eq!(q(&["c"]), "");
        assert_eq!(q(&["-t", "1", "c"]), "t=1");
        assert_eq!(
            q(&["--time", "0", "-s", "SIGINT", "c"]),
            "signal=SIGINT&t=0"
        );
    }
}
