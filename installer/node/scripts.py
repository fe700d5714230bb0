"""The POSIX sh scripts kaudit runs on a node. Each change is ONE remote command that is atomic.

Values arrive as positional parameters (never spliced into the script text) and file contents as
base64 lines on stdin, so nothing a user types can become shell code. Writes follow one rule:
a dotfile temp beside the target (a rename cannot cross mounts; the kubelet ignores dotfiles),
fsync, rename, fsync the directory.
"""

from __future__ import annotations

from installer.node.health import PROBE_FUNCTION

# Shared helpers. `put SRC DEST MODE` installs a file atomically.
COMMON = r"""
put() {
  d=$(dirname -- "$2") b=$(basename -- "$2")
  mkdir -p -- "$d"
  t="$d/.$b.kaudit-tmp.$$"
  cp -- "$1" "$t" && chmod "$3" -- "$t" && chown 0:0 -- "$t" && { sync -- "$t" 2>/dev/null || sync; } \
    && mv -f -- "$t" "$2" && { sync -- "$d" 2>/dev/null || sync; } || { rm -f -- "$t"; return 1; }
}
sha() { if [ -f "$1" ]; then sha256sum < "$1" | cut -d' ' -f1; else echo absent; fi; }
now() { date +%s.%N; }
# Only the names kaudit itself writes are kaudit's: policy-<12 hex>.yaml, webhook-<12 hex>.kubeconfig.
# Anything else in the audit directory (kops' policy-config.yaml, say) is never hashed, moved or deleted.
h12='[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
# Seconds since boot: the clock process start times are measured in (btime is whole seconds only).
up() { cut -d' ' -f1 /proc/uptime; }
"""

# The lock: held by this process for as long as kaudit's connection lives (stdin open).
# $1 lock file, $2 holder description, $3 "break" to end a holder left by something else.
LOCK = r"""
set -u
mkdir -p -- "$(dirname -- "$1")" && chmod 700 -- "$(dirname -- "$1")"
if [ "$3" = break ]; then
  for p in /proc/[0-9]*; do
    for fd in "$p"/fd/*; do
      [ "$(readlink "$fd" 2>/dev/null)" = "$1" ] && [ "${p#/proc/}" != $$ ] && kill "${p#/proc/}" 2>/dev/null
    done
  done
  sleep 0.2
fi
exec 9>>"$1"
if ! flock -n 9; then
  echo "held $(cat -- "$1.holder" 2>/dev/null || echo 'by an unknown process')"
  exit 75
fi
printf '%s (pid %s)\n' "$2" "$$" > "$1.holder"
echo locked
cat >/dev/null 9>&-
rm -f -- "$1.holder"
"""

# The guard (the idea of `netplan try`): restores the backup unless kaudit confirms in time.
# $1 state dir, $2 manifest, $3 backup id, $4 new manifest sha, $5 seconds
GUARD = COMMON + r"""
set -u
state=$1 manifest=$2 id=$3 new=$4 secs=$5
end=$(( $(date +%s) + secs ))
while [ "$(date +%s)" -lt "$end" ]; do
  [ -e "$state/confirm.$id" ] && { rm -f -- "$state/confirm.$id" "$state/guard.pid"; exit 0; }
  sleep 0.5
done
# Time is up. Under the guard lock (CONFIRM takes it too), so a late confirmation either lands
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
"""

