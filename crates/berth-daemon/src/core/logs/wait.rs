//! How a follower waits for more output: inotify on the log's directory
//! (a write, a rotation's rename or a new file wakes it at once), with a
//! short timeout so it also notices the container stopping or the client
//! leaving; plain polling when inotify is not available (its per-user
//! instance limit is reached, say).
//!
//! nix's inotify is used — nix is already a dependency, maintained, and
//! its API is safe — rather than a cross-platform watcher crate: this is
//! Linux-only code, and one watch per follower is all it needs.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// Longest sleep between looks at the container's state.
const TICK: Duration = Duration::from_millis(100);
/// Sleep between polls of the file without inotify.
const POLL: Duration = Duration::from_millis(50);

/// Waits for a log directory to change.
pub(super) struct Waiter {
    inotify: Option<Inotify>,
}

impl Waiter {
    pub(super) fn new(dir: &Path) -> Waiter {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .ok()
            .filter(|i| {
                let mask = AddWatchFlags::IN_MODIFY
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_MOVED_FROM
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_DELETE;
                i.add_watch(dir, mask).is_ok()
            });
        if inotify.is_none() {
            tracing::debug!("following {} by polling (no inotify)", dir.display());
        }
        Waiter { inotify }
    }

    /// Returns when the directory changed, or after a short while.
    pub(super) fn wait(&mut self) {
        let Some(i) = &self.inotify else {
            std::thread::sleep(POLL);
            return;
        };
        let mut fds = [PollFd::new(i.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(TICK).unwrap_or(PollTimeout::ZERO);
        if let Ok(n) = poll(&mut fds, timeout) {
            if n > 0 {
                // Drain: one look at the files covers every event so far.
                while i.read_events().is_ok_and(|e| !e.is_empty()) {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn wakes_on_a_write_and_times_out() {
        let t = tempfile::tempdir().unwrap();
        let mut w = Waiter::new(t.path());
        assert!(w.inotify.is_some());
        let t0 = Instant::now();
        w.wait();
        assert!(t0.elapsed() >= Duration::from_millis(90));
        let p = t.path().join("f");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::write(p, b"x").unwrap();
        });
        let t0 = Instant::now();
        w.wait();
        assert!(
            t0.elapsed() < Duration::from_millis(90),
            "{:?}",
            t0.elapsed()
        );
        writer.join().unwrap();
    }
}
