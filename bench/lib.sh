# Shared by the bench scripts (sourced, not run).

# ms timings of a command run $runs times; prints "min median".
measure() {
  local ts=()
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    ts+=($(( (t1 - t0) / 1000 )))
  done
  printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f %.1f\n", a[1]/1000, a[int((NR+1)/2)]/1000}'
}

# A private daemon of $berth on a fresh temporary root: sets root, sock and
# dpid and waits for the socket. Call it from the script's own shell (its
# `wait` needs the daemon as a child), after `trap cleanup EXIT`, and call
# stop_daemon from cleanup.
start_daemon() {
  root=$(mktemp -d /tmp/berth-bench.XXXXXX)
  sock=$root/b.sock
  "$berth" daemon --host "unix://$sock" --data-root "$root/data" --exec-root "$root/run" \
    --log-level warn --config-file "$root/daemon.json" >"$root/daemon.log" 2>&1 &
  dpid=$!
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
}

stop_daemon() {
  [ -n "${dpid:-}" ] && { kill "$dpid" 2>/dev/null || true; wait "$dpid" 2>/dev/null || true; }
  [ -n "${root:-}" ] && rm -rf "$root"
  return 0
}

# Our CLI, the docker CLI and curl on that daemon's socket.
B() { BERTH_NO_AUTOSTART=1 "$berth" -H "unix://$sock" "$@"; }
D() { DOCKER_HOST="unix://$sock" DOCKER_CONFIG="$root/dc" docker "$@"; }
api() { curl -sf --unix-socket "$sock" -X "$1" "http://d$2" -H 'Content-Type: application/json' ${3:+-d "$3"}; }

# Background jobs run a few at a time: `batch+=($!)` after each, `flush`
# every few (it names them: a bare `wait` would wait for the daemon too).
batch=()
flush() { [ ${#batch[@]} -eq 0 ] || wait "${batch[@]}"; batch=(); }

# A private dockerd (Debian's docker.io), for docker's figures beside ours:
# a fresh root, its own socket, no bridge and no iptables rules, so it
# touches nothing outside that root. Sets droot, dsock and dockerd_pid;
# returns 1 when dockerd is not installed or does not come up. Call
# stop_dockerd from cleanup.
start_dockerd() {
  command -v dockerd >/dev/null || return 1
  droot=$(mktemp -d /tmp/berth-bench-docker.XXXXXX)
  dsock=$droot/d.sock
  echo '{}' >"$droot/daemon.json"
  dockerd --data-root "$droot/data" --exec-root "$droot/exec" --pidfile "$droot/d.pid" \
    --config-file "$droot/daemon.json" --host "unix://$dsock" \
    --iptables=false --ip6tables=false --bridge=none >"$droot/log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 300); do
    DK version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "dockerd did not start: $(tail -3 "$droot/log")" >&2
  stop_dockerd
  return 1
}

stop_dockerd() {
  [ -n "${dockerd_pid:-}" ] && { kill "$dockerd_pid" 2>/dev/null || true; wait "$dockerd_pid" 2>/dev/null || true; }
  dockerd_pid=
  if [ -n "${droot:-}" ]; then
    local m
    for m in $(awk -v r="$droot" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
      umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$droot"
    droot=
  fi
  return 0
}

# The docker CLI on that dockerd.
DK() { DOCKER_HOST="unix://$dsock" DOCKER_CONFIG="$droot/dc" docker "$@"; }