# Apply a change in one command. Arguments:
# $1 state dir, $2 manifest path, $3 expected current sha, $4 backup id, $5 pin original (1/0),
# $6 policy dest ('' none), $7 webhook dest ('' none), $8 guard seconds, $9 the guard script,
# $10 audit log directory to create 0700 when missing ('' none), $11.. files to back up.
# stdin lines (base64): new manifest, policy, webhook config, journal record, backup meta.
APPLY = COMMON + r"""
set -eu
trap '' HUP PIPE
state=$1 manifest=$2 expect=$3 id=$4 pin=$5 policy=$6 webhook=$7 guard_secs=$8 guard_script=$9 logdir=${10}
shift 10
umask 077
# Progress lines must not stop the change half-way when kaudit's connection is gone (EPIPE).
step() { echo "step=$1" 2>/dev/null || :; }
mkdir -p -- "$state"
work=$(mktemp -d "$state/.work.XXXXXX")
# Whatever fails after the journal entry and before the manifest is written undoes this run's
# traces: its backup (and a just-pinned original), uploaded files, the guard; the journal says so.
journaled=0 written=0 pinned=0 up_policy="" up_webhook="" made_logdir=""
undo() {
  rc=$?
  trap - EXIT
  if [ "$journaled" = 1 ] && [ "$written" = 0 ]; then
    g=$(cat -- "$state/guard.pid" 2>/dev/null) && [ -n "$g" ] && kill "$g" 2>/dev/null
    rm -f -- "$state/guard.pid"
    [ -n "$up_policy" ] && rm -f -- "$up_policy"
    [ -n "$up_webhook" ] && rm -f -- "$up_webhook"
    [ -n "$made_logdir" ] && rmdir -- "$made_logdir" 2>/dev/null
    rm -rf -- "$state/backups/$id" "$state/backups/.$id.tmp" "$state/backups/.original.tmp"
    [ "$pinned" = 1 ] && rm -rf -- "$state/backups/original"
    printf '{"id":"%s","state":"failed","at":%s}\n' "$id" "$(now)" >> "$state/journal" 2>/dev/null
  fi
  rm -rf -- "$work"
  exit "$rc"
}
trap undo EXIT
chmod 700 -- "$state"
for part in manifest policy webhook journal meta; do
  IFS= read -r line || line=""
  printf %s "$line" | base64 -d > "$work/$part"
done
[ "$(sha "$manifest")" = "$expect" ] || { echo "conflict=$(sha "$manifest")"; exit 65; }
new=$(sha "$work/manifest")
# Content-addressed files must still hold what their names say: a replaced one would be backed up
# (and later restored) as if it were kaudit's.
for f in "$@"; do
  [ -f "$f" ] || continue
  case "$(basename -- "$f")" in
    policy-$h12.yaml|webhook-$h12.kubeconfig)
      n=$(basename -- "$f"); n=${n#*-}; n=${n%%.*}
      case "$(sha "$f")" in "$n"*) ;; *) echo "tampered=$f"; exit 68 ;; esac ;;
  esac
done
step journal
journaled=1
cat -- "$work/journal" >> "$state/journal"
sync -- "$state/journal" 2>/dev/null || sync
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
  echo "applied=$(now) $(up)"
  exit 0
fi
step guard
rm -f -- "$state/confirm.$id"
setsid sh -c "$guard_script" guard "$state" "$manifest" "$id" "$new" "$guard_secs" </dev/null >/dev/null 2>&1 &
echo $! > "$state/guard.pid"
step write
d=$(dirname -- "$manifest") bn=$(basename -- "$manifest")
t="$d/.$bn.kaudit-tmp.$$"
cp -- "$work/manifest" "$t"; chmod 600 -- "$t"; sync -- "$t" 2>/dev/null || sync
# Re-read just before the rename: someone else may have changed it meanwhile.
if [ "$(sha "$manifest")" != "$expect" ]; then
  rm -f -- "$t"; kill "$(cat "$state/guard.pid")" 2>/dev/null; echo "conflict=$(sha "$manifest")"; exit 65
fi
at="$(now) $(up)"
mv -f -- "$t" "$manifest" || { rm -f -- "$t"; kill "$(cat "$state/guard.pid")" 2>/dev/null; exit 1; }
written=1
# When the manifest was written (epoch and seconds since boot), beside its backup: a re-run that
# takes over this change if it is never confirmed waits for an instance started after this.
printf '%s\n' "$at" > "$state/backups/$id/applied" 2>/dev/null || :
sync -- "$d" 2>/dev/null || sync
echo "applied=$at"
"""

