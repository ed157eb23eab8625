#!/usr/bin/env bash
# Builds the registry's container image (crates/berth-registry/image/Dockerfile)
# with `berth build`: the context holds the berth-registry binary and the
# shared libraries `ldd` lists for it (libc and the loader, at the same
# paths), so no extra static build is needed.
#
#   scripts/registry-image.sh [-t TAG] [--debug] [--context DIR]
#
#   -t TAG         image name (default berth-registry)
#   --debug        use the debug binary (what `cargo test` builds; built
#                  when missing or older than its sources) instead of the
#                  release one (`cargo build --release -p berth-registry`)
#   --context DIR  assemble the context in DIR and keep it (default: a
#                  temporary directory, removed at the end)
#
# BERTH is the berth CLI to build with (default `berth` on PATH); BERTH_HOST
# picks the daemon as for berth itself. The binary comes from
# $CARGO_TARGET_DIR (default target/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tag=berth-registry
profile=release
ctx=
while [ $# -gt 0 ]; do
  case $1 in
    -t) tag=$2; shift 2 ;;
    --debug) profile=debug; shift ;;
    --context) ctx=$2; shift 2 ;;
    *) echo "usage: $0 [-t TAG] [--debug] [--context DIR]" >&2; exit 2 ;;
  esac
done
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/$profile/berth-registry
if [ "$profile" = release ]; then
  (cd "$root" && cargo build --release -p berth-registry --bin berth-registry)
elif [ ! -x "$bin" ] || [ -n "$(find "$root/crates/berth-registry" "$root/crates/berth-api" \
  "$root/Cargo.lock" -newer "$bin" \( -name '*.rs' -o -name 'Cargo.*' \) -print -quit)" ]; then
  # Only when missing or older than its sources: `cargo test --workspace`
  # has just built it, and a build of this package alone could unify
  # features differently and recompile dependencies.
  (cd "$root" && cargo build -p berth-registry --bin berth-registry)
fi

if [ -z "$ctx" ]; then
  ctx=$(mktemp -d /tmp/berth-registry-image.XXXXXX)
  trap 'rm -rf "$ctx"' EXIT
fi
rm -rf "$ctx/rootfs"
mkdir -p "$ctx/rootfs"
cp "$root/crates/berth-registry/image/Dockerfile" "$ctx/Dockerfile"
install -m 0755 "$bin" "$ctx/rootfs/berth-registry"
# Lines are `name => /path (addr)` or `/path (addr)` (the loader); the vdso
# has no file; a static binary has none at all. cp -L: the libraries are
# symlinks to versioned files.
libs=$(ldd "$bin" 2>/dev/null || true)
if grep -q 'not found' <<<"$libs"; then
  echo "registry-image: $bin links libraries this machine lacks:" >&2
  grep 'not found' <<<"$libs" >&2
  exit 1
fi
echo "$libs" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
  while read -r lib; do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
  done
read -ra berth <<<"${BERTH:-berth}"
"${berth[@]}" build -t "$tag" "$ctx"
