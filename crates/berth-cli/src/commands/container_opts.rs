//! The container options shared by `create` and `run`, and their
//! translation into the exact `POST /containers/create` body docker CLI 28
//! sends (docker's `parse()` in `cli/command/container/opts.go`).

use std::collections::BTreeMap;

use berth_api::container::{
    ContainerConfig, ContainerCreateBody, HealthConfig, HostConfig, LogConfig, NetworkingConfig,
    RestartPolicy,
};
use berth_api::StrSlice;
use clap::{ArgAction, Args};
use serde_json::{json, Value};

use super::parse_go_bool;
use crate::client::Query;
use crate::format::units::ram_in_bytes;

/// Options of `docker create` / `docker run` that berth supports.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ContainerOpts {
    /// Assign a name to the container
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_parser = parse_attach)]
    pub(crate) attach: Vec<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub(crate) env_file: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub(crate) entrypoint: Option<String>,
    /// Container host name
    #[arg(
        short = 'h',
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) hostname: String,
    /// Container NIS domain name
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) domainname: String,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub(crate) tty: bool,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list", value_parser = validate_label)]
    pub(crate) label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub(crate) label_file: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub(crate) read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string", default_value = "no")]
    pub(crate) restart: String,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub(crate) rm: bool,
    /// Signal to stop the container
    #[arg(
        long = "stop-signal",
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) stop_signal: String,
    /// Command to run to check health
    #[arg(
        long = "health-cmd",
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) health_cmd: String,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", value_name = "duration", allow_hyphen_values = true, value_parser = parse_duration_ns)]
    pub(crate) health_interval: Option<i64>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", value_name = "int", allow_hyphen_values = true, value_parser = super::parse_go_int)]
    pub(crate) health_retries: Option<i64>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", value_name = "duration", allow_hyphen_values = true, value_parser = parse_duration_ns)]
    pub(crate) health_start_interval: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "duration", allow_hyphen_values = true, value_parser = parse_duration_ns)]
    pub(crate) health_start_period: Option<i64>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", value_name = "duration", allow_hyphen_values = true, value_parser = parse_duration_ns)]
    pub(crate) health_timeout: Option<i64>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub(crate) no_healthcheck: bool,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", allow_hyphen_values = true, value_parser = super::parse_go_int)]
    pub(crate) stop_timeout: Option<i64>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(
        short = 'u',
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) user: String,
    /// Working directory inside the container
    #[arg(
        short = 'w',
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) workdir: String,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_go_bool, action = ArgAction::Set)]
    pub(crate) init: Option<bool>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub(crate) privileged: bool,
    /// Runtime to use for this container
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) runtime: String,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes", value_parser = parse_mem)]
    pub(crate) memory: Option<i64>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes", value_parser = parse_mem)]
    pub(crate) memory_reservation: Option<i64>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", value_parser = parse_mem_swap, allow_hyphen_values = true)]
    pub(crate) memory_swap: Option<i64>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long = "memory-swappiness", value_name = "int", default_value_t = -1, allow_hyphen_values = true, value_parser = super::parse_go_int)]
    pub(crate) memory_swappiness: i64,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub(crate) oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", default_value_t = 0, allow_hyphen_values = true, value_parser = super::parse_go_int)]
    pub(crate) oom_score_adj: i64,
    /// Number of CPUs
    #[arg(long, value_name = "decimal", value_parser = parse_cpus)]
    pub(crate) cpus: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int", default_value_t = 0, value_parser = super::parse_go_int)]
    pub(crate) cpu_shares: i64,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(
        long = "cpuset-cpus",
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) cpuset_cpus: String,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", default_value_t = 0, allow_hyphen_values = true, value_parser = super::parse_go_int)]
    pub(crate) pids_limit: i64,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes", value_parser = parse_mem)]
    pub(crate) shm_size: Option<i64>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net", value_name = "network")]
    pub(crate) network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub(crate) network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "ip")]
    pub(crate) ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long, value_name = "ip")]
    pub(crate) ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "string")]
    pub(crate) mac_address: Option<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    pub(crate) link: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub(crate) publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub(crate) publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub(crate) expose: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub(crate) cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub(crate) cap_drop: Vec<String>,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub(crate) security_opt: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "list")]
    pub(crate) dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub(crate) dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    pub(crate) dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub(crate) add_host: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub(crate) group_add: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long, value_name = "list")]
    pub(crate) tmpfs: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub(crate) volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "mount")]
    pub(crate) mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub(crate) volumes_from: Vec<String>,
    /// Sysctl options
    #[arg(long, value_name = "map")]
    pub(crate) sysctl: Vec<String>,
    /// Logging driver for the container
    #[arg(
        long = "log-driver",
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) log_driver: String,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub(crate) log_opt: Vec<String>,
    /// IPC mode to use
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) ipc: String,
    /// PID namespace to use
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) pid: String,
    /// UTS namespace to use
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) uts: String,
    /// User namespace to use
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) userns: String,
    /// Cgroup namespace to use (host|private)
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) cgroupns: String,
    /// Optional parent cgroup for the container
    #[arg(
        long = "cgroup-parent",
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) cgroup_parent: String,
    /// Write the container ID to the file
    #[arg(
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) cidfile: String,
    /// Set platform if server is multi-platform capable
    #[arg(
        long,
        value_name = "string",
        env = "DOCKER_DEFAULT_PLATFORM",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) platform: String,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, value_name = "string", default_value = "missing")]
    pub(crate) pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