# Wait on the node for a kube-apiserver started after $1 that carries the expected argv tokens.
# $1 changed-at (seconds since boot), $2 timeout s, $3 probe URL, $4 admin kubeconfig, $5 mode
# (present: every token below must be in argv; absent: no --audit-* flag at all), $6 settle: tenths
# of a second the ready instance must stay up (one that crashes right after ready is not success),
# $7 verify URL ('' for none: a request whose event must reach the log), $8 marker in that URL,
# $9 the log's host path, $10.. tokens. The verification runs during the settle time.
AWAIT = PROBE_FUNCTION + r"""
set -u
since=$1 timeout=$2 url=$3 kc=$4 mode=$5 settle=$6 vurl=$7 marker=$8 vlog=$9
shift 9
clk=$(getconf CLK_TCK 2>/dev/null || echo 100)
start=$(date +%s)
last=""
found_in_log() { [ -f "$vlog" ] && grep -q -- "$marker" "$vlog"; }
while :; do
  found=""
  for p in /proc/[0-9]*; do
    # The name first, with a builtin: forking for each of a node's hundreds of processes is costly.
    read -r comm 2>/dev/null < "$p/comm" || continue
    case "$comm" in kube-apiserver|go-runner) ;; *) continue ;; esac
    c=$(tr '\0' '\n' < "$p/cmdline" 2>/dev/null) || continue
    first=$(printf '%s\n' "$c" | head -n 1)
    case "$first" in *kube-apiserver|*go-runner) ;; *) continue ;; esac
    ticks=$(sed 's/^.*) //' "$p/stat" 2>/dev/null | awk '{print $20}')
    [ -n "$ticks" ] || continue
    st=$(awk -v t="$ticks" -v c="$clk" 'BEGIN { printf "%.2f", t / c }')
    # Started after the change: both in seconds since boot, to the kernel's tick.
    awk -v a="$st" -v b="$since" 'BEGIN { exit !(a + 0.02 >= b) }' || continue
    ok=1
    if [ "$mode" = absent ]; then
      printf '%s\n' "$c" | grep -q '^--audit-' && ok=0
    else
      for tok in "$@"; do printf '%s\n' "$c" | grep -qxF -- "$tok" || { ok=0; break; }; done
    fi
    [ $ok = 1 ] && found="${p#/proc/} $st"
  done
  if [ -n "$found" ]; then
    r=$(probe "$url" "$kc")
    if [ "${r%% *}" = 200 ]; then
      at=$(date +%s.%N) pid=${found%% *} i=0 seen=""
      [ -n "$vurl" ] && probe "$vurl" "$kc" >/dev/null
      while [ $i -lt "$settle" ] && [ -d "/proc/$pid" ]; do
        [ -n "$vurl" ] && [ -z "$seen" ] && found_in_log && seen=1
        sleep 0.1; i=$((i + 1))
      done
      if [ -d "/proc/$pid" ]; then
        if [ -n "$vurl" ]; then
          i=0
          while [ -z "$seen" ] && [ $i -lt 25 ]; do found_in_log && seen=1 || { sleep 0.1; i=$((i + 1)); }; done
          if [ -n "$seen" ]; then echo verify=found; else echo verify=missing; fi
        fi
        echo "ready=$found $at ${r#* }"; exit 0
      fi
      state="new instance $pid exited right after it became ready"
    else
      state="new instance ${found%% *} up, $url answers ${r%% *}"
    fi
  else
    state="waiting for a new kube-apiserver instance"
  fi
  [ "$state" != "$last" ] && { echo "progress=$state"; last=$state; }
  if [ $(( $(date +%s) - start )) -ge "$timeout" ]; then
    echo "timeout=$state"
    # The API server's last words: from the runtime when crictl is there, else the kubelet's log file.
    lines=""
    if command -v crictl >/dev/null 2>&1; then
      t=""; command -v timeout >/dev/null 2>&1 && t="timeout 10"  # an unreachable runtime must not hang us
      id=$($t crictl ps -a -l --name '^kube-apiserver$' -q 2>/dev/null | head -n 1)
      [ -n "$id" ] && lines=$($t crictl logs --tail 5 "$id" 2>&1)
    fi
    if [ -z "$lines" ]; then
      log=$(ls -t /var/log/pods/*kube-apiserver*/kube-apiserver/*.log 2>/dev/null | head -n 1)
      [ -n "$log" ] && lines=$(tail -n 5 -- "$log")
    fi
    [ -n "$lines" ] && printf '%s\n' "$lines" | tail -n 5 | sed 's/^/log=/'
    exit 1
  fi
  sleep 0.1
done
"""

# Confirm: the guard stands down; then record, rotate backups, and remove unreferenced policies.
# $1 state dir, $2 manifest, $3 backup id, $4 audit dir, $5 journal line, $6 keep N backups,
# $7 sha of the manifest being confirmed. Exit 67: the guard's time was up and it restored first.
CONFIRM = COMMON + r"""
set -u
state=$1 manifest=$2 id=$3 audit=$4 record=$5 keep=$6 new=$7
exec 8>>"$state/guard.lock"
flock 8
touch -- "$state/confirm.$id"
g=$(cat -- "$state/guard.pid" 2>/dev/null) && [ -n "$g" ] && kill "$g" 2>/dev/null
rm -f -- "$state/guard.pid" "$state/confirm.$id"
if grep -qF -- "{\"id\":\"$id\",\"state\":\"guard-restored\"" "$state/journal" 2>/dev/null \
   && [ "$(sha "$manifest")" != "$new" ]; then
  echo "guard-restored"; exit 67
fi
printf '%s\n' "$record" >> "$state/journal"
sync -- "$state/journal" 2>/dev/null || sync
ls -1d "$state"/backups/2* 2>/dev/null | sort -r | tail -n +$((keep + 1)) \
  | while IFS= read -r old; do rm -rf -- "$old"; done
if [ -d "$audit" ]; then
  refs=$(cat -- "$manifest" "$state"/backups/*/manifest 2>/dev/null; cat -- "$state"/backups/*/files/*.path 2>/dev/null)
  for f in "$audit"/policy-$h12.yaml "$audit"/webhook-$h12.kubeconfig; do
    [ -e "$f" ] || continue
    case "$refs" in *"$f"*) ;; *) rm -f -- "$f"; echo "removed=$f" ;; esac
  done
fi
echo confirmed
"""

