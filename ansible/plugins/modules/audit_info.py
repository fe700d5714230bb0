#!/usr/bin/python
# Apache-2.0 (see the kaudit repository)
"""Documentation of kaudit.audit.audit_info; the work is done by the action plugin of the same name."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_info
short_description: Kubernetes API-server audit configuration and health of a control-plane node, as facts
description:
  - Runs C(kaudit status --output json) for the task's host on the controller and returns the node's object
    as RV(status) and as the fact C(kaudit_status).
  - The node is reached as with M(kaudit.audit.audit), from the host's own connection variables.
version_added: 0.1.0
author:
  - kaudit maintainers
options:
  known_hosts:
    description: A known_hosts file, instead of C(UserKnownHostsFile) from the SSH arguments or C(~/.ssh/known_hosts).
    type: path
  kind_cluster:
    description: With C(ansible_connection=docker), the kind cluster of the node container.
    type: str
  kaudit_command:
    description: The kaudit command; see M(kaudit.audit.audit).
    type: raw
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - kube-audit-installer (the C(kaudit) command) on the controller
seealso:
  - module: kaudit.audit.audit
"""

EXAMPLES = r"""
- name: Read the audit configuration
  kaudit.audit.audit_info:

- name: Every node's policy on disk is the one its API server loaded
  ansible.builtin.assert:
    that:
      - kaudit_status.audit_enabled
      - kaudit_status.api_server.started_after_policy
      - kaudit_status.problems == []
"""

RETURN = r"""
status:
  description: kaudit's C(status) object for the node (kaudit's docs/output.md, schema 1), also set as the fact
    C(kaudit_status).
  returned: when kaudit ran
  type: dict
  contains:
    ok:
      description: The node could be read.
      type: bool
    audit_enabled:
      description: The manifest carries C(--audit-*) flags.
      type: bool
    profile:
      description: The profile kaudit recorded.
      type: str
    api_server:
      description: The running API server (C(running), C(pid), C(audit_flags), C(flags_match_manifest), ...).
      type: dict
    readyz:
      description: Readiness (C(url), C(code), C(ready)).
      type: dict
    problems:
      description: Everything that needs attention, one line each.
      type: list
      elements: str
rc:
  description: kaudit's exit code.
  returned: when kaudit ran
  type: int
"""

if __name__ == "__main__":
    import json
    import sys

    print(json.dumps({"failed": True, "msg": "kaudit.audit.audit_info runs on the controller as an action plugin"}))
    sys.exit(1)
