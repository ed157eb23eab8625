//! The local terminal: raw mode for `run -it` (restored when the guard is
//! dropped, on every exit path, panics included) and the window size sent
//! as `ConsoleSize` and to `/containers/{id}/resize`.

use std::io::{self, IsTerminal};

use rustix::termios::{tcgetattr, tcgetwinsize, tcsetattr, OptionalActions, Termios};

/// True when standard input is a terminal.
pub(crate) fn stdin_is_tty() -> bool {
    io::stdin().is_terminal()
}

/// True when standard output is a terminal.
pub(crate) fn stdout_is_tty() -> bool {
    io::stdout().is_terminal()
}

/// docker's `In().CheckTty`: attaching stdin to a container's TTY needs
/// our stdin to be a terminal (a pipe cannot be put in raw mode).
pub(crate) fn check_tty(attach_stdin: bool, tty: bool) -> Result<(), NotATty> {
    if tty && attach_stdin && !stdin_is_tty() {
        return Err(NotATty);
    }
    Ok(())
}

/// Stdin is not a terminal while a TTY is wanted.
#[derive(Debug, thiserror::Error)]
#[error("the input device is not a TTY")]
pub(crate) struct NotATty;

/// `(height, width)` of the terminal on standard output; `(0, 0)` when it
/// is not a terminal (docker's `Out().GetTtySize()`).
pub(crate) fn size() -> (u16, u16) {
    if !stdout_is_tty() {
        return (0, 0);
    }
    match tcgetwinsize(io::stdout()) {
        Ok(ws) => (ws.ws_row, ws.ws_col),
        Err(_) => (0, 0),
    }
}

/// Standard input in raw mode until dropped.
#[derive(Debug)]
pub(crate) struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts standard input in raw mode (`cfmakeraw`, like moby/term's
    /// `MakeRaw`); `None` when standard input is not a terminal.
    pub(crate) fn enable() -> io::Result<Option<RawMode>> {
        if !stdin_is_tty() {
            return Ok(None);
        }
        let saved = tcgetattr(io::stdin())?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(io::stdin(), OptionalActions::Now, &raw)?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Detach keys: Docker's syntax and the scanner are shared with the
/// daemon, which watches for them too.
pub(crate) use berth_api::detach::{parse_detach_keys, Escape, EscapeProxy, DEFAULT_DETACH_KEYS};
