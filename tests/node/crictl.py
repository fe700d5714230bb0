"""A stand-in for `crictl` on a test node (the simulator is the node's container runtime).

Only what kaudit uses, with crictl's flags, over the container logs the simulator writes where the
kubelet writes them (/var/log/pods/NS_POD_UID/CONTAINER/N.log, CRI format):

    crictl ps [-a|--all] [-l|--latest] [--name REGEX] [-q|--quiet]
    crictl logs [--tail N] CONTAINER-ID

A container's id is the first 13 hex digits of the sha256 of its log file's path. Anything else is
an error, so a call kaudit gets wrong fails loudly instead of returning nothing. Every call is
appended to /var/log/crictl.calls.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import sys

PODS = "/var/log/pods"
CALLS = "/var/log/crictl.calls"
_CRI = re.compile(r"^\S+ (stdout|stderr) [PF] ?(.*)$")


def _containers() -> list[tuple[str, str, str]]:
    """(id, container name, log path), the most recently written first."""
    paths = sorted(glob.glob(f"{PODS}/*/*/*.log"), key=os.path.getmtime, reverse=True)
    return [(hashlib.sha256(p.encode()).hexdigest()[:13], p.split("/")[-2], p) for p in paths]


def _fail(message: str) -> int:
    print(f"crictl (test node stand-in): {message}", file=sys.stderr)
    return 1


def ps(args: list[str]) -> int:
    name, latest, quiet = None, False, False
    while args:
        a = args.pop(0)
        if a in ("-a", "--all"):
            continue  # the stand-in lists exited containers either way
        if a in ("-l", "--latest"):
            latest = True
        elif a in ("-q", "--quiet"):
            quiet = True
        elif a == "--name" and args:
            name = args.pop(0)
        elif a.startswith("--name="):
            name = a.split("=", 1)[1]
        else:
            return _fail(f"ps: unsupported argument {a!r}")
    found = [c for c in _containers() if name is None or re.search(name, c[1])]
    for cid, cname, _ in found[:1] if latest else found:
        print(cid if quiet else f"{cid}\t{cname}")
    return 0


def logs(args: list[str]) -> int:
    tail, cid = None, None
    while args:
        a = args.pop(0)
        if a == "--tail" and args:
            tail = int(args.pop(0))
        elif a.startswith("--tail="):
            tail = int(a.split("=", 1)[1])
        elif not a.startswith("-") and cid is None:
            cid = a
        else:
            return _fail(f"logs: unsupported argument {a!r}")
    path = next((p for i, _, p in _containers() if i == cid), None)
    if path is None:
        return _fail(f"logs: no container {cid!r}")
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    for line in lines[-tail:] if tail else lines:
        m = _CRI.match(line)
        stream, text = (m.group(1), m.group(2)) if m else ("stdout", line)
        print(text, file=sys.stderr if stream == "stderr" else sys.stdout, flush=True)
    return 0


def main(argv: list[str]) -> int:
    with open(CALLS, "a") as f:  # what kaudit asked, for the tests
        f.write(" ".join(argv) + "\n")
    if not argv:
        return _fail("no command")
    command, rest = argv[0], argv[1:]
    if command == "ps":
        return ps(rest)
    if command == "logs":
        return logs(rest)
    return _fail(f"unsupported command {command!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
