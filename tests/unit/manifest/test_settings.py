"""The table of audit backend settings (installer/manifest/settings.py) and everything made from it or checked
against it: the flags and mounts, the checks, enable's, switch's and export's options, docs/output.md's rotation
default, and the Ansible action's ARGUMENT_SPEC and module documentation (issue 20 item 1)."""

from __future__ import annotations

import ast
from typing import Any

import pytest
import typer

from installer.errors import InputError
from installer.manifest import settings
from installer.manifest.patch import AuditConfig
from installer.node import layout
from tests.paths import ROOT

ANSIBLE_ACTION = ROOT / "ansible" / "plugins" / "action" / "audit.py"
ANSIBLE_MODULE = ROOT / "ansible" / "plugins" / "modules" / "audit.py"
ANSIBLE_TYPES = {"file": "path", "path": "str", "int": "int", "choice": "str", "bool": "bool"}


def _command(name: str) -> Any:
    """The click command typer builds (typer vendors its own click: no isinstance against the click package)."""
    from installer.cli import app

    group: Any = typer.main.get_command(app)
    return group.commands[name]


def _param(command: Any, option: str) -> Any:
    found = [p for p in command.params if option in p.opts]
    assert len(found) == 1, (command.name, option)
    return found[0]


@pytest.mark.parametrize("name", ["enable", "switch", "export"])
def test_every_backend_option_is_the_tables(name: str) -> None:
    """enable, switch and export take every setting's option, with the table's names, metavar, help and type;
    and no --log-*/--webhook-* option the table does not hold."""
    command = _command(name)
    for s in settings.SETTINGS:
        if s.option is None:
            continue
        p = _param(command, s.option)
        assert p.help is not None and p.help.startswith(s.help.rstrip(".")), (name, s.option, p.help)
        if s.kind == "bool":
            assert p.secondary_opts == [f"--no-{s.option.removeprefix('--')}"] and p.default is None
        else:
            assert p.metavar == s.metavar, (name, s.option)
        want = {"int": int, "bool": bool}.get(s.kind, str)
        assert p.type_descriptor.annotation is want, (name, s.option, p.type_descriptor)
        if s.name != "log_path":
            assert p.default is None, (name, s.option)  # the table's (or the profile's) default applies later
    table_options = {s.option for s in settings.SETTINGS if s.option}
    backend_like = {o for p in command.params for o in [*p.opts, *p.secondary_opts]
                    if o.startswith(("--log-", "--webhook-", "--no-log-"))}
    assert backend_like - {f"--no-{o.removeprefix('--')}" for o in table_options} == table_options


def test_enable_log_path_default_is_the_tables() -> None:
    assert _param(_command("enable"), "--log-path").default == settings.BY_NAME["log_path"].default == layout.LOG_PATH
    assert _param(_command("export"), "--log-path").default is None  # the flavor's: minikube's is -


def test_flags_follow_the_table_order_and_apply_only_where_they_mean_something() -> None:
    full = AuditConfig(policy_file="/etc/kubernetes/audit/policy-0.yaml", log_format="legacy", log_compress=False,
                       webhook_config_file="/etc/kubernetes/audit/webhook-0.kubeconfig", webhook_mode="blocking")
    assert [f for f, _ in full.flags()] == [s.flag for s in settings.SETTINGS]
    assert dict(full.flags())["--audit-log-compress"] == "false"
    stdout = AuditConfig(policy_file=full.policy_file, log_path="-", log_format="json", log_compress=True)
    assert stdout.flags() == [("--audit-policy-file", full.policy_file), ("--audit-log-path", "-"),
                              ("--audit-log-format", "json")]  # no rotation or compression without a file
    no_webhook = AuditConfig(policy_file=full.policy_file, webhook_mode="batch")
    assert "--audit-webhook-mode" not in dict(no_webhook.flags())
    webhook_only = AuditConfig(policy_file=full.policy_file, log_path=None, maxage=1,
                               webhook_config_file=full.webhook_config_file)
    assert [f for f, _ in webhook_only.flags()] == ["--audit-policy-file", "--audit-webhook-config-file"]


