"""The audit Policy: model, strict decoding and validation (the API server's rules), lint, profiles.
Pure; imports only installer.errors and installer.yamlio.
"""
