#!/usr/bin/env bash
# Log throughput (issue 4): a container writes 200 MB to stdout (busybox
# `head -c 150000000 /dev/zero | base64`: 2.6 M lines of 76 characters),
# attached (`run`) and detached (`run -d` + `wait`), then `logs` reads it
# all back to /dev/null. Prints a table: time, log bytes on disk against
# the output, and the daemon's and the shim's peak memory while it runs;
# docker and podman rows when a working one is installed.
#
#   bench/logs.sh            (needs root and a release build)
#
# The bench containers keep all of their log (`max-size=1g`), as Docker's
# json-file does by default, so that every byte can be read back and the
# sizes compare; one more row shows berth's default rotation (20m x 5).
set -euo pipefail
cd "$(dirname "$0")/.."
berth=${BERTH:-target/release/berth}
[ -x "$berth" ] || { echo "build first: scripts/build-release.sh" >&2; exit 1; }
./scripts/fixtures.sh target/fixtures >/dev/null

gen='head -c 150000000 /dev/zero | base64'
out_bytes=202631579 # 200,000,000 characters and 2,631,579 newlines

root=$(mktemp -d /tmp/berth-logbench.XXXXXX)
sock=$root/b.sock
"$berth" daemon --host "unix://$sock" --data-root "$root/data" --exec-root "$root/run" --log-level warn \
  --config-file "$root/daemon.json" >"$root/daemon.log" 2>&1 &
dpid=$!
cleanup() {
  rm -f "$root/sampling"
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
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

# Peak memory while a command runs: the daemon's RSS (sampled) and the
# shims' high-water mark (VmHWM, exact), in MB, into $root/mem.
sample_start() {
  touch "$root/sampling"
  (
    dmax=0 smax=0
    while [ -e "$root/sampling" ]; do
      r=$(awk '/^VmRSS/ {print $2}' "/proc/$dpid/status" 2>/dev/null || echo 0)
      [ "${r:-0}" -gt "$dmax" ] && dmax=$r
      for p in $(pgrep -f "$root/run/c/" 2>/dev/null); do
        s=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        [ "${s:-0}" -gt "$smax" ] && smax=$s
      done
      sleep 0.05
    done
    echo "$((dmax / 1024)) $((smax / 1024))" >"$root/mem"
  ) &
  sampler=$!
}
sample_stop() {
  rm -f "$root/sampling"
  wait "$sampler" 2>/dev/null || true
  read -r dm sm <"$root/mem"
}

# Bytes of a container's log files on disk (not the lock file).
log_bytes() {
  local id dir
  id=$(B inspect -f '{{.Id}}' "$1")
  dir=$root/data/containers/$id
  find "$dir" -maxdepth 2 -type f \( -name "$id-json.log*" -o -path "*/local-logs/container.log*" \) ! -name '*.lock' \
    -printf '%s\n' | awk '{s += $1} END {print s + 0}'
}

printf '%-40s %8s %12s %8s %10s %10s\n' "measure (200 MB to stdout)" "time s" "log bytes" "log/out" "daemon MB" "shim MB"
row() { printf '%-40s %8s %12s %8s %10s %10s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$out_bytes" 'BEGIN { printf "%.2fx", a / b }'; }

# The bare pipe, in a container, output dropped inside it.
t0=$(now)
B run --rm busybox sh -c "$gen >/dev/null"
t1=$(now)
row "bare pipe (in a container, to /dev/null)" "$(secs "$t0" "$t1")" "-" "-" "-" "-"

run_attached() { # name, driver opts...
  local name=$1
  shift
  sample_start
  local t0 t1
  t0=$(now)
  B run --name "$name" "$@" busybox sh -c "$gen" >/dev/null
  t1=$(now)
  sample_stop
  local lb
  lb=$(log_bytes "$name")
  row "berth run, attached ($label)" "$(secs "$t0" "$t1")" "$lb" "$(ratio "$lb")" "$dm" "$sm"
}

run_detached() {
  local name=$1
  shift
  sample_start
  local t0 t1
  t0=$(now)
  B run -d --name "$name" "$@" busybox sh -c "$gen" >/dev/null
  B wait "$name" >/dev/null
  t1=$(now)
  sample_stop
  local lb
  lb=$(log_bytes "$name")
  row "berth run -d + wait ($label)" "$(secs "$t0" "$t1")" "$lb" "$(ratio "$lb")" "$dm" "$sm"
}

read_back() {
  local name=$1
  sample_start
  local t0 t1
  t0=$(now)
  B logs "$name" >/dev/null
  t1=$(now)
  sample_stop
  local n
  n=$(B logs "$name" | wc -c)
  local note=""
  [ "$n" = "$out_bytes" ] || note=" (read $n bytes!)"
  row "berth logs > /dev/null ($label)$note" "$(secs "$t0" "$t1")" "-" "-" "$dm" "-"
}

label=json-file
run_attached att-json --log-opt max-size=1g
run_detached det-json --log-opt max-size=1g
read_back det-json
label=local
run_attached att-local --log-driver local --log-opt max-size=1g
run_detached det-local --log-driver local --log-opt max-size=1g
read_back det-local
label="json-file, default 20m x 5"
run_detached det-default
B rm -f att-json det-json att-local det-local det-default >/dev/null

# Peers, when present and working on this machine.
for peer in docker podman; do
  if command -v "$peer" >/dev/null && "$peer" info >/dev/null 2>&1; then
    t0=$(now)
    "$peer" run --name "bench-logs-$$" busybox sh -c "$gen" >/dev/null
    t1=$(now)
    row "$peer run, attached" "$(secs "$t0" "$t1")" "-" "-" "-" "-"
    t0=$(now)
    "$peer" logs "bench-logs-$$" >/dev/null
    t1=$(now)
    row "$peer logs > /dev/null" "$(secs "$t0" "$t1")" "-" "-" "-" "-"
    "$peer" rm -f "bench-logs-$$" >/dev/null
  else
    row "$peer" "(none working here)" "" "" "" ""
  fi
done
