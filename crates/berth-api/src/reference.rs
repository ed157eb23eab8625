//! Image references — `busybox`, `user/app:v1`, `127.0.0.1:5000/app@sha256:…` —
//! parsed, normalized and printed exactly as dockerd does with
//! `github.com/distribution/reference` and `github.com/opencontainers/go-digest`.
//!
//! The Go package matches one large regular expression; here the same grammar
//! is checked by hand, piece by piece, in time linear in the input. The
//! grammar (from the Go source, `regexp.go`):
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain-and-port "/" ] path-component ( "/" path-component )*
//! domain     := domain-component ( "." domain-component )* | "[" [a-fA-F0-9:]+ "]"
//! domain-and-port := domain [ ":" [0-9]+ ]
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [\w][\w.-]{0,127}
//! digest     := algo-part ( [-_+.] algo-part )* ":" [0-9a-fA-F]{32,}
//! algo-part  := [A-Za-z][A-Za-z0-9]*
//! ```
//!
//! ```
//! use berth_api::Reference;
//!
//! let r = Reference::parse_docker_ref("busybox").unwrap();
//! assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
//! assert_eq!(r.familiar_string(), "busybox:latest");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The registry that names without a domain belong to.
const DEFAULT_DOMAIN: &str = "docker.io";
/// Old spelling of the default registry, still accepted and rewritten.
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Namespace of Docker Hub's official images (`busybox` is `library/busybox`).
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// Tag that `parse_docker_ref` adds to a bare name.
const DEFAULT_TAG: &str = "latest";
/// The one domain that needs neither a dot nor a port to be seen as a domain.
const LOCALHOST: &str = "localhost";
/// Longest repository path (without the domain) Docker accepts.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not an image reference. Each message is the exact text
/// dockerd (distribution/reference, go-digest) gives, because clients show
/// it as is and scripts match on it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    /// The string does not fit the reference grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// The repository part (after normalization) has upper-case letters.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    NameNotLowercase(String),
    /// Upper-case letters where only a lower-case name would be valid
    /// (found after the domain split, e.g. `A_b.c/foo`).
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    /// The name has no path component.
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// The repository path is longer than [`NAME_TOTAL_LENGTH_MAX`].
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// `parse_named` was given a name that normalization would change.
    #[error("repository name must be canonical")]
    NameNotCanonical,
    /// A bare 64-hex string, which would be mistaken for an image ID.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexRepositoryName(String),
    /// A tag outside `[\w][\w.-]{0,127}`.
    #[error("invalid tag format")]
    InvalidTag,
    /// A digest whose encoded part is malformed for its algorithm.
    #[error("invalid checksum digest format")]
    DigestInvalidFormat,
    /// A digest whose hex part has the wrong length for its algorithm.
    #[error("invalid checksum digest length")]
    DigestInvalidLength,
    /// A well-formed digest of an algorithm other than sha256/sha384/sha512.
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
}

/// A parsed image reference: `domain/path[:tag][@digest]`.
///
/// References made by [`Reference::parse_normalized`] always have a domain
/// (`docker.io` when none was given); the domain is empty only in Docker's
/// odd case of a first component such as `a_b.c` that is taken for a domain
/// by normalization but is not a valid one, so it stays part of the path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses `name[:tag][@digest]` the way Docker's `ParseNormalizedNamed`
    /// does: `busybox` becomes `docker.io/library/busybox`, no tag is added.
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if is_full_id(s) {
            return Err(ReferenceError::HexRepositoryName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        // Docker checks case only up to the first ':', which may fall inside
        // a digest; that quirk decides which error text users see.
        let remote = remainder.split(':').next().unwrap_or_default();
        if has_upper(remote) {
            return Err(ReferenceError::NameNotLowercase(remote.to_string()));
        }
        parse_reference(&format!("{domain}/{remainder}"))
    }

    /// Parses as [`Reference::parse_normalized`], then (like Docker's
    /// `ParseDockerRef`) adds the `latest` tag to a bare name and drops the
    /// tag when a digest pins the image anyway.
    pub fn parse_docker_ref(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_normalized(s)?;
        match (&r.tag, &r.digest) {
            (Some(_), Some(_)) => r.tag = None,
            (None, None) => r.tag = Some(DEFAULT_TAG.to_string()),
            _ => {}
        }
        Ok(r)
    }

    /// Parses a reference that must already be in full, canonical form
    /// (`docker.io/library/busybox:latest`), as Docker's `ParseNamed` does:
    /// anything that normalization would change is an error.
    pub fn parse_named(s: &str) -> Result<Reference, ReferenceError> {
        let r = Reference::parse_normalized(s)?;
        if r.to_string() != s {
            return Err(ReferenceError::NameNotCanonical);
        }
        Ok(r)
    }

    /// The registry part: `docker.io`, `127.0.0.1:5000`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, when one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:<hex>`), when one was given.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        join_name(&self.domain, &self.path)
    }

    /// The name as users write it: `busybox`, `user/app`,
    /// `127.0.0.1:5000/app` (Docker's `FamiliarName`).
    pub fn familiar_name(&self) -> String {
        let (domain, path) = familiarize(&self.domain, &self.path);
        join_name(domain, path)
    }

    /// The familiar name with `:tag` and `@digest` as present:
    /// `busybox:latest` (Docker's `FamiliarString`).
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        self.push_tag_and_digest(&mut s);
        s
    }

    /// The same repository with `tag` and no digest. (Go's `WithTag` keeps
    /// a digest; berth callers asked for a plain `name:tag` instead.)
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        validate_tag(tag)?;
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The bare repository name, without tag or digest.
    pub fn without_tag_or_digest(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// True when there is neither a tag nor a digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    fn push_tag_and_digest(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest);
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_tag_and_digest(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse_normalized(s)
    }
}

