#!/usr/bin/env bash
# One command from a fresh Debian machine to a working berth: installs the
# packages, builds the release binary, puts it on PATH, makes the busybox
# image from Debian's busybox-static and runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build-release.sh
install -m 0755 target/release/berth target/release/berth-shim /usr/local/bin/
./scripts/fixtures.sh target/fixtures
# The first berth command starts the daemon in the background by itself.
berth import -c 'CMD ["sh"]' - busybox:latest < target/fixtures/busybox-rootfs.tar
berth run --rm busybox echo hello from berth
