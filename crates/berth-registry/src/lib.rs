//! berth's registry: `berth registry serve`, a server of the OCI
//! Distribution Spec v1.1 that docker, podman, skopeo and berth push to and
//! pull from, and `berth registry gc`, its garbage collector.
//!
//! The server keeps everything on the filesystem under `--root`: blobs
//! content-addressed and shared by all repositories, per-repository links
//! for blobs, manifests, tags and referrers, uploads in temp files renamed
//! only once their digest is checked (the layout and its crash-safety are
//! described in `server/storage.rs`). Authentication is htpasswd (bcrypt)
//! Basic or Docker's token flow with a built-in token endpoint, with
//! per-repository permissions; TLS is rustls. The distribution client
//! (pull/push for the daemon) lives beside the server, in [`client`].

#![deny(missing_docs)]

pub mod client;
mod error;
mod server;

use std::ffi::OsString;

use clap::{Parser, Subcommand};

pub use error::RegistryError;
use server::config::{Config, GcArgs, ServeArgs};

#[derive(Parser, Debug)]
#[command(
    name = "berth registry",
    about = "A private registry (OCI Distribution Spec v1.1)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the registry server
    Serve(ServeArgs),
    /// Delete blobs that no manifest uses
    Gc(GcArgs),
}

/// `berth registry ARGS…` (ARGS without the program name); returns the
/// exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let argv = std::iter::once(OsString::from("berth registry")).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.cmd {
        Cmd::Serve(a) => serve(&a),
        Cmd::Gc(a) => gc(&a),
    }
}

fn serve(a: &ServeArgs) -> i32 {
    let cfg = match Config::for_serve(a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth registry: {e}");
            return 1;
        }
    };
    if a.print_config {
        print!("{}", cfg.to_toml());
        return 0;
    }
    init_tracing(&cfg.log_level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth registry: starting the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(server::serve(cfg)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth registry: {e}");
            1
        }
    }
}

fn gc(a: &GcArgs) -> i32 {
    let cfg = match Config::for_gc(a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth registry gc: {e}");
            return 1;
        }
    };
    init_tracing("warn");
    match server::gc::run(&cfg, a.dry_run, &mut std::io::stdout()) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("berth registry gc: {e}");
            1
        }
    }
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{level},hyper=warn,axum=warn"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
