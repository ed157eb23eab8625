//! Overlay mounts of container root filesystems.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::ImageError;

/// The directories of one container's copy-on-write root.
#[derive(Debug, Clone)]
pub struct RootfsDirs {
    /// Read-only layers, topmost first.
    pub lowers: Vec<PathBuf>,
    /// The container's own writable layer.
    pub upper: PathBuf,
    /// overlay's scratch dir (same filesystem as `upper`).
    pub work: PathBuf,
    /// Where the merged view is mounted.
    pub target: PathBuf,
}

impl RootfsDirs {
    /// overlay's option string.
    pub fn options(&self) -> String {
        let lowers: Vec<String> = self
            .lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            self.upper.display(),
            self.work.display()
        )
    }

    /// Mounts the merged view at `target` (creating the dirs as needed).
    pub fn mount(&self) -> Result<(), ImageError> {
        for d in [&self.upper, &self.work, &self.target] {
            std::fs::create_dir_all(d).map_err(|e| ImageError::io("create", d, e))?;
        }
        let opts = self.options();
        mount(
            Some("overlay"),
            &self.target,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
        .map_err(|e| {
            ImageError::io(
                "mount overlay on",
                &self.target,
                std::io::Error::from_raw_os_error(e as i32),
            )
        })
    }
}

/// True when something is mounted exactly at `p`.
pub fn is_mounted(p: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = p.to_string_lossy();
    mounts.lines().any(|l| l.split(' ').nth(4) == Some(&*want))
}

/// Unmounts everything mounted at or below `dir` (deepest first); errors
/// are logged, as this only cleans up after a crash.
pub fn unmount_under(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut targets: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    targets.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for t in targets {
        if let Err(e) = unmount(&t) {
            tracing::warn!("unmounting {}: {e}", t.display());
        }
    }
}

/// Unmounts `p` if mounted; falls back to a lazy unmount when busy.
pub fn unmount(p: &Path) -> Result<(), ImageError> {
    if !is_mounted(p) {
        return Ok(());
    }
    match umount2(p, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => umount2(p, MntFlags::MNT_DETACH)
            .map_err(|e| ImageError::io("unmount", p, std::io::Error::from_raw_os_error(e as i32))),
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(ImageError::io(
            "unmount",
            p,
            std::io::Error::from_raw_os_error(e as i32),
        )),
    }
}