# Restore a backup's manifest and files (automatic rollback, or `kaudit rollback`'s undo).
# $1 state dir, $2 manifest, $3 backup id, $4 journal line
RESTORE = COMMON + r"""
set -u
state=$1 manifest=$2 id=$3 record=$4
b="$state/backups/$id"
[ -f "$b/manifest" ] || { echo "no backup $id"; exit 66; }
for f in "$b"/files/*; do
  case "$f" in *.path) continue ;; esac
  [ -e "$f" ] || continue
  dest=$(cat -- "$f.path")
  [ "$(sha "$dest")" = "$(sha "$f")" ] || put "$f" "$dest" 600 || exit 1
done
at="$(now) $(up)"
put "$b/manifest" "$manifest" 600 || exit 1
g=$(cat -- "$state/guard.pid" 2>/dev/null) && [ -n "$g" ] && kill "$g" 2>/dev/null
rm -f -- "$state/guard.pid"
printf '%s\n' "$record" >> "$state/journal"
echo "restored=$at"
"""

# Take over an unconfirmed change (its kaudit run lost the node while waiting): run under the node's
# lock by a re-run. Under the guard lock (the guard restores under it, CONFIRM takes it), the change's
# guard is replaced by a fresh one for the same change with this run's time, so a take-over that
# loses the node in turn still leaves a guard to converge it. Nothing is touched unless the guard is
# still waiting for this change and the manifest is still what the change wrote.
# $1 state dir, $2 manifest, $3 the change's backup id, $4 the sha of the manifest it wrote,
# $5 guard seconds, $6 the guard script.
# Output: state=pending (then armed=EPOCH, applied=EPOCH UPTIME, before=base64 of the backup's
# manifest), or state=gone (no guard any more: restored=1 when it restored this change), state=other
# (the guard is not this change's), state=nobackup, state=changed (the manifest is not what it wrote).
TAKEOVER = COMMON + r"""
set -u
trap '' HUP PIPE
state=$1 manifest=$2 id=$3 new=$4 secs=$5 guard_script=$6
say() { echo "$1" 2>/dev/null || :; }
exec 8>>"$state/guard.lock"
flock 8
g=$(cat -- "$state/guard.pid" 2>/dev/null) || g=""
if [ -z "$g" ] || ! kill -0 "$g" 2>/dev/null; then
  grep -qF -- "{\"id\":\"$id\",\"state\":\"guard-restored\"" "$state/journal" 2>/dev/null && say "restored=1"
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
setsid sh -c "$guard_script" guard "$state" "$manifest" "$id" "$new" "$secs" </dev/null >/dev/null 2>&1 8>&- &
echo $! > "$state/guard.pid"
sync -- "$state/guard.pid" 2>/dev/null || :
say "armed=$(now)"
say "applied=$applied"
say "before=$(base64 < "$b/manifest" | tr -d '\n')"
say "state=pending"
"""

# List backups: one line per backup, "ID<TAB>base64(meta.json)".
LIST_BACKUPS = r"""
for b in "$1"/backups/*; do
  [ -d "$b" ] || continue
  printf '%s\t%s\n' "$(basename -- "$b")" "$(base64 < "$b/meta.json" 2>/dev/null | tr -d '\n')"
done
"""

# Read what a backup holds: manifest and files, as base64 lines "name<TAB>path<TAB>data".
READ_BACKUP = r"""
b="$1/backups/$2"
[ -f "$b/manifest" ] || { echo "no backup $2 in $1/backups" >&2; exit 66; }
printf 'manifest\t-\t%s\n' "$(base64 < "$b/manifest" | tr -d '\n')"
for f in "$b"/files/*; do
  case "$f" in *.path) continue ;; esac
  [ -e "$f" ] || continue
  printf 'file\t%s\t%s\n' "$(cat -- "$f.path")" "$(base64 < "$f" | tr -d '\n')"
done
"""
