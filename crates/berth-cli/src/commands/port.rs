//! `port`: the published ports of a container, read from
//! `NetworkSettings.Ports` of `GET /containers/{name}/json` and printed as
//! docker's `runPort` does (`80/tcp -> 0.0.0.0:8080`, naturally sorted), or
//! the host addresses of one private port.

use std::cmp::Ordering;

use berth_api::container::ContainerInspect;
use clap::Args;

use super::{outln, requires_range, CmdResult, Ctx};
use crate::client::Query;

/// `berth port`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "List port mappings or a specific mapping for the container",
    override_usage = "berth port CONTAINER [PRIVATE_PORT[/PROTO]]"
)]
pub(crate) struct PortArgs {
    /// CONTAINER [PRIVATE_PORT[/PROTO]]
    #[arg(value_name = "CONTAINER")]
    pub(crate) args: Vec<String>,
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `fvbommel/sortorder.NaturalLess` as an ordering: digit runs compare as
/// numbers, digits sort before other bytes.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (s1, s2) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < s1.len() && j < s2.len() {
        let (d1, d2) = (s1[i].is_ascii_digit(), s2[j].is_ascii_digit());
        if d1 != d2 {
            return if d1 {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !d1 {
            if s1[i] != s2[j] {
                return s1[i].cmp(&s2[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < s1.len() && s1[i] == b'0' {
            i += 1;
        }
        while j < s2.len() && s2[j] == b'0' {
            j += 1;
        }
        let (nz1, nz2) = (i, j);
        while i < s1.len() && s1[i].is_ascii_digit() {
            i += 1;
        }
        while j < s2.len() && s2[j].is_ascii_digit() {
            j += 1;
        }
        let (l1, l2) = (i - nz1, j - nz2);
        if l1 != l2 {
            return l1.cmp(&l2);
        }
        if s1[nz1..i] != s2[nz2..j] {
            return s1[nz1..i].cmp(&s2[nz2..j]);
        }
        if nz1 != nz2 {
            return nz1.cmp(&nz2);
        }
    }
    s1.len().cmp(&s2.len())
}

/// The host addresses bound to each private port (`"80/tcp"`).
fn frontends(ports: &serde_json::Value, key: &str) -> Vec<String> {
    ports
        .get(key)
        .and_then(|v| v.as_array())
        .map(|list| {
            list.iter()
                .map(|f| {
                    let s = |k: &str| f.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                    join_host_port(&s("HostIp"), &s("HostPort"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// docker's `runPort` after the inspect: the lines to print, or the error.
pub(crate) fn port_lines(
    network_settings: &serde_json::Value,
    container: &str,
    port: Option<&str>,
) -> Result<Vec<String>, String> {
    let ports = network_settings
        .get("Ports")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let mut out = Vec::new();
    match port {
        Some(given) => {
            let (p, proto) = given.split_once('/').unwrap_or((given, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if let Err(e) = p.parse::<u16>() {
                let why = if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                return Err(format!(
                    "Error: invalid port ({p}): strconv.ParseUint: parsing {p:?}: {why}"
                ));
            }
            out = frontends(&ports, &format!("{p}/{proto}"));
            if out.is_empty() {
                return Err(format!(
                    "Error: No public port '{given}' published for {container}"
                ));
            }
        }
        None => {
            if let Some(map) = ports.as_object() {
                for key in map.keys() {
                    for f in frontends(&ports, key) {
                        out.push(format!("{key} -> {f}"));
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out)
}

/// `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`.
pub(crate) async fn port(ctx: &Ctx, args: &PortArgs, path: &str) -> CmdResult {
    requires_range(
        path,
        "CONTAINER [PRIVATE_PORT[/PROTO]]",
        args.args.len(),
        1,
        2,
    )?;
    let name = &args.args[0];
    let c: ContainerInspect = ctx
        .client
        .get_json(&format!("/containers/{name}/json"), &Query::new())
        .await?;
    let lines = port_lines(
        &c.network_settings,
        name,
        args.args.get(1).map(String::as_str),
    )
    .map_err(anyhow::Error::msg)?;
    if !lines.is_empty() {
        outln(&lines.join("\n"))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> serde_json::Value {
        serde_json::json!({"Ports": {
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "9000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "9000"}],
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
            "443/tcp": null
        }})
    }

    #[test]
    fn all_ports_naturally_sorted() {
        assert_eq!(
            port_lines(&settings(), "web", None).unwrap(),
            vec![
                "53/udp -> 127.0.0.1:5353",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080",
                "9000/tcp -> 0.0.0.0:9000",
            ]
        );
        assert!(port_lines(&serde_json::json!({"Ports": {}}), "web", None)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn one_port_and_errors() {
        assert_eq!(
            port_lines(&settings(), "web", Some("80")).unwrap(),
            vec!["0.0.0.0:8080", "[::]:8080"]
        );
        assert_eq!(
            port_lines(&settings(), "web", Some("53/udp")).unwrap(),
            vec!["127.0.0.1:5353"]
        );
        assert_eq!(
            port_lines(&settings(), "web", Some("443")).unwrap_err(),
            "Error: No public port '443' published for web"
        );
        assert_eq!(
            port_lines(&settings(), "web", Some("http")).unwrap_err(),
            "Error: invalid port (http): strconv.ParseUint: parsing \"http\": invalid syntax"
        );
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["a10", "a9", "a09", "b", "1", "a"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["1", "a", "a9", "a09", "a10", "b"]);
    }
}
