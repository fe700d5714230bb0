"""Reading audit logs (docs/design.md section 8): a reader of events, the API server's policy evaluation, and
the `kaudit simulate` report built on both.

- `evaluate`: pure; the attributes a request had when the API server evaluated its policy, and the
  first-match evaluation itself (the lint uses it too).
- `reader`: audit events as a stream from files, rotated sets (`.gz` included), directories and stdin,
  decoding only the fields callers need (msgspec).
- `node`: the same stream from a TARGET's control-plane nodes over kaudit's transport, merged by time.
- `simulate`: replaying events through candidate policies: counts, bytes, days of history, differences
  (`run` drives it end to end, `text` prints it).
- `coverage`: CIS 3.2.2 from the detection catalogue: what a policy lets each detection see (simulate,
  validate, render).
- `logs`, `logs_node`, `filters`, `summary`, `masking`, `detections`: `kaudit logs` and the
  detection catalogue on the same reader.

Imports installer.policy, installer.manifest, installer.node, installer.targets, installer.transport,
installer.scripts (the node-side readers: stream-logs.sh, logs-history.sh, logs-follow.sh).
"""
