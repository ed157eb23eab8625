//! Go's `json.Indent` and `json.Compact` on raw JSON text: `inspect` prints
//! the daemon's bytes re-indented, so key order and number spelling stay
//! exactly as sent.

/// Re-indents JSON text with `indent` per level (docker uses four spaces);
/// empty objects and arrays stay `{}` / `[]`.
pub(crate) fn indent(src: &[u8], indent: &str) -> String {
    let mut out = Vec::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut need_newline = false;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        for _ in 0..depth {
            out.extend_from_slice(indent.as_bytes());
        }
    };
    for &c in src {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if need_newline {
            need_newline = false;
            if c == b']' || c == b'}' {
                // Empty container: keep it on one line.
                depth -= 1;
                out.push(c);
                continue;
            }
            newline(&mut out, depth);
        }
        match c {
            b'"' => {
                in_string = true;
                out.push(c);
            }
            b'{' | b'[' => {
                out.push(c);
                depth += 1;
                need_newline = true;
            }
            b',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            b':' => {
                out.extend_from_slice(b": ");
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes insignificant whitespace.
pub(crate) fn compact(src: &[u8]) -> String {
    let mut out = Vec::with_capacity(src.len());
    let mut in_string = false;
    let mut escaped = false;
    for &c in src {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
        } else if !c.is_ascii_whitespace() {
            if c == b'"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_like_go() {
        let raw = br#"[{"Id":"x","Args":[],"Cfg":{"A":1,"B":[1,2],"E":{}},"S":"a, b: {c}"}]"#;
        let want = r#"[
    {
        "Id": "x",
        "Args": [],
        "Cfg": {
            "A": 1,
            "B": [
                1,
                2
            ],
            "E": {}
        },
        "S": "a, b: {c}"
    }
]"#;
        assert_eq!(indent(raw, "    "), want);
    }

    #[test]
    fn compacts() {
        assert_eq!(
            compact(b"{ \"a b\" : [ 1, 2 ] ,\n \"c\":\"\\\" x\" }\n"),
            r#"{"a b":[1,2],"c":"\" x"}"#
        );
    }
}
