#!/usr/bin/env bash
# Listing latency and the cost of an idle `events` subscriber. Prints a table.
#
#   bench/listing.sh [RUNS]      (default 20; needs root and a release build)
#
# 500 containers are created (not started) and 300 image tags made through
# the API (curl on the socket: far quicker than 800 CLI runs), then
# `ps -a`, `images`, `ps -a --format '{{json .}}'` and `GET /containers/json`
# are timed. docker's figures go beside ours when the docker CLI is here
# (it is the same client pointed at our daemon, so only berth's own client
# is compared to it). Then the daemon's CPU time over 10 s idle, without
# and with 5 idle `events` subscribers (should be 0 ms either way), and its
# RSS. When dockerd (Debian's docker.io) is installed, the same containers
# and tags are made on a private dockerd (bench/lib.sh) and docker's own
# figures are printed last.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
berth=${BERTH:-target/release/berth}
[ -x "$berth" ] || { echo "build first: scripts/build-release.sh" >&2; exit 1; }
./scripts/fixtures.sh target/fixtures >/dev/null
small_fx=target/fixtures/busybox-rootfs.tar

. bench/lib.sh
subs=()
cleanup() {
  # B runs in a subshell: its client is the subshell's child.
  for p in "${subs[@]}"; do pkill -P "$p" 2>/dev/null; kill "$p" 2>/dev/null || true; done
  for p in "${subs[@]}"; do wait "$p" 2>/dev/null || true; done
  stop_dockerd
  stop_daemon
}
trap cleanup EXIT
start_daemon
B import -c 'CMD ["sh"]' "$small_fx" busybox:latest >/dev/null

# 500 containers and 300 tags through the API function "$1" (api or
# dapi), sixteen requests at a time.
populate() {
  echo "setting up 500 containers and 300 tags..." >&2
  for i in $(seq 500); do
    "$1" POST "/v1.41/containers/create?name=c$i" '{"Image":"busybox","Cmd":["true"],"Labels":{"n":"'"$i"'"}}' >/dev/null &
    batch+=($!)
    (( i % 16 == 0 )) && flush
  done
  flush
  for i in $(seq 300); do
    "$1" POST "/v1.41/images/busybox/tag?repo=bench/img$i&tag=v1" >/dev/null &
    batch+=($!)
    (( i % 16 == 0 )) && flush
  done
  flush
}
populate api


printf '%-44s %10s %10s\n' "measure (500 containers, 300 images)" "min ms" "median ms"
row() { printf '%-44s %10s %10s\n' "$1" $2; }
row "berth ps -a" "$(measure B ps -a)"
row "berth ps -a --format '{{json .}}'" "$(measure B ps -a --format '{{json .}}')"
row "berth images" "$(measure B images)"
row "GET /containers/json?all=1 (curl)" "$(measure api GET '/v1.41/containers/json?all=1')"
row "GET /images/json (curl)" "$(measure api GET /v1.41/images/json)"
if command -v docker >/dev/null; then
  row "docker ps -a (same daemon)" "$(measure D ps -a)"
  row "docker images (same daemon)" "$(measure D images)"
fi

# Daemon CPU (user+sys, ms) over an idle 10 s window.
cpu_ms() {
  local s; s=$(awk '{print $14 + $15}' "/proc/$dpid/stat")
  echo $(( s * 1000 / $(getconf CLK_TCK) ))
}
idle_cpu() { local a b; a=$(cpu_ms); sleep 10; b=$(cpu_ms); echo $(( b - a )); }
printf '%-44s %10s\n' "daemon CPU over 10 s idle" "ms"
printf '%-44s %10s\n' "no events subscriber" "$(idle_cpu)"
for _ in 1 2 3 4 5; do B events >/dev/null & subs+=($!); done
sleep 1
printf '%-44s %10s\n' "5 idle events subscribers" "$(idle_cpu)"
rss=$(awk '/VmRSS/ {print $2}' "/proc/$dpid/status")
printf '%-44s %10s\n' "daemon RSS (kB) with 500 containers" "$rss"

if command -v docker >/dev/null && start_dockerd; then
  dapi() { curl -sf --unix-socket "$dsock" -X "$1" "http://d$2" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
  DK import -c 'CMD ["sh"]' "$small_fx" busybox:latest >/dev/null
  populate dapi
  printf '%-44s %10s %10s\n' "dockerd 20.10 (same 500 and 300)" "min ms" "median ms"
  row "docker ps -a" "$(measure DK ps -a)"
  row "docker images" "$(measure DK images)"
  row "GET /containers/json?all=1 (curl)" "$(measure dapi GET '/v1.41/containers/json?all=1')"
  row "GET /images/json (curl)" "$(measure dapi GET /v1.41/images/json)"
  drss=$(awk '/VmRSS/ {print $2}' "/proc/$dockerd_pid/status")
  printf '%-44s %10s\n' "dockerd RSS (kB) with 500 containers" "$drss"
fi
