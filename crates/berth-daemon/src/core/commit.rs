//! `commit` and `diff` (`POST /commit`, `GET /containers/{id}/changes`):
//! a container's overlay upper dir read as a list of changes, or written as
//! the top layer of a new image.
//!
//! A commit writes the layer, then the config blob, then the image row
//! (one transaction), and only then the tag: a crash at any point leaves at
//! most an unreferenced layer or an untagged image, never a tag pointing at
//! something half-made.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api::container::ContainerConfig;
use berth_api::Reference;
use berth_image::changes::apply_changes;
use berth_image::diff::{upper_changes, Change};
use berth_image::{upper_has_changes, CommitRequest, History, ImageConfig};

use super::container::{Container, Status};
use super::{now_rfc3339, Daemon};
use crate::error::{DaemonError, Result};

/// What the runtime puts in every container (mount points of the files
/// the daemon binds in, and of the kernel filesystems): not the user's
/// changes. Docker keeps them in a separate init layer.
const RUNTIME_PATHS: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "dev",
    "proc",
    "sys",
    ".dockerenv",
];

/// Config keys carried from the parent image as they are.
const INHERITED_KEYS: &[&str] = &["os.version", "os.features"];

/// What `POST /commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `repo[:tag]` for the new image.
    pub reference: Option<Reference>,
    /// `-m`: the history entry's comment.
    pub comment: String,
    /// `-a`.
    pub author: String,
    /// Freeze a running container while its changes are read.
    pub pause: bool,
    /// `-c` Dockerfile instructions.
    pub changes: Vec<String>,
    /// A config given in the request body; the container's when absent.
    pub config: Option<ContainerConfig>,
}

fn blocking(e: tokio::task::JoinError) -> DaemonError {
    DaemonError::Internal(format!("worker failed: {e}"))
}

