"""`kaudit simulate` and `kaudit tune`: replaying audit events through candidate policies.

- `simulate`: the engine (`Simulation`): counts, bytes, days of history, differences per candidate.
- `run`: `kaudit simulate` end to end (candidates, sources local or a TARGET's, output); `text` prints it.
- `tune`, `tune_run`: `kaudit tune`'s engine: a policy proposed from the cluster's own traffic, checked
  with a `Simulation` and the detection coverage.

Imports installer.auditlog (events), installer.detections, installer.policy and installer.manifest
(the rotation defaults).
"""
