//! The few kernel calls nix has no safe wrapper for. Unsafe code lives here
//! only, each block with its SAFETY note.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

/// Sets a terminal's window size (TIOCSWINSZ).
pub(crate) fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `fd` is a live descriptor borrowed for the call, and `ws` is a
    // properly initialised winsize that the kernel only reads.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCSWINSZ,
            &ws as *const libc::winsize,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Receives one file descriptor sent with SCM_RIGHTS (the pty master that
/// the runtime sends over the console socket).
pub(crate) fn recv_fd(sock: BorrowedFd<'_>) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                for &extra in &fds[1..] {
                    // SAFETY: the kernel just installed these descriptors in
                    // our table for us; nothing else owns them.
                    drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(extra) });
                }
                // SAFETY: as above; ownership passes to the returned OwnedFd.
                return Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "no file descriptor received on console socket",
    ))
}

/// Gives every signal back its default action and unblocks them all. An
/// ignored signal stays ignored across exec, as does the signal mask: the
/// container's process must inherit neither from the monitor (Rust ignores
/// SIGPIPE) nor from whoever started the daemon (`nohup` ignores SIGHUP, and
/// a shell cannot trap a signal ignored on entry).
pub(crate) fn default_signals() {
    // The kernel's sigaction, all zero: SIG_DFL, no flags, empty mask. The
    // raw call because glibc's refuses the two signals it keeps for itself
    // (32 and 33), which the monitor has ignored.
    let dfl = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid, all-zero kernel sigaction and
        // no old-action pointer installs no handler; this runs in the
        // single-threaded container init right before exec.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            );
        }
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// Borrows a descriptor that stays open for the rest of the process (the
/// shim's log fd).
pub(crate) fn borrow_fd(fd: std::os::fd::RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: only used for descriptors opened once at start and never
    // closed, so the borrow cannot outlive them.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// fork(2): `Ok(None)` in the child, `Ok(Some(pid))` in the parent.
pub(crate) fn fork() -> nix::Result<Option<nix::unistd::Pid>> {
    // SAFETY: called only from a container's init process right before it
    // execs, which is single-threaded: the child cannot inherit a lock held
    // by another thread.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => Ok(None),
        nix::unistd::ForkResult::Parent { child } => Ok(Some(child)),
    }
}

/// Takes ownership of a descriptor inherited across exec by number (the
/// shim's handoff to its monitor).
pub(crate) fn own_fd(fd: std::os::fd::RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the handoff lists descriptors the previous image of this
    // process opened and passed on; nothing else in this image owns them,
    // and each number is taken once.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Lets the kernel take back the pages of this binary that start-up
/// touched: only what is used from now on comes back. A monitor lives as
/// long as its container and runs a small loop, while start-up (and the
/// kernel's fault-around, 64 KiB a fault) mapped most of its code and
/// read-only data. Only read-only mappings of the binary with no private
/// (copied) page are dropped: their pages come back unchanged from the
/// file, and relocated data (RELRO, which has copied pages) stays.
pub(crate) fn shed_startup_pages() {
    let (Ok(exe), Ok(smaps)) = (
        std::fs::read_link("/proc/self/exe"),
        std::fs::read_to_string("/proc/self/smaps"),
    ) else {
        return;
    };
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let Some(range) = f.first().filter(|r| r.contains('-') && !r.ends_with(':')) {
            current = None;
            let read_only = f.get(1).is_some_and(|p| *p == "r-xp" || *p == "r--p");
            if read_only && f.len() >= 6 && std::path::Path::new(f[5]) == exe {
                if let Some((Ok(a), Ok(b))) = range
                    .split_once('-')
                    .map(|(a, b)| (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)))
                {
                    current = Some((a, b));
                }
            }
        } else if f.first() == Some(&"Anonymous:") && f.get(1) == Some(&"0") {
            if let Some((start, end)) = current.take() {
                // SAFETY: a private read-only mapping of the binary itself
                // without a single copied page (from /proc/self/smaps):
                // MADV_DONTNEED only makes the next access read its pages
                // again from the page cache, unchanged.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
                }
            }
        }
    }
}