fn parse_attach(s: &str) -> Result<String, String> {
    let lower = s.to_lowercase();
    if ["stdin", "stdout", "stderr"].contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err("valid streams are STDIN, STDOUT and STDERR".into())
    }
}

fn validate_label(s: &str) -> Result<String, String> {
    let key = s
        .split_once('=')
        .map(|(k, _)| k)
        .unwrap_or(s)
        .trim_start_matches([' ', '\t']);
    if key.is_empty() {
        return Err(format!("invalid label '{s}': empty name"));
    }
    if key.contains([' ', '\t']) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(s.to_string())
}

/// A Go duration flag value, in nanoseconds.
pub(crate) fn parse_duration_ns(s: &str) -> Result<i64, String> {
    super::logs::parse_go_duration(s)
        .map(|secs| (secs * 1e9).round() as i64)
        .ok_or_else(|| format!("time: invalid duration \"{s}\""))
}

/// docker's `--health-*` / `--no-healthcheck` → `Config.Healthcheck`.
fn health_config(o: &ContainerOpts) -> Result<Option<HealthConfig>, String> {
    let n = |v: Option<i64>| v.unwrap_or(0);
    let have = !o.health_cmd.is_empty()
        || n(o.health_interval) != 0
        || n(o.health_timeout) != 0
        || n(o.health_start_period) != 0
        || n(o.health_retries) != 0
        || n(o.health_start_interval) != 0;
    if o.no_healthcheck {
        if have {
            return Err("--no-healthcheck conflicts with --health-* options".into());
        }
        return Ok(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    if !have {
        return Ok(None);
    }
    for (flag, v) in [
        ("interval", o.health_interval),
        ("timeout", o.health_timeout),
        ("retries", o.health_retries),
        ("start-period", o.health_start_period),
        ("start-interval", o.health_start_interval),
    ] {
        if n(v) < 0 {
            return Err(format!("--health-{flag} cannot be negative"));
        }
    }
    let test = if o.health_cmd.is_empty() {
        Vec::new()
    } else {
        vec!["CMD-SHELL".into(), o.health_cmd.clone()]
    };
    Ok(Some(HealthConfig {
        test,
        interval: n(o.health_interval),
        timeout: n(o.health_timeout),
        start_period: n(o.health_start_period),
        start_interval: n(o.health_start_interval),
        retries: n(o.health_retries),
    }))
}

pub(crate) fn parse_mem(s: &str) -> Result<i64, String> {
    ram_in_bytes(s)
}

pub(crate) fn parse_mem_swap(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s)
}

/// `--cpus 1.5` → NanoCPUs 1500000000 (docker's `NanoCPUs.Set`).
pub(crate) fn parse_cpus(s: &str) -> Result<i64, String> {
    let bad = || format!("failed to parse {s} as a rational number");
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err("value is too precise".into());
    }
    let int: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac_nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    let nanos = int
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(bad)?;
    Ok(if neg { -nanos } else { nanos })
}

/// docker's `ParseRestartPolicy`.
pub(crate) fn parse_restart(policy: &str) -> Result<RestartPolicy, String> {
    if policy.is_empty() {
        return Ok(RestartPolicy::default());
    }
    let (name, count) = policy.split_once(':').unwrap_or((policy, ""));
    if policy.contains(':') && name.is_empty() {
        return Err("invalid restart policy format: no policy provided before colon".into());
    }
    let mut p = RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: 0,
    };
    if !count.is_empty() {
        p.maximum_retry_count = count.parse().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?;
    }
    Ok(p)
}

