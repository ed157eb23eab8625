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
    // What `ps` in the container shows as PID 1 (Docker shows docker-init).
    // Named before the fork: the child's exec could otherwise read PID 1's
    // command line (`cat /proc/1/cmdline`) before the parent got to it. The
    // child's exec gives it its own name and arguments.
    let _ = nix::sys::prctl::set_name(c"berth-init");
    hide_command_line();
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

/// Overwrites this process's argument strings (the monitor's, naming host
/// paths: the data root, the binary) with `berth-init`, so that the
/// container's `ps` does not show them. Best effort: left as they are when
/// /proc/self cannot be read or written.
fn hide_command_line() {
    use std::io::{Seek, SeekFrom, Write};
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after `(comm)` start at field 3; arg_start and arg_end are
    // fields 48 and 49 (proc(5)).
    let Some(rest) = stat.rfind(')').and_then(|i| stat.get(i + 2..)) else {
        return;
    };
    let fields: Vec<&str> = rest.split(' ').collect();
    let num = |n: usize| fields.get(n - 3).and_then(|f| f.trim().parse::<u64>().ok());
    let (Some(start), Some(end)) = (num(48), num(49)) else {
        return;
    };
    let Some(len) = end
        .checked_sub(start)
        .map(|l| l as usize)
        .filter(|&l| l > 0)
    else {
        return;
    };
    let mut args = vec![0u8; len];
    let name = b"berth-init";
    let n = name.len().min(len - 1);
    args[..n].copy_from_slice(&name[..n]);
    if let Ok(mut mem) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")
    {
        let _ = mem
            .seek(SeekFrom::Start(start))
            .and_then(|_| mem.write_all(&args));
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
