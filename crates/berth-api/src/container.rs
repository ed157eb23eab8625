//! Container objects of the Engine API: the create body, inspect and list
//! shapes, and small responses.
//!
//! Structs deserialize leniently (`default`, unknown fields kept in `extra`)
//! because clients of every version send fields berth does not know yet;
//! keeping them lets inspect echo back what the client asked for.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::StrSlice;

/// Unknown JSON fields, kept verbatim.
pub type Extra = BTreeMap<String, Value>;

/// `Config` of a container (and of an image): what to run and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<StrSlice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    pub image: String,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub working_dir: String,
    pub entrypoint: Option<StrSlice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    pub on_build: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<StrSlice>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Config.Healthcheck` (Docker's `container.HealthConfig`): durations in
/// nanoseconds. Typed so that its JSON keys come in Docker's order (`Test`,
/// `Interval`, `Timeout`, `StartPeriod`, `StartInterval`, `Retries`) and,
/// as Go's `omitempty`, unset ones are left out. `null` reads as unset,
/// since docker-py sends every key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` off, `["CMD", args…]`, `["CMD-SHELL", cmd]`.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub test: Vec<String>,
    /// Time between probes.
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_default")]
    pub interval: i64,
    /// Time a probe may take.
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_default")]
    pub timeout: i64,
    /// Grace period after start when failures do not count.
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_default")]
    pub start_period: i64,
    /// Time between probes during the start period.
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_default")]
    pub start_interval: i64,
    /// Consecutive failures before `unhealthy`.
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_default")]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A field whose `null` means its default.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: Option<BTreeMap<String, String>>,
}

/// `HostConfig`: how the host runs the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    pub log_config: LogConfig,
    pub network_mode: String,
    pub port_bindings: Option<BTreeMap<String, Value>>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub volume_driver: String,
    pub volumes_from: Option<Vec<String>>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub dns: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    pub ipc_mode: String,
    pub cgroup: String,
    pub links: Option<Vec<String>>,
    pub oom_score_adj: i64,
    pub pid_mode: String,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub userns_mode: String,
    pub shm_size: i64,
    pub runtime: String,
    pub isolation: String,
    pub cpu_shares: i64,
    pub memory: i64,
    pub nano_cpus: i64,
    pub cgroup_parent: String,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    pub pids_limit: Option<i64>,
    pub ulimits: Option<Vec<Value>>,
    pub init: Option<bool>,
    pub tmpfs: Option<BTreeMap<String, String>>,
    pub mounts: Option<Vec<Value>>,
    pub console_size: Option<Vec<u32>>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `NetworkingConfig` of the create body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: Option<BTreeMap<String, Value>>,
}

/// Body of `POST /containers/create`: the Config fields at top level plus
/// HostConfig and NetworkingConfig.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreateBody {
    #[serde(flatten)]
    pub config: ContainerConfig,
    pub host_config: Option<HostConfig>,
    pub networking_config: Option<NetworkingConfig>,
}

/// `201` answer of create (and of exec create, without `Warnings`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateResponse {
    pub id: String,
    pub warnings: Vec<String>,
}

/// One item of `GET /containers/{id}/changes` (`docker diff`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilesystemChange {
    /// Absolute path in the container.
    pub path: String,
    /// 0 modified, 1 added, 2 deleted.
    pub kind: u8,
}

/// `201` answer of `POST /commit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CommitResponse {
    /// The new image's ID (`sha256:…`).
    pub id: String,
}

/// The error object of a wait response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitError {
    pub message: String,
}

/// Body of `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitResponse {
    pub status_code: i64,
    pub error: Option<WaitError>,
}

/// `State` of container inspect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Value>,
}

/// `GraphDriver` of inspect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GraphDriver {
    pub name: String,
    pub data: Option<BTreeMap<String, String>>,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: GraphDriver,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub mounts: Vec<Value>,
    pub config: ContainerConfig,
    pub network_settings: Value,
}

/// One port mapping in a list entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortSummary {
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub private_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    #[serde(rename = "Type")]
    pub kind: String,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<PortSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: Value,
    pub network_settings: Value,
    pub mounts: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_from_docker_cli() {
        // Trimmed from what docker CLI 28.2 sends for `run --rm busybox echo hi`.
        let body = r#"{"Hostname":"","AttachStdout":true,"Tty":false,"Env":null,
            "Cmd":["echo","hi"],"Image":"busybox","Volumes":{},"Entrypoint":null,
            "OnBuild":null,"Labels":{},"NewerField":1,
            "HostConfig":{"Binds":null,"LogConfig":{"Type":"","Config":{}},"NetworkMode":"default",
              "RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,
              "ConsoleSize":[0,0],"MemorySwappiness":-1,"KernelMemory":0},
            "NetworkingConfig":{"EndpointsConfig":{"default":{}}}}"#;
        let b: ContainerCreateBody = serde_json::from_str(body).unwrap();
        assert_eq!(b.config.image, "busybox");
        assert_eq!(b.config.cmd.as_ref().unwrap().0, vec!["echo", "hi"]);
        let hc = b.host_config.unwrap();
        assert!(hc.auto_remove);
        assert_eq!(hc.memory_swappiness, Some(-1));
        assert!(hc.extra.contains_key("KernelMemory"));
        assert!(b.config.extra.contains_key("NewerField"));
    }

    #[test]
    fn healthcheck_keys_in_dockers_order() {
        let hc: HealthConfig = serde_json::from_str(
            r#"{"Retries":3,"StartInterval":2,"StartPeriod":0,"Timeout":5,"Interval":1,"Test":["CMD-SHELL","true"]}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&hc).unwrap(),
            r#"{"Test":["CMD-SHELL","true"],"Interval":1,"Timeout":5,"StartInterval":2,"Retries":3}"#
        );
        // docker-py sends every key, unset ones as null.
        let hc: HealthConfig = serde_json::from_str(
            r#"{"Test":["CMD","x"],"Interval":null,"Timeout":null,"Retries":null,"StartPeriod":null}"#,
        )
        .unwrap();
        assert_eq!(hc.test, vec!["CMD", "x"]);
        assert_eq!(hc.interval, 0);
        assert_eq!(
            serde_json::to_string(&HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            })
            .unwrap(),
            r#"{"Test":["NONE"]}"#
        );
        let c: ContainerConfig = serde_json::from_str(r#"{"Healthcheck":{"Test":null}}"#).unwrap();
        assert_eq!(c.healthcheck, Some(HealthConfig::default()));
    }

    #[test]
    fn wait_shape() {
        let w = WaitResponse {
            status_code: 3,
            error: None,
        };
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            r#"{"StatusCode":3,"Error":null}"#
        );
    }
}
