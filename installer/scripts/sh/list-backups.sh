#!/bin/sh
# List backups: one line per backup, "ID<TAB>base64(meta.json)".

state=$1
for b in "$state"/backups/*; do
  [ -d "$b" ] || continue
  printf '%s\t%s\n' "$(basename -- "$b")" "$(base64 < "$b/meta.json" 2>/dev/null | tr -d '\n')"
done
