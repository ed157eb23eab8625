//! `.dockerignore` with Docker's semantics: one pattern a line, `#`
//! comments, `!` exceptions, the last matching pattern wins, `*` and `?`
//! stay within a path component, `**` spans any number of them, and a
//! pattern that matches a directory matches everything under it.
//! Also the path globs of COPY/ADD sources.

use regex::Regex;

/// One compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    re: Regex,
    exclusion: bool,
    /// The cleaned pattern text (without `!`).
    text: String,
}

/// A `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

/// Lexically cleans a slash path: no `.`, no empty components, `..`
/// resolved against what precedes it (never above the root).
pub fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// Compiles a glob into an anchored regex (Docker's patternmatcher rules).
pub fn glob_regex(pattern: &str) -> Result<Regex, regex::Error> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    i += 1;
                    if chars.get(i + 1) == Some(&'/') {
                        i += 1;
                    }
                    if i + 1 >= chars.len() {
                        re.push_str(".*");
                    } else {
                        re.push_str("(.*/)?");
                    }
                } else {
                    re.push_str("[^/]*");
                }
            }
            '?' => re.push_str("[^/]"),
            '\\' => {
                i += 1;
                match chars.get(i) {
                    Some(n) => re.push_str(&regex::escape(&n.to_string())),
                    None => re.push_str("\\\\"),
                }
            }
            '[' => {
                // A character class passes through, `!` negation included.
                let mut j = i + 1;
                let mut class = String::from("[");
                if chars.get(j) == Some(&'!') || chars.get(j) == Some(&'^') {
                    class.push('^');
                    j += 1;
                }
                let mut closed = false;
                while j < chars.len() {
                    if chars[j] == ']' && class.len() > 1 {
                        closed = true;
                        break;
                    }
                    if chars[j] == '\\' || chars[j] == '[' {
                        class.push('\\');
                    }
                    class.push(chars[j]);
                    j += 1;
                }
                if closed {
                    class.push(']');
                    re.push_str(&class);
                    i = j;
                } else {
                    re.push_str("\\[");
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re)
}

impl Matcher {
    /// Reads a `.dockerignore` text. Bad patterns are errors naming them.
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let text = clean(pat);
            if text.is_empty() {
                continue;
            }
            let re = glob_regex(&text)
                .map_err(|e| format!("invalid .dockerignore pattern {pat:?}: {e}"))?;
            patterns.push(Pattern {
                re,
                exclusion,
                text,
            });
        }
        Ok(Matcher { patterns })
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when some `!` pattern exists (a dir that is excluded may still
    /// hold files to include, so it must be walked).
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// True when `path` (relative, slash-separated) is ignored.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut ignored = false;
        for p in &self.patterns {
            if p.exclusion != ignored {
                continue;
            }
            let hit = p.re.is_match(&path) || parents.iter().any(|d| p.re.is_match(d));
            if hit {
                ignored = !p.exclusion;
            }
        }
        ignored
    }

    /// True when a directory can be skipped whole: it is excluded and no
    /// exception pattern could reach inside it.
    pub fn skip_dir(&self, dir: &str) -> bool {
        if !self.excluded(dir) {
            return false;
        }
        let dir = clean(dir);
        !self.patterns.iter().any(|p| {
            p.exclusion
                && (p.text.starts_with(&format!("{dir}/"))
                    || p.text.contains('*')
                    || p.text.contains('?')
                    || p.text.contains('['))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Matcher {
        Matcher::parse(s).unwrap()
    }

    #[test]
    fn docker_examples() {
        let i = m("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
        assert!(i.excluded("somedir/temporary.txt"));
        assert!(i.excluded("somedir/temp"));
        assert!(i.excluded("somedir/subdir/temporary.txt"));
        assert!(i.excluded("tempa"));
        assert!(!i.excluded("tempab"));
        assert!(!i.excluded("temporary.txt"));
        assert!(!i.excluded("a/b/c/temp"));
    }

    #[test]
    fn double_star() {
        let i = m("**/*.go\n");
        assert!(i.excluded("a.go"));
        assert!(i.excluded("x/y/z.go"));
        assert!(!i.excluded("x/y/z.rs"));
        let i = m("a/**\n");
        assert!(i.excluded("a/b/c"));
        assert!(!i.excluded("b"));
    }

    #[test]
    fn exceptions_last_wins() {
        let i = m("*.md\n!README.md\n");
        assert!(i.excluded("CHANGES.md"));
        assert!(!i.excluded("README.md"));
        let i = m("!README.md\n*.md\n");
        assert!(i.excluded("README.md"));
    }

    #[test]
    fn dir_excludes_children() {
        let i = m("node_modules\n/build/\n./dist\n");
        assert!(i.excluded("node_modules/x/y.js"));
        assert!(i.excluded("build/out"));
        assert!(i.excluded("dist"));
        assert!(!i.excluded("src/node_modulesx"));
        assert!(i.skip_dir("node_modules"));
        let i = m("docs\n!docs/keep.md\n");
        assert!(!i.skip_dir("docs"));
        assert!(i.excluded("docs/other.md"));
        assert!(!i.excluded("docs/keep.md"));
    }

    #[test]
    fn classes_and_escapes() {
        let i = m("[ab].txt\n\\*star\n");
        assert!(i.excluded("a.txt"));
        assert!(!i.excluded("c.txt"));
        assert!(i.excluded("*star"));
        assert!(!i.excluded("xstar"));
    }

    proptest::proptest! {
        #[test]
        fn literal_names_match_themselves(name in "[a-z0-9_.-]{1,12}", sub in "[a-z0-9]{1,8}") {
            proptest::prop_assume!(name != "." && name != "..");
            let i = m(&name);
            proptest::prop_assert!(i.excluded(&name));
            let child = format!("{name}/{sub}");
            proptest::prop_assert!(i.excluded(&child));
            let i = m(&format!("{name}\n!{name}"));
            proptest::prop_assert!(!i.excluded(&name));
        }

        #[test]
        fn star_stays_in_component(a in "[a-z]{1,6}", b in "[a-z]{1,6}") {
            let i = m("*");
            proptest::prop_assert!(i.excluded(&a));
            let i = m(&format!("{a}*"));
            let deeper = format!("0/{a}{b}");
            proptest::prop_assert!(!i.excluded(&deeper));
        }

        #[test]
        fn any_pattern_compiles_or_errors(p in "[a-z*?\\[\\]!\\\\/.]{0,12}") {
            let _ = Matcher::parse(&p);
        }
    }
}
