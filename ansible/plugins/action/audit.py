"""kaudit.audit.audit: runs on the controller and drives `kaudit enable|disable|rollback --output json`
for the task's host, reached through kaudit's own transports with the host's connection variables.
Documentation: plugins/modules/audit.py."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.kaudit.audit.plugins.plugin_utils.batch import BatchState, fingerprint
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
    "batch": {"type": "bool", "default": True},
}
MUTUALLY_EXCLUSIVE = [("profile", "policy_file")]
BATCH_STRATEGIES = ("linear", "ansible.builtin.linear", "ansible.legacy.linear")
ENABLE_ONLY = ("profile", "policy_file", "log_path", "log_maxage", "log_maxbackup", "log_maxsize", "log_format",
               "log_compress", "webhook_config", "webhook_mode", "adopt", "force")
# kaudit's audit backend settings, one row each of its table (installer/manifest/settings.py SETTINGS): the module
# option -> kaudit enable's option and the row's kind ("bool": --x/--no-x), in the table's order. The module's
# ARGUMENT_SPEC and documentation have to be static for Ansible, so the collection carries the rows it needs;
# tests/unit/manifest/test_settings.py checks this map is the table's, row for row, and parses what _change_args
# makes of every row with kaudit's own enable command.
BACKEND_OPTIONS: dict[str, tuple[str, str]] = {
    "log_path": ("--log-path", "path"),
    "log_maxage": ("--log-maxage", "int"),
    "log_maxbackup": ("--log-maxbackup", "int"),
    "log_maxsize": ("--log-maxsize", "int"),
    "log_format": ("--log-format", "choice"),
    "log_compress": ("--log-compress", "bool"),
    "webhook_config": ("--webhook-config", "file"),
    "webhook_mode": ("--webhook-mode", "choice"),
}
CONNECTION_OPTIONS = ("host", "remote_addr", "port", "remote_user", "private_key_file", "ssh_common_args",
                      "ssh_extra_args")


@dataclass
class Request:
    """One host's task as the batch runs it: its arguments, modes, connection variables and cluster group."""

    name: str
    args: dict[str, Any]
    check: bool
    diff: bool
    host: Host
    group: str | None
    peers: list[str]

    def fingerprint(self) -> str:
        return fingerprint({"args": self.args, "check": self.check, "diff": self.diff,
                            "vars": self.host.variables, "password": self.host.sudo_password is not None,
                            "group": self.group})


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

    def _group(self, task_vars: dict[str, Any], explicit: str | None, template: Any = None
               ) -> tuple[str | None, list[str]]:
        """The host's cluster group and the play's other hosts in it."""
        me = task_vars["inventory_hostname"]
        groups = task_vars.get("groups") or {}
        name = explicit or (template or self._template)(task_vars.get("kaudit_cluster"))
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
        for name, (option, kind) in BACKEND_OPTIONS.items():
            value = args.get(name)
            if value is None or value == "":
                continue
            if kind == "bool":
                out.append(option if value else f"--no-{option.removeprefix('--')}")
            else:
                out += [option, str(value)]
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
        """`kaudit render`, once per profile, variables and version in this action run (a batch's hosts)."""
        cache: dict[str, str | None] = self.__dict__.setdefault("_renders", {})
        key = json.dumps([profile, variables, version], sort_keys=True, default=str)
        if key not in cache:
            cache[key] = self._render_once(kaudit, profile, variables, version)
        return cache[key]

    def _render_once(self, kaudit: list[str], profile: str, variables: dict[str, Any], version: str | None
                     ) -> str | None:
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
        """The bytes of the policy whose sha256 is `sha` (kaudit's JSON: the status's `paths[].sha256`, the change's
        `policy_sha256`): as `kaudit status` read them on the node, else when the
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
            if hashlib.sha256(text.encode()).hexdigest() == sha:
                self._remember_policy(text)
                return text
        return self._cached_policy(sha)

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
        before_sha = policy_entry.get("sha256")  # the node's file, hashed on the node (null: not there)
        before_text = self._policy_text(kaudit, before_sha, (before or {}).get("profile"), {}, version,
                                        node_text=policy_entry.get("text")) or ""
        after_text = ""
        if after_path:
            enabling = args["state"] == "enabled"
            after_text = self._policy_text(
                kaudit, result.get("policy_sha256"), args.get("profile") if enabling else None,
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
        _validation, args = self.validate_argument_spec(ARGUMENT_SPEC, mutually_exclusive=MUTUALLY_EXCLUSIVE)
        self._check_args(args, self._task.args)
        check = bool(self._task.check_mode)
        want_diff = bool(self._task.diff)
        me = task_vars["inventory_hostname"]
        scratch = tempfile.mkdtemp(prefix="kaudit-ansible-")
        os.chmod(scratch, 0o700)
        try:
            kaudit = find_kaudit(args.get("kaudit_command") or self._template(task_vars.get("kaudit_command")))
            group, peers = self._group(task_vars, args.get("group"))
            batched = self._from_batch(kaudit, args, task_vars, group, peers, check, want_diff, scratch)
            if batched is not None:
                result.update(batched)
            else:
                own, others = self._hosts(task_vars, peers if args["health_gate"] else [], args)
                result.update(self._run_one(kaudit, args, own, others, group, peers, task_vars, check, want_diff,
                                            scratch))
        except KauditError as exc:
            result.update(failed=True, changed=False, msg=f"{me}: {exc}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        out: dict[str, Any] = result
        return out

    @staticmethod
    def _check_args(args: dict[str, Any], given: dict[str, Any]) -> None:
        state = args["state"]
        if state != "enabled":
            named = [k for k in ENABLE_ONLY if given.get(k) not in (None, False, {}, "")]
            if named:
                raise AnsibleActionFail(f"{named[0]} applies to state=enabled only")
        if state != "rolled_back" and args.get("backup"):
            raise AnsibleActionFail("backup applies to state=rolled_back only")

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
        return self._node_result(nodes[0] if nodes else None, run, own.name, check)

    def _node_result(self, node: dict[str, Any] | None, run: Run, name: str, check: bool) -> dict[str, Any]:
        if node is None:
            return {"failed": True, "changed": False, "rc": run.rc, "exit_code": run.rc,
                    "msg": f"{name}: kaudit failed (exit {run.rc}): {first_error_line(run)}",
                    "stderr": run.stderr, "kaudit": None}
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
                       msg=f"{name}: NODE NOT RESTORED, A HUMAN IS NEEDED NOW (kaudit exit {code}): "
                           f"{node.get('message')}")
            display.error(out["msg"])
        elif code != 0 or not node.get("ok", False):
            restored = action in ("failed-restored", "interrupted") or code == 1
            where = "the node was restored" if restored else "nothing was changed"
            if action == "refused" or code == 2:
                where = "refused before any change"
            out.update(failed=True, restored=restored if code == 1 else None,
                       msg=f"{name}: {node.get('message')} (kaudit exit {code}, {action}; {where})")
        else:
            out["msg"] = node.get("message")
        return out

    # -- one kaudit for the play's hosts ----------------------------------------------------------------------
    def _not_batched(self, args: dict[str, Any], task_vars: dict[str, Any]) -> str | None:
        """Why this task runs one kaudit per host (None: it is batched). Batched only where every host of the
        play batch runs this task now, once, with arguments the batch can work out for it: the linear
        strategy, no loop, retries, delegation, run_once or handler, no enclosing block with rescue/always
        (a host may be in a rescue section while the others run this task)."""
        from ansible import constants as C
        from ansible.playbook.block import Block
        from ansible.playbook.handler import Handler

        task = self._task
        if not args["batch"]:
            return "batch: false"
        if not args["health_gate"]:
            return "health_gate: false (kaudit's own rollout always checks a node's peers)"
        if isinstance(task, Handler) or task.loop or getattr(task, "loop_with", None) or task.delegate_to \
                or task.run_once or task.until:
            return "a handler, loop, delegate_to, run_once or until"
        play = task.get_play()
        strategy = str(getattr(play, "strategy", None) or C.DEFAULT_STRATEGY)
        if strategy not in BATCH_STRATEGIES:
            return f"strategy {strategy}"
        parent = task._parent
        while parent is not None:
            if isinstance(parent, Block) and (parent.rescue or parent.always):
                return "inside a block with rescue or always"
            parent = getattr(parent, "_parent", None)
        batch = list(task_vars.get("ansible_play_batch") or [])
        if len(batch) < 2 or task_vars["inventory_hostname"] not in batch:
            return "one host in the play batch"
        return None

    def _from_batch(self, kaudit: list[str], args: dict[str, Any], task_vars: dict[str, Any], group: str | None,
                    peers: list[str], check: bool, want_diff: bool, scratch: str) -> dict[str, Any] | None:
        """This host's result from the play batch's one kaudit run (running it when this fork is the first),
        or None when the host is not batched (it then runs its own kaudit, as before)."""
        why = self._not_batched(args, task_vars)
        if why:
            display.vvv(f"kaudit.audit: one kaudit for this host: {why}")
            return None
        me = task_vars["inventory_hostname"]
        own, _ = self._hosts(task_vars, [], args)
        mine = Request(me, args, check, want_diff, own, group, peers)
        try:
            state_file = BatchState(str(self._task._uuid))
        except OSError as exc:
            display.warning(f"kaudit.audit: one kaudit per host ({exc})")
            return None
        with state_file:
            # Keyed by the task alone: ansible_play_batch shrinks while the task runs (a host that failed in the
            # batch leaves it before later hosts are queued), so the hosts a batch covered are recorded, and a
            # host not covered yet (the next serial batch) starts a batch of the hosts not covered.
            state = state_file.load() or {"hosts": {}, "covered": []}
            covered = set(state.get("covered") or [])
            if me not in covered:
                batch = [h for h in task_vars["ansible_play_batch"] if h not in covered]
                try:
                    entries = self._coordinate(kaudit, mine, batch, task_vars, scratch)
                except Exception as exc:
                    # Saved as this batch's outcome: the other hosts' workers must not run it again.
                    why = f"the play's batched kaudit run failed on the controller: {type(exc).__name__}: {exc}"
                    entries = {h: {"fp": None, "result": {"failed": True, "changed": False, "msg": f"{h}: {why}"}}
                               for h in batch}
                state["hosts"] = {**(state.get("hosts") or {}), **entries}
                state["covered"] = sorted(covered | set(batch))
                state_file.save(state)
            entry = state_file.take(state, me)
        if entry is None:
            return None
        if entry["fp"] is None:
            failure: dict[str, Any] = entry["result"]
            return failure
        result: dict[str, Any] = entry["result"]
        if entry["fp"] != mine.fingerprint():
            # The batch worked this host's task out with Ansible's own templating of its variables; a
            # difference here means it did not see what this fork sees. Say what was run, loudly.
            result = {**result, "failed": True, "batch_mismatch": True,
                      "msg": f"{me}: the play's batched kaudit run reached this host with other arguments or "
                             "connection variables than its own task has (kaudit's result for the node is in "
                             "`kaudit`); set batch: false for this task and report it"}
            display.error(result["msg"])
        return result

    def _coordinate(self, kaudit: list[str], mine: Request, batch: list[str], task_vars: dict[str, Any],
                    scratch: str) -> dict[str, Any]:
        """Work out every host's task in the batch, run one kaudit per set of hosts with the same arguments
        (normally one for all), and return per host its fingerprint and result (hosts not batched: none)."""
        started = time.process_time()
        requests: list[Request] = []
        skipped: dict[str, str] = {}
        try:
            raw, variables, play = self._raw_task()
        except Exception as exc:
            display.warning(f"kaudit.audit: one kaudit per host: the task cannot be worked out per host ({exc})")
            return {}
        for name in batch:
            if name == mine.name:
                requests.append(mine)
                continue
            try:
                req = self._peer_request(raw, variables, play, name, task_vars)
            except Exception as exc:  # the host's own fork will meet the same problem, or run alone
                skipped[name] = f"{type(exc).__name__}: {exc}"
                continue
            if req is None:
                skipped[name] = "when: false"
            else:
                requests.append(req)
        if len(requests) < 2:
            return {}  # only this host: its own run, with this plugin's own gate
        for name, why in skipped.items():
            display.vvv(f"kaudit.audit: {name} not in the batch: {why}")
        results: dict[str, dict[str, Any]] = {}
        partitions: dict[tuple[str, str | None], list[Request]] = {}
        play_hosts = set(task_vars.get("ansible_play_hosts") or [])
        for req in requests:
            failed_before = [p for p in req.peers if p not in play_hosts]
            if failed_before:
                results[req.name] = {"failed": True, "changed": False, "refused": True,
                                     "msg": f"{req.name}: refused: {', '.join(failed_before)} of group {req.group} "
                                            "failed earlier in this play; not changing another node of that cluster"}
                continue
            key = json.dumps([req.args, req.check, req.diff], sort_keys=True, default=str)
            partitions.setdefault((key, req.host.sudo_password), []).append(req)
        runs = len([p for p in partitions.values() if p])
        prepare = round(time.process_time() - started, 3)  # the controller's CPU for working out the hosts' tasks
        for members in partitions.values():
            try:
                batch_results = self._run_batch(kaudit, members, scratch)
            except KauditError as exc:
                batch_results = {r.name: {"failed": True, "changed": False, "msg": f"{r.name}: {exc}"}
                                 for r in members}
            for name, res in batch_results.items():
                results[name] = {**res, "batch": {"hosts": len(members), "kaudit_runs": runs,
                                                  "prepare_cpu_s": prepare}}
        by_name = {r.name: r for r in requests}
        return {name: {"fp": by_name[name].fingerprint(), "result": res} for name, res in results.items()}

    def _run_batch(self, kaudit: list[str], members: list[Request], scratch: str) -> dict[str, dict[str, Any]]:
        """One kaudit run for hosts with the same task: one inventory group per cluster group (kaudit changes
        a group's nodes one at a time behind its own health gate, and stops a group at its first failure),
        the groups in parallel up to the play's forks."""
        from ansible import constants as C
        from ansible import context

        first = members[0]
        args, check, want_diff = first.args, first.check, first.diff
        groups: dict[str, list[Host]] = {}
        for req in members:
            groups.setdefault(req.group or req.name, []).append(req.host)
        forks = int(context.CLIARGS.get("forks") or C.DEFAULT_FORKS)
        throttle = int(self._task.throttle or 0)
        parallel = max(1, min(forks, throttle) if throttle else forks)
        statuses: dict[str, dict[str, Any]] = {}
        if want_diff:
            status = run_kaudit(kaudit, ["status", "--output", "json"], [], scratch, 60 * len(members) + 60,
                                groups=groups)
            statuses = {str(n.get("node")): n for n in status.nodes()}
        per_node = args["timeout"] * 3 + 120
        largest = max(len(g) for g in groups.values())
        timeout = per_node * largest * math.ceil(len(groups) / parallel)
        run = run_kaudit(kaudit, [*self._change_args(args, check), "--parallel", str(parallel)], [], scratch,
                         timeout, groups=groups)
        nodes = {str(n.get("node")): n for n in run.nodes()}
        out: dict[str, dict[str, Any]] = {}
        for req in members:
            node = nodes.get(req.name)
            res = self._node_result(node, run, req.name, check)
            if node is not None and node.get("action") == "refused":
                res["refused"] = True
            if want_diff and node is not None:
                res["diff"] = self._diffs(kaudit, node, statuses.get(req.name), args)
            if res.get("failed") and req.group and not check:
                GroupGate(str(self._task._uuid), req.group).record_failure(req.name)
            out[req.name] = res
        return out

    def _raw_task(self) -> tuple[Any, Any, Any]:
        """The task as the playbook wrote it (before this host's templating), the variable manager and the
        play: what Ansible's strategy gives each host's worker."""
        from ansible.playbook.task import Task

        task = self._task
        play = task.get_play()
        variables = task._variable_manager
        if variables is None:
            raise RuntimeError("no variable manager")
        raw = Task.load(task.get_ds(), block=task._parent, role=task._role, variable_manager=variables,
                        loader=self._loader)
        return raw, variables, play

    def _engine(self, variables: dict[str, Any]) -> Any:
        try:
            from ansible._internal._templating._engine import TemplateEngine  # ansible-core >= 2.19
        except ImportError:
            from ansible.template import Templar

            return Templar(loader=self._loader, variables=variables)
        return TemplateEngine(loader=self._loader, variables=variables)

    def _peer_request(self, raw: Any, variables: Any, play: Any, name: str, task_vars: dict[str, Any]
                      ) -> Request | None:
        """Another host's task as its own worker would run it: its variables as the strategy computes them,
        `when`, the arguments templated and validated, check and diff mode, and the connection options its
        connection plugin resolves (task keywords, its variables). None when `when` skips it."""
        from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
        from ansible.playbook.play_context import PlayContext
        from ansible.plugins.loader import connection_loader

        host = variables._inventory.get_host(name)
        pvars = variables.get_vars(play=play, host=host, task=raw, _hosts=list(task_vars["ansible_play_batch"]),
                                   _hosts_all=list(task_vars.get("ansible_play_hosts_all") or []))
        for key in ("ansible_current_hosts", "ansible_failed_hosts"):
            if key in task_vars and key not in pvars:
                pvars[key] = task_vars[key]
        engine = self._engine(pvars)
        task = raw.copy()
        if hasattr(task, "_resolve_conditional"):
            if not task._resolve_conditional(task.when, pvars):
                return None
        elif not task.evaluate_conditional(engine, pvars):
            return None
        task.post_validate(templar=engine)
        checked = ArgumentSpecValidator(ARGUMENT_SPEC, mutually_exclusive=MUTUALLY_EXCLUSIVE).validate(task.args)
        if checked.error_messages:
            raise AnsibleActionFail("; ".join(checked.error_messages))
        args = checked.validated_parameters
        self._check_args(args, task.args)

        def template(value: Any) -> Any:
            try:
                return engine.template(value)
            except Exception:
                return value

        connection = str(template(pvars.get("ansible_connection")) or task.connection or "ssh")
        conn = connection_loader.get(connection, PlayContext(play=play), os.devnull)
        opts: dict[str, Any] = {}
        hkc = self._host_key_checking(task_vars)
        if conn is not None:
            from ansible import constants as C

            var_options = {k: template(pvars[k]) for k in C.config.get_plugin_vars("connection", conn._load_name)
                           if k in pvars}
            task_keys = task.dump_attrs()
            task_keys.pop("retries", None)
            task_keys.pop("timeout", None)
            conn.set_options(task_keys=task_keys, var_options=var_options)
            for option in CONNECTION_OPTIONS:
                try:
                    opts[option] = conn.get_option(option)
                except Exception:  # noqa: S112 - a plugin without that option
                    continue
            with contextlib.suppress(Exception):  # else as for this host
                hkc = bool(conn.get_option("host_key_checking"))
        own = Host(name, host_variables(name, connection, opts, pvars, host_key_checking=hkc,
                                        kind_cluster=args.get("kind_cluster"), known_hosts=args.get("known_hosts")),
                   sudo_password=self._peer_password(pvars, task_vars, template))
        pvars_named = {**pvars, "inventory_hostname": name}
        group, peers = self._group(pvars_named, args.get("group"), template)
        return Request(name, args, bool(task.check_mode), bool(task.diff), own, group, peers)

    def _peer_password(self, pvars: dict[str, Any], task_vars: dict[str, Any], template: Any) -> str | None:
        for name in BECOME_PASSWORD_VARS:
            if name in pvars and pvars[name] not in (None, ""):
                return str(template(pvars[name]))
        # -K: the play context's password, when this host has none of its own in its variables
        if not any(task_vars.get(n) not in (None, "") for n in BECOME_PASSWORD_VARS):
            cli = getattr(self._play_context, "become_pass", None)
            return str(cli) if cli else None
        return None
