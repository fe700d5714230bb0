"""The POSIX sh that kaudit runs on nodes, as real .sh files (sh/, shared pieces in sh/lib/), and their loader.
A leaf: imports nothing of kaudit's; installer.transport and installer.node load their scripts from here.
"""