/// Checks a tag against Docker's `[\w][\w.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    if is_tag(tag) {
        Ok(())
    } else {
        Err(ReferenceError::InvalidTag)
    }
}

/// True for a full image/container ID: exactly 64 lower-case hex digits.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && is_lower_hex(s)
}

/// True for something that may be looked up as an ID prefix: 1 to 64
/// lower-case hex digits, optionally after `sha256:`.
pub fn is_id_prefix(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (1..=64).contains(&hex.len()) && is_lower_hex(hex)
}

fn join_name(domain: &str, path: &str) -> String {
    if domain.is_empty() {
        path.to_string()
    } else {
        format!("{domain}/{path}")
    }
}

/// Docker's `familiarizeName`: hide the default registry, and `library/`
/// when what follows is a single component.
fn familiarize<'a>(domain: &'a str, path: &'a str) -> (&'a str, &'a str) {
    if domain != DEFAULT_DOMAIN {
        return (domain, path);
    }
    match path.strip_prefix(OFFICIAL_REPO_PREFIX) {
        Some(rest) if !rest.contains('/') => ("", rest),
        _ => ("", path),
    }
}

/// Docker's `splitDockerDomain`: decides, before any validation, whether
/// the first component names a registry, and adds `docker.io` and
/// `library/` where they are implied.
fn split_docker_domain(name: &str) -> (&str, Cow<'_, str>) {
    let Some((maybe_domain, rest)) = name.split_once('/') else {
        return (
            DEFAULT_DOMAIN,
            Cow::Owned(format!("{OFFICIAL_REPO_PREFIX}{name}")),
        );
    };
    let (domain, remote) = if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, rest)
    } else if maybe_domain == LOCALHOST
        || maybe_domain.contains(['.', ':'])
        // Upper case cannot start a path, so Docker reads it as a domain.
        || has_upper(maybe_domain)
    {
        (maybe_domain, rest)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        (
            domain,
            Cow::Owned(format!("{OFFICIAL_REPO_PREFIX}{remote}")),
        )
    } else {
        (domain, Cow::Borrowed(remote))
    }
}

/// Go's `strings.ToLower(s) != s`: does any character have a lower-case
/// form other than itself?
fn has_upper(s: &str) -> bool {
    s.chars().any(|c| {
        let mut lower = c.to_lowercase();
        !(lower.next() == Some(c) && lower.next().is_none())
    })
}

/// Go's `reference.Parse`: the grammar match, then length and digest checks,
/// in Docker's order (the order decides which error is reported).
fn parse_reference(s: &str) -> Result<Reference, ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::NameEmpty);
    }
    let Some(m) = match_reference(s) else {
        // Docker tells "must be lowercase" apart when lowering the whole
        // string would have made it valid.
        return Err(match go_lowercase(s) {
            Some(lower) if lower != s && match_reference(&lower).is_some() => {
                ReferenceError::NameContainsUppercase
            }
            _ => ReferenceError::InvalidFormat,
        });
    };
    if m.path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong);
    }
    if let Some(digest) = m.digest {
        validate_digest(digest)?;
    }
    Ok(Reference {
        domain: m.domain.to_string(),
        path: m.path.to_string(),
        tag: m.tag.map(str::to_string),
        digest: m.digest.map(str::to_string),
    })
}

/// `s` lowered as Go's `strings.ToLower` would, for the only purpose of
/// matching the ASCII grammar again; `None` when the result cannot match.
/// Besides A–Z, Go lowers U+0130 to `i` and the Kelvin sign U+212A to `k`.
fn go_lowercase(s: &str) -> Option<String> {
    s.chars()
        .map(|c| match c {
            '\u{130}' => Some('i'),
            '\u{212A}' => Some('k'),
            c if c.is_ascii() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// The pieces of a string that fits the reference grammar.
struct Matched<'a> {
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// The whole-string grammar match (Go's `referenceRegexp`). No piece may
/// hold '@', only the digest holds ':' after the last '/', so the split
/// points are fixed and no backtracking is needed.
fn match_reference(s: &str) -> Option<Matched<'_>> {
    let (name_tag, digest) = match s.split_once('@') {
        Some((name_tag, digest)) => (name_tag, Some(digest)),
        None => (s, None),
    };
    if digest.is_some_and(|d| !is_digest_grammar(d)) {
        return None;
    }
    let (name, tag) = match name_tag.rfind(':') {
        Some(i) if !name_tag[i + 1..].contains('/') => (&name_tag[..i], Some(&name_tag[i + 1..])),
        _ => (name_tag, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) {
        return None;
    }
    let (domain, path) = split_name(name)?;
    Some(Matched {
        domain,
        path,
        tag,
        digest,
    })
}

/// Go's `anchoredNameRegexp`: the first component is the domain when it is
/// a valid domain and the rest a valid path; otherwise the whole name must
/// be a path, with no domain.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if let Some((domain, path)) = name.split_once('/') {
        if is_domain_and_port(domain) && is_remote_name(path) {
            return Some((domain, path));
        }
    }
    is_remote_name(name).then_some(("", name))
}

fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+` runs joined by exactly one of `.`, `_`, `__` or `-`+.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        let run = i;
        while i < b.len() && is_lower_alnum(b[i]) {
            i += 1;
        }
        if i == run {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let ok = match &b[sep..i] {
            b"." | b"_" | b"__" => true,
            dashes => !dashes.is_empty() && dashes.iter().all(|&c| c == b'-'),
        };
        if !ok {
            return false;
        }
    }
}

fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        }
        _ => false,
    }
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A host name or bracketed IPv6 address, then an optional `:port`.
fn is_domain_and_port(s: &str) -> bool {
    if let Some(bracketed) = s.strip_prefix('[') {
        let Some((addr, after)) = bracketed.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return addr_ok && port_ok;
    }
    let (host, port) = match s.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    };
    host.split('.').all(is_domain_component) && port.is_none_or(is_port)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[\w][\w.-]{0,127}`
fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && is_word(b[0])
        && b[1..].iter().all(|&c| is_word(c) || c == b'.' || c == b'-')
}

