//! The built-in token server of Docker's token flow, and the tokens.
//!
//! `GET /token?service=…&scope=repository:NAME:pull,push[&offline_token=true]`
//! with optional Basic credentials, or the OAuth2 form
//! `POST /token` (`grant_type=password|refresh_token`), answers
//! `{"token","access_token","expires_in"[,"refresh_token"]}` granting the
//! intersection of the scopes asked for and the access rules.
//!
//! Tokens are JWTs signed with HMAC-SHA256 under a key drawn at start: the
//! server that signs them is the only one that reads them, so no key
//! pair or certificate is needed, and a restart voids old tokens (clients
//! get 401 `invalid_token` and fetch a new one). The `alg` field is checked
//! to be HS256 (never `none`), the signature compared in constant time, and
//! `exp`, `nbf`, `iss` and `aud` checked.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::{Actions, Auth, Resource};
use super::names::valid_name;
use super::storage::random_hex;
use super::Shared;

type HmacSha256 = Hmac<sha2::Sha256>;

const ISSUER: &str = "berth-registry";

/// One grant of a token, as Docker's token spec writes it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Grant {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) actions: Vec<String>,
}

/// The claims of our tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: u64,
    pub(crate) nbf: u64,
    pub(crate) iat: u64,
    pub(crate) jti: String,
    #[serde(default)]
    pub(crate) access: Vec<Grant>,
    /// A refresh token (OAuth2 `refresh_token` grant), never an access token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) refresh: bool,
}

/// Signs and checks tokens.
pub(crate) struct TokenKey {
    key: [u8; 32],
    service: String,
    ttl: Duration,
}

/// Refresh tokens (what `docker login` keeps) live long; a restart voids
/// them like every token.
const REFRESH_TTL: Duration = Duration::from_secs(30 * 86400);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenKey {
    pub(crate) fn new(service: String, ttl: Duration) -> TokenKey {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS random source");
        TokenKey { key, service, ttl }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// A token for `account` (empty: anonymous) granting `access`.
    pub(crate) fn issue(&self, account: &str, access: Vec<Grant>, refresh: bool) -> String {
        let t = now();
        let ttl = if refresh { REFRESH_TTL } else { self.ttl };
        let claims = Claims {
            iss: ISSUER.into(),
            sub: account.into(),
            aud: self.service.clone(),
            exp: t + ttl.as_secs(),
            nbf: t.saturating_sub(1),
            iat: t,
            jti: random_hex(12),
            access,
            refresh,
        };
        let head = B64URL.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = B64URL.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let signed = format!("{head}.{body}");
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let sig = B64URL.encode(mac.finalize().into_bytes());
        format!("{signed}.{sig}")
    }

    /// The claims of an access token, or why it is refused.
    pub(crate) fn verify(&self, token: &str) -> Result<Claims, &'static str> {
        let c = self.verify_any(token)?;
        if c.refresh {
            return Err("a refresh token is not an access token");
        }
        Ok(c)
    }

    fn verify_refresh(&self, token: &str) -> Result<Claims, &'static str> {
        let c = self.verify_any(token)?;
        if !c.refresh {
            return Err("not a refresh token");
        }
        Ok(c)
    }

    fn verify_any(&self, token: &str) -> Result<Claims, &'static str> {
        let mut parts = token.split('.');
        let (Some(head), Some(body), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed token");
        };
        let header: serde_json::Value = B64URL
            .decode(head)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("malformed token header")?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err("unsupported token algorithm");
        }
        let sig = B64URL
            .decode(sig)
            .map_err(|_| "malformed token signature")?;
        let mut mac = self.mac();
        mac.update(head.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).map_err(|_| "bad token signature")?;
        let claims: Claims = B64URL
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("malformed token claims")?;
        let t = now();
        if claims.exp <= t {
            return Err("token expired");
        }
        if claims.nbf > t + 60 {
            return Err("token not yet valid");
        }
        if claims.iss != ISSUER || claims.aud != self.service {
            return Err("token issued for another service");
        }
        Ok(claims)
    }
}

/// What `account` gets of one requested scope (`type:name:actions`).
fn grant(auth: &Auth, account: Option<&str>, scope: &str, read_only: bool) -> Option<Grant> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    // `repository(plugin)` is a repository with a class.
    let kind = kind.split('(').next().unwrap_or(kind);
    match kind {
        "registry" if name == "catalog" => auth
            .rules_allow(account, Resource::Catalog, Actions::PULL)
            .then(|| Grant {
                kind: "registry".into(),
                name: "catalog".into(),
                actions: vec!["*".into()],
            }),
        "repository" if valid_name(name) => {
            let mut have = auth
                .rule_actions(account, name)
                .intersect(Actions::parse(actions.split(',')));
            if read_only {
                have = have.intersect(Actions::PULL);
            }
            (have != Actions::NONE).then(|| Grant {
                kind: "repository".into(),
                name: name.into(),
                actions: have.words(),
            })
        }
        _ => None,
    }
}

