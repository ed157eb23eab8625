#!/usr/bin/env bash
# The whole test suite (what CI runs): packages, fixtures, format and lint
# checks, then every unit and integration test. Needs root: the tests start
# real daemons and containers on this machine's kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/fixtures.sh target/fixtures
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast
