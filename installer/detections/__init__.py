"""The detection catalogue (profiles/detections, shipped as installer/profiles/detections) and CIS 3.2.2.

- `catalogue`: loading, validating and matching detections (events through the one matcher,
  `installer.auditlog.match`, as `kaudit logs` filters), findings and bursts, what a policy lets each
  detection see; `python -m installer.detections.catalogue --write-snapshot` regenerates
  `catalogue_snapshot` (the parsed YAML, used while its hash is the shipped text's).
- `coverage`: CIS 3.2.2: what a policy lets each detection see, summed up (simulate, validate, render),
  and its text form.

Imports installer.auditlog (events, the matcher) and installer.policy (evaluation, profiles, validation).
"""
