//! `create`: a container record, its directories and its row.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api::container::{ContainerConfig, ContainerCreateBody};
use berth_api::StrSlice;

use super::container::{Container, Record, State, ZERO_TIME};
use super::{etc_files, names, new_id, now_rfc3339, Daemon};
use crate::error::{DaemonError, Result};

/// A create request: `?name=` and the body.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Requested name.
    pub name: Option<String>,
    /// The body.
    pub body: ContainerCreateBody,
}

/// Docker's merge of image defaults into the user's config.
fn merge(user: &mut ContainerConfig, image: &ContainerConfig) {
    let entrypoint_empty = user.entrypoint.as_ref().is_none_or(StrSlice::is_empty);
    if entrypoint_empty {
        if user.cmd.as_ref().is_none_or(StrSlice::is_empty) {
            user.cmd = image.cmd.clone();
            user.args_escaped = image.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint = image.entrypoint.clone();
        }
    }
    // `--entrypoint ""` arrives as [""]: it clears the image's entrypoint.
    if user
        .entrypoint
        .as_ref()
        .is_some_and(|e| e.0.len() == 1 && e.0[0].is_empty())
    {
        user.entrypoint = Some(StrSlice(Vec::new()));
    }
    let mut env = image.env.clone().unwrap_or_default();
    for e in user.env.clone().unwrap_or_default() {
        let key = e.split('=').next().unwrap_or("").to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(e);
    }
    user.env = Some(env);
    if user.working_dir.is_empty() {
        user.working_dir = image.working_dir.clone();
    }
    if user.user.is_empty() {
        user.user = image.user.clone();
    }
    if user.stop_signal.is_none() {
        user.stop_signal = image.stop_signal.clone();
    }
    super::health::merge(&mut user.healthcheck, image.healthcheck.as_ref());
    if user.on_build.is_none() {
        user.on_build = image.on_build.clone();
    }
    if user.shell.is_none() {
        user.shell = image.shell.clone();
    }
    let mut labels: BTreeMap<String, String> = image.labels.clone().unwrap_or_default();
    labels.extend(user.labels.clone().unwrap_or_default());
    user.labels = Some(labels);
    for (mine, theirs) in [
        (&mut user.exposed_ports, &image.exposed_ports),
        (&mut user.volumes, &image.volumes),
    ] {
        if let Some(t) = theirs {
            let m = mine.get_or_insert_with(BTreeMap::new);
            for (k, v) in t {
                m.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

impl Daemon {
    /// Creates a container; returns its ID and warnings.
    pub fn create(&self, req: CreateRequest) -> Result<(String, Vec<String>)> {
        let CreateRequest { name, body } = req;
        let mut config = body.config;
        let mut host_config = body.host_config.unwrap_or_default();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = names::validate(&n)?;
                self.check_name_free(&n)?;
                n
            }
            None => names::generate(&|n| self.check_name_free(n).is_err()),
        };
        super::health::validate(&config)?;
        if config.image.is_empty() {
            return Err(DaemonError::BadRequest("No image was specified".into()));
        }
        let image = self.images.resolve(&config.image)?;
        if let Some(img_cfg) = &image.config.config {
            merge(&mut config, img_cfg);
        } else {
            merge(&mut config, &ContainerConfig::default());
        }
        let mut command: Vec<String> = config.entrypoint.clone().map(|e| e.0).unwrap_or_default();
        command.extend(config.cmd.clone().map(|c| c.0).unwrap_or_default());
        if command.is_empty() {
            return Err(DaemonError::BadRequest("No command specified".into()));
        }
        let runtime = if host_config.runtime.is_empty() {
            self.cfg.default_runtime.clone()
        } else {
            host_config.runtime.clone()
        };
        if !self.cfg.runtimes.contains_key(&runtime) {
            return Err(DaemonError::BadRequest(format!(
                "Unknown runtime specified {runtime}"
            )));
        }
        if host_config.network_mode.is_empty() {
            host_config.network_mode = "default".into();
        }
        if host_config.restart_policy.name.is_empty() {
            host_config.restart_policy.name = "no".into();
        }
        host_config.runtime = runtime.clone();
        if host_config.init == Some(true)
            && self.cfg.runtimes.get(&runtime).is_some_and(|b| b.is_some())
        {
            return Err(DaemonError::BadRequest(format!(
                "--init is only available with the built-in runtime, not {runtime}"
            )));
        }
        if host_config.auto_remove && !matches!(host_config.restart_policy.name.as_str(), "" | "no")
        {
            return Err(DaemonError::BadRequest(
                "can't create 'AutoRemove' container with restart policy".into(),
            ));
        }
        let warnings = super::spec_map::validate(&config, &host_config)?;
        super::logs::merge_log_config(&self.cfg, &mut host_config.log_config)?;
        // Docker's adaptContainerSettings: what inspect then shows
        // (MemorySwap, ShmSize, IpcMode, masked paths…).
        super::spec_map::adapt(&mut host_config, super::spec_map::HostFacts::get());
        if config.hostname.is_empty()
            && (host_config.uts_mode == "host" || host_config.network_mode == "host")
        {
            // A container sharing the host's UTS namespace has its hostname.
            if let Ok(h) = nix::unistd::gethostname() {
                config.hostname = h.to_string_lossy().into_owned();
            }
        }

        if let Some(other) = host_config.network_mode.strip_prefix("container:") {
            if !config.hostname.is_empty() {
                return Err(DaemonError::BadRequest(
                    "conflicting options: hostname and the network mode".into(),
                ));
            }
            // It shares the other container's network and so its name.
            let o = self.container(other).map_err(|e| match e {
                DaemonError::NotFound(m) => DaemonError::BadRequest(m),
                e => e,
            })?;
            config.hostname = o.rec().config.hostname.clone();
        }

        let mounts = self.plan_mounts(&config, &host_config)?;
        let id = new_id();
        if config.hostname.is_empty() {
            config.hostname = id[..12].to_string();
        }
        let mut rec = Record {
            id: id.clone(),
            name: name.clone(),
            created: now_rfc3339(),
            image_name: config.image.clone(),
            image_id: image.id().to_string(),
            path: command[0].clone(),
            args: command[1..].to_vec(),
            state: State {
                started_at: ZERO_TIME.into(),
                finished_at: ZERO_TIME.into(),
                ..Default::default()
            },
            restart_count: 0,
            runtime,
            top_chain: image.row.chain_ids.last().cloned(),
            config,
            host_config,
            networks: Default::default(),
            netns: None,
            mounts,
        };
        let endpoints = body
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.as_ref());
        self.plan_networks(&mut rec, endpoints)?;
        // Volumes last before the files: whatever fails below removes them.
        let made_volumes = self.make_mounts(&mut rec.mounts)?;

        // Files first, then the row: a crash in between leaves a directory
        // without a row, which the next start sweeps.
        let dir = self.container_dir(&id);
        let made = std::fs::create_dir_all(&dir)
            .map_err(|e| DaemonError::Internal(format!("create {}: {e}", dir.display())))
            .and_then(|_| {
                etc_files::write_all(
                    &dir,
                    &rec.config.hostname,
                    &rec.config.domainname,
                    rec.host_config.extra_hosts.as_deref().unwrap_or_default(),
                )
            })
            .and_then(|_| self.insert_row(&rec));
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            self.undo_volumes(&made_volumes);
            return Err(match e {
                DaemonError::Store(berth_store::StoreError::Conflict(_)) => {
                    self.name_conflict(&name)
                }
                other => other,
            });
        }
        let c = Arc::new(Container::new(rec));
        self.insert(c.clone());
        self.container_event(&c, "create", &[]);
        tracing::debug!(%id, %name, "container created");
        Ok((id, warnings))
    }

    fn check_name_free(&self, name: &str) -> Result<()> {
        let taken = self.containers().iter().any(|c| c.rec().name == name);
        if taken {
            return Err(self.name_conflict(name));
        }
        Ok(())
    }

    pub(super) fn name_conflict(&self, name: &str) -> DaemonError {
        let owner = self
            .containers()
            .iter()
            .find(|c| c.rec().name == name)
            .map(|c| c.id.clone())
            .unwrap_or_default();
        DaemonError::Conflict(format!(
            "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Option<StrSlice> {
        Some(StrSlice(v.iter().map(|x| x.to_string()).collect()))
    }

    #[test]
    fn merge_rules() {
        let image = ContainerConfig {
            cmd: s(&["sh"]),
            entrypoint: s(&["/entry"]),
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            working_dir: "/w".into(),
            ..Default::default()
        };
        let mut u = ContainerConfig {
            env: Some(vec!["A=2".into()]),
            ..Default::default()
        };
        merge(&mut u, &image);
        assert_eq!(u.cmd, s(&["sh"]));
        assert_eq!(u.entrypoint, s(&["/entry"]));
        assert_eq!(u.env.unwrap(), vec!["PATH=/bin", "A=2"]);
        assert_eq!(u.working_dir, "/w");

        // A user entrypoint drops the image's cmd.
        let mut u = ContainerConfig {
            entrypoint: s(&["/mine"]),
            ..Default::default()
        };
        merge(&mut u, &image);
        assert_eq!(u.cmd, None);

        // --entrypoint "" clears the image's entrypoint and keeps the user's cmd.
        let mut u = ContainerConfig {
            entrypoint: s(&[""]),
            cmd: s(&["echo"]),
            ..Default::default()
        };
        merge(&mut u, &image);
        assert_eq!(u.entrypoint, Some(StrSlice(vec![])));
        assert_eq!(u.cmd, s(&["echo"]));
    }
}
