//! `ps` / `container ls`: `GET /containers/json`, printed with docker's
//! container table (CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS,
//! NAMES) or a `--format` template.

use berth_api::container::{ContainerSummary, PortSummary};
use berth_api::Reference;
use clap::Args;

use super::{filters_json, out, parse_filter, CmdResult, Ctx};
use crate::client::Query;
use crate::format::table::{ellipsis, go_quote, render, truncate_id, QUIET_FORMAT};
use crate::format::template::{Template, Value};
use crate::format::units::{human_size_with_precision, since};

/// `berth ps`.
#[derive(Debug, Clone, Args)]
#[command(about = "List containers", override_usage = "berth ps [OPTIONS]")]
pub(crate) struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    pub(crate) filter: Vec<(String, String)>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "int", default_value_t = -1, allow_hyphen_values = true, value_parser = super::parse_go_int)]
    pub(crate) last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub(crate) latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = super::parse_go_bool, action = clap::ArgAction::Set)]
    pub(crate) size: Option<bool>,
}

const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub(crate) fn header() -> Value {
    Value::object([
        ("Command", Value::str("COMMAND")),
        ("CreatedAt", Value::str("CREATED AT")),
        ("ID", Value::str("CONTAINER ID")),
        ("Image", Value::str("IMAGE")),
        ("Label", Value::str("LABEL")),
        ("Labels", Value::str("LABELS")),
        ("LocalVolumes", Value::str("LOCAL VOLUMES")),
        ("Mounts", Value::str("MOUNTS")),
        ("Names", Value::str("NAMES")),
        ("Networks", Value::str("NETWORKS")),
        ("Platform", Value::str("PLATFORM")),
        ("Ports", Value::str("PORTS")),
        ("RunningFor", Value::str("CREATED")),
        ("Size", Value::str("SIZE")),
        ("State", Value::str("STATE")),
        ("Status", Value::str("STATUS")),
    ])
}

/// docker's `raw` container format (also used by `system df -v`).
pub(crate) fn container_raw_format(quiet: bool, size: bool) -> String {
    if quiet {
        return "container_id: {{.ID}}".into();
    }
    let mut f = String::from(
        "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\n\
         state: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\n\
         labels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n",
    );
    if size {
        f.push_str("size: {{.Size}}\n");
    }
    f
}

/// docker's `NewContainerFormat`.
fn ps_format(format: Option<&str>, quiet: bool, size: bool) -> String {
    match format.unwrap_or("") {
        "" | "table" if quiet => QUIET_FORMAT.into(),
        "" | "table" if size => format!("{PS_TABLE}\t{{{{.Size}}}}"),
        "" | "table" => PS_TABLE.into(),
        "raw" => container_raw_format(quiet, size),
        _ if quiet => QUIET_FORMAT.into(),
        custom => custom.into(),
    }
}

/// The IMAGE column: the short ID when the container was made from an ID,
/// the familiar name otherwise (digests dropped), as docker prints it.
fn image_column(c: &ContainerSummary, trunc: bool) -> String {
    if c.image.is_empty() {
        return "<no image>".into();
    }
    if trunc {
        if truncate_id(&c.image_id) == truncate_id(&c.image) {
            return truncate_id(&c.image);
        }
        if let Ok(r) = Reference::parse_normalized(&c.image) {
            let bare = r.without_tag_or_digest();
            return match r.tag() {
                Some(t) => bare
                    .with_tag(t)
                    .map(|x| x.familiar_string())
                    .unwrap_or_else(|_| c.image.clone()),
                None => bare.familiar_string(),
            };
        }
    }
    c.image.clone()
}

