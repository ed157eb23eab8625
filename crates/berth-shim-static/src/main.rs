//! `berth-shim-static`: installed as `berth-shim` by scripts/build-release.sh.
//! See crates/berth/src/bin/berth-shim.rs; not run by hand.

fn main() {
    std::process::exit(berth_runtime::shim::monitor_main(
        std::env::args_os().skip(1).collect(),
    ));
}