/// dockerd's `merge`: fills what the given config leaves out from the
/// container's.
fn merge(user: &mut ContainerConfig, ctr: &ContainerConfig) {
    if user.user.is_empty() {
        user.user = ctr.user.clone();
    }
    match (&mut user.exposed_ports, &ctr.exposed_ports) {
        (Some(u), c) if !u.is_empty() => {
            for (k, v) in c.iter().flatten() {
                u.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (u, c) => *u = c.clone(),
    }
    match &mut user.env {
        Some(user_env) if !user_env.is_empty() => {
            let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
            for e in ctr.env.iter().flatten() {
                if !user_env.iter().any(|u| key(u) == key(e)) {
                    user_env.push(e.clone());
                }
            }
        }
        u => *u = ctr.env.clone(),
    }
    let labels = user.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in ctr.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let no_entrypoint = user.entrypoint.as_ref().is_none_or(|e| e.0.is_empty());
    if no_entrypoint {
        if user.cmd.as_ref().is_none_or(|c| c.0.is_empty()) {
            user.cmd = ctr.cmd.clone();
            user.shell = ctr.shell.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = ctr.entrypoint.clone();
        }
    }
    if user.healthcheck.is_none() {
        user.healthcheck = ctr.healthcheck.clone();
    }
    if user.working_dir.is_empty() {
        user.working_dir = ctr.working_dir.clone();
    }
    match (&mut user.volumes, &ctr.volumes) {
        (Some(u), c) if !u.is_empty() => {
            u.extend(c.iter().flatten().map(|(k, v)| (k.clone(), v.clone())));
        }
        (u, c) => *u = c.clone(),
    }
    if user.stop_signal.as_deref().unwrap_or("").is_empty() {
        user.stop_signal = ctr.stop_signal.clone();
    }
}

impl Daemon {
    /// `GET /containers/{id}/changes`: what the container changed in its
    /// image's filesystem, running or not.
    pub async fn changes(self: &Arc<Self>, c: &Arc<Container>) -> Result<Vec<Change>> {
        let top = c.rec().top_chain.clone();
        let upper = self.container_dir(&c.id).join("upper");
        let lowers = self.images.lower_dirs_from(top.as_deref())?;
        let list =
            tokio::task::spawn_blocking(move || upper_changes(&upper, &lowers, RUNTIME_PATHS))
                .await
                .map_err(blocking)??;
        Ok(list)
    }

    /// `POST /commit`: a new image of the container's image plus its
    /// changes; returns the image ID.
    pub async fn commit(
        self: &Arc<Self>,
        c: &Arc<Container>,
        opts: CommitOptions,
    ) -> Result<String> {
        // Held throughout: no start, stop or rm while the upper dir is read.
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        match rec.state.status {
            Status::Dead => {
                return Err(DaemonError::Conflict(format!(
                    "You cannot commit container {} which is Dead",
                    c.id
                )))
            }
            Status::Removing => {
                return Err(DaemonError::Conflict(format!(
                    "You cannot commit container {} which is being removed",
                    c.id
                )))
            }
            _ => {}
        }
        // The config first: a bad change must cost no pause.
        let parent = self.images.config(&rec.image_id)?;
        let mut config = opts.config.clone().unwrap_or_else(|| rec.config.clone());
        apply_changes(&opts.changes, &mut config)?;
        merge(&mut config, &rec.config);

        let frozen = opts.pause && rec.state.status == Status::Running;
        if frozen {
            self.pause_locked(c).await?;
        }
        let upper = self.container_dir(&c.id).join("upper");
        let images = self.images.clone();
        let (id, comment, author) = (c.id.clone(), opts.comment.clone(), opts.author.clone());
        let image_id = rec.image_id.clone();
        let container_config = rec.config.clone();
        let result = tokio::task::spawn_blocking(move || {
            let has_changes = upper_has_changes(&upper, RUNTIME_PATHS)?;
            let now = now_rfc3339();
            let optional = |s: &str| (!s.is_empty()).then(|| s.to_string());
            let mut history = parent.history.clone();
            history.push(History {
                created: Some(now.clone()),
                created_by: Some(
                    container_config
                        .cmd
                        .as_ref()
                        .map(|c| c.0.join(" "))
                        .unwrap_or_default(),
                ),
                author: optional(&author),
                comment: optional(&comment),
                empty_layer: !has_changes,
            });
            let image = ImageConfig {
                architecture: if parent.architecture.is_empty() {
                    berth_image::host_arch().to_string()
                } else {
                    parent.architecture.clone()
                },
                os: if parent.os.is_empty() {
                    "linux".into()
                } else {
                    parent.os.clone()
                },
                variant: parent.variant.clone(),
                created: Some(now),
                author: optional(&author),
                config: Some(config),
                container_config: Some(container_config),
                container: Some(id),
                docker_version: Some(berth_api::version::ENGINE_VERSION.to_string()),
                rootfs: parent.rootfs.clone(),
                history,
                extra: parent
                    .extra
                    .iter()
                    .filter(|(k, _)| INHERITED_KEYS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            };
            images.commit(CommitRequest {
                upper: has_changes.then_some(upper.as_path()),
                skip: RUNTIME_PATHS,
                config: image,
                parent: Some(&image_id),
                tags: &[],
            })
        })
        .await
        .map_err(blocking);
        let outcome = result
            .and_then(|r| r.map_err(DaemonError::from))
            .and_then(|id| {
                // The tag last, once the image is whole.
                let mut image_ref = String::new();
                if let Some(r) = &opts.reference {
                    self.images.tag(&id, r)?;
                    image_ref = r.familiar_string();
                    self.image_event("tag", &id, &image_ref);
                }
                self.container_event(
                    c,
                    "commit",
                    &[
                        ("comment", &opts.comment),
                        ("imageID", &id),
                        ("imageRef", &image_ref),
                    ],
                );
                Ok(id)
            });
        // Thawed whatever happened (after the commit event, as dockerd's
        // deferred unpause); not if the process went meanwhile.
        if frozen && c.status() == Status::Paused {
            if let Err(e) = self.unpause_locked(c).await {
                tracing::error!(id = %c.id, "unpausing after commit: {e}");
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::StrSlice;

    #[test]
    fn merge_fills_gaps_from_the_container() {
        let ctr = ContainerConfig {
            user: "app".into(),
            env: Some(vec!["A=1".into(), "B=2".into()]),
            cmd: Some(StrSlice(vec!["sh".into()])),
            working_dir: "/srv".into(),
            labels: Some([("l".to_string(), "c".to_string())].into()),
            ..Default::default()
        };
        let mut user = ContainerConfig {
            env: Some(vec!["B=3".into()]),
            labels: Some([("l".to_string(), "u".to_string())].into()),
            ..Default::default()
        };
        user.exposed_ports = Some([("80/tcp".to_string(), serde_json::json!({}))].into());
        merge(&mut user, &ctr);
        assert!(user.exposed_ports.unwrap().contains_key("80/tcp"));
        assert_eq!(user.user, "app");
        assert_eq!(user.env.unwrap(), vec!["B=3", "A=1"]);
        assert_eq!(user.cmd.unwrap().0, vec!["sh"]);
        assert_eq!(user.working_dir, "/srv");
        assert_eq!(user.labels.unwrap()["l"], "u");

        // An entrypoint of its own keeps its (absent) command.
        let mut user = ContainerConfig {
            entrypoint: Some(StrSlice(vec!["/bin/echo".into()])),
            ..Default::default()
        };
        merge(&mut user, &ctr);
        assert!(user.cmd.is_none());
    }
}
