#!/bin/sh
# List backups: one line per backup, "ID<TAB>base64(meta.json)<TAB>base64(the paths of the files it holds,
# one a line)": the policy and webhook config the backup's manifest names.

state=$1
for b in "$state"/backups/*; do
  [ -d "$b" ] || continue
  paths=""
  for p in "$b"/files/*.path; do
    [ -f "$p" ] && paths="$paths$(cat -- "$p")
"
  done
  printf '%s\t%s\t%s\n' "$(basename -- "$b")" "$(base64 < "$b/meta.json" 2>/dev/null | tr -d '\n')" \
    "$(printf %s "$paths" | base64 | tr -d '\n')"
done
