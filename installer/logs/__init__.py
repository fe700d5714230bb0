"""`kaudit logs`: who did what, when.

- `logs`: the engine: events read, filtered, printed, followed, summarised or hunted with the catalogue.
- `logs_node`: a TARGET's logs: the rotated files a window needs, the `grep -F` prefilter, following.
- `filters`: the command line's filters as checks through the one matcher (`installer.auditlog.match`),
  the node's prefilter, kaudit's own requests, the no-match note.
- `summary`: `--summary`.

Imports installer.auditlog (events, the node stream, masking), installer.detections (`--detect`),
installer.scripts (the node-side readers) and, lazily inside the functions that read a TARGET,
installer.manifest, installer.node, installer.targets, installer.transport.
"""
