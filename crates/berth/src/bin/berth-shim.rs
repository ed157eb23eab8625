//! `berth-shim`: the small monitor a container's `berth shim` becomes once
//! the container exists (see berth_runtime::shim's handoff). Not run by hand.

fn main() {
    std::process::exit(berth_runtime::shim::monitor_main(
        std::env::args_os().skip(1).collect(),
    ));
}
