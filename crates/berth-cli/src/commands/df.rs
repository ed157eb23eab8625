//! `system df`: docker's `DiskUsageContext`. The summary is one row per
//! kind (images, containers, local volumes, build cache); `-v` prints the
//! images, containers, volumes and build cache records themselves, in
//! four tables, or runs a custom template once on all four lists.

use berth_api::container::ContainerSummary;
use berth_api::image::ImageSummary;
use berth_api::Reference;
use clap::Args;
use serde_json::Value as Json;

use super::images::{go_time_rfc3339, image_row, images_header};
use super::{out, CmdResult, Ctx};
use crate::client::Query;
use crate::format::table::{render, truncate_id};
use crate::format::template::{Template, Value};
use crate::format::units::{human_duration, human_size, human_size_with_precision};

/// `berth system df`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Show berth disk usage",
    override_usage = "berth system df [OPTIONS]"
)]
pub(crate) struct DfArgs {
    /// Format output using a custom template:
    /// 'table':            Print output in table format with column headers (default)
    /// 'table TEMPLATE':   Print output in table format using the given Go template
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(long, value_name = "string", verbatim_doc_comment)]
    pub(crate) format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,
}

const SUMMARY_TABLE: &str =
    "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const SUMMARY_RAW: &str =
    "type: {{.Type}}\ntotal: {{.TotalCount}}\nactive: {{.Active}}\nsize: {{.Size}}\nreclaimable: {{.Reclaimable}}\n";
const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const CONTAINERS_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const VOLUMES_TABLE: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const BUILD_CACHE_TABLE: &str = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";

/// docker's `raw` build cache format.
const BUILD_CACHE_RAW: &str = "build_cache_id: {{.ID}}\nparent_id: {{.Parent}}\nbuild_cache_type: {{.CacheType}}\n\
    description: {{.Description}}\ncreated_at: {{.CreatedAt}}\ncreated_since: {{.CreatedSince}}\n\
    last_used_at: {{.LastUsedAt}}\nlast_used_since: {{.LastUsedSince}}\nusage_count: {{.UsageCount}}\n\
    in_use: {{.InUse}}\nshared: {{.Shared}}\n";

/// docker's `NewDiskUsageFormat(raw, verbose)`: each list in its own raw
/// format, each record after a `type:` line.
fn verbose_raw_format() -> String {
    format!(
        "{{{{range .Images}}}}type: Image\n{}\n{{{{end -}}}}\n\
         {{{{range .Containers}}}}type: Container\n{}\n{{{{end -}}}}\n\
         {{{{range .Volumes}}}}type: Volume\n{}\n{{{{end -}}}}\n\
         {{{{range .BuildCache}}}}type: Build Cache\n{}\n{{{{end -}}}}",
        super::images::image_raw_format(false, true),
        super::ps::container_raw_format(false, true),
        "name: {{.Name}}\ndriver: {{.Driver}}\n",
        BUILD_CACHE_RAW,
    )
}

/// `GET /system/df`, as the CLI reads it.
#[derive(Debug, Default)]
struct DiskUsage {
    layers_size: i64,
    images: Vec<ImageSummary>,
    containers: Vec<ContainerSummary>,
    volumes: Vec<Json>,
    build_cache: Vec<Json>,
}

impl DiskUsage {
    fn from_json(v: &Json) -> DiskUsage {
        let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
        fn typed<T: serde::de::DeserializeOwned>(v: &Json, k: &str) -> Vec<T> {
            v[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| serde_json::from_value(x.clone()).ok())
                .collect()
        }
        DiskUsage {
            layers_size: v["LayersSize"].as_i64().unwrap_or(0),
            images: typed(v, "Images"),
            containers: typed(v, "Containers"),
            volumes: list("Volumes"),
            build_cache: list("BuildCache"),
        }
    }

    /// docker's CLI counts the build cache as its records not shared with
    /// others (the daemon's `BuilderSize` is not used).
    fn builder_size(&self) -> i64 {
        self.build_cache
            .iter()
            .filter(|b| !flag(b, "Shared"))
            .map(|b| int(b, "Size"))
            .sum()
    }
}

fn int(v: &Json, k: &str) -> i64 {
    v[k].as_i64().unwrap_or(0)
}

fn flag(v: &Json, k: &str) -> bool {
    v[k].as_bool().unwrap_or(false)
}

