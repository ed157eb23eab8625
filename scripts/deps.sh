#!/usr/bin/env bash
# Installs what building and testing berth needs on Debian (idempotent and
# quick when everything is there). Run as root.
set -euo pipefail
pkgs=(build-essential pkg-config libseccomp-dev libsqlite3-dev libzstd-dev
      busybox-static runc iproute2 python3 tar sqlite3 util-linux skopeo docker-registry
      nftables openssl python3-docker)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The 20.10 docker client as well (API 1.41, the oldest berth serves), for
# compatibility tests: only its client binary, from Debian's docker.io
# package, unpacked beside berth's own files; no daemon is installed.
old_docker=/usr/local/lib/berth-test/docker-20.10
if [ ! -x "$old_docker" ]; then
  echo "deps: fetching the docker 20.10 client (docker.io package)" >&2
  dl=$(mktemp -d)
  chmod 755 "$dl"
  fetch() { (cd "$dl" && apt-get download -qq docker.io 2>/dev/null && dpkg-deb -x docker.io_*.deb x); }
  fetch || { apt-get update -qq || true; fetch; } || true
  if [ -x "$dl/x/usr/bin/docker" ]; then
    install -D -m 0755 "$dl/x/usr/bin/docker" "$old_docker"
  else
    echo "deps: could not fetch docker.io; the 20.10 client tests will fail" >&2
  fi
  rm -rf "$dl"
fi
# The docker CLI for compatibility tests: the machine's own (28.x) when
# present, else that 20.10 client.
if ! command -v docker >/dev/null 2>&1 && [ -x "$old_docker" ]; then
  ln -sf "$old_docker" /usr/local/bin/docker
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo is missing; install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi
