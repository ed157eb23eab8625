//! `--init`: a minimal init for PID 1 of a container, like Docker's
//! tini-based docker-init. It runs inside the container's init process
//! (from the workload executor, after the root is set up), forks, lets the
//! child go on to exec the command, and itself stays PID 1: it forwards
//! every signal it receives to the child, reaps every zombie (orphans of
//! the container end up here), and exits with the child's status.

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Forks; returns in the child (which then execs the workload) and never
/// returns in the parent. On a fork failure it returns too, and the
/// workload simply runs without an init.
pub(crate) fn run_as_init() {
    // Block everything before the fork so no signal is lost between it and
    // the signalfd; the child unblocks before it execs.
    let all = SigSet::all();
    let old = all
        .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
        .unwrap_or(SigSet::empty());
    let child = match crate::sys::fork() {
        Ok(None) => {
            let _ = old.thread_set_mask();
            return;
        }
        Ok(Some(pid)) => pid,
        Err(_) => {
            let _ = old.thread_set_mask();
            return;
        }
    };
    // What `ps` in the container shows as PID 1 (Docker shows docker-init).
    let _ = nix::sys::prctl::set_name(c"berth-init");
    let Ok(fd) = SignalFd::new(&all) else {
        // Without signals the best left is to wait for the child.
        std::process::exit(wait_for(child));
    };
    loop {
        let Ok(Some(info)) = fd.read_signal() else {
            continue;
        };
        let signo = info.ssi_signo as i32;
        if signo == libc::SIGCHLD {
            loop {
                match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(p, code)) if p == child => std::process::exit(code),
                    Ok(WaitStatus::Signaled(p, sig, _)) if p == child => {
                        std::process::exit(128 + sig as i32)
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        } else if let Ok(sig) = Signal::try_from(signo) {
            let _ = kill(child, sig);
        }
    }
}

fn wait_for(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(_) => return 255,
        }
    }
}
