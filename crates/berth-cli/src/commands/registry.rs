//! `push`, `login`, `logout`, and the credentials they share with `pull`:
//! `~/.docker/config.json` (`$DOCKER_CONFIG/config.json`) with `auths`
//! entries (`base64(user:password)`, or `base64(user:)` and the
//! `identitytoken` a token server gave at login), or `credsStore`/
//! `credHelpers` that name `docker-credential-<x>` programs, exactly as the
//! docker CLI keeps them, so that both tools share one login.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use base64::Engine as _;
use berth_api::Reference;
use clap::Args;
use hyper::Method;
use serde::{Deserialize, Serialize};

use super::{outln, CmdResult, Ctx, StatusError};
use crate::client::{path_escape, JsonStream, Payload, Query};

/// The key Docker files Docker Hub credentials under.
const HUB_KEY: &str = "https://index.docker.io/v1/";

/// Docker's AuthConfig, as `X-Registry-Auth` and `POST /auth` carry it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct AuthConfig {
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub(crate) username: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub(crate) password: String,
    #[serde(
        rename = "serveraddress",
        skip_serializing_if = "String::is_empty",
        default
    )]
    pub(crate) server_address: String,
    #[serde(
        rename = "identitytoken",
        skip_serializing_if = "String::is_empty",
        default
    )]
    pub(crate) identity_token: String,
}

impl AuthConfig {
    /// The `X-Registry-Auth` value (base64url JSON; `e30=` is `{}`).
    pub(crate) fn header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }
}

/// The registry domain of a `login`/`logout` argument, Docker Hub's
/// spellings folded into its key.
pub(crate) fn server_key(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or_default().to_ascii_lowercase();
    if host.is_empty()
        || matches!(
            host.as_str(),
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        )
    {
        HUB_KEY.to_string()
    } else {
        host
    }
}

/// The credentials key of a reference's registry.
pub(crate) fn key_for(r: &Reference) -> String {
    server_key(r.domain())
}

fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    home.join(".docker")
}

fn config_path() -> PathBuf {
    config_dir().join("config.json")
}