/// Reads a variable of the client's environment.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// docker's `kvfile.Parse`: `KEY=VALUE` lines, `#` comments, a bare `KEY`
/// taken from `lookup` (dropped when unset or when there is no lookup).
pub(crate) fn parse_kv_file(
    name: &str,
    text: &[u8],
    lookup: Option<Lookup<'_>>,
) -> Result<Vec<String>, String> {
    let text = text.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(text);
    let mut out = Vec::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(line) = std::str::from_utf8(raw) else {
            return Err(format!(
                "invalid env file ({name}): invalid utf8 bytes at line {}: {raw:?}",
                i + 1
            ));
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, has_value) = match line.split_once('=') {
            Some((k, _)) => (k, true),
            None => (line, false),
        };
        if key.is_empty() {
            return Err(format!(
                "invalid env file ({name}): no variable name on line '{line}'"
            ));
        }
        if key.contains([' ', '\t']) {
            return Err(format!(
                "invalid env file ({name}): variable '{key}' contains whitespaces"
            ));
        }
        if has_value {
            out.push(line.to_string());
        } else if let Some(value) = lookup.and_then(|f| f(line)) {
            out.push(format!("{key}={value}"));
        }
    }
    Ok(out)
}

/// docker's `ValidateEnv` for `-e`: `KEY` alone takes the client's value
/// when set, else is sent as is.
pub(crate) fn resolve_env(val: &str, lookup: Lookup<'_>) -> Result<String, String> {
    let (key, has_value) = match val.split_once('=') {
        Some((k, _)) => (k, true),
        None => (val, false),
    };
    if key.is_empty() {
        return Err(format!("invalid environment variable: {val}"));
    }
    if has_value {
        return Ok(val.to_string());
    }
    Ok(match lookup(key) {
        Some(v) => format!("{key}={v}"),
        None => val.to_string(),
    })
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| super::open_error(path, &e))
}

/// The create request: body and query (`name`, `platform`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CreateRequest {
    /// The JSON body.
    pub(crate) body: ContainerCreateBody,
    /// `?name=…&platform=…`.
    pub(crate) query: Query,
}