/// `SIZE (NN%)` of the reclaimable column.
fn reclaimable(r: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", human_size(r as f64), r * 100 / total)
    } else {
        human_size(r as f64)
    }
}

fn summary_row(
    type_name: &'static str,
    kind: &str,
    total: usize,
    active: usize,
    size: i64,
    rec: String,
) -> Value {
    // Fields in JSON's (alphabetical) order, as docker's marshalJSON.
    Value::context(
        type_name,
        [
            ("Active", Value::str(active.to_string())),
            ("Reclaimable", Value::str(rec)),
            ("Size", Value::str(human_size(size as f64))),
            ("TotalCount", Value::str(total.to_string())),
            ("Type", Value::str(kind)),
        ],
        [],
    )
}

/// The four summary rows (docker's `diskUsage*Context`s).
fn summary_rows(du: &DiskUsage) -> Vec<Value> {
    let images = &du.images;
    let used: i64 = images
        .iter()
        .filter(|i| i.containers != 0 && i.size != -1 && i.shared_size != -1)
        .map(|i| i.size - i.shared_size)
        .sum();
    let img = summary_row(
        "*formatter.diskUsageImagesContext",
        "Images",
        images.len(),
        images.iter().filter(|i| i.containers > 0).count(),
        du.layers_size,
        reclaimable(du.layers_size - used, du.layers_size),
    );
    let active =
        |c: &ContainerSummary| matches!(c.state.as_str(), "running" | "paused" | "restarting");
    let size_rw = |c: &ContainerSummary| c.size_rw.unwrap_or(0);
    let c_total: i64 = du.containers.iter().map(size_rw).sum();
    let c_reclaim: i64 = du
        .containers
        .iter()
        .filter(|c| !active(c))
        .map(size_rw)
        .sum();
    let ctr = summary_row(
        "*formatter.diskUsageContainersContext",
        "Containers",
        du.containers.len(),
        du.containers.iter().filter(|c| active(c)).count(),
        c_total,
        reclaimable(c_reclaim, c_total),
    );
    let usage = |v: &Json, k: &str| v["UsageData"][k].as_i64().unwrap_or(0);
    let sized = || du.volumes.iter().filter(|v| usage(v, "Size") != -1);
    let v_total: i64 = sized().map(|v| usage(v, "Size")).sum();
    let v_reclaim: i64 = sized()
        .filter(|v| usage(v, "RefCount") == 0)
        .map(|v| usage(v, "Size"))
        .sum();
    let vol = summary_row(
        "*formatter.diskUsageVolumesContext",
        "Local Volumes",
        du.volumes.len(),
        du.volumes
            .iter()
            .filter(|v| usage(v, "RefCount") > 0)
            .count(),
        v_total,
        reclaimable(v_reclaim, v_total),
    );
    let builder = du.builder_size();
    let in_use: i64 = du
        .build_cache
        .iter()
        .filter(|b| flag(b, "InUse") && !flag(b, "Shared"))
        .map(|b| int(b, "Size"))
        .sum();
    let cache = summary_row(
        "*formatter.diskUsageBuilderContext",
        "Build Cache",
        du.build_cache.len(),
        du.build_cache.iter().filter(|b| flag(b, "InUse")).count(),
        builder,
        human_size((builder - in_use) as f64),
    );
    vec![img, ctr, vol, cache]
}

fn summary_header() -> Value {
    Value::object([
        ("Active", Value::str("ACTIVE")),
        ("Reclaimable", Value::str("RECLAIMABLE")),
        ("Size", Value::str("SIZE")),
        ("TotalCount", Value::str("TOTAL")),
        ("Type", Value::str("TYPE")),
    ])
}

/// docker's `isDangling`.
fn dangling(i: &ImageSummary) -> bool {
    let tags = i.repo_tags.as_deref().unwrap_or_default();
    let digests = i.repo_digests.as_deref().unwrap_or_default();
    (tags.is_empty() && digests.is_empty())
        || (tags == ["<none>:<none>"] && digests == ["<none>@<none>"])
}

