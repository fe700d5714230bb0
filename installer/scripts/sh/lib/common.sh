# shellcheck shell=sh
# Shared helpers of the changing scripts.

# put SRC DEST MODE [OWNER]: install a file atomically. The temp is a dotfile beside its target (a
# rename cannot cross mounts; the kubelet ignores dotfiles in the manifests directory), fsynced,
# renamed, then the directory fsynced.
put() {
  d=$(dirname -- "$2") b=$(basename -- "$2")
  mkdir -p -- "$d"
  t="$d/.$b.kaudit-tmp.$$"
  if cp -- "$1" "$t" && chmod "$3" -- "$t" && chown "${4:-0:0}" -- "$t" && { sync -- "$t" 2>/dev/null || sync; } \
     && mv -f -- "$t" "$2"; then
    sync -- "$d" 2>/dev/null || sync
  else
    rm -f -- "$t"; return 1
  fi
}
sha() { if [ -f "$1" ]; then sha256sum < "$1" | cut -d' ' -f1; else echo absent; fi; }
now() { date +%s.%N; }
# Seconds since boot: the clock process start times are measured in (btime is whole seconds only).
up() { cut -d' ' -f1 /proc/uptime; }
# Only the names kaudit itself writes are kaudit's: policy-<12 hex>.yaml, webhook-<12 hex>.kubeconfig.
# Anything else in the audit directory (kops' policy-config.yaml, say) is never hashed, moved or deleted.
# shellcheck disable=SC2034  # used by the scripts that include this file
h12='[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
