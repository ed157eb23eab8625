//! `commit` (`POST /commit`) and `diff` (`GET /containers/{id}/changes`).

use berth_api::container::{CommitResponse, FilesystemChange};
use berth_api::Reference;
use clap::{ArgAction, Args};

use super::{outln, parse_go_bool, requires_exact, requires_range, CmdResult, Ctx};
use crate::client::{path_escape, read_body, Query};

/// `berth commit`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Create a new image from a container's changes",
    override_usage = "berth commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]"
)]
pub(crate) struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "string", default_value = "")]
    pub(crate) author: String,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub(crate) change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "string", default_value = "")]
    pub(crate) message: String,
    /// Pause container during commit (default true)
    #[arg(short = 'p', long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool, action = ArgAction::Set,
          hide_default_value = true)]
    pub(crate) pause: bool,
    /// CONTAINER [REPOSITORY[:TAG]]
    #[arg(value_name = "CONTAINER")]
    pub(crate) args: Vec<String>,
}

/// `berth diff`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Inspect changes to files or directories on a container's filesystem",
    override_usage = "berth diff CONTAINER"
)]
pub(crate) struct DiffArgs {
    /// CONTAINER
    #[arg(value_name = "CONTAINER")]
    pub(crate) args: Vec<String>,
}

/// The query of `POST /commit` as the docker CLI writes it: the reference
/// split into `repo` (familiar name) and `tag` (`latest` when absent).
fn commit_query(a: &CommitArgs) -> anyhow::Result<Query> {
    let (mut repo, mut tag) = (String::new(), String::new());
    if let Some(r) = a.args.get(1).filter(|r| !r.is_empty()) {
        let r = Reference::parse_normalized(r)?;
        if r.digest().is_some() {
            anyhow::bail!("refusing to create a tag with a digest reference");
        }
        tag = r.tag().unwrap_or("latest").to_string();
        repo = r.familiar_name();
    }
    let mut q = Query::new()
        .add("container", a.args[0].as_str())
        .add("repo", repo)
        .add("tag", tag)
        .add("comment", a.message.as_str())
        .add("author", a.author.as_str());
    for c in &a.change {
        q = q.add("changes", c.as_str());
    }
    Ok(q.add_if(!a.pause, "pause", "0"))
}

pub(crate) async fn commit(ctx: &Ctx, a: &CommitArgs, path: &str) -> CmdResult {
    requires_range(
        path,
        "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
        a.args.len(),
        1,
        2,
    )?;
    let q = commit_query(a)?;
    // No body, as the docker CLI sends none: the container's own config.
    let resp = ctx.client.post("/commit", &q).await?;
    let resp: CommitResponse = serde_json::from_slice(&read_body(resp).await?)?;
    outln(&resp.id)?;
    Ok(0)
}

/// Docker's letters for a change's kind.
fn kind_letter(kind: u8) -> &'static str {
    match kind {
        0 => "C",
        1 => "A",
        2 => "D",
        _ => "?",
    }
}

pub(crate) async fn diff(ctx: &Ctx, a: &DiffArgs, path: &str) -> CmdResult {
    requires_exact(path, "CONTAINER", a.args.len(), 1)?;
    let changes: Option<Vec<FilesystemChange>> = ctx
        .client
        .get_json(
            &format!("/containers/{}/changes", path_escape(&a.args[0])),
            &Query::new(),
        )
        .await?;
    for ch in changes.unwrap_or_default() {
        outln(&format!("{} {}", kind_letter(ch.kind), ch.path))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> CommitArgs {
        CommitArgs {
            author: String::new(),
            change: vec!["CMD x".into()],
            message: "m".into(),
            pause: true,
            args: v.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn query_like_docker() {
        let q = commit_query(&args(&["c1", "repo/app"])).unwrap();
        let e = q.encode();
        assert!(e.contains("repo=repo%2Fapp"), "{e}");
        assert!(e.contains("tag=latest"), "{e}");
        assert!(
            e.contains("changes=CMD+x") || e.contains("changes=CMD%20x"),
            "{e}"
        );
        assert!(!e.contains("pause"), "{e}");
        let q = commit_query(&args(&["c1", "docker.io/library/app:v2"])).unwrap();
        let e = q.encode();
        assert!(e.contains("repo=app&") && e.contains("tag=v2"), "{e}");
        let mut a = args(&["c1"]);
        a.pause = false;
        assert!(commit_query(&a).unwrap().encode().contains("pause=0"));
        assert!(commit_query(&args(&["c1", "app@sha256:aaaa"])).is_err());
    }
}
