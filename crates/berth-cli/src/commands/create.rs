//! `create`, and the create call `run` shares: docker's pull-on-404
//! fallback, `--pull`, `--cidfile`, warnings, and its exit-code rules.

use std::path::Path;

use berth_api::container::CreateResponse;
use berth_api::{Reference, ReferenceError};
use clap::{ArgAction, Args};

use super::container_opts::{build_request, ContainerOpts, CreateRequest};
use super::image_io::pull_image;
use super::{outln, requires_min, CmdResult, Ctx, StatusError};
use crate::client::ClientError;
use crate::tty;

/// The usage line of `create` and `run`.
pub(crate) const USAGE: &str = "[OPTIONS] IMAGE [COMMAND] [ARG...]";

/// `berth create`.
#[derive(Debug, Clone, Args)]
#[command(
    disable_help_flag = true,
    about = "Create a new container",
    override_usage = "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]"
)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    pub(crate) opts: ContainerOpts,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub(crate) help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(value_name = "IMAGE", trailing_var_arg = true)]
    pub(crate) args: Vec<String>,
}

/// How the image argument names an image (docker's `ParseAnyReference`):
/// a name that can be pulled, or an ID / digest that cannot.
pub(crate) fn image_reference(image: &str) -> Result<Option<Reference>, ReferenceError> {
    if image.starts_with("sha256:") || berth_api::reference::is_full_id(image) {
        return Ok(None);
    }
    let r = Reference::parse_normalized(image)?;
    if r.is_name_only() {
        return r.with_tag("latest").map(Some);
    }
    Ok(Some(r))
}

/// The `--cidfile` file: created before the container, removed again when
/// no ID was written to it.
struct CidFile {
    path: String,
    file: Option<std::fs::File>,
    written: bool,
}

impl CidFile {
    fn create(path: &str) -> anyhow::Result<CidFile> {
        if path.is_empty() {
            return Ok(CidFile {
                path: String::new(),
                file: None,
                written: false,
            });
        }
        if Path::new(path).exists() {
            anyhow::bail!("container ID file found, make sure the other container isn't running or delete {path}");
        }
        let file = std::fs::File::create(path).map_err(|e| {
            anyhow::anyhow!(
                "failed to create the container ID file: {}",
                super::open_error(path, &e)
            )
        })?;
        Ok(CidFile {
            path: path.to_string(),
            file: Some(file),
            written: false,
        })
    }

    fn write(&mut self, id: &str) -> anyhow::Result<()> {
        use std::io::Write;
        if let Some(f) = &mut self.file {
            f.write_all(id.as_bytes()).map_err(|e| {
                anyhow::anyhow!("failed to write the container ID to the file: {e}")
            })?;
            self.written = true;
        }
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if self.file.take().is_some() && !self.written {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates the container as docker's `createContainer` does: `--pull
/// always` pulls first; a 404 with `--pull missing` prints `Unable to find
/// image 'busybox:latest' locally`, pulls and retries. Returns the ID.
pub(crate) async fn create_container(
    ctx: &Ctx,
    o: &ContainerOpts,
    req: &CreateRequest,
) -> anyhow::Result<String> {
    if !matches!(o.pull.as_str(), "always" | "missing" | "never" | "") {
        anyhow::bail!(
            "invalid pull option: '{}': must be one of \"always\", \"missing\" or \"never\"",
            o.pull
        );
    }
    let mut cid = CidFile::create(&o.cidfile)?;
    let image = &req.body.config.image;
    let named = image_reference(image)?;
    if o.pull == "always" {
        if let Some(r) = &named {
            pull_image(ctx, r, &o.platform, o.quiet).await?;
        }
    }
    let create = || {
        ctx.client
            .post_json::<_, CreateResponse>("/containers/create", &req.query, &req.body)
    };
    let resp = match create().await {
        Ok(r) => r,
        Err(e) if e.is_not_found() && o.pull == "missing" && named.is_some() => {
            let r = named.as_ref().expect("checked above");
            if !o.quiet {
                eprintln!("Unable to find image '{}' locally", r.familiar_string());
            }
            pull_image(ctx, r, &o.platform, o.quiet).await?;
            create().await?
        }
        Err(e) => return Err(e.into()),
    };
    for w in &resp.warnings {
        eprintln!("WARNING: {w}");
    }
    cid.write(&resp.id)?;
    Ok(resp.id)
}

/// `berth create`.
pub(crate) async fn create(ctx: &Ctx, args: &CreateArgs) -> CmdResult {
    requires_min("create", USAGE, args.args.len(), 1)?;
    let lookup = |k: &str| std::env::var(k).ok();
    let req = build_request(&args.opts, &args.args, tty::size(), &lookup)
        .map_err(|e| StatusError::new(125, with_help(&e, "create")))?;
    let id = create_container(ctx, &args.opts, &req).await?;
    outln(&id)?;
    Ok(0)
}

/// docker's `withHelp`: `berth: MSG` + blank line + the `--help` hint.
pub(crate) fn with_help(msg: &str, command: &str) -> String {
    format!("berth: {msg}\n\nRun 'berth {command} --help' for more information")
}

/// docker's `toStatusError` for `run`: 127 when the command was not found,
/// 126 when it could not be executed, else 125.
pub(crate) fn run_status_error(err: &anyhow::Error) -> StatusError {
    let msg = match err.downcast_ref::<ClientError>() {
        Some(e) => e.to_string(),
        None => format!("{err:#}"),
    };
    let code = if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    };
    StatusError::new(code, with_help(&msg, "run"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_refs_and_exit_codes() {
        assert_eq!(
            image_reference("busybox")
                .unwrap()
                .unwrap()
                .familiar_string(),
            "busybox:latest"
        );
        assert_eq!(
            image_reference("127.0.0.1:5000/flow-bb")
                .unwrap()
                .unwrap()
                .familiar_string(),
            "127.0.0.1:5000/flow-bb:latest"
        );
        assert!(image_reference(&"a".repeat(64)).unwrap().is_none());
        assert!(image_reference("sha256:abcd").unwrap().is_none());
        assert!(image_reference("UPPER").is_err());
        let e = anyhow::Error::new(ClientError::Daemon {
            status: 400,
            message: "failed to create task: exec: \"nope\": executable file not found in $PATH"
                .into(),
        });
        let s = run_status_error(&e);
        assert_eq!(s.code, 127);
        assert!(s
            .message
            .starts_with("berth: Error response from daemon: failed to create task"));
        assert!(s
            .message
            .ends_with("\n\nRun 'berth run --help' for more information"));
        let e = anyhow::Error::new(ClientError::Daemon {
            status: 400,
            message: "exec /x: permission denied".into(),
        });
        assert_eq!(run_status_error(&e).code, 126);
        let e = anyhow::Error::new(ClientError::Daemon {
            status: 409,
            message: "Conflict.".into(),
        });
        assert_eq!(run_status_error(&e).code, 125);
    }
}
