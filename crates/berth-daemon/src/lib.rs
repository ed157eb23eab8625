//! berth's daemon: the Docker Engine API on a Unix socket ([`api`]) in front
//! of a lifecycle core ([`core`]) that knows nothing of HTTP, so that other
//! fronts (the Kubernetes CRI) can sit beside it later.

pub mod api;
pub mod config;
pub mod core;
mod error;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use clap::Parser;
use tokio::net::UnixListener;

pub use config::{DaemonArgs, DaemonConfig};
pub use error::DaemonError;

/// Entry point of `berth daemon ARGS…` (ARGS without "daemon"); returns the
/// exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let argv = std::iter::once(OsString::from("berth daemon")).chain(args);
    let a = match DaemonArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let cfg = match DaemonConfig::from_args(&a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            return 1;
        }
    };
    init_tracing(&cfg.log_level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth daemon: starting the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            1
        }
    }
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{level},hyper=warn,axum=warn"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Binds the socket, refusing to steal it from a daemon that answers.
async fn bind(socket: &Path, group: Option<&str>) -> Result<UnixListener, DaemonError> {
    let io = |what: &str, e: std::io::Error| {
        DaemonError::Internal(format!("{what} {}: {e}", socket.display()))
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create directory of", e))?;
    }
    if socket.exists() {
        if tokio::net::UnixStream::connect(socket).await.is_ok() {
            return Err(DaemonError::Internal(format!(
                "another daemon is already listening on {}",
                socket.display()
            )));
        }
        std::fs::remove_file(socket).map_err(|e| io("remove stale socket", e))?;
    }
    let l = UnixListener::bind(socket).map_err(|e| io("listen on", e))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| io("chmod", e))?;
    if let Some(g) = group {
        let gid = nix::unistd::Group::from_name(g)
            .ok()
            .flatten()
            .map(|g| g.gid)
            .ok_or_else(|| DaemonError::Internal(format!("group {g} not found")))?;
        nix::unistd::chown(socket, None, Some(gid)).map_err(|e| io("chown", e.into()))?;
    }
    Ok(l)
}

/// How long open API connections may run on after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Runs the daemon until SIGTERM or SIGINT. Containers keep running after
/// it stops; the next daemon reconnects to them.
pub async fn run(cfg: DaemonConfig) -> Result<(), DaemonError> {
    let socket = cfg.socket.clone();
    let group = cfg.group.clone();
    let listener = bind(&socket, group.as_deref()).await?;
    // Like /var/run/docker.pid: scripts find the daemon by it.
    let pid_file = cfg.exec_root.join("berth.pid");
    let _ = std::fs::create_dir_all(&cfg.exec_root);
    let _ = std::fs::write(&pid_file, format!("{}\n", std::process::id()));
    let d = tokio::task::spawn_blocking(move || core::Daemon::open(cfg))
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))??;
    d.open_networking().await?;
    d.restore().await;
    tracing::info!(socket = %socket.display(), data_root = %d.cfg.data_root.display(), "berth daemon listening");
    let cgroup_parent = format!("/{}", d.cfg.cgroup_parent);
    let service = api::service(d.clone());
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::info!("shutting down (containers keep running)");
        let _ = stopping_tx.send(true);
    };
    use axum::ServiceExt;
    let serve = axum::serve(
        listener,
        ServiceExt::<axum::extract::Request>::into_make_service(service),
    )
    .with_graceful_shutdown(shutdown);
    // Streams that never end on their own (`events`, `logs -f`, an attach)
    // must not hold the daemon: they get a few seconds, as with dockerd.
    let grace = async {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let served = tokio::select! {
        r = serve => r,
        _ = grace => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}: closing them");
            Ok(())
        }
    };
    // Requests cut off above may have left a start or stop running.
    d.settle_operations(std::time::Duration::from_secs(10))
        .await;
    d.shutdown_networking().await;
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(&pid_file);
    berth_runtime::cgroups::Hierarchy::detect().remove_if_empty(&cgroup_parent);
    served.map_err(|e| DaemonError::Internal(format!("serving: {e}")))
}
