//! `version` and `info`, laid out like docker's (scripts grep the labels).

use berth_api::system::Info;
use berth_api::version::MAX_API_VERSION;
use clap::Args;

use super::{out, CmdResult, Ctx, StatusError};
use crate::client::{Client, ClientError, Query};
use crate::format::table::tabwrite;
use crate::format::template::{Template, Value};
use crate::format::units::bytes_size;

/// The client's version.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the client was built from, when the build says so.
pub(crate) const GIT_COMMIT: &str = match option_env!("BERTH_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// `berth version`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Show the berth version information",
    override_usage = "berth version [OPTIONS]"
)]
pub(crate) struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
}

/// `berth info`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Display system-wide information",
    override_usage = "berth info [OPTIONS]"
)]
pub(crate) struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
}

/// `berth -v`: `berth version 0.1.0, build abc123`.
pub(crate) fn short_version() -> String {
    format!("berth version {VERSION}, build {GIT_COMMIT}")
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn client_value(api_version: &str) -> Value {
    let mut pairs = vec![
        ("Version", Value::str(VERSION)),
        ("ApiVersion", Value::str(api_version)),
        ("DefaultAPIVersion", Value::str(MAX_API_VERSION)),
        ("GitCommit", Value::str(GIT_COMMIT)),
        ("Os", Value::str(std::env::consts::OS)),
        ("Arch", Value::str(arch())),
    ];
    if let Some(b) = option_env!("BERTH_BUILD_TIME") {
        pairs.push(("BuildTime", Value::str(b)));
    }
    pairs.push(("Context", Value::str("default")));
    Value::object(pairs)
}

/// `ClientInfo` of `info --format`: docker's `clientInfo` (debug flag,
/// the client's version fields but the negotiated API version, no CLI
/// plugins).
fn client_info(debug: bool) -> Value {
    let mut pairs = vec![("Debug".to_string(), Value::Bool(debug))];
    if let Value::Object(fields) = client_value("") {
        pairs.extend(fields.into_iter().filter(|(k, _)| k != "ApiVersion"));
    }
    pairs.push(("Plugins".into(), Value::Array(Vec::new())));
    pairs.push(("Warnings".into(), Value::Null));
    Value::Object(pairs)
}

/// A version object as the Go struct docker's template sees: the field
/// is `APIVersion` though the JSON says `ApiVersion`.
fn go_version_struct(type_name: &'static str, json: Value) -> Value {
    let fields: Vec<(String, Value)> = match &json {
        Value::Object(pairs) => pairs
            .iter()
            .map(|(k, v)| {
                let k = if k == "ApiVersion" { "APIVersion" } else { k };
                (k.to_string(), v.clone())
            })
            .collect(),
        _ => Vec::new(),
    };
    Value::go_struct(type_name, fields, json)
}

/// docker's `reformatDate`: an RFC 3339 build time in Go's `time.ANSIC`
/// layout (`Mon Jan  2 15:04:05 2006`), anything else unchanged.
fn reformat_date(s: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.format("%a %b %e %H:%M:%S %Y").to_string(),
        Err(_) => s.to_string(),
    }
}

/// The `version` text: docker's default template, rendered through a
/// tabwriter of min width 20, padding 1.
pub(crate) fn version_text(client: &Value, server: Option<&Value>) -> String {
    let s = |v: &Value, k: &str| v.get(k).map(Value::to_string).unwrap_or_default();
    let mut t = String::from("Client:\n");
    t += &format!(" Version:\t{}\n", s(client, "Version"));
    let (api, default) = (s(client, "ApiVersion"), s(client, "DefaultAPIVersion"));
    if api != default {
        t += &format!(" API version:\t{api} (downgraded from {default})\n");
    } else {
        t += &format!(" API version:\t{api}\n");
    }
    t += &format!(" Git commit:\t{}\n", s(client, "GitCommit"));
    if client.get("BuildTime").is_some() {
        t += &format!(" Built:\t{}\n", s(client, "BuildTime"));
    }
    t += &format!(" OS/Arch:\t{}/{}\n", s(client, "Os"), s(client, "Arch"));
    t += &format!(" Context:\t{}", s(client, "Context"));
    if let Some(server) = server {
        let platform = server
            .get("Platform")
            .and_then(|p| p.get("Name"))
            .map(Value::to_string)
            .unwrap_or_default();
        t += "\n\nServer:";
        if !platform.is_empty() {
            t += &format!(" {platform}");
        }
        let components = match server.get("Components") {
            Some(Value::Array(c)) => c.clone(),
            _ => Vec::new(),
        };
        for c in &components {
            let name = s(c, "Name");
            let details = c.get("Details").cloned().unwrap_or_default();
            let d = |k: &str| details.get(k).map(Value::to_string).unwrap_or_default();
            t += &format!("\n {name}:");
            if name == "Engine" {
                t += &format!("\n  Version:\t{}", s(c, "Version"));
                t += &format!(
                    "\n  API version:\t{} (minimum version {})",
                    d("ApiVersion"),
                    d("MinAPIVersion")
                );
                for (label, key) in [
                    ("Go version", "GoVersion"),
                    ("Git commit", "GitCommit"),
                    ("Built", "BuildTime"),
                ] {
                    if details.get(key).is_some() {
                        let value = if key == "BuildTime" {
                            reformat_date(&d(key))
                        } else {
                            d(key)
                        };
                        t += &format!("\n  {label}:\t{value}");
                    }
                }
                t += &format!("\n  OS/Arch:\t{}/{}", d("Os"), d("Arch"));
                t += &format!("\n  Experimental:\t{}", d("Experimental"));
            } else {
                t += &format!("\n  Version:\t{}", s(c, "Version"));
                if let Value::Object(pairs) = &details {
                    let mut keys: Vec<&String> = pairs.iter().map(|(k, _)| k).collect();
                    keys.sort();
                    for k in keys {
                        t += &format!("\n  {k}:\t{}", d(k));
                    }
                }
            }
        }
    }
    t.push('\n');
    tabwrite(&t, 20, 1)
}

