//! `volume create/ls/inspect/rm/prune`, as docker's `cli/command/volume`
//! prints them.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use clap::{Args, Subcommand};
use serde_json::{json, Value as Json};

use super::inspect::Inspector;
use super::port::natural_cmp;
use super::{
    filters_json, joined, out, outln, parse_filter, requires_min, CmdResult, Ctx, StatusError,
};
use crate::client::{path_escape, Query};
use crate::format::table::render;
use crate::format::template::{Template, Value};

/// `berth volume COMMAND`.
#[derive(Debug, Subcommand)]
pub(crate) enum VolumeCmd {
    /// Create a volume
    Create(CreateArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
    /// Remove one or more volumes
    #[command(
        visible_alias = "remove",
        long_about = "Remove one or more volumes. You cannot remove a volume that is in use by a container."
    )]
    Rm(RmArgs),
}

/// `berth volume create`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth volume create [OPTIONS] [VOLUME]")]
pub(crate) struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, value_name = "string", default_value = "local")]
    pub(crate) driver: String,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub(crate) opt: Vec<String>,
    /// Set metadata for a volume
    #[arg(long = "label", value_name = "list")]
    pub(crate) label: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", value_name = "string")]
    pub(crate) name_flag: Option<String>,
    /// VOLUME
    #[arg(value_name = "VOLUME")]
    pub(crate) names: Vec<String>,
}

/// `berth volume ls`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth volume ls [OPTIONS]")]
pub(crate) struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    pub(crate) filter: Vec<(String, String)>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

/// `berth volume inspect`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth volume inspect [OPTIONS] VOLUME [VOLUME...]")]
pub(crate) struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// VOLUME [VOLUME...]
    #[arg(value_name = "VOLUME")]
    pub(crate) names: Vec<String>,
}

/// `berth volume rm`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth volume rm [OPTIONS] VOLUME [VOLUME...]")]
pub(crate) struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// VOLUME [VOLUME...]
    #[arg(value_name = "VOLUME")]
    pub(crate) names: Vec<String>,
}

/// `berth volume prune`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth volume prune [OPTIONS]")]
pub(crate) struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    pub(crate) filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
}

pub(crate) async fn volume(ctx: &Ctx, cmd: &VolumeCmd) -> CmdResult {
    match cmd {
        VolumeCmd::Create(a) => create(ctx, a).await,
        VolumeCmd::Ls(a) => ls(ctx, a).await,
        VolumeCmd::Inspect(a) => inspect(ctx, a).await,
        VolumeCmd::Rm(a) => rm(ctx, a).await,
        VolumeCmd::Prune(a) => prune(ctx, a).await,
    }
}

fn map_opts(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (o.clone(), String::new()),
        })
        .collect()
}

async fn create(ctx: &Ctx, a: &CreateArgs) -> CmdResult {
    if a.names.len() > 1 {
        return Err(StatusError::new(
            1,
            "berth: 'berth volume create' requires at most 1 argument\n\nUsage:  berth volume create [OPTIONS] [VOLUME]\n\nSee 'berth volume create --help' for more information",
        )
        .into());
    }
    let name = match (&a.name_flag, a.names.first()) {
        (Some(f), Some(p)) if f != p => {
            return Err(StatusError::new(
                1,
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
            )
            .into())
        }
        (Some(f), _) => f.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => String::new(),
    };
    let body = json!({
        "Name": name,
        "Driver": a.driver,
        "DriverOpts": map_opts(&a.opt),
        "Labels": map_opts(&a.label),
    });
    let resp: Json = ctx
        .client
        .post_json("/volumes/create", &Query::new(), &body)
        .await?;
    outln(resp["Name"].as_str().unwrap_or(""))?;
    Ok(0)
}

const LS_TABLE: &str = "table {{.Driver}}\t{{.Name}}";

pub(crate) fn header() -> Value {
    Value::object([
        ("Availability", Value::str("AVAILABILITY")),
        ("Driver", Value::str("DRIVER")),
        ("Group", Value::str("GROUP")),
        ("Labels", Value::str("LABELS")),
        ("Links", Value::str("LINKS")),
        ("Mountpoint", Value::str("MOUNTPOINT")),
        ("Name", Value::str("VOLUME NAME")),
        ("Scope", Value::str("SCOPE")),
        ("Size", Value::str("SIZE")),
        ("Status", Value::str("STATUS")),
    ])
}

