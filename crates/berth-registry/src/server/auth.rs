//! Who a request comes from and what it may do.
//!
//! Two ways in, as Docker's registry has them:
//! - Basic: `--htpasswd FILE` (bcrypt entries) checked on every request;
//!   a missing or wrong password is 401 with `WWW-Authenticate: Basic`.
//! - Token (`--auth-token`): requests carry `Authorization: Bearer <jwt>`
//!   from our own `/token` endpoint (see `token.rs`); a missing, forged or
//!   expired token is 401 with `WWW-Authenticate: Bearer realm=…,service=…,
//!   scope=…` so that clients fetch one and retry.
//!
//! Permissions come from `[[auth.access]]` rules (account × repository glob
//! × actions); with no rule every signed-in user may do everything. A
//! signed-in user asking for what the rules refuse gets 403 DENIED; a token
//! that merely lacks a scope the rules would grant gets 401
//! `error="insufficient_scope"`, the signal for clients to fetch a wider one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine as _;
use serde_json::json;
use sha2::Digest as _;

use super::config::{AccessRule, Config};
use super::errors::ApiError;
use super::token::{Grant, TokenKey};
use crate::RegistryError;

/// A set of repository actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Actions(u8);

impl Actions {
    pub(crate) const NONE: Actions = Actions(0);
    pub(crate) const PULL: Actions = Actions(1);
    pub(crate) const PUSH: Actions = Actions(2);
    pub(crate) const DELETE: Actions = Actions(4);
    pub(crate) const ALL: Actions = Actions(7);

    pub(crate) fn contains(self, other: Actions) -> bool {
        self.0 & other.0 == other.0
    }

    pub(crate) fn union(self, other: Actions) -> Actions {
        Actions(self.0 | other.0)
    }

    pub(crate) fn intersect(self, other: Actions) -> Actions {
        Actions(self.0 & other.0)
    }

    /// From scope words; unknown words grant nothing.
    pub(crate) fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Actions {
        words.into_iter().fold(Actions::NONE, |acc, w| {
            acc.union(match w {
                "pull" => Actions::PULL,
                "push" => Actions::PUSH,
                "delete" => Actions::DELETE,
                "*" => Actions::ALL,
                _ => Actions::NONE,
            })
        })
    }

    pub(crate) fn words(self) -> Vec<String> {
        [
            (Actions::PULL, "pull"),
            (Actions::PUSH, "push"),
            (Actions::DELETE, "delete"),
        ]
        .iter()
        .filter(|(a, _)| self.contains(*a))
        .map(|(_, w)| (*w).to_owned())
        .collect()
    }
}

/// What a request wants to touch.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Resource<'a> {
    Repo(&'a str),
    Catalog,
}

/// The caller, once its credentials were checked.
#[derive(Clone, Debug, Default)]
pub(crate) struct Identity {
    /// The user name; `None` for anonymous callers.
    pub(crate) account: Option<String>,
    /// The access a Bearer token grants; `None` when no token was used.
    token: Option<Vec<Grant>>,
}

impl Identity {
    pub(crate) fn user(name: &str) -> Identity {
        Identity {
            account: Some(name.to_owned()),
            token: None,
        }
    }
}

/// Where the request came in, to build the realm of a Bearer challenge.
pub(crate) struct Origin<'a> {
    pub(crate) scheme: &'a str,
    pub(crate) host: Option<&'a str>,
}

/// Authentication and authorization, built once from the configuration.
pub(crate) struct Auth {
    htpasswd: Option<Htpasswd>,
    token: Option<TokenKey>,
    rules: Vec<AccessRule>,
    realm: Option<String>,
    service: String,
}

impl Auth {
    /// `None` when the configuration turns no authentication on.
    pub(crate) fn new(cfg: &Config) -> Result<Option<Auth>, RegistryError> {
        if !cfg.auth_enabled() {
            return Ok(None);
        }
        let htpasswd = cfg
            .auth
            .htpasswd
            .as_deref()
            .map(Htpasswd::load)
            .transpose()?;
        let token = if cfg.auth.token {
            Some(TokenKey::new(cfg.auth.service.clone(), cfg.token_ttl()?))
        } else {
            None
        };
        Ok(Some(Auth {
            htpasswd,
            token,
            rules: cfg.auth.access.clone(),
            realm: cfg.auth.realm.clone(),
            service: cfg.auth.service.clone(),
        }))
    }

