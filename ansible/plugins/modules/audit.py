#!/usr/bin/python
# Apache-2.0 (see the kaudit repository)
"""Documentation of kaudit.audit.audit; the work is done by the action plugin of the same name."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit
short_description: Turn Kubernetes API-server audit logging on, change it, turn it off or roll it back
description:
  - Drives C(kaudit enable), C(kaudit disable) and C(kaudit rollback) with C(--output json) for the task's
    host, a control-plane node, and reports kaudit's result for that node.
  - Runs on the controller (an action plugin). kaudit reaches the node through its own transports (SSH with
    paramiko, C(docker exec) for kind nodes, or locally), built from the host's own connection variables
    C(ansible_host), C(ansible_port), C(ansible_user), C(ansible_ssh_private_key_file),
    C(ansible_ssh_common_args)/C(ansible_ssh_extra_args) (C(-J) or C(-o ProxyJump=), C(-o UserKnownHostsFile=),
    C(-o StrictHostKeyChecking=)), C(ansible_connection) (C(ssh), C(paramiko), C(docker) for kind nodes,
    C(local)). The plugin hands kaudit these variables, as Ansible resolved them, in kaudit's JSON inventory
    form, and kaudit reads them as it reads C(kaudit enable INVENTORY), so a playbook and kaudit read one
    inventory the same way. As with Ansible's own ssh connection, the user's C(~/.ssh/config) applies to the
    address (C(ansible_host)). Nothing needs to be installed on the node, and Ansible opens no session of its
    own to it.
  - The sudo password comes from C(ansible_become_password) (or C(-K)); it reaches kaudit on standard input
    (C(--sudo-password-stdin)), never on a command line. C(become) itself is not needed.
  - Host keys follow Ansible's C(host_key_checking). When it is off, any host key is accepted into a throwaway
    known_hosts file; the user's own file is neither trusted nor changed.
  - Every change is kaudit's own (a content-addressed policy, minimal manifest patch, wait for the new API
    server, an automatic restore when it does not become healthy).
  - B(Health gate.) Before changing a node, the play's other hosts of the same group (see O(group)) are read
    with C(kaudit status); the node is refused when one of them is not healthy as kaudit sees it (the status's
    C(healthy), the verdict of kaudit's own rollout gate), or when one of them failed earlier in this play.
    Within one task the nodes of one group change one at a time even without C(serial) (a lock on the
    controller), so a play over several clusters rolls them in parallel, one
    node per cluster at a time, and a failure stops only its own cluster.
  - B(One kaudit per play.) The hosts of the play batch that run the task (C(ansible_play_batch), each
    host's C(when), arguments and connection variables worked out from its own variables) share one kaudit
    run on the controller; the first host's worker runs C(kaudit enable INVENTORY --parallel FORKS) over all
    of them, one inventory group per cluster group (see O(group)), and every host reports its own node's
    result (C(changed), failure, diff). kaudit changes the nodes of a group one at a time behind its own
    health gate and stops a group at its first failure; the other groups go on, up to C(forks) at a time.
    Hosts with other arguments get a run of their own (one per set of arguments). Works with any C(forks);
    the batch is formed from the play's host list, never by waiting for other workers. Not batched (one
    kaudit per host, as with O(batch=false)) for a single host in the play batch (so C(serial=1) rolls one
    node at a time as before), O(health_gate=false), loops, C(until), C(delegate_to), C(run_once), handlers,
    a strategy other than C(linear), or a task inside a block with C(rescue)/C(always).
version_added: 0.1.0
author:
  - kaudit maintainers
options:
  state:
    description:
      - V(enabled) turns auditing on, or converges to another profile or option (C(kaudit enable)).
      - V(disabled) removes exactly what kaudit added (C(kaudit disable)); policies and logs stay.
      - V(rolled_back) restores a backup byte for byte (C(kaudit rollback)), by default the state before
        kaudit's last operation on the node; see O(backup).
    type: str
    choices: [enabled, disabled, rolled_back]
    default: enabled
  profile:
    description: The policy profile (C(kaudit profiles) lists them). Mutually exclusive with O(policy_file).
    type: str
  vars:
    description:
      - Profile variables, as a dict. List values become kaudit's comma-separated lists; an item containing
        a comma is refused.
    type: dict
    default: {}
  policy_file:
    description: A custom audit policy file on the controller, instead of a profile.
    type: path
  log_path:
    description: Audit log path on the node (kaudit's default V(/var/log/kubernetes/audit/audit.log)).
    type: str
  log_maxage:
    description: Days to keep rotated logs (default the profile's).
    type: int
  log_maxbackup:
    description: Rotated files to keep (default the profile's).
    type: int
  log_maxsize:
    description: Megabytes before rotation (default the profile's).
    type: int
  log_format:
    description: Audit log line format.
    type: str
    choices: [json, legacy]
  log_compress:
    description: Gzip rotated logs.
    type: bool
  webhook_config:
    description: Kubeconfig file (on the controller) of an audit webhook receiver, for example Falco.
    type: path
  webhook_mode:
    description: How events reach the webhook.
    type: str
    choices: [batch, blocking, blocking-strict]
  adopt:
    description: Take over audit flags and volumes that kaudit did not add.
    type: bool
    default: false
  force:
    description: Accept a O(policy_file) that records bodies of Secrets or tokens.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for the new API server on this node before kaudit restores it.
    type: float
    default: 120
  guard_grace:
    description: Seconds after O(timeout) before the node-side guard restores the backup by itself.
    type: float
  break_lock:
    description: End a lock holder left behind by a kaudit run that is gone.
    type: bool
    default: false
  backup:
    description:
      - For O(state=rolled_back) only, the backup to restore (C(kaudit backups) lists them), or V(original),
        the manifest before kaudit first changed the node. Default, undo kaudit's last operation.
    type: str
  group:
    description:
      - The inventory group that is this node's cluster, for the health gate. Default the variable
        C(kaudit_cluster), else the smallest of the host's groups (C(group_names)).
      - Only the play's hosts of that group are checked.
    type: str
  health_gate:
    description: Check the group's other nodes before changing this one (see the description).
    type: bool
    default: true
  batch:
    description:
      - Share one kaudit run with the play batch's other hosts (see the description). V(false) runs one kaudit
        for this host, with this plugin's own health gate (a C(kaudit status) of the group's other hosts).
    type: bool
    default: true
  known_hosts:
    description: A known_hosts file, instead of C(UserKnownHostsFile) from the SSH arguments or C(~/.ssh/known_hosts).
    type: path
  kind_cluster:
    description:
      - With C(ansible_connection=docker), the kind cluster of the node container. Default the variable
        C(kaudit_kind_cluster), else taken from the container name C(CLUSTER-control-plane[N]).
    type: str
  kaudit_command:
    description:
      - The kaudit command (a path, or a list for an argv). Default the variable C(kaudit_command), else
        C(python -m installer) of the Python Ansible runs with when kube-audit-installer is installed there,
        else C(kaudit) on PATH.
    type: raw
attributes:
  check_mode:
    support: full
    description: Runs C(kaudit --dry-run); RV(changed) says whether a real run would change the node.
  diff_mode:
    support: full
    description:
      - The manifest diff kaudit computed, and the audit policy before and after, with headers naming the
        content-addressed files. The policy before is the node's own file as C(kaudit status) read it; a
        policy neither the node nor the controller can give (a rollback's target it never applied) is shown
        empty with a header saying so.
  platform:
    platforms: posix
    description: Runs on the controller; the node needs only POSIX sh, coreutils, sudo and curl or wget.
notes:
  - Run with C(serial=1) and C(max_fail_percentage=0) over one cluster's control-plane group, or without
    C(serial) over many clusters (see the collection README and C(kaudit.audit.rollout) playbook).
  - A kind node with C(ansible_connection=docker) needs the community.docker collection for Ansible to load
    the connection; kaudit itself uses the docker CLI.
requirements:
  - kube-audit-installer (the C(kaudit) command) on the controller
seealso:
  - module: kaudit.audit.audit_info
"""

