//! The shim's monitor: a single-threaded loop over the running process —
//! its output to the log and to the daemon, the daemon's requests to it,
//! SIGCHLD to its exit status. It needs no container runtime library, so it
//! can run in the small `berth-shim` binary (see `handoff.rs`).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::control::Control;
use super::files;
use super::log::JsonLog;
use crate::protocol::{self, kind, Decoder, Event, ExitStatus, Request};

/// How long output may keep flowing after the process exited (from
/// grandchildren that still hold the pipes) before the exit is final.
const DRAIN_WINDOW: Duration = Duration::from_secs(2);
/// How long an exited process's output is kept for a daemon that has never
/// connected (it died between starting the shim and connecting).
const ORPHAN_WINDOW: Duration = Duration::from_secs(60);
/// How often (ms) a running process is checked for exit without a signal.
const RECHECK_MS: u16 = 1000;
/// Stop reading container output while a daemon connection has this much
/// unsent: a slow reader slows the container instead of growing memory.
const BACKPRESSURE: usize = 4 << 20;
/// A read of output shorter than this came from a writer sending small
/// pieces (see the nap in `serve`).
const FLOOD_READ: usize = 64 << 10;
/// How long to let such a writer fill the pipe before reading again.
const TRICKLE_NAP: Duration = Duration::from_micros(500);
/// Largest output frame sent to the daemon.
const OUTPUT_FRAME: usize = 64 << 10;

pub(super) struct Client {
    stream: UnixStream,
    dec: Decoder,
    /// Bytes queued for the daemon; `out[sent..]` is still unsent.
    out: Vec<u8>,
    sent: usize,
    gone: bool,
    /// Receives output frames ([`Request::Output`]).
    output: bool,
}

impl Client {
    fn send(&mut self, frame: &[u8]) {
        self.out.extend_from_slice(frame);
        self.flush();
    }

    fn unsent(&self) -> usize {
        self.out.len() - self.sent
    }

    fn flush(&mut self) {
        while self.sent < self.out.len() && !self.gone {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(0) => self.gone = true,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => self.gone = true,
            }
        }
        // Move the rest to the front only now and then: draining after
        // every short write would copy megabytes per write when the daemon
        // is slow.
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        } else if self.sent > self.out.len() / 2 {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
    }
}

/// One readable stream of the process: stdout, stderr, or the pty master.
pub(super) struct Output {
    pub(super) stream: u8,
    pub(super) fd: OwnedFd,
}

/// The monitor's state.
pub(super) struct Shim {
    pub(super) pid: i32,
    pub(super) started: bool,
    pub(super) control: Control,
    pub(super) outputs: Vec<Output>,
    /// The pty master, for resize.
    pub(super) master: Option<OwnedFd>,
    pub(super) stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    stdin_close: bool,
    clients: Vec<Client>,
    pub(super) log: Option<JsonLog>,
    raw_exit: Option<(i32, Option<i32>, Instant)>,
    /// When the first daemon connection arrived: output is read (and so
    /// delivered) only from then on, so none is lost before anyone listens.
    first_client: Option<Instant>,
    /// The container's cgroup path (none for an exec).
    pub(super) cgroup: Option<String>,
    exit: Option<ExitStatus>,
    shutdown: bool,
}

