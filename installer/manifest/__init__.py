"""The kube-apiserver static pod manifest: parse (ruamel marks), read, patch, validate, diff, export.
Pure functions of bytes; imports installer.errors, installer.yamlio, installer.node.layout.
"""
