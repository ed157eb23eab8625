//! Configuration: a TOML file (`--config FILE`) overridden by flags, checked
//! once into the [`Config`] the server runs with; `--print-config` prints
//! it back as TOML.
//!
//! ```toml
//! addr = "0.0.0.0:5000"
//! root = "/var/lib/berth-registry"
//! read_only = false
//! log_level = "info"
//!
//! [tls]
//! cert = "/etc/berth-registry/cert.pem"
//! key = "/etc/berth-registry/key.pem"
//!
//! [auth]
//! htpasswd = "/etc/berth-registry/htpasswd"   # bcrypt entries
//! token = true                # Docker's token flow, served at /token
//! realm = "https://reg.example.com/token"      # default: this server's /token
//! service = "berth-registry"
//! token_ttl = "5m"
//!
//! [[auth.access]]             # none: signed-in users may do everything
//! account = "alice"           # a user, "*" (any signed-in user) or "anonymous"
//! repository = "alice/*"      # a name; `*` matches any run of characters
//! actions = ["pull", "push", "delete"]   # or ["*"]
//!
//! [gc]
//! grace_period = "1h"         # blobs younger than this are never collected
//! upload_purge_after = "24h"  # uploads idle this long are removed by gc
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::RegistryError;

/// The whole configuration, as read from the file and then the flags.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) addr: String,
    pub(crate) root: PathBuf,
    pub(crate) read_only: bool,
    pub(crate) log_level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) auth: AuthConfig,
    pub(crate) gc: GcConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsConfig {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AuthConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) htpasswd: Option<PathBuf>,
    pub(crate) token: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) realm: Option<String>,
    pub(crate) service: String,
    pub(crate) token_ttl: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) access: Vec<AccessRule>,
}

/// One permission: `account` may do `actions` on repositories matching
/// `repository`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessRule {
    pub(crate) account: String,
    pub(crate) repository: String,
    pub(crate) actions: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct GcConfig {
    pub(crate) grace_period: String,
    pub(crate) upload_purge_after: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: "0.0.0.0:5000".into(),
            root: PathBuf::from("/var/lib/berth-registry"),
            read_only: false,
            log_level: "info".into(),
            tls: None,
            auth: AuthConfig::default(),
            gc: GcConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            htpasswd: None,
            token: false,
            realm: None,
            service: "berth-registry".into(),
            token_ttl: "5m".into(),
            access: Vec::new(),
        }
    }
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            grace_period: "1h".into(),
            upload_purge_after: "24h".into(),
        }
    }
}

/// `berth registry serve` flags; each one overrides the file.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct ServeArgs {
    /// TOML configuration file (flags override it)
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on (default 0.0.0.0:5000; port 0 picks a free one)
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) addr: Option<String>,
    /// Directory of the store (default /var/lib/berth-registry)
    #[arg(long, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    /// TLS certificate chain (PEM); needs --tls-key
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
    /// htpasswd file of bcrypt entries: turns on authentication
    #[arg(long, value_name = "FILE")]
    pub(crate) htpasswd: Option<PathBuf>,
    /// Use Docker's token flow (Bearer tokens from this server's /token)
    #[arg(long)]
    pub(crate) auth_token: bool,
    /// Realm URL advertised to clients for tokens (implies --auth-token)
    #[arg(long, value_name = "URL")]
    pub(crate) auth_token_realm: Option<String>,
    /// Service name in challenges and tokens (default berth-registry)
    #[arg(long, value_name = "NAME")]
    pub(crate) auth_service: Option<String>,
    /// Lifetime of issued tokens, e.g. 300s, 5m (default 5m)
    #[arg(long, value_name = "DURATION")]
    pub(crate) auth_token_ttl: Option<String>,
    /// Refuse every push and delete (405)
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Log level: error, warn, info, debug (default info)
    #[arg(long, value_name = "LEVEL")]
    pub(crate) log_level: Option<String>,
    /// Print the effective configuration as TOML and exit
    #[arg(long)]
    pub(crate) print_config: bool,
}

/// `berth registry gc` flags.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct GcArgs {
    /// TOML configuration file (its root and [gc] section are used)
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Directory of the store
    #[arg(long, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    /// Only print what would be deleted
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Never delete blobs used more recently than this, e.g. 30m, 1h, 0s
    #[arg(long, value_name = "DURATION")]
    pub(crate) grace_period: Option<String>,
    /// Remove uploads idle for longer than this (default 24h)
    #[arg(long, value_name = "DURATION")]
    pub(crate) upload_purge_after: Option<String>,
}