/// docker's `DisplayablePorts`: consecutive ports grouped into ranges,
/// published ports as `0.0.0.0:8080->80/tcp`.
pub(crate) fn displayable_ports(ports: &[PortSummary]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        (
            a.private_port,
            a.ip.as_deref().unwrap_or(""),
            a.public_port.unwrap_or(0),
            a.kind.as_str(),
        )
            .cmp(&(
                b.private_port,
                b.ip.as_deref().unwrap_or(""),
                b.public_port.unwrap_or(0),
                b.kind.as_str(),
            ))
    });
    let join_host = |ip: &str, port: &str| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    let form = |key: &str, first: u16, last: u16| {
        let (ip, kind) = match key.rsplit_once('/') {
            Some((ip, kind)) => (ip, kind),
            None => ("", key),
        };
        let mut group = first.to_string();
        if first != last {
            group = format!("{group}-{last}");
        }
        if !ip.is_empty() {
            group = format!("{}->{group}", join_host(ip, &group));
        }
        format!("{group}/{kind}")
    };
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in &ports {
        let current = p.private_port;
        let mut key = p.kind.clone();
        if let Some(ip) = p.ip.as_deref().filter(|ip| !ip.is_empty()) {
            let public = p.public_port.unwrap_or(0);
            if public != current {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join_host(ip, &public.to_string()),
                    p.private_port,
                    p.kind
                ));
                continue;
            }
            key = format!("{ip}/{}", p.kind);
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, current, current)),
            Some(g) if current == g.2.wrapping_add(1) => g.2 = current,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                g.1 = current;
                g.2 = current;
            }
        }
    }
    for (key, first, last) in &groups {
        result.push(form(key, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

/// One row of `ps`, with the fields of docker's `ContainerContext`.
pub(crate) fn container_row(c: &ContainerSummary, trunc: bool) -> Value {
    let mut names: Vec<String> = c
        .names
        .iter()
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
        .collect();
    if trunc {
        if let Some(n) = names.iter().find(|n| !n.contains('/')) {
            names = vec![n.clone()];
        }
    }
    let command = if trunc {
        ellipsis(&c.command, 20)
    } else {
        c.command.clone()
    };
    let labels_text = {
        let mut l: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        l.sort();
        l.join(",")
    };
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .map(|m| {
            let name = m
                .get("Name")
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty());
            let name = name
                .or_else(|| m.get("Source").and_then(|v| v.as_str()))
                .unwrap_or("")
                .to_string();
            if trunc {
                ellipsis(&name, 15)
            } else {
                name
            }
        })
        .collect();
    let local_volumes = c
        .mounts
        .iter()
        .filter(|m| m.get("Driver").and_then(|v| v.as_str()) == Some("local"))
        .count();
    let networks: Vec<String> = c
        .network_settings
        .get("Networks")
        .and_then(|n| n.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let size = {
        let srw = human_size_with_precision(c.size_rw.unwrap_or(0) as f64, 3);
        match c.size_root_fs.filter(|&s| s > 0) {
            Some(v) => format!("{srw} (virtual {})", human_size_with_precision(v as f64, 3)),
            None => srw,
        }
    };
    let label_map = Value::Object(
        c.labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::str(v.as_str())))
            .collect(),
    );
    let fields = [
        ("Command", Value::String(go_quote(&command))),
        (
            "CreatedAt",
            Value::String(super::images::go_time_string(c.created)),
        ),
        (
            "ID",
            Value::String(if trunc {
                truncate_id(&c.id)
            } else {
                c.id.clone()
            }),
        ),
        ("Image", Value::String(image_column(c, trunc))),
        ("Labels", Value::String(labels_text)),
        ("LocalVolumes", Value::String(local_volumes.to_string())),
        ("Mounts", Value::String(mounts.join(","))),
        ("Names", Value::String(names.join(","))),
        ("Networks", Value::String(networks.join(","))),
        ("Platform", Value::Null),
        ("Ports", Value::String(displayable_ports(&c.ports))),
        ("RunningFor", Value::String(since(c.created))),
        ("Size", Value::String(size)),
        ("State", Value::String(c.state.clone())),
        ("Status", Value::String(c.status.clone())),
    ];
    Value::context(
        "*formatter.ContainerContext",
        fields,
        [("Label", label_map)],
    )
}

/// The query `ps` sends.
pub(crate) fn ps_query(args: &PsArgs) -> Query {
    let mut limit = args.last;
    if args.latest && limit == -1 {
        limit = 1;
    }
    let mut size = args.size.unwrap_or(false);
    if !args.quiet && args.size.is_none() {
        if let Some(f) = &args.format {
            size = f.contains(".Size");
        }
    }
    Query::new()
        .add_if(args.all, "all", "1")
        .add_if(limit > 0, "limit", limit.to_string())
        .add_if(size, "size", "1")
        .add_if(
            !args.filter.is_empty(),
            "filters",
            filters_json(&args.filter),
        )
}

/// `berth ps`.
pub(crate) async fn ps(ctx: &Ctx, args: &PsArgs) -> CmdResult {
    if args.quiet && args.format.as_deref().is_some_and(|f| !f.is_empty()) {
        eprintln!("WARNING: Ignoring custom format, because both --format and --quiet are set.");
    }
    // docker uses config.json's psFormat when no --format (and no -q) is given.
    let with_default;
    let args = if args.format.is_none() && !args.quiet {
        with_default = PsArgs {
            format: super::registry::config_format("psFormat"),
            ..args.clone()
        };
        &with_default
    } else {
        args
    };
    if let Some(f) = &args.format {
        // docker checks the template on an empty row before any request.
        let t = Template::parse(f).map_err(|e| anyhow::anyhow!("failed to parse template: {e}"))?;
        t.execute(&container_row(&ContainerSummary::default(), true))
            .map_err(|e| anyhow::anyhow!("failed to execute template: {e}"))?;
    }
    let list: Vec<ContainerSummary> = ctx
        .client
        .get_json("/containers/json", &ps_query(args))
        .await?;
    let trunc = !args.no_trunc;
    let rows: Vec<Value> = list.iter().map(|c| container_row(c, trunc)).collect();
    let format = ps_format(
        args.format.as_deref(),
        args.quiet,
        args.size.unwrap_or(false),
    );
    out(&render(&format, &header(), &rows)?)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: PsArgs,
    }

    fn args(a: &[&str]) -> PsArgs {
        T::try_parse_from(std::iter::once("ps").chain(a.iter().copied()))
            .unwrap()
            .a
    }

    fn summary() -> ContainerSummary {
        ContainerSummary {
            id: "4f66ad9a0b2e6f5a1f1c2e3d4c5b6a79881726354453627180a9b8c7d6e5f4a3".into(),
            names: vec!["/flow-p".into()],
            image: "busybox".into(),
            image_id: "sha256:607ee26ba8e1c5e8b0f5a1d1e0c1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3"
                .into(),
            command: "sh -c 'while true; do echo hi; sleep 1; done'".into(),
            created: chrono::Utc::now().timestamp() - 5,
            state: "exited".into(),
            status: "Exited (0) 1 second ago".into(),
            ..Default::default()
        }
    }

    #[test]
    fn table_like_docker() {
        let rows = vec![container_row(&summary(), true)];
        let text = render(&ps_format(None, false, false), &header(), &rows).unwrap();
        assert_eq!(
            text,
            "\
CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS                    PORTS     NAMES
4f66ad9a0b2e   busybox   \"sh -c 'while true; …\"   5 seconds ago   Exited (0) 1 second ago             flow-p
"
        );
        let full = container_row(&summary(), false);
        assert_eq!(
            full.get("Command").unwrap().as_str(),
            Some("\"sh -c 'while true; do echo hi; sleep 1; done'\"")
        );
        assert_eq!(
            render(QUIET_FORMAT, &header(), &rows).unwrap(),
            "4f66ad9a0b2e\n"
        );
    }

    #[test]
    fn image_column_rules() {
        let mut c = summary();
        c.image = "docker.io/library/busybox:latest".into();
        assert_eq!(image_column(&c, true), "busybox:latest");
        c.image = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(image_column(&c, true), "busybox");
        assert_eq!(image_column(&c, false), c.image);
        c.image = c.image_id.clone();
        assert_eq!(image_column(&c, true), "607ee26ba8e1");
        c.image = String::new();
        assert_eq!(image_column(&c, true), "<no image>");
    }

    #[test]
    fn names_ports_labels() {
        let mut c = summary();
        c.names = vec!["/other/link".into(), "/web".into()];
        c.labels = [
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
        ]
        .into();
        let row = container_row(&c, true);
        assert_eq!(row.get("Names").unwrap().as_str(), Some("web"));
        assert_eq!(row.get("Labels").unwrap().as_str(), Some("a=1,b=2"));
        let t = Template::parse(r#"{{.Label "a"}}"#).unwrap();
        assert_eq!(t.execute(&row).unwrap(), "1");
        assert_eq!(
            container_row(&c, false).get("Names").unwrap().as_str(),
            Some("other/link,web")
        );
        let p = |ip: Option<&str>, private: u16, public: Option<u16>| PortSummary {
            ip: ip.map(str::to_string),
            private_port: private,
            public_port: public,
            kind: "tcp".into(),
        };
        let ports = vec![
            p(None, 9988, None),
            p(Some("0.0.0.0"), 80, Some(9090)),
            p(None, 9989, None),
            p(Some("::"), 80, Some(9090)),
            p(Some("0.0.0.0"), 443, Some(443)),
        ];
        assert_eq!(
            displayable_ports(&ports),
            "0.0.0.0:443->443/tcp, 9988-9989/tcp, 0.0.0.0:9090->80/tcp, [::]:9090->80/tcp"
        );
    }

    #[test]
    fn queries() {
        assert_eq!(ps_query(&args(&[])).encode(), "");
        assert_eq!(ps_query(&args(&["-a", "-l"])).encode(), "all=1&limit=1");
        assert_eq!(
            ps_query(&args(&["-n", "3", "-s"])).encode(),
            "limit=3&size=1"
        );
        assert_eq!(
            ps_query(&args(&["-f", "status=exited", "--format", "{{.Size}}"])).encode(),
            "filters=%7B%22status%22%3A%7B%22exited%22%3Atrue%7D%7D&size=1"
        );
        assert_eq!(
            ps_format(None, false, true),
            format!("{PS_TABLE}\t{{{{.Size}}}}")
        );
    }
}
