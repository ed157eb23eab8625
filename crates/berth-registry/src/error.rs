//! The crate's error type: configuration, start-up and storage failures,
//! each naming the file, flag or address at fault.

use std::path::PathBuf;

/// A failure of `berth registry serve` or `berth registry gc`.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A file of the store or of the configuration could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory at fault.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The configuration file does not parse or holds a bad value.
    #[error("config file {path}: {msg}")]
    ConfigFile {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong in it.
        msg: String,
    },
    /// A setting (flag or file key) has a bad value.
    #[error("{setting}: {msg}")]
    Setting {
        /// The flag or key, as the user wrote it (`--addr`, `auth.access[2].actions`).
        setting: String,
        /// What is wrong with it.
        msg: String,
    },
    /// An htpasswd line is not `user:bcrypt-hash`.
    #[error("htpasswd file {path} line {line}: {msg}")]
    Htpasswd {
        /// The htpasswd file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        msg: String,
    },
    /// The TLS certificate or key cannot be loaded.
    #[error("TLS {path}: {msg}")]
    Tls {
        /// The certificate or key file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// The listening socket cannot be opened.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A stored manifest cannot be read as JSON (found by gc).
    #[error("manifest {digest} of repository {repo}: {msg}")]
    Manifest {
        /// The repository holding it.
        repo: String,
        /// Its digest.
        digest: String,
        /// What is wrong with it.
        msg: String,
    },
}

impl RegistryError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RegistryError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn setting(setting: impl Into<String>, msg: impl Into<String>) -> Self {
        RegistryError::Setting {
            setting: setting.into(),
            msg: msg.into(),
        }
    }
}