impl Config {
    /// Reads `path` (TOML) into a configuration.
    pub(crate) fn from_file(path: &Path) -> Result<Config, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|e| RegistryError::io(path, e))?;
        toml::from_str(&text).map_err(|e| RegistryError::ConfigFile {
            path: path.to_owned(),
            msg: e.to_string(),
        })
    }

    /// The file (if any) with the flags laid over it, checked.
    pub(crate) fn for_serve(a: &ServeArgs) -> Result<Config, RegistryError> {
        let mut c = match &a.config {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        if let Some(v) = &a.addr {
            c.addr = v.clone();
        }
        if let Some(v) = &a.root {
            c.root = v.clone();
        }
        match (&a.tls_cert, &a.tls_key) {
            (Some(cert), Some(key)) => {
                c.tls = Some(TlsConfig {
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
            (None, None) => {}
            (Some(_), None) => return Err(RegistryError::setting("--tls-cert", "needs --tls-key")),
            (None, Some(_)) => return Err(RegistryError::setting("--tls-key", "needs --tls-cert")),
        }
        if let Some(v) = &a.htpasswd {
            c.auth.htpasswd = Some(v.clone());
        }
        if a.auth_token {
            c.auth.token = true;
        }
        if let Some(v) = &a.auth_token_realm {
            c.auth.token = true;
            c.auth.realm = Some(v.clone());
        }
        if let Some(v) = &a.auth_service {
            c.auth.service = v.clone();
        }
        if let Some(v) = &a.auth_token_ttl {
            c.auth.token_ttl = v.clone();
        }
        if a.read_only {
            c.read_only = true;
        }
        if let Some(v) = &a.log_level {
            c.log_level = v.clone();
        }
        c.check()?;
        Ok(c)
    }

    /// The file (if any) with the gc flags laid over it, checked.
    pub(crate) fn for_gc(a: &GcArgs) -> Result<Config, RegistryError> {
        let mut c = match &a.config {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        if let Some(v) = &a.root {
            c.root = v.clone();
        }
        if let Some(v) = &a.grace_period {
            c.gc.grace_period = v.clone();
        }
        if let Some(v) = &a.upload_purge_after {
            c.gc.upload_purge_after = v.clone();
        }
        c.check()?;
        Ok(c)
    }

    /// Checks every value that can be wrong, naming the setting at fault.
    fn check(&self) -> Result<(), RegistryError> {
        if self.addr.parse::<std::net::SocketAddr>().is_err()
            && self
                .addr
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
        {
            return Err(RegistryError::setting(
                "addr",
                format!("{:?} is not HOST:PORT", self.addr),
            ));
        }
        if !matches!(
            self.log_level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return Err(RegistryError::setting(
                "log_level",
                format!(
                    "{:?} is not one of error, warn, info, debug, trace",
                    self.log_level
                ),
            ));
        }
        self.token_ttl()?;
        self.grace_period()?;
        self.upload_purge_after()?;
        if self.auth.service.is_empty() || self.auth.service.contains('"') {
            return Err(RegistryError::setting(
                "auth.service",
                "must be non-empty and hold no '\"'",
            ));
        }
        if let Some(r) = &self.auth.realm {
            if !(r.starts_with("http://") || r.starts_with("https://")) || r.contains('"') {
                return Err(RegistryError::setting(
                    "auth.realm",
                    format!("{r:?} is not an http(s) URL"),
                ));
            }
        }
        for (i, rule) in self.auth.access.iter().enumerate() {
            if rule.account.is_empty() {
                return Err(RegistryError::setting(
                    format!("auth.access[{i}].account"),
                    "is empty (use \"anonymous\" or \"*\")",
                ));
            }
            if rule.repository.is_empty() {
                return Err(RegistryError::setting(
                    format!("auth.access[{i}].repository"),
                    "is empty (use \"*\" for every repository)",
                ));
            }
            for a in &rule.actions {
                if !matches!(a.as_str(), "pull" | "push" | "delete" | "*") {
                    return Err(RegistryError::setting(
                        format!("auth.access[{i}].actions"),
                        format!("{a:?} is not one of pull, push, delete, *"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether clients must authenticate at all.
    pub(crate) fn auth_enabled(&self) -> bool {
        self.auth.htpasswd.is_some() || self.auth.token
    }

    pub(crate) fn token_ttl(&self) -> Result<Duration, RegistryError> {
        parse_duration(&self.auth.token_ttl)
            .map_err(|m| RegistryError::setting("auth.token_ttl", m))
    }

    pub(crate) fn grace_period(&self) -> Result<Duration, RegistryError> {
        parse_duration(&self.gc.grace_period)
            .map_err(|m| RegistryError::setting("gc.grace_period", m))
    }

    pub(crate) fn upload_purge_after(&self) -> Result<Duration, RegistryError> {
        parse_duration(&self.gc.upload_purge_after)
            .map_err(|m| RegistryError::setting("gc.upload_purge_after", m))
    }

    /// The configuration as TOML, as `--print-config` shows it.
    pub(crate) fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

/// `90`, `90s`, `5m`, `1h`, `2d`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 5m, 1h, 2d"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?} is not a duration like 30s, 5m, 1h, 2d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "addr = \"127.0.0.1:6000\"\nread_only = true\n[auth]\nhtpasswd = \"/x\"\n\
             [[auth.access]]\naccount = \"bob\"\nrepository = \"bob/*\"\nactions = [\"pull\"]\n",
        )
        .unwrap();
        let a = ServeArgs {
            config: Some(f.clone()),
            addr: Some("127.0.0.1:7000".into()),
            ..Default::default()
        };
        let c = Config::for_serve(&a).unwrap();
        assert_eq!(c.addr, "127.0.0.1:7000");
        assert!(c.read_only);
        assert_eq!(c.auth.access.len(), 1);
        let printed = c.to_toml();
        let back: Config = toml::from_str(&printed).unwrap();
        assert_eq!(back.addr, "127.0.0.1:7000");
        assert_eq!(back.auth.access[0].account, "bob");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "adress = \"x\"\n").unwrap();
        let a = ServeArgs {
            config: Some(f.clone()),
            ..Default::default()
        };
        let e = Config::for_serve(&a).unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains("adress"), "{e}");
        std::fs::write(
            &f,
            "[[auth.access]]\naccount = \"a\"\nrepository = \"*\"\nactions = [\"write\"]\n",
        )
        .unwrap();
        let e = Config::for_serve(&a).unwrap_err().to_string();
        assert!(e.contains("auth.access[0].actions"), "{e}");
        let a = ServeArgs {
            tls_cert: Some("c".into()),
            ..Default::default()
        };
        assert!(Config::for_serve(&a)
            .unwrap_err()
            .to_string()
            .contains("--tls-key"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("").is_err());
    }
}