EXAMPLES = r"""
- name: Audit logging with the recommended profile
  kaudit.audit.audit:
    profile: recommended
    timeout: 60

- name: More detail during an incident, for two namespaces
  kaudit.audit.audit:
    profile: recommended
    vars:
      namespaces: [payments, auth]
    log_maxage: 7

- name: A policy file of our own, events also to Falco
  kaudit.audit.audit:
    policy_file: files/audit-policy.yaml
    webhook_config: files/falco-webhook.kubeconfig
    webhook_mode: batch

- name: Turn it off
  kaudit.audit.audit:
    state: disabled

- name: Back to the manifest as it was before kaudit
  kaudit.audit.audit:
    state: rolled_back
    backup: original
"""

RETURN = r"""
changed:
  description: The manifest on the node changed (in check mode, would change).
  returned: always
  type: bool
action:
  description: kaudit's action for the node (V(enabled), V(switched), V(disabled), V(rolled-back), V(unchanged),
    V(repaired), V(dry-run), V(refused), V(failed-restored), V(NOT-RESTORED), V(interrupted)).
  returned: when kaudit ran
  type: str
  sample: enabled
exit_code:
  description: kaudit's exit code for the node (0 success, 1 failed and restored, 2 refused or unreachable,
    3 NOT restored).
  returned: when kaudit ran
  type: int
rc:
  description: The same as RV(exit_code).
  returned: when kaudit ran
  type: int
restored:
  description: After a failure during the change, whether kaudit restored the node (V(false) is loud).
  returned: on failure after the change began
  type: bool
message:
  description: kaudit's one-line message for the node.
  returned: when kaudit ran
  type: str
backup:
  description: The backup taken before the change (for O(backup) later).
  returned: when kaudit ran
  type: str
kaudit:
  description: kaudit's JSON result for the node (the C(change) object of kaudit's docs/output.md, schema 1).
  returned: when kaudit ran
  type: dict
refused:
  description: The health gate refused the node; nothing was run on it.
  returned: when refused
  type: bool
unhealthy:
  description: The group's nodes that were not healthy, with why (C(kaudit status)'s C(health), kaudit's own gate).
  returned: when refused by the health gate
  type: list
  elements: str
kaudit_seconds:
  description: Wall time of the kaudit run.
  returned: when kaudit ran
  type: float
batch:
  description: The batch this host's result came from, C(hosts) (hosts in its kaudit run) and C(kaudit_runs)
    (kaudit runs for the play batch, one per set of arguments), C(prepare_cpu_s) (the controller's CPU seconds for
    working out the hosts' tasks before kaudit ran).
  returned: when the host was batched
  type: dict
"""

if __name__ == "__main__":
    import json
    import sys

    print(json.dumps({"failed": True, "msg": "kaudit.audit.audit runs on the controller as an action plugin"}))
    sys.exit(1)
