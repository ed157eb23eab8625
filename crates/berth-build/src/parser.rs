//! Dockerfile syntax: parser directives, comments, line continuations,
//! heredocs, flags, and the JSON ("exec") or shell form of the arguments.
//! Words and variables are left for [`crate::shell`]: which instruction
//! expands what is the builder's business.

use crate::BuildError;

/// One heredoc body (`<<EOF` … `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word.
    pub name: String,
    /// The body, each line ending in `\n`.
    pub content: String,
    /// The delimiter was quoted: no variable expansion in the body.
    pub quoted: bool,
    /// `<<-`: leading tabs were stripped.
    pub chomp: bool,
}

/// The arguments of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// `["a", "b"]`.
    Json(Vec<String>),
    /// Anything else, the raw text after the flags.
    Shell(String),
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper-case instruction word.
    pub cmd: String,
    /// `--name=value` flags (`--name` alone has an empty value; `None` when
    /// no `=` was given).
    pub flags: Vec<(String, Option<String>)>,
    /// The arguments.
    pub args: Args,
    /// Heredoc bodies, in order.
    pub heredocs: Vec<Heredoc>,
    /// 1-based line of the instruction word.
    pub line: usize,
    /// The instruction as written, continuations joined (for "Step" lines
    /// and history).
    pub original: String,
}

impl Instruction {
    /// A flag's value.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// The arguments as text (a JSON form is re-joined with spaces).
    pub fn raw(&self) -> String {
        match &self.args {
            Args::Json(v) => v.join(" "),
            Args::Shell(s) => s.clone(),
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// The instructions, in order.
    pub instructions: Vec<Instruction>,
}

/// Instructions the builder knows.
pub const KNOWN: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Instructions that may carry heredocs.
const HEREDOC_CMDS: &[&str] = &["RUN", "COPY", "ADD"];

fn parse_error(line: usize, msg: impl std::fmt::Display) -> BuildError {
    BuildError::Parse {
        line,
        message: msg.to_string(),
    }
}

/// Reads the parser directives at the top; returns the escape char and
/// the index of the first line that is not a directive.
fn directives(lines: &[&str]) -> Result<(char, usize), BuildError> {
    let mut escape = '\\';
    let mut seen = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        let Some(body) = t.strip_prefix('#') else {
            return Ok((escape, i));
        };
        let Some((k, v)) = body.split_once('=') else {
            return Ok((escape, i));
        };
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Ok((escape, i));
        }
        if seen.contains(&k) {
            return Err(parse_error(
                i + 1,
                format!("only one {k} parser directive can be used"),
            ));
        }
        let v = v.trim();
        match k.as_str() {
            "escape" => {
                escape = match v {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(parse_error(
                            i + 1,
                            format!("invalid escape token '{v}' does not match ` or \\"),
                        ))
                    }
                }
            }
            // `syntax` names a frontend image, `check` tunes lint rules:
            // accepted, not acted on.
            "syntax" | "check" => {}
            // Unknown directives are plain comments, and end the directives.
            _ => return Ok((escape, i)),
        }
        seen.push(k);
    }
    Ok((escape, lines.len()))
}

/// Strips the continuation escape at the end of a line, if any.
fn continues(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end();
    t.strip_suffix(escape)
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, BuildError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let (escape, mut i) = directives(&lines)?;
    let mut out = Vec::new();
    while i < lines.len() {
        let l = lines[i];
        if l.trim().is_empty() || is_comment(l) {
            i += 1;
            continue;
        }
        let start = i;
        // Join continuation lines; comment lines inside are dropped and
        // empty lines skipped, as Docker does.
        let mut logical = String::new();
        let mut cur = l;
        loop {
            match continues(cur, escape) {
                Some(head) => {
                    logical.push_str(head);
                    i += 1;
                    loop {
                        if i >= lines.len() {
                            break;
                        }
                        if is_comment(lines[i]) || lines[i].trim().is_empty() {
                            i += 1;
                            continue;
                        }
                        break;
                    }
                    if i >= lines.len() {
                        break;
                    }
                    cur = lines[i];
                }
                None => {
                    logical.push_str(cur);
                    i += 1;
                    break;
                }
            }
        }
        let logical = logical.trim().to_string();
        let (word, rest) = match logical.find(char::is_whitespace) {
            Some(p) => (&logical[..p], logical[p..].trim_start()),
            None => (logical.as_str(), ""),
        };
        let cmd = word.to_ascii_uppercase();
        if !KNOWN.contains(&cmd.as_str()) {
            return Err(parse_error(
                start + 1,
                format!("unknown instruction: {word}"),
            ));
        }
        let (flags, rest) = if matches!(cmd.as_str(), "ONBUILD") {
            (Vec::new(), rest)
        } else {
            split_flags(rest)
        };
        let mut heredocs = Vec::new();
        if HEREDOC_CMDS.contains(&cmd.as_str()) {
            for (name, quoted, chomp) in heredoc_markers(rest) {
                let mut content = String::new();
                let mut found = false;
                while i < lines.len() {
                    let line = lines[i];
                    i += 1;
                    let cmp = if chomp {
                        line.trim_start_matches('\t')
                    } else {
                        line
                    };
                    if cmp == name {
                        found = true;
                        break;
                    }
                    content.push_str(cmp);
                    content.push('\n');
                }
                if !found {
                    return Err(parse_error(
                        start + 1,
                        format!("unterminated heredoc {name}: no line {name} before the end"),
                    ));
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    quoted,
                    chomp,
                });
            }
        }
        let args = match parse_json(rest) {
            Some(v) => Args::Json(v),
            None => Args::Shell(rest.to_string()),
        };
        out.push(Instruction {
            cmd,
            flags,
            args,
            heredocs,
            line: start + 1,
            original: logical.clone(),
        });
    }
    Ok(Dockerfile {
        escape,
        instructions: out,
    })
}