/// An image row of `df -v`: only its first tag is shown; an image whose
/// first reference cannot be read is left out, as docker does.
fn image_rows(du: &DiskUsage, trunc: bool) -> Vec<Value> {
    let mut rows = Vec::new();
    for i in &du.images {
        let (mut repo, mut tag) = ("<none>".to_string(), "<none>".to_string());
        let first = i.repo_tags.as_deref().unwrap_or_default().first();
        if let Some(t) = first.filter(|_| !dangling(i)) {
            let Ok(r) = Reference::parse_normalized(t) else {
                continue;
            };
            if let Some(tg) = r.tag() {
                repo = r.familiar_name();
                tag = tg.to_string();
            }
        }
        rows.push(image_row(i, trunc, repo, tag, String::new()));
    }
    rows
}

/// Container rows of `df -v`: the virtual size is not shown.
fn container_rows(du: &DiskUsage, trunc: bool) -> Vec<Value> {
    du.containers
        .iter()
        .map(|c| {
            let c = ContainerSummary {
                size_root_fs: None,
                ..c.clone()
            };
            super::ps::container_row(&c, trunc)
        })
        .collect()
}

/// `time.Now().Sub(t)` as docker's "… ago" columns print it.
fn ago(rfc3339: &str) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap_or_default();
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_milliseconds() as f64;
    format!("{} ago", human_duration(secs / 1000.0))
}

/// docker's `buildCacheContext`.
fn build_cache_row(b: &Json, trunc: bool) -> Value {
    let s = |k: &str| b[k].as_str().unwrap_or("").to_string();
    let mut id = if trunc {
        truncate_id(&s("ID"))
    } else {
        s("ID")
    };
    if flag(b, "InUse") {
        id.push('*');
    }
    let parents: Vec<&str> = b["Parents"]
        .as_array()
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let parent = if parents.is_empty() {
        s("Parent")
    } else {
        parents.join(", ")
    };
    let parent = if trunc { truncate_id(&parent) } else { parent };
    let description = if trunc {
        crate::format::table::ellipsis(&s("Description"), 45)
    } else {
        s("Description")
    };
    let last_used = b["LastUsedAt"].as_str();
    Value::context(
        "*formatter.buildCacheContext",
        [
            ("CacheType", Value::str(s("Type"))),
            ("CreatedAt", Value::str(go_time_rfc3339(&s("CreatedAt")))),
            ("CreatedSince", Value::str(ago(&s("CreatedAt")))),
            ("Description", Value::str(description)),
            ("ID", Value::str(id)),
            ("InUse", Value::str(flag(b, "InUse").to_string())),
            (
                "LastUsedAt",
                Value::str(last_used.map(go_time_rfc3339).unwrap_or_default()),
            ),
            (
                "LastUsedSince",
                Value::str(last_used.map(ago).unwrap_or_default()),
            ),
            ("Parent", Value::str(parent)),
            ("Shared", Value::str(flag(b, "Shared").to_string())),
            (
                "Size",
                Value::str(human_size_with_precision(int(b, "Size") as f64, 3)),
            ),
            ("UsageCount", Value::str(int(b, "UsageCount").to_string())),
        ],
        [],
    )
}

fn build_cache_header() -> Value {
    Value::object([
        ("CacheType", Value::str("CACHE TYPE")),
        ("CreatedAt", Value::str("CREATED AT")),
        ("CreatedSince", Value::str("CREATED")),
        ("Description", Value::str("DESCRIPTION")),
        ("ID", Value::str("CACHE ID")),
        ("InUse", Value::str("IN USE")),
        ("LastUsedAt", Value::str("LAST USED AT")),
        ("LastUsedSince", Value::str("LAST USED")),
        ("Parent", Value::str("PARENT")),
        ("Shared", Value::str("SHARED")),
        ("Size", Value::str("SIZE")),
        ("UsageCount", Value::str("USAGE")),
    ])
}

