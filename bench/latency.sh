#!/usr/bin/env bash
# Container start latency and daemon memory: berth beside docker, podman and
# bare runc where they are installed and usable. Prints a table.
#
#   bench/latency.sh [RUNS]      (default 20; needs root and a release build)
#
# Rows: `run --rm busybox true` (min/median over RUNS), `create` of a small
# (busybox, ~2 MB) and a big (500 MB) image, and the daemon's idle RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
berth=${BERTH:-target/release/berth}
[ -x "$berth" ] || { echo "build first: scripts/build-release.sh" >&2; exit 1; }
BIG_MB=500 ./scripts/fixtures.sh target/fixtures-500 >/dev/null
small_fx=target/fixtures-500/busybox-rootfs.tar
big_fx=target/fixtures-500/big-image.tar

root=$(mktemp -d /tmp/berth-bench.XXXXXX)
sock=$root/b.sock
"$berth" daemon --host "unix://$sock" --data-root "$root/data" --exec-root "$root/run" --log-level warn --config-file "$root/daemon.json" \
  >"$root/daemon.log" 2>&1 &
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
B import -c 'CMD ["sh"]' "$small_fx" busybox:latest >/dev/null
B load -q -i "$big_fx" >/dev/null

. bench/lib.sh
create_rm() { local id; id=$(B create "$1" true) && B rm "$id" >/dev/null; }

printf '%-34s %10s %10s\n' "measure" "min ms" "median ms"
row() { printf '%-34s %10s %10s\n' "$1" $2; }
row "berth run --rm busybox true" "$(measure B run --rm busybox true)"
row "berth create+rm (busybox, 2 MB)" "$(measure create_rm busybox)"
row "berth create+rm (big, 500 MB)" "$(measure create_rm berth-fixture/big)"
B run -d --name bench-exec busybox sleep 600 >/dev/null
row "berth exec true" "$(measure B exec bench-exec true)"

# 50 containers started in parallel.
t0=$(date +%s%N)
pids=()
for i in $(seq 50); do B run -d --name "par-$i" busybox sleep 600 >/dev/null & pids+=($!); done
wait "${pids[@]}"
t1=$(date +%s%N)
printf '%-34s %21s\n' "berth 50 x run -d in parallel" "$(( (t1 - t0) / 1000000 )) ms"

# Memory: the daemon idle, and each shim (RSS and PSS, from smaps_rollup).
sleep 1
rss=$(awk '/VmRSS/ {print $2}' "/proc/$dpid/status")
printf '%-34s %21s\n' "berth daemon RSS (51 containers)" "$((rss / 1024)) MB"
shims=$(pgrep -f "berth[- ]shim $root/run/c/" || true)
n=0; rss_sum=0; pss_sum=0
for p in $shims; do
  r=$(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
  q=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
  n=$((n + 1)); rss_sum=$((rss_sum + r)); pss_sum=$((pss_sum + q))
done
if [ "$n" -gt 0 ]; then
  printf '%-34s %21s\n' "berth shim RSS / PSS (mean of $n)" "$((rss_sum / n)) kB / $((pss_sum / n)) kB"
fi

# Peers, when present and working on this machine.
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  row "docker run --rm busybox true" "$(measure docker run --rm busybox true)"
else
  printf '%-34s %21s\n' "docker run --rm busybox true" "(no docker daemon)"
fi
if command -v podman >/dev/null && podman info >/dev/null 2>&1; then
  row "podman run --rm busybox true" "$(measure podman run --rm busybox true)"
else
  printf '%-34s %21s\n' "podman run --rm busybox true" "(not usable here)"
fi
if command -v runc >/dev/null; then
  bundle=$root/bundle
  mkdir -p "$bundle/rootfs"
  tar -C "$bundle/rootfs" -xf "$small_fx"
  (cd "$bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json)
  n=0
  runc_once() { n=$((n + 1)); runc --root "$root/runc" run -b "$bundle" "bench-$$-$n" </dev/null; }
  row "bare runc run (same rootfs) true" "$(measure runc_once)"
fi
