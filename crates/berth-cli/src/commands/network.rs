//! `network create/ls/inspect/rm/prune/connect/disconnect`, as docker's
//! `cli/command/network` prints them.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::IpAddr;

use clap::{Args, Subcommand};
use serde_json::{json, Value as Json};

use super::images::go_time_rfc3339;
use super::inspect::Inspector;
use super::port::natural_cmp;
use super::{
    filters_json, joined, out, outln, parse_filter, requires_exact, requires_min, CmdResult, Ctx,
};
use crate::client::{path_escape, Query};
use crate::format::table::{render, QUIET_FORMAT};
use crate::format::template::{Template, Value};

/// `berth network COMMAND`.
#[derive(Debug, Subcommand)]
pub(crate) enum NetworkCmd {
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Create a network
    Create(CreateArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
}

/// `berth network create`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth network create [OPTIONS] NETWORK")]
pub(crate) struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, value_name = "string", default_value = "bridge")]
    pub(crate) driver: String,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub(crate) opt: Vec<String>,
    /// Set metadata on a network
    #[arg(long = "label", value_name = "list")]
    pub(crate) label: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub(crate) internal: bool,
    /// Enable manual container attachment
    #[arg(long)]
    pub(crate) attachable: bool,
    /// Enable or disable IPv6 address assignment
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = super::parse_go_bool, action = clap::ArgAction::Set)]
    pub(crate) ipv6: Option<bool>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_name = "strings")]
    pub(crate) subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, value_name = "strings")]
    pub(crate) gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "strings")]
    pub(crate) ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", value_name = "string", default_value = "default")]
    pub(crate) ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt", value_name = "map")]
    pub(crate) ipam_opt: Vec<String>,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address", value_name = "map")]
    pub(crate) aux_address: Vec<String>,
    /// Control the network's scope
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) scope: String,
    /// NETWORK
    #[arg(value_name = "NETWORK")]
    pub(crate) names: Vec<String>,
}

/// `berth network ls`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth network ls [OPTIONS]")]
pub(crate) struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    pub(crate) filter: Vec<(String, String)>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

/// `berth network inspect`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth network inspect [OPTIONS] NETWORK [NETWORK...]")]
pub(crate) struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,
    /// NETWORK [NETWORK...]
    #[arg(value_name = "NETWORK")]
    pub(crate) names: Vec<String>,
}

/// `berth network rm`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth network rm NETWORK [NETWORK...]")]
pub(crate) struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// NETWORK [NETWORK...]
    #[arg(value_name = "NETWORK")]
    pub(crate) names: Vec<String>,
}

/// `berth network prune`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth network prune [OPTIONS]")]
pub(crate) struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    pub(crate) filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
}

/// `berth network connect`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth network connect [OPTIONS] NETWORK CONTAINER")]
pub(crate) struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long, value_name = "strings")]
    pub(crate) alias: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt", value_name = "strings")]
    pub(crate) driver_opt: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long, value_name = "ip")]
    pub(crate) ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long, value_name = "ip")]
    pub(crate) ip6: Option<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    pub(crate) link: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long = "link-local-ip", value_name = "strings")]
    pub(crate) link_local_ip: Vec<String>,
    /// NETWORK CONTAINER
    #[arg(value_name = "NETWORK")]
    pub(crate) args: Vec<String>,
}

/// `berth network disconnect`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "berth network disconnect [OPTIONS] NETWORK CONTAINER")]
pub(crate) struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// NETWORK CONTAINER
    #[arg(value_name = "NETWORK")]
    pub(crate) args: Vec<String>,
}

/// Runs one `network` subcommand.
pub(crate) async fn network(ctx: &Ctx, cmd: &NetworkCmd) -> CmdResult {
    match cmd {
        NetworkCmd::Create(a) => create(ctx, a).await,
        NetworkCmd::Ls(a) => ls(ctx, a).await,
        NetworkCmd::Inspect(a) => inspect(ctx, a).await,
        NetworkCmd::Rm(a) => rm(ctx, a).await,
        NetworkCmd::Prune(a) => prune(ctx, a).await,
        NetworkCmd::Connect(a) => connect(ctx, a).await,
        NetworkCmd::Disconnect(a) => disconnect(ctx, a).await,
    }
}

