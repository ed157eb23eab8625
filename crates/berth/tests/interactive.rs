//! Interactive sessions (issue 4): `run -it`, `exec -it`, `start -ai` and
//! `attach` driven through a real pseudo-terminal with our CLI and the
//! docker CLI — typing, resizing, detaching with ctrl-p ctrl-q and coming
//! back to the same shell, exit codes, and the terminal's modes restored —
//! plus the daemon's side of attach: detach keys, `logs`/`stream`,
//! stopped and missing containers, websocket attach, large binary stdin,
//! signal proxying, and back-pressure from a client that does not read.
//!
//! Every read from a terminal or socket has a time limit.

mod common;
mod pty;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{berth_bin, docker_bin, Daemon};
use pty::{is_cooked, signal, wait_exit, Pty, WAIT};
use rustix::process::Signal;
use rustix::termios::Termios;

/// Which client drives the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cli {
    Berth,
    Docker,
}

fn cli(d: &Daemon, which: Cli, args: &[&str]) -> Command {
    match which {
        Cli::Berth => {
            let mut c = Command::new(berth_bin());
            c.args(["-H", &d.host()])
                .args(args)
                .env("BERTH_NO_AUTOSTART", "1");
            c
        }
        Cli::Docker => {
            let mut c = Command::new(docker_bin());
            c.args(args)
                .env("DOCKER_HOST", d.host())
                .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
                .env("DOCKER_CLI_HINTS", "false");
            c
        }
    }
}

fn started() -> Daemon {
    let d = Daemon::start();
    d.busybox();
    d
}

/// The modes a client must leave the terminal in: as it found them.
#[track_caller]
fn assert_restored(before: &Termios, after: &Termios) {
    assert!(is_cooked(after), "terminal left in raw mode: {after:?}");
    assert_eq!(before.local_modes, after.local_modes, "local modes");
    assert_eq!(before.input_modes, after.input_modes, "input modes");
    assert_eq!(before.output_modes, after.output_modes, "output modes");
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.berth(&["inspect", "-f", format, name])
        .ok()
        .trim()
        .to_string()
}

/// Types `stty size` until the container reports `want` (a resize travels
/// CLI → daemon → shim asynchronously).
#[track_caller]
fn wait_for_size(p: &Pty, want: &str) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        p.type_line("stty size");
        if p.wait_for(want, Duration::from_secs(2)).is_some() {
            return;
        }
    }
    panic!(
        "the container never saw the size {want}; screen:\n{}",
        p.all()
    );
}

/// Starts a shell under `-it`, checks the size, resizes, detaches,
/// re-attaches twice (the variable set before is still set), detaches
/// with the keys, and finally exits the shell with a code.
fn run_detach_reattach(which: Cli) {
    let d = started();
    let p = Pty::open(24, 80);
    let cooked = p.termios();
    let mut run = p.spawn(&cli(
        &d,
        which,
        &["run", "-it", "--name", "sh1", "busybox", "sh"],
    ));
    p.expect("# ");
    p.type_line("stty size; echo S$((1+1))S");
    p.expect("24 80");
    p.expect("S2S");
    p.type_line("X=kept$((40+2))");
    p.resize(&run, 30, 100);
    wait_for_size(&p, "30 100");
    p.detach();
    let st = wait_exit(&mut run, WAIT, "run -it after ctrl-p ctrl-q");
    assert_eq!(st.code(), Some(0), "screen:\n{}", p.all());
    assert_restored(&cooked, &p.termios());
    assert_eq!(inspect(&d, "sh1", "{{.State.Running}}"), "true");

    // Back to the same shell: its variable is still set.
    p.skip();
    let mut again = p.spawn(&cli(&d, which, &["attach", "sh1"]));
    p.type_line("echo V=$X");
    p.expect("V=kept42");
    p.detach();
    let st = wait_exit(&mut again, WAIT, "attach after ctrl-p ctrl-q");
    assert_eq!(st.code(), Some(1), "screen:\n{}", p.all());
    p.expect("read escape sequence");
    assert_restored(&cooked, &p.termios());
    assert_eq!(inspect(&d, "sh1", "{{.State.Running}}"), "true");

    // Once more, now leaving the shell: the exit code comes back.
    p.skip();
    let mut last = p.spawn(&cli(&d, which, &["attach", "sh1"]));
    p.type_line("echo W=$X; exit 3");
    p.expect("W=kept42");
    let st = wait_exit(&mut last, WAIT, "attach until the shell exits");
    assert_eq!(st.code(), Some(3), "screen:\n{}", p.all());
    assert_restored(&cooked, &p.termios());
    assert_eq!(
        inspect(&d, "sh1", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 3"
    );
}

#[test]
fn berth_run_it_detach_reattach_exit() {
    run_detach_reattach(Cli::Berth);
}

#[test]
fn docker_run_it_detach_reattach_exit() {
    run_detach_reattach(Cli::Docker);
}

/// `exec -it` into a running container: size, resize, exit code; then an
/// exec session left with the detach keys.
fn exec_it(which: Cli) {
    let d = started();
    d.berth(&["run", "-d", "--name", "ex", "busybox", "sleep", "1000"])
        .ok();
    let p = Pty::open(25, 81);
    let cooked = p.termios();
    let mut ex = p.spawn(&cli(&d, which, &["exec", "-it", "ex", "sh"]));
    p.expect("# ");
    p.type_line("stty size");
    p.expect("25 81");
    p.resize(&ex, 40, 120);
    wait_for_size(&p, "40 120");
    p.type_line("echo E$((2+3))E; exit 5");
    p.expect("E5E");
    let st = wait_exit(&mut ex, WAIT, "exec -it until exit");
    assert_eq!(st.code(), Some(5), "screen:\n{}", p.all());
    assert_restored(&cooked, &p.termios());

    p.skip();
    let mut ex = p.spawn(&cli(&d, which, &["exec", "-it", "ex", "sh"]));
    p.expect("# ");
    p.detach();
    let st = wait_exit(&mut ex, WAIT, "exec -it after ctrl-p ctrl-q");
    assert_eq!(st.code(), Some(1), "screen:\n{}", p.all());
    p.expect("read escape sequence");
    assert_restored(&cooked, &p.termios());
    assert_eq!(inspect(&d, "ex", "{{.State.Running}}"), "true");
}

#[test]
fn berth_exec_it() {
    exec_it(Cli::Berth);
}

#[test]
fn docker_exec_it() {
    exec_it(Cli::Docker);
}

/// `start -ai` of a container made with `create -it`: size, resize,
/// detach and re-attach, exit code; then started again.
fn start_ai(which: Cli) {
    let d = started();
    d.berth(&["create", "-it", "--name", "st", "busybox", "sh"])
        .ok();
    let p = Pty::open(24, 80);
    let cooked = p.termios();
    let mut s = p.spawn(&cli(&d, which, &["start", "-ai", "st"]));
    p.expect("# ");
    p.type_line("stty size; Y=start$((3*7))");
    p.expect("24 80");
    p.resize(&s, 50, 132);
    wait_for_size(&p, "50 132");
    p.detach();
    let st = wait_exit(&mut s, WAIT, "start -ai after ctrl-p ctrl-q");
    assert_eq!(st.code(), Some(0), "screen:\n{}", p.all());
    assert_restored(&cooked, &p.termios());
    p.skip();
    let mut a = p.spawn(&cli(&d, which, &["attach", "st"]));
    p.type_line("echo Y=$Y; exit 4");
    p.expect("Y=start21");
    let st = wait_exit(&mut a, WAIT, "attach until exit");
    assert_eq!(st.code(), Some(4), "screen:\n{}", p.all());
    assert_restored(&cooked, &p.termios());
    // A second run of the same container, at once: the first run's exit
    // (seen by `attach`'s wait) is not taken for this one's.
    p.skip();
    let mut s = p.spawn(&cli(&d, which, &["start", "-ai", "st"]));
    p.expect("# ");
    p.type_line("echo T$((20+1))T; exit 0");
    p.expect("T21T");
    let st = wait_exit(&mut s, WAIT, "start -ai until exit");
    assert_eq!(st.code(), Some(0), "screen:\n{}", p.all());
    assert_restored(&cooked, &p.termios());
}

#[test]
fn berth_start_ai() {
    start_ai(Cli::Berth);
}

#[test]
fn docker_start_ai() {
    start_ai(Cli::Docker);
}

/// The container is killed under a running session: the client ends with
/// 137 and the terminal is usable again.
fn killed_underneath(which: Cli) {
    let d = started();
    let p = Pty::open(24, 80);
    let cooked = p.termios();
    let mut run = p.spawn(&cli(
        &d,
        which,
        &["run", "-it", "--name", "kk", "busybox", "sh"],
    ));
    p.expect("# ");
    assert!(
        !is_cooked(&p.termios()),
        "the client puts the terminal in raw mode"
    );
    d.berth(&["kill", "kk"]).ok();
    let st = wait_exit(&mut run, WAIT, "run -it after the container was killed");
    assert_eq!(st.code(), Some(137), "screen:\n{}", p.all());
    assert_restored(&cooked, &p.termios());
}

/// A process that cannot start: the client reports it and leaves the
/// terminal as it was.
fn failed_start(which: Cli) {
    let d = started();
    let p = Pty::open(24, 80);
    let cooked = p.termios();
    let mut run = p.spawn(&cli(
        &d,
        which,
        &["run", "-it", "--rm", "busybox", "nosuchcmd"],
    ));
    let st = wait_exit(&mut run, WAIT, "run -it of a missing command");
    assert_eq!(st.code(), Some(127), "screen:\n{}", p.all());
    p.expect("executable file not found");
    assert_restored(&cooked, &p.termios());
}

#[test]
fn berth_terminal_restored_after_a_failed_start() {
    failed_start(Cli::Berth);
}

#[test]
fn docker_terminal_restored_after_a_failed_start() {
    failed_start(Cli::Docker);
}

#[test]
fn berth_terminal_restored_when_container_killed() {
    killed_underneath(Cli::Berth);
}

#[test]
fn docker_terminal_restored_when_container_killed() {
    killed_underneath(Cli::Docker);
}

/// Deterministic pseudo-random bytes (xorshift), every byte value included.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// 100 MB of binary data through `run -i … cat` without a TTY, byte for
/// byte (the detach keys appear in it many times and must pass).
fn binary_through_cat(which: Cli) {
    let d = started();
    let data = noise(100 << 20);
    assert!(data.windows(2).any(|w| w == [16, 17]));
    let mut child = cli(&d, which, &["run", "-i", "--rm", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let input = data.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::with_capacity(100 << 20);
        let r = stdout.read_to_end(&mut out).map(|_| out);
        let _ = tx.send(r);
    });
    let out = match rx.recv_timeout(Duration::from_secs(240)) {
        Ok(r) => r.expect("read the output"),
        Err(_) => {
            let _ = child.kill();
            panic!("100 MB did not come back within 240 s");
        }
    };
    writer.join().unwrap();
    let st = wait_exit(&mut child, WAIT, "run -i cat");
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(st.code(), Some(0), "stderr: {err}");
    assert_eq!(out.len(), data.len(), "length differs");
    if let Some(i) = out.iter().zip(&data).position(|(a, b)| a != b) {
        panic!("first difference at byte {i}");
    }
}

#[test]
fn berth_run_i_passes_100mb_of_binary_stdin() {
    binary_through_cat(Cli::Berth);
}

#[test]
fn docker_run_i_passes_100mb_of_binary_stdin() {
    binary_through_cat(Cli::Docker);
}

/// A raw API connection with a read time limit.
fn connect(d: &Daemon) -> UnixStream {
    let s = UnixStream::connect(&d.socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Sends a hijacking request; returns the connection after the `101` and
/// any bytes read past the header.
fn hijack(d: &Daemon, path: &str, body: &str) -> (UnixStream, Vec<u8>) {
    let mut s = connect(d);
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let (head, rest) = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "not upgraded: {head}");
    (s, rest)
}

/// Reads an HTTP head; returns it and the bytes after it.
fn read_head(s: &mut UnixStream) -> (String, Vec<u8>) {
    let deadline = Instant::now() + WAIT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return (head, buf[end + 4..].to_vec());
        }
        assert!(Instant::now() < deadline, "no HTTP head within {WAIT:?}");
        match s.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed before the head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(e) => panic!("reading the head: {e}"),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Reads until `pred(all bytes so far)` holds or the peer closes; panics
/// after `limit`. Returns the bytes and whether the peer closed.
fn read_until(
    s: &mut UnixStream,
    mut got: Vec<u8>,
    limit: Duration,
    pred: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + limit;
    let mut chunk = [0u8; 65536];
    loop {
        if pred(&got) {
            return (got, false);
        }
        if Instant::now() >= deadline {
            panic!(
                "condition not met within {limit:?}; got {:?}",
                String::from_utf8_lossy(&got)
            );
        }
        match s.read(&mut chunk) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(_) => return (got, true),
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Reads whatever comes for `limit`; returns it and whether the peer closed.
fn read_for(s: &mut UnixStream, mut got: Vec<u8>, limit: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + limit;
    let mut chunk = [0u8; 65536];
    while Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(_) => return (got, true),
        }
    }
    (got, false)
}

/// Reads until the peer closes (within `limit`).
#[track_caller]
fn read_to_close(s: &mut UnixStream, got: Vec<u8>, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut got = got;
    let mut chunk = [0u8; 65536];
    loop {
        assert!(
            Instant::now() < deadline,
            "the daemon did not close the stream within {limit:?}; got {:?}",
            String::from_utf8_lossy(&got)
        );
        match s.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(_) => return got,
        }
    }
}

/// Splits Docker's multiplexed frames into (stream, payload).
fn demux(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        assert!(b.len() >= 8 + n, "truncated frame");
        out.push((b[0], b[8..8 + n].to_vec()));
        b = &b[8 + n..];
    }
    assert!(b.is_empty(), "trailing bytes after the frames");
    out
}

