//! Credentials and challenges: the `X-Registry-Auth` JSON that API clients
//! send, and the `WWW-Authenticate` challenges (`Basic realm=…`,
//! `Bearer realm=…,service=…,scope=…`) registries answer 401 with.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Docker's `AuthConfig`: what `X-Registry-Auth` carries (base64url JSON)
/// and `POST /auth` takes as its body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// User name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Password or personal access token.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// `base64(user:password)`, as config.json stores it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// Deprecated, ignored.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// The registry these are for.
    #[serde(rename = "serveraddress", skip_serializing_if = "String::is_empty")]
    pub server_address: String,
    /// An OAuth2 refresh token, exchanged at the token endpoint.
    #[serde(rename = "identitytoken", skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
    /// A bearer token to send as is.
    #[serde(rename = "registrytoken", skip_serializing_if = "String::is_empty")]
    pub registry_token: String,
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` value. Docker encodes with base64url;
    /// older clients used standard base64, and `{}` or nothing means
    /// anonymous. A header that decodes to nothing sensible is anonymous too,
    /// as dockerd treats it.
    pub fn from_header(value: &str) -> AuthConfig {
        let v = value.trim();
        if v.is_empty() {
            return AuthConfig::default();
        }
        let engines = [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::STANDARD,
        ];
        let padded = match v.len() % 4 {
            2 => format!("{v}=="),
            3 => format!("{v}="),
            _ => v.to_string(),
        };
        for e in engines {
            if let Ok(bytes) = e.decode(padded.as_bytes()) {
                if let Ok(a) = serde_json::from_slice::<AuthConfig>(&bytes) {
                    return a.normalized();
                }
            }
        }
        AuthConfig::default()
    }

    /// Encodes for `X-Registry-Auth`.
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    /// Fills username/password from `auth` when only that is given.
    pub fn normalized(mut self) -> AuthConfig {
        if self.username.is_empty() && !self.auth.is_empty() {
            if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(self.auth.trim()) {
                if let Ok(s) = String::from_utf8(b) {
                    if let Some((u, p)) = s.split_once(':') {
                        self.username = u.to_string();
                        self.password = p.to_string();
                    }
                }
            }
        }
        self
    }

    /// True when there is nothing to authenticate with.
    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty() && self.identity_token.is_empty() && self.registry_token.is_empty()
    }

    /// `Basic base64(user:password)`, when a user is given.
    pub fn basic_header(&self) -> Option<String> {
        if self.username.is_empty() {
            return None;
        }
        let raw = format!("{}:{}", self.username, self.password);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }
}

/// One `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lower-cased: `basic` or `bearer`.
    pub scheme: String,
    /// Its parameters (names lower-cased): realm, service, scope, error…
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parses a `WWW-Authenticate` value (RFC 7235): one or more challenges,
/// each a scheme and `name=value` pairs whose values may be quoted with
/// backslash escapes. Malformed parts are skipped, never a panic.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = header.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token_end = |mut i: usize| {
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b',' | b'=' | b'"') {
            i += 1;
        }
        i
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let start = i;
        i = token_end(i);
        if i == start {
            i += 1; // a stray '=' or quote
            continue;
        }
        let word = &header[start..i];
        // name=value belongs to the current challenge; a bare word starts one.
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = Vec::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    v.push(b[i]);
                    i += 1;
                }
                i += 1; // closing quote
                String::from_utf8_lossy(&v).into_owned()
            } else {
                let s = i;
                while i < b.len() && b[i] != b',' && b[i] != b' ' {
                    i += 1;
                }
                header[s..i].to_string()
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(word.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

/// A token endpoint's answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TokenResponse {
    pub(crate) token: String,
    pub(crate) access_token: String,
    pub(crate) expires_in: u64,
    /// An OAuth2 refresh token, given when one was asked for (login):
    /// what Docker stores as the identity token.
    pub(crate) refresh_token: String,
}

impl TokenResponse {
    /// The token to send (`token`, else the OAuth2 `access_token`).
    pub(crate) fn bearer(&self) -> &str {
        if self.token.is_empty() {
            &self.access_token
        } else {
            &self.token
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn challenges() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
        let c = parse_challenges(r#"Basic realm="basic-realm""#);
        assert_eq!(c[0].scheme, "basic");
        let c = parse_challenges(r#"Basic realm="a\"b", Bearer realm=x ,service=y"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("realm"), Some("a\"b"));
        assert_eq!(c[1].param("service"), Some("y"));
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges("=,=\"").is_empty());
    }

    #[test]
    fn registry_auth_header() {
        assert!(AuthConfig::from_header("e30=").is_anonymous());
        assert!(AuthConfig::from_header("").is_anonymous());
        assert!(AuthConfig::from_header("!!!").is_anonymous());
        let a = AuthConfig {
            username: "alice".into(),
            password: "s3cr+t/=?".into(),
            server_address: "127.0.0.1:5000".into(),
            ..Default::default()
        };
        let h = a.to_header();
        assert_eq!(AuthConfig::from_header(&h), a);
        assert_eq!(AuthConfig::from_header(h.trim_end_matches('=')), a);
        let only = AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("bob:pw"),
            ..Default::default()
        }
        .normalized();
        assert_eq!(
            (only.username.as_str(), only.password.as_str()),
            ("bob", "pw")
        );
        assert_eq!(only.basic_header().unwrap(), "Basic Ym9iOnB3");
    }

    proptest! {
        #[test]
        fn challenge_params_round_trip(
            realm in "[ -~]{0,40}",
            service in "[a-z0-9.:-]{1,20}",
            scope in "[a-z0-9/:,_.-]{1,40}",
        ) {
            let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
            let h = format!(r#"Bearer realm="{}",service="{}",scope="{}""#, q(&realm), q(&service), q(&scope));
            let c = parse_challenges(&h);
            prop_assert_eq!(c.len(), 1);
            prop_assert_eq!(c[0].param("realm"), Some(realm.as_str()));
            prop_assert_eq!(c[0].param("service"), Some(service.as_str()));
            prop_assert_eq!(c[0].param("scope"), Some(scope.as_str()));
        }

        #[test]
        fn challenge_parser_never_panics(s in "\\PC{0,80}") {
            let _ = parse_challenges(&s);
        }
    }
}
