//! Word splitting and variable expansion as Docker applies them to
//! instruction arguments: quotes, the escape character, `$VAR`, `${VAR}`,
//! `${VAR:-x}`, `${VAR-x}`, `${VAR:+x}`, `${VAR+x}`, `${VAR:?msg}`.

use crate::BuildError;

/// Splits raw text into words on unquoted whitespace. Quotes and escapes
/// stay in the words; [`expand`] removes them.
pub fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c.is_whitespace() {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                    continue;
                }
                in_word = true;
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Expands variables and removes quotes and escapes from one word.
pub fn expand(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, BuildError> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == escape {
            match chars.get(i + 1) {
                Some(&n) => out.push(n),
                None => out.push(c),
            }
            i += 2;
        } else if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                out.push(chars[i]);
                i += 1;
            }
            i += 1;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let d = chars[i];
                if d == escape {
                    match chars.get(i + 1) {
                        Some(&n) if n == '"' || n == '$' || n == escape => {
                            out.push(n);
                            i += 2;
                        }
                        Some(&n) => {
                            out.push(d);
                            out.push(n);
                            i += 2;
                        }
                        None => {
                            out.push(d);
                            i += 1;
                        }
                    }
                } else if d == '$' {
                    i = variable(&chars, i, escape, lookup, &mut out)?;
                } else {
                    out.push(d);
                    i += 1;
                }
            }
            i += 1;
        } else if c == '$' {
            i = variable(&chars, i, escape, lookup, &mut out)?;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands the variable at `chars[i] == '$'`; returns the index after it.
fn variable(
    chars: &[char],
    i: usize,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<usize, BuildError> {
    let mut j = i + 1;
    match chars.get(j) {
        Some(&c) if is_name_start(c) => {
            while j < chars.len() && is_name(chars[j]) {
                j += 1;
            }
            let name: String = chars[i + 1..j].iter().collect();
            out.push_str(&lookup(&name).unwrap_or_default());
            Ok(j)
        }
        Some('{') => {
            j += 1;
            let st = j;
            while j < chars.len() && is_name(chars[j]) {
                j += 1;
            }
            let name: String = chars[st..j].iter().collect();
            if name.is_empty() {
                return Err(BuildError::Syntax(format!(
                    "bad substitution: {}",
                    chars[i..].iter().collect::<String>()
                )));
            }
            // The modifier's word runs to the matching `}`.
            let mut depth = 1;
            let wst = j;
            let mut k = j;
            while k < chars.len() {
                if chars[k] == escape {
                    k += 2;
                    continue;
                }
                if chars[k] == '{' {
                    depth += 1;
                } else if chars[k] == '}' {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                k += 1;
            }
            if k >= chars.len() {
                return Err(BuildError::Syntax(format!(
                    "missing '}}' in: {}",
                    chars[i..].iter().collect::<String>()
                )));
            }
            let modifier: String = chars[wst..k].iter().collect();
            let value = lookup(&name);
            let expand_word = |w: &str| expand(w, escape, lookup);
            let result = if modifier.is_empty() {
                value.unwrap_or_default()
            } else if let Some(w) = modifier.strip_prefix(":-") {
                match value.filter(|v| !v.is_empty()) {
                    Some(v) => v,
                    None => expand_word(w)?,
                }
            } else if let Some(w) = modifier.strip_prefix(":+") {
                match value.filter(|v| !v.is_empty()) {
                    Some(_) => expand_word(w)?,
                    None => String::new(),
                }
            } else if let Some(w) = modifier.strip_prefix(":?") {
                match value.filter(|v| !v.is_empty()) {
                    Some(v) => v,
                    None => return Err(BuildError::Syntax(format!("{name}: {}", expand_word(w)?))),
                }
            } else if let Some(w) = modifier.strip_prefix('-') {
                match value {
                    Some(v) => v,
                    None => expand_word(w)?,
                }
            } else if let Some(w) = modifier.strip_prefix('+') {
                match value {
                    Some(_) => expand_word(w)?,
                    None => String::new(),
                }
            } else if let Some(w) = modifier.strip_prefix('?') {
                match value {
                    Some(v) => v,
                    None => return Err(BuildError::Syntax(format!("{name}: {}", expand_word(w)?))),
                }
            } else {
                return Err(BuildError::Syntax(format!(
                    "unsupported modifier ({modifier}) in substitution"
                )));
            };
            out.push_str(&result);
            Ok(k + 1)
        }
        _ => {
            out.push('$');
            Ok(j)
        }
    }
}

/// Splits and expands: every word of `s`, expanded.
pub fn expand_words(
    s: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, BuildError> {
    split_words(s, escape)
        .iter()
        .map(|w| expand(w, escape, lookup))
        .collect()
}

/// `KEY=VALUE ...` pairs of ENV, LABEL and ARG (also the legacy
/// `ENV KEY VALUE` form when `legacy` allows it), expanded.
pub fn key_values(
    s: &str,
    escape: char,
    legacy: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
    what: &str,
) -> Result<Vec<(String, String)>, BuildError> {
    let words = split_words(s, escape);
    if words.is_empty() {
        return Err(BuildError::Syntax(format!(
            "{what} requires at least one argument"
        )));
    }
    if !words[0].contains('=') {
        if !legacy {
            return Err(BuildError::Syntax(format!(
                "{what} names can not be blank and must be KEY=VALUE: {}",
                words[0]
            )));
        }
        let key = expand(&words[0], escape, lookup)?;
        let rest = s.trim_start()[words[0].len()..].trim();
        if rest.is_empty() {
            return Err(BuildError::Syntax(format!(
                "{what} must have two arguments"
            )));
        }
        return Ok(vec![(key, expand(rest, escape, lookup)?)]);
    }
    let mut out = Vec::new();
    for w in &words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(BuildError::Syntax(format!(
                "Syntax error - can't find = in \"{w}\". Must be of the form: name=value"
            )));
        };
        let k = expand(k, escape, lookup)?;
        if k.is_empty() {
            return Err(BuildError::Syntax(format!("{what} names can not be blank")));
        }
        out.push((k, expand(v, escape, lookup)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("aa".into()),
            "E" => Some(String::new()),
            "SP" => Some("x y".into()),
            _ => None,
        }
    }

    fn x(s: &str) -> String {
        expand(s, '\\', &env).unwrap()
    }

    #[test]
    fn variables() {
        assert_eq!(x("$A"), "aa");
        assert_eq!(x("${A}b"), "aab");
        assert_eq!(x("$Ab"), "");
        assert_eq!(x("${U:-def}"), "def");
        assert_eq!(x("${E:-def}"), "def");
        assert_eq!(x("${E-def}"), "");
        assert_eq!(x("${A:+set}"), "set");
        assert_eq!(x("${U:+set}"), "");
        assert_eq!(x("${E+set}"), "set");
        assert_eq!(x("${U:-${A}}"), "aa");
        assert_eq!(x("$"), "$");
        assert_eq!(x("a$ b"), "a$ b");
        assert!(expand("${U:?needed}", '\\', &env).is_err());
        assert!(expand("${A", '\\', &env).is_err());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$A'"), "$A");
        assert_eq!(x("\"$A\""), "aa");
        assert_eq!(x("\\$A"), "$A");
        assert_eq!(x("\"a\\\"b\""), "a\"b");
        assert_eq!(x("\"a\\nb\""), "a\\nb");
        assert_eq!(expand("`$A", '`', &env).unwrap(), "$A");
    }

    #[test]
    fn words() {
        assert_eq!(
            split_words("a \"b c\" 'd e'  f\\ g", '\\'),
            vec!["a", "\"b c\"", "'d e'", "f\\ g"]
        );
        assert_eq!(
            expand_words("a \"b c\" $SP", '\\', &env).unwrap(),
            vec!["a", "b c", "x y"]
        );
    }

    #[test]
    fn pairs() {
        let kv = key_values("a=1 b=\"x y\" c=$A", '\\', true, &env, "ENV").unwrap();
        assert_eq!(
            kv,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "aa".into())
            ]
        );
        let kv = key_values("K v w $A", '\\', true, &env, "ENV").unwrap();
        assert_eq!(kv, vec![("K".into(), "v w aa".into())]);
        assert!(key_values("K", '\\', true, &env, "ENV").is_err());
        assert!(key_values("a=1 b", '\\', true, &env, "LABEL").is_err());
    }

    proptest::proptest! {
        #[test]
        fn plain_text_is_unchanged(s in "[A-Za-z0-9 ./_:,-]{0,40}") {
            proptest::prop_assert_eq!(x(&s), s);
        }

        #[test]
        fn single_quotes_are_literal(s in "[^']{0,40}") {
            proptest::prop_assert_eq!(x(&format!("'{s}'")), s);
        }

        #[test]
        fn expansion_never_panics(s in "[$A-Z{}:+?\\-'\"\\\\ a-z]{0,40}") {
            let _ = expand(&s, '\\', &env);
            let _ = split_words(&s, '\\');
        }

        #[test]
        fn default_applies_only_when_unset(v in "[a-z]{0,6}", d in "[a-z]{1,6}") {
            let look = |n: &str| (n == "V" && !v.is_empty()).then(|| v.clone());
            let got = expand("${V:-DEF}".replace("DEF", &d).as_str(), '\\', &look).unwrap();
            proptest::prop_assert_eq!(got, if v.is_empty() { d.clone() } else { v.clone() });
        }

        #[test]
        fn words_join_back(ws in proptest::collection::vec("[a-z0-9]{1,5}", 0..6)) {
            proptest::prop_assert_eq!(split_words(&ws.join("  "), '\\'), ws);
        }
    }
}
