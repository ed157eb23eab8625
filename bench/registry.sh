#!/usr/bin/env bash
# Registry throughput and memory: berth's registry beside Debian's
# docker-registry (the reference implementation), same machine, same client.
# Prints a table.
#
#   bench/registry.sh [ROUNDS]     (default 3; the median is shown)
#
# Each round starts each server afresh (alternating, so that load from
# elsewhere on the machine falls on both alike) and measures:
#   push  skopeo copy of a ~200 MB image (an OCI layout, layers already
#         gzipped, so the client does no compression) to the registry
#   pull  skopeo copy from the registry to a dir: layout
#   get50 50 parallel `curl` GETs of the image's largest blob (~200 MB)
#   and the server's CPU time during get50 (user + system; unlike the wall
#   time, it does not depend on what else the machine runs), and its peak
#   RSS (VmHWM) over the round (the largest shown).
# Needs a release build: cargo build --release -p berth-registry (or of
# berth; then `berth registry serve` is measured). BERTH_REGISTRY=PATH
# picks another berth-registry binary.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
if [ -n "${BERTH_REGISTRY:-}" ]; then
  serve=("$BERTH_REGISTRY" serve)
elif [ -x target/release/berth-registry ]; then
  serve=(target/release/berth-registry serve)
elif [ -x target/release/berth ]; then
  serve=(target/release/berth registry serve)
else
  echo "build first: cargo build --release -p berth-registry" >&2
  exit 1
fi
for tool in skopeo docker-registry curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/deps.sh" >&2; exit 1; }
done
BIG_MB=200 ./scripts/fixtures.sh target/fixtures-200 >/dev/null
fx=target/fixtures-200/big-image.tar

work=$(mktemp -d /tmp/berth-regbench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
sk() { skopeo --insecure-policy "$@" >/dev/null 2>"$work/skopeo.err" || { cat "$work/skopeo.err" >&2; exit 1; }; }

# The image as an OCI layout with gzipped layers, made once.
sk copy "docker-archive:$fx" "oci:$work/src:v1"
image_mb=$(du -sm "$work/src/blobs" | cut -f1)
read -r big_digest size < <(python3 - "$work/src" <<'PY'
import json, sys
root = sys.argv[1]
idx = json.load(open(root + "/index.json"))
h = idx["manifests"][0]["digest"].split(":")[1]
m = json.load(open(root + "/blobs/sha256/" + h))
l = max(m["layers"], key=lambda l: l["size"])
print(l["digest"], l["size"])
PY
)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 200); do curl -sf -o /dev/null "http://$1/v2/" && return 0; sleep 0.05; done; echo "no server on $1" >&2; exit 1; }

# Each sets saddr (HOST:PORT) and spid.
start_berth() {
  rm -rf "$work/berth-root"
  "${serve[@]}" --addr 127.0.0.1:0 --root "$work/berth-root" --log-level warn 2>"$work/berth.log" &
  spid=$!
  pids+=("$spid")
  saddr=
  for _ in $(seq 200); do
    saddr=$(grep -o 'listening on http://[0-9.:]*' "$work/berth.log" | head -1 | sed 's|.*http://||') || true
    [ -n "$saddr" ] && break
    sleep 0.05
  done
  wait_http "$saddr"
}

start_ref() {
  rm -rf "$work/ref-root"
  saddr=127.0.0.1:$(free_port)
  printf '%s\n' "version: 0.1" "log:" "  level: warn" "storage:" "  filesystem:" \
    "    rootdirectory: $work/ref-root" "  delete:" "    enabled: true" "http:" "  addr: $saddr" \
    >"$work/ref.yml"
  docker-registry serve "$work/ref.yml" >"$work/ref.log" 2>&1 &
  spid=$!
  pids+=("$spid")
  wait_http "$saddr"
}

now() { date +%s%N; }
peak_mb() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# One round against a fresh server: appends "push_ns pull_ns get50_ns
# peak_mb get50_cpu_ticks" to $work/NAME.times.
round() {
  local name=$1 t0 c0 push pull get
  "start_$name"
  t0=$(now)
  sk copy --dest-tls-verify=false "oci:$work/src:v1" "docker://$saddr/bench/big:v1"
  push=$(( $(now) - t0 ))
  rm -rf "$work/pull"
  t0=$(now)
  sk copy --src-tls-verify=false "docker://$saddr/bench/big:v1" "dir:$work/pull"
  pull=$(( $(now) - t0 ))
  t0=$(now)
  c0=$(cpu_ticks "$spid")
  seq 50 | xargs -P 50 -I{} curl -sf -o /dev/null "http://$saddr/v2/bench/big/blobs/$big_digest"
  get=$(( $(now) - t0 ))
  echo "$push $pull $get $(peak_mb "$spid") $(( $(cpu_ticks "$spid") - c0 ))" >>"$work/$name.times"
  kill "$spid"
  wait "$spid" 2>/dev/null || true
}

for _ in $(seq "$rounds"); do
  round berth
  round ref
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { cut -d' ' -f"$2" "$work/$1.times" | median; }
peak() { cut -d' ' -f4 "$work/$1.times" | sort -n | tail -1; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e9 }'; }
mbps() { awk -v mb="$1" -v ns="$2" 'BEGIN { printf "%.0f", mb / (ns / 1e9) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", b / a }'; }
row() { printf '%-28s %14s %16s %10s\n' "$1" "$2" "$3" "$4"; }

b_push=$(col berth 1); b_pull=$(col berth 2); b_get=$(col berth 3); b_cpu=$(col berth 5)
r_push=$(col ref 1); r_pull=$(col ref 2); r_get=$(col ref 3); r_cpu=$(col ref 5)
hz=$(getconf CLK_TCK)
cpus() { awk -v t="$1" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }'; }
blob_mb=$(awk -v b="$size" 'BEGIN { printf "%.1f", b / 1048576 }')
get_mb=$(awk -v b="$size" 'BEGIN { printf "%.1f", 50 * b / 1048576 }')
printf '\nimage %s MB (OCI layout, gzipped); largest blob %s MB; median of %s rounds\n\n' "$image_mb" "$blob_mb" "$rounds"
row "measure" "berth" "docker-registry" "berth/ref"
row "push (s)" "$(secs "$b_push")" "$(secs "$r_push")" "$(ratio "$b_push" "$r_push")"
row "push (MB/s)" "$(mbps "$image_mb" "$b_push")" "$(mbps "$image_mb" "$r_push")" ""
row "pull (s)" "$(secs "$b_pull")" "$(secs "$r_pull")" "$(ratio "$b_pull" "$r_pull")"
row "pull (MB/s)" "$(mbps "$image_mb" "$b_pull")" "$(mbps "$image_mb" "$r_pull")" ""
row "50 parallel GETs (s)" "$(secs "$b_get")" "$(secs "$r_get")" "$(ratio "$b_get" "$r_get")"
row "50 parallel GETs (MB/s)" "$(mbps "$get_mb" "$b_get")" "$(mbps "$get_mb" "$r_get")" ""
row "  server CPU (s)" "$(cpus "$b_cpu")" "$(cpus "$r_cpu")" "$(ratio "$b_cpu" "$r_cpu")"
row "server peak RSS (MB)" "$(peak berth)" "$(peak ref)" ""
echo
echo "(berth/ref: how many times faster berth is, or for CPU how many times less berth uses; above 1 is better)"
