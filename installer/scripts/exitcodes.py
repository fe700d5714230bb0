"""Exit codes with a meaning between kaudit and its node scripts. sh/lib/exit-codes.sh defines the same
names for the scripts; tests/unit/scripts/test_node_scripts.py keeps the two equal."""

from __future__ import annotations

from enum import IntEnum


class ScriptExit(IntEnum):
    MISSING = 44  # read-file: no such file
    CONFLICT = 65  # apply: the manifest changed since kaudit read it
    NO_BACKUP = 66  # restore / read-backup: no such backup
    GUARD_RESTORED = 67  # confirm: the guard's time was up and it restored first
    TAMPERED = 68  # apply: a content-addressed file no longer matches its name
    UNSAFE = 70  # apply, lock: a directory or state file another user could write, or of the wrong kind
    PAYLOAD = 69  # apply: stdin did not hold exactly the parts kaudit sent (their sums differ)
    LOCK_HELD = 75  # lock: another process holds the node's lock
