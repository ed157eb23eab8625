//! Image commands that talk JSON: `images` / `image ls`, `tag`, `rmi` /
//! `image rm`, `history`.

use berth_api::image::{DeleteItem, HistoryItem, ImageSummary};
use berth_api::Reference;
use clap::{ArgAction, Args};

use super::{
    filters_json, joined, out, outln, parse_filter, parse_go_bool, requires_exact, requires_min,
    requires_range, CmdResult, Ctx,
};
use crate::client::Query;
use crate::format::table::{ellipsis, render, truncate_id, QUIET_FORMAT};
use crate::format::template::Value;
use crate::format::units::{human_duration, human_size, human_size_with_precision, since};

/// `berth images` / `berth image ls`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "List images",
    override_usage = "berth images [OPTIONS] [REPOSITORY[:TAG]]"
)]
pub(crate) struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Show digests
    #[arg(long)]
    pub(crate) digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    pub(crate) filter: Vec<(String, String)>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// [REPOSITORY[:TAG]]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub(crate) args: Vec<String>,
}

/// `berth tag`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    override_usage = "berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]"
)]
pub(crate) struct TagArgs {
    /// SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]
    #[arg(value_name = "IMAGE")]
    pub(crate) args: Vec<String>,
}

/// `berth rmi` / `berth image rm`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Remove one or more images",
    override_usage = "berth rmi [OPTIONS] IMAGE [IMAGE...]"
)]
pub(crate) struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub(crate) no_prune: bool,
    /// IMAGE [IMAGE...]
    #[arg(value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
}

/// `berth history`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Show the history of an image",
    override_usage = "berth history [OPTIONS] IMAGE"
)]
pub(crate) struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool, action = ArgAction::Set)]
    pub(crate) human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// IMAGE
    #[arg(value_name = "IMAGE")]
    pub(crate) args: Vec<String>,
}

const IMAGES_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const IMAGES_TABLE_DIGESTS: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";

pub(crate) fn images_header() -> Value {
    Value::object([
        ("Containers", Value::str("CONTAINERS")),
        ("CreatedAt", Value::str("CREATED AT")),
        ("CreatedSince", Value::str("CREATED")),
        ("Digest", Value::str("DIGEST")),
        ("ID", Value::str("IMAGE ID")),
        ("Repository", Value::str("REPOSITORY")),
        ("SharedSize", Value::str("SHARED SIZE")),
        ("Size", Value::str("SIZE")),
        ("Tag", Value::str("TAG")),
        ("UniqueSize", Value::str("UNIQUE SIZE")),
        ("VirtualSize", Value::str("SIZE")),
    ])
}