/// A default output format from config.json (`psFormat`, `imagesFormat`…),
/// used when no `--format` is given; an unreadable file counts as none.
pub(crate) fn config_format(key: &str) -> Option<String> {
    read_config()
        .ok()?
        .get(key)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// config.json as a JSON object, keeping every key we do not use.
fn read_config() -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Default::default()),
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("loading config file {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

fn write_config(cfg: &serde_json::Map<String, serde_json::Value>) -> anyhow::Result<()> {
    let dir = config_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let p = config_path();
    let tmp = dir.join(".config.json.tmp");
    let data = serde_json::to_vec_pretty(cfg)?;
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&data)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

/// The helper program for a registry key: `credHelpers[key]`, else `credsStore`.
fn helper_for(cfg: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<String> {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(key);
    let helpers = cfg.get("credHelpers").and_then(|v| v.as_object());
    helpers
        .and_then(|h| h.get(key).or_else(|| h.get(host)))
        .or_else(|| cfg.get("credsStore"))
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn run_helper(helper: &str, action: &str, input: &str) -> anyhow::Result<String> {
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("error getting credentials - err: exec: \"{prog}\": executable file not found in $PATH"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        anyhow::bail!(
            "{prog} {action}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(stdout)
}

/// The stored credentials for a registry key (anonymous when none).
pub(crate) fn credentials(key: &str) -> AuthConfig {
    let anonymous = AuthConfig::default();
    let Ok(cfg) = read_config() else {
        return anonymous;
    };
    if let Some(h) = helper_for(&cfg, key) {
        #[derive(Deserialize)]
        struct Got {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let Ok(out) = run_helper(&h, "get", key) else {
            return anonymous;
        };
        let Ok(g) = serde_json::from_str::<Got>(&out) else {
            return anonymous;
        };
        // Helpers store identity tokens under the user name "<token>".
        return if g.username == "<token>" {
            AuthConfig {
                identity_token: g.secret,
                server_address: key.to_string(),
                ..Default::default()
            }
        } else {
            AuthConfig {
                username: g.username,
                password: g.secret,
                server_address: key.to_string(),
                ..Default::default()
            }
        };
    }
    let entry = cfg.get("auths").and_then(|a| a.as_object()).and_then(|a| {
        a.get(key)
            .or_else(|| a.iter().find(|(k, _)| server_key(k) == key).map(|(_, v)| v))
    });
    let Some(entry) = entry else {
        return anonymous;
    };
    let mut a = AuthConfig {
        server_address: key.to_string(),
        ..Default::default()
    };
    if let Some(enc) = entry.get("auth").and_then(|v| v.as_str()) {
        if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(enc.trim()) {
            if let Some((u, p)) = String::from_utf8_lossy(&b).split_once(':') {
                a.username = u.to_string();
                a.password = p.to_string();
            }
        }
    }
    if let Some(t) = entry.get("identitytoken").and_then(|v| v.as_str()) {
        a.identity_token = t.to_string();
    }
    a
}

/// `X-Registry-Auth` for a reference.
pub(crate) fn auth_header_for(r: &Reference) -> String {
    credentials(&key_for(r)).header()
}

/// `X-Registry-Config` for a build: every stored credential, by registry
/// key, as the docker CLI sends them (the daemon picks the one a FROM
/// image's pull needs). `None` when there are none.
pub(crate) fn registry_config_header() -> Option<String> {
    let cfg = read_config().ok()?;
    let mut keys: Vec<String> = Vec::new();
    for section in ["auths", "credHelpers"] {
        if let Some(m) = cfg.get(section).and_then(|v| v.as_object()) {
            keys.extend(m.keys().cloned());
        }
    }
    keys.sort();
    keys.dedup();
    let all: serde_json::Map<String, serde_json::Value> = keys
        .into_iter()
        .map(|k| {
            let a = credentials(&k);
            (k, serde_json::to_value(a).unwrap_or_default())
        })
        .collect();
    if all.is_empty() {
        return None;
    }
    let json = serde_json::to_vec(&all).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE.encode(json))
}

fn store_credentials(key: &str, a: &AuthConfig) -> anyhow::Result<()> {
    let mut cfg = read_config()?;
    if let Some(h) = helper_for(&cfg, key) {
        // Helpers keep an identity token under the user name "<token>",
        // as the docker CLI stores it.
        let (user, secret) = if a.identity_token.is_empty() {
            (a.username.as_str(), a.password.as_str())
        } else {
            ("<token>", a.identity_token.as_str())
        };
        let input = serde_json::json!({"ServerURL": key, "Username": user, "Secret": secret});
        run_helper(&h, "store", &input.to_string())?;
        return Ok(());
    }
    let auths = cfg.entry("auths").or_insert_with(|| serde_json::json!({}));
    if !auths.is_object() {
        *auths = serde_json::json!({});
    }
    let enc =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", a.username, a.password));
    let mut entry = serde_json::json!({ "auth": enc });
    if !a.identity_token.is_empty() {
        entry["identitytoken"] = serde_json::json!(a.identity_token);
    }
    auths
        .as_object_mut()
        .expect("made an object above")
        .insert(key.to_string(), entry);
    write_config(&cfg)
}

/// `berth login`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Authenticate to a registry",
    override_usage = "berth login [OPTIONS] [SERVER]"
)]
pub(crate) struct LoginArgs {
    /// Username
    #[arg(short = 'u', long, value_name = "string")]
    pub(crate) username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long, value_name = "string")]
    pub(crate) password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    pub(crate) password_stdin: bool,
    /// SERVER
    #[arg(value_name = "SERVER")]
    pub(crate) server: Vec<String>,
}

fn prompt(label: &str) -> anyhow::Result<String> {
    eprint!("{label}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `berth login [-u USER] [-p PASS | --password-stdin] [SERVER]`.
pub(crate) async fn login(ctx: &Ctx, args: &LoginArgs) -> CmdResult {
    if args.server.len() > 1 {
        return Err(StatusError::new(
            1,
            "\"berth login\" requires at most 1 argument.\nSee 'berth login --help'.\n\nUsage:  berth login [OPTIONS] [SERVER]\n\nAuthenticate to a registry",
        )
        .into());
    }
    let server = args.server.first().map(String::as_str).unwrap_or(HUB_KEY);
    let key = server_key(server);
    let mut password = args.password.clone();
    if args.password_stdin {
        if password.is_some() {
            anyhow::bail!("--password and --password-stdin are mutually exclusive");
        }
        if args.username.is_none() {
            anyhow::bail!("Must provide --username with --password-stdin");
        }
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        password = Some(s.trim_end_matches(['\n', '\r']).to_string());
    } else if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let username = match &args.username {
        Some(u) => u.clone(),
        None => {
            if !std::io::stdin().is_terminal() {
                anyhow::bail!("Error: Cannot perform an interactive login from a non TTY device");
            }
            prompt("Username: ")?
        }
    };
    let password = match password {
        Some(p) => p,
        None => {
            if !std::io::stdin().is_terminal() {
                anyhow::bail!("Error: Cannot perform an interactive login from a non TTY device");
            }
            prompt("Password: ")?
        }
    };
    if username.is_empty() {
        anyhow::bail!("Error: Non-null Username Required");
    }
    if password.is_empty() {
        anyhow::bail!("Error: Password Required");
    }
    let mut a = AuthConfig {
        username,
        password,
        server_address: key.clone(),
        ..Default::default()
    };
    let answer = ctx
        .client
        .post_json::<_, serde_json::Value>("/auth", &Query::new(), &a)
        .await?;
    // A token server's refresh token replaces the password on disk, as
    // the docker CLI does: later pulls exchange it for access tokens.
    if let Some(t) = answer
        .get("IdentityToken")
        .and_then(|v| v.as_str())
        .filter(|t| !t.is_empty())
    {
        a.password.clear();
        a.identity_token = t.to_string();
    }
    store_credentials(&key, &a)?;
    if read_config()
        .ok()
        .and_then(|c| helper_for(&c, &key))
        .is_none()
    {
        eprintln!(
            "WARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
            config_path().display()
        );
    }
    outln("Login Succeeded")?;
    Ok(0)
}

/// `berth logout`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Log out from a registry",
    override_usage = "berth logout [SERVER]"
)]
pub(crate) struct LogoutArgs {
    /// SERVER
    #[arg(value_name = "SERVER")]
    pub(crate) server: Vec<String>,
}

/// `berth logout [SERVER]`: forgets the stored credentials.
pub(crate) async fn logout(_ctx: &Ctx, args: &LogoutArgs) -> CmdResult {
    let server = args.server.first().map(String::as_str).unwrap_or(HUB_KEY);
    let key = server_key(server);
    let mut cfg = read_config()?;
    if let Some(h) = helper_for(&cfg, &key) {
        outln(&format!("Removing login credentials for {key}"))?;
        run_helper(&h, "erase", &key)?;
        return Ok(0);
    }
    let removed = cfg
        .get_mut("auths")
        .and_then(|a| a.as_object_mut())
        .map(|a| {
            let before = a.len();
            a.retain(|k, _| server_key(k) != key);
            a.len() != before
        })
        .unwrap_or(false);
    if !removed {
        outln(&format!("Not logged in to {key}"))?;
        return Ok(0);
    }
    outln(&format!("Removing login credentials for {key}"))?;
    write_config(&cfg)?;
    Ok(0)
}

/// `berth push`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Upload an image to a registry",
    override_usage = "berth push [OPTIONS] NAME[:TAG]"
)]
pub(crate) struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub(crate) all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// NAME[:TAG]
    #[arg(value_name = "NAME[:TAG]")]
    pub(crate) args: Vec<String>,
}

