#!/bin/sh
# Apply a change in one command: journal entry, backup, policy/webhook upload, the guard armed, the
# manifest written after re-checking it is unchanged. A failure before the write undoes its own traces.
# After the named parameters: the files to back up. stdin lines (base64): new manifest, policy,
# webhook config, journal record, backup meta; `sums` holds the sha256 of each, in that order, and
# nothing is changed unless every part arrived whole (stdin is the one channel data comes on).
set -eu
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"  # kaudit:include
# shellcheck source=lib/journal.sh
. "$(dirname "$0")/lib/journal.sh"  # kaudit:include
# shellcheck source=lib/exit-codes.sh
. "$(dirname "$0")/lib/exit-codes.sh"  # kaudit:include
# shellcheck source=lib/guard-start.sh
. "$(dirname "$0")/lib/guard-start.sh"  # kaudit:include
trap '' HUP PIPE
state=$1 manifest=$2 expect=$3 id=$4 pin=$5 policy=$6 webhook=$7 guard_secs=$8 guard_script=$9 logdir=${10} sums=${11}
shift 11
umask 077
# Progress lines must not stop the change half-way when kaudit's connection is gone (EPIPE).
step() { echo "step=$1" 2>/dev/null || :; }
# Every directory this change writes into, and the log directory the API server will write to, must
# be root's alone: another user could plant links where kaudit writes, or read the audit events.
for p in "$state" "$(dirname -- "$manifest")" "$manifest" ${policy:+"$(dirname -- "$policy")"} \
    ${webhook:+"$(dirname -- "$webhook")"} ${logdir:+"$(dirname -- "$logdir")"} ${logdir:+"$logdir"} \
    ${logdir:+"$logdir"/*}; do
  w=$(why_unsafe "$p")
  [ -z "$w" ] || { echo "unsafe=$w"; exit "$EXIT_UNSAFE"; }
done
w=$(state_problem "$state")
[ -z "$w" ] || { echo "unsafe=$w"; exit "$EXIT_UNSAFE"; }
mkdir -p -- "$state"
work=$(mktemp -d "$state/.work.XXXXXX")
# Whatever fails after the journal entry and before the manifest is written undoes this run's
# traces: its backup (and a just-pinned original), uploaded files, the guard; the journal says so.
journaled=0 written=0 pinned=0 up_policy="" up_webhook="" made_logdir=""
undo() {
  rc=$?
  trap - EXIT
  if [ "$journaled" = 1 ] && [ "$written" = 0 ]; then
    stop_guard "$state"
    [ -n "$up_policy" ] && rm -f -- "$up_policy"
    [ -n "$up_webhook" ] && rm -f -- "$up_webhook"
    [ -n "$made_logdir" ] && rmdir -- "$made_logdir" 2>/dev/null
    rm -rf -- "$state/backups/$id" "$state/backups/.$id.tmp" "$state/backups/.original.tmp"
    [ "$pinned" = 1 ] && rm -rf -- "$state/backups/original"
    journal_add "$state/journal" "$id" failed 2>/dev/null || :
  fi
  rm -rf -- "$work"
  exit "$rc"
}
trap undo EXIT
# The files this change creates are kaudit's: STATE/files lists them, and only files listed there are
# ever collected (confirm.sh). A policy an operator placed by hand under a kaudit-like name is not.
remember_uploads() {
  for f in "$up_policy" "$up_webhook"; do
    [ -z "$f" ] || printf '%s\n' "$f" >> "$state/files"
  done
}
chmod 700 -- "$state"
got=""
step receive
for part in manifest policy webhook journal meta; do
  IFS= read -r line || line=""
  # A part that decodes but cannot be stored is a full or failing disk, not a payload problem.
  if ! printf %s "$line" | base64 -d > "$work/$part" 2>/dev/null \
      && printf %s "$line" | base64 -d > /dev/null 2>&1; then
    echo "cannot write in $state ($(df -Pk -- "$state" | awk 'NR == 2 { print $4 }') kB free)" >&2
    exit 1
  fi
  got="$got${got:+ }$(sha "$work/$part")"
done
[ "$got" = "$sums" ] || { echo "payload=incomplete"; exit "$EXIT_PAYLOAD"; }
[ "$(sha "$manifest")" = "$expect" ] || { echo "conflict=$(sha "$manifest")"; exit "$EXIT_CONFLICT"; }
new=$(sha "$work/manifest")
# Content-addressed files must still hold what their names say: a replaced one would be backed up
# (and later restored) as if it were kaudit's.
for f in "$@"; do
  [ -f "$f" ] || continue
  # shellcheck disable=SC2254  # $h12 is a glob on purpose
  case "$(basename -- "$f")" in
    policy-$h12.yaml|webhook-$h12.kubeconfig)
      n=$(basename -- "$f"); n=${n#*-}; n=${n%%.*}
      case "$(sha "$f")" in "$n"*) ;; *) echo "tampered=$f"; exit "$EXIT_TAMPERED" ;; esac ;;
  esac
done
step journal
journaled=1
journal_append "$state/journal" "$(cat -- "$work/journal")"
step backup
mkdir -p -- "$state/backups"
b="$state/backups/.$id.tmp"
rm -rf -- "$b"; mkdir -p -- "$b/files"
[ -f "$manifest" ] && cp -p -- "$manifest" "$b/manifest"
cp -- "$work/meta" "$b/meta.json"
i=0
for f in "$@"; do
  [ -f "$f" ] || continue
  i=$((i + 1)); cp -p -- "$f" "$b/files/$i"; printf %s "$f" > "$b/files/$i.path"
done
sync
mv -- "$b" "$state/backups/$id"
if [ "$pin" = 1 ] && [ ! -e "$state/backups/original" ]; then
  cp -a -- "$state/backups/$id" "$state/backups/.original.tmp" \
    && mv -- "$state/backups/.original.tmp" "$state/backups/original" && pinned=1
fi
sync -- "$state/backups" 2>/dev/null || sync
step upload
if [ -n "$policy" ] && [ "$(sha "$policy")" != "$(sha "$work/policy")" ]; then
  [ -e "$policy" ] || up_policy=$policy
  put "$work/policy" "$policy" 600
fi
if [ -n "$webhook" ] && [ "$(sha "$webhook")" != "$(sha "$work/webhook")" ]; then
  [ -e "$webhook" ] || up_webhook=$webhook
  put "$work/webhook" "$webhook" 600
fi
# The log directory: created 0700 by kaudit (the kubelet's DirectoryOrCreate would make it 0755);
# an existing directory is the operator's and is left as it is.
if [ -n "$logdir" ] && [ ! -e "$logdir" ]; then
  mkdir -p -- "$(dirname -- "$logdir")" && mkdir -m 700 -- "$logdir" && made_logdir=$logdir
fi
if [ "$new" = "$expect" ]; then  # only files were repaired: the manifest stays, nothing restarts
  written=1
  remember_uploads
  echo "applied=$(now) $(up)"
  exit 0
fi
step guard
rm -f -- "$state/confirm.$id"
start_guard "$state" "$id" "$guard_script" "$state" "$manifest" "$id" "$new" "$guard_secs"
step write
d=$(dirname -- "$manifest") bn=$(basename -- "$manifest")
t=$(mktemp -- "$d/.$bn.kaudit-tmp.XXXXXX")  # O_EXCL: never a planted link
cat -- "$work/manifest" > "$t"; chmod 600 -- "$t"; sync -- "$t" 2>/dev/null || sync
# Re-read just before the rename: someone else may have changed it meanwhile.
if [ "$(sha "$manifest")" != "$expect" ]; then
  rm -f -- "$t"; stop_guard "$state"; echo "conflict=$(sha "$manifest")"; exit "$EXIT_CONFLICT"
fi
at="$(now) $(up)"
mv -f -- "$t" "$manifest" || { rm -f -- "$t"; stop_guard "$state"; exit 1; }
written=1
remember_uploads
# When the manifest was written (epoch and seconds since boot), beside its backup: a re-run that
# takes over this change if it is never confirmed waits for an instance started after this.
printf '%s\n' "$at" > "$state/backups/$id/applied" 2>/dev/null || :
sync -- "$d" 2>/dev/null || sync
echo "applied=$at"
