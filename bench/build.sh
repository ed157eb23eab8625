#!/usr/bin/env bash
# Build speed (issue 8): the 6-step Dockerfile of the issue (FROM busybox,
# RUN, COPY, ENV, WORKDIR, CMD), built cold (nothing cached), then rebuilt
# with nothing changed (every step from the cache), then after one file of
# the context changed (from its COPY on). Median of N runs, in ms; a
# docker row (legacy builder) when a docker daemon answers.
# Then a 100 MB context (one file of random bytes, COPY'd): cold and cached
# build times (median of BIG_RUNS, default 3) and the client's peak RSS,
# which stays flat as the context is streamed, never held.
#
#   bench/build.sh [N]        (needs root and a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
berth=${BERTH:-target/release/berth}
[ -x "$berth" ] || { echo "build first: scripts/build-release.sh" >&2; exit 1; }
./scripts/fixtures.sh target/fixtures >/dev/null

root=$(mktemp -d /tmp/berth-buildbench.XXXXXX)
sock=$root/b.sock
"$berth" daemon --host "unix://$sock" --data-root "$root/data" --exec-root "$root/run" --log-level warn \
  >"$root/daemon.log" 2>&1 &
dpid=$!
cleanup() {
  kill "$dpid" 2>/dev/null || true
  wait "$dpid" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
B() { BERTH_NO_AUTOSTART=1 "$berth" -H "unix://$sock" "$@"; }
B import -c 'CMD ["sh"]' target/fixtures/busybox-rootfs.tar busybox:latest >/dev/null

ctx=$root/ctx
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox
RUN echo built > /built.txt
COPY app.txt /app/app.txt
ENV MODE=bench
WORKDIR /app
CMD ["cat", "/app/app.txt"]
DF
echo v0 >"$ctx/app.txt"

ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
time_one() { # label, then the command
  local a b
  a=$(date +%s%N)
  "$@" >/dev/null
  b=$(date +%s%N)
  ms "$a" "$b"
}

cold=() warm=() changed=()
for i in $(seq "$runs"); do
  cold+=("$(time_one B build --no-cache -t bench "$ctx")")
  warm+=("$(time_one B build -t bench "$ctx")")
  echo "v$i" >"$ctx/app.txt"
  changed+=("$(time_one B build -t bench "$ctx")")
done
printf '%-28s %10s\n' "berth build ($runs runs)" "median ms"
printf '%-28s %10s\n' "cold (--no-cache)" "$(printf '%s\n' "${cold[@]}" | median)"
printf '%-28s %10s\n' "no change (all cached)" "$(printf '%s\n' "${warm[@]}" | median)"
printf '%-28s %10s\n' "one file changed" "$(printf '%s\n' "${changed[@]}" | median)"

if docker version >/dev/null 2>&1; then
  dcold=() dwarm=()
  for _ in $(seq "$runs"); do
    dcold+=("$(time_one env DOCKER_BUILDKIT=0 docker build --no-cache -t bench "$ctx")")
    dwarm+=("$(time_one env DOCKER_BUILDKIT=0 docker build -t bench "$ctx")")
  done
  printf '%-28s %10s\n' "docker cold" "$(printf '%s\n' "${dcold[@]}" | median)"
  printf '%-28s %10s\n' "docker no change" "$(printf '%s\n' "${dwarm[@]}" | median)"
fi

# A 100 MB context: sent as a stream, unpacked and hashed once by the
# daemon; the cached rebuild copies nothing.
big=$root/big
mkdir -p "$big"
printf 'FROM busybox\nCOPY big.bin /big.bin\nCMD ["true"]\n' >"$big/Dockerfile"
head -c 100000000 /dev/urandom >"$big/big.bin"
# Peak RSS in kB of one client run: GNU time when present, else sampled.
peak_rss() {
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f %M -o "$root/rss" env BERTH_NO_AUTOSTART=1 "$berth" -H "unix://$sock" "$@" >/dev/null
    tail -n 1 "$root/rss"
  else
    BERTH_NO_AUTOSTART=1 "$berth" -H "unix://$sock" "$@" >/dev/null &
    local pid=$! peak=0 v
    while kill -0 "$pid" 2>/dev/null; do
      v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
      [ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
      sleep 0.01
    done
    wait "$pid"
    echo "$peak"
  fi
}
bigruns=${BIG_RUNS:-3}
bcold=() bwarm=()
for _ in $(seq "$bigruns"); do
  bcold+=("$(time_one B build --no-cache -t big "$big")")
  bwarm+=("$(time_one B build -t big "$big")")
done
rss=$(peak_rss build -t big "$big")
printf '%-28s %10s\n' "100 MB context ($bigruns runs)" "median ms"
printf '%-28s %10s\n' "cold (--no-cache)" "$(printf '%s\n' "${bcold[@]}" | median)"
printf '%-28s %10s\n' "no change (all cached)" "$(printf '%s\n' "${bwarm[@]}" | median)"
printf '%-28s %10s\n' "client peak RSS (MB)" "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')"
