#!/bin/sh
# Confirm: the guard stands down; then record, rotate backups (keep N), and remove the content-addressed
# files kaudit itself created (listed in STATE/files) that no manifest or backup refers to.
set -u
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"  # kaudit:include
# shellcheck source=lib/journal.sh
. "$(dirname "$0")/lib/journal.sh"  # kaudit:include
# shellcheck source=lib/exit-codes.sh
. "$(dirname "$0")/lib/exit-codes.sh"  # kaudit:include
state=$1 manifest=$2 id=$3 audit=$4 record=$5 keep=$6 new=$7
exec 8>>"$state/guard.lock"
flock -w 60 8 || { echo "the guard lock is held for more than 60 s" >&2; exit 1; }
touch -- "$state/confirm.$id"
stop_guard "$state"
rm -f -- "$state/confirm.$id"
if journal_has "$state/journal" "$id" guard-restored && [ "$(sha "$manifest")" != "$new" ]; then
  echo "guard-restored"; exit "$EXIT_GUARD_RESTORED"
fi
journal_append "$state/journal" "$record"
# shellcheck disable=SC2012  # backup ids are kaudit's own (timestamp-op-hex): no odd characters
ls -1d "$state"/backups/2* 2>/dev/null | sort -r | tail -n +$((keep + 1)) \
  | while IFS= read -r old; do rm -rf -- "$old"; done
if [ -d "$audit" ]; then
  refs=$(cat -- "$manifest" "$state"/backups/*/manifest 2>/dev/null; cat -- "$state"/backups/*/files/*.path 2>/dev/null)
  for f in "$audit"/policy-$h12.yaml "$audit"/webhook-$h12.kubeconfig; do
    [ -e "$f" ] || continue
    grep -qxF -- "$f" "$state/files" 2>/dev/null || continue  # not one kaudit created: never removed
    case "$refs" in *"$f"*) ;; *) rm -f -- "$f"; echo "removed=$f" ;; esac
  done
  if [ -f "$state/files" ]; then  # forget what is gone
    t=$(mktemp -- "$state/.files.XXXXXX") \
      && while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done < "$state/files" | sort -u > "$t" \
      && mv -f -- "$t" "$state/files"
  fi
fi
echo confirmed