/// Splits leading `--flag[=value]` words off the arguments.
pub fn split_flags(mut rest: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut flags = Vec::new();
    loop {
        let t = rest.trim_start();
        if !t.starts_with("--") {
            return (flags, t);
        }
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        let word = &t[2..end];
        if word.is_empty() {
            // A bare `--` ends the flags.
            return (flags, t[end..].trim_start());
        }
        match word.split_once('=') {
            Some((n, v)) => flags.push((n.to_string(), Some(unquote(v)))),
            None => flags.push((word.to_string(), None)),
        }
        rest = &t[end..];
    }
}

fn unquote(v: &str) -> String {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

/// `["a","b"]` → the strings; anything else → None (shell form).
pub fn parse_json(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') || !t.ends_with(']') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// The heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`) in a line, in order:
/// (name, quoted, chomp).
pub fn heredoc_markers(s: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == b'\'' || c == b'"' {
            quote = Some(c);
            i += 1;
            continue;
        }
        if c == b'<' && b.get(i + 1) == Some(&b'<') && b.get(i + 2) != Some(&b'<') {
            let mut j = i + 2;
            let chomp = b.get(j) == Some(&b'-');
            if chomp {
                j += 1;
            }
            let q = match b.get(j) {
                Some(&x) if x == b'"' || x == b'\'' => {
                    j += 1;
                    Some(x)
                }
                _ => None,
            };
            let st = j;
            while j < b.len()
                && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'-' || b[j] == b'.')
            {
                j += 1;
            }
            if j > st {
                let name = s[st..j].to_string();
                if let Some(qc) = q {
                    if b.get(j) == Some(&qc) {
                        j += 1;
                    }
                }
                out.push((name, q.is_some(), chomp));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let df = parse(
            "# syntax=docker/dockerfile:1\n# escape=\\\nFROM busybox AS b\n# c\nRUN echo a \\\n  # inner\n  b\nCMD [\"sh\", \"-c\"]\ncopy --from=b --chown=1:2 a /b\n",
        )
        .unwrap();
        let i = &df.instructions;
        assert_eq!(i.len(), 4);
        assert_eq!(i[0].cmd, "FROM");
        assert_eq!(i[0].line, 3);
        assert_eq!(i[1].args, Args::Shell("echo a   b".into()));
        assert_eq!(i[2].args, Args::Json(vec!["sh".into(), "-c".into()]));
        assert_eq!(i[3].cmd, "COPY");
        assert_eq!(i[3].flag("from"), Some("b"));
        assert_eq!(i[3].flag("chown"), Some("1:2"));
        assert_eq!(i[3].args, Args::Shell("a /b".into()));
    }

    #[test]
    fn escape_directive() {
        let df = parse("# escape=`\nFROM x\nRUN a `\n b\nRUN c \\\n").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions[1].raw(), "a  b");
        assert_eq!(df.instructions[2].raw(), "c \\");
    }

    #[test]
    fn directive_after_comment_is_comment() {
        let df = parse("# hello\n# escape=`\nFROM x\nRUN a \\\n b\n").unwrap();
        assert_eq!(df.escape, '\\');
    }

    #[test]
    fn unknown_instruction_has_line() {
        let e = parse("FROM x\n\nBOGUS y\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 3: unknown instruction: BOGUS"
        );
    }

    #[test]
    fn heredocs() {
        let df = parse("FROM x\nRUN <<EOF\necho hi\necho there\nEOF\nCOPY <<-\"A\" <<B /d/\n\tone $x\n\tA\ntwo\nB\nCMD x\n").unwrap();
        let i = &df.instructions;
        assert_eq!(i.len(), 4);
        assert_eq!(i[1].heredocs[0].content, "echo hi\necho there\n");
        assert_eq!(i[2].heredocs.len(), 2);
        assert_eq!(i[2].heredocs[0].content, "one $x\n");
        assert!(i[2].heredocs[0].quoted && i[2].heredocs[0].chomp);
        assert_eq!(i[2].heredocs[1].content, "two\n");
        assert_eq!(i[3].cmd, "CMD");
        assert!(parse("FROM x\nRUN <<EOF\nno end\n").is_err());
    }

    #[test]
    fn heredoc_marker_in_quotes_is_not_one() {
        assert!(heredoc_markers("echo '<<EOF'").is_empty());
        assert_eq!(heredoc_markers("cat <<EOF > f").len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_dockerfile_like(lines in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just("FROM busybox".to_string()),
                proptest::strategy::Just("RUN echo \\".to_string()),
                proptest::strategy::Just("RUN <<EOF".to_string()),
                proptest::strategy::Just("EOF".to_string()),
                proptest::strategy::Just("# escape=`".to_string()),
                proptest::strategy::Just("COPY --from=a [\"x\", \"y\"]".to_string()),
                "[A-Za-z ${}<>\"'`\\\\#=-]{0,30}",
            ], 0..12)) {
            let text = lines.join("\n");
            if let Ok(df) = parse(&text) {
                for i in df.instructions {
                    proptest::prop_assert!(KNOWN.contains(&i.cmd.as_str()));
                    proptest::prop_assert!(i.line >= 1);
                }
            }
        }

        #[test]
        fn json_args_round_trip(v in proptest::collection::vec("[a-z0-9 /\"\\\\]{0,8}", 1..5)) {
            let text = format!("FROM x\nCMD {}\n", serde_json::to_string(&v).unwrap());
            let df = parse(&text).unwrap();
            proptest::prop_assert_eq!(&df.instructions[1].args, &Args::Json(v));
        }
    }
}