fn token_response(
    key: &TokenKey,
    auth: &Auth,
    account: Option<&str>,
    scopes: &[String],
    offline: bool,
    read_only: bool,
) -> Response {
    let grants: Vec<Grant> = scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter(|s| !s.is_empty())
        .filter_map(|s| grant(auth, account, s, read_only))
        .collect();
    let scope = grants
        .iter()
        .map(|g| format!("{}:{}:{}", g.kind, g.name, g.actions.join(",")))
        .collect::<Vec<_>>()
        .join(" ");
    let token = key.issue(account.unwrap_or(""), grants, false);
    let mut body = json!({
        "token": token,
        "access_token": token,
        "expires_in": key.ttl().as_secs(),
        "scope": scope,
    });
    if offline {
        if let Some(a) = account {
            body["refresh_token"] = json!(key.issue(a, Vec::new(), true));
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// 401 for wrong credentials at the token endpoint.
fn bad_credentials(auth: &Auth) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::WWW_AUTHENTICATE,
                format!("Basic realm=\"{}\"", auth.service()),
            ),
        ],
        json!({"errors":[{"code":"UNAUTHORIZED","message":"wrong user name or password"}]})
            .to_string(),
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "token authentication is not enabled\n",
    )
        .into_response()
}

/// `GET /token`: Docker's token request, credentials (if any) as Basic.
pub(crate) async fn get_token(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(auth) = &st.auth else {
        return not_found();
    };
    let Some(key) = auth.token_key() else {
        return not_found();
    };
    let q = berth_api::query::pairs(q.as_deref().unwrap_or(""));
    let account = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        None => None,
        Some(v) => match v.split_once(' ') {
            Some((s, cred)) if s.eq_ignore_ascii_case("basic") => {
                match auth.basic(cred.trim()).await {
                    Some(user) => Some(user),
                    None => return bad_credentials(auth),
                }
            }
            _ => return bad_credentials(auth),
        },
    };
    let scopes: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let offline = q.iter().any(|(k, v)| k == "offline_token" && v == "true");
    token_response(
        key,
        auth,
        account.as_deref(),
        &scopes,
        offline,
        st.read_only,
    )
}

/// `POST /token`: the OAuth2 form of the token request.
pub(crate) async fn post_token(State(st): State<Shared>, body: Bytes) -> Response {
    let Some(auth) = &st.auth else {
        return not_found();
    };
    let Some(key) = auth.token_key() else {
        return not_found();
    };
    let form = berth_api::query::pairs(&String::from_utf8_lossy(&body));
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let account = match field("grant_type") {
        Some("password") => {
            let (Some(user), Some(pass)) = (field("username"), field("password")) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
            };
            let cred = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            match auth.basic(&cred).await {
                Some(u) => u,
                None => return bad_credentials(auth),
            }
        }
        Some("refresh_token") => match field("refresh_token").map(|t| key.verify_refresh(t)) {
            Some(Ok(c)) => c.sub,
            _ => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_grant"),
        },
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let scopes: Vec<String> = field("scope")
        .map(|s| vec![s.to_owned()])
        .unwrap_or_default();
    let offline = field("access_type") == Some("offline");
    token_response(key, auth, Some(&account), &scopes, offline, st.read_only)
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "error": error }).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let k = TokenKey::new("svc".into(), Duration::from_secs(60));
        let g = vec![Grant {
            kind: "repository".into(),
            name: "a".into(),
            actions: vec!["pull".into()],
        }];
        let t = k.issue("alice", g.clone(), false);
        let c = k.verify(&t).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.access, g);

        // Another key (another server, or a forger) is refused.
        let other = TokenKey::new("svc".into(), Duration::from_secs(60));
        assert_eq!(other.verify(&t).unwrap_err(), "bad token signature");

        // Widening the grants breaks the signature.
        let parts: Vec<&str> = t.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
        claims["access"][0]["actions"] = json!(["pull", "push"]);
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            B64URL.encode(claims.to_string()),
            parts[2]
        );
        assert_eq!(k.verify(&forged).unwrap_err(), "bad token signature");

        // alg=none is refused before any signature check.
        let none = format!(
            "{}.{}.",
            B64URL.encode(br#"{"alg":"none"}"#),
            B64URL.encode(claims.to_string())
        );
        assert_eq!(k.verify(&none).unwrap_err(), "unsupported token algorithm");

        // A refresh token is not an access token.
        let r = k.issue("alice", Vec::new(), true);
        assert!(k.verify(&r).is_err());
        assert!(k.verify_refresh(&r).is_ok());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let k = TokenKey::new("svc".into(), Duration::ZERO);
        let t = k.issue("alice", Vec::new(), false);
        assert_eq!(k.verify(&t).unwrap_err(), "token expired");
    }
}
