//! The prunes: `container prune`, `image prune`, `builder prune`,
//! `system prune`, printed as docker prints them (and `system df`, which
//! lives in [`super::df`]).

use clap::Args;
use serde_json::{json, Value as Json};

pub(crate) use super::df::{df, DfArgs};
use super::volume::confirm;
use super::{filters_json, outln, parse_filter, CmdResult, Ctx};
use crate::client::Query;
use berth_api::units::human_size;

/// `berth container prune`, `image prune`, `builder prune`, `system prune`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PruneArgs {
    /// Remove all unused images / build cache, not just dangling ones
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    pub(crate) filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// Prune anonymous volumes (system prune)
    #[arg(long)]
    pub(crate) volumes: bool,
}

fn list<'a>(v: &'a Json, k: &str) -> &'a [Json] {
    v[k].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// What one prune call removed, as docker prints it, and the bytes.
async fn call(ctx: &Ctx, path: &str, filters: &[(String, String)]) -> anyhow::Result<Json> {
    let q = Query::new().add_if(!filters.is_empty(), "filters", filters_json(filters));
    Ok(ctx.client.post_json(path, &q, &json!({})).await?)
}

fn section(title: &str, items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut s = format!("{title}:\n");
    for i in items {
        s.push_str(i);
        s.push('\n');
    }
    s.push('\n');
    s
}

fn strings(v: &Json, k: &str) -> Vec<String> {
    serde_json::from_value(v[k].clone()).unwrap_or_default()
}

fn image_lines(v: &Json) -> Vec<String> {
    list(v, "ImagesDeleted")
        .iter()
        .map(|x| match (x["Untagged"].as_str(), x["Deleted"].as_str()) {
            (Some(u), _) => format!("untagged: {u}"),
            (_, Some(d)) => format!("deleted: {d}"),
            _ => String::new(),
        })
        .collect()
}

fn total(bytes: u64) -> String {
    format!("Total reclaimed space: {}", human_size(bytes as f64))
}

pub(crate) async fn container_prune(ctx: &Ctx, a: &PruneArgs) -> CmdResult {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(0);
    }
    let v = call(ctx, "/containers/prune", &a.filter).await?;
    let mut text = section("Deleted Containers", &strings(&v, "ContainersDeleted"));
    text.push_str(&total(v["SpaceReclaimed"].as_u64().unwrap_or(0)));
    outln(&text)?;
    Ok(0)
}

pub(crate) async fn image_prune(ctx: &Ctx, a: &PruneArgs) -> CmdResult {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning)? {
        return Ok(0);
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push(("dangling".into(), "false".into()));
    }
    let v = call(ctx, "/images/prune", &filters).await?;
    let mut text = section("Deleted Images", &image_lines(&v));
    text.push_str(&total(v["SpaceReclaimed"].as_u64().unwrap_or(0)));
    outln(&text)?;
    Ok(0)
}

pub(crate) async fn builder_prune(ctx: &Ctx, a: &PruneArgs) -> CmdResult {
    if !a.force && !confirm("WARNING! This will remove all dangling build cache.")? {
        return Ok(0);
    }
    let v = call(ctx, "/build/prune", &a.filter).await?;
    outln(&total(v["SpaceReclaimed"].as_u64().unwrap_or(0)))?;
    Ok(0)
}

pub(crate) async fn system_prune(ctx: &Ctx, a: &PruneArgs) -> CmdResult {
    if !a.force {
        let mut w = String::from(
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
        );
        if a.volumes {
            w.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        if a.all {
            w.push_str("  - all images without at least one container associated to them\n");
        } else {
            w.push_str("  - all dangling images\n");
        }
        w.push_str(if a.all {
            "  - all build cache\n"
        } else {
            "  - unused build cache\n"
        });
        if !confirm(&w)? {
            return Ok(0);
        }
    }
    let mut text = String::new();
    let mut bytes = 0u64;
    let v = call(ctx, "/containers/prune", &a.filter).await?;
    bytes += v["SpaceReclaimed"].as_u64().unwrap_or(0);
    text.push_str(&section(
        "Deleted Containers",
        &strings(&v, "ContainersDeleted"),
    ));
    // Networks take no `label!`-less until filter difference; same filters.
    if let Ok(v) = call(ctx, "/networks/prune", &a.filter).await {
        text.push_str(&section(
            "Deleted Networks",
            &strings(&v, "NetworksDeleted"),
        ));
    }
    if a.volumes {
        let vf: Vec<(String, String)> = a
            .filter
            .iter()
            .filter(|(k, _)| k.starts_with("label"))
            .cloned()
            .collect();
        let v = call(ctx, "/volumes/prune", &vf).await?;
        bytes += v["SpaceReclaimed"].as_u64().unwrap_or(0);
        text.push_str(&section("Deleted Volumes", &strings(&v, "VolumesDeleted")));
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push(("dangling".into(), "false".into()));
    }
    let v = call(ctx, "/images/prune", &filters).await?;
    bytes += v["SpaceReclaimed"].as_u64().unwrap_or(0);
    text.push_str(&section("Deleted Images", &image_lines(&v)));
    let v = call(ctx, "/build/prune", &a.filter).await?;
    bytes += v["SpaceReclaimed"].as_u64().unwrap_or(0);
    text.push_str(&total(bytes));
    outln(&text)?;
    Ok(0)
}
