//! The daemon's side of a build: RUN steps as ordinary containers
//! (create, start, output, wait, remove), for `berth_build::Builder`.

use std::path::PathBuf;
use std::sync::Arc;

use berth_api::container::{ContainerConfig, ContainerCreateBody, HostConfig};
use berth_api::StrSlice;
use berth_build::{BuildError, RunBackend, RunOutcome, RunRequest};

use super::{CreateRequest, Daemon, WaitCondition};

/// Runs build containers through the daemon. Its methods block: call them
/// from a blocking thread, never from the async runtime's workers.
#[derive(Debug)]
pub struct BuildBackend {
    d: Arc<Daemon>,
    rt: tokio::runtime::Handle,
}

impl BuildBackend {
    /// A backend over `d`, driving async work on `rt`.
    pub fn new(d: Arc<Daemon>, rt: tokio::runtime::Handle) -> BuildBackend {
        BuildBackend { d, rt }
    }
}

fn err(e: impl std::fmt::Display) -> BuildError {
    BuildError::Internal(e.to_string())
}

impl RunBackend for BuildBackend {
    fn create(&self, req: &RunRequest) -> Result<String, BuildError> {
        let config = ContainerConfig {
            image: req.image.clone(),
            cmd: Some(StrSlice(req.cmd.clone())),
            // An empty entrypoint: the step's command runs as given.
            entrypoint: Some(StrSlice(Vec::new())),
            env: Some(req.env.clone()),
            user: req.user.clone(),
            working_dir: req.workdir.clone(),
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        let body = ContainerCreateBody {
            config,
            host_config: Some(HostConfig::default()),
            networking_config: None,
        };
        let (id, _) = self
            .d
            .create(CreateRequest { name: None, body })
            .map_err(|e| match e.status().as_u16() {
                400 | 404 => BuildError::Syntax(e.to_string()),
                _ => err(e),
            })?;
        Ok(id)
    }

    fn run(&self, id: &str, output: &mut dyn FnMut(&[u8])) -> Result<RunOutcome, BuildError> {
        let d = self.d.clone();
        let c = d.container(id).map_err(err)?;
        // Subscribed before the start, so no output is missed.
        let mut sub = c.stdio.subscribe();
        self.rt
            .block_on(async { d.start(&c).await })
            .map_err(|e| BuildError::Syntax(e.to_string()))?;
        while let Some((_, data)) = self.rt.block_on(sub.recv()) {
            output(&data);
        }
        let code = self
            .rt
            .block_on(super::wait::wait(&c, WaitCondition::NotRunning));
        Ok(RunOutcome { exit_code: code })
    }

    fn upper_dir(&self, id: &str) -> PathBuf {
        self.d.container_dir(id).join("upper")
    }

    fn remove(&self, id: &str) {
        let d = self.d.clone();
        if let Ok(c) = d.container(id) {
            if let Err(e) = self.rt.block_on(async { d.remove(&c, true).await }) {
                tracing::warn!(%id, "removing build container: {e}");
            }
        }
    }
}
