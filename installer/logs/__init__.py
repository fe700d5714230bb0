"""`kaudit logs`: who did what, when.

- `logs`: the engine: events read, filtered, printed, followed, summarised or hunted with the catalogue.
- `logs_node`: a TARGET's logs, opened and read through `installer.auditlog.node` (its one node-side
  reader, `logs-history.sh`, given the window and the `grep -F` prefilter); following (`logs-follow.sh`).
- `filters`: the command line's filters as checks through the one matcher (`installer.auditlog.match`),
  the node's prefilter, kaudit's own requests, the no-match note.
- `summary`: `--summary`.

Imports installer.auditlog (events, the matcher, the node stream, masking), installer.detections
(`--detect`), installer.scripts (`logs-follow.sh`) and, lazily, installer.transport (the follow session).
"""
