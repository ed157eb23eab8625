#!/usr/bin/env bash
# Pull and push of a big image through the daemon, against `berth registry
# serve` on 127.0.0.1. Prints a table: berth, and docker / podman / skopeo
# rows when they are installed (docker's row needs dockerd, Debian's
# docker.io: a private one is started on a temporary root, see
# bench/lib.sh; podman needs its service; n/a otherwise).
#
#   bench/pull.sh [ROUNDS]     (default 3; the median is shown)
#
# The image is scripts/fixtures.sh's big-image.tar (BIG_MB, default 200 MB
# of random data in 3 layers + busybox). Measured per round:
#   push  `berth push` of the loaded image (the first push of a round also
#         compresses its layers once; that is included)
#   pull  `berth pull` into an empty data root, unpack included
# docker's rows are measured the same way: `docker load`, then push; pull
# into a fresh dockerd.
# Needs a release build: scripts/build-release.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
berth=${BERTH:-target/release/berth}
[ -x "$berth" ] || { echo "build first: scripts/build-release.sh" >&2; exit 1; }
export BIG_MB=${BIG_MB:-200}
fxdir=target/fixtures-$BIG_MB
./scripts/fixtures.sh "$fxdir" >/dev/null
fx=$fxdir/big-image.tar

. bench/lib.sh
work=$(mktemp -d /tmp/berth-pullbench.XXXXXX)
pids=()
cleanup() {
  stop_dockerd
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for m in $(awk -v w="$work" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
median() { python3 -c "import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(f'{statistics.median(v):.2f}')" "$@"; }

# Starts a registry; sets $addr. (Not in a $(…): the server would hold
# the substitution's pipe open, and its pid would be lost.)
start_registry() {
  local root=$1 log=$2
  "$berth" registry serve --addr 127.0.0.1:0 --root "$root" --log-level warn >/dev/null 2>"$log" &
  pids+=($!)
  for _ in $(seq 200); do
    grep -q "listening on" "$log" 2>/dev/null && break
    sleep 0.05
  done
  addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$log" | head -1)
}

start_daemon_at() {
  local dir=$1
  mkdir -p "$dir"
  echo '{}' >"$dir/daemon.json"
  "$berth" daemon --host "unix://$dir/s.sock" --data-root "$dir/data" --exec-root "$dir/run" \
    --config-file "$dir/daemon.json" --log-level warn >"$dir/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 400); do
    "$berth" -H "unix://$dir/s.sock" version >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "daemon did not start: $(cat "$dir/log")" >&2
  exit 1
}

b() { BERTH_NO_AUTOSTART=1 "$berth" -H "unix://$1/s.sock" "${@:2}"; }

push_t=(); pull_t=()
for r in $(seq "$rounds"); do
  start_registry "$work/reg$r" "$work/reg$r.log"
  d1=$work/push$r d2=$work/pull$r
  start_daemon_at "$d1"
  b "$d1" load -q -i "$fx" >/dev/null
  b "$d1" tag berth-fixture/big:latest "$addr/bench/big:v1"
  t=$(now); b "$d1" push -q "$addr/bench/big:v1" >/dev/null; push_t+=("$(since "$t")")
  start_daemon_at "$d2"
  t=$(now); b "$d2" pull -q "$addr/bench/big:v1" >/dev/null; pull_t+=("$(since "$t")")
done

printf '%-8s %10s %10s\n' tool "push (s)" "pull (s)"
printf '%-8s %10s %10s\n' berth "$(median "${push_t[@]}")" "$(median "${pull_t[@]}")"
if command -v docker >/dev/null && start_dockerd; then
  stop_dockerd
  dpush_t=(); dpull_t=()
  for r in $(seq "$rounds"); do
    start_registry "$work/dreg$r" "$work/dreg$r.log"
    start_dockerd
    DK load -q -i "$fx" >/dev/null
    DK tag berth-fixture/big:latest "$addr/bench/big:v1"
    t=$(now); DK push "$addr/bench/big:v1" >/dev/null; dpush_t+=("$(since "$t")")
    stop_dockerd
    start_dockerd
    t=$(now); DK pull -q "$addr/bench/big:v1" >/dev/null; dpull_t+=("$(since "$t")")
    stop_dockerd
  done
  printf '%-8s %10s %10s\n' docker "$(median "${dpush_t[@]}")" "$(median "${dpull_t[@]}")"
else
  printf '%-8s %10s %10s\n' docker n/a n/a
fi
if command -v podman >/dev/null && podman info >/dev/null 2>&1; then
  echo "podman: installed, but measuring it is not scripted here"
else
  printf '%-8s %10s %10s\n' podman n/a n/a
fi
if command -v skopeo >/dev/null; then
  # skopeo moves blobs only (no daemon, no unpack): a floor for the wire.
  start_registry "$work/regsk" "$work/regsk.log"
  t=$(now); skopeo --insecure-policy copy --dest-tls-verify=false "docker-archive:$fx" "docker://$addr/bench/big:v1" >/dev/null; sp=$(since "$t")
  t=$(now); skopeo --insecure-policy copy --src-tls-verify=false "docker://$addr/bench/big:v1" "dir:$work/skdir" >/dev/null; sl=$(since "$t")
  printf '%-8s %10s %10s   (blobs only, no unpack)\n' skopeo "$sp" "$sl"
fi