/// Builds the request docker's `parse()` would: `args` is `IMAGE [COMMAND…]`,
/// `console` the `(height, width)` of our terminal, `lookup` reads our
/// environment.
pub(crate) fn build_request(
    o: &ContainerOpts,
    args: &[String],
    console: (u16, u16),
    lookup: Lookup<'_>,
) -> Result<CreateRequest, String> {
    let image = args.first().cloned().unwrap_or_default();
    let mut attach_stdin = o.attach.iter().any(|a| a == "stdin");
    let mut attach_stdout = o.attach.iter().any(|a| a == "stdout");
    let mut attach_stderr = o.attach.iter().any(|a| a == "stderr");
    if o.interactive {
        attach_stdin = true;
    }
    if o.attach.is_empty() {
        attach_stdout = true;
        attach_stderr = true;
    }
    let healthcheck = health_config(o)?;
    if o.memory_swappiness != -1 && !(0..=100).contains(&o.memory_swappiness) {
        return Err(format!(
            "invalid value: {}. Valid memory swappiness range is 0-100",
            o.memory_swappiness
        ));
    }

    let mut env = Vec::new();
    for f in &o.env_file {
        env.extend(parse_kv_file(f, &read_file(f)?, Some(lookup))?);
    }
    for e in &o.env {
        env.push(resolve_env(e, lookup)?);
    }
    let mut labels_list = Vec::new();
    for f in &o.label_file {
        labels_list.extend(parse_kv_file(f, &read_file(f)?, None)?);
    }
    labels_list.extend(o.label.iter().cloned());
    let labels: BTreeMap<String, String> = labels_list
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();

    let cmd = (args.len() > 1).then(|| StrSlice(args[1..].to_vec()));
    let entrypoint = match &o.entrypoint {
        Some(e) if !e.is_empty() => Some(StrSlice(vec![e.clone()])),
        Some(_) => Some(StrSlice(vec![String::new()])),
        None => None,
    };

    let restart_policy = parse_restart(&o.restart)?;
    if o.rm && !(restart_policy.name.is_empty() || restart_policy.name == "no") {
        return Err("conflicting options: cannot specify both --restart and --rm".into());
    }
    let (binds, anon_volumes) = super::mount_opts::split_volumes(&o.volume)?;
    let mounts = o
        .mount
        .iter()
        .map(|m| super::mount_opts::parse_mount(m))
        .collect::<Result<Vec<_>, _>>()?;
    let tmpfs: BTreeMap<String, String> = o
        .tmpfs
        .iter()
        .map(|t| {
            let (k, v) = t.split_once(':').unwrap_or((t, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let mut log_opts = BTreeMap::new();
    for opt in &o.log_opt {
        let Some((k, v)) = opt.split_once('=') else {
            return Err(format!(
                "invalid key value pair format in log options: {opt}"
            ));
        };
        log_opts.insert(k.to_string(), v.to_string());
    }
    if o.log_driver == "none" && !log_opts.is_empty() {
        return Err("invalid logging opts for driver none".into());
    }
    let sysctls: BTreeMap<String, String> = o
        .sysctl
        .iter()
        .map(|s| {
            let (k, v) = s.split_once('=').unwrap_or((s, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let network_mode = o
        .network
        .first()
        .cloned()
        .unwrap_or_else(|| "default".into());
    let mut exposed: BTreeMap<String, Value> = BTreeMap::new();
    let mut port_bindings: BTreeMap<String, Value> = BTreeMap::new();
    for p in &o.publish {
        for (key, ip, host_port) in parse_port_spec(p)? {
            exposed.insert(key.clone(), json!({}));
            let list = port_bindings.entry(key).or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut() {
                a.push(json!({"HostIp": ip, "HostPort": host_port}));
            }
        }
    }
    for e in &o.expose {
        for key in parse_expose(e)? {
            exposed.insert(key, json!({}));
        }
    }

    let config = ContainerConfig {
        hostname: o.hostname.clone(),
        domainname: o.domainname.clone(),
        user: o.user.clone(),
        attach_stdin,
        attach_stdout,
        attach_stderr,
        tty: o.tty,
        open_stdin: o.interactive,
        stdin_once: o.interactive && attach_stdin,
        env: (!env.is_empty()).then_some(env),
        cmd,
        image,
        volumes: Some(
            anon_volumes
                .iter()
                .map(|v| (v.clone(), json!({})))
                .collect(),
        ),
        working_dir: o.workdir.clone(),
        entrypoint,
        on_build: None,
        labels: Some(labels),
        stop_signal: (!o.stop_signal.is_empty()).then(|| o.stop_signal.clone()),
        stop_timeout: o.stop_timeout,
        healthcheck,
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        ..Default::default()
    };

    let nonempty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let (cap_add, cap_drop) = effective_caps(&o.cap_add, &o.cap_drop);
    let mut extra = BTreeMap::new();
    extra.insert("CgroupnsMode".to_string(), json!(o.cgroupns));
    extra.insert("BlkioWeight".to_string(), json!(0));
    for key in [
        "BlkioWeightDevice",
        "BlkioDeviceReadBps",
        "BlkioDeviceWriteBps",
        "BlkioDeviceReadIOps",
        "BlkioDeviceWriteIOps",
        "Devices",
    ] {
        extra.insert(key.to_string(), json!([]));
    }
    for key in [
        "CpuRealtimePeriod",
        "CpuRealtimeRuntime",
        "CpuCount",
        "CpuPercent",
        "IOMaximumIOps",
        "IOMaximumBandwidth",
    ] {
        extra.insert(key.to_string(), json!(0));
    }
    extra.insert("DeviceCgroupRules".to_string(), Value::Null);
    extra.insert("DeviceRequests".to_string(), Value::Null);
    if !sysctls.is_empty() {
        extra.insert("Sysctls".to_string(), json!(sysctls));
    }
    let host_config = HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        container_id_file: o.cidfile.clone(),
        log_config: LogConfig {
            kind: o.log_driver.clone(),
            config: Some(log_opts),
        },
        network_mode: network_mode.clone(),
        port_bindings: Some(port_bindings),
        restart_policy,
        auto_remove: o.rm,
        volume_driver: String::new(),
        volumes_from: (!o.volumes_from.is_empty()).then(|| o.volumes_from.clone()),
        cap_add: (!cap_add.is_empty()).then_some(cap_add),
        cap_drop: (!cap_drop.is_empty()).then_some(cap_drop),
        dns: Some(o.dns.clone()),
        dns_options: Some(o.dns_option.clone()),
        dns_search: Some(o.dns_search.clone()),
        extra_hosts: nonempty(&o.add_host),
        group_add: nonempty(&o.group_add),
        ipc_mode: o.ipc.clone(),
        cgroup: String::new(),
        links: nonempty(&o.link),
        oom_score_adj: o.oom_score_adj,
        pid_mode: o.pid.clone(),
        privileged: o.privileged,
        publish_all_ports: o.publish_all,
        readonly_rootfs: o.read_only,
        security_opt: nonempty(&o.security_opt),
        uts_mode: o.uts.clone(),
        userns_mode: o.userns.clone(),
        shm_size: o.shm_size.unwrap_or(0),
        runtime: o.runtime.clone(),
        isolation: String::new(),
        cpu_shares: o.cpu_shares,
        memory: o.memory.unwrap_or(0),
        nano_cpus: o.cpus.unwrap_or(0),
        cgroup_parent: o.cgroup_parent.clone(),
        cpu_period: 0,
        cpu_quota: 0,
        cpuset_cpus: o.cpuset_cpus.clone(),
        cpuset_mems: String::new(),
        memory_reservation: o.memory_reservation.unwrap_or(0),
        memory_swap: o.memory_swap.unwrap_or(0),
        memory_swappiness: Some(o.memory_swappiness),
        oom_kill_disable: Some(o.oom_kill_disable),
        pids_limit: Some(o.pids_limit),
        ulimits: Some(Vec::new()),
        init: o.init,
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        mounts: (!mounts.is_empty()).then_some(mounts),
        console_size: Some(vec![u32::from(console.0), u32::from(console.1)]),
        masked_paths: None,
        readonly_paths: None,
        extra,
    };

    let endpoint = json!({
        "IPAMConfig": null, "Links": null, "Aliases": null, "DriverOpts": null, "GwPriority": 0,
        "MacAddress": "", "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "DNSNames": null
    });
    // docker's applyContainerOptions: the endpoint flags go with the first
    // network.
    let mut first = endpoint.clone();
    let has_options = o.ip.is_some()
        || o.ip6.is_some()
        || o.mac_address.is_some()
        || !o.network_alias.is_empty()
        || !o.link.is_empty();
    if o.ip.is_some() || o.ip6.is_some() {
        first["IPAMConfig"] = json!({
            "IPv4Address": o.ip.clone().unwrap_or_default(),
            "IPv6Address": o.ip6.clone().unwrap_or_default(),
        });
    }
    if !o.network_alias.is_empty() {
        first["Aliases"] = json!(o.network_alias);
    }
    if !o.link.is_empty() {
        first["Links"] = json!(o.link);
    }
    if let Some(m) = &o.mac_address {
        first["MacAddress"] = json!(m);
    }
    let mut endpoints = BTreeMap::new();
    if o.network.is_empty() {
        endpoints.insert("default".to_string(), first);
    } else if o.network.len() > 1 || has_options {
        for (i, n) in o.network.iter().enumerate() {
            if n.trim().is_empty() {
                return Err("no name set for network".into());
            }
            let ep = if i == 0 {
                first.clone()
            } else {
                endpoint.clone()
            };
            if endpoints.insert(n.clone(), ep).is_some() {
                return Err(format!("network {n:?} is specified multiple times"));
            }
        }
    }
    let body = ContainerCreateBody {
        config,
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
    };
    let query = Query::new()
        .add_nonempty("name", o.name.as_deref().unwrap_or(""))
        .add_nonempty("platform", &o.platform.to_lowercase());
    Ok(CreateRequest { body, query })
}

fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let ok = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0);
    match s.split_once('-') {
        None => ok(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (ok(a)?, ok(b)?);
            (a <= b).then_some((a, b))
        }
    }
}

/// docker's `nat.ParsePortSpec`: `[ip:][hostPort:]containerPort[/proto]`
/// with ranges; one `(key, HostIp, HostPort)` per container port.
pub(crate) fn parse_port_spec(spec: &str) -> Result<Vec<(String, String, String)>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(format!("invalid proto: {proto}"));
    }
    // An IPv6 host address is bracketed: [::1]:8080:80.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r
            .split_once(']')
            .ok_or_else(|| format!("invalid ip address: {spec}"))?;
        (
            ip.to_string(),
            after.strip_prefix(':').unwrap_or(after).to_string(),
        )
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), rest.to_string()),
            3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
            _ => {
                // An unbracketed IPv6 address: everything before the last two fields.
                let n = parts.len();
                (
                    parts[..n - 2].join(":"),
                    format!("{}:{}", parts[n - 2], parts[n - 1]),
                )
            }
        }
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid ip address: {ip}"));
    }
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h.to_string(), c.to_string()),
        None => (String::new(), rest.clone()),
    };
    if container.is_empty() {
        return Err(format!("no port specified: {spec}<empty>"));
    }
    let (c0, c1) = parse_port_range(&container)
        .ok_or_else(|| format!("invalid containerPort: {container}"))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_port_range(&host).ok_or_else(|| format!("invalid hostPort: {host}"))?)
    };
    if let Some((h0, h1)) = host_range {
        if c1 - c0 != h1 - h0 && h0 != h1 && c0 != c1 {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            ));
        }
    }
    let mut out = Vec::new();
    for (i, c) in (c0..=c1).enumerate() {
        let host_port = match host_range {
            None => String::new(),
            // One container port and a host range: the daemon picks in it.
            Some((h0, h1)) if c0 == c1 && h0 != h1 => format!("{h0}-{h1}"),
            Some((h0, h1)) if h0 == h1 => h0.to_string(),
            Some((h0, _)) => (h0 + i as u16).to_string(),
        };
        out.push((format!("{c}/{proto}"), ip.clone(), host_port));
    }
    Ok(out)
}

