#!/usr/bin/env bash
# cp throughput and `system df` latency (issue 9). Prints a table.
#
#   bench/volumes.sh [MB] [CONTAINERS] [COMMIT_MB]
#                           (default 500 MB, 200, 200 MB; needs root and a
#                            release build)
#
# A tree of MB megabytes (1 MB files in 10 directories) is copied into a
# stopped container and back out with `berth cp`; a container that wrote
# COMMIT_MB megabytes is committed (`berth commit`, paused, as docker's
# default); then CONTAINERS containers are created and `GET /system/df` is
# timed (target: < 100 ms).
# No docker daemon runs here, so docker's figures cannot be put beside.
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-500}
n=${2:-200}
cmb=${3:-200}
berth=${BERTH:-target/release/berth}
[ -x "$berth" ] || { echo "build first: scripts/build-release.sh" >&2; exit 1; }
./scripts/fixtures.sh target/fixtures >/dev/null
fx=target/fixtures/busybox-rootfs.tar

root=$(mktemp -d /tmp/berth-bench.XXXXXX)
sock=$root/b.sock
"$berth" daemon --host "unix://$sock" --data-root "$root/data" --exec-root "$root/run" \
  --log-level warn --config-file "$root/daemon.json" >"$root/daemon.log" 2>&1 &
dpid=$!
cleanup() {
  kill "$dpid" 2>/dev/null || true
  wait "$dpid" 2>/dev/null || true
  grep " $root" /proc/self/mountinfo | awk '{print $5}' | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
B() { BERTH_NO_AUTOSTART=1 "$berth" -H "unix://$sock" "$@"; }
B import -c 'CMD ["sh"]' "$fx" busybox:latest >/dev/null

src=$root/tree
for d in $(seq 10); do
  mkdir -p "$src/d$d"
  for f in $(seq $((mb / 10))); do
    head -c 1048576 /dev/urandom >"$src/d$d/f$f"
  done
done
sync
B create --name cpb busybox true >/dev/null
ms() { date +%s%N; }
t0=$(ms); B cp -q "$src" cpb:/tree; t1=$(ms)
mkdir "$root/out"
t2=$(ms); B cp -q cpb:/tree "$root/out/tree"; t3=$(ms)
cmp -s "$src/d1/f1" "$root/out/tree/d1/f1" || { echo "copy differs" >&2; exit 1; }

# COMMIT_MB of incompressible changes (10 MB files), written by the
# container itself so they sit in its upper dir as a real workload's would.
B run --name cmt busybox sh -c \
  "for i in \$(seq $((cmb / 10))); do dd if=/dev/urandom of=/c\$i bs=1M count=10 2>/dev/null; done" >/dev/null
sync
t4=$(ms); B commit cmt bench/commit:latest >/dev/null; t5=$(ms)

for i in $(seq "$n"); do
  curl -sf --unix-socket "$sock" -X POST "http://d/containers/create" \
    -H 'Content-Type: application/json' -d '{"Image":"busybox","Cmd":["true"]}' >/dev/null
done
best=999999
for _ in $(seq 10); do
  a=$(ms); curl -sf --unix-socket "$sock" "http://d/system/df" >/dev/null; b=$(ms)
  d=$(((b - a) / 1000000)); [ "$d" -lt "$best" ] && best=$d
done

printf '%-34s %10s\n' "measure" "berth"
printf '%-34s %8s ms\n' "cp ${mb} MB tree into container" $(((t1 - t0) / 1000000))
printf '%-34s %8s ms\n' "cp ${mb} MB tree out of container" $(((t3 - t2) / 1000000))
printf '%-34s %8s ms\n' "commit of ${cmb} MB of changes" $(((t5 - t4) / 1000000))
printf '%-34s %8s ms\n' "system df, $((n + 2)) containers (best)" "$best"
