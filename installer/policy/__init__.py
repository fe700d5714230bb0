"""The audit Policy: model, strict decoding and validation (the API server's rules), lint, profiles.
Pure; imports installer.errors, installer.yamlio, installer.auditlog.evaluate (the one first-match
evaluator, which the lint shares with `kaudit simulate`) and installer.manifest.settings (the rotation defaults).
"""