/// `--expose 80`, `--expose 8000-8010/udp`.
fn parse_expose(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let (a, b) = parse_port_range(ports)
        .ok_or_else(|| format!("invalid range format for --expose: {spec}"))?;
    Ok((a..=b)
        .map(|p| format!("{p}/{}", proto.to_lowercase()))
        .collect())
}

/// docker's `NormalizeCapability`: `net_admin` → `CAP_NET_ADMIN`.
fn normalize_cap(c: &str) -> String {
    let c = c.trim().to_uppercase();
    if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

/// docker's `EffectiveCapAddCapDrop` (what its client sends from API 1.40
/// on): normalized, deduplicated, sorted; `ALL` absorbs the rest; a
/// capability both added and dropped is only added.
pub(crate) fn effective_caps(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    use std::collections::BTreeSet;
    let mut adds: BTreeSet<String> = add.iter().map(|c| normalize_cap(c)).collect();
    let mut drops: BTreeSet<String> = drop.iter().map(|c| normalize_cap(c)).collect();
    if adds.contains("ALL") {
        adds = BTreeSet::from(["ALL".to_string()]);
    }
    if drops.contains("ALL") {
        drops = BTreeSet::from(["ALL".to_string()]);
    }
    let cap_drop = drops
        .into_iter()
        .filter(|c| !adds.contains(c) && c != "RESET")
        .collect();
    let cap_add = adds.into_iter().filter(|c| c != "RESET").collect();
    (cap_add, cap_drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        o: ContainerOpts,
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    }

    fn parse(args: &[&str]) -> (ContainerOpts, Vec<String>) {
        let t = T::try_parse_from(std::iter::once("create").chain(args.iter().copied())).unwrap();
        (t.o, t.args)
    }

    fn body(args: &[&str]) -> Value {
        let (o, a) = parse(args);
        let lookup = |k: &str| (k == "HOME_X").then(|| "/root".to_string());
        let req = build_request(&o, &a, (0, 0), &lookup).unwrap();
        serde_json::to_value(&req.body).unwrap()
    }

    #[test]
    fn health_flags_become_healthcheck() {
        let b = body(&[
            "--health-cmd",
            "true",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            "busybox",
        ]);
        assert_eq!(
            b["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 200_000_000, "Retries": 2})
        );
        assert_eq!(
            body(&["--no-healthcheck", "busybox"])["Healthcheck"],
            json!({"Test": ["NONE"]})
        );
        assert!(body(&["busybox"]).get("Healthcheck").is_none());
        let (o, a) = parse(&["--no-healthcheck", "--health-cmd", "x", "busybox"]);
        let lookup = |_: &str| None;
        let err = build_request(&o, &a, (0, 0), &lookup).unwrap_err();
        assert_eq!(err, "--no-healthcheck conflicts with --health-* options");
    }

    #[test]
    fn body_of_run_rm_echo_matches_docker() {
        let b = body(&["--rm", "busybox", "echo", "hi"]);
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["echo", "hi"]));
        assert_eq!(b["AttachStdin"], false);
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["AttachStderr"], true);
        assert_eq!(b["Env"], Value::Null);
        assert_eq!(b["Entrypoint"], Value::Null);
        assert_eq!(b["Volumes"], json!({}));
        assert_eq!(b["Labels"], json!({}));
        assert_eq!(b["OnBuild"], Value::Null);
        assert!(b.get("StopTimeout").is_none());
        let hc = &b["HostConfig"];
        assert_eq!(hc["NetworkMode"], "default");
        assert_eq!(
            hc["RestartPolicy"],
            json!({"Name":"no","MaximumRetryCount":0})
        );
        assert_eq!(hc["AutoRemove"], true);
        assert_eq!(hc["LogConfig"], json!({"Type":"","Config":{}}));
        assert_eq!(hc["PortBindings"], json!({}));
        assert_eq!(hc["ConsoleSize"], json!([0, 0]));
        assert_eq!(hc["MemorySwappiness"], -1);
        assert_eq!(hc["PidsLimit"], 0);
        assert_eq!(hc["OomKillDisable"], false);
        assert_eq!(hc["Init"], Value::Null);
        let ep = &b["NetworkingConfig"]["EndpointsConfig"]["default"];
        assert_eq!(ep["GwPriority"], 0);
        assert_eq!(ep["DNSNames"], Value::Null);
    }

    #[test]
    fn unknown_flags_before_the_image_are_errors() {
        assert!(T::try_parse_from(["create", "--bogus", "busybox"]).is_err());
    }

    #[test]
    fn interactive_tty_and_command_flags_go_to_the_command() {
        let (o, a) = parse(&["-it", "--name", "x", "busybox", "ls", "-la", "--rm"]);
        assert!(o.interactive && o.tty && !o.rm);
        assert_eq!(a, vec!["busybox", "ls", "-la", "--rm"]);
        let b = body(&["-i", "busybox"]);
        assert_eq!(
            (
                b["AttachStdin"].clone(),
                b["OpenStdin"].clone(),
                b["StdinOnce"].clone()
            ),
            (json!(true), json!(true), json!(true))
        );
        let (_, a) = parse(&["--", "busybox", "-x"]);
        assert_eq!(a, vec!["busybox", "-x"]);
    }

    #[test]
    fn entrypoint_env_labels_and_resources() {
        let b = body(&[
            "--entrypoint",
            "",
            "-e",
            "A=1",
            "-e",
            "HOME_X",
            "-e",
            "UNSET_X",
            "-l",
            "k=v",
            "-l",
            "flag",
            "-w",
            "/w",
            "-u",
            "1:2",
            "-h",
            "host",
            "-m",
            "512m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "-1",
            "--restart",
            "on-failure:3",
            "--init",
            "--privileged",
            "--read-only",
            "--stop-signal",
            "SIGUSR1",
            "--stop-timeout",
            "5",
            "--runtime",
            "runc",
            "--network",
            "host",
            "-a",
            "STDOUT",
            "busybox",
        ]);
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["Env"], json!(["A=1", "HOME_X=/root", "UNSET_X"]));
        assert_eq!(b["Labels"], json!({"k":"v","flag":""}));
        assert_eq!(
            (
                b["WorkingDir"].clone(),
                b["User"].clone(),
                b["Hostname"].clone()
            ),
            (json!("/w"), json!("1:2"), json!("host"))
        );
        assert_eq!(b["StopSignal"], "SIGUSR1");
        assert_eq!(b["StopTimeout"], 5);
        assert_eq!(
            (b["AttachStdout"].clone(), b["AttachStderr"].clone()),
            (json!(true), json!(false))
        );
        let hc = &b["HostConfig"];
        assert_eq!(hc["Memory"], 512 * 1024 * 1024);
        assert_eq!(hc["NanoCpus"], 1_500_000_000i64);
        assert_eq!(hc["PidsLimit"], -1);
        assert_eq!(
            hc["RestartPolicy"],
            json!({"Name":"on-failure","MaximumRetryCount":3})
        );
        assert_eq!(hc["Init"], true);
        assert_eq!(hc["Privileged"], true);
        assert_eq!(hc["ReadonlyRootfs"], true);
        assert_eq!(hc["Runtime"], "runc");
        assert_eq!(hc["NetworkMode"], "host");
        assert_eq!(b["NetworkingConfig"]["EndpointsConfig"], json!({}));
        let b = body(&["--entrypoint", "/bin/sh", "--init=false", "busybox"]);
        assert_eq!(b["Entrypoint"], json!(["/bin/sh"]));
        assert_eq!(b["HostConfig"]["Init"], false);
    }

    #[test]
    fn publish_and_network_options_like_docker() {
        assert_eq!(
            parse_port_spec("127.0.0.1:8080:80").unwrap(),
            vec![("80/tcp".into(), "127.0.0.1".into(), "8080".into())]
        );
        assert_eq!(
            parse_port_spec("53/udp").unwrap(),
            vec![("53/udp".into(), String::new(), String::new())]
        );
        assert_eq!(
            parse_port_spec("8000-8001:80-81").unwrap(),
            vec![
                ("80/tcp".into(), String::new(), "8000".into()),
                ("81/tcp".into(), String::new(), "8001".into())
            ]
        );
        assert_eq!(
            parse_port_spec("9000-9010:80").unwrap()[0].2,
            "9000-9010".to_string()
        );
        assert_eq!(parse_port_spec("[::1]:80:80").unwrap()[0].1, "::1");
        assert!(parse_port_spec("x:80").is_err());
        assert!(parse_port_spec("80/foo").is_err());
        let b = body(&[
            "-p",
            "127.0.0.1:8080:80",
            "-P",
            "--expose",
            "90",
            "--network",
            "n1",
            "--ip",
            "10.1.0.5",
            "--network-alias",
            "db",
            "busybox",
        ]);
        assert_eq!(
            b["HostConfig"]["PortBindings"],
            json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]})
        );
        assert_eq!(b["HostConfig"]["PublishAllPorts"], true);
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}, "90/tcp": {}}));
        let ep = &b["NetworkingConfig"]["EndpointsConfig"]["n1"];
        assert_eq!(ep["IPAMConfig"]["IPv4Address"], "10.1.0.5");
        assert_eq!(ep["Aliases"], json!(["db"]));
    }

    #[test]
    fn capabilities_like_docker() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            effective_caps(
                &s(&["net_admin", "CAP_SYS_TIME", "net_admin"]),
                &s(&["chown", "sys_time"])
            ),
            (s(&["CAP_NET_ADMIN", "CAP_SYS_TIME"]), s(&["CAP_CHOWN"]))
        );
        assert_eq!(
            effective_caps(&s(&["all", "x"]), &s(&["reset"])),
            (s(&["ALL"]), vec![])
        );
    }

    #[test]
    fn conflicts_and_bad_values() {
        let (o, a) = parse(&["--rm", "--restart", "always", "busybox"]);
        let lookup = |_: &str| None;
        assert_eq!(
            build_request(&o, &a, (0, 0), &lookup).unwrap_err(),
            "conflicting options: cannot specify both --restart and --rm"
        );
        assert_eq!(parse_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(
            parse_cpus("0.0000000001"),
            Err("value is too precise".into())
        );
        assert_eq!(
            parse_cpus("abc"),
            Err("failed to parse abc as a rational number".into())
        );
        assert_eq!(
            parse_restart(":3"),
            Err("invalid restart policy format: no policy provided before colon".into())
        );
        assert!(parse_restart("always:x").is_err());
        assert_eq!(
            validate_label("=x"),
            Err("invalid label '=x': empty name".into())
        );
        assert_eq!(
            parse_attach("bogus"),
            Err("valid streams are STDIN, STDOUT and STDERR".into())
        );
        assert!(T::try_parse_from(["create", "-a", "bogus", "busybox"]).is_err());
    }

    #[test]
    fn env_files_like_docker() {
        let text = b"\xEF\xBB\xBF# comment\n  A=1\nB= spaced value \nHOME_X\nUNSET_X\n\nC=\r\n";
        let lookup = |k: &str| (k == "HOME_X").then(|| "/root".to_string());
        assert_eq!(
            parse_kv_file("f", text, Some(&lookup)).unwrap(),
            vec!["A=1", "B= spaced value ", "HOME_X=/root", "C="]
        );
        assert_eq!(
            parse_kv_file("f", b"HOME_X\n", None).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            parse_kv_file("f", b"=x\n", None).unwrap_err(),
            "invalid env file (f): no variable name on line '=x'"
        );
        assert_eq!(
            parse_kv_file("f", b"A B=1\n", None).unwrap_err(),
            "invalid env file (f): variable 'A B' contains whitespaces"
        );
        assert_eq!(
            resolve_env("=x", &lookup).unwrap_err(),
            "invalid environment variable: =x"
        );
    }

    #[test]
    fn env_file_read_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("env");
        std::fs::write(&p, "X=1\n").unwrap();
        let b = body(&["--env-file", p.to_str().unwrap(), "-e", "Y=2", "busybox"]);
        assert_eq!(b["Env"], json!(["X=1", "Y=2"]));
        let (o, a) = parse(&["--env-file", "/nonexistent/env", "busybox"]);
        let lookup = |_: &str| None;
        assert_eq!(
            build_request(&o, &a, (0, 0), &lookup).unwrap_err(),
            "open /nonexistent/env: no such file or directory"
        );
    }
}
