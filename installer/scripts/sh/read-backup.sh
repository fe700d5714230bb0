#!/bin/sh
# Read what a backup holds: manifest and files, as lines "kind<TAB>path<TAB>base64 data".
# shellcheck source=lib/exit-codes.sh
. "$(dirname "$0")/lib/exit-codes.sh"  # kaudit:include
state=$1 id=$2
b="$state/backups/$id"
[ -f "$b/manifest" ] || { echo "no backup $id in $state/backups" >&2; exit "$EXIT_NO_BACKUP"; }
printf 'manifest\t-\t%s\n' "$(base64 < "$b/manifest" | tr -d '\n')"
for f in "$b"/files/*; do
  case "$f" in *.path) continue ;; esac
  [ -e "$f" ] || continue
  printf 'file\t%s\t%s\n' "$(cat -- "$f.path")" "$(base64 < "$f" | tr -d '\n')"
done
