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