    pub(crate) fn token_key(&self) -> Option<&TokenKey> {
        self.token.as_ref()
    }

    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    /// Checks the credentials the request carries. No credentials is an
    /// anonymous identity; wrong ones are 401.
    pub(crate) async fn identify(
        &self,
        headers: &HeaderMap,
        origin: &Origin<'_>,
    ) -> Result<Identity, ApiError> {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(Identity::default());
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let Some(key) = &self.token else {
                return Err(self.challenge(origin, None, None));
            };
            return match key.verify(rest.trim()) {
                Ok(claims) => Ok(Identity {
                    account: (!claims.sub.is_empty()).then_some(claims.sub),
                    token: Some(claims.access),
                }),
                Err(why) => Err(self
                    .challenge(origin, None, Some("invalid_token"))
                    .detail(json!(why))),
            };
        }
        if scheme.eq_ignore_ascii_case("basic") {
            return match self.basic(rest.trim()).await {
                Some(user) => Ok(Identity::user(&user)),
                None => Err(self.challenge(origin, None, None)),
            };
        }
        Err(self.challenge(origin, None, None))
    }

    /// Checks `user:password` in a Basic credential against htpasswd.
    pub(crate) async fn basic(&self, b64: &str) -> Option<String> {
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (user, pass) = raw.split_once(':')?;
        let ht = self.htpasswd.as_ref()?;
        ht.verify(user, pass).await.then(|| user.to_owned())
    }

    /// Whether `who` may do `want` on `res`, or the error to answer.
    pub(crate) fn check(
        &self,
        who: &Identity,
        res: Resource<'_>,
        want: Actions,
        origin: &Origin<'_>,
    ) -> Result<(), ApiError> {
        if self.permits(who, res, want) {
            return Ok(());
        }
        let scope = scope_of(res, want);
        let by_rules = self.rules_allow(who.account.as_deref(), res, want);
        if who.account.is_none() {
            return Err(self.challenge(origin, Some(&scope), None));
        }
        if who.token.is_some() && by_rules {
            return Err(self.challenge(origin, Some(&scope), Some("insufficient_scope")));
        }
        Err(
            ApiError::denied("requested access to the resource is denied").detail(
                json!([{ "Type": "repository", "Name": scope, "Action": want.words().join(",") }]),
            ),
        )
    }

    /// Whether `who` may do `want` on `res` (no error, for filtering).
    pub(crate) fn permits(&self, who: &Identity, res: Resource<'_>, want: Actions) -> bool {
        match &who.token {
            Some(grants) => grants_allow(grants, res, want),
            None => self.rules_allow(who.account.as_deref(), res, want),
        }
    }

    /// What the access rules give `account` on `res`.
    pub(crate) fn rules_allow(
        &self,
        account: Option<&str>,
        res: Resource<'_>,
        want: Actions,
    ) -> bool {
        match res {
            Resource::Catalog => {
                account.is_some() || self.rules.iter().any(|r| r.account == "anonymous")
            }
            Resource::Repo(name) => self.rule_actions(account, name).contains(want),
        }
    }

    /// The union of the actions of every rule matching `account` and `repo`.
    pub(crate) fn rule_actions(&self, account: Option<&str>, repo: &str) -> Actions {
        if self.rules.is_empty() {
            return if account.is_some() {
                Actions::ALL
            } else {
                Actions::NONE
            };
        }
        self.rules
            .iter()
            .filter(|r| match r.account.as_str() {
                // What anyone may do, a signed-in user may do too.
                "anonymous" => true,
                "*" => account.is_some(),
                name => account == Some(name),
            })
            .filter(|r| glob(&r.repository, repo))
            .fold(Actions::NONE, |acc, r| {
                acc.union(Actions::parse(r.actions.iter().map(String::as_str)))
            })
    }

    /// A 401 with the challenge of the configured scheme.
    pub(crate) fn challenge(
        &self,
        origin: &Origin<'_>,
        scope: Option<&str>,
        error: Option<&str>,
    ) -> ApiError {
        let value = if self.token.is_some() {
            let realm = match &self.realm {
                Some(r) => r.clone(),
                None => format!(
                    "{}://{}/token",
                    origin.scheme,
                    origin.host.unwrap_or("localhost")
                ),
            };
            let mut v = format!("Bearer realm=\"{realm}\",service=\"{}\"", self.service);
            if let Some(s) = scope {
                v.push_str(&format!(",scope=\"{s}\""));
            }
            if let Some(e) = error {
                v.push_str(&format!(",error=\"{e}\""));
            }
            v
        } else {
            format!("Basic realm=\"{}\"", self.service)
        };
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        )
        .header(header::WWW_AUTHENTICATE, &value)
    }
}

/// The scope string of a challenge: pushes ask for pull too, since a push
/// checks for existing blobs first.
fn scope_of(res: Resource<'_>, want: Actions) -> String {
    match res {
        Resource::Catalog => "registry:catalog:*".to_owned(),
        Resource::Repo(name) => {
            let want = if want.contains(Actions::PUSH) {
                want.union(Actions::PULL)
            } else {
                want
            };
            format!("repository:{name}:{}", want.words().join(","))
        }
    }
}