/// `berth push [-a] [-q] NAME[:TAG]`.
pub(crate) async fn push(ctx: &Ctx, args: &PushArgs) -> CmdResult {
    super::requires_exact("push", "[OPTIONS] NAME[:TAG]", args.args.len(), 1)?;
    let mut r = Reference::parse_normalized(&args.args[0])?;
    if r.digest().is_some() {
        anyhow::bail!("invalid reference format: push takes a tag, not a digest");
    }
    if args.all_tags && r.tag().is_some() {
        anyhow::bail!("tag can't be used with --all-tags/-a");
    }
    if r.tag().is_none() && !args.all_tags {
        r = r.with_tag("latest")?;
        if !args.quiet {
            outln("Using default tag: latest")?;
        }
    }
    let query = match r.tag() {
        Some(t) => Query::new().add("tag", t),
        None => Query::new(),
    };
    let path = format!("/images/{}/push", path_escape(&r.familiar_name()));
    let resp = ctx
        .client
        .request(
            Method::POST,
            &path,
            &query,
            Payload::None,
            &[("X-Registry-Auth", &auth_header_for(&r))],
        )
        .await?;
    let mut stream = JsonStream::new(resp);
    super::image_io::display_stream(&mut stream, false, args.quiet).await?;
    if args.quiet {
        outln(&r.familiar_string())?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_keys() {
        assert_eq!(server_key("docker.io"), HUB_KEY);
        assert_eq!(server_key(HUB_KEY), HUB_KEY);
        assert_eq!(server_key("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        let a = AuthConfig::default();
        assert_eq!(a.header(), "e30=");
    }
}
