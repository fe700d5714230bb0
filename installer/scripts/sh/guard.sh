#!/bin/sh
# The guard (the idea of `netplan try`): restores the backup unless kaudit confirms in time.
set -u
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"  # kaudit:include
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
if [ "$(sha "$manifest")" = "$new" ]; then
  for f in "$state/backups/$id"/files/*; do
    case "$f" in *.path) continue ;; esac
    [ -e "$f" ] || continue
    dest=$(cat -- "$f.path"); [ -e "$dest" ] || put "$f" "$dest" 600
  done
  put "$state/backups/$id/manifest" "$manifest" 600
  printf '{"id":"%s","state":"guard-restored","at":%s}\n' "$id" "$(now)" >> "$state/journal"
fi
rm -f -- "$state/guard.pid"