/// docker's `buildCacheSort`: most recently used first, never-used last,
/// ties in the daemon's order.
fn sorted_build_cache(records: &[Json]) -> Vec<&Json> {
    let mut v: Vec<&Json> = records.iter().collect();
    let used = |b: &Json| {
        b["LastUsedAt"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    v.sort_by(|a, b| match (used(a), used(b)) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => y.cmp(&x),
    });
    v
}

/// The `df -v` text: four tables with docker's section titles.
fn verbose_tables(du: &DiskUsage) -> Result<String, crate::format::template::TemplateError> {
    let mut text = String::from("Images space usage:\n\n");
    text += &render(IMAGES_TABLE, &images_header(), &image_rows(du, true))?;
    text += "\nContainers space usage:\n\n";
    text += &render(
        CONTAINERS_TABLE,
        &super::ps::header(),
        &container_rows(du, true),
    )?;
    text += "\nLocal Volumes space usage:\n\n";
    let volumes: Vec<Value> = du.volumes.iter().map(super::volume::row).collect();
    text += &render(VOLUMES_TABLE, &super::volume::header(), &volumes)?;
    text += &format!(
        "\nBuild cache usage: {}\n\n",
        human_size(du.builder_size() as f64)
    );
    let cache: Vec<Value> = sorted_build_cache(&du.build_cache)
        .into_iter()
        .map(|b| build_cache_row(b, true))
        .collect();
    text += &render(BUILD_CACHE_TABLE, &build_cache_header(), &cache)?;
    Ok(text)
}

/// `df -v` with a custom template: run once on all four lists (docker's
/// `diskUsageContext`), with nothing added after it.
fn verbose_template(du: &DiskUsage, format: &str) -> anyhow::Result<String> {
    let trunc = format.starts_with("table");
    let raw;
    let body = match format {
        "json" => "{{json .}}",
        "raw" => {
            raw = verbose_raw_format();
            &raw
        }
        f => f.strip_prefix("table").unwrap_or(f).trim_matches(' '),
    };
    let body = body.replace("\\t", "\t").replace("\\n", "\n");
    let t = Template::parse(&body).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
    let cache = sorted_build_cache(&du.build_cache)
        .into_iter()
        .map(|b| build_cache_row(b, trunc))
        .collect();
    let data = Value::context(
        "*formatter.diskUsageContext",
        [
            ("Images", Value::Array(image_rows(du, trunc))),
            ("Containers", Value::Array(container_rows(du, trunc))),
            (
                "Volumes",
                Value::Array(du.volumes.iter().map(super::volume::row).collect()),
            ),
            ("BuildCache", Value::Array(cache)),
        ],
        [],
    );
    Ok(t.execute(&data)?)
}

/// `berth system df`.
pub(crate) async fn df(ctx: &Ctx, a: &DfArgs) -> CmdResult {
    let format = a
        .format
        .as_deref()
        .filter(|f| !f.is_empty())
        .unwrap_or("table");
    let v: Json = ctx.client.get_json("/system/df", &Query::new()).await?;
    let du = DiskUsage::from_json(&v);
    let text = match (a.verbose, format) {
        (true, "table") => verbose_tables(&du)?,
        (true, f) => verbose_template(&du, f)?,
        (false, f) => {
            let f = match f {
                "table" => SUMMARY_TABLE,
                "raw" => SUMMARY_RAW,
                other => other,
            };
            render(f, &summary_header(), &summary_rows(&du))?
        }
    };
    out(&text)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> DiskUsage {
        DiskUsage::from_json(&serde_json::json!({
            "LayersSize": 4_000_000,
            "Images": [
                {"Id": "sha256:f4e77d5fa347ef7006ccd4f257172880f216833b950309c66314fcac5de1258a",
                 "RepoTags": ["busybox:latest", "busybox:1"], "RepoDigests": [],
                 "Created": 0, "Size": 1_982_858, "SharedSize": 0, "Containers": 1},
                {"Id": "sha256:0123456789ab0123456789ab0123456789ab0123456789ab0123456789abcdef",
                 "RepoTags": [], "RepoDigests": [], "Created": 0, "Size": 2_000_000,
                 "SharedSize": 0, "Containers": 0}
            ],
            "Containers": [
                {"Id": "0cc7605b09bbaf61973ad93febcf573a07066a66638ea979f2d638eb3f57448d",
                 "Names": ["/web"], "Image": "busybox", "Command": "sleep 1000", "Created": 0,
                 "State": "running", "Status": "Up 2 minutes", "SizeRw": 100, "SizeRootFs": 1_982_958,
                 "Labels": {}, "Mounts": [{"Type": "volume", "Name": "v1", "Driver": "local"}]},
                {"Id": "04637b11ab93133bfd16b0872ac57b50123d143a30e7ff3c2ef9ad81040a5efb",
                 "Names": ["/c3"], "Image": "busybox", "Command": "true", "Created": 0,
                 "State": "exited", "Status": "Exited (0) 1 minute ago", "SizeRw": 300, "Labels": {}}
            ],
            "Volumes": [
                {"Name": "v1", "Driver": "local", "Scope": "local", "Mountpoint": "/v1",
                 "UsageData": {"RefCount": 1, "Size": 10}},
                {"Name": "v2", "Driver": "local", "Scope": "local", "Mountpoint": "/v2",
                 "UsageData": {"RefCount": 0, "Size": 30}}
            ],
            "BuildCache": [
                {"ID": "aaaaaaaaaaaaaaaaaaaaaaaaa", "Type": "regular", "Size": 1000, "InUse": false,
                 "Shared": false, "UsageCount": 2, "CreatedAt": "2020-01-01T00:00:00Z",
                 "LastUsedAt": "2020-01-02T00:00:00Z"},
                {"ID": "bbbbbbbbbbbbbbbbbbbbbbbbb", "Type": "source.local", "Size": 500, "InUse": true,
                 "Shared": false, "UsageCount": 1, "CreatedAt": "2020-01-01T00:00:00Z"}
            ]
        }))
    }

    #[test]
    fn summary_like_docker() {
        let du = usage();
        let text = render(SUMMARY_TABLE, &summary_header(), &summary_rows(&du)).unwrap();
        assert_eq!(
            text,
            "\
TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE
Images          2         1         4MB       2.017MB (50%)
Containers      2         1         400B      300B (75%)
Local Volumes   2         1         40B       30B (75%)
Build Cache     2         1         1.5kB     1kB
"
        );
        let json = render("json", &summary_header(), &summary_rows(&du)[1..2]).unwrap();
        assert_eq!(
            json,
            "{\"Active\":\"1\",\"Reclaimable\":\"300B (75%)\",\"Size\":\"400B\",\"TotalCount\":\"2\",\"Type\":\"Containers\"}\n"
        );
        let err = render("{{.Nope}}", &summary_header(), &summary_rows(&du)).unwrap_err();
        assert!(
            err.0
                .ends_with("can't evaluate field Nope in type *formatter.diskUsageImagesContext"),
            "{err}"
        );
    }

    #[test]
    fn verbose_sections_like_docker() {
        let text = verbose_tables(&usage()).unwrap();
        let want_start = "\
Images space usage:

REPOSITORY   TAG       IMAGE ID       CREATED   ";
        assert!(text.starts_with(want_start), "{text}");
        assert!(
            text.contains("\nbusybox      latest    f4e77d5fa347   "),
            "{text}"
        );
        assert!(
            text.contains("<none>       <none>    0123456789ab"),
            "{text}"
        );
        assert!(
            text.contains("\nContainers space usage:\n\nCONTAINER ID   IMAGE     COMMAND        LOCAL VOLUMES   SIZE      CREATED"),
            "{text}"
        );
        assert!(
            text.contains("0cc7605b09bb   busybox   \"sleep 1000\"   1               100B "),
            "{text}"
        );
        // No virtual size in the container rows.
        assert!(!text.contains("virtual"), "{text}");
        assert!(
            text.contains(
                "\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\nv1            1         10B\nv2            0         30B\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\nBuild cache usage: 1.5kB\n\nCACHE ID        CACHE TYPE     SIZE      CREATED"
            ),
            "{text}"
        );
        // Most recently used first, never used last; in use marked with `*`.
        let a = text.find("aaaaaaaaaaaa ").unwrap();
        let b = text.find("bbbbbbbbbbbb*").unwrap();
        assert!(a < b, "{text}");
    }

    #[test]
    fn verbose_templates_run_once_on_all_lists() {
        let du = usage();
        assert_eq!(
            verbose_template(
                &du,
                "{{len .Images}} {{range .Volumes}}{{.Name}}:{{.Links}} {{end}}"
            )
            .unwrap(),
            "2 v1:1 v2:0 "
        );
        let json = verbose_template(&du, "json").unwrap();
        let v: Json = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["Images"][0]["ID"],
            "sha256:f4e77d5fa347ef7006ccd4f257172880f216833b950309c66314fcac5de1258a"
        );
        assert_eq!(v["Containers"][0]["Size"], "100B");
        assert_eq!(v["BuildCache"][1]["ID"], "bbbbbbbbbbbbbbbbbbbbbbbbb*");
        assert!(!json.ends_with('\n'));
    }
}
