//! Docker's detach keys: the `--detach-keys` / `detachKeys` syntax and the
//! scanner that finds the sequence in a stdin stream. The client (with a
//! TTY) and the daemon (on a TTY attach or exec) both watch for it, as the
//! docker CLI and dockerd do.

/// Docker's default detach sequence, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

/// The names moby/term accepts after `ctrl-`, in code order (`ctrl-@` is 0).
const CTRL_NAMES: &[u8; 32] = b"@abcdefghijklmnopqrstuvwxyz[\\]^_";

/// Docker's key syntax (moby/term `ToBytes`) as bytes: comma-separated
/// keys, each a single character, `ctrl-<x>` with x one of `a`-`z`, `@`,
/// `[`, `\`, `]`, `^`, `_`, or `DEL`. The error text is moby/term's.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        let ctrl = key
            .strip_prefix("ctrl-")
            .filter(|c| c.len() == 1)
            .and_then(|c| CTRL_NAMES.iter().position(|&n| n == c.as_bytes()[0]));
        match (ctrl, key) {
            (Some(code), _) => out.push(code as u8),
            (None, "DEL") => out.push(127),
            (None, _) => return Err(format!("unknown character: '{key}'")),
        }
    }
    Ok(out)
}

/// Watches input for the detach sequence (moby/term's `EscapeProxy`, but
/// over every byte rather than only single-byte reads): bytes that could
/// start the sequence are held back until it is clear whether they
/// complete it, then forwarded if they do not.
#[derive(Debug, Clone)]
pub struct EscapeProxy {
    keys: Vec<u8>,
    matched: usize,
}

/// What the proxy makes of a chunk of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Escape {
    /// Bytes to forward.
    Forward(Vec<u8>),
    /// The detach sequence was seen; the bytes before it are to be
    /// forwarded first, the rest of the chunk is dropped.
    Detach(Vec<u8>),
}

impl EscapeProxy {
    /// A proxy for `keys` (an empty sequence never detaches).
    pub fn new(keys: Vec<u8>) -> EscapeProxy {
        EscapeProxy { keys, matched: 0 }
    }

    /// Feeds input bytes.
    pub fn feed(&mut self, input: &[u8]) -> Escape {
        if self.keys.is_empty() {
            return Escape::Forward(input.to_vec());
        }
        let mut out = Vec::with_capacity(input.len() + self.matched);
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Escape::Detach(out);
                }
                continue;
            }
            // Not the sequence after all: release what was held back.
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

    /// The bytes held back as a possible start of the sequence (to forward
    /// when the input ends).
    pub fn pending(&self) -> &[u8] {
        &self.keys[..self.matched]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_syntax_is_moby_terms() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(
            parse_detach_keys("a,ctrl-@,ctrl-[,ctrl-\\,ctrl-_,DEL,,"),
            Err("unknown character: ''".into())
        );
        assert_eq!(
            parse_detach_keys("a,ctrl-@,ctrl-[,ctrl-\\,ctrl-_,DEL,X"),
            Ok(vec![b'a', 0, 27, 28, 31, 127, b'X'])
        );
        assert_eq!(parse_detach_keys("ctrl-z"), Ok(vec![26]));
        assert_eq!(
            parse_detach_keys("ctrl-1"),
            Err("unknown character: 'ctrl-1'".into())
        );
        assert!(parse_detach_keys("shift-a").is_err());
        assert!(parse_detach_keys("ctrl-A").is_err());
    }

    #[test]
    fn partial_matches_are_released() {
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(b"ab"), Escape::Forward(b"ab".to_vec()));
        assert_eq!(p.feed(&[16]), Escape::Forward(vec![]));
        assert_eq!(p.pending(), &[16]);
        assert_eq!(p.feed(b"x"), Escape::Forward(vec![16, b'x']));
        assert_eq!(p.feed(&[b'y', 16, 16]), Escape::Forward(vec![b'y', 16]));
        assert_eq!(p.feed(&[17, b'z']), Escape::Detach(vec![]));
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(&[b'q', 16, 17, b'r']), Escape::Detach(vec![b'q']));
        let mut p = EscapeProxy::new(b"abc".to_vec());
        assert_eq!(p.feed(b"xaba"), Escape::Forward(b"xab".to_vec()));
        assert_eq!(p.feed(b"bc"), Escape::Detach(vec![]));
        let mut p = EscapeProxy::new(vec![b'~']);
        assert_eq!(p.feed(b"ab~c"), Escape::Detach(b"ab".to_vec()));
        let mut p = EscapeProxy::new(Vec::new());
        assert_eq!(p.feed(&[16, 17]), Escape::Forward(vec![16, 17]));
    }
}
