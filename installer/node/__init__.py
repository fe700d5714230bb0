"""The node: its layout, facts, health probes, container logs, and the POSIX sh scripts that run there.
Imports installer.transport, installer.scripts and installer.errors.
"""