/// The digest as the reference grammar admits it (looser than go-digest,
/// which `validate_digest` applies afterwards).
fn is_digest_grammar(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// go-digest's `Digest.Validate`, with the algorithms dockerd links in.
fn validate_digest(s: &str) -> Result<(), ReferenceError> {
    let (algorithm, encoded) = match s.split_once(':') {
        Some((a, e)) if !a.is_empty() && !e.is_empty() => (a, e),
        _ => return Err(ReferenceError::DigestInvalidFormat),
    };
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ if is_go_digest_grammar(algorithm, encoded) => {
            return Err(ReferenceError::DigestUnsupported)
        }
        _ => return Err(ReferenceError::DigestInvalidFormat),
    };
    if encoded.len() != hex_len {
        return Err(ReferenceError::DigestInvalidLength);
    }
    if !is_lower_hex(encoded) {
        return Err(ReferenceError::DigestInvalidFormat);
    }
    Ok(())
}

/// go-digest's `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
fn is_go_digest_grammar(algorithm: &str, encoded: &str) -> bool {
    let algorithm_ok = algorithm
        .split(['.', '+', '_', '-'])
        .all(|part| !part.is_empty() && part.bytes().all(is_lower_alnum));
    let encoded_ok = !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    algorithm_ok && encoded_ok
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    const HEX: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    const HEX64: &str = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
    const D1: &str = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
    const D2: &str = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";

    /// What a case should give: `domain|path|tag|digest` (empty when
    /// absent), or the exact error text.
    type Want = Result<String, String>;

    fn ok(s: impl Into<String>) -> Want {
        Ok(s.into())
    }

    fn err(s: impl Into<String>) -> Want {
        Err(s.into())
    }

    fn render(r: &Reference) -> String {
        format!(
            "{}|{}|{}|{}",
            r.domain(),
            r.path(),
            r.tag().unwrap_or_default(),
            r.digest().unwrap_or_default()
        )
    }

    fn run(
        what: &str,
        parse: fn(&str) -> Result<Reference, ReferenceError>,
        cases: &[(String, Want)],
    ) {
        for (input, want) in cases {
            let got = parse(input).map(|r| render(&r)).map_err(|e| e.to_string());
            assert_eq!(&got, want, "{what}({input:?})");
        }
    }

    /// `ParseNormalizedNamed`: normalize_test.go's valid and invalid names,
    /// with the domain/path/tag/digest or the exact error dockerd reports.
    #[test]
    fn parse_normalized_table() {
        let long_ns = format!(
            "{}/docker",
            ["this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255"; 4].join("_")
        );
        let cases: Vec<(String, Want)> = vec![
            ("docker/docker".into(), ok("docker.io|docker/docker||")),
            ("library/debian".into(), ok("docker.io|library/debian||")),
            ("debian".into(), ok("docker.io|library/debian||")),
            ("localhost/library/debian".into(), ok("localhost|library/debian||")),
            ("localhost/debian".into(), ok("localhost|debian||")),
            ("LOCALDOMAIN/library/debian".into(), ok("LOCALDOMAIN|library/debian||")),
            ("LOCALDOMAIN/debian".into(), ok("LOCALDOMAIN|debian||")),
            ("docker.io/docker/docker".into(), ok("docker.io|docker/docker||")),
            ("docker.io/library/debian".into(), ok("docker.io|library/debian||")),
            ("docker.io/debian".into(), ok("docker.io|library/debian||")),
            ("index.docker.io/docker/docker".into(), ok("docker.io|docker/docker||")),
            ("index.docker.io/library/debian".into(), ok("docker.io|library/debian||")),
            ("index.docker.io/debian".into(), ok("docker.io|library/debian||")),
            ("127.0.0.1:5000/docker/docker".into(), ok("127.0.0.1:5000|docker/docker||")),
            ("127.0.0.1:5000/library/debian".into(), ok("127.0.0.1:5000|library/debian||")),
            ("127.0.0.1:5000/debian".into(), ok("127.0.0.1:5000|debian||")),
            ("localhost:5000/app:v1".into(), ok("localhost:5000|app|v1|")),
            ("192.168.0.1".into(), ok("docker.io|library/192.168.0.1||")),
            ("192.168.0.1:80".into(), ok("docker.io|library/192.168.0.1|80|")),
            ("192.168.0.1:8/debian".into(), ok("192.168.0.1:8|debian||")),
            ("192.168.0.2:25000/debian".into(), ok("192.168.0.2:25000|debian||")),
            (
                "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev".into(),
                ok("docker.io|library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev||"),
            ),
            ("[fc00::1]:5000/docker".into(), ok("[fc00::1]:5000|docker||")),
            ("[fc00::1]:5000/docker/docker".into(), ok("[fc00::1]:5000|docker/docker||")),
            (
                "[fc00:1:2:3:4:5:6:7]:5000/library/debian".into(),
                ok("[fc00:1:2:3:4:5:6:7]:5000|library/debian||"),
            ),
            // With a domain, 64 hex digits are a name, not an ID.
            (format!("docker.io/{HEX64}"), ok(format!("docker.io|library/{HEX64}||"))),
            (HEX64[..63].to_string(), ok(format!("docker.io|library/{}||", &HEX64[..63]))),
            ("Docker/docker".into(), ok("Docker|docker||")),
            ("DOCKER/docker".into(), ok("DOCKER|docker||")),
            ("docker-rules/docker".into(), ok("docker.io|docker-rules/docker||")),
            ("docker---rules/docker".into(), ok("docker.io|docker---rules/docker||")),
            ("doc/docker".into(), ok("docker.io|doc/docker||")),
            ("d/docker".into(), ok("docker.io|d/docker||")),
            ("jess/t".into(), ok("docker.io|jess/t||")),
            ("dock__er/docker".into(), ok("docker.io|dock__er/docker||")),
            ("test.com/foo".into(), ok("test.com|foo||")),
            ("test_com/foo".into(), ok("docker.io|test_com/foo||")),
            ("docker/migrator".into(), ok("docker.io|docker/migrator||")),
            ("test.com:8080/foo".into(), ok("test.com:8080|foo||")),
            ("test-com:8080/foo".into(), ok("test-com:8080|foo||")),
            ("xn--n3h.com/foo".into(), ok("xn--n3h.com|foo||")),
            ("xn--n3h.com:18080/foo".into(), ok("xn--n3h.com:18080|foo||")),
            ("docker.io/library/foo/bar".into(), ok("docker.io|library/foo/bar||")),
            ("redis:latest".into(), ok("docker.io|library/redis|latest|")),
            ("lowercase:Uppercase".into(), ok("docker.io|library/lowercase|Uppercase|")),
            ("dbcc1".into(), ok("docker.io|library/dbcc1||")),
            // `sha256:<hex>` reads as the image `sha256` with a hex tag.
            (format!("sha256:{HEX}"), ok(format!("docker.io|library/sha256|{HEX}|"))),
            (format!("busybox:latest@{D1}"), ok(format!("docker.io|library/busybox|latest|{D1}"))),
            (format!("redis@{D1}"), ok(format!("docker.io|library/redis||{D1}"))),
            (
                format!("[::1]:5000/repo:tag@sha256:{HEX}"),
                ok(format!("[::1]:5000|repo|tag|sha256:{HEX}")),
            ),
            (format!("x@sha384:{}", "a".repeat(96)), ok(format!("docker.io|library/x||sha384:{}", "a".repeat(96)))),
            (format!("x@sha512:{}", "a".repeat(128)), ok(format!("docker.io|library/x||sha512:{}", "a".repeat(128)))),
            // Taken for a domain by normalization, but not a valid domain:
            // Docker keeps it as the first path component, with no domain.
            ("a_b.c/foo".into(), ok("|a_b.c/foo||")),
            (format!("{}.com/app", "a".repeat(300)), ok(format!("{}.com|app||", "a".repeat(300)))),
            // Errors, with dockerd's exact texts.
            (
                HEX64.into(),
                err(format!("invalid repository name ({HEX64}), cannot specify 64-byte hexadecimal strings")),
            ),
            ("".into(), err("invalid reference format")),
            (
                "Busybox".into(),
                err("invalid reference format: repository name (library/Busybox) must be lowercase"),
            ),
            (
                "docker/Docker".into(),
                err("invalid reference format: repository name (docker/Docker) must be lowercase"),
            ),
            (
                "docker.io/docker/Docker".into(),
                err("invalid reference format: repository name (docker/Docker) must be lowercase"),
            ),
            (
                "Uppercase:tag".into(),
                err("invalid reference format: repository name (library/Uppercase) must be lowercase"),
            ),
            (
                "test:5000/Uppercase/lowercase:tag".into(),
                err("invalid reference format: repository name (Uppercase/lowercase) must be lowercase"),
            ),
            // Docker's case check stops at the first ':', inside the digest here.
            (
                format!("busybox@SHA256:{HEX}"),
                err("invalid reference format: repository name (library/busybox@SHA256) must be lowercase"),
            ),
            ("A_b.c/foo".into(), err("repository name must be lowercase")),
            // Go lowers the Kelvin sign to 'k'; then the name would be valid.
            ("A_b.c\u{212A}/foo".into(), err("repository name must be lowercase")),
            ("É/foo".into(), err("invalid reference format")),
            ("https://github.com/docker/docker".into(), err("invalid reference format")),
            ("-docker".into(), err("invalid reference format")),
            ("-docker/docker".into(), err("invalid reference format")),
            ("-docker.io/docker/docker".into(), err("invalid reference format")),
            ("docker///docker".into(), err("invalid reference format")),
            ("docker.io/docker///docker".into(), err("invalid reference format")),
            ("[fc00::1]".into(), err("invalid reference format")),
            ("[fc00::1]:5000".into(), err("invalid reference format")),
            ("fc00::1:5000/debian".into(), err("invalid reference format")),
            ("[fe80::1%eth0]:5000/debian".into(), err("invalid reference format")),
            ("[2001:db8:3:4::192.0.2.33]:5000/debian".into(), err("invalid reference format")),
            ("docker-/docker".into(), err("invalid reference format")),
            ("-docker-/docker".into(), err("invalid reference format")),
            ("____/____".into(), err("invalid reference format")),
            ("_docker/_docker".into(), err("invalid reference format")),
            ("dock..er/docker".into(), err("invalid reference format")),
            ("dock_.er/docker".into(), err("invalid reference format")),
            ("dock-.er/docker".into(), err("invalid reference format")),
            ("dock___er/docker".into(), err("invalid reference format")),
            ("docker/".into(), err("invalid reference format")),
            ("/docker".into(), err("invalid reference format")),
            (":justtag".into(), err("invalid reference format")),
            (format!("@sha256:{HEX}"), err("invalid reference format")),
            ("busybox:".into(), err("invalid reference format")),
            ("busybox@".into(), err("invalid reference format")),
            ("busybox:-tag".into(), err("invalid reference format")),
            (format!("busybox:{}", "t".repeat(129)), err("invalid reference format")),
            ("aa/asdf$$^/aa".into(), err("invalid reference format")),
            ("busybox@sha256:abc".into(), err("invalid reference format")),
            (format!("a@b@sha256:{HEX}"), err("invalid reference format")),
            (format!("a:b:c@sha256:{HEX}"), err("invalid reference format")),
            ("foo_bar.com:8080/x".into(), err("invalid reference format")),
            (long_ns, err("repository name must not be more than 255 characters")),
            (
                format!("example.com/{}:tag", "a".repeat(256)),
                err("repository name must not be more than 255 characters"),
            ),
            (format!("repo@sha256:{}", "f".repeat(34)), err("invalid checksum digest length")),
            (format!("repo@sha512:{HEX}"), err("invalid checksum digest length")),
            (format!("repo@sha256:{}", "F".repeat(64)), err("invalid checksum digest format")),
            (format!("repo:v1@Sha256:{HEX}"), err("invalid checksum digest format")),
            (format!("validname@invaliddigest:{HEX}"), err("unsupported digest algorithm")),
            (format!("validname@md5:{}", "f".repeat(32)), err("unsupported digest algorithm")),
            (format!("validname@sha256+b64:{HEX}"), err("unsupported digest algorithm")),
        ];
        run("parse_normalized", Reference::parse_normalized, &cases);
    }

    /// Go's `Parse` (no normalization): reference_test.go's
    /// TestReferenceParse. Each valid input also prints back unchanged.
    #[test]
    fn parse_reference_table() {
        let cases: Vec<(String, Want)> = vec![
            ("test_com".into(), ok("|test_com||")),
            ("test.com:tag".into(), ok("|test.com|tag|")),
            ("test.com:5000".into(), ok("|test.com|5000|")),
            ("test.com/repo:tag".into(), ok("test.com|repo|tag|")),
            ("test:5000/repo".into(), ok("test:5000|repo||")),
            ("test:5000/repo:tag".into(), ok("test:5000|repo|tag|")),
            (
                format!("test:5000/repo@sha256:{HEX}"),
                ok(format!("test:5000|repo||sha256:{HEX}")),
            ),
            (
                format!("test:5000/repo:tag@sha256:{HEX}"),
                ok(format!("test:5000|repo|tag|sha256:{HEX}")),
            ),
            (
                "".into(),
                err("repository name must have at least one component"),
            ),
            (":justtag".into(), err("invalid reference format")),
            (format!("@sha256:{HEX}"), err("invalid reference format")),
            (
                format!("repo@sha256:{}", "f".repeat(34)),
                err("invalid checksum digest length"),
            ),
            (
                format!("validname@invaliddigest:{HEX}"),
                err("unsupported digest algorithm"),
            ),
            // Unsupported in the Go test only because it does not link
            // crypto/sha512; dockerd does.
            (
                format!("validname@sha512:{HEX}{HEX}"),
                ok(format!("|validname||sha512:{HEX}{HEX}")),
            ),
            (
                "Uppercase:tag".into(),
                err("repository name must be lowercase"),
            ),
            // Docker's own FIXME: "Uppercase" is taken for a domain.
            (
                "Uppercase/lowercase:tag".into(),
                ok("Uppercase|lowercase|tag|"),
            ),
            (
                "test:5000/Uppercase/lowercase:tag".into(),
                err("repository name must be lowercase"),
            ),
            ("lowercase:Uppercase".into(), ok("|lowercase|Uppercase|")),
            (
                format!("domain/{}:tag", "a".repeat(256)),
                err("repository name must not be more than 255 characters"),
            ),
            (
                format!("{}a:tag-puts-this-over-max", "a/".repeat(127)),
                ok(format!("a|{}a|tag-puts-this-over-max|", "a/".repeat(126))),
            ),
            ("aa/asdf$$^/aa".into(), err("invalid reference format")),
            (
                "sub-dom1.foo.com/bar/baz/quux".into(),
                ok("sub-dom1.foo.com|bar/baz/quux||"),
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
                ok("sub-dom1.foo.com|bar/baz/quux|some-long-tag|"),
            ),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com".into(),
                ok("b.gcr.io|test.example.com/my-app|test.example.com|"),
            ),
            (
                "xn--n3h.com/myimage:xn--n3h.com".into(),
                ok("xn--n3h.com|myimage|xn--n3h.com|"),
            ),
            (
                format!("xn--7o8h.com/myimage:xn--7o8h.com@sha256:{HEX}"),
                ok(format!("xn--7o8h.com|myimage|xn--7o8h.com|sha256:{HEX}")),
            ),
            ("foo_bar.com:8080".into(), ok("|foo_bar.com|8080|")),
            ("foo/foo_bar.com:8080".into(), ok("foo|foo_bar.com|8080|")),
            ("192.168.1.1".into(), ok("|192.168.1.1||")),
            ("192.168.1.1:tag".into(), ok("|192.168.1.1|tag|")),
            ("192.168.1.1:5000".into(), ok("|192.168.1.1|5000|")),
            ("192.168.1.1/repo".into(), ok("192.168.1.1|repo||")),
            (
                "192.168.1.1:5000/repo".into(),
                ok("192.168.1.1:5000|repo||"),
            ),
            (
                "192.168.1.1:5000/repo:5050".into(),
                ok("192.168.1.1:5000|repo|5050|"),
            ),
            ("[2001:db8::1]".into(), err("invalid reference format")),
            ("[2001:db8::1]:5000".into(), err("invalid reference format")),
            ("[2001:db8::1]:tag".into(), err("invalid reference format")),
            ("[2001:db8::1]/repo".into(), ok("[2001:db8::1]|repo||")),
            (
                "[2001:db8:1:2:3:4:5:6]/repo:tag".into(),
                ok("[2001:db8:1:2:3:4:5:6]|repo|tag|"),
            ),
            (
                "[2001:db8::1]:5000/repo".into(),
                ok("[2001:db8::1]:5000|repo||"),
            ),
            (
                "[2001:db8::1]:5000/repo:tag".into(),
                ok("[2001:db8::1]:5000|repo|tag|"),
            ),
            (
                format!("[2001:db8::1]:5000/repo@sha256:{HEX}"),
                ok(format!("[2001:db8::1]:5000|repo||sha256:{HEX}")),
            ),
            (
                format!("[2001:db8::1]:5000/repo:tag@sha256:{HEX}"),
                ok(format!("[2001:db8::1]:5000|repo|tag|sha256:{HEX}")),
            ),
            (
                "[2001:db8::]:5000/repo".into(),
                ok("[2001:db8::]:5000|repo||"),
            ),
            ("[::1]:5000/repo".into(), ok("[::1]:5000|repo||")),
            (
                "[fe80::1%eth0]:5000/repo".into(),
                err("invalid reference format"),
            ),
            (
                "[fe80::1%@invalidzone]:5000/repo".into(),
                err("invalid reference format"),
            ),
            (
                format!("example.com/{}:tag", "a".repeat(255)),
                ok(format!("example.com|{}|tag|", "a".repeat(255))),
            ),
            ("test-.com/foo".into(), err("invalid reference format")),
            ("test.com:/foo".into(), err("invalid reference format")),
            ("test.com:50a/foo".into(), err("invalid reference format")),
            ("[]:5000/foo".into(), err("invalid reference format")),
            ("[::1]5000/foo".into(), err("invalid reference format")),
            ("[::1]:/foo".into(), err("invalid reference format")),
        ];
        run("parse", parse_reference, &cases);
        for (input, want) in &cases {
            if want.is_ok() {
                assert_eq!(parse_reference(input).unwrap().to_string(), *input);
            }
        }
    }

    /// normalize_test.go's TestParseRepositoryInfo: every spelling of a
    /// repository gives the same familiar name, full name, domain and path.
    #[test]
    fn repository_info() {
        // (path, familiar name, full name, ambiguous spelling, domain)
        let cases = [
            (
                "fooo",
                "localhost/fooo",
                "localhost/fooo",
                "localhost/fooo",
                "localhost",
            ),
            (
                "fooo/bar",
                "localhost/fooo/bar",
                "localhost/fooo/bar",
                "",
                "localhost",
            ),
            (
                "fooo",
                "LOCALDOMAIN/fooo",
                "LOCALDOMAIN/fooo",
                "",
                "LOCALDOMAIN",
            ),
            (
                "fooo/bar",
                "LOCALDOMAIN/fooo/bar",
                "LOCALDOMAIN/fooo/bar",
                "",
                "LOCALDOMAIN",
            ),
            (
                "fooo/bar",
                "fooo/bar",
                "docker.io/fooo/bar",
                "index.docker.io/fooo/bar",
                "docker.io",
            ),
            (
                "library/ubuntu",
                "ubuntu",
                "docker.io/library/ubuntu",
                "library/ubuntu",
                "docker.io",
            ),
            (
                "nonlibrary/ubuntu",
                "nonlibrary/ubuntu",
                "docker.io/nonlibrary/ubuntu",
                "",
                "docker.io",
            ),
            (
                "other/library",
                "other/library",
                "docker.io/other/library",
                "",
                "docker.io",
            ),
            (
                "private/moonbase",
                "127.0.0.1:8000/private/moonbase",
                "127.0.0.1:8000/private/moonbase",
                "",
                "127.0.0.1:8000",
            ),
            (
                "privatebase",
                "127.0.0.1:8000/privatebase",
                "127.0.0.1:8000/privatebase",
                "",
                "127.0.0.1:8000",
            ),
            (
                "private/moonbase",
                "example.com/private/moonbase",
                "example.com/private/moonbase",
                "",
                "example.com",
            ),
            (
                "privatebase",
                "example.com/privatebase",
                "example.com/privatebase",
                "",
                "example.com",
            ),
            (
                "private/moonbase",
                "example.com:8000/private/moonbase",
                "example.com:8000/private/moonbase",
                "",
                "example.com:8000",
            ),
            (
                "privatebasee",
                "example.com:8000/privatebasee",
                "example.com:8000/privatebasee",
                "",
                "example.com:8000",
            ),
            (
                "library/ubuntu-12.04-base",
                "ubuntu-12.04-base",
                "docker.io/library/ubuntu-12.04-base",
                "index.docker.io/library/ubuntu-12.04-base",
                "docker.io",
            ),
            (
                "library/foo",
                "foo",
                "docker.io/library/foo",
                "docker.io/foo",
                "docker.io",
            ),
            (
                "library/foo/bar",
                "library/foo/bar",
                "docker.io/library/foo/bar",
                "",
                "docker.io",
            ),
            (
                "store/foo/bar",
                "store/foo/bar",
                "docker.io/store/foo/bar",
                "",
                "docker.io",
            ),
            ("bar", "Foo/bar", "Foo/bar", "", "Foo"),
            ("bar", "FOO/bar", "FOO/bar", "", "FOO"),
        ];
        for (path, familiar, full, ambiguous, domain) in cases {
            for input in [familiar, full, ambiguous]
                .into_iter()
                .filter(|s| !s.is_empty())
            {
                let r = Reference::parse_normalized(input).unwrap();
                assert_eq!(r.familiar_name(), familiar, "familiar name of {input:?}");
                assert_eq!(r.to_string(), full, "full name of {input:?}");
                assert_eq!(r.name(), full, "name of {input:?}");
                assert_eq!(r.domain(), domain, "domain of {input:?}");
                assert_eq!(r.path(), path, "path of {input:?}");
            }
        }
    }

    #[test]
    fn tag_and_digest_together() {
        let short = format!("busybox:latest@{D1}");
        let r = Reference::parse_normalized(&short).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/{short}"));
        assert_eq!(r.familiar_string(), short);
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.digest(), Some(D1));
        assert!(!r.is_name_only());
    }

    /// normalize_test.go's TestParseDockerRef.
    #[test]
    fn parse_docker_ref_table() {
        let cases = [
            (
                "busybox".to_string(),
                "docker.io/library/busybox:latest".to_string(),
            ),
            (
                "busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                format!("busybox@{D2}"),
                format!("docker.io/library/busybox@{D2}"),
            ),
            (
                "library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "library/busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "gcr.io/library/busybox".into(),
                "gcr.io/library/busybox:latest".into(),
            ),
            (
                format!("gcr.io/library/busybox:latest@{D2}"),
                format!("gcr.io/library/busybox@{D2}"),
            ),
        ];
        for (input, want) in cases {
            let r = Reference::parse_docker_ref(&input).unwrap();
            assert_eq!(r.to_string(), want, "parse_docker_ref({input:?})");
            assert_eq!(parse_reference(&want), Ok(r));
        }
        assert_eq!(
            Reference::parse_docker_ref("Busybox")
                .unwrap_err()
                .to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
    }

    /// reference_test.go's TestParseNamed.
    #[test]
    fn parse_named_table() {
        let cases: Vec<(String, Want)> = vec![
            ("test.com/foo".into(), ok("test.com|foo||")),
            ("test:8080/foo".into(), ok("test:8080|foo||")),
            (
                "test_com/foo".into(),
                err("repository name must be canonical"),
            ),
            ("test.com".into(), err("repository name must be canonical")),
            ("foo".into(), err("repository name must be canonical")),
            (
                "library/foo".into(),
                err("repository name must be canonical"),
            ),
            (
                "docker.io/library/foo".into(),
                ok("docker.io|library/foo||"),
            ),
            (
                "docker.io/library/foo:tag".into(),
                ok("docker.io|library/foo|tag|"),
            ),
            (
                "docker.io/foo".into(),
                err("repository name must be canonical"),
            ),
            (
                "index.docker.io/library/foo".into(),
                err("repository name must be canonical"),
            ),
            (
                "docker.io/library/Foo".into(),
                err("invalid reference format: repository name (library/Foo) must be lowercase"),
            ),
        ];
        run("parse_named", Reference::parse_named, &cases);
    }

    #[test]
    fn with_tag_and_trimming() {
        let r: Reference = format!("test.com:8000/foo:v1@{D1}").parse().unwrap();
        let tagged = r.with_tag("TAG5").unwrap();
        assert_eq!(tagged.to_string(), "test.com:8000/foo:TAG5");
        assert_eq!(r.with_tag("-foo"), Err(ReferenceError::InvalidTag));
        assert_eq!(
            r.with_tag("").unwrap_err().to_string(),
            "invalid tag format"
        );
        let bare = r.without_tag_or_digest();
        assert_eq!(bare.to_string(), "test.com:8000/foo");
        assert!(bare.is_name_only());
        assert_eq!(bare.familiar_string(), "test.com:8000/foo");
    }

    #[test]
    fn tags() {
        for good in [
            "a",
            "_",
            "0",
            "latest",
            "v1.2.3-rc.1_x",
            "A-",
            &"t".repeat(128),
        ] {
            assert_eq!(validate_tag(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "a/b",
            "a:b",
            "a@b",
            "a b",
            "é",
            &"t".repeat(129),
        ] {
            assert_eq!(
                validate_tag(bad),
                Err(ReferenceError::InvalidTag),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ids() {
        assert!(is_full_id(HEX64));
        assert!(!is_full_id(&HEX64[..63]));
        assert!(!is_full_id(&format!("{HEX64}0")));
        assert!(!is_full_id(&HEX64.to_uppercase()));
        assert!(!is_full_id(&format!("sha256:{HEX64}")));
        for good in ["a", "0123", HEX64, &format!("sha256:{HEX64}"), "sha256:ab"] {
            assert!(is_id_prefix(good), "{good:?}");
        }
        for bad in [
            "",
            "sha256:",
            "g",
            "ABC",
            "sha256",
            &format!("{HEX64}0"),
            "sha512:ab",
            " ab",
        ] {
            assert!(!is_id_prefix(bad), "{bad:?}");
        }
    }

    /// Docker's familiar form is ambiguous for Docker Hub namespaces that
    /// look like domains: reading it back names another registry.
    #[test]
    fn familiar_form_of_dotted_namespace_is_ambiguous() {
        let r = Reference::parse_normalized("docker.io/foo.bar/baz").unwrap();
        assert_eq!(r.familiar_name(), "foo.bar/baz");
        let back = Reference::parse_normalized(&r.familiar_string()).unwrap();
        assert_eq!((back.domain(), back.path()), ("foo.bar", "baz"));
    }

    /// The hand-written matcher has no backtracking: megabyte inputs of the
    /// shapes that hurt regex engines finish at once.
    #[test]
    fn huge_inputs_are_fast() {
        let n = 1 << 20;
        let inputs = [
            "a".repeat(n),
            format!("{}!", "a-".repeat(n / 2)),
            format!("{}!", "a/".repeat(n / 2)),
            format!("{}/x", "a.".repeat(n / 2)),
            format!("x@{}", "a".repeat(n)),
            format!("x@sha256:{}", "f".repeat(n)),
            format!("x:{}", ":".repeat(n)),
            format!("[{}", ":".repeat(n)),
            "A".repeat(n),
            "@".repeat(n),
        ];
        let start = Instant::now();
        for s in &inputs {
            let _ = Reference::parse_normalized(s);
            let _ = Reference::parse_docker_ref(s);
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
    }

    /// Checks every property a successfully parsed reference must have.
    fn check_round_trips(r: &Reference) -> Result<(), TestCaseError> {
        let full = r.to_string();
        prop_assert_eq!(
            Reference::parse_normalized(&full),
            Ok(r.clone()),
            "via {:?}",
            full
        );
        prop_assert_eq!(Reference::parse_named(&full), Ok(r.clone()));
        let familiar = r.familiar_string();
        let back = Reference::parse_normalized(&familiar);
        if back.as_ref() != Ok(r) {
            // Only Docker's own ambiguity may break this round trip.
            let first = r.path().split('/').next().unwrap_or_default();
            prop_assert_eq!(
                r.domain(),
                DEFAULT_DOMAIN,
                "familiar {:?} gave {:?}",
                familiar,
                back
            );
            prop_assert!(
                first.contains('.') || first == LOCALHOST,
                "familiar {:?} gave {:?}",
                familiar,
                back
            );
        }
        let docker = Reference::parse_docker_ref(&full).unwrap();
        prop_assert!(docker.tag().is_some() != docker.digest().is_some());
        prop_assert_eq!(docker.name(), r.name());
        Ok(())
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,8}(([._]|__|-{1,3})[a-z0-9]{1,8}){0,3}"
    }

    fn domain() -> impl Strategy<Value = String> {
        prop_oneof![
            "localhost(:[0-9]{1,5})?",
            "[a-z0-9]([a-z0-9-]{0,5}[a-z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,5}[a-zA-Z0-9])?){1,3}(:[0-9]{1,5})?",
            "[a-z0-9]([a-z0-9-]{0,5}[a-z0-9])?:[0-9]{1,5}",
            "[A-Z][a-zA-Z0-9]{0,6}(:[0-9]{1,5})?",
            // Without a ':' Docker reads a bracketed host as a path.
            "\\[[0-9a-f]{0,4}:[0-9a-f:]{0,10}\\](:[0-9]{1,5})?",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// No input panics; whatever parses round-trips.
        #[test]
        fn arbitrary_strings(s in any::<String>()) {
            let _ = Reference::parse_named(&s);
            let _ = Reference::parse_docker_ref(&s);
            let _ = validate_tag(&s);
            let _ = is_id_prefix(&s);
            if let Ok(r) = Reference::parse_normalized(&s) {
                check_round_trips(&r)?;
            }
        }

        /// Strings over the grammar's own alphabet reach far more branches.
        #[test]
        fn grammar_alphabet_strings(s in "[a-cA-C0-9._:/@\\[\\]-]{0,40}(@sha256:[0-9a-f]{64})?") {
            let _ = Reference::parse_docker_ref(&s);
            if let Ok(r) = Reference::parse_normalized(&s) {
                check_round_trips(&r)?;
            }
        }

        /// Generated valid names always parse, to the expected pieces.
        #[test]
        fn generated_valid_names(
            domain in proptest::option::of(domain()),
            components in proptest::collection::vec(component(), 1..4),
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            digest in proptest::option::of("sha256:[0-9a-f]{64}"),
        ) {
            let path = components.join("/");
            // Without a domain, a dotted first component would be read as one.
            prop_assume!(domain.is_some() || components.len() == 1 || !components[0].contains('.'));
            let mut input = match &domain {
                Some(d) => format!("{d}/{path}"),
                None => path.clone(),
            };
            if let Some(t) = &tag {
                input = format!("{input}:{t}");
            }
            if let Some(d) = &digest {
                input = format!("{input}@{d}");
            }
            let r = Reference::parse_normalized(&input);
            prop_assert!(r.is_ok(), "{:?}: {:?}", input, r);
            let r = r.unwrap();
            match &domain {
                Some(d) => {
                    prop_assert_eq!(r.domain(), d.as_str());
                    prop_assert_eq!(r.path(), path.as_str());
                }
                None => {
                    prop_assert_eq!(r.domain(), DEFAULT_DOMAIN);
                    let want = if components.len() == 1 { format!("library/{path}") } else { path.clone() };
                    prop_assert_eq!(r.path(), want.as_str());
                }
            }
            prop_assert_eq!(r.tag(), tag.as_deref());
            prop_assert_eq!(r.digest(), digest.as_deref());
            check_round_trips(&r)?;
        }
    }
}
