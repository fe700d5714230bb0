"""Changing a node: plans, the phases and their runner, rollouts over clusters, history and status.
Imports everything below it; nothing imports it but installer.commands.
"""