/// docker's `volumeContext`: one row of `volume ls` (and of `system df
/// -v`, where the daemon fills `UsageData`). The cluster fields are `N/A`
/// as for any local volume.
pub(crate) fn row(v: &Json) -> Value {
    let labels: BTreeMap<String, String> =
        serde_json::from_value(v["Labels"].clone()).unwrap_or_default();
    let labels_text = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let s = |k: &str| Value::str(v[k].as_str().unwrap_or(""));
    let usage = v["UsageData"].as_object();
    let usage_of = |k: &str, f: &dyn Fn(i64) -> String| match usage {
        Some(u) => f(u.get(k).and_then(Json::as_i64).unwrap_or(0)),
        None => "N/A".to_string(),
    };
    let fields = [
        ("Availability", Value::str("N/A")),
        ("Driver", s("Driver")),
        ("Group", Value::str("N/A")),
        ("Labels", Value::str(labels_text)),
        (
            "Links",
            Value::str(usage_of("RefCount", &|n| n.to_string())),
        ),
        ("Mountpoint", s("Mountpoint")),
        ("Name", s("Name")),
        ("Scope", s("Scope")),
        (
            "Size",
            Value::str(usage_of("Size", &|n| {
                berth_api::units::human_size(n as f64)
            })),
        ),
        ("Status", Value::str("N/A")),
    ];
    Value::context(
        "*formatter.volumeContext",
        fields,
        [(
            "Label",
            Value::object(labels.iter().map(|(k, v)| (k.as_str(), Value::str(v)))),
        )],
    )
}

/// docker's `NewVolumeFormat`: the named formats, else the template as
/// given (`-q` does not override a custom template).
fn ls_format(format: &str, quiet: bool) -> String {
    match format {
        "table" if quiet => "{{.Name}}".into(),
        "table" => LS_TABLE.into(),
        "raw" if quiet => "name: {{.Name}}".into(),
        "raw" => "name: {{.Name}}\ndriver: {{.Driver}}\n".into(),
        f => f.into(),
    }
}

async fn ls(ctx: &Ctx, a: &LsArgs) -> CmdResult {
    // Like docker: config.json's volumesFormat unless --format or -q.
    let format = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => f.to_string(),
        None => match super::registry::config_format("volumesFormat") {
            Some(f) if !a.quiet => f,
            _ => "table".into(),
        },
    };
    let format = ls_format(&format, a.quiet);
    Template::parse(&format).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
    let q = Query::new().add_if(!a.filter.is_empty(), "filters", filters_json(&a.filter));
    let resp: Json = ctx.client.get_json("/volumes", &q).await?;
    let mut list: Vec<Json> = serde_json::from_value(resp["Volumes"].clone()).unwrap_or_default();
    list.sort_by(|x, y| {
        natural_cmp(
            x["Name"].as_str().unwrap_or(""),
            y["Name"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = list.iter().map(row).collect();
    out(&render(&format, &header(), &rows)?)?;
    Ok(0)
}

async fn inspect(ctx: &Ctx, a: &InspectArgs) -> CmdResult {
    requires_min(
        "volume inspect",
        "[OPTIONS] VOLUME [VOLUME...]",
        a.names.len(),
        1,
    )?;
    let mut inspector = Inspector::new(a.format.as_deref())?;
    let mut errors = Vec::new();
    for name in &a.names {
        match ctx
            .client
            .get_bytes(&format!("/volumes/{}", path_escape(name)), &Query::new())
            .await
        {
            Ok(raw) => {
                if let Err(e) = inspector.add(raw.to_vec()) {
                    errors.push(e);
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    out(&inspector.finish())?;
    joined(errors)
}

async fn rm(ctx: &Ctx, a: &RmArgs) -> CmdResult {
    requires_min(
        "volume rm",
        "[OPTIONS] VOLUME [VOLUME...]",
        a.names.len(),
        1,
    )?;
    let q = Query::new().add_if(a.force, "force", "1");
    let mut errors = Vec::new();
    for name in &a.names {
        match ctx
            .client
            .delete(&format!("/volumes/{}", path_escape(name)), &q)
            .await
        {
            Ok(_) => outln(name)?,
            Err(e) => errors.push(e.to_string()),
        }
    }
    joined(errors)
}

/// docker's confirmation prompt; true when the user said yes.
pub(crate) fn confirm(warning: &str) -> std::io::Result<bool> {
    let mut stdout = std::io::stdout().lock();
    write!(
        stdout,
        "{warning}\nAre you sure you want to continue? [y/N] "
    )?;
    stdout.flush()?;
    drop(stdout);
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

async fn prune(ctx: &Ctx, a: &PruneArgs) -> CmdResult {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !confirm(warning)? {
        return Ok(0);
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push(("all".into(), "true".into()));
    }
    let q = Query::new().add_if(!filters.is_empty(), "filters", filters_json(&filters));
    let resp: Json = ctx
        .client
        .post_json("/volumes/prune", &q, &json!({}))
        .await?;
    let names: Vec<String> =
        serde_json::from_value(resp["VolumesDeleted"].clone()).unwrap_or_default();
    let mut text = String::new();
    if !names.is_empty() {
        text.push_str("Deleted Volumes:\n");
        for n in names {
            text.push_str(&n);
            text.push('\n');
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}",
        berth_api::units::human_size(resp["SpaceReclaimed"].as_u64().unwrap_or(0) as f64)
    ));
    outln(&text)?;
    Ok(0)
}
