#!/usr/bin/env bash
# The cost of streaming `stats`. Prints a table.
#
#   bench/stats.sh [CONTAINERS] [SECONDS]   (default 100 and 10; needs root
#                                            and a release build)
#
# CONTAINERS busybox `sleep` containers are started (through the API, a few
# at a time), then `berth stats` streams all of them to /dev/null while the
# CPU time (user+sys, from /proc/PID/stat) of the daemon and of the client
# is measured over SECONDS, after a 3 s warm-up. The same again with the
# docker CLI pointed at our daemon when it is here: it opens one
# `GET /containers/{id}/stats?stream=1` per container. The target is the
# daemon and the client together under 1% of a core (100 ms per 10 s).
# When dockerd (Debian's docker.io) is installed, the same is measured on a
# private dockerd (see bench/lib.sh) with as many containers; its "daemon"
# column is dockerd, containerd and the containers' shims, which read the
# cgroups for it. Its containers have no network (the private dockerd has
# no bridge), so it reads no network counters.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
secs=${2:-10}
berth=${BERTH:-target/release/berth}
[ -x "$berth" ] || { echo "build first: scripts/build-release.sh" >&2; exit 1; }
./scripts/fixtures.sh target/fixtures >/dev/null
small_fx=target/fixtures/busybox-rootfs.tar

. bench/lib.sh
clients=()
cleanup() {
  for p in "${clients[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${clients[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -S "${dsock:-}" ] && { DK rm -f $(DK ps -aq 2>/dev/null) >/dev/null 2>&1 || true; }
  stop_dockerd
  [ -S "${sock:-}" ] && { B rm -f $(B ps -aq 2>/dev/null) >/dev/null 2>&1 || true; }
  stop_daemon
}
trap cleanup EXIT
start_daemon
B import -c 'CMD ["sh"]' "$small_fx" busybox:latest >/dev/null

echo "starting $n containers..." >&2
# Eight at a time.
run_one() {
  api POST "/v1.41/containers/create?name=st$1" '{"Image":"busybox","Cmd":["sleep","1000"]}' >/dev/null &&
    api POST "/v1.41/containers/st$1/start" >/dev/null
}
for i in $(seq "$n"); do
  run_one "$i" &
  batch+=($!)
  (( i % 8 == 0 )) && flush
done
flush
running=$(B ps -q | wc -l)
[ "$running" -eq "$n" ] || { echo "only $running of $n containers running" >&2; exit 1; }

tck=$(getconf CLK_TCK)
# CPU ms (user+sys) of all the pids given, summed.
cpu_ms() {
  local p sum=0
  for p in "$@"; do
    sum=$(( sum + $(awk -v t="$tck" '{print int(($14 + $15) * 1000 / t)}' "/proc/$p/stat" 2>/dev/null || echo 0) ))
  done
  echo "$sum"
}

# Runs a streaming client in the background, lets it warm up, then prints
# "daemon-ms client-ms" over $secs seconds and stops it. The daemon is
# $engine's pids (default: ours).
measure_stream() {
  "$@" >/dev/null 2>&1 &
  local c=$!
  clients+=("$c")
  sleep 3
  # The client's pid is that of the shell function's subshell for B/D:
  # take the newest process in its tree, which is the real client.
  local cp; cp=$(pgrep -n -P "$c" || echo "$c")
  local d0 c0 d1 c1
  # shellcheck disable=SC2086
  d0=$(cpu_ms ${engine:-$dpid}); c0=$(cpu_ms "$cp")
  sleep "$secs"
  # shellcheck disable=SC2086
  d1=$(cpu_ms ${engine:-$dpid}); c1=$(cpu_ms "$cp")
  kill "$cp" "$c" 2>/dev/null || true
  wait "$c" 2>/dev/null || true
  echo "$(( d1 - d0 )) $(( c1 - c0 ))"
}

pct() { awk -v ms="$1" -v s="$secs" 'BEGIN {printf "%.2f%%", ms / (s * 10)}'; }
printf '%-44s %12s %12s %10s\n' "stats streaming, $n containers, ${secs} s" "daemon ms" "client ms" "% of core"
row() {
  local d c; read -r d c <<<"$2"
  printf '%-44s %12s %12s %10s\n' "$1" "$d" "$c" "$(pct $(( d + c )))"
}
idle=$(measure_stream sleep 1000000)
row "idle (no stats client)" "$idle"
row "berth stats" "$(measure_stream B stats)"
if command -v docker >/dev/null; then
  row "docker stats (same daemon)" "$(measure_stream D stats)"
fi

if command -v docker >/dev/null && start_dockerd; then
  DK import -c 'CMD ["sh"]' "$small_fx" busybox:latest >/dev/null
  echo "starting $n containers in dockerd..." >&2
  for i in $(seq "$n"); do
    DK run -d --network none --name "st$i" busybox sleep 1000 >/dev/null &
    batch+=($!)
    (( i % 8 == 0 )) && flush
  done
  flush
  engine="$dockerd_pid $(pgrep -P "$dockerd_pid" containerd) $(pgrep -f "containerd-shim.*$droot" | tr '\n' ' ')"
  row "dockerd 20.10, docker stats" "$(measure_stream DK stats)"
fi