#[test]
fn daemon_detach_keys_end_a_tty_attach_and_partial_keys_pass() {
    let d = started();
    d.berth(&["run", "-dit", "--name", "cat", "busybox", "cat"])
        .ok();
    let (mut s, rest) = hijack(
        &d,
        "/v1.45/containers/cat/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=a,b",
        "",
    );
    // "xa" is held back until "c" shows it was not the sequence.
    s.write_all(b"xa").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"c\n").unwrap();
    let (got, closed) = read_until(&mut s, rest, WAIT, |b| contains(b, "xac\r\nxac"));
    assert!(!closed, "{:?}", String::from_utf8_lossy(&got));
    // The sequence itself: not forwarded, the daemon ends this attach.
    s.write_all(b"za").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(b"b").unwrap();
    let tail = read_to_close(&mut s, Vec::new(), WAIT);
    assert!(
        !contains(&tail, "ab"),
        "{:?}",
        String::from_utf8_lossy(&tail)
    );
    assert_eq!(inspect(&d, "cat", "{{.State.Running}}"), "true");
    // The default keys work the same.
    let (mut s, rest) = hijack(&d, "/containers/cat/attach?stream=1&stdin=1&stdout=1", "");
    s.write_all(b"q\x10").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(b"\x11").unwrap();
    read_to_close(&mut s, rest, WAIT);
    assert_eq!(inspect(&d, "cat", "{{.State.Running}}"), "true");
    // What came before the sequences went in, and nothing of them did:
    // the terminal's pending line is "zq".
    let (mut s, rest) = hijack(&d, "/containers/cat/attach?stream=1&stdin=1&stdout=1", "");
    s.write_all(b"\n").unwrap();
    let (got, _) = read_until(&mut s, rest, WAIT, |b| contains(b, "zq\r\n"));
    assert!(
        !contains(&got, "a") && !contains(&got, "b"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    // Bad keys are refused up front, as dockerd does.
    let r = d
        .request(
            "POST",
            "/containers/cat/attach?stream=1&stdin=1&detachKeys=ctrl-1",
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "Invalid detach keys (ctrl-1) provided");
}

#[test]
fn without_a_tty_stdin_is_never_scanned_for_detach_keys() {
    let d = started();
    d.berth(&["run", "-di", "--name", "icat", "busybox", "cat"])
        .ok();
    let (mut s, rest) = hijack(&d, "/containers/icat/attach?stream=1&stdin=1&stdout=1", "");
    s.write_all(b"one\x10\x11two\n").unwrap();
    let (got, closed) = read_until(&mut s, rest, WAIT, |b| contains(b, "two\n"));
    assert!(!closed);
    let frames = demux(&got);
    let all: Vec<u8> = frames.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_eq!(all, b"one\x10\x11two\n");
    assert!(frames.iter().all(|(k, _)| *k == 1));
}

#[test]
fn attach_logs_replay_and_stream_default() {
    let d = started();
    d.berth(&[
        "run",
        "--name",
        "lg",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2",
    ])
    .ok();
    // logs=1 without stream: the log only, then the end.
    let (mut s, rest) = hijack(
        &d,
        "/v1.45/containers/lg/attach?logs=1&stdout=1&stderr=1",
        "",
    );
    let frames = demux(&read_to_close(&mut s, rest, WAIT));
    assert_eq!(frames, vec![(1, b"one\n".to_vec()), (2, b"two\n".to_vec())]);
    let (mut s, rest) = hijack(&d, "/containers/lg/attach?logs=1&stream=0&stdout=1", "");
    assert_eq!(
        demux(&read_to_close(&mut s, rest, WAIT)),
        vec![(1, b"one\n".to_vec())]
    );
    // Neither logs nor stream: nothing, at once.
    let (mut s, rest) = hijack(&d, "/containers/lg/attach?stdout=1", "");
    assert!(read_to_close(&mut s, rest, Duration::from_secs(5)).is_empty());
    // Without the upgrade: the same as a plain body.
    let r = d
        .request(
            "POST",
            "/containers/lg/attach?logs=1&stdout=1&stderr=1",
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        demux(&r.body),
        vec![(1, b"one\n".to_vec()), (2, b"two\n".to_vec())]
    );
}

#[test]
fn attach_to_a_stopped_container_waits_for_its_start() {
    let d = started();
    d.berth(&[
        "create",
        "--name",
        "later",
        "busybox",
        "sh",
        "-c",
        "echo from-the-run",
    ])
    .ok();
    let (mut s, rest) = hijack(
        &d,
        "/containers/later/attach?stream=1&stdout=1&stderr=1",
        "",
    );
    let (early, closed) = read_for(&mut s, rest, Duration::from_millis(500));
    assert!(!closed && early.is_empty(), "nothing before the start");
    let r = d.request("POST", "/containers/later/start", None).unwrap();
    assert_eq!(r.status, 204, "{}", r.body_string());
    let out = read_to_close(&mut s, early, WAIT);
    assert_eq!(demux(&out), vec![(1, b"from-the-run\n".to_vec())]);
    // The CLIs check first and refuse, in their own words.
    let e = d.berth(&["attach", "later"]);
    assert!(
        e.fails(1)
            .contains("attach to a stopped container, start it first"),
        "{}",
        e.stderr
    );
    let e = d.docker(&["attach", "later"]);
    assert!(
        e.fails(1)
            .contains("attach to a stopped container, start it first"),
        "{}",
        e.stderr
    );
}

#[test]
fn missing_paused_and_bad_requests() {
    let d = started();
    for (method, path) in [
        ("POST", "/containers/nope/attach?stream=1&stdout=1"),
        ("POST", "/containers/nope/exec"),
        ("GET", "/containers/nope/attach/ws?stream=1"),
    ] {
        let r = d
            .request(method, path, Some(b"{\"Cmd\":[\"true\"]}"))
            .unwrap();
        assert_eq!(r.status, 404, "{path}: {}", r.body_string());
        assert_eq!(r.json()["message"], "No such container: nope");
    }
    let e = d.berth(&["exec", "nope", "true"]);
    assert!(
        e.fails(1).contains("No such container: nope"),
        "{}",
        e.stderr
    );
    let e = d.docker(&["exec", "nope", "true"]);
    assert!(
        e.fails(1).contains("No such container: nope"),
        "{}",
        e.stderr
    );

    d.berth(&["run", "-d", "--name", "pz", "busybox", "sleep", "1000"])
        .ok();
    d.berth(&["pause", "pz"]).ok();
    let r = d
        .request("POST", "/containers/pz/attach?stream=1&stdout=1", None)
        .unwrap();
    assert_eq!(r.status, 409);
    assert_eq!(
        r.json()["message"],
        "container pz is paused, unpause the container before attach"
    );
    d.berth(&["unpause", "pz"]).ok();
    let r = d
        .request(
            "POST",
            "/containers/pz/exec",
            Some(br#"{"Cmd":["sh"],"Tty":true,"AttachStdin":true,"DetachKeys":"ctrl-1"}"#),
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "Invalid escape keys (ctrl-1) provided");
}

#[test]
fn exec_detach_keys_are_its_own() {
    let d = started();
    d.berth(&["run", "-d", "--name", "ek", "busybox", "sleep", "1000"])
        .ok();
    let r = d
        .request(
            "POST",
            "/containers/ek/exec",
            Some(br#"{"Cmd":["cat"],"Tty":true,"AttachStdin":true,"AttachStdout":true,"DetachKeys":"ctrl-x"}"#),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body_string());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    let (mut s, rest) = hijack(
        &d,
        &format!("/exec/{id}/start"),
        r#"{"Detach":false,"Tty":true}"#,
    );
    // ctrl-p ctrl-q is just input here.
    s.write_all(b"m\x10\x11n\n").unwrap();
    let (got, closed) = read_until(&mut s, rest, WAIT, |b| contains(b, "n\r\nm"));
    assert!(!closed, "{:?}", String::from_utf8_lossy(&got));
    s.write_all(b"\x18").unwrap();
    read_to_close(&mut s, Vec::new(), WAIT);
    let e = d
        .request("GET", &format!("/exec/{id}/json"), None)
        .unwrap()
        .json();
    assert_eq!(
        e["Running"], true,
        "the exec runs on after its client detached"
    );
}

/// A minimal websocket client over the daemon's socket.
struct Ws {
    s: UnixStream,
    buf: Vec<u8>,
}

impl Ws {
    fn open(d: &Daemon, path: &str) -> Ws {
        let mut s = connect(d);
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        s.write_all(req.as_bytes()).unwrap();
        let (head, rest) = read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{head}"
        );
        Ws { s, buf: rest }
    }

    /// Sends one masked frame (opcode 1 text, 2 binary, 8 close).
    fn send(&mut self, opcode: u8, payload: &[u8]) {
        assert!(payload.len() < 126);
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f).unwrap();
    }

    /// The next frame (opcode, payload); `None` when the connection ended.
    fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        let deadline = Instant::now() + WAIT;
        let mut chunk = [0u8; 65536];
        loop {
            if let Some((len, frame)) = parse_frame(&self.buf) {
                self.buf.drain(..len);
                return Some(frame);
            }
            assert!(
                Instant::now() < deadline,
                "no websocket frame within {WAIT:?}"
            );
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) => {}
                Err(_) => return None,
            }
        }
    }

    /// Data frames until their bytes satisfy `pred`.
    fn read_data_until(&mut self, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut all = Vec::new();
        while !pred(&all) {
            match self.recv() {
                Some((2, p)) => all.extend_from_slice(&p),
                Some((op, p)) => panic!("unexpected frame {op}: {p:?} after {all:?}"),
                None => panic!("closed after {:?}", String::from_utf8_lossy(&all)),
            }
        }
        all
    }
}

