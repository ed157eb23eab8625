//! Running containers: the OCI bundle a container's config becomes
//! ([`spec`]), the per-container monitor process ([`shim`]) that creates and
//! watches it with youki's libcontainer (or an external OCI runtime such as
//! runc), and the daemon's side of the conversation with that shim
//! ([`driver`]).
//!
//! The shim is a separate, single-threaded process with no async runtime:
//! libcontainer forks with raw `clone3` and changes the working directory, so
//! it must never run inside the daemon. The shim holds the container's stdio,
//! writes its log, reaps it and records its exit status, so the daemon can be
//! restarted without touching running containers.

pub mod cgroups;
pub mod driver;
mod error;
mod init;
pub mod protocol;
pub mod seccomp;
pub mod shim;
pub mod spec;
mod sys;
pub mod user;

pub use error::RuntimeError;
