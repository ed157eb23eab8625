//! Builds: the Dockerfile parser ([`parser`]), word splitting and variable
//! expansion ([`shell`]), `.dockerignore` ([`ignore`]) and, with the
//! `engine` feature, the legacy-builder executor and its cache
//! ([`Builder`]). RUN steps run through a [`RunBackend`] the daemon
//! implements with its own container machinery.

pub mod ignore;
pub mod parser;
pub mod shell;

#[cfg(feature = "engine")]
mod builder;
#[cfg(feature = "engine")]
mod context;
#[cfg(feature = "engine")]
mod fetch;
#[cfg(feature = "engine")]
mod fsutil;

#[cfg(feature = "engine")]
pub use builder::{BuildOptions, BuildOutput, Builder, RunBackend, RunOutcome, RunRequest};
#[cfg(feature = "engine")]
pub use context::{unpack_context, ContextDigests};

/// Why a build failed; each variant names the thing at fault.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse.
    #[error("dockerfile parse error on line {line}: {message}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An instruction's arguments are wrong (bad substitution, bad flag…).
    #[error("{0}")]
    Syntax(String),
    /// Something the user referred to does not exist (a file, a stage, an
    /// image).
    #[error("{0}")]
    NotFound(String),
    /// A RUN step exited non-zero.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed {
        /// The command as Docker prints it.
        command: String,
        /// Its exit code.
        code: i64,
    },
    /// Anything else that went wrong on the daemon's side.
    #[error("{0}")]
    Internal(String),
}

impl BuildError {
    /// True for errors the user caused (HTTP 400 when found before the
    /// build starts).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, BuildError::Internal(_))
    }
}