def test_mounts() -> None:
    values: dict[str, settings.Value] = {"policy_file": "/etc/kubernetes/audit/p.yaml", "log_path": layout.LOG_PATH,
                                         "webhook_config": "/etc/kubernetes/audit/w.kubeconfig"}
    assert settings.mounts(values) == [settings.Mount("kaudit-policy", "/etc/kubernetes/audit", True),
                                       settings.Mount("kaudit-log", "/var/log/kubernetes/audit", False)]
    values["webhook_config"] = "/etc/falco/w.kubeconfig"
    assert [m.volume for m in settings.mounts(values)] == ["kaudit-policy", "kaudit-webhook", "kaudit-log"]
    values["log_path"] = "/etc/falco/audit.log"
    with pytest.raises(InputError, match="mounted read-only"):
        settings.mounts(values)
    values["log_path"] = "/var/log/audit.log"
    with pytest.raises(InputError, match="read-write"):
        settings.mounts(values)


@pytest.mark.parametrize(("values", "message"), [
    ({"maxage": -1}, "--log-maxage must be 0 or more, not -1"),
    ({"maxsize": -5}, "--log-maxsize must be 0 or more, not -5"),
    ({"log_format": "xml"}, "--log-format must be one of json, legacy, not 'xml'"),
    ({"webhook_config": "w", "webhook_mode": "sync"}, "--webhook-mode must be one of batch, blocking, blocking-strict"),
    ({"webhook_mode": "batch"}, "--webhook-mode needs --webhook-config"),
    ({"log_path": "audit.log"}, "--log-path: the audit log path must be absolute"),
    ({"log_path": "/etc/audit.log"}, "--log-path: the audit log /etc/audit.log would mount /etc read-write"),
])
def test_check_gives_one_precise_message(values: dict[str, settings.Value], message: str) -> None:
    with pytest.raises(InputError) as err:
        settings.check(values)
    assert str(err.value).startswith(message)


def test_export_args_name_every_given_value() -> None:
    values: dict[str, settings.Value] = {
        "log_path": layout.LOG_PATH, "maxage": 7, "maxbackup": None, "maxsize": 0, "log_format": "legacy",
        "log_compress": False, "webhook_config": "wh.kubeconfig", "webhook_mode": "blocking"}
    assert settings.export_args(values) == [
        "--log-maxage", "7", "--log-maxsize", "0", "--log-format", "legacy", "--no-log-compress",
        "--webhook-config", "wh.kubeconfig", "--webhook-mode", "blocking"]
    assert settings.export_args({"log_path": "-", "log_compress": True}) == ["--log-path", "-", "--log-compress"]


def test_rotation_defaults_are_the_tables_everywhere() -> None:
    from installer.policy.source import FILE_LOG_DEFAULTS
    from installer.simulate.run import DEFAULT_ROTATION

    assert settings.ROTATION_DEFAULTS == (30, 10, 100) == DEFAULT_ROTATION == FILE_LOG_DEFAULTS
    defaults = AuditConfig(policy_file="/p.yaml")
    assert (defaults.maxage, defaults.maxbackup, defaults.maxsize) == settings.ROTATION_DEFAULTS
    output = (ROOT / "docs" / "output.md").read_text()
    text = settings.rotation_text()
    assert f"`default` ({text})" in output and f"at {text} rotation" in output


def _literal(path: Any, name: str) -> Any:
    """A module-level constant of a file that imports Ansible (not installed here), read without running it."""
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) \
            else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            assert node.value is not None
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not in {path}")


def _expected_ansible(s: settings.Setting) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ANSIBLE_TYPES[s.kind]}
    if s.choices:
        out["choices"] = list(s.choices)
    return out  # no default: kaudit's (the table's, or the profile's) applies


