"""A systemd node's parts that matter to kaudit's guard, for `TestNode.start(systemd=True)`.

- sd_booted(): `/run/systemd/system` exists (a per-node directory over /run/systemd).
- logind's session tracking (pam_systemd + KillUserProcesses=yes): every SSH session runs in a cgroup
  of its own (sshd's ForceCommand puts the session's first process there; children, setsid or sudo'd
  ones included, inherit it), and `TestNode.end_sessions()` kills everything left in those cgroups,
  as logind does when a session ends.
- `systemd-run` and `systemctl` stand-ins (the node's /usr/local/sbin): a transient service runs in
  its own cgroup under system.slice, with the manager's clean environment, so a session's end does
  not reach it; `systemctl show --property MainPID --value UNIT` and `systemctl stop UNIT`.
  Every call is recorded in /run/systemd/kaudit-standin/calls.

The cgroups live in the host's cgroup v1 `name=systemd` hierarchy (a non-root login may create and
join its own child cgroup there, as the session wrapper does), under kaudit-testnode-PORT.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

HIERARCHY = Path("/sys/fs/cgroup/systemd")


def missing() -> str | None:
    """Why this machine cannot stand in for logind's session tracking, or None."""
    if not (HIERARCHY / "cgroup.procs").exists():
        return f"no cgroup v1 name=systemd hierarchy at {HIERARCHY} to track SSH sessions the way logind does"
    if not os.access(HIERARCHY, os.W_OK):
        return f"{HIERARCHY} is not writable"
    return None


def cgroup_root(ssh_port: int) -> Path:
    return HIERARCHY / f"kaudit-testnode-{ssh_port}"


def make_cgroups(root: Path) -> None:
    (root / "system.slice").mkdir(parents=True, exist_ok=True)
    users = root / "user.slice"
    users.mkdir(exist_ok=True)
    users.chmod(0o1777)  # each login makes its own session cgroup


def remove_cgroups(root: Path) -> None:
    """rmdir bottom-up (a cgroup goes once empty; the node's processes are gone by now)."""
    if not root.exists():
        return
    for sub in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()


def session_wrapper(root: Path) -> str:
    """sshd's ForceCommand: the session joins its own cgroup, then runs what was asked."""
    return f"""#!/bin/sh
# logind stand-in, pam_systemd's part: this SSH session's processes live in a cgroup of their own.
cg={root}/user.slice/session-$$
mkdir "$cg" && echo $$ > "$cg/cgroup.procs" || exit 111
if [ -n "${{SSH_ORIGINAL_COMMAND-}}" ]; then exec "$SHELL" -c "$SSH_ORIGINAL_COMMAND"; fi
exec "$SHELL" -l
"""


def systemd_run(root: Path) -> str:
    return f"""#!/bin/sh
# systemd-run stand-in: COMMAND as a transient service in its own cgroup, outside the caller's session.
set -u
d=/run/systemd/kaudit-standin
mkdir -p "$d/units"
printf 'systemd-run %s\\n' "$*" >> "$d/calls"
unit="" collect=0
while [ $# -gt 0 ]; do
  case $1 in
    --quiet|-q|--no-block) ;;
    --collect|-G) collect=1 ;;
    --unit|-u) unit=$2; shift ;;
    --unit=*) unit=${{1#--unit=}} ;;
    --description|--property|-p) shift ;;
    --description=*|--property=*) ;;
    --) shift; break ;;
    -*) echo "systemd-run: unrecognized option '$1'" >&2; exit 1 ;;
    *) break ;;
  esac
  shift
done
[ $# -gt 0 ] || {{ echo "Command line to execute required." >&2; exit 1; }}
[ -n "$unit" ] || unit=run-u$$
case $unit in *.service) ;; *) unit=$unit.service ;; esac
if [ -e "$d/units/$unit" ] && kill -0 "$(cat "$d/units/$unit")" 2>/dev/null; then
  echo "Failed to start transient service unit: Unit $unit was already loaded or has a fragment file." >&2
  exit 1
fi
cg={root}/system.slice/$unit
mkdir -p "$cg"
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin  # the manager's, not the caller's
setsid sh -c 'echo $$ > "$1/cgroup.procs" || exit 1; p=$2; shift 2; exec env -i PATH="$p" "$@"' \\
  service "$cg" "$path" "$@" </dev/null >/dev/null 2>&1 &
echo $! > "$d/units/$unit"
echo "$collect" > "$d/units/$unit.collect"
"""


def systemctl() -> str:
    return """#!/bin/sh
# systemctl stand-in: show --property MainPID --value UNIT, stop UNIT (transient units of the stand-in).
set -u
d=/run/systemd/kaudit-standin
printf 'systemctl %s\\n' "$*" >> "$d/calls"
case ${1-} in
  show)
    unit=$(eval echo "\\${$#}")
    pid=$(cat "$d/units/$unit" 2>/dev/null) || pid=0
    kill -0 "$pid" 2>/dev/null || pid=0
    echo "$pid" ;;
  stop)
    pid=$(cat "$d/units/$2" 2>/dev/null) && kill "$pid" 2>/dev/null
    rm -f "$d/units/$2" "$d/units/$2.collect" ;;
  *) echo "systemctl stand-in: $1 is not supported" >&2; exit 1 ;;
esac
"""
