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

/// Docker's `--detach-keys` syntax (`ctrl-p,ctrl-q`, `a,ctrl-@`) as bytes;
/// the error texts are moby/term's.
pub(crate) fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        if key.len() > 1 {
            let Some(rest) = key.strip_prefix("ctrl-") else {
                return Err(format!("Unknown character: '{key}'"));
            };
            let c = rest.as_bytes();
            if c.len() != 1 {
                return Err(format!("Unknown character: '{key}'"));
            }
            let code = match c[0] {
                b'a'..=b'z' => c[0] - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(format!("Unknown character: '{key}'")),
            };
            out.push(code);
        } else if let Some(&b) = key.as_bytes().first() {
            out.push(b);
        }
    }
    Ok(out)
}

/// Docker's default detach sequence, ctrl-p ctrl-q.
pub(crate) const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

/// Watches keyboard input for the detach sequence (moby/term's
/// `EscapeProxy`): bytes that could start the sequence are held back until
/// it is clear whether they complete it.
#[derive(Debug)]
pub(crate) struct EscapeProxy {
    keys: Vec<u8>,
    matched: usize,
}

/// What the proxy makes of a chunk of input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Escape {
    /// Bytes to forward.
    Forward(Vec<u8>),
    /// The detach sequence was typed; bytes before it to forward first.
    Detach(Vec<u8>),
}

impl EscapeProxy {
    /// A proxy for `keys` (an empty sequence never detaches).
    pub(crate) fn new(keys: Vec<u8>) -> EscapeProxy {
        EscapeProxy { keys, matched: 0 }
    }

    /// Feeds input bytes.
    pub(crate) fn feed(&mut self, input: &[u8]) -> Escape {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return Escape::Forward(out);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Escape::Detach(out);
                }
                continue;
            }
            // Not the sequence: release what was held back.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
            } else {
                out.push(b);
            }
        }
        Escape::Forward(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("a,ctrl-@,ctrl-["), Ok(vec![b'a', 0, 27]));
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("shift-a").is_err());
    }

    #[test]
    fn escape_proxy() {
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(b"ab"), Escape::Forward(b"ab".to_vec()));
        assert_eq!(p.feed(&[16]), Escape::Forward(vec![]));
        assert_eq!(p.feed(b"x"), Escape::Forward(vec![16, b'x']));
        assert_eq!(p.feed(&[b'y', 16, 16]), Escape::Forward(vec![b'y', 16]));
        assert_eq!(p.feed(&[17, b'z']), Escape::Detach(vec![]));
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(&[b'q', 16, 17]), Escape::Detach(vec![b'q']));
    }
}