def test_ansible_argument_spec_is_the_tables() -> None:
    """The Ansible action's ARGUMENT_SPEC and the module's documented options, checked against the table: the
    same options, types and choices, no default of their own; and `_change_args` passes each on as the option."""
    spec = _literal(ANSIBLE_ACTION, "ARGUMENT_SPEC")
    from ruamel.yaml import YAML

    documented = YAML(typ="safe", pure=True).load(_literal(ANSIBLE_MODULE, "DOCUMENTATION"))["options"]
    source = ANSIBLE_ACTION.read_text()
    ours = {s.ansible: s for s in settings.SETTINGS if s.ansible}
    for name, s in ours.items():
        assert spec.get(name) == _expected_ansible(s), (name, spec.get(name))
        doc = {k: v for k, v in documented[name].items() if k in ("type", "choices", "default")}
        assert doc == _expected_ansible(s), (name, doc)
        assert s.option is not None or f'"--{name.replace("_", "-")}"' in source, name  # the policy: --policy-file
    backend_like = {k for k in spec if k.startswith(("log_", "webhook_"))}
    assert backend_like <= set(ours)
    assert set(_literal(ANSIBLE_ACTION, "ENABLE_ONLY")) >= set(ours)


def test_ansible_flag_map_is_the_tables() -> None:
    """The action's BACKEND_OPTIONS (the map _change_args passes the module's options on with) is the table's:
    every row with an option, under its Ansible name, with its option and kind, in the table's order."""
    table = {s.ansible: (s.option, s.kind) for s in settings.SETTINGS if s.ansible and s.option}
    mapped = _literal(ANSIBLE_ACTION, "BACKEND_OPTIONS")
    assert list(mapped) == list(table) and {k: tuple(v) for k, v in mapped.items()} == table


def _action_module(tmp_path: Any) -> Any:
    """The collection's action plugin, imported as Ansible imports it (ansible_collections.kaudit.audit)."""
    import importlib
    import sys

    root = tmp_path / "collections"
    (root / "ansible_collections" / "kaudit").mkdir(parents=True)
    (root / "ansible_collections" / "kaudit" / "audit").symlink_to(ROOT / "ansible")
    sys.path.insert(0, str(root))
    try:
        for name in [m for m in sys.modules if m.startswith("ansible_collections")]:
            del sys.modules[name]
        return importlib.import_module("ansible_collections.kaudit.audit.plugins.action.audit")
    finally:
        sys.path.remove(str(root))


@pytest.mark.parametrize("flip", [False, True])
def test_ansible_change_args_reach_every_setting_of_kaudit_enable(tmp_path: Any, flip: bool) -> None:
    """_change_args with every table option given, parsed by kaudit's own enable command: each setting arrives
    at the parameter its row's option names, with the value the task gave (a bool both ways)."""
    pytest.importorskip("ansible")
    action = _action_module(tmp_path)
    values: dict[str, Any] = {"log_path": "/var/log/k/audit.log", "log_maxage": 7, "log_maxbackup": 3,
                              "log_maxsize": 0, "log_format": "legacy", "log_compress": flip,
                              "webhook_config": "/tmp/wh.kubeconfig", "webhook_mode": "blocking"}
    assert set(values) == {s.ansible for s in settings.SETTINGS if s.ansible and s.option}
    args = {"state": "enabled", "timeout": 9.0, "guard_grace": None, "break_lock": False, "profile": "minimal",
            "vars": {}, "policy_file": None, "adopt": False, "force": False, **values}
    argv = action.ActionModule._change_args(object.__new__(action.ActionModule), args, False)
    assert argv[0] == "enable"
    command = _command("enable")
    ctx = command.make_context("enable", [*argv[1:], "inventory.json"], resilient_parsing=False)
    for s in settings.SETTINGS:
        if s.ansible in values:
            assert s.option is not None
            assert ctx.params[_param(command, s.option).name] == values[s.ansible], s.name
    assert ctx.params["profile"] == "minimal"
