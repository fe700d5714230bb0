# shellcheck shell=sh
# Starting the guard so that it outlives this login session. Where systemd runs the node (sd_booted():
# /run/systemd/system exists), logind may kill every process of the SSH session when it ends
# (KillUserProcesses=yes, systemd's upstream default): it tracks the session by cgroup, so a setsid
# child goes too, exactly when the guard is needed. There the guard runs as a transient unit of its
# own, outside the session, collected once it ends. Elsewhere (kind's nodes, containers, no systemd)
# a setsid child. The guard's pid and start time go to STATE/guard.pid (common.sh's guard_pid reads it).
start_guard() {  # state, change id, the guard's script, then its arguments
  sg_state=$1 sg_unit="kaudit-guard-$2-$$.service" sg_script=$3
  shift 3
  if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1 \
      && systemd-run --quiet --collect --unit "$sg_unit" --description "kaudit guard: restores the backup unless confirmed" \
        sh -c "$sg_script" guard "$@" </dev/null >/dev/null 2>&1; then
    sg_pid=$(systemctl show --property MainPID --value "$sg_unit" 2>/dev/null) || sg_pid=""
    if [ -n "$sg_pid" ] && [ "$sg_pid" != 0 ]; then
      echo "$sg_pid $(proc_start "$sg_pid")" > "$sg_state/guard.pid"
      return 0
    fi
    systemctl stop "$sg_unit" >/dev/null 2>&1 || :  # started but not found: not two guards
  fi
  setsid sh -c "$sg_script" guard "$@" </dev/null >/dev/null 2>&1 8>&- &
  sg_pid=$!
  echo "$sg_pid $(proc_start "$sg_pid")" > "$sg_state/guard.pid"
}
