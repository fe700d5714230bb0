"""Reading audit events (docs/design.md section 8): the stream every log command reads, and the one matcher.

- `reader`: audit events as a stream from files, rotated sets (`.gz` included), directories and stdin,
  decoding only the fields callers need (msgspec).
- `node`: the same stream from a TARGET's control-plane nodes over kaudit's transport, merged by time;
  where each node's log is (its manifest's flags); the node-side readers are installer/scripts/sh's
  `logs-history.sh` and `logs-follow.sh`.
- `match`: an event's fields and the one rule values match them by (exact, or a trailing `*` as a
  prefix), for `kaudit logs` filters and the detection catalogue alike; event and user times.
- `masking`: Secret data and tokens masked in an event's bodies.

Imports installer.manifest, installer.node, installer.targets, installer.transport (node access lazily,
inside the functions that read a TARGET) and installer.scripts.
"""
