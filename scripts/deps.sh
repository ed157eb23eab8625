#!/usr/bin/env bash
# Installs what building and testing berth needs on Debian (idempotent and
# quick when everything is there). Run as root.
set -euo pipefail
pkgs=(build-essential pkg-config libseccomp-dev libsqlite3-dev libzstd-dev
      busybox-static runc iproute2 python3 tar)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The docker CLI for compatibility tests: the machine's own (28.x) when
# present, else Debian's docker.io client (20.10).
if ! command -v docker >/dev/null 2>&1; then
  missing+=(docker.io)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  # --no-install-recommends: docker.io is wanted for its client only.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo is missing; install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi
