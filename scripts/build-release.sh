#!/usr/bin/env bash
# The release build: `berth`, and beside it a statically linked `berth-shim`
# (a static monitor maps no shared libc, about half the memory per running
# container). Output in target/release (or $CARGO_TARGET_DIR/release).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
triple=$(rustc -vV | sed -n 's/^host: //p')
# With an explicit --target, RUSTFLAGS reach only the target's crates: build
# scripts and proc-macros (which cannot be static) stay as they are.
# libseccomp-sys links libseccomp.so unless told otherwise, and a static-pie
# with a shared library in it crashes before main.
LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="/usr/lib/$(gcc -print-multiarch)" \
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --profile shim -p berth-shim-static --target "$triple"
out=${CARGO_TARGET_DIR:-target}
install -m 0755 "$out/$triple/shim/berth-shim-static" "$out/release/berth-shim"