/// (bytes used, (opcode, payload)) of one unmasked server frame.
fn parse_frame(b: &[u8]) -> Option<(usize, (u8, Vec<u8>))> {
    if b.len() < 2 {
        return None;
    }
    let op = b[0] & 0x0f;
    let (len, mut at) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => (
            u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if b[1] & 0x80 != 0 {
        at += 4;
    }
    if b.len() < at + len {
        return None;
    }
    Some((at + len, (op, b[at..at + len].to_vec())))
}

#[test]
fn websocket_attach() {
    let d = started();
    d.berth(&[
        "run",
        "-di",
        "--name",
        "ws",
        "busybox",
        "sh",
        "-c",
        "while read l; do echo out:$l; echo err:$l >&2; done",
    ])
    .ok();
    // Raw output (never multiplexed), binary frames; stdin from text and
    // binary frames alike.
    let mut ws = Ws::open(
        &d,
        "/v1.45/containers/ws/attach/ws?stream=1&stdin=1&stdout=1&stderr=1",
    );
    ws.send(1, b"hello\n");
    let got = ws.read_data_until(|b| contains(b, "out:hello\n") && contains(b, "err:hello\n"));
    assert!(
        got.starts_with(b"out:") || got.starts_with(b"err:"),
        "{got:?}"
    );
    ws.send(2, b"bin\n");
    ws.read_data_until(|b| contains(b, "out:bin\n") && contains(b, "err:bin\n"));
    // From 1.42 the query chooses: stdout only.
    let mut only = Ws::open(
        &d,
        "/v1.45/containers/ws/attach/ws?stream=1&stdin=1&stdout=1",
    );
    only.send(1, b"two\n");
    let got = only.read_data_until(|b| contains(b, "out:two\n"));
    assert!(!contains(&got, "err:"), "{got:?}");
    // Before 1.42 every stream is attached whatever the query says.
    let mut old = Ws::open(&d, "/v1.41/containers/ws/attach/ws?stream=1");
    old.send(1, b"old\n");
    old.read_data_until(|b| contains(b, "out:old\n") && contains(b, "err:old\n"));
    // A close frame ends the attach; the container runs on.
    old.send(8, &[]);
    while let Some((op, _)) = old.recv() {
        if op == 8 {
            break;
        }
    }
    assert_eq!(inspect(&d, "ws", "{{.State.Running}}"), "true");

    // With a TTY, the detach keys end a websocket attach too.
    d.berth(&["run", "-dit", "--name", "wst", "busybox", "cat"])
        .ok();
    let mut t = Ws::open(
        &d,
        "/containers/wst/attach/ws?stream=1&stdin=1&stdout=1&detachKeys=ctrl-a",
    );
    t.send(2, b"zz\n");
    t.read_data_until(|b| contains(b, "zz\r\nzz"));
    t.send(2, &[1]);
    let mut closed = false;
    while let Some((op, _)) = t.recv() {
        if op == 8 {
            closed = true;
            break;
        }
    }
    assert!(closed, "the daemon closes the websocket on detach");
    assert_eq!(inspect(&d, "wst", "{{.State.Running}}"), "true");
}

/// Lines of a child's stdout, as they come.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[track_caller]
fn wait_line(rx: &mpsc::Receiver<String>, want: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(want) => return,
            Ok(_) => {}
            Err(_) => panic!("no line with {want:?} within {WAIT:?}"),
        }
    }
}

