//! `export` (`GET /containers/{id}/export`): a container's filesystem as a
//! tar archive.

use clap::Args;

use super::image_io::download_to;
use super::{requires_exact, CmdResult, Ctx};
use crate::client::Query;

/// `berth export`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Export a container's filesystem as a tar archive",
    override_usage = "berth export [OPTIONS] CONTAINER"
)]
pub(crate) struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub(crate) output: Option<String>,
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub(crate) args: Vec<String>,
}

pub(crate) async fn export(ctx: &Ctx, a: &ExportArgs, path: &str) -> CmdResult {
    requires_exact(path, "[OPTIONS] CONTAINER", a.args.len(), 1)?;
    let url = format!("/containers/{}/export", a.args[0]);
    download_to(
        ctx,
        &url,
        &Query::new(),
        a.output.as_deref(),
        "export container",
    )
    .await
}
