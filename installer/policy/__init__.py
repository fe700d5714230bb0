"""The audit Policy: model, strict decoding and validation (the API server's rules), lint, profiles, and
`evaluate` (the API server's first-match evaluation, pure: the one evaluator, which the lint shares with
`kaudit simulate`, `tune` and the detection coverage).
Pure; imports installer.errors, installer.yamlio and installer.manifest.settings (the rotation defaults).
"""
