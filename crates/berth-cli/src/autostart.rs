//! Starting a daemon when none answers on the default socket, so that a
//! fresh install needs no service set-up. Only for the default host (not
//! `-H` / `BERTH_HOST`), and not when `BERTH_NO_AUTOSTART=1`.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{Client, ClientError};

/// Where the started daemon's output goes.
pub(crate) const LOG_PATH: &str = "/run/berth/daemon.log";
/// How long to wait for the started daemon to answer `/_ping`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a failed connection calls for starting a daemon: nothing
/// listens on the default socket (missing, or refusing connections), the
/// host was not chosen by the user, and autostart is not disabled.
pub(crate) fn applies(err: &ClientError, host_chosen: bool) -> bool {
    if host_chosen || disabled(std::env::var("BERTH_NO_AUTOSTART").ok().as_deref()) {
        return false;
    }
    match err {
        ClientError::Connect { source, .. } => {
            matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            )
        }
        _ => false,
    }
}

fn disabled(value: Option<&str>) -> bool {
    matches!(value, Some(v) if !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Why no daemon could be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AutostartError {
    /// The log file or the process could not be created.
    #[error("berth: could not start a daemon ({what}): {source}")]
    Spawn {
        /// What was being done.
        what: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The daemon exited before it answered.
    #[error("berth: the daemon exited ({status}) before it answered; see {LOG_PATH}")]
    Exited {
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The daemon did not answer in time.
    #[error("berth: the daemon did not answer within {} seconds; see {LOG_PATH}", READY_TIMEOUT.as_secs())]
    Timeout,
}

/// Starts `current_exe() daemon` in its own process group, output to
/// [`LOG_PATH`], then pings until it answers and negotiates the version.
pub(crate) async fn start(client: &mut Client) -> Result<(), AutostartError> {
    let spawn_err = |what: &str| {
        let what = what.to_string();
        move |source| AutostartError::Spawn { what, source }
    };
    let log_path = Path::new(LOG_PATH);
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).map_err(spawn_err(&format!("creating {}", dir.display())))?;
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(spawn_err(&format!("opening {LOG_PATH}")))?;
    let log2 = log
        .try_clone()
        .map_err(spawn_err("duplicating the log file"))?;
    let exe = std::env::current_exe().map_err(spawn_err("finding the berth binary"))?;
    let mut child = Command::new(&exe)
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .process_group(0)
        .spawn()
        .map_err(spawn_err(&format!("running {} daemon", exe.display())))?;
    eprintln!("berth: no daemon was running; started one in the background (log: {LOG_PATH})");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if client.negotiate().await.is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(AutostartError::Exited { status });
        }
        if Instant::now() >= deadline {
            return Err(AutostartError::Timeout);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_err(kind: io::ErrorKind) -> ClientError {
        ClientError::Connect {
            host: "unix:///x".into(),
            source: io::Error::from(kind),
        }
    }

    #[test]
    fn when_it_applies() {
        assert!(!applies(&connect_err(io::ErrorKind::NotFound), true));
        assert!(!applies(
            &connect_err(io::ErrorKind::PermissionDenied),
            false
        ));
        assert!(!applies(&ClientError::Stream("x".into()), false));
        assert!(disabled(Some("1")));
        assert!(!disabled(Some("0")));
        assert!(!disabled(None));
        assert!(!disabled(Some("")));
    }
}