impl Shim {
    /// A monitor over a created process.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        pid: i32,
        started: bool,
        control: Control,
        outputs: Vec<Output>,
        master: Option<OwnedFd>,
        stdin: Option<OwnedFd>,
        log: Option<JsonLog>,
        cgroup: Option<String>,
    ) -> Shim {
        Shim {
            pid,
            started,
            control,
            outputs,
            master,
            stdin,
            stdin_buf: Vec::new(),
            stdin_close: false,
            clients: Vec::new(),
            log,
            raw_exit: None,
            first_client: None,
            cgroup,
            exit: None,
            shutdown: false,
        }
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl Shim {
    pub(super) fn serve(&mut self, listener: &UnixListener, sigfd: &SignalFd, state_dir: &Path) {
        // As big as an output pipe: one read empties it.
        let mut buf = vec![0u8; 512 * 1024];
        loop {
            if self.exit.is_some() && (self.shutdown || self.clients.is_empty()) {
                return;
            }
            let deadline = self.drain_deadline();
            if let Some(deadline) = deadline {
                let drained = self.first_client.is_some() && self.outputs.is_empty();
                if self.exit.is_none() && (drained || Instant::now() >= deadline) {
                    self.finalize(state_dir);
                    continue;
                }
            }
            let backpressure = self.first_client.is_none()
                || self.clients.iter().any(|c| c.unsent() > BACKPRESSURE);
            // Index layout of `fds`: listener, signalfd, outputs, stdin?, clients.
            let mut fds: Vec<PollFd<'_>> = Vec::new();
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(sigfd.as_fd(), PollFlags::POLLIN));
            // Output is not even watched while nobody may receive it: a
            // hang-up would otherwise make us read (and drop) it.
            let n_out = if backpressure { 0 } else { self.outputs.len() };
            for o in &self.outputs[..n_out] {
                fds.push(PollFd::new(o.fd.as_fd(), PollFlags::POLLIN));
            }
            let stdin_slot = match &self.stdin {
                Some(w) if !self.stdin_buf.is_empty() => {
                    fds.push(PollFd::new(w.as_fd(), PollFlags::POLLOUT));
                    true
                }
                _ => false,
            };
            for c in &self.clients {
                let mut f = PollFlags::POLLIN;
                if c.unsent() > 0 {
                    f |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(c.stream.as_fd(), f));
            }
            let timeout = match deadline {
                Some(d) if self.exit.is_none() => {
                    PollTimeout::try_from(d.saturating_duration_since(Instant::now()))
                        .unwrap_or(PollTimeout::ZERO)
                }
                // While the process runs, look now and then even without a
                // signal: a lost SIGCHLD must not leave a zombie forever.
                None if self.started => PollTimeout::from(RECHECK_MS),
                _ => PollTimeout::NONE,
            };
            match poll(&mut fds, timeout) {
                Ok(0) if deadline.is_none() => {
                    drop(fds);
                    self.reap();
                    continue;
                }
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("poll: {e}");
                    return;
                }
            }
            let ready: Vec<PollFlags> = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);
            let mut idx = 2 + n_out + usize::from(stdin_slot);
            let client_ready: Vec<PollFlags> = ready[idx..].to_vec();
            idx = 2;

            if !ready[1].is_empty() {
                while let Ok(Some(_)) = sigfd.read_signal() {}
                self.reap();
            }
            // Outputs: read what is there; EOF or error closes that stream.
            let mut closed = Vec::new();
            let mut trickle = false;
            for (i, flags) in ready[idx..idx + n_out].iter().enumerate() {
                if flags.is_empty() {
                    continue;
                }
                let fd = self.outputs[i].fd.as_raw_fd();
                let stream = self.outputs[i].stream;
                match nix::unistd::read(fd, &mut buf) {
                    Ok(0) => closed.push(i),
                    Ok(n) => {
                        trickle |= n < FLOOD_READ;
                        self.output(stream, &buf[..n]);
                    }
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                    // EIO: the pty's last slave closed.
                    Err(_) => closed.push(i),
                }
            }
            for i in closed.into_iter().rev() {
                self.outputs.remove(i);
            }
            if let Some(l) = &mut self.log {
                l.flush(false);
            }
            // A writer that sends small pieces (stdio's 4 KiB) would wake
            // us for each: after a small read of a pipe, give it a moment
            // to put more in. Under a flood this cuts the wake-ups (and the
            // time) by a third; a quiet process's output waits 0.5 ms at
            // most. Not for a terminal, whose echo must be immediate.
            if trickle && self.master.is_none() {
                std::thread::sleep(TRICKLE_NAP);
            }
            idx += n_out;
            if stdin_slot && !ready[idx].is_empty() {
                self.write_stdin();
            }
            for (c, flags) in self.clients.iter_mut().zip(client_ready.iter()) {
                if flags.contains(PollFlags::POLLOUT) {
                    c.flush();
                }
            }
            let mut requests = Vec::new();
            for (ci, flags) in client_ready.iter().enumerate() {
                if !flags.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    continue;
                }
                let c = &mut self.clients[ci];
                match c.stream.read(&mut buf) {
                    Ok(0) => c.gone = true,
                    Ok(n) => {
                        c.dec.push(&buf[..n]);
                        loop {
                            match c.dec.next_frame() {
                                Ok(Some(f)) => requests.push((ci, f)),
                                Ok(None) => break,
                                Err(e) => {
                                    tracing::warn!("daemon connection: {e}");
                                    c.gone = true;
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => c.gone = true,
                }
            }
            for (ci, (k, payload)) in requests {
                self.handle(ci, k, payload);
            }
            if !ready[0].is_empty() {
                self.accept(listener);
            }
            self.clients.retain(|c| !c.gone);
        }
    }

    /// When an exited process's output stops being waited for.
    fn drain_deadline(&self) -> Option<Instant> {
        let (_, _, exited) = self.raw_exit?;
        Some(match self.first_client {
            Some(first) => exited.max(first) + DRAIN_WINDOW,
            None => exited + ORPHAN_WINDOW,
        })
    }

    fn accept(&mut self, listener: &UnixListener) {
        while let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let mut c = Client {
                stream,
                dec: Decoder::default(),
                out: Vec::new(),
                sent: 0,
                gone: false,
                output: true,
            };
            c.send(&protocol::encode_control(&Event::Hello {
                pid: self.pid,
                started: self.started,
                exit: self.exit.clone(),
            }));
            self.clients.push(c);
            self.first_client.get_or_insert_with(Instant::now);
        }
    }

    fn output(&mut self, stream: u8, data: &[u8]) {
        if let Some(l) = &mut self.log {
            l.write(stream, data);
        }
        if !self.clients.iter().any(|c| c.output) {
            return;
        }
        // The daemon's queues count frames: 64 KiB ones keep its memory
        // bounded as documented there (driver::SHIM_QUEUE).
        for piece in data.chunks(OUTPUT_FRAME) {
            let frame = protocol::encode(stream, piece);
            for c in self.clients.iter_mut().filter(|c| c.output) {
                c.send(&frame);
            }
        }
    }

    fn broadcast(&mut self, ev: &Event) {
        let frame = protocol::encode_control(ev);
        for c in &mut self.clients {
            c.send(&frame);
        }
    }

    fn handle(&mut self, ci: usize, k: u8, payload: Vec<u8>) {
        match k {
            kind::STDIN => {
                if self.stdin.is_some() {
                    self.stdin_buf.extend_from_slice(&payload);
                    self.write_stdin();
                }
            }
            kind::CONTROL => match serde_json::from_slice::<Request>(&payload) {
                Ok(req) => self.request(ci, req),
                Err(e) => tracing::warn!("bad request from daemon: {e}"),
            },
            other => tracing::warn!("unexpected frame kind {other} from daemon"),
        }
    }

    fn request(&mut self, ci: usize, req: Request) {
        match req {
            Request::Start => {
                let ev = if self.started {
                    Event::Started {
                        started_at: now_rfc3339(),
                    }
                } else {
                    match self.control.start() {
                        Ok(()) => {
                            self.started = true;
                            Event::Started {
                                started_at: now_rfc3339(),
                            }
                        }
                        Err(e) => Event::StartFailed {
                            message: e.to_string(),
                        },
                    }
                };
                self.clients[ci].send(&protocol::encode_control(&ev));
            }
            Request::Kill { signal } => {
                if self.raw_exit.is_none() {
                    if let Ok(sig) = Signal::try_from(signal) {
                        let _ = kill(Pid::from_raw(self.pid), sig);
                    }
                }
            }
            Request::Resize { height, width } => {
                if let Some(m) = &self.master {
                    if let Err(e) = crate::sys::set_winsize(m.as_fd(), height, width) {
                        tracing::warn!("resize: {e}");
                    }
                }
            }
            Request::CloseStdin => {
                // A TTY has no separate input to close; the shell sees EOF
                // only from its own line discipline.
                if self.master.is_none() {
                    self.stdin_close = true;
                    self.write_stdin();
                }
            }
            Request::Shutdown => self.shutdown = true,
            Request::Output { on } => self.clients[ci].output = on,
        }
    }

    fn write_stdin(&mut self) {
        if let Some(w) = &self.stdin {
            while !self.stdin_buf.is_empty() {
                match nix::unistd::write(w, &self.stdin_buf) {
                    Ok(n) => {
                        self.stdin_buf.drain(..n);
                    }
                    Err(Errno::EAGAIN) => return,
                    Err(Errno::EINTR) => continue,
                    // The reader is gone: nothing more can be delivered.
                    Err(_) => {
                        self.stdin_buf.clear();
                        self.stdin = None;
                        return;
                    }
                }
            }
        }
        if self.stdin_close && self.stdin_buf.is_empty() {
            self.stdin = None;
        }
    }

    pub(super) fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p.as_raw() == self.pid => {
                    self.raw_exit = Some((code, None, Instant::now()));
                }
                Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == self.pid => {
                    self.raw_exit = Some((128 + sig as i32, Some(sig as i32), Instant::now()));
                }
                Ok(WaitStatus::StillAlive) => return,
                Err(Errno::ECHILD) => {
                    // Not our child any more and not reaped by us: gone
                    // without a status we can know.
                    if self.raw_exit.is_none()
                        && kill(Pid::from_raw(self.pid), None) == Err(Errno::ESRCH)
                    {
                        tracing::warn!(pid = self.pid, "process vanished without an exit status");
                        self.raw_exit = Some((255, None, Instant::now()));
                    }
                    return;
                }
                Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// The process is gone and its output drained: record, clean up, tell.
    fn finalize(&mut self, state_dir: &Path) {
        let (code, signal, _) = self.raw_exit.expect("finalize after exit");
        if let Some(l) = &mut self.log {
            l.flush(true);
        }
        self.outputs.clear();
        self.stdin = None;
        // Read before delete removes the cgroup: any OOM kill in the
        // container during this run marks it, as dockerd's oom events do.
        let oom_killed = self
            .cgroup
            .as_deref()
            .and_then(|p| crate::cgroups::Hierarchy::detect().oom_kills(p))
            .is_some_and(|n| n > 0);
        self.control.delete(self.cgroup.as_deref());
        let status = ExitStatus {
            code,
            signal,
            finished_at: now_rfc3339(),
            oom_killed,
        };
        let tmp = state_dir.join(".exit.json.tmp");
        let dest = state_dir.join(files::EXIT);
        let written = serde_json::to_vec(&status)
            .map_err(std::io::Error::other)
            .and_then(|d| std::fs::write(&tmp, d))
            .and_then(|_| std::fs::rename(&tmp, &dest));
        if let Err(e) = written {
            tracing::error!("writing {}: {e}", dest.display());
        }
        self.exit = Some(status.clone());
        self.broadcast(&Event::Exited(status));
        // Give the frames a chance to leave before the loop may return.
        for c in &mut self.clients {
            let _ = c.stream.set_nonblocking(false);
            c.flush();
            let _ = c.stream.set_nonblocking(true);
        }
    }
}
