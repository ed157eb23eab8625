//! The spec's grammar for repository names, tags and digests, and the hashers
//! behind digests. Every name that reaches the filesystem passes through
//! [`valid_name`] first: its grammar has no `.`/`..` component, no `%` and no
//! leading `/`, so a repository name can never walk out of the store.

use std::fmt;

use sha2::Digest as _;

/// Longest repository name accepted (distribution's limit; clients cap the
/// whole `host/name` reference at 255 characters anyway).
const MAX_NAME: usize = 255;

/// Whether `name` matches the spec's
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && name.split('/').all(valid_component)
}

/// One `/`-separated component: alphanumeric runs joined by `.`, `_`, `__`
/// or one or more `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or "-+", always followed by alnum.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

/// Whether `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub(crate) fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// A non-negative decimal number of HTTP ranges: digits only (no sign, no
/// spaces), as RFC 9110 writes them.
pub(crate) fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A digest algorithm the registry can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Algo {
    Sha256,
    Sha512,
}

impl Algo {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Algo::Sha256 => "sha256",
            Algo::Sha512 => "sha512",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Algo> {
        match s {
            "sha256" => Some(Algo::Sha256),
            "sha512" => Some(Algo::Sha512),
            _ => None,
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algo::Sha256 => 64,
            Algo::Sha512 => 128,
        }
    }

    pub(crate) fn hasher(self) -> Hasher {
        match self {
            Algo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub(crate) const ALL: [Algo; 2] = [Algo::Sha256, Algo::Sha512];
}

/// A verified-syntax content digest, `algo:hex` (lowercase hex of the
/// algorithm's length).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Digest {
    algo: Algo,
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`; anything else
    /// (other algorithms included) is `None`.
    pub(crate) fn parse(s: &str) -> Option<Digest> {
        let (a, hex) = s.split_once(':')?;
        let algo = Algo::parse(a)?;
        Digest::from_hex(algo, hex)
    }

    pub(crate) fn from_hex(algo: Algo, hex: &str) -> Option<Digest> {
        let ok = hex.len() == algo.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Digest {
            algo,
            hex: hex.to_owned(),
        })
    }

    pub(crate) fn algo(&self) -> Algo {
        self.algo
    }

    pub(crate) fn hex(&self) -> &str {
        &self.hex
    }

    /// The digest of `data` under `algo`.
    pub(crate) fn of(algo: Algo, data: &[u8]) -> Digest {
        let mut h = algo.hasher();
        h.update(data);
        h.finish()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algo.name(), self.hex)
    }
}

/// A running hash of one of the supported algorithms; cloneable so that a
/// chunk can be rolled back.
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> Digest {
        let (algo, hex) = match self {
            Hasher::Sha256(h) => (Algo::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algo::Sha512, hex::encode(h.finalize())),
        };
        Digest { algo, hex }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_grammar() {
        for ok in [
            "a",
            "library/busybox",
            "a.b/c_d/e__f/g-h/i---j",
            "0/1/2",
            "berth-fixture/big",
        ] {
            assert!(valid_name(ok), "{ok} should be valid");
        }
        for bad in [
            "",
            "..",
            "a/../b",
            "a/./b",
            "/a",
            "a/",
            "a//b",
            "A",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a%2e%2e",
            "_layers",
            "a/_manifests",
            &"a".repeat(256),
        ] {
            assert!(!valid_name(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        assert!(valid_tag("latest"));
        assert!(valid_tag("_x.Y-1"));
        assert!(valid_tag(&"a".repeat(128)));
        assert!(!valid_tag(&"a".repeat(129)));
        assert!(!valid_tag(".hidden"));
        assert!(!valid_tag("-x"));
        assert!(!valid_tag("a/b"));
        assert!(!valid_tag(""));
    }

    #[test]
    fn digests_are_strict() {
        let d = Digest::of(Algo::Sha256, b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()), Some(d.clone()));
        assert!(Digest::parse("sha256:baddigeststring").is_none());
        assert!(Digest::parse(&d.to_string().to_uppercase()).is_none());
        assert!(Digest::parse(&format!("md5:{}", d.hex())).is_none());
        let d512 = Digest::of(Algo::Sha512, b"x");
        assert_eq!(Digest::parse(&d512.to_string()), Some(d512));
    }
}
