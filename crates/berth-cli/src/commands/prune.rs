//! `system df`, and the prunes: `container prune`, `image prune`,
//! `builder prune`, `system prune`, printed as docker prints them.

use clap::Args;
use serde_json::{json, Value as Json};

use super::volume::confirm;
use super::{filters_json, out, outln, parse_filter, CmdResult, Ctx};
use crate::client::Query;
use crate::format::table::render;
use crate::format::template::Value;
use berth_api::units::human_size;

/// `berth system df`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth system df [OPTIONS]")]
pub(crate) struct DfArgs {
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,
}

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

fn reclaimable(r: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", human_size(r as f64), r * 100 / total)
    } else {
        human_size(r as f64)
    }
}

fn i(v: &Json, k: &str) -> i64 {
    v[k].as_i64().unwrap_or(0)
}

fn list<'a>(v: &'a Json, k: &str) -> &'a [Json] {
    v[k].as_array().map(Vec::as_slice).unwrap_or(&[])
}

pub(crate) async fn df(ctx: &Ctx, a: &DfArgs) -> CmdResult {
    let v: Json = ctx.client.get_json("/system/df", &Query::new()).await?;
    let images = list(&v, "Images");
    let containers = list(&v, "Containers");
    let volumes = list(&v, "Volumes");
    let layers = i(&v, "LayersSize");
    let img_active = images.iter().filter(|x| i(x, "Containers") > 0).count();
    let img_reclaim: i64 = images
        .iter()
        .filter(|x| i(x, "Containers") == 0)
        .map(|x| i(x, "Size") - i(x, "SharedSize").max(0))
        .sum::<i64>()
        .min(layers);
    let c_total: i64 = containers.iter().map(|x| i(x, "SizeRw")).sum();
    let c_active = containers
        .iter()
        .filter(|x| x["State"] == "running" || x["State"] == "paused")
        .count();
    let c_reclaim: i64 = containers
        .iter()
        .filter(|x| x["State"] != "running" && x["State"] != "paused")
        .map(|x| i(x, "SizeRw"))
        .sum();
    let usage = |x: &Json, k: &str| x["UsageData"][k].as_i64().unwrap_or(0);
    let v_total: i64 = volumes.iter().map(|x| usage(x, "Size")).sum();
    let v_active = volumes.iter().filter(|x| usage(x, "RefCount") > 0).count();
    let v_reclaim: i64 = volumes
        .iter()
        .filter(|x| usage(x, "RefCount") == 0)
        .map(|x| usage(x, "Size"))
        .sum();
    if a.verbose {
        return df_verbose(images, containers, volumes);
    }
    let row = |t: &str, total: usize, active: usize, size: i64, rec: String| {
        Value::object([
            ("Type", Value::str(t)),
            ("TotalCount", Value::str(total.to_string())),
            ("Active", Value::str(active.to_string())),
            ("Size", Value::str(human_size(size as f64))),
            ("Reclaimable", Value::str(rec)),
        ])
    };
    let rows = vec![
        row(
            "Images",
            images.len(),
            img_active,
            layers,
            reclaimable(img_reclaim, layers),
        ),
        row(
            "Containers",
            containers.len(),
            c_active,
            c_total,
            reclaimable(c_reclaim, c_total),
        ),
        row(
            "Local Volumes",
            volumes.len(),
            v_active,
            v_total,
            reclaimable(v_reclaim, v_total),
        ),
        row("Build Cache", 0, 0, 0, "0B".into()),
    ];
    let header = Value::object([
        ("Type", Value::str("TYPE")),
        ("TotalCount", Value::str("TOTAL")),
        ("Active", Value::str("ACTIVE")),
        ("Size", Value::str("SIZE")),
        ("Reclaimable", Value::str("RECLAIMABLE")),
    ]);
    let format = match a.format.as_deref().unwrap_or("") {
        "" | "table" => {
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
        }
        f => f,
    };
    out(&render(format, &header, &rows)?)?;
    Ok(0)
}

fn df_verbose(images: &[Json], containers: &[Json], volumes: &[Json]) -> CmdResult {
    let s = |x: &Json, k: &str| x[k].as_str().unwrap_or("").to_string();
    let short = |id: &str| {
        let id = id.strip_prefix("sha256:").unwrap_or(id);
        id[..id.len().min(12)].to_string()
    };
    let mut text = String::from("Images space usage:\n\n");
    let header = Value::object([
        ("Repository", Value::str("REPOSITORY")),
        ("Tag", Value::str("TAG")),
        ("ID", Value::str("IMAGE ID")),
        ("Size", Value::str("SIZE")),
        ("SharedSize", Value::str("SHARED SIZE")),
        ("UniqueSize", Value::str("UNIQUE SIZE")),
        ("Containers", Value::str("CONTAINERS")),
    ]);
    let rows: Vec<Value> = images
        .iter()
        .map(|x| {
            let tag = x["RepoTags"][0].as_str().unwrap_or("<none>:<none>");
            let (repo, tag) = tag.rsplit_once(':').unwrap_or((tag, "<none>"));
            Value::object([
                ("Repository", Value::str(repo)),
                ("Tag", Value::str(tag)),
                ("ID", Value::str(short(&s(x, "Id")))),
                ("Size", Value::str(human_size(i(x, "Size") as f64))),
                (
                    "SharedSize",
                    Value::str(human_size(i(x, "SharedSize") as f64)),
                ),
                (
                    "UniqueSize",
                    Value::str(human_size((i(x, "Size") - i(x, "SharedSize")) as f64)),
                ),
                ("Containers", Value::str(i(x, "Containers").to_string())),
            ])
        })
        .collect();
    text.push_str(&render(
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        &header,
        &rows,
    )?);
    text.push_str("\nContainers space usage:\n\n");
    let header = Value::object([
        ("ID", Value::str("CONTAINER ID")),
        ("Image", Value::str("IMAGE")),
        ("Size", Value::str("SIZE")),
        ("Status", Value::str("STATUS")),
        ("Names", Value::str("NAMES")),
    ]);
    let rows: Vec<Value> = containers
        .iter()
        .map(|x| {
            Value::object([
                ("ID", Value::str(short(&s(x, "Id")))),
                ("Image", Value::str(s(x, "Image"))),
                ("Size", Value::str(human_size(i(x, "SizeRw") as f64))),
                ("Status", Value::str(s(x, "Status"))),
                (
                    "Names",
                    Value::str(x["Names"][0].as_str().unwrap_or("").trim_start_matches('/')),
                ),
            ])
        })
        .collect();
    text.push_str(&render(
        "table {{.ID}}\t{{.Image}}\t{{.Size}}\t{{.Status}}\t{{.Names}}",
        &header,
        &rows,
    )?);
    text.push_str("\nLocal Volumes space usage:\n\n");
    let header = Value::object([
        ("Name", Value::str("VOLUME NAME")),
        ("Links", Value::str("LINKS")),
        ("Size", Value::str("SIZE")),
    ]);
    let rows: Vec<Value> = volumes
        .iter()
        .map(|x| {
            Value::object([
                ("Name", Value::str(s(x, "Name"))),
                (
                    "Links",
                    Value::str(x["UsageData"]["RefCount"].as_i64().unwrap_or(0).to_string()),
                ),
                (
                    "Size",
                    Value::str(human_size(
                        x["UsageData"]["Size"].as_i64().unwrap_or(0) as f64
                    )),
                ),
            ])
        })
        .collect();
    text.push_str(&render(
        "table {{.Name}}\t{{.Links}}\t{{.Size}}",
        &header,
        &rows,
    )?);
    text.push_str("\nBuild cache usage: 0B\n");
    out(&text)?;
    Ok(0)
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
