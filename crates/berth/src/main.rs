//! The `berth` binary: the CLI by default; `berth daemon` runs the daemon and
//! (hidden) `berth shim` the per-container monitor the daemon starts.

fn main() {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let code = match args.get(1).and_then(|a| a.to_str()) {
        Some("daemon") => berth_daemon::main(args.split_off(2)),
        Some("registry") => berth_registry::main(args.split_off(2)),
        Some("shim") => berth_runtime::shim::main(&args[2..]),
        _ => berth_cli::main(args),
    };
    std::process::exit(code);
}
