//! Network namespaces made ahead of time.
//!
//! Making a network namespace is the dearest step of a container's network
//! set-up (the kernel sets up a whole stack), so the daemon keeps a few
//! ready: each is bind-mounted at `<dir>/<prefix>-<12 hex>` with its loopback
//! up. [`NetnsPool::take`] hands one out at once and starts a background
//! refill; the OCI spec then joins that path (`linux.namespaces[network].path`)
//! and the endpoint is set up in it before the container starts.
//! Namespaces are never reused: [`NetnsPool::release`] unpins one when its
//! container is gone (the kernel frees it, and the veth inside, later).

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{NetError, TeardownErrors};
use crate::sys;

/// A pool of prepared network namespaces under one directory.
#[derive(Clone)]
pub struct NetnsPool {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    prefix: String,
    target: usize,
    ready: Mutex<VecDeque<PathBuf>>,
    refilling: AtomicBool,
}

impl NetnsPool {
    /// Opens the pool in `dir` (made a shared mount point, as `ip netns`
    /// does with `/run/netns`), keeping `target` namespaces ready. Files in
    /// `dir` named `<prefix>-…` that are not `in_use` (left by a daemon that
    /// died) are unpinned. Call [`NetnsPool::refill`] or
    /// [`NetnsPool::fill`] to prepare the first ones.
    pub fn open(
        dir: &Path,
        prefix: &str,
        target: usize,
        in_use: &[PathBuf],
    ) -> Result<NetnsPool, NetError> {
        sys::make_shared_mount_dir(dir)?;
        let keep: HashSet<&Path> = in_use.iter().map(PathBuf::as_path).collect();
        let mut errs = TeardownErrors::default();
        let entries = fs::read_dir(dir).map_err(|e| NetError::io("read directory", dir, e))?;
        for e in entries.flatten() {
            let p = e.path();
            let ours = e
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{prefix}-"));
            if ours && !keep.contains(p.as_path()) {
                errs.note(sys::remove_netns(&p));
            }
        }
        errs.into_result()?;
        Ok(NetnsPool {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                prefix: prefix.to_string(),
                target,
                ready: Mutex::new(VecDeque::new()),
                refilling: AtomicBool::new(false),
            }),
        })
    }

    /// The directory namespaces are pinned in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Hands out a prepared namespace (or makes one now if none is ready)
    /// and starts a background refill. The caller owns it: give it back with
    /// [`NetnsPool::release`]. Blocks only when the pool is empty.
    pub fn take(&self) -> Result<PathBuf, NetError> {
        let ready = self.inner.ready.lock().expect("pool lock").pop_front();
        let p = match ready {
            Some(p) => p,
            None => self.inner.make()?,
        };
        self.refill();
        Ok(p)
    }

    /// Starts a background thread that tops the pool up to its target
    /// (nothing if one is already running).
    pub fn refill(&self) {
        if self.inner.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("berth-netns-pool".into())
            .spawn(move || {
                if let Err(e) = inner.fill() {
                    tracing::warn!(error = %e, "refilling the network namespace pool failed");
                }
                inner.refilling.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.inner.refilling.store(false, Ordering::Release);
        }
    }

    /// Tops the pool up to its target now.
    pub fn fill(&self) -> Result<(), NetError> {
        self.inner.fill()
    }

    /// How many namespaces are ready.
    pub fn ready(&self) -> usize {
        self.inner.ready.lock().expect("pool lock").len()
    }

    /// Unpins a namespace that was handed out (its container is gone).
    pub fn release(&self, path: &Path) -> Result<(), NetError> {
        sys::remove_netns(path)
    }

    /// Unpins the prepared namespaces nobody took (daemon shutdown).
    pub fn drain(&self) -> Result<(), NetError> {
        let all: Vec<PathBuf> = self
            .inner
            .ready
            .lock()
            .expect("pool lock")
            .drain(..)
            .collect();
        let mut errs = TeardownErrors::default();
        for p in all {
            errs.note(sys::remove_netns(&p));
        }
        errs.into_result()
    }
}

impl NetnsPool {
    /// Drains the pool and unmounts its directory (uninstall, tests).
    pub fn close(&self) -> Result<(), NetError> {
        let mut errs = TeardownErrors::default();
        errs.note(self.drain());
        errs.note(sys::unmount_dir(&self.inner.dir));
        errs.into_result()
    }
}

impl Inner {
    fn make(&self) -> Result<PathBuf, NetError> {
        let p = self
            .dir
            .join(format!("{}-{}", self.prefix, sys::random_hex(12)));
        sys::create_netns(&p)?;
        Ok(p)
    }

    fn fill(&self) -> Result<(), NetError> {
        while self.ready.lock().expect("pool lock").len() < self.target {
            let p = self.make()?;
            self.ready.lock().expect("pool lock").push_back(p);
        }
        Ok(())
    }
}

/// Makes one network namespace pinned at `path` (loopback up), outside any
/// pool (e.g. for tests, or a caller's own naming).
pub fn create_netns(path: &Path) -> Result<(), NetError> {
    sys::create_netns(path)
}

/// Unpins a namespace made by [`create_netns`] or a pool.
pub fn remove_netns(path: &Path) -> Result<(), NetError> {
    sys::remove_netns(path)
}
