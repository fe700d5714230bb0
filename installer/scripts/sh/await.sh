#!/bin/sh
# Wait on the node for a kube-apiserver started after `since` (seconds since boot) that carries the
# expected argv tokens (mode present: each token after the named parameters; absent: no --audit-* flag
# at all) and answers the probe, then stays up `settle` tenths of a second. With a verify URL, a
# request whose event (marked) must reach the log during the settle time. On timeout: the API
# server's last log lines.
set -u
# shellcheck source=lib/probe.sh
. "$(dirname "$0")/lib/probe.sh"  # kaudit:include
# shellcheck source=lib/apiserver-procs.sh
. "$(dirname "$0")/lib/apiserver-procs.sh"  # kaudit:include
since=$1 timeout=$2 url=$3 kc=$4 mode=$5 settle=$6 vurl=$7 marker=$8 vlog=$9
shift 9
clk=$(getconf CLK_TCK 2>/dev/null || echo 100)
start=$(date +%s)
last="" said=$start
found_in_log() { [ -f "$vlog" ] && grep -q -- "$marker" "$vlog"; }
while :; do
  found=""
  for pt in $(apiserver_procs | tr ' ' ':'); do
    pid=${pt%%:*} ticks=${pt#*:}
    # One argument per line: a newline inside an argument becomes a space first, so that a flag value
    # holding "\n--audit-..." is not read as an audit flag of its own.
    c=$(tr '\n\0' ' \n' < "/proc/$pid/cmdline" 2>/dev/null) || continue
    st=$(awk -v t="$ticks" -v c="$clk" 'BEGIN { printf "%.2f", t / c }')
    # Started after the change: both in seconds since boot, to the kernel's tick.
    awk -v a="$st" -v b="$since" 'BEGIN { exit !(a + 0.02 >= b) }' || continue
    ok=1
    if [ "$mode" = absent ]; then
      printf '%s\n' "$c" | grep -q '^--audit-' && ok=0
    else
      for tok in "$@"; do printf '%s\n' "$c" | grep -qxF -- "$tok" || { ok=0; break; }; done
    fi
    [ $ok = 1 ] && found="$pid $st"
  done
  if [ -n "$found" ]; then
    r=$(probe "$url" "$kc")
    if [ "${r%% *}" = 200 ]; then
      at=$(date +%s.%N) pid=${found%% *} i=0 seen=""
      [ -n "$vurl" ] && probe "$vurl" "$kc" verify >/dev/null
      while [ $i -lt "$settle" ] && [ -d "/proc/$pid" ]; do
        [ -n "$vurl" ] && [ -z "$seen" ] && found_in_log && seen=1
        sleep 0.1; i=$((i + 1))
      done
      if [ -d "/proc/$pid" ]; then
        if [ -n "$vurl" ]; then
          i=0
          while [ -z "$seen" ] && [ $i -lt 25 ]; do
            if found_in_log; then seen=1; else sleep 0.1; i=$((i + 1)); fi
          done
          if [ -n "$seen" ]; then echo verify=found; else echo verify=missing; fi
        fi
        echo "ready=$found $at ${r#* }"; exit 0
      fi
      state="new instance $pid exited right after it became ready"
    else
      state="new instance ${found%% *} up, $url answers ${r%% *}"
    fi
  else
    state="waiting for a new kube-apiserver instance"
  fi
  # A line when the state changes, and the same line again each second (kaudit shows the time waited).
  now=$(date +%s)
  if [ "$state" != "$last" ] || [ "$now" -gt "$said" ]; then echo "progress=$state"; last=$state said=$now; fi
  if [ $(( now - start )) -ge "$timeout" ]; then
    echo "timeout=$state"
    # The API server's last words: from the runtime when crictl is there, else the kubelet's log file.
    lines=""
    if command -v crictl >/dev/null 2>&1; then
      t=""; command -v timeout >/dev/null 2>&1 && t="timeout 10"  # an unreachable runtime must not hang us
      id=$($t crictl ps -a -l --name '^kube-apiserver$' -q 2>/dev/null | head -n 1)
      [ -n "$id" ] && lines=$($t crictl logs --tail 5 "$id" 2>&1)
    fi
    if [ -z "$lines" ]; then
      # shellcheck disable=SC2012  # the newest file by mtime; pod log names are the kubelet's
      log=$(ls -t /var/log/pods/*kube-apiserver*/kube-apiserver/*.log 2>/dev/null | head -n 1)
      [ -n "$log" ] && lines=$(tail -n 5 -- "$log")
    fi
    [ -n "$lines" ] && printf '%s\n' "$lines" | tail -n 5 | sed 's/^/log=/'
    exit 1
  fi
  sleep 0.1
done
