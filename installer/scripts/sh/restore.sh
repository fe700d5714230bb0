#!/bin/sh
# Restore a backup's manifest and files (automatic rollback, or `kaudit rollback`'s undo).
set -u
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"  # kaudit:include
# shellcheck source=lib/journal.sh
. "$(dirname "$0")/lib/journal.sh"  # kaudit:include
# shellcheck source=lib/exit-codes.sh
. "$(dirname "$0")/lib/exit-codes.sh"  # kaudit:include
state=$1 manifest=$2 id=$3 record=$4
b="$state/backups/$id"
[ -f "$b/manifest" ] || { echo "no backup $id"; exit "$EXIT_NO_BACKUP"; }
for f in "$b"/files/*; do
  case "$f" in *.path) continue ;; esac
  [ -e "$f" ] || continue
  dest=$(cat -- "$f.path")
  [ "$(sha "$dest")" = "$(sha "$f")" ] || put "$f" "$dest" 600 || exit 1
done
at="$(now) $(up)"
put "$b/manifest" "$manifest" 600 || exit 1
stop_guard "$state"
journal_append "$state/journal" "$record"
echo "restored=$at"
