//! The daemon's side of a build: RUN steps as ordinary containers
//! (create, start, output, wait, remove), for `berth_build::Builder`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_api::container::{ContainerConfig, ContainerCreateBody, HostConfig};
use berth_api::Reference;
use berth_api::StrSlice;
use berth_build::{BuildError, BuildOutput, RunBackend, RunOutcome, RunRequest};
use berth_registry::client::{AuthConfig, Target};

use super::distribution::{self as dist, PullRequest};
use super::{CreateRequest, Daemon, WaitCondition};

/// Runs build containers and pulls through the daemon. Its methods block:
/// call them from a blocking thread, never from the async runtime's
/// workers.
#[derive(Debug)]
pub struct BuildBackend {
    d: Arc<Daemon>,
    rt: tokio::runtime::Handle,
    /// Credentials by registry host (`X-Registry-Config`).
    auths: HashMap<String, AuthConfig>,
    /// Stages build in parallel: two naming the same missing image pull
    /// it once, one after the other.
    pulling: Mutex<()>,
}

impl BuildBackend {
    /// A backend over `d`, driving async work on `rt`; `auths` are the
    /// credentials pulls may use, by registry host.
    pub fn new(
        d: Arc<Daemon>,
        rt: tokio::runtime::Handle,
        auths: HashMap<String, AuthConfig>,
    ) -> BuildBackend {
        BuildBackend {
            d,
            rt,
            auths,
            pulling: Mutex::new(()),
        }
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
            host_config: Some(HostConfig {
                network_mode: req.network_mode.clone().unwrap_or_default(),
                ..Default::default()
            }),
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

    fn pull(
        &self,
        image: &str,
        platform: Option<&str>,
        out: &mut dyn FnMut(BuildOutput),
    ) -> Result<(), BuildError> {
        let reference = Reference::parse_normalized(image)
            .map_err(|e| BuildError::Syntax(format!("invalid reference {image:?}: {e}")))?;
        let target = Target::from_reference(&reference);
        let auth = self.auths.get(&target.host).cloned().unwrap_or_default();
        let req = PullRequest {
            reference,
            platform: platform.map(str::to_string),
            auth,
        };
        let _one = self.pulling.lock().unwrap_or_else(|p| p.into_inner());
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let d = self.d.clone();
        let task = self.rt.spawn(async move {
            let plan = dist::resolve_pull(&d, &req).await?;
            dist::run_pull(&d, plan, &tx).await
        });
        // The sender lives in the task: the loop ends when the pull does.
        while let Some(m) = rx.blocking_recv() {
            out(BuildOutput::Progress(m));
        }
        match self.rt.block_on(task) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.status == 404 => Err(BuildError::NotFound(e.message)),
            Ok(Err(e)) if e.status < 500 => Err(BuildError::Syntax(e.message)),
            Ok(Err(e)) => Err(BuildError::Internal(e.message)),
            Err(e) => Err(err(format!("pull worker failed: {e}"))),
        }
    }
}
