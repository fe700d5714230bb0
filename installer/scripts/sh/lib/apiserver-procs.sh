# shellcheck shell=sh
# apiserver_procs: one line "PID TICKS" per kube-apiserver process, run directly or behind kops'
# go-runner; TICKS is its start in clock ticks since boot (/proc/PID/stat field 22).
apiserver_procs() {
  for p in /proc/[0-9]*; do
    # The name first, with a builtin: forking for each of a node's hundreds of processes is costly.
    read -r comm 2>/dev/null < "$p/comm" || continue
    case "$comm" in kube-apiserver|go-runner) ;; *) continue ;; esac
    c=$(tr '\n\0' ' \n' < "$p/cmdline" 2>/dev/null) || continue  # one argument per line
    case "$c" in *kube-apiserver*) ;; *) continue ;; esac
    first=$(printf '%s\n' "$c" | head -n 1)
    case "$first" in *kube-apiserver|*go-runner) ;; *) continue ;; esac
    ticks=$(sed 's/^.*) //' "$p/stat" 2>/dev/null | awk '{print $20}')
    [ -n "$ticks" ] && echo "${p#/proc/} $ticks"
  done
}
