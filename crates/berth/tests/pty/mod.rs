//! A pseudo-terminal for driving interactive clients (`berth run -it`,
//! `docker attach` …) the way a user's terminal does: the client runs with
//! the pty's slave as its controlling terminal (`setsid -c`), the test
//! types into the master, reads what the client shows, resizes the window
//! and looks at the terminal's modes afterwards. Every wait has a time
//! limit, so a test fails instead of hanging.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::termios::{tcgetattr, tcsetwinsize, LocalModes, Termios, Winsize};

/// How long any single wait on the terminal may take.
pub const WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Screen {
    /// Everything read from the master so far.
    bytes: Vec<u8>,
    /// Where the next `expect` starts looking.
    cursor: usize,
    /// The reader thread ended.
    closed: bool,
}

/// A pty pair with a reader thread collecting everything the client writes.
pub struct Pty {
    master: Arc<OwnedFd>,
    slave: OwnedFd,
    screen: Arc<(Mutex<Screen>, Condvar)>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Pty {
    /// A new terminal of `rows` × `cols`, in the usual cooked mode.
    pub fn open(rows: u16, cols: u16) -> Pty {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("open a pty master");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(name.to_str().expect("pty name"))
            .expect("open the pty slave")
            .into();
        let master = Arc::new(master);
        let screen = Arc::new((Mutex::new(Screen::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (master, screen, stop) = (master.clone(), screen.clone(), stop.clone());
            std::thread::spawn(move || read_loop(&master, &screen, &stop))
        };
        let pty = Pty {
            master,
            slave,
            screen,
            stop,
            reader: Some(reader),
        };
        pty.set_size(rows, cols);
        pty
    }

    /// Starts `cmd` on this terminal: stdin, stdout and stderr are the
    /// slave, which becomes its controlling terminal in a new session.
    pub fn spawn(&self, cmd: &Command) -> Child {
        let mut wrapped = Command::new("setsid");
        wrapped
            .arg("-c")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        let io = || Stdio::from(self.slave.try_clone().expect("dup the slave"));
        wrapped
            .stdin(io())
            .stdout(io())
            .stderr(io())
            .spawn()
            .expect("start the client on the pty")
    }

    /// Sends bytes as if typed (all at once).
    pub fn write(&self, bytes: &[u8]) {
        let mut f = std::fs::File::from(self.master.try_clone().expect("dup the master"));
        f.write_all(bytes).expect("write to the pty");
    }

    /// Types a line and presses Enter.
    pub fn type_line(&self, line: &str) {
        self.write(line.as_bytes());
        self.write(b"\r");
    }

    /// Types keys one at a time, as a user does (the docker CLI and dockerd
    /// only see a detach key when it arrives in a read of its own).
    pub fn type_keys(&self, keys: &[u8]) {
        for k in keys {
            self.write(std::slice::from_ref(k));
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Ctrl-P Ctrl-Q.
    pub fn detach(&self) {
        self.type_keys(&[16, 17]);
    }

    /// Waits until `needle` appears after the cursor and moves the cursor
    /// past it; returns what was shown up to it. Panics with the screen
    /// after `WAIT`.
    #[track_caller]
    pub fn expect(&self, needle: &str) -> String {
        self.expect_within(needle, WAIT)
    }

    /// [`Pty::expect`] with its own time limit.
    #[track_caller]
    pub fn expect_within(&self, needle: &str, limit: Duration) -> String {
        match self.wait_for(needle, limit) {
            Some(s) => s,
            None => panic!(
                "{needle:?} did not appear within {limit:?}; the terminal shows after the cursor:\n{}",
                self.rest()
            ),
        }
    }

    /// Like [`Pty::expect_within`] but `None` on time-out.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        let (lock, cv) = &*self.screen;
        let mut s = lock.lock().unwrap();
        loop {
            if let Some(pos) = find(&s.bytes[s.cursor..], needle.as_bytes()) {
                let start = s.cursor;
                let end = start + pos + needle.len();
                s.cursor = end;
                return Some(String::from_utf8_lossy(&s.bytes[start..end]).into_owned());
            }
            let now = Instant::now();
            if now >= deadline || s.closed {
                return None;
            }
            s = cv.wait_timeout(s, deadline - now).unwrap().0;
        }
    }

    /// Everything shown after the cursor (for messages).
    pub fn rest(&self) -> String {
        let s = self.screen.0.lock().unwrap();
        String::from_utf8_lossy(&s.bytes[s.cursor..]).into_owned()
    }

    /// Everything shown so far.
    pub fn all(&self) -> String {
        let s = self.screen.0.lock().unwrap();
        String::from_utf8_lossy(&s.bytes).into_owned()
    }

    /// Moves the cursor to the end: later expects look at new output only.
    pub fn skip(&self) {
        let mut s = self.screen.0.lock().unwrap();
        s.cursor = s.bytes.len();
    }

    /// Sets the window size (the kernel signals the foreground process
    /// group, as a terminal emulator's resize does).
    pub fn set_size(&self, rows: u16, cols: u16) {
        tcsetwinsize(
            &*self.master,
            Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .expect("TIOCSWINSZ");
    }

    /// Resizes and also sends SIGWINCH to `client` explicitly.
    pub fn resize(&self, client: &Child, rows: u16, cols: u16) {
        self.set_size(rows, cols);
        signal(client, rustix::process::Signal::WINCH);
    }

    /// The terminal's modes now.
    pub fn termios(&self) -> Termios {
        tcgetattr(&self.slave).expect("tcgetattr")
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn read_loop(master: &OwnedFd, screen: &(Mutex<Screen>, Condvar), stop: &AtomicBool) {
    let mut f = std::fs::File::from(master.try_clone().expect("dup the master"));
    let mut buf = [0u8; 64 * 1024];
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(master, PollFlags::IN)];
        match poll(&mut fds, Some(&tick)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let (lock, cv) = screen;
                lock.lock().unwrap().bytes.extend_from_slice(&buf[..n]);
                cv.notify_all();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO: no slave is open any more.
            Err(_) => break,
        }
    }
    let (lock, cv) = screen;
    lock.lock().unwrap().closed = true;
    cv.notify_all();
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends a signal to a child process.
pub fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
    let _ = rustix::process::kill_process(pid, sig);
}

/// Waits for a child at most `limit`; kills it and panics after that.
#[track_caller]
pub fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when the terminal is back in cooked mode with echo (a client that
/// forgot to restore it leaves ICANON and ECHO off).
pub fn is_cooked(t: &Termios) -> bool {
    t.local_modes
        .contains(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG)
}
