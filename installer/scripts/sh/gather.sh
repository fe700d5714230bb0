#!/bin/sh
# Preflight facts in one round trip: the kubelet's static pod path, the manifest (base64), clocks,
# the lock holder, kaudit's journal, an armed guard, kaudit's content-addressed files (hashed: a
# replaced one is found), free disk, and the kube-apiserver processes. When a node is opened, its
# flavor marks too (targets.connect: the same round trip): pairs "path state-dir" follow the named
# parameters; the host name and each mark path that exists are reported, and the state dir of the
# first one found replaces `state`.
set -u
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"  # kaudit:include
# shellcheck source=lib/journal.sh
. "$(dirname "$0")/lib/journal.sh"  # kaudit:include
# shellcheck source=lib/apiserver-procs.sh
. "$(dirname "$0")/lib/apiserver-procs.sh"  # kaudit:include
default_dir=$1 kubelet_config=$2 manifest_name=$3 state=$4 max_bytes=$5 audit=$6
shift 6
if [ $# -gt 0 ]; then
  echo "hostname=$(cat /etc/hostname 2>/dev/null || hostname 2>/dev/null)"
  marked="" mark=""
  for a in "$@"; do
    if [ -z "$mark" ]; then mark=$a; continue; fi
    if [ -e "$mark" ]; then echo "path=$mark"; [ -n "$marked" ] || marked=$a; fi
    mark=""
  done
  [ -n "$marked" ] && state=$marked
  echo "state_dir=$state"
fi
dir=""
if [ -r "$kubelet_config" ]; then
  dir=$(sed -n 's/^staticPodPath:[[:space:]]*//p' "$kubelet_config" | tr -d "\"' " | head -n 1)
fi
[ -n "$dir" ] || dir=$default_dir
echo "static_pod_path=$dir"
echo "now=$(now)"
echo "btime=$(sed -n 's/^btime //p' /proc/stat)"
echo "clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)"
m="$dir/$manifest_name"
if [ -f "$m" ]; then
  if [ ! -r "$m" ]; then echo "manifest_unreadable=1"
  elif [ "$(wc -c < "$m")" -gt "$max_bytes" ]; then echo "manifest_too_large=$(wc -c < "$m")"
  else echo "manifest=$(base64 < "$m" | tr -d '\n')"; fi
else
  echo "manifest_missing=1"
fi
w=$(state_problem "$state")
if [ -n "$w" ]; then
  echo "state_problem=$w"
elif [ -e "$state/lock" ] && ! flock -n "$state/lock" true 2>/dev/null; then
  echo "lock_holder=$(cat -- "$state/lock.holder" 2>/dev/null || echo 'an unknown process')"
fi
if [ -f "$state/journal" ]; then
  last=$(journal_match "$state/journal" "" confirmed | tail -n 1)
  [ -n "$last" ] && echo "last_confirmed=$(printf %s "$last" | base64 | tr -d '\n')"
  last=$(tail -n 1 "$state/journal")
  [ -n "$last" ] && echo "last_record=$(printf %s "$last" | base64 | tr -d '\n')"
  last=$(journal_match "$state/journal" "" begin | tail -n 1)
  [ -n "$last" ] && echo "last_begin=$(printf %s "$last" | base64 | tr -d '\n')"
fi
g=$(guard_pid "$state") && [ -n "$g" ] && echo "guard_pid=$g"
for f in "$audit"/policy-$h12.yaml "$audit"/webhook-$h12.kubeconfig; do
  [ -f "$f" ] && echo "audit_file=$(sha "$f") $(date -r "$f" +%s) $f"
done
echo "free_kb=$(df -Pk "$dir" 2>/dev/null | awk 'NR==2 {print $4}')"
apiserver_procs | while read -r pid ticks; do
  echo "proc=$pid $ticks $(base64 < "/proc/$pid/cmdline" 2>/dev/null | tr -d '\n')"  # NUL-separated, exact
done
