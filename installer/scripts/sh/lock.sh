#!/bin/sh
# The lock: held by this process for as long as kaudit's connection lives (stdin open).
# mode "break": first end a holder left behind by something else.
set -u
# shellcheck source=lib/exit-codes.sh
. "$(dirname "$0")/lib/exit-codes.sh"  # kaudit:include
lock=$1 holder=$2 mode=$3
mkdir -p -- "$(dirname -- "$lock")" && chmod 700 -- "$(dirname -- "$lock")"
# A FIFO here would block the open below for ever; a directory would fail it silently.
if [ -e "$lock" ] || [ -L "$lock" ]; then
  { [ -f "$lock" ] && [ ! -L "$lock" ]; } || { echo "bad $lock is not a regular file: remove it"; exit "$EXIT_UNSAFE"; }
fi
if [ "$mode" = break ]; then
  for p in /proc/[0-9]*; do
    for fd in "$p"/fd/*; do
      [ "$(readlink "$fd" 2>/dev/null)" = "$lock" ] && [ "${p#/proc/}" != $$ ] && kill "${p#/proc/}" 2>/dev/null
    done
  done
  sleep 0.2
fi
exec 9>>"$lock"
if ! flock -n 9; then
  echo "held $(cat -- "$lock.holder" 2>/dev/null || echo 'by an unknown process')"
  exit "$EXIT_LOCK_HELD"
fi
printf '%s (pid %s)\n' "$holder" "$$" > "$lock.holder"
echo locked
cat >/dev/null 9>&-
rm -f -- "$lock.holder"