/// `KEY=VALUE` list → map (docker's `MapOpts`).
fn map_opts(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (o.clone(), String::new()),
        })
        .collect()
}

/// Whether `ip` lies in `cidr` (only what `--gateway`/`--ip-range` need).
fn in_subnet(cidr: &str, ip: &str) -> Result<bool, String> {
    let (net, bits) = cidr
        .split_once('/')
        .ok_or_else(|| format!("invalid CIDR address: {cidr}"))?;
    let net: IpAddr = net
        .parse()
        .map_err(|_| format!("invalid CIDR address: {cidr}"))?;
    let bits: u32 = bits
        .parse()
        .map_err(|_| format!("invalid CIDR address: {cidr}"))?;
    let ip: IpAddr = ip
        .split('/')
        .next()
        .unwrap_or(ip)
        .parse()
        .map_err(|_| format!("invalid IP address: {ip}"))?;
    let to_u128 = |a: IpAddr| match a {
        IpAddr::V4(v) => (u32::from(v) as u128, 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    };
    let ((n, nw), (i, iw)) = (to_u128(net), to_u128(ip));
    if nw != iw || bits > nw {
        return Ok(false);
    }
    let shift = nw - bits;
    Ok(shift >= 128 || (n >> shift) == (i >> shift))
}

/// docker's `consolidateIpam`: each gateway and range goes with the
/// subnet that holds it.
fn ipam_config(a: &CreateArgs) -> Result<Vec<Json>, String> {
    if a.subnet.is_empty() && (!a.gateway.is_empty() || !a.ip_range.is_empty()) {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut out: Vec<(String, Option<String>, Option<String>)> =
        a.subnet.iter().map(|s| (s.clone(), None, None)).collect();
    for r in &a.ip_range {
        let mut matched = false;
        for s in out.iter_mut() {
            if in_subnet(&s.0, r)? {
                if s.2.is_some() {
                    return Err(format!(
                        "cannot configure multiple ranges ({r}, {}) on the same subnet ({})",
                        s.2.as_deref().unwrap_or(""),
                        s.0
                    ));
                }
                s.2 = Some(r.clone());
                matched = true;
            }
        }
        if !matched {
            return Err(format!("no matching subnet for range {r}"));
        }
    }
    for g in &a.gateway {
        let mut matched = false;
        for s in out.iter_mut() {
            if in_subnet(&s.0, g)? {
                if s.1.is_some() {
                    return Err(format!(
                        "cannot configure multiple gateways ({g}, {}) for the same subnet ({})",
                        s.1.as_deref().unwrap_or(""),
                        s.0
                    ));
                }
                s.1 = Some(g.clone());
                matched = true;
            }
        }
        if !matched {
            return Err(format!("no matching subnet for gateway {g}"));
        }
    }
    Ok(out
        .into_iter()
        .map(|(s, g, r)| {
            let mut o = json!({"Subnet": s});
            if let Some(r) = r {
                o["IPRange"] = json!(r);
            }
            if let Some(g) = g {
                o["Gateway"] = json!(g);
            }
            o
        })
        .collect())
}

async fn create(ctx: &Ctx, a: &CreateArgs) -> CmdResult {
    requires_exact("network create", "[OPTIONS] NETWORK", a.names.len(), 1)?;
    let config = ipam_config(a).map_err(|e| anyhow::anyhow!(e))?;
    let mut body = json!({
        "Name": a.names[0],
        "Driver": a.driver,
        "Scope": a.scope,
        "IPAM": {"Driver": a.ipam_driver, "Options": map_opts(&a.ipam_opt), "Config": config},
        "Internal": a.internal,
        "Attachable": a.attachable,
        "Ingress": false,
        "ConfigOnly": false,
        "ConfigFrom": null,
        "Options": map_opts(&a.opt),
        "Labels": map_opts(&a.label),
        "CheckDuplicate": true,
    });
    if let Some(v6) = a.ipv6 {
        body["EnableIPv6"] = json!(v6);
    }
    let resp: Json = ctx
        .client
        .post_json("/networks/create", &Query::new(), &body)
        .await?;
    let warning = resp["Warning"].as_str().unwrap_or("");
    if !warning.is_empty() {
        eprintln!("{warning}");
    }
    outln(resp["Id"].as_str().unwrap_or(""))?;
    Ok(0)
}

const LS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
/// docker's `raw` network format.
const LS_RAW: &str =
    "network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n";

fn header() -> Value {
    Value::object([
        ("CreatedAt", Value::str("CREATED AT")),
        ("Driver", Value::str("DRIVER")),
        ("ID", Value::str("NETWORK ID")),
        ("IPv4", Value::str("IPV4")),
        ("IPv6", Value::str("IPV6")),
        ("Internal", Value::str("INTERNAL")),
        ("Labels", Value::str("LABELS")),
        ("Name", Value::str("NAME")),
        ("Scope", Value::str("SCOPE")),
    ])
}

/// docker's `networkContext`: one row of `network ls`.
fn row(n: &Json, trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or("");
    let id = if trunc && id.len() > 12 {
        &id[..12]
    } else {
        id
    };
    let labels: BTreeMap<String, String> =
        serde_json::from_value(n["Labels"].clone()).unwrap_or_default();
    let labels_text = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let flag = |k: &str| Value::str(n[k].as_bool().unwrap_or(false).to_string());
    let fields = [
        (
            "CreatedAt",
            Value::str(go_time_rfc3339(n["Created"].as_str().unwrap_or(""))),
        ),
        ("Driver", Value::str(n["Driver"].as_str().unwrap_or(""))),
        ("ID", Value::str(id)),
        ("IPv4", flag("EnableIPv4")),
        ("IPv6", flag("EnableIPv6")),
        ("Internal", flag("Internal")),
        ("Labels", Value::str(labels_text)),
        ("Name", Value::str(n["Name"].as_str().unwrap_or(""))),
        ("Scope", Value::str(n["Scope"].as_str().unwrap_or(""))),
    ];
    Value::context(
        "*network.networkContext",
        fields,
        [(
            "Label",
            Value::object(labels.iter().map(|(k, v)| (k.as_str(), Value::str(v)))),
        )],
    )
}

/// docker's `newFormat` for `network ls`: the named formats, else the
/// template as given (`-q` does not override a custom template).
fn ls_format(format: &str, quiet: bool) -> String {
    match format {
        "table" if quiet => QUIET_FORMAT.into(),
        "table" => LS_TABLE.into(),
        "raw" if quiet => "network_id: {{.ID}}".into(),
        "raw" => LS_RAW.into(),
        f => f.into(),
    }
}

async fn ls(ctx: &Ctx, a: &LsArgs) -> CmdResult {
    // Like docker: config.json's networksFormat unless --format or -q.
    let format = match a.format.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => f.to_string(),
        None => match super::registry::config_format("networksFormat") {
            Some(f) if !a.quiet => f,
            _ => "table".into(),
        },
    };
    let format = ls_format(&format, a.quiet);
    Template::parse(&format).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
    let q = Query::new().add_if(!a.filter.is_empty(), "filters", filters_json(&a.filter));
    let mut list: Vec<Json> = ctx.client.get_json("/networks", &q).await?;
    list.sort_by(|x, y| {
        natural_cmp(
            x["Name"].as_str().unwrap_or(""),
            y["Name"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = list.iter().map(|n| row(n, !a.no_trunc)).collect();
    out(&render(&format, &header(), &rows)?)?;
    Ok(0)
}

async fn inspect(ctx: &Ctx, a: &InspectArgs) -> CmdResult {
    requires_min(
        "network inspect",
        "[OPTIONS] NETWORK [NETWORK...]",
        a.names.len(),
        1,
    )?;
    let mut inspector = Inspector::new(a.format.as_deref())?;
    let mut errors = Vec::new();
    let q = Query::new().add_if(a.verbose, "verbose", "true");
    for name in &a.names {
        match ctx
            .client
            .get_bytes(&format!("/networks/{}", path_escape(name)), &q)
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
    requires_min("network rm", "NETWORK [NETWORK...]", a.names.len(), 1)?;
    let mut errors = Vec::new();
    for name in &a.names {
        match ctx
            .client
            .delete(&format!("/networks/{}", path_escape(name)), &Query::new())
            .await
        {
            Ok(_) => outln(name)?,
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    joined(errors)
}

async fn prune(ctx: &Ctx, a: &PruneArgs) -> CmdResult {
    if !a.force {
        let mut stdout = std::io::stdout().lock();
        use std::io::Write;
        write!(
            stdout,
            "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
        )?;
        stdout.flush()?;
        drop(stdout);
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            return Ok(0);
        }
    }
    let q = Query::new().add_if(!a.filter.is_empty(), "filters", filters_json(&a.filter));
    let resp: Json = ctx
        .client
        .post_json("/networks/prune", &q, &json!({}))
        .await?;
    let names: Vec<String> =
        serde_json::from_value(resp["NetworksDeleted"].clone()).unwrap_or_default();
    if !names.is_empty() {
        let mut text = String::from("Deleted Networks:\n");
        for n in names {
            text.push_str(&n);
            text.push('\n');
        }
        outln(&text)?;
    }
    Ok(0)
}

async fn connect(ctx: &Ctx, a: &ConnectArgs) -> CmdResult {
    requires_exact(
        "network connect",
        "[OPTIONS] NETWORK CONTAINER",
        a.args.len(),
        2,
    )?;
    let ipam = if a.ip.is_some() || a.ip6.is_some() || !a.link_local_ip.is_empty() {
        json!({
            "IPv4Address": a.ip.clone().unwrap_or_default(),
            "IPv6Address": a.ip6.clone().unwrap_or_default(),
            "LinkLocalIPs": a.link_local_ip,
        })
    } else {
        Json::Null
    };
    let nonempty = |v: &Vec<String>| {
        if v.is_empty() {
            Json::Null
        } else {
            json!(v)
        }
    };
    let body = json!({
        "Container": a.args[1],
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Links": nonempty(&a.link),
            "Aliases": nonempty(&a.alias),
            "DriverOpts": if a.driver_opt.is_empty() { Json::Null } else { json!(map_opts(&a.driver_opt)) },
        },
    });
    ctx.client
        .post_json_ok(
            &format!("/networks/{}/connect", path_escape(&a.args[0])),
            &Query::new(),
            &body,
        )
        .await?;
    Ok(0)
}

async fn disconnect(ctx: &Ctx, a: &DisconnectArgs) -> CmdResult {
    requires_exact(
        "network disconnect",
        "[OPTIONS] NETWORK CONTAINER",
        a.args.len(),
        2,
    )?;
    let body = json!({"Container": a.args[1], "Force": a.force});
    ctx.client
        .post_json_ok(
            &format!("/networks/{}/disconnect", path_escape(&a.args[0])),
            &Query::new(),
            &body,
        )
        .await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_take_their_gateways_and_ranges() {
        assert!(in_subnet("172.30.0.0/16", "172.30.5.1").unwrap());
        assert!(!in_subnet("172.30.0.0/16", "172.31.0.1").unwrap());
        assert!(in_subnet("fd00::/64", "fd00::1").unwrap());
        assert!(!in_subnet("fd00::/64", "10.0.0.1").unwrap());
        let a = CreateArgs {
            driver: "bridge".into(),
            opt: vec![],
            label: vec![],
            internal: false,
            attachable: false,
            ipv6: None,
            subnet: vec!["172.30.0.0/16".into()],
            gateway: vec!["172.30.0.254".into()],
            ip_range: vec!["172.30.5.0/24".into()],
            ipam_driver: "default".into(),
            ipam_opt: vec![],
            aux_address: vec![],
            scope: String::new(),
            names: vec!["n".into()],
        };
        assert_eq!(
            ipam_config(&a).unwrap(),
            vec![
                json!({"Subnet": "172.30.0.0/16", "IPRange": "172.30.5.0/24", "Gateway": "172.30.0.254"})
            ]
        );
        let bad = CreateArgs {
            gateway: vec!["10.0.0.1".into()],
            ..a.clone()
        };
        assert_eq!(
            ipam_config(&bad).unwrap_err(),
            "no matching subnet for gateway 10.0.0.1"
        );
    }
}
