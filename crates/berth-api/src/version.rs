//! Engine API version rules: which versions berth serves and how a request's
//! `/v1.NN` prefix is checked.

/// Highest API version served; advertised in `Api-Version`.
pub const MAX_API_VERSION: &str = "1.45";
/// Lowest API version accepted in a `/v1.NN` path prefix.
pub const MIN_API_VERSION: &str = "1.41";
/// The engine version berth reports (Docker's numbering scheme, berth's own value).
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// An API version as (major, minor); compared numerically so that 1.9 < 1.41.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    /// Parses "1.41".
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        if a.is_empty() || b.is_empty() || !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Why a requested version is refused; the texts are dockerd's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionError {
    /// Below [`MIN_API_VERSION`].
    TooOld(String),
    /// Above [`MAX_API_VERSION`].
    TooNew(String),
}

impl std::fmt::Display for VersionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionError::TooOld(v) => write!(
                f,
                "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
            ),
            VersionError::TooNew(v) => write!(
                f,
                "client version {v} is too new. Maximum supported API version is {MAX_API_VERSION}"
            ),
        }
    }
}

/// Splits a request path into its version prefix (if any) and the rest:
/// `/v1.41/containers/json` → (Some("1.41"), "/containers/json").
pub fn split_version_prefix(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let ver = &rest[..end];
        if ver.contains('.') && ver.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            let tail = &rest[end..];
            return (Some(ver), if tail.is_empty() { "/" } else { tail });
        }
    }
    (None, path)
}

/// Checks a requested version against the served range.
pub fn check_version(v: &str) -> Result<ApiVersion, VersionError> {
    let min = ApiVersion::parse(MIN_API_VERSION).expect("valid constant");
    let max = ApiVersion::parse(MAX_API_VERSION).expect("valid constant");
    // An unparsable version is treated like dockerd does: compared as text it
    // is neither, so it is refused as too new.
    let parsed = ApiVersion::parse(v).ok_or_else(|| VersionError::TooNew(v.to_string()))?;
    if parsed < min {
        Err(VersionError::TooOld(v.to_string()))
    } else if parsed > max {
        Err(VersionError::TooNew(v.to_string()))
    } else {
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_split() {
        assert_eq!(split_version_prefix("/v1.41/info"), (Some("1.41"), "/info"));
        assert_eq!(split_version_prefix("/info"), (None, "/info"));
        assert_eq!(split_version_prefix("/v1.45"), (Some("1.45"), "/"));
        assert_eq!(split_version_prefix("/volumes/x"), (None, "/volumes/x"));
    }

    #[test]
    fn range() {
        assert!(check_version("1.41").is_ok());
        assert!(check_version("1.45").is_ok());
        assert_eq!(
            check_version("1.40"),
            Err(VersionError::TooOld("1.40".into()))
        );
        assert_eq!(
            check_version("1.9"),
            Err(VersionError::TooOld("1.9".into()))
        );
        assert_eq!(
            check_version("1.46"),
            Err(VersionError::TooNew("1.46".into()))
        );
        assert_eq!(
            VersionError::TooNew("1.99".into()).to_string(),
            "client version 1.99 is too new. Maximum supported API version is 1.45"
        );
    }
}
