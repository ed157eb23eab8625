//! Decoding json-file lines fast: a small parser for the flat objects
//! Docker and the shim write (`log`, `stream`, `attrs`, `time`, in any
//! order, other keys skipped), unescaping `log` straight into the message.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_runtime::shim::log_files;

use super::read::Message;

/// Remembers the last `attrs` seen: every line of a container has the same.
#[derive(Debug, Default)]
pub(super) struct AttrsCache {
    raw: Vec<u8>,
    details: Option<Arc<str>>,
}

/// `{"a":"1","b":"x y"}` → `a=1,b=x+y` (Docker's `--details` prefix:
/// sorted by key, query-escaped).
pub(super) fn details_of(attrs_json: &[u8]) -> Arc<str> {
    if attrs_json.is_empty() {
        return Arc::from("");
    }
    let map: BTreeMap<String, String> = serde_json::from_slice(attrs_json).unwrap_or_default();
    let text = map
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join(",");
    Arc::from(text)
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.s.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// A string (after its opening quote) unescaped into `out`.
    fn string_into(&mut self, out: &mut Vec<u8>) -> Option<()> {
        loop {
            let rest = &self.s[self.i..];
            let j = memchr::memchr2(b'"', b'\\', rest)?;
            out.extend_from_slice(&rest[..j]);
            self.i += j + 1;
            if rest[j] == b'"' {
                return Some(());
            }
            let e = *self.s.get(self.i)?;
            self.i += 1;
            match e {
                b'"' | b'\\' | b'/' => out.push(e),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'u' => {
                    let mut c = self.hex4()?;
                    if (0xd800..0xdc00).contains(&c) {
                        // A surrogate pair, or a lone half (→ U+FFFD).
                        if self.s.get(self.i..self.i + 2) == Some(b"\\u") {
                            let save = self.i;
                            self.i += 2;
                            let lo = self.hex4()?;
                            if (0xdc00..0xe000).contains(&lo) {
                                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                            } else {
                                self.i = save;
                                c = 0xfffd;
                            }
                        } else {
                            c = 0xfffd;
                        }
                    }
                    let ch = char::from_u32(c).unwrap_or('\u{fffd}');
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                }
                _ => return None,
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }

    /// A string's raw bytes (no escapes expected; keys, times, streams).
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        let rest = &self.s[self.i..];
        let j = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[j] != b'"' {
            return None;
        }
        self.i += j + 1;
        Some(&rest[..j])
    }

    /// Skips any JSON value; returns its bytes.
    fn value(&mut self) -> Option<&'a [u8]> {
        self.ws();
        let start = self.i;
        let mut depth = 0usize;
        loop {
            let c = *self.s.get(self.i)?;
            match c {
                b'"' => {
                    self.i += 1;
                    let mut sink = Vec::new();
                    self.string_into(&mut sink)?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                }
                b'}' | b']' => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                    self.i += 1;
                }
                b',' if depth == 0 => break,
                _ => self.i += 1,
            }
            if depth == 0 && matches!(c, b'"' | b'}' | b']') {
                break;
            }
        }
        Some(&self.s[start..self.i])
    }
}

/// Parses one json-file line into `msg`; false when it is not one.
pub(super) fn parse_line(line: &[u8], msg: &mut Message, cache: &mut AttrsCache) -> bool {
    msg.data.clear();
    let mut c = Cursor { s: line, i: 0 };
    let parsed = (|| {
        c.eat(b'{')?;
        let (mut stream, mut time, mut attrs) = (None, None, None);
        loop {
            c.eat(b'"')?;
            let key = c.raw_string()?;
            c.eat(b':')?;
            c.ws();
            match key {
                b"log" => {
                    c.eat(b'"')?;
                    c.string_into(&mut msg.data)?;
                }
                b"stream" => {
                    c.eat(b'"')?;
                    stream = Some(c.raw_string()?);
                }
                b"time" => {
                    c.eat(b'"')?;
                    time = Some(c.raw_string()?);
                }
                b"attrs" => attrs = Some(c.value()?),
                _ => {
                    c.value()?;
                }
            }
            c.ws();
            match c.s.get(c.i)? {
                b',' => c.i += 1,
                b'}' => break,
                _ => return None,
            }
        }
        Some((stream, time?, attrs))
    })();
    let Some((stream, time, attrs)) = parsed else {
        return false;
    };
    msg.stream = if stream == Some(b"stderr") { 2 } else { 1 };
    let Some(t) = log_files::parse_time(time) else {
        return false;
    };
    msg.time_ns = t;
    match attrs {
        None if msg.details.is_empty() => {}
        None => msg.details = Arc::from(""),
        Some(raw) => {
            if cache.raw != raw || cache.details.is_none() {
                cache.raw.clear();
                cache.raw.extend_from_slice(raw);
                cache.details = Some(details_of(raw));
            }
            if let Some(d) = &cache.details {
                msg.details = d.clone();
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Option<Message> {
        let mut m = Message::default();
        parse_line(line.as_bytes(), &mut m, &mut AttrsCache::default()).then_some(m)
    }

    #[test]
    fn docker_lines() {
        let m = parse(r#"{"log":"hi \"x\" \\ \u003c\u0026 é \ud83d\ude00 \ud800 \n","stream":"stderr","time":"2024-01-01T00:00:00.5Z"}"#)
            .unwrap();
        assert_eq!(
            String::from_utf8(m.data).unwrap(),
            "hi \"x\" \\ <& é 😀 \u{fffd} \n"
        );
        assert_eq!((m.stream, m.time_ns), (2, 1_704_067_200_500_000_000));
        let m = parse(r#"{"log":"a\n","stream":"stdout","attrs":{"z":"1","a b":"c,d"},"time":"2024-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(&*m.details, "a+b=c%2Cd,z=1");
        // Other key orders and unknown keys.
        let m = parse(r#"{ "time": "2024-01-01T00:00:00Z", "extra": [1, {"x": "}"}], "stream": "stdout", "log": "b\t" }"#).unwrap();
        assert_eq!(m.data, b"b\t");
        assert!(parse("not json").is_none());
        assert!(parse(r#"{"log":"x","stream":"stdout"}"#).is_none());
        assert!(parse(r#"{"log":"x","stream":"stdout","time":"2024-01-01T00:00:00Z""#).is_none());
        // What serde_json writes, for any text.
        for s in [
            "plain",
            "tab\tnew\nline\r",
            "\u{1}\u{1f}",
            "日本語 🚀",
            "\"\\/",
        ] {
            let line =
                serde_json::json!({"log": s, "stream": "stdout", "time": "2024-01-01T00:00:00Z"})
                    .to_string();
            assert_eq!(parse(&line).unwrap().data, s.as_bytes(), "{line}");
        }
    }
}
