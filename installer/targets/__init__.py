"""Where the nodes are: target syntax, Ansible inventories, flavors and discovery, and the one node context.
Imports installer.transport, installer.node, installer.manifest, installer.scripts, installer.errors.
"""
