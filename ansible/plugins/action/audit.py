"""kaudit.audit.audit: runs on the controller and drives `kaudit enable|disable|rollback --output json`
for the task's host, reached through kaudit's own transports with the host's connection variables.
Documentation: plugins/modules/audit.py."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.kaudit.audit.plugins.plugin_utils.kaudit import (
    BECOME_PASSWORD_VARS,
    GroupGate,
    Host,
    KauditError,
    Run,
    find_kaudit,
    first_error_line,
    host_variables,
    node_health,
    run_kaudit,
)

display = Display()

ARGUMENT_SPEC: dict[str, Any] = {
    "state": {"type": "str", "default": "enabled", "choices": ["enabled", "disabled", "rolled_back"]},
    "profile": {"type": "str"},
    "vars": {"type": "dict", "default": {}},
    "policy_file": {"type": "path"},
    "log_path": {"type": "str"},
    "log_maxage": {"type": "int"},
    "log_maxbackup": {"type": "int"},
    "log_maxsize": {"type": "int"},
    "log_format": {"type": "str", "choices": ["json", "legacy"]},
    "log_compress": {"type": "bool"},
    "webhook_config": {"type": "path"},
    "webhook_mode": {"type": "str", "choices": ["batch", "blocking", "blocking-strict"]},
    "adopt": {"type": "bool", "default": False},
    "force": {"type": "bool", "default": False},
    "timeout": {"type": "float", "default": 120.0},
    "guard_grace": {"type": "float"},
    "break_lock": {"type": "bool", "default": False},
    "backup": {"type": "str"},
    "group": {"type": "str"},
    "health_gate": {"type": "bool", "default": True},
    "known_hosts": {"type": "path"},
    "kind_cluster": {"type": "str"},
    "kaudit_command": {"type": "raw"},
}
ENABLE_ONLY = ("profile", "policy_file", "log_path", "log_maxage", "log_maxbackup", "log_maxsize", "log_format",
               "log_compress", "webhook_config", "webhook_mode", "adopt", "force")
CONNECTION_OPTIONS = ("host", "remote_addr", "port", "remote_user", "private_key_file", "ssh_common_args",
                      "ssh_extra_args")


def _sha12(path: str | None) -> str | None:
    if not path:
        return None
    name = os.path.basename(path)
    m = re.fullmatch(r"policy-([0-9a-f]{12})\.yaml", name)
    return m.group(1) if m else None


def _set_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
        bad = [v for v in items if "," in v]
        if bad:
            raise AnsibleActionFail(f"vars.{name}: list item {bad[0]!r} contains a comma, which kaudit cannot pass")
        text = ",".join(items)
    elif isinstance(value, dict):
        raise AnsibleActionFail(f"vars.{name}: a profile variable is a string, number, boolean or list, not a dict")
    else:
        text = str(value)
    return f"{name}={text}"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # kaudit connects by itself; Ansible opens no session to the node

    # -- connection -------------------------------------------------------------------------------
    def _conn_opts(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in CONNECTION_OPTIONS:
            try:
                out[name] = self._connection.get_option(name)
            except Exception:  # noqa: S112 - a plugin without that option
                continue
        return out

    def _host_key_checking(self, task_vars: dict[str, Any]) -> bool:
        try:
            return bool(self._connection.get_option("host_key_checking"))
        except Exception:
            from ansible import constants as C

            return bool(C.HOST_KEY_CHECKING)

    def _template(self, value: Any) -> Any:
        try:
            return self._templar.template(value)
        except Exception:
            return value

    def _become_password(self, hv: dict[str, Any], own: bool) -> str | None:
        if own and getattr(self._play_context, "become_pass", None):
            return str(self._play_context.become_pass)
        for name in BECOME_PASSWORD_VARS:
            if name in hv and hv[name] not in (None, ""):
                return str(self._template(hv[name]))
        return None

    def _peer_opts(self, hv: dict[str, Any], connection: str) -> dict[str, Any]:
        """A peer's connection options as its own connection plugin resolves them from its variables."""
        from ansible import constants as C
        from ansible.playbook.play_context import PlayContext
        from ansible.plugins.loader import connection_loader

        try:
            conn = connection_loader.get(connection, PlayContext(), os.devnull)
        except Exception:
            conn = None
        if conn is None:
            return {}
        var_options = {}
        for k in C.config.get_plugin_vars("connection", conn._load_name):
            if k in hv:
                var_options[k] = self._template(hv[k])
        conn.set_options(var_options=var_options)
        out: dict[str, Any] = {}
        for name in CONNECTION_OPTIONS:
            try:
                out[name] = conn.get_option(name)
            except Exception:  # noqa: S112
                continue
        return out

    def _hosts(self, task_vars: dict[str, Any], peers: list[str], args: dict[str, Any]) -> tuple[Host, list[Host]]:
        """The task's host and its peers as kaudit gets them: their resolved connection variables."""
        me = task_vars["inventory_hostname"]
        hkc = self._host_key_checking(task_vars)
        connection = self._template(task_vars.get("ansible_connection")) or self._connection.transport
        own = Host(me, host_variables(me, str(connection), self._conn_opts(), task_vars, host_key_checking=hkc,
                                      kind_cluster=args.get("kind_cluster"), known_hosts=args.get("known_hosts")),
                   sudo_password=self._become_password(task_vars, True))
        others = []
        hostvars = task_vars.get("hostvars") or {}
        for peer in peers:
            hv = hostvars[peer]
            pconn = str(self._template(hv.get("ansible_connection")) or "ssh")
            others.append(Host(peer, host_variables(peer, pconn, self._peer_opts(hv, pconn), hv,
                                                    host_key_checking=hkc, known_hosts=args.get("known_hosts")),
                               sudo_password=self._become_password(hv, False)))
        return own, others

    def _group(self, task_vars: dict[str, Any], explicit: str | None) -> tuple[str | None, list[str]]:
        """The host's cluster group and the play's other hosts in it."""
        me = task_vars["inventory_hostname"]
        groups = task_vars.get("groups") or {}
        name = explicit or self._template(task_vars.get("kaudit_cluster"))
        if name:
            if name not in groups:
                raise AnsibleActionFail(f"group {name} is not in the inventory")
        else:
            candidates = [g for g in task_vars.get("group_names") or [] if g not in ("all", "ungrouped")]
            if not candidates:
                return None, []
            name = min(candidates, key=lambda g: (len(groups.get(g) or []), g))
        play = set(task_vars.get("ansible_play_hosts_all") or [])
        peers = [h for h in groups.get(name) or [] if h != me and h in play]
        return name, peers

    # -- kaudit arguments --------------------------------------------------------------------------
    def _change_args(self, args: dict[str, Any], check: bool) -> list[str]:
        state = args["state"]
        cmd = {"enabled": "enable", "disabled": "disable", "rolled_back": "rollback"}[state]
        out = [cmd, "--yes", "--output", "json", "--timeout", str(args["timeout"])]
        if args.get("guard_grace") is not None:
            out += ["--guard-grace", str(args["guard_grace"])]
        if args.get("break_lock"):
            out.append("--break-lock")
        if check:
            out.append("--dry-run")
        if state == "rolled_back" and args.get("backup"):
            out += ["--to", args["backup"]]
        if state != "enabled":
            return out
        if args.get("profile"):
            out += ["--profile", args["profile"]]
        for k, v in (args.get("vars") or {}).items():
            out += ["--set", _set_value(str(k), v)]
        if args.get("policy_file"):
            out += ["--policy-file", args["policy_file"]]
        for opt in ("log_path", "log_maxage", "log_maxbackup", "log_maxsize", "log_format"):
            if args.get(opt) is not None:
                out += ["--" + opt.replace("_", "-"), str(args[opt])]
        if args.get("log_compress") is not None:
            out.append("--log-compress" if args["log_compress"] else "--no-log-compress")
        if args.get("webhook_config"):
            out += ["--webhook-config", args["webhook_config"]]
        if args.get("webhook_mode"):
            out += ["--webhook-mode", args["webhook_mode"]]
        if args.get("adopt"):
            out.append("--adopt")
        if args.get("force"):
            out.append("--force")
        return out

    # -- diff ---------------------------------------------------------------------------------------
    def _policy_cache(self) -> str:
        path = os.path.join(os.path.expanduser("~"), ".cache", "kaudit-ansible", "policies")
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

    def _remember_policy(self, text: str) -> None:
        sha = hashlib.sha256(text.encode()).hexdigest()
        try:
            with open(os.path.join(self._policy_cache(), sha), "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError:
            pass

    def _cached_policy(self, sha: str) -> str | None:
        try:
            with open(os.path.join(self._policy_cache(), sha), encoding="utf-8") as fh:
                return fh.read()
        except OSError:
            return None

    def _render(self, kaudit: list[str], profile: str, variables: dict[str, Any], version: str | None) -> str | None:
        argv = [*kaudit, "render", profile]
        for k, v in (variables or {}).items():
            argv += ["--set", _set_value(str(k), v)]
        if version:
            argv += ["--kubernetes-version", version]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60,
                              stdin=subprocess.DEVNULL)
        return proc.stdout if proc.returncode == 0 else None

    def _policy_text(self, kaudit: list[str], sha: str | None, profile: str | None, variables: dict[str, Any],
                     version: str | None, local_file: str | None = None, node_text: str | None = None) -> str | None:
        """The bytes of the policy whose sha256 is `sha`: as `kaudit status` read them on the node, else when the
        controller can know them: the given file, the profile rendered again (the same bytes kaudit uploads), or
        a policy this collection applied."""
        if not sha:
            return None
        candidates: list[str] = [node_text] if isinstance(node_text, str) else []
        if local_file:
            try:
                with open(local_file, encoding="utf-8") as fh:
                    candidates.append(fh.read())
            except OSError:
                pass
        if profile:
            rendered = self._render(kaudit, profile, variables, version)
            if rendered is not None:
                candidates.append(rendered)
        for text in candidates:
            if hashlib.sha256(text.encode()).hexdigest().startswith(sha):
                self._remember_policy(text)
                return text
        return self._cached_policy(sha) if len(sha) == 64 else next(
            (self._cached_policy(f) for f in os.listdir(self._policy_cache()) if f.startswith(sha)), None)

    def _diffs(self, kaudit: list[str], result: dict[str, Any], before: dict[str, Any] | None,
               args: dict[str, Any]) -> list[dict[str, Any]]:
        """The manifest diff as kaudit prints it, and the policy diff: before/after with headers."""
        diffs: list[dict[str, Any]] = []
        manifest_diff = result.get("diff") or ""
        if manifest_diff:
            diffs.append({"prepared": manifest_diff})
        # The paths come from kaudit's JSON: the node's policy flag as the task's `kaudit status` read it, and the
        # change object's policy_file (what the run applied, or would apply; null when it turns auditing off).
        before_ok = bool(before and before.get("ok"))
        version = (before or {}).get("kubernetes_version")
        before_path = ((before or {}).get("audit_flags") or {}).get("--audit-policy-file") if before_ok else None
        after_path = result.get("policy_file")
        if (before_path == after_path if before_ok else not manifest_diff):
            return diffs  # the policy stays (or, unread, the manifest stays as it is)
        paths: list[dict[str, Any]] = (before or {}).get("paths") or []
        policy_entry = next((p for p in paths if p.get("flag") == "--audit-policy-file"), {})
        before_sha = policy_entry.get("sha256") or _sha12(before_path)
        before_text = self._policy_text(kaudit, before_sha, (before or {}).get("profile"), {}, version,
                                        node_text=policy_entry.get("text")) or ""
        after_text = ""
        if after_path:
            enabling = args["state"] == "enabled"
            after_text = self._policy_text(
                kaudit, _sha12(after_path), args.get("profile") if enabling else None,
                (args.get("vars") or {}) if enabling else {}, version, args.get("policy_file") if enabling else None,
            ) or ""
        unknown = " (content unknown to the controller: the node's file could not be read)"
        if before_path:
            bh = f"audit policy {before_path}" + ("" if before_text else unknown)
        elif before_ok:
            bh = "audit policy: none (auditing off)"
        else:
            bh = "audit policy: unknown (the node's status could not be read)"
        ah = f"audit policy {after_path}" + ("" if after_text else unknown) if after_path else \
            "audit policy: none (auditing off; the policy file stays on the node)"
        diffs.append({"before": before_text, "after": after_text, "before_header": bh, "after_header": ah})
        return diffs

    # -- run ----------------------------------------------------------------------------------------
    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(
            ARGUMENT_SPEC, mutually_exclusive=[("profile", "policy_file")],
        )
        state = args["state"]
        if state != "enabled":
            given = [k for k in ENABLE_ONLY if self._task.args.get(k) not in (None, False, {}, "")]
            if given:
                raise AnsibleActionFail(f"{given[0]} applies to state=enabled only")
        if state != "rolled_back" and args.get("backup"):
            raise AnsibleActionFail("backup applies to state=rolled_back only")
        check = bool(self._task.check_mode)
        want_diff = bool(self._task.diff)
        me = task_vars["inventory_hostname"]
        scratch = tempfile.mkdtemp(prefix="kaudit-ansible-")
        try:
            kaudit = find_kaudit(args.get("kaudit_command") or self._template(task_vars.get("kaudit_command")))
            group, peers = self._group(task_vars, args.get("group"))
            own, others = self._hosts(task_vars, peers if args["health_gate"] else [], args)
            result.update(self._run_one(kaudit, args, own, others, group, peers, task_vars, check, want_diff,
                                        scratch))
        except KauditError as exc:
            result.update(failed=True, changed=False, msg=f"{me}: {exc}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        out: dict[str, Any] = result
        return out

    def _gate(self, kaudit: list[str], own: Host, others: list[Host], need_own: bool, scratch: str, group: str
              ) -> tuple[dict[str, Any] | None, list[str]]:
        """One `kaudit status` over this node (for the diff) and its peers (the health gate)."""
        hosts = ([own] if need_own else []) + others
        if not hosts:
            return None, []
        run = run_kaudit(kaudit, ["status", "--output", "json"], hosts, scratch, 120, group)
        statuses = run.nodes()
        if len(statuses) != len(hosts):
            statuses = [{"ok": False, "error": first_error_line(run)}] * len(hosts)
        own_status = statuses[0] if need_own else None
        unhealthy = []
        checked = zip(hosts[1:] if need_own else hosts, statuses[1:] if need_own else statuses, strict=True)
        for host, status in checked:
            why = node_health(status)
            if why:
                unhealthy.append(f"{host.name}: {why}")
        return own_status, unhealthy

    def _run_one(self, kaudit: list[str], args: dict[str, Any], own: Host, others: list[Host], group: str | None,
                 peers: list[str], task_vars: dict[str, Any], check: bool, want_diff: bool, scratch: str
                 ) -> dict[str, Any]:
        me = own.name
        failed_in_play = [p for p in peers if p not in (task_vars.get("ansible_play_hosts") or [])]
        gate = GroupGate(str(self._task._uuid), group or me)
        with gate:
            earlier = gate.failed_before() if group else None
            if failed_in_play or earlier:
                who = ", ".join(failed_in_play) or (earlier or "").replace("\n", ", ")
                return {"failed": True, "changed": False, "refused": True,
                        "msg": f"{me}: refused: {who} of group {group} failed earlier in this play; "
                               "not changing another node of that cluster"}
            own_status, unhealthy = self._gate(kaudit, own, others, want_diff, scratch, group or me)
            if unhealthy:
                return {"failed": True, "changed": False, "refused": True, "unhealthy": unhealthy,
                        "msg": f"{me}: refused: another control-plane node of group {group} is not healthy: "
                               + "; ".join(unhealthy)}
            run = run_kaudit(kaudit, self._change_args(args, check), [own], scratch, args["timeout"] * 3 + 120,
                             group or me)
            out = self._result(run, own, check)
            if want_diff and run.nodes():
                out["diff"] = self._diffs(kaudit, run.nodes()[0], own_status, args)
            if out.get("failed") and group and not check:
                gate.record_failure(me)
            return out

    def _result(self, run: Run, own: Host, check: bool) -> dict[str, Any]:
        nodes = run.nodes()
        if not nodes:
            return {"failed": True, "changed": False, "rc": run.rc, "exit_code": run.rc,
                    "msg": f"{own.name}: kaudit failed (exit {run.rc}): {first_error_line(run)}",
                    "stderr": run.stderr, "kaudit": None}
        node = nodes[0]
        action = node.get("action")
        code = int(node.get("exit_code", run.rc))
        # check mode: kaudit's dry run reports changed false; a real run would change the node when it has a diff
        changed = action == "dry-run" and bool(node.get("diff")) if check else bool(node.get("changed"))
        out: dict[str, Any] = {
            "changed": changed, "action": action, "exit_code": code, "rc": code, "kaudit": node,
            "backup": node.get("backup"), "message": node.get("message"), "kaudit_seconds": run.seconds,
        }
        if action == "NOT-RESTORED" or code == 3:
            out.update(failed=True, restored=False,
                       msg=f"{own.name}: NODE NOT RESTORED, A HUMAN IS NEEDED NOW (kaudit exit {code}): "
                           f"{node.get('message')}")
            display.error(out["msg"])
        elif code != 0 or not node.get("ok", False):
            restored = action in ("failed-restored", "interrupted") or code == 1
            where = "the node was restored" if restored else "nothing was changed"
            if action == "refused" or code == 2:
                where = "refused before any change"
            out.update(failed=True, restored=restored if code == 1 else None,
                       msg=f"{own.name}: {node.get('message')} (kaudit exit {code}, {action}; {where})")
        else:
            out["msg"] = node.get("message")
        return out
