//! `rm` and `rename`.

use std::sync::Arc;

use super::container::{AttachMsg, Container, Status};
use super::{names, Daemon};
use crate::error::{DaemonError, Result};

impl Daemon {
    /// Removes a container (killing it first when `force`).
    pub async fn remove(self: &Arc<Self>, c: &Arc<Container>, force: bool) -> Result<()> {
        let _op = c.op.lock().await;
        if c.lifecycle.borrow().removed {
            return Ok(());
        }
        c.cancel_restart();
        let status = c.status();
        if status == Status::Restarting {
            if !force {
                return Err(DaemonError::Conflict(format!(
                    "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                    c.id
                )));
            }
        } else if status.is_active() {
            if !force {
                let what = if status == Status::Paused {
                    "paused"
                } else {
                    "running"
                };
                return Err(DaemonError::Conflict(format!(
                    "You cannot remove a {what} container {}. Stop the container before attempting removal or force remove",
                    c.id
                )));
            }
            self.kill_and_wait(c).await?;
        }
        c.rec().state.status = Status::Removing;
        // Released at exit already; this only catches what a crash left.
        self.release_network(c).await;
        let rootfs = self.rootfs(&c.id);
        berth_image::mount::unmount(&rootfs)?;
        // Row first: once it is gone the container is gone, and any
        // directory a crash leaves behind is swept at the next start.
        self.meta.delete_container(&c.id)?;
        self.forget(&c.id);
        self.execs.forget_container(&c.id);
        for dir in [self.container_dir(&c.id), self.state_dir(&c.id)] {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("removing {}: {e}", dir.display());
                }
            }
        }
        c.stdio.publish(AttachMsg::End);
        self.bury(&c.id, &c.name(), c.rec().state.exit_code);
        c.lifecycle.send_modify(|l| l.removed = true);
        self.container_event(c, "destroy", &[]);
        // `--rm` takes the anonymous volumes along (`rm -v` asks for it).
        let (auto_remove, mounts) = {
            let r = c.rec();
            (r.host_config.auto_remove, r.mounts.clone())
        };
        if auto_remove {
            self.remove_anonymous_volumes(&mounts);
        }
        // Layers of a force-removed image were kept for this container only.
        let image_id = c.rec().image_id.clone();
        if matches!(self.meta.image(&image_id), Ok(None)) {
            let images = self.images.clone();
            let _ = tokio::task::spawn_blocking(move || images.gc_layers()).await;
        }
        tracing::debug!(id = %c.id, "container removed");
        Ok(())
    }

    /// Renames a container.
    pub fn rename(&self, c: &Arc<Container>, new_name: &str) -> Result<()> {
        let new = names::validate(new_name)?;
        let old = c.name();
        if new == old {
            return Err(DaemonError::BadRequest(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        if self.containers().iter().any(|o| o.rec().name == new) {
            return Err(self.name_conflict(&new));
        }
        let _saving = c.saving();
        let json = {
            let mut r = c.rec();
            r.name = new.clone();
            serde_json::to_string(&*r).map_err(|e| DaemonError::Internal(e.to_string()))?
        };
        if let Err(e) = self.meta.rename_container(&c.id, &new, &json) {
            c.rec().name = old;
            return Err(match e {
                berth_store::StoreError::Conflict(_) => self.name_conflict(&new),
                other => other.into(),
            });
        }
        self.container_event(c, "rename", &[("oldName", &format!("/{old}"))]);
        Ok(())
    }
}
