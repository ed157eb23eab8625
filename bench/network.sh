#!/usr/bin/env bash
# Networking (issue 5): a published port from the host to a container
# (busybox httpd behind `-p 127.0.0.1:PORT:80`): one large transfer
# (throughput) and many short connections (latency); and what network
# set-up adds to `run --rm busybox true` (default bridge against
# `--network none`, which still takes a prepared namespace, and
# `--network host`). A docker row is added when a docker daemon answers.
#
#   bench/network.sh            (needs root, curl and a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
berth=${BERTH:-target/release/berth}
[ -x "$berth" ] || { echo "build first: scripts/build-release.sh" >&2; exit 1; }
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }
./scripts/fixtures.sh target/fixtures >/dev/null

size_mb=${SIZE_MB:-200}
conns=${CONNS:-500}
runs=${RUNS:-20}

root=$(mktemp -d /tmp/berth-netbench.XXXXXX)
sock=$root/b.sock
"$berth" daemon --host "unix://$sock" --data-root "$root/data" --exec-root "$root/run" --log-level warn \
  --config-file "$root/daemon.json" >"$root/daemon.log" 2>&1 &
dpid=$!
cleanup() {
  "$berth" -H "unix://$sock" rm -f $("$berth" -H "unix://$sock" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  kill "$dpid" 2>/dev/null || true
  wait "$dpid" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
B() { BERTH_NO_AUTOSTART=1 "$berth" -H "unix://$sock" "$@"; }
B import -c 'CMD ["sh"]' target/fixtures/busybox-rootfs.tar busybox:latest >/dev/null

now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" -v n="${3:-1}" 'BEGIN { printf "%.2f", (b - a) / 1e6 / n }'; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One engine: $1 = name, $2 = command prefix.
bench() {
  local name=$1
  shift
  local port
  port=$(free_port)
  "$@" run -d --name netbench -p "127.0.0.1:$port:80" busybox sh -c \
    "mkdir /www && head -c $((size_mb * 1000000)) /dev/zero > /www/big && echo ok > /www/small && httpd -f -p 80 -h /www" >/dev/null
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/small" >/dev/null 2>&1 && break; sleep 0.1; done
  local t0 t1
  t0=$(now)
  curl -sf -o /dev/null "http://127.0.0.1:$port/big"
  t1=$(now)
  local mbps
  mbps=$(awk -v a="$t0" -v b="$t1" -v s="$size_mb" 'BEGIN { printf "%.0f", s / ((b - a) / 1e9) }')
  t0=$(now)
  for _ in $(seq "$conns"); do curl -sf -o /dev/null "http://127.0.0.1:$port/small"; done
  t1=$(now)
  local per_conn
  per_conn=$(ms "$t0" "$t1" "$conns")
  "$@" rm -f netbench >/dev/null
  local mode line=""
  for mode in bridge none host; do
    "$@" run --rm --network "$mode" busybox true # warm-up
    t0=$(now)
    for _ in $(seq "$runs"); do "$@" run --rm --network "$mode" busybox true; done
    t1=$(now)
    line="$line $(ms "$t0" "$t1" "$runs")"
  done
  # shellcheck disable=SC2086
  printf '%-8s %10s %12s %14s %12s %12s\n' "$name" "$mbps" "$per_conn" $line
}

printf '%-8s %10s %12s %14s %12s %12s\n' engine "MB/s" "ms/request" "run bridge ms" "run none ms" "run host ms"
bench berth B
if docker info >/dev/null 2>&1; then
  docker image inspect busybox >/dev/null 2>&1 || docker import -c 'CMD ["sh"]' target/fixtures/busybox-rootfs.tar busybox:latest >/dev/null
  bench docker docker
fi