/// Go's `time.Unix(s, 0).String()` in local time:
/// `2024-05-01 10:00:00 +0200 CEST` (the zone shown as its offset).
pub(crate) fn go_time_string(unix: i64) -> String {
    let t = chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .with_timezone(&chrono::Local);
    let offset = t.format("%z").to_string();
    let zone = if offset == "+0000" {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    format!("{} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

/// Go's `time.Time.String()` of an RFC 3339 time as Go's `time.Parse`
/// reads it (`2024-05-01 10:00:00.123456789 +0000 UTC`): fraction without
/// trailing zeros, `Z` (and a zero offset) as `UTC`, another offset shown
/// as itself for lack of a zone name. Unparseable input gives Go's zero time.
pub(crate) fn go_time_rfc3339(s: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) else {
        return "0001-01-01 00:00:00 +0000 UTC".into();
    };
    let nanos = t.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let offset = t.format("%z").to_string();
    let zone = if offset == "+0000" { "UTC" } else { &offset };
    format!("{}{frac} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

/// One row of `images` per repository and tag, as docker's
/// `imageFormatTaggedAndDigest` lays them out.
pub(crate) fn image_rows(images: &[ImageSummary], trunc: bool, digest: bool) -> Vec<Value> {
    let mut rows = Vec::new();
    for img in images {
        let tags = img.repo_tags.clone().unwrap_or_default();
        let digests = img.repo_digests.clone().unwrap_or_default();
        let dangling = (tags.is_empty() && digests.is_empty())
            || (tags == ["<none>:<none>"] && digests == ["<none>@<none>"]);
        let mut entries: Vec<(String, String, String)> = Vec::new();
        if dangling {
            entries.push(("<none>".into(), "<none>".into(), "<none>".into()));
        } else {
            let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
            let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
            for t in &tags {
                let Ok(r) = Reference::parse_normalized(t) else {
                    continue;
                };
                if let Some(tag) = r.tag() {
                    push_grouped(&mut repo_tags, r.familiar_name(), tag.to_string());
                }
            }
            for d in &digests {
                let Ok(r) = Reference::parse_normalized(d) else {
                    continue;
                };
                if let Some(dg) = r.digest() {
                    push_grouped(&mut repo_digests, r.familiar_name(), dg.to_string());
                }
            }
            for (repo, tags) in &repo_tags {
                let pos = repo_digests.iter().position(|(r, _)| r == repo);
                let ds = pos.map(|p| repo_digests.remove(p).1).unwrap_or_default();
                let ds = if digest { ds } else { Vec::new() };
                for tag in tags {
                    if ds.is_empty() {
                        entries.push((repo.clone(), tag.clone(), "<none>".into()));
                    }
                    for d in &ds {
                        entries.push((repo.clone(), tag.clone(), d.clone()));
                    }
                }
            }
            for (repo, ds) in repo_digests {
                if digest {
                    for d in ds {
                        entries.push((repo.clone(), "<none>".into(), d));
                    }
                } else {
                    entries.push((repo, "<none>".into(), String::new()));
                }
            }
        }
        for (repo, tag, dg) in entries {
            rows.push(image_row(img, trunc, repo, tag, dg));
        }
    }
    rows
}

fn push_grouped(groups: &mut Vec<(String, Vec<String>)>, key: String, value: String) {
    match groups.iter_mut().find(|(k, _)| *k == key) {
        Some((_, v)) => v.push(value),
        None => groups.push((key, vec![value])),
    }
}

pub(crate) fn image_row(
    img: &ImageSummary,
    trunc: bool,
    repo: String,
    tag: String,
    digest: String,
) -> Value {
    let na = |n: i64, f: &dyn Fn(i64) -> String| if n == -1 { "N/A".to_string() } else { f(n) };
    let fields = [
        (
            "Containers",
            Value::String(na(img.containers, &|n| n.to_string())),
        ),
        ("CreatedAt", Value::String(go_time_string(img.created))),
        ("CreatedSince", Value::String(since(img.created))),
        ("Digest", Value::String(digest)),
        (
            "ID",
            Value::String(if trunc {
                truncate_id(&img.id)
            } else {
                img.id.clone()
            }),
        ),
        ("Repository", Value::String(repo)),
        (
            "SharedSize",
            Value::String(na(img.shared_size, &|n| human_size(n as f64))),
        ),
        (
            "Size",
            Value::String(human_size_with_precision(img.size as f64, 3)),
        ),
        ("Tag", Value::String(tag)),
        (
            "UniqueSize",
            Value::String(if img.size == -1 || img.shared_size == -1 {
                "N/A".into()
            } else {
                human_size((img.size - img.shared_size) as f64)
            }),
        ),
        ("VirtualSize", Value::String(human_size(img.size as f64))),
    ];
    Value::context("*formatter.imageContext", fields, [])
}

/// docker's `raw` image format (also used by `system df -v`).
pub(crate) fn image_raw_format(quiet: bool, digest: bool) -> String {
    if quiet {
        return "image_id: {{.ID}}".into();
    }
    format!(
        "repository: {{{{ .Repository }}}}\ntag: {{{{.Tag}}}}\n{}image_id: {{{{.ID}}}}\n\
         created_at: {{{{.CreatedAt}}}}\nvirtual_size: {{{{.Size}}}}\n",
        if digest { "digest: {{.Digest}}\n" } else { "" }
    )
}

/// docker's `NewImageFormat`.
fn images_format(format: Option<&str>, quiet: bool, digests: bool) -> String {
    match format.unwrap_or("table") {
        "table" if quiet => QUIET_FORMAT.into(),
        "table" if digests => IMAGES_TABLE_DIGESTS.into(),
        "table" => IMAGES_TABLE.into(),
        "raw" => image_raw_format(quiet, digests),
        _ if quiet => QUIET_FORMAT.into(),
        custom => {
            let mut f = custom.to_string();
            if f.starts_with("table") && digests && !f.contains("{{.Digest}}") {
                f.push_str("\t{{.Digest}}");
            }
            f
        }
    }
}

/// `berth images [REPOSITORY[:TAG]]`.
pub(crate) async fn images(ctx: &Ctx, args: &ImagesArgs, called_as_images: bool) -> CmdResult {
    // docker uses config.json's imagesFormat when no --format (and no -q) is given.
    let with_default;
    let args = if args.format.is_none() && !args.quiet {
        with_default = ImagesArgs {
            format: super::registry::config_format("imagesFormat"),
            ..args.clone()
        };
        &with_default
    } else {
        args
    };
    let path = if called_as_images {
        "images"
    } else {
        "image ls"
    };
    requires_range(path, "[OPTIONS] [REPOSITORY[:TAG]]", args.args.len(), 0, 1)?;
    let mut filters = args.filter.clone();
    if let Some(m) = args.args.first() {
        filters.push(("reference".into(), m.clone()));
    }
    let query = Query::new().add_if(args.all, "all", "1").add_if(
        !filters.is_empty(),
        "filters",
        filters_json(&filters),
    );
    let list: Vec<ImageSummary> = ctx.client.get_json("/images/json", &query).await?;
    let needs_digest = args.digests
        || args
            .format
            .as_deref()
            .is_some_and(|f| f.contains("{{.Digest}}"));
    let rows = image_rows(&list, !args.no_trunc, needs_digest);
    let format = images_format(args.format.as_deref(), args.quiet, args.digests);
    out(&render(&format, &images_header(), &rows)?)?;
    if let Some(m) = args.args.first() {
        let ambiguous = [
            "build", "history", "import", "inspect", "list", "load", "ls", "prune", "pull", "push",
            "rm", "save", "tag",
        ];
        if list.is_empty() && called_as_images && ambiguous.contains(&m.as_str()) {
            eprintln!("\nNo images found matching \"{m}\": did you mean \"berth image {m}\"?");
        }
    }
    Ok(0)
}

/// `berth tag SOURCE TARGET`: `POST /images/{source}/tag?repo=&tag=`.
pub(crate) async fn tag(ctx: &Ctx, args: &TagArgs) -> CmdResult {
    requires_exact(
        "tag",
        "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        args.args.len(),
        2,
    )?;
    let (source, target) = (&args.args[0], &args.args[1]);
    let invalid = |s: &str, e: &dyn std::fmt::Display| {
        anyhow::anyhow!("Error parsing reference: {s:?} is not a valid repository/tag: {e}")
    };
    if !source.starts_with("sha256:") && !berth_api::reference::is_full_id(source) {
        Reference::parse_normalized(source).map_err(|e| invalid(source, &e))?;
    }
    let r = Reference::parse_normalized(target).map_err(|e| invalid(target, &e))?;
    if r.digest().is_some() {
        anyhow::bail!("refusing to create a tag with a digest reference");
    }
    let query = Query::new()
        .add("repo", r.familiar_name())
        .add("tag", r.tag().unwrap_or("latest"));
    ctx.client
        .post_ok(&format!("/images/{source}/tag"), &query)
        .await?;
    Ok(0)
}

/// `berth rmi IMAGE...`: `DELETE /images/{name}`, printing `Untagged:` and
/// `Deleted:` lines. With `-f`, "not found" errors do not fail the command.
pub(crate) async fn rmi(ctx: &Ctx, args: &RmiArgs, path: &str) -> CmdResult {
    requires_min(path, "[OPTIONS] IMAGE [IMAGE...]", args.images.len(), 1)?;
    let query = Query::new()
        .add_if(args.force, "force", "1")
        .add_if(args.no_prune, "noprune", "1");
    let mut errors = Vec::new();
    let mut fatal = false;
    for name in &args.images {
        match ctx.client.delete(&format!("/images/{name}"), &query).await {
            Ok(body) => {
                let items: Vec<DeleteItem> = serde_json::from_slice(&body)?;
                for item in items {
                    match (item.deleted, item.untagged) {
                        (Some(d), _) if !d.is_empty() => outln(&format!("Deleted: {d}"))?,
                        (_, u) => outln(&format!("Untagged: {}", u.unwrap_or_default()))?,
                    }
                }
            }
            Err(e) => {
                fatal |= !e.is_not_found();
                errors.push(e.to_string());
            }
        }
    }
    if !errors.is_empty() && args.force && !fatal {
        eprintln!("{}", errors.join("\n"));
        return Ok(0);
    }
    joined(errors)
}

const HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
const HISTORY_TABLE_RAW: &str =
    "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

fn history_header() -> Value {
    Value::object([
        ("Comment", Value::str("COMMENT")),
        ("CreatedAt", Value::str("CREATED AT")),
        ("CreatedBy", Value::str("CREATED BY")),
        ("CreatedSince", Value::str("CREATED")),
        ("ID", Value::str("IMAGE")),
        ("Size", Value::str("SIZE")),
    ])
}

/// Go's `time.Unix(s, 0).Format(time.RFC3339)` in local time.
fn rfc3339_local(unix: i64) -> String {
    let t = chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .with_timezone(&chrono::Local);
    let s = t.format("%Y-%m-%dT%H:%M:%S%:z").to_string();
    match s.strip_suffix("+00:00") {
        Some(base) => format!("{base}Z"),
        None => s,
    }
}

/// One `history` row, as docker's `historyContext` renders it.
pub(crate) fn history_row(h: &HistoryItem, trunc: bool, human: bool) -> Value {
    const EPOCH_2000: i64 = 946_684_800;
    let created_at = rfc3339_local(h.created);
    let created_since = if !human {
        created_at.clone()
    } else if h.created <= EPOCH_2000 {
        "N/A".into()
    } else {
        let secs = (chrono::Utc::now().timestamp() - h.created) as f64;
        format!("{} ago", human_duration(secs))
    };
    let created_by = h.created_by.replace('\t', " ");
    let created_by = if trunc {
        ellipsis(&created_by, 45)
    } else {
        created_by
    };
    let size = if human {
        human_size_with_precision(h.size as f64, 3)
    } else {
        h.size.to_string()
    };
    let fields = [
        ("Comment", Value::String(h.comment.clone())),
        ("CreatedAt", Value::String(created_at)),
        ("CreatedBy", Value::String(created_by)),
        ("CreatedSince", Value::String(created_since)),
        (
            "ID",
            Value::String(if trunc {
                truncate_id(&h.id)
            } else {
                h.id.clone()
            }),
        ),
        ("Size", Value::String(size)),
    ];
    Value::context("*image.historyContext", fields, [])
}

/// `berth history IMAGE`.
pub(crate) async fn history(ctx: &Ctx, args: &HistoryArgs, path: &str) -> CmdResult {
    requires_exact(path, "[OPTIONS] IMAGE", args.args.len(), 1)?;
    let items: Vec<HistoryItem> = ctx
        .client
        .get_json(&format!("/images/{}/history", args.args[0]), &Query::new())
        .await?;
    let format = match args.format.as_deref().unwrap_or("table") {
        "table" if args.quiet => QUIET_FORMAT,
        "table" if !args.human => HISTORY_TABLE_RAW,
        "table" => HISTORY_TABLE,
        custom => custom,
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|h| history_row(h, !args.no_trunc, args.human))
        .collect();
    out(&render(format, &history_header(), &rows)?)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, tags: &[&str], digests: &[&str], size: i64) -> ImageSummary {
        ImageSummary {
            id: id.into(),
            repo_tags: Some(tags.iter().map(|s| s.to_string()).collect()),
            repo_digests: Some(digests.iter().map(|s| s.to_string()).collect()),
            size,
            created: chrono::Utc::now().timestamp() - 3 * 60,
            containers: -1,
            shared_size: -1,
            ..Default::default()
        }
    }

    const ID: &str = "sha256:607ee26ba8e1c5e8b0f5a1d1e0c1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3";
    const DIGEST: &str = "sha256:834f4b2b3c6b0c1a5e1bd0b5a5e6b0f7d6a5e5c2c8b5f3f1e0d2a9c5b1e7f3a2";

    #[test]
    fn images_table_like_docker() {
        let list = vec![
            summary(
                ID,
                &["busybox:latest", "127.0.0.1:5000/flow-b:v1"],
                &[],
                1_984_241,
            ),
            summary(
                "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                &[],
                &[],
                4_260,
            ),
        ];
        let rows = image_rows(&list, true, false);
        let text = render(IMAGES_TABLE, &images_header(), &rows).unwrap();
        assert_eq!(
            text,
            "\
REPOSITORY              TAG       IMAGE ID       CREATED         SIZE
busybox                 latest    607ee26ba8e1   3 minutes ago   1.98MB
127.0.0.1:5000/flow-b   v1        607ee26ba8e1   3 minutes ago   1.98MB
<none>                  <none>    aaaaaaaaaaaa   3 minutes ago   4.26kB
"
        );
        let quiet = render(QUIET_FORMAT, &images_header(), &rows).unwrap();
        assert_eq!(quiet, "607ee26ba8e1\n607ee26ba8e1\naaaaaaaaaaaa\n");
        let full = image_rows(&list, false, false);
        assert_eq!(full[0].get("ID").unwrap().as_str(), Some(ID));
    }

    #[test]
    fn digests_rows() {
        let list = vec![summary(
            ID,
            &["busybox:latest"],
            &[&format!("busybox@{DIGEST}"), &format!("other/x@{DIGEST}")],
            10,
        )];
        let rows = image_rows(&list, true, true);
        let cols: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| {
                let g = |k: &str| r.get(k).unwrap().as_str().unwrap().to_string();
                (g("Repository"), g("Tag"), g("Digest"))
            })
            .collect();
        assert_eq!(
            cols,
            vec![
                ("busybox".into(), "latest".into(), DIGEST.into()),
                ("other/x".into(), "<none>".into(), DIGEST.into()),
            ]
        );
        let rows = image_rows(&list, true, false);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].get("Digest").unwrap().as_str(), Some(""));
        assert_eq!(images_format(None, false, true), IMAGES_TABLE_DIGESTS);
        assert_eq!(
            images_format(Some("table {{.ID}}"), false, true),
            "table {{.ID}}\t{{.Digest}}"
        );
        assert_eq!(images_format(Some("{{.Tag}}"), true, false), QUIET_FORMAT);
    }

    #[test]
    fn go_time_strings_of_rfc3339() {
        assert_eq!(
            go_time_rfc3339("2026-12-07T15:08:48.141629251Z"),
            "2026-12-07 15:08:48.141629251 +0000 UTC"
        );
        assert_eq!(
            go_time_rfc3339("2026-12-07T15:08:48.1200Z"),
            "2026-12-07 15:08:48.12 +0000 UTC"
        );
        assert_eq!(
            go_time_rfc3339("2026-12-07T16:08:48+01:00"),
            "2026-12-07 16:08:48 +0100 +0100"
        );
        assert_eq!(go_time_rfc3339(""), "0001-01-01 00:00:00 +0000 UTC");
    }

    #[test]
    fn history_rows() {
        let h = HistoryItem {
            id: "<missing>".into(),
            created: chrono::Utc::now().timestamp() - 2 * 3600,
            created_by:
                "/bin/sh -c #(nop) ADD file:1234567890abcdef in / \t with tabs and more text".into(),
            size: 4_260,
            comment: "c".into(),
            ..Default::default()
        };
        let row = history_row(&h, true, true);
        assert_eq!(row.get("ID").unwrap().as_str(), Some("<missing>"));
        assert_eq!(
            row.get("CreatedSince").unwrap().as_str(),
            Some("2 hours ago")
        );
        assert_eq!(
            row.get("CreatedBy").unwrap().as_str(),
            Some("/bin/sh -c #(nop) ADD file:1234567890abcdef …")
        );
        assert_eq!(row.get("Size").unwrap().as_str(), Some("4.26kB"));
        let raw = history_row(&h, false, false);
        assert_eq!(raw.get("Size").unwrap().as_str(), Some("4260"));
        assert!(raw
            .get("CreatedBy")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("  with tabs"));
        let old = HistoryItem { created: 0, ..h };
        assert_eq!(
            history_row(&old, true, true)
                .get("CreatedSince")
                .unwrap()
                .as_str(),
            Some("N/A")
        );
    }
}
