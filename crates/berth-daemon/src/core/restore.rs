//! At daemon start: reconnect to the shims of containers that were running,
//! and record the exits that happened while the daemon was away.

use std::sync::Arc;
use std::time::Duration;

use berth_runtime::driver::{self, ShimMessage};
use berth_runtime::protocol::Event;
use berth_runtime::shim;

use super::Daemon;

impl Daemon {
    /// Reconnects every container that was running. Never blocks start-up
    /// for long: each shim gets a short time limit.
    pub async fn restore(self: &Arc<Self>) {
        self.reconnect().await;
        self.resume_policies().await;
    }

    async fn reconnect(self: &Arc<Self>) {
        for c in self.containers() {
            if !c.status().is_active() {
                continue;
            }
            let state_dir = self.state_dir(&c.id);
            let connected = tokio::time::timeout(Duration::from_secs(3), async {
                let (client, mut rx) = driver::connect(&state_dir).await.ok()?;
                match rx.recv().await {
                    Some(ShimMessage::Event(Event::Hello { pid, exit, .. })) => {
                        Some((client, rx, pid, exit))
                    }
                    _ => None,
                }
            })
            .await
            .ok()
            .flatten();
            match connected {
                Some((_, _, _, Some(exit))) => self.on_exit(&c, Some(exit)).await,
                Some((client, rx, pid, None)) => {
                    tracing::info!(id = %c.id, pid, "reconnected to running container");
                    c.rec().state.pid = pid as i64;
                    *c.shim.lock().unwrap_or_else(|p| p.into_inner()) = Some(client.clone());
                    c.stdio.set_exit_file(state_dir.join(shim::files::EXIT));
                    c.stdio.link_shim(&client).await;
                    let stdin_once = c.rec().config.stdin_once;
                    c.stdio.spawn_pump(client, stdin_once, c.stopped());
                    let d = self.clone();
                    let cc = c.clone();
                    tokio::spawn(async move { d.monitor(cc, rx).await });
                    self.health_start(&c);
                }
                None => {
                    let status = shim::read_exit(&state_dir);
                    tracing::info!(id = %c.id, ?status, "container's shim is gone; recording its exit");
                    self.on_exit(&c, status).await;
                }
            }
        }
    }
}
