#!/bin/sh
# Take over an unconfirmed change (its kaudit run lost the node while waiting), run under the node's
# lock by a re-run. Under the guard lock (the guard restores under it, confirm takes it), the change's
# guard is replaced by a fresh one for the same change with this run's time, so a take-over that
# loses the node in turn still leaves a guard to converge it. Nothing is touched unless the guard is
# still waiting for this change and the manifest is still what the change wrote.
# Output: state=pending (then armed=EPOCH, applied=EPOCH UPTIME, before=base64 of the backup's
# manifest), or state=gone (no guard any more: restored=1 when it restored this change), state=other
# (the guard is not this change's), state=nobackup, state=changed (the manifest is not what it wrote).
set -u
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"  # kaudit:include
# shellcheck source=lib/journal.sh
. "$(dirname "$0")/lib/journal.sh"  # kaudit:include
# shellcheck source=lib/guard-start.sh
. "$(dirname "$0")/lib/guard-start.sh"  # kaudit:include
trap '' HUP PIPE
state=$1 manifest=$2 id=$3 new=$4 secs=$5 guard_script=$6
say() { echo "$1" 2>/dev/null || :; }
exec 8>>"$state/guard.lock"
flock -w 60 8 || { say "state=other"; exit 0; }
g=$(guard_pid "$state")
if [ -z "$g" ]; then
  journal_has "$state/journal" "$id" guard-restored && say "restored=1"
  say "state=gone"; exit 0
fi
grep -qF -- "$id" "/proc/$g/cmdline" 2>/dev/null || { say "state=other"; exit 0; }
b="$state/backups/$id"
[ -f "$b/manifest" ] || { say "state=nobackup"; exit 0; }
[ "$(sha "$manifest")" = "$new" ] || { say "state=changed"; exit 0; }
if [ -f "$b/applied" ]; then
  applied=$(cat -- "$b/applied")
else  # written by a kaudit that did not record it: the manifest's mtime, a second early
  applied=$(awk -v u="$(up)" -v n="$(date +%s)" -v m="$(date -r "$manifest" +%s)" \
    'BEGIN { printf "%d %.2f", m, u - (n - m) - 1 }')
fi
kill "$g" 2>/dev/null
rm -f -- "$state/confirm.$id"
start_guard "$state" "$id" "$guard_script" "$state" "$manifest" "$id" "$new" "$secs"
sync -- "$state/guard.pid" 2>/dev/null || :
say "armed=$(now)"
say "applied=$applied"
say "before=$(base64 < "$b/manifest" | tr -d '\n')"
say "state=pending"
