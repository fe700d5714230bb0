# shellcheck shell=sh
# Shared helpers of the changing scripts.

# put SRC DEST MODE [OWNER]: install a file atomically. The temp is a dotfile beside its target (a
# rename cannot cross mounts; the kubelet ignores dotfiles in the manifests directory), created
# exclusively with a random name (mktemp: O_EXCL, so a planted symlink is never followed), fsynced,
# renamed, then the directory fsynced. An existing directory that is not root's alone is refused.
put() {
  d=$(dirname -- "$2") b=$(basename -- "$2")
  mkdir -p -- "$d"
  w=$(why_unsafe "$d")
  [ -z "$w" ] || { echo "refusing to write $2: $w" >&2; return 1; }
  t=$(mktemp -- "$d/.$b.kaudit-tmp.XXXXXX") || return 1
  if cat -- "$1" > "$t" && chmod "$3" -- "$t" && chown "${4:-0:0}" -- "$t" && { sync -- "$t" 2>/dev/null || sync; } \
     && mv -f -- "$t" "$2"; then
    sync -- "$d" 2>/dev/null || sync
  else
    rm -f -- "$t"; return 1
  fi
}
# why_unsafe PATH: why an existing PATH that kaudit writes into or reads as root's own is not safe:
# owned by another user, or writable by another user (a group other than root's, or everyone).
# Prints nothing for a safe or missing path.
why_unsafe() {
  [ -e "$1" ] || return 0
  wu=$(stat -L -c '%u %g %a' -- "$1" 2>/dev/null) || { echo "$1 cannot be inspected"; return 0; }
  wu_uid=${wu%% *} wu_mode=${wu##* } wu_gid=${wu#* }; wu_gid=${wu_gid%% *}
  [ "$wu_uid" = 0 ] || { echo "$1 is owned by uid $wu_uid, not root"; return 0; }
  wu_o=${wu_mode#"${wu_mode%?}"} wu_g=${wu_mode%?}; wu_g=${wu_g#"${wu_g%?}"}
  case "$wu_o" in 2|3|6|7) echo "$1 is writable by every user (mode $wu_mode)"; return 0 ;; esac
  case "$wu_g" in 2|3|6|7) [ "$wu_gid" = 0 ] || echo "$1 is writable by group $wu_gid (mode $wu_mode)" ;; esac
}
# state_problem STATE: kaudit's state files must be what they should (a FIFO at the lock would hang
# every command; a directory would read as a lost connection).
state_problem() {
  for sp in "$1" "$1/backups"; do
    [ ! -e "$sp" ] || [ -d "$sp" ] || { echo "$sp is not a directory"; return 0; }
  done
  for sp in lock lock.holder guard.lock guard.pid journal; do
    [ ! -e "$1/$sp" ] && [ ! -L "$1/$sp" ] && continue
    { [ -f "$1/$sp" ] && [ ! -L "$1/$sp" ]; } || { echo "$1/$sp is not a regular file"; return 0; }
  done
  why_unsafe "$1"
}
# proc_start PID: the process's start time (clock ticks since boot; /proc/PID/stat field 22).
proc_start() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }
# guard_pid STATE: the pid of the guard STATE/guard.pid names ("PID START"), only while that very
# process runs: a pid reused after a reboot by some other process is not the guard.
guard_pid() {
  gp=$(head -c 100 -- "$1/guard.pid" 2>/dev/null) || return 0
  gp_pid=${gp%% *} gp_start=${gp#* }
  case "$gp_pid" in ''|*[!0-9]*) return 0 ;; esac
  if [ "$gp_start" != "$gp" ]; then
    [ "$(proc_start "$gp_pid")" = "$gp_start" ] || return 0
  else  # written by an older kaudit: the pid alone, and a guard's command line
    grep -qa 'guard' "/proc/$gp_pid/cmdline" 2>/dev/null || return 0
  fi
  echo "$gp_pid"
}
# stop_guard STATE: end the armed guard (if it still runs) and forget it.
stop_guard() {
  sg=$(guard_pid "$1")
  [ -z "$sg" ] || kill "$sg" 2>/dev/null
  rm -f -- "$1/guard.pid"
}
sha() { if [ -f "$1" ]; then sha256sum < "$1" | cut -d' ' -f1; else echo absent; fi; }
now() { date +%s.%N; }
# Seconds since boot: the clock process start times are measured in (btime is whole seconds only).
up() { cut -d' ' -f1 /proc/uptime; }
# Only the names kaudit itself writes are kaudit's: policy-<12 hex>.yaml, webhook-<12 hex>.kubeconfig.
# Anything else in the audit directory (kops' policy-config.yaml, say) is never hashed, moved or deleted.
# shellcheck disable=SC2034  # used by the scripts that include this file
h12='[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