/// Without a TTY, a signal to the client reaches the container.
fn sig_proxy(which: Cli) {
    let d = started();
    let script = "trap 'echo got-INT; exit 7' INT; echo ready; while :; do sleep 0.2; done";
    let mut run = cli(&d, which, &["run", "--rm", "busybox", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut run);
    wait_line(&lines, "ready");
    signal(&run, Signal::INT);
    wait_line(&lines, "got-INT");
    assert_eq!(
        wait_exit(&mut run, WAIT, "run after SIGINT").code(),
        Some(7)
    );

    // start -a proxies too.
    let script = "trap 'echo got-HUP; exit 8' HUP; echo ready; while :; do sleep 0.2; done";
    d.berth(&["create", "--name", "sa", "busybox", "sh", "-c", script])
        .ok();
    let mut start = cli(&d, which, &["start", "-a", "sa"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut start);
    wait_line(&lines, "ready");
    signal(&start, Signal::HUP);
    wait_line(&lines, "got-HUP");
    assert_eq!(
        wait_exit(&mut start, WAIT, "start -a after SIGHUP").code(),
        Some(8)
    );

    // attach proxies too.
    let script = "trap 'echo got-TERM; exit 9' TERM; while :; do echo tick; sleep 0.2; done";
    d.berth(&["run", "-d", "--name", "sp", "busybox", "sh", "-c", script])
        .ok();
    let mut att = cli(&d, which, &["attach", "sp"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut att);
    wait_line(&lines, "tick");
    signal(&att, Signal::TERM);
    wait_line(&lines, "got-TERM");
    assert_eq!(
        wait_exit(&mut att, WAIT, "attach after SIGTERM").code(),
        Some(9)
    );
}

#[test]
fn berth_sig_proxy() {
    sig_proxy(Cli::Berth);
}

#[test]
fn docker_sig_proxy() {
    sig_proxy(Cli::Docker);
}

#[test]
fn berth_sig_proxy_false_leaves_the_container_alone() {
    let d = started();
    let mut run = cli(
        &d,
        Cli::Berth,
        &[
            "run",
            "--sig-proxy=false",
            "--name",
            "np",
            "busybox",
            "sh",
            "-c",
            "echo ready; sleep 1000",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let lines = lines_of(&mut run);
    wait_line(&lines, "ready");
    signal(&run, Signal::INT);
    let st = wait_exit(&mut run, WAIT, "run --sig-proxy=false after SIGINT");
    assert_eq!(st.code(), None, "the client dies of the signal itself");
    assert_eq!(inspect(&d, "np", "{{.State.Running}}"), "true");
}

/// The daemon's resident memory (kB).
fn daemon_rss_kb(d: &Daemon) -> u64 {
    let pid = std::fs::read_to_string(d.dir.path().join("run/berth.pid")).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// How far the flooding container's loop has got.
fn count(d: &Daemon) -> u64 {
    d.berth(&["exec", "flood", "cat", "/tmp/count"])
        .ok()
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn a_client_that_does_not_read_slows_the_container_not_the_daemon() {
    let d = started();
    let script = "i=0; while :; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); [ $((i % 500)) = 0 ] && echo $i > /tmp/count; done";
    d.berth(&[
        "run", "-d", "--name", "flood", "busybox", "sh", "-c", script,
    ])
    .ok();
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = daemon_rss_kb(&d);
    // Attached, never reading: the container is held up.
    let (stalled, _) = hijack(
        &d,
        "/containers/flood/attach?stream=1&stdout=1&stderr=1",
        "",
    );
    std::thread::sleep(Duration::from_secs(3));
    let c1 = count(&d);
    std::thread::sleep(Duration::from_secs(2));
    let c2 = count(&d);
    assert!(
        c2.saturating_sub(c1) <= 500,
        "the container ran on while its client read nothing: {c1} → {c2}"
    );
    let rss = daemon_rss_kb(&d);
    assert!(
        rss < rss_before + 64 * 1024,
        "daemon RSS grew from {rss_before} kB to {rss} kB"
    );
    // The client goes away: the container runs again.
    drop(stalled);
    let c3 = count(&d);
    let deadline = Instant::now() + WAIT;
    while count(&d) <= c3 + 500 {
        assert!(Instant::now() < deadline, "the container did not resume");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A client that disconnects mid-stream leaves nothing behind.
    for _ in 0..5 {
        let (mut s, rest) = hijack(&d, "/containers/flood/attach?stream=1&stdout=1", "");
        read_until(&mut s, rest, WAIT, |b| b.len() > 1 << 20);
    }
    // Their subscriptions are gone: nothing holds the container up.
    let c4 = count(&d);
    let deadline = Instant::now() + WAIT;
    while count(&d) <= c4 + 500 {
        assert!(
            Instant::now() < deadline,
            "the container stalled after its clients left"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let started_at = Instant::now();
    let r = d.request("GET", "/containers/flood/json", None).unwrap();
    assert_eq!(r.status, 200);
    assert!(started_at.elapsed() < Duration::from_secs(2));
    let rss = daemon_rss_kb(&d);
    assert!(
        rss < rss_before + 64 * 1024,
        "daemon RSS grew from {rss_before} kB to {rss} kB"
    );

    // A stalled client does not keep the container from stopping.
    let (_stalled, _) = hijack(&d, "/containers/flood/attach?stream=1&stdout=1", "");
    std::thread::sleep(Duration::from_secs(1));
    let t = Instant::now();
    d.berth(&["stop", "-t", "1", "flood"]).ok();
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(inspect(&d, "flood", "{{.State.Status}}"), "exited");
}