/// `berth version`. The client part is printed even when no daemon answers.
pub(crate) async fn version(
    client: Option<&Client>,
    conn_err: Option<ClientError>,
    args: &VersionArgs,
) -> CmdResult {
    let template = match args.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(
            Template::parse_named("version", "{{json .}}")
                .map_err(|e| StatusError::new(64, e.to_string()))?,
        ),
        Some(f) => Some(
            Template::parse_named("version", f)
                .map_err(|e| StatusError::new(64, format!("template parsing error: {e}")))?,
        ),
    };
    let api = client
        .map(|c| c.api_version().to_string())
        .unwrap_or_else(|| MAX_API_VERSION.to_string());
    let client_v = client_value(&api);
    let mut err = conn_err.map(anyhow::Error::from);
    let mut server: Option<Value> = None;
    if let (Some(c), None) = (client, &err) {
        match c.get_bytes("/version", &Query::new()).await {
            Ok(raw) => server = Value::from_json(&raw).ok(),
            Err(e) => err = Some(e.into()),
        }
    }
    let text = match &template {
        None => version_text(&client_v, server.as_ref()),
        Some(t) => {
            let pairs = [
                (
                    "Client",
                    go_version_struct("system.clientVersion", client_v),
                ),
                (
                    "Server",
                    match server.clone() {
                        Some(v) => go_version_struct("*types.Version", v),
                        None => Value::Null,
                    },
                ),
            ];
            let data = Value::go_struct("system.versionInfo", pairs.clone(), Value::object(pairs));
            match t.execute_partial(&data) {
                (s, None) => format!("{s}\n"),
                // Like docker: what was written, a newline, then the error.
                (s, Some(e)) if err.is_none() => {
                    out(&format!("{s}\n"))?;
                    return Err(StatusError::new(1, e.0).into());
                }
                (_, Some(_)) => String::new(),
            }
        }
    };
    out(&text)?;
    match err {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

/// Appends `label value` and a newline (Go's `fmt.Fprintln(out, label, value)`).
fn kv(o: &mut String, label: &str, value: impl std::fmt::Display) {
    o.push_str(&format!("{label} {value}\n"));
}

/// Like [`kv`], skipped when the value is empty (docker's `fprintlnNonEmpty`).
fn kv_nonempty(o: &mut String, label: &str, value: &str) {
    if !value.is_empty() {
        kv(o, label, value);
    }
}

/// The `info` text: docker's client and server sections with its labels.
pub(crate) fn info_text(info: &Info, debug: bool) -> String {
    let mut o = String::from("Client:\n");
    kv(&mut o, " Version:   ", VERSION);
    kv(&mut o, " Context:   ", "default");
    kv(&mut o, " Debug Mode:", debug);
    o.push_str("\nServer:\n");
    kv(&mut o, " Containers:", info.containers);
    kv(&mut o, "  Running:", info.containers_running);
    kv(&mut o, "  Paused:", info.containers_paused);
    kv(&mut o, "  Stopped:", info.containers_stopped);
    kv(&mut o, " Images:", info.images);
    kv_nonempty(&mut o, " Server Version:", &info.server_version);
    kv_nonempty(&mut o, " Storage Driver:", &info.driver);
    for [k, v] in &info.driver_status {
        kv(&mut o, &format!("  {k}:"), v);
    }
    kv_nonempty(&mut o, " Logging Driver:", &info.logging_driver);
    kv_nonempty(&mut o, " Cgroup Driver:", &info.cgroup_driver);
    kv_nonempty(&mut o, " Cgroup Version:", &info.cgroup_version);
    o.push_str(" Plugins:\n");
    kv(&mut o, "  Volume:", info.plugins.volume.join(" "));
    kv(&mut o, "  Network:", info.plugins.network.join(" "));
    kv_nonempty(
        &mut o,
        "  Authorization:",
        &info
            .plugins
            .authorization
            .clone()
            .unwrap_or_default()
            .join(" "),
    );
    kv(&mut o, "  Log:", info.plugins.log.join(" "));
    kv(&mut o, " Swarm:", &info.swarm.local_node_state);
    if let Some(rt) = info.runtimes.as_object().filter(|m| !m.is_empty()) {
        kv(
            &mut o,
            " Runtimes:",
            rt.keys().cloned().collect::<Vec<_>>().join(" "),
        );
        kv(&mut o, " Default Runtime:", &info.default_runtime);
    }
    if info.os_type == "linux" {
        kv(&mut o, " Init Binary:", &info.init_binary);
        kv(&mut o, " containerd version:", &info.containerd_commit.id);
        kv(&mut o, " runc version:", &info.runc_commit.id);
        kv(&mut o, " init version:", &info.init_commit.id);
        if !info.security_options.is_empty() {
            o.push_str(" Security Options:\n");
            for so in &info.security_options {
                let mut name = so.as_str();
                let mut profile = None;
                for part in so.split(',') {
                    match part.split_once('=') {
                        Some(("name", n)) => name = n,
                        Some(("profile", p)) => profile = Some(p),
                        _ => {}
                    }
                }
                o.push_str(&format!("  {name}\n"));
                if let Some(p) = profile {
                    kv(&mut o, "   Profile:", p);
                }
            }
        }
    }
    kv_nonempty(&mut o, " Kernel Version:", &info.kernel_version);
    kv_nonempty(&mut o, " Operating System:", &info.operating_system);
    kv_nonempty(&mut o, " OSType:", &info.os_type);
    kv_nonempty(&mut o, " Architecture:", &info.architecture);
    kv(&mut o, " CPUs:", info.ncpu);
    kv(&mut o, " Total Memory:", bytes_size(info.mem_total as f64));
    kv_nonempty(&mut o, " Name:", &info.name);
    kv_nonempty(&mut o, " ID:", &info.id);
    kv(&mut o, " Docker Root Dir:", &info.docker_root_dir);
    kv(&mut o, " Debug Mode:", info.debug);
    if info.debug || debug {
        kv(&mut o, "  File Descriptors:", info.n_fd);
        kv(&mut o, "  Goroutines:", info.n_goroutines);
        kv(&mut o, "  System Time:", &info.system_time);
        kv(&mut o, "  EventsListeners:", info.n_events_listener);
    }
    kv_nonempty(&mut o, " HTTP Proxy:", &info.http_proxy);
    kv_nonempty(&mut o, " HTTPS Proxy:", &info.https_proxy);
    kv_nonempty(&mut o, " No Proxy:", &info.no_proxy);
    if !info.labels.is_empty() {
        o.push_str(" Labels:\n");
        for l in &info.labels {
            o.push_str(&format!("  {l}\n"));
        }
    }
    kv(&mut o, " Experimental:", info.experimental_build);
    let registry = &info.registry_config;
    let insecure_names: Vec<&str> = registry
        .get("IndexConfigs")
        .and_then(|v| v.as_object())
        .map(|m| {
            m.values()
                .filter(|c| c.get("Secure").and_then(|s| s.as_bool()) == Some(false))
                .filter_map(|c| c.get("Name").and_then(|n| n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let cidrs: Vec<&str> = registry
        .get("InsecureRegistryCIDRs")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let has_index = registry
        .get("IndexConfigs")
        .and_then(|v| v.as_object())
        .is_some_and(|m| !m.is_empty());
    if !cidrs.is_empty() || has_index {
        o.push_str(" Insecure Registries:\n");
        for r in insecure_names.iter().chain(&cidrs) {
            o.push_str(&format!("  {r}\n"));
        }
    }
    kv(&mut o, " Live Restore Enabled:", info.live_restore_enabled);
    o.push('\n');
    o
}

/// docker's `dockerInfo` for `info --format`: fields by their Go names
/// (`CPUCfsPeriod`, `HTTPProxy`: the JSON names are not fields), `json`
/// printing the daemon's JSON.
fn info_struct(json: Value) -> Value {
    let go_name = |k: &str| match k {
        "CpuCfsPeriod" => "CPUCfsPeriod".to_string(),
        "CpuCfsQuota" => "CPUCfsQuota".to_string(),
        "HttpProxy" => "HTTPProxy".to_string(),
        "HttpsProxy" => "HTTPSProxy".to_string(),
        other => other.to_string(),
    };
    let fields: Vec<(String, Value)> = match &json {
        Value::Object(pairs) => pairs.iter().map(|(k, v)| (go_name(k), v.clone())).collect(),
        _ => Vec::new(),
    };
    Value::go_struct("system.dockerInfo", fields, json)
}

/// `berth info`.
pub(crate) async fn info(ctx: &Ctx, args: &InfoArgs) -> CmdResult {
    let raw = ctx.client.get_bytes("/info", &Query::new()).await?;
    if let Some(f) = args.format.as_deref().filter(|f| !f.is_empty()) {
        let f = if f == "json" { "{{json .}}" } else { f };
        let t = Template::parse(f)
            .map_err(|e| StatusError::new(64, format!("template parsing error: {e}")))?;
        let mut json = Value::from_json(&raw)?;
        if let Value::Object(pairs) = &mut json {
            pairs.push(("ClientInfo".into(), client_info(ctx.debug)));
        }
        let (text, err) = t.execute_partial(&info_struct(json));
        // Like docker: what was written, a newline, then the error.
        out(&format!("{text}\n"))?;
        return match err {
            Some(e) => Err(StatusError::new(1, e.0).into()),
            None => Ok(0),
        };
    }
    let info: Info = serde_json::from_slice(&raw)?;
    out(&info_text(&info, ctx.debug))?;
    for w in &info.warnings {
        eprintln!("{w}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_layout() {
        let client = Value::object([
            ("Version", Value::str("0.1.0")),
            ("ApiVersion", Value::str("1.41")),
            ("DefaultAPIVersion", Value::str("1.45")),
            ("GitCommit", Value::str("abc")),
            ("Os", Value::str("linux")),
            ("Arch", Value::str("amd64")),
            ("Context", Value::str("default")),
        ]);
        let server = Value::from_json(
            br#"{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"0.1.0","Details":{"ApiVersion":"1.45","MinAPIVersion":"1.41","Os":"linux","Arch":"amd64","Experimental":"false","GitCommit":"abc"}},{"Name":"runc","Version":"1.1","Details":{"GitCommit":"v1"}}]}"#,
        )
        .unwrap();
        let text = version_text(&client, Some(&server));
        assert_eq!(
            text,
            "Client:
 Version:           0.1.0
 API version:       1.41 (downgraded from 1.45)
 Git commit:        abc
 OS/Arch:           linux/amd64
 Context:           default

Server:
 Engine:
  Version:          0.1.0
  API version:      1.45 (minimum version 1.41)
  Git commit:       abc
  OS/Arch:          linux/amd64
  Experimental:     false
 runc:
  Version:          1.1
  GitCommit:        v1
"
        );
    }

    #[test]
    fn build_dates() {
        assert_eq!(
            reformat_date("2024-01-01T00:00:00.000000000+00:00"),
            "Mon Jan  1 00:00:00 2024"
        );
        assert_eq!(
            reformat_date("2025-05-30T12:07:14Z"),
            "Fri May 30 12:07:14 2025"
        );
        assert_eq!(reformat_date("yesterday"), "yesterday");
    }

    #[test]
    fn info_labels() {
        let info: Info = serde_json::from_value(serde_json::json!({
            "Containers": 3, "ContainersRunning": 1, "ContainersPaused": 0, "ContainersStopped": 2, "Images": 4,
            "Driver": "overlay2", "CgroupDriver": "cgroupfs", "CgroupVersion": "1", "KernelVersion": "6.1",
            "OperatingSystem": "Debian", "OSType": "linux", "NCPU": 2, "MemTotal": 16_684_040_192i64,
            "DockerRootDir": "/var/lib/berth", "ServerVersion": "0.1.0",
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host"], "Log": ["json-file"]},
            "Swarm": {"LocalNodeState": "inactive"}
        }))
        .unwrap();
        let text = info_text(&info, false);
        assert!(text.starts_with("Client:\n Version:    0.1.0\n Context:    default\n Debug Mode: false\n\nServer:\n Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n Images: 4\n Server Version: 0.1.0\n Storage Driver: overlay2\n"));
        for want in [
            " Cgroup Driver: cgroupfs\n",
            " Cgroup Version: 1\n",
            "  Network: bridge host\n",
            " Kernel Version: 6.1\n",
            " Operating System: Debian\n",
            " CPUs: 2\n",
            " Total Memory: 15.54GiB\n",
            " Docker Root Dir: /var/lib/berth\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}
