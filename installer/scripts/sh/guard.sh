#!/bin/sh
# The guard (the idea of `netplan try`): restores the backup unless kaudit confirms in time.
set -u
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"  # kaudit:include
# shellcheck source=lib/journal.sh
. "$(dirname "$0")/lib/journal.sh"  # kaudit:include
state=$1 manifest=$2 id=$3 new=$4 secs=$5
end=$(( $(date +%s) + secs ))
while [ "$(date +%s)" -lt "$end" ]; do
  [ -e "$state/confirm.$id" ] && { rm -f -- "$state/confirm.$id" "$state/guard.pid"; exit 0; }
  sleep 0.5
done
# Time is up. Under the guard lock (confirm takes it too), so a late confirmation either lands
# before this restore (and stands the guard down) or sees that the guard has restored.
exec 8>>"$state/guard.lock"
flock 8
[ -e "$state/confirm.$id" ] && { rm -f -- "$state/confirm.$id" "$state/guard.pid"; exit 0; }
# The restore is journalled only once it happened. A failed one (a full filesystem, say) is journalled
# as such and retried every 5 s for 10 minutes, the guard lock released in between.
tries=0 said=0
while [ "$(sha "$manifest")" = "$new" ]; do
  ok=1
  for f in "$state/backups/$id"/files/*; do
    case "$f" in *.path) continue ;; esac
    [ -e "$f" ] || continue
    dest=$(cat -- "$f.path"); [ -e "$dest" ] || put "$f" "$dest" 600 || ok=0
  done
  put "$state/backups/$id/manifest" "$manifest" 600 || ok=0
  if [ "$ok" = 1 ]; then
    journal_add "$state/journal" "$id" guard-restored
    break
  fi
  [ "$said" = 1 ] || journal_add "$state/journal" "$id" guard-restore-failed
  said=1 tries=$((tries + 1))
  [ "$tries" -lt 120 ] || break
  flock -u 8; sleep 5; flock 8
  [ -e "$state/confirm.$id" ] && { rm -f -- "$state/confirm.$id" "$state/guard.pid"; exit 0; }
done
rm -f -- "$state/guard.pid"
