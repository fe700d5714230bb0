"""kaudit.audit.audit_info: `kaudit status --output json` for the task's host, as facts.
Documentation: plugins/modules/audit_info.py."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from ansible_collections.kaudit.audit.plugins.action.audit import ActionModule as AuditAction
from ansible_collections.kaudit.audit.plugins.plugin_utils.kaudit import (
    KauditError,
    find_kaudit,
    first_error_line,
    run_kaudit,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "known_hosts": {"type": "path"},
    "kind_cluster": {"type": "str"},
    "kaudit_command": {"type": "raw"},
}


class ActionModule(AuditAction):
    _requires_connection = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super(AuditAction, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(ARGUMENT_SPEC)
        me = task_vars["inventory_hostname"]
        scratch = tempfile.mkdtemp(prefix="kaudit-ansible-")
        result["changed"] = False
        try:
            kaudit = find_kaudit(args.get("kaudit_command") or self._template(task_vars.get("kaudit_command")))
            own, _ = self._hosts(task_vars, [], args)
            group, _peers = self._group(task_vars, None)  # the cluster's name in kaudit's result, as kaudit's own
            run = run_kaudit(kaudit, ["status", "--output", "json"], [own], scratch, 180, group or me)
            nodes = run.nodes()
            if not nodes:
                result.update(failed=True, rc=run.rc, msg=f"{me}: kaudit status failed (exit {run.rc}): "
                              f"{first_error_line(run)}", stderr=run.stderr)
                return result
            status = nodes[0]
            result.update(status=status, rc=run.rc, ansible_facts={"kaudit_status": status})
            if not status.get("ok"):
                result.update(failed=True, msg=f"{me}: {status.get('error')}")
            else:
                result["msg"] = ("auditing on" if status.get("audit_enabled") else "auditing off") + (
                    f", profile {status['profile']}" if status.get("profile") else "")
        except KauditError as exc:
            result.update(failed=True, msg=f"{me}: {exc}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return result
