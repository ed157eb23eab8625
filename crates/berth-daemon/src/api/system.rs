//! `/_ping`, `/version`, `/info`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::system::{ComponentVersion, Info, PluginsInfo, SwarmInfo, Version};
use berth_api::version::{ENGINE_VERSION, MAX_API_VERSION, MIN_API_VERSION};
use serde_json::json;

use crate::core::Daemon;
use crate::error::Result;

pub(super) async fn ping(method: Method) -> Response {
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from("OK")
    };
    (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (header::PRAGMA, "no-cache"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        body,
    )
        .into_response()
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    berth_image::host_arch()
}

pub(super) async fn version() -> Json<Version> {
    let details = json!({
        "ApiVersion": MAX_API_VERSION, "Arch": arch(), "BuildTime": "", "Experimental": "false",
        "GitCommit": "", "GoVersion": "", "KernelVersion": kernel_version(),
        "MinAPIVersion": MIN_API_VERSION, "Os": "linux"
    });
    Json(Version {
        platform: json!({"Name": "berth"}),
        components: vec![ComponentVersion {
            name: "Engine".into(),
            version: ENGINE_VERSION.into(),
            details: Some(details),
        }],
        version: ENGINE_VERSION.into(),
        api_version: MAX_API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        git_commit: String::new(),
        go_version: format!("rust (berth {ENGINE_VERSION})"),
        os: "linux".into(),
        arch: arch().into(),
        kernel_version: kernel_version(),
        build_time: String::new(),
    })
}

fn os_name() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> i64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// "1" on cgroup v1 (and hybrid) hosts, "2" on unified ones.
pub(crate) fn cgroup_version() -> &'static str {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "2",
        _ => "1",
    }
}

pub(super) async fn info(State(d): State<Arc<Daemon>>) -> Result<Json<Info>> {
    let containers = d.containers();
    let count = |f: &dyn Fn(crate::core::Status) -> bool| {
        containers.iter().filter(|c| f(c.status())).count() as i64
    };
    let running = count(&|s| s == crate::core::Status::Running);
    let paused = count(&|s| s == crate::core::Status::Paused);
    let images = d.meta.images()?.len() as i64;
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut runtimes = serde_json::Map::new();
    for (name, path) in &d.cfg.runtimes {
        let p = path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "berth (built in, libcontainer)".into());
        runtimes.insert(name.clone(), json!({"path": p}));
    }
    Ok(Json(Info {
        id: d.meta_id(),
        containers: containers.len() as i64,
        containers_running: running,
        containers_paused: paused,
        containers_stopped: containers.len() as i64 - running - paused,
        images,
        driver: "overlay2".into(),
        driver_status: vec![
            ["Backing Filesystem".into(), "extfs".into()],
            ["Supports d_type".into(), "true".into()],
        ],
        plugins: PluginsInfo {
            volume: vec!["local".into()],
            network: vec!["bridge".into(), "host".into(), "none".into()],
            authorization: None,
            log: vec!["json-file".into(), "none".into()],
        },
        memory_limit: true,
        swap_limit: true,
        cpu_cfs_period: true,
        cpu_cfs_quota: true,
        cpu_shares: true,
        cpu_set: true,
        pids_limit: true,
        ipv4_forwarding: true,
        debug: d.cfg.log_level == "debug",
        n_fd: std::fs::read_dir("/proc/self/fd")
            .map(|r| r.count() as i64)
            .unwrap_or(0),
        oom_kill_disable: false,
        n_goroutines: 0,
        system_time: crate::core::now_rfc3339(),
        logging_driver: "json-file".into(),
        cgroup_driver: "cgroupfs".into(),
        cgroup_version: cgroup_version().into(),
        n_events_listener: d.events.listeners() as i64,
        kernel_version: kernel_version(),
        operating_system: os_name(),
        os_version: String::new(),
        os_type: "linux".into(),
        architecture: std::env::consts::ARCH.into(),
        ncpu: std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1),
        mem_total: mem_total(),
        generic_resources: None,
        index_server_address: "https://index.docker.io/v1/".into(),
        registry_config: json!({
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}},
            "Mirrors": []
        }),
        docker_root_dir: d.cfg.data_root.display().to_string(),
        http_proxy: String::new(),
        https_proxy: String::new(),
        no_proxy: String::new(),
        name: hostname,
        labels: Vec::new(),
        experimental_build: false,
        server_version: ENGINE_VERSION.into(),
        runtimes: serde_json::Value::Object(runtimes),
        default_runtime: d.cfg.default_runtime.clone(),
        swarm: SwarmInfo::default(),
        live_restore_enabled: true,
        isolation: String::new(),
        init_binary: String::new(),
        containerd_commit: Default::default(),
        runc_commit: Default::default(),
        init_commit: Default::default(),
        security_options: vec!["name=cgroupns".into()],
        cdi_spec_dirs: None,
        warnings: Vec::new(),
    }))
}
