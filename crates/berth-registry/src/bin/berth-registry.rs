//! `berth-registry serve|gc …`: the same as `berth registry …`, without the
//! rest of berth linked in.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(berth_registry::main(args));
}