fn grants_allow(grants: &[Grant], res: Resource<'_>, want: Actions) -> bool {
    let (kind, name) = match res {
        Resource::Catalog => ("registry", "catalog"),
        Resource::Repo(n) => ("repository", n),
    };
    let have = grants
        .iter()
        .filter(|g| g.kind == kind && g.name == name)
        .fold(Actions::NONE, |acc, g| {
            acc.union(Actions::parse(g.actions.iter().map(String::as_str)))
        });
    match res {
        // The catalog scope's only action is "*".
        Resource::Catalog => have == Actions::ALL,
        Resource::Repo(_) => have.contains(want),
    }
}

/// `*` matches any run of characters (slashes included); all else literally.
pub(crate) fn glob(pattern: &str, s: &str) -> bool {
    let p = pattern.as_bytes();
    let s = s.as_bytes();
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// An htpasswd file of bcrypt entries. bcrypt is slow by design (tens of
/// ms), and clients with Basic auth send the password on every request, so
/// each user's last good password is remembered as its sha256.
struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashMap<String, [u8; 32]>>,
}

impl Htpasswd {
    fn load(path: &Path) -> Result<Htpasswd, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|e| RegistryError::io(path, e))?;
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |msg: &str| RegistryError::Htpasswd {
                path: path.to_owned(),
                line: i + 1,
                msg: msg.to_owned(),
            };
            let (user, hash) = line.split_once(':').ok_or_else(|| bad("not user:hash"))?;
            if !(hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$")) {
                return Err(bad(
                    "only bcrypt entries ($2y$, `htpasswd -B`) are supported",
                ));
            }
            users.insert(user.to_owned(), hash.to_owned());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashMap::new()),
        })
    }

    async fn verify(&self, user: &str, pass: &str) -> bool {
        let Some(hash) = self.users.get(user).cloned() else {
            return false;
        };
        let fp: [u8; 32] = sha2::Sha256::digest(pass.as_bytes()).into();
        if self.verified.lock().expect("htpasswd cache").get(user) == Some(&fp) {
            return true;
        }
        let pass = pass.to_owned();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pass, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if ok {
            self.verified
                .lock()
                .expect("htpasswd cache")
                .insert(user.to_owned(), fp);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "a/b/c"));
        assert!(glob("team/*", "team/x/y"));
        assert!(!glob("team/*", "teams/x"));
        assert!(glob("*/base", "a/b/base"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(glob("a*b*c", "axxbyyc"));
    }

    fn auth_with(rules: Vec<AccessRule>) -> Auth {
        Auth {
            htpasswd: None,
            token: None,
            rules,
            realm: None,
            service: "s".into(),
        }
    }

    #[test]
    fn rules_combine() {
        let rule = |account: &str, repository: &str, actions: &[&str]| AccessRule {
            account: account.into(),
            repository: repository.into(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
        };
        let a = auth_with(vec![
            rule("anonymous", "public/*", &["pull"]),
            rule("*", "shared/*", &["pull", "push"]),
            rule("alice", "alice/*", &["*"]),
        ]);
        assert_eq!(a.rule_actions(None, "public/x"), Actions::PULL);
        assert_eq!(a.rule_actions(None, "shared/x"), Actions::NONE);
        assert_eq!(a.rule_actions(Some("bob"), "public/x"), Actions::PULL);
        assert_eq!(
            a.rule_actions(Some("bob"), "shared/x"),
            Actions::PULL.union(Actions::PUSH)
        );
        assert_eq!(a.rule_actions(Some("bob"), "alice/x"), Actions::NONE);
        assert_eq!(a.rule_actions(Some("alice"), "alice/x"), Actions::ALL);
        let open = auth_with(Vec::new());
        assert_eq!(open.rule_actions(Some("x"), "y"), Actions::ALL);
        assert_eq!(open.rule_actions(None, "y"), Actions::NONE);
    }

    #[test]
    fn denied_versus_challenge() {
        let a = auth_with(Vec::new());
        let origin = Origin {
            scheme: "http",
            host: Some("h"),
        };
        let anon = Identity::default();
        let e = a
            .check(&anon, Resource::Repo("x"), Actions::PULL, &origin)
            .unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        let ruled = auth_with(vec![AccessRule {
            account: "bob".into(),
            repository: "bob/*".into(),
            actions: vec!["pull".into()],
        }]);
        let bob = Identity::user("bob");
        assert!(ruled
            .check(&bob, Resource::Repo("bob/x"), Actions::PULL, &origin)
            .is_ok());
        let e = ruled
            .check(&bob, Resource::Repo("bob/x"), Actions::PUSH, &origin)
            .unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert_eq!(e.code, "DENIED");
    }
}
