"""Start-up (issue 21 item 2): `kaudit --help` imports no heavy library, and each command imports only what it
needs: which modules load, never how long they take (bench/startup.py times them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.paths import GOLDEN, ROOT

HEAVY = ("paramiko", "ruamel", "jinja2")


def _modules_after(args: list[str]) -> set[str]:
    code = (
        "import sys\n"
        f"sys.argv = ['kaudit', *{args!r}]\n"
        "from installer.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {line.split(".")[0] for line in out.splitlines()}


def test_help_imports_no_heavy_module() -> None:
    loaded = _modules_after(["--help"])
    assert "installer" in loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_command_help_imports_no_heavy_module() -> None:
    loaded = _modules_after(["status", "--help"])
    assert not loaded & set(HEAVY)


def test_the_cached_top_level_help_is_typers_own() -> None:
    """`kaudit --help` is answered from installer/_help.py without importing typer; it must be exactly what
    typer renders (regenerate with `python -m installer.cli --write-help` after changing a command)."""
    from installer._help import TOP_HELP
    from installer.cli import render_top_help

    assert render_top_help() == TOP_HELP


def test_fast_help_and_version_import_no_cli_framework() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['kaudit', '--help']\n"
        "from installer.entry import main\n"
        "main()\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"}).stdout
    help_text, _, modules = out.partition("MODULES ")
    assert help_text.startswith("Usage: kaudit [OPTIONS] COMMAND [ARGS]...")
    assert "enable" in help_text and "rollback" in help_text
    loaded = {m.split(".")[0] for m in modules.split()}
    assert not loaded & {"typer", "click", "rich", *HEAVY}


def test_the_fast_help_offers_shell_completion() -> None:
    """The cached help is typer's with the completion options (installer.cli adds them itself)."""
    from installer._help import TOP_HELP

    assert "--install-completion [bash|zsh|fish]" in TOP_HELP
    assert "--show-completion [bash|zsh|fish]" in TOP_HELP


# -- which modules each command imports ------------------------------------------------------------------------
# A command that reaches nodes is stopped at its first remote step, before any network: the TCP connection to
# the node's sshd (paramiko imported, ssh config read: `installer.transport.ssh._dial`) or the first command
# on a local transport. What it imported up to there is what it cost before the node was asked anything.
_STOP = r"""
import importlib.machinery, json, os, sys
def _stop(*a, **k):
    print('MODULES', json.dumps(sorted(sys.modules)), flush=True)
    os._exit(97)
def _patch(mod):
    if mod.__name__ == 'installer.transport.ssh':
        mod._dial = _stop
    else:
        mod.Transport.run = mod.Transport.open = _stop
class _Hook:
    def find_spec(self, name, path=None, target=None):
        if name not in ('installer.transport', 'installer.transport.ssh'):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            _patch(module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, _Hook())
import atexit
atexit.register(lambda: print('MODULES', json.dumps(sorted(sys.modules)), flush=True))
sys.argv = ['kaudit', *sys.argv[1:]]
from installer.entry import main
main()
"""

PYDANTIC = ("pydantic", "pydantic_core", "typer._adapters")
SSH = ("paramiko", "cryptography", "nacl")
CATALOGUE = ("installer.detections.catalogue", "installer.detections.catalogue_snapshot")
NODE_WORK = ("installer.change", "installer.targets.connect", "installer.transport", "installer.node.facts")
SIMULATE = ("installer.simulate.run", "installer.simulate.simulate")


@pytest.fixture(scope="module")
def audit_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests import auditgen

    path = tmp_path_factory.mktemp("startup") / "audit.log"
    auditgen.write(path, 30)
    return path


def modules_of(args: list[str]) -> set[str]:
    """Every module loaded by `kaudit ARGS` run as the user runs it (installer.entry), up to its exit or to its
    first remote step."""
    proc = subprocess.run([sys.executable, "-c", _STOP, *args], capture_output=True, text=True, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "COLUMNS": "100"}, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("MODULES ")]
    assert lines, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    assert proc.returncode in (0, 1, 97), (proc.returncode, proc.stderr[-2000:])
    return set(json.loads(lines[0].removeprefix("MODULES ")))


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


# (command line, modules it must not import). {LOG}: a small audit log; {POLICY}: a policy file.
NOT_NEEDED: list[tuple[list[str], tuple[str, ...]]] = [
    (["profiles"], (*PYDANTIC, *SSH, *CATALOGUE, *NODE_WORK, "jinja2")),
    (["render", "minimal"], (*PYDANTIC, *SSH, *NODE_WORK, *SIMULATE)),
    (["validate", "{POLICY}"], (*PYDANTIC, *SSH, *NODE_WORK, *SIMULATE, "jinja2")),
    (["export", "-f", "kubeadm", "-p", "minimal"], (*PYDANTIC, *SSH, *CATALOGUE, *NODE_WORK)),
    (["simulate", "{LOG}", "-p", "minimal"], (*PYDANTIC, *SSH, *NODE_WORK)),
    (["tune", "{LOG}"], (*PYDANTIC, *SSH, *NODE_WORK)),
    (["enable", "--help"], (*PYDANTIC, *SSH, *CATALOGUE, *NODE_WORK, "jinja2", "ruamel")),
    (["status", "--help"], (*PYDANTIC, *SSH, *CATALOGUE, *NODE_WORK, "jinja2", "ruamel")),
    (["enable", "root@127.0.0.1", "-p", "minimal", "--yes"], (*PYDANTIC, *CATALOGUE, *SIMULATE)),
    (["enable", "local", "-p", "minimal", "--yes"], (*PYDANTIC, *SSH, *CATALOGUE, *SIMULATE)),
    (["disable", "root@127.0.0.1", "--yes"], (*PYDANTIC, *CATALOGUE, *SIMULATE, "jinja2")),
    (["status", "root@127.0.0.1"], (*PYDANTIC, *CATALOGUE, *SIMULATE, "jinja2")),
    (["rollback", "root@127.0.0.1", "--yes"], (*PYDANTIC, *CATALOGUE, *SIMULATE, "jinja2")),
    (["logs", "root@127.0.0.1"], (*PYDANTIC, *CATALOGUE, "jinja2")),
]


@pytest.mark.parametrize(("args", "forbidden"), NOT_NEEDED, ids=[" ".join(a) for a, _ in NOT_NEEDED])
def test_a_command_imports_only_what_it_needs(args: list[str], forbidden: tuple[str, ...], audit_log: Path) -> None:
    values = {"{LOG}": str(audit_log), "{POLICY}": str(GOLDEN / "minimal.yaml")}
    modules = modules_of([values.get(a, a) for a in args])
    assert "installer.cli" in modules  # it did run the command
    assert not _loaded(modules, forbidden), _loaded(modules, forbidden)


def test_the_catalogue_snapshot_is_current() -> None:
    """installer/detections/catalogue_snapshot.py is the catalogue's YAML, parsed (regenerate with
    `python -m installer.detections.catalogue --write-snapshot` after changing profiles/detections)."""
    from installer.detections import catalogue as detections

    snapshot = Path(detections.__file__).with_name("catalogue_snapshot.py").read_text(encoding="utf-8")
    assert snapshot == detections.snapshot_source()


def test_the_catalogue_loads_from_the_snapshot_without_parsing_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    from installer import yamlio
    from installer.detections import catalogue as detections

    def no_yaml(*_: Any) -> Any:
        raise AssertionError("the catalogue was parsed from YAML")

    monkeypatch.setattr(yamlio, "reader", no_yaml)
    detections.load.cache_clear()
    try:
        assert {d.name for d in detections.load()} >= {"pod-exec"}
    finally:
        detections.load.cache_clear()


def test_a_changed_catalogue_file_is_parsed_not_taken_from_the_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    from installer.detections import catalogue as detections

    ((name, text),) = detections.catalogue_files()
    changed = text.replace("title: Command run inside a pod", "title: Changed here", 1)
    assert changed != text
    monkeypatch.setattr(detections, "catalogue_files", lambda: [(name, changed)])
    detections.load.cache_clear()
    try:
        assert next(d.title for d in detections.load() if d.name == "pod-exec") == "Changed here"
    finally:
        detections.load.cache_clear()


# -- option values converted without pydantic, as pydantic converts them ---------------------------------------

def _pydantic(annotation: Any, info: Any, value: Any) -> tuple[str, Any]:
    from pydantic import ValidationError
    from typer._adapters import try_build_adapter
    from typer._display import get_error_msg

    adapter = try_build_adapter(annotation, info)
    assert adapter is not None
    try:
        return "ok", adapter.validate_python(value)
    except ValidationError as exc:
        return "error", get_error_msg(exc)


def _lean(annotation: Any, info: Any, value: Any) -> tuple[str, Any]:
    from installer.cli import lean_converter

    convert = lean_converter(annotation, info)
    assert convert is not None, annotation
    try:
        return "ok", convert(value, None)
    except ValueError as exc:
        return "error", str(exc)


def _cases() -> list[tuple[Any, dict[str, Any], Any]]:
    from installer.cli import Shell

    words = ["", "7", " 7 ", "+7", "-3", "0", "1", "abc", "1.5", "1e3", "nan", "inf", "-inf", "true", "False",
             "YES", "off", "y", "2", "bash", "Bash", "fishy"]
    out: list[tuple[Any, dict[str, Any], Any]] = []
    for annotation, info in ((str, {}), (int, {}), (int, {"min": 1}), (int, {"min": 1, "max": 5}), (float, {}),
                             (float, {"min": 0.5}), (bool, {}), (Shell, {})):
        out += [(annotation, info, w) for w in words]
        out += [(list[annotation], info, ("1", "x")), (list[annotation], info, ())]  # type: ignore[valid-type]
    out += [(int, {}, 5), (float, {}, 2.5), (bool, {}, True), (Shell, {}, Shell.zsh)]
    return out


@pytest.mark.parametrize(("annotation", "info", "value"), _cases())
def test_option_values_convert_as_typers_pydantic_conversion(annotation: Any, info: dict[str, Any], value: Any
                                                             ) -> None:
    from typer.models import OptionInfo

    option = OptionInfo(**info)
    assert repr(_lean(annotation, option, value)) == repr(_pydantic(annotation, option, value))  # nan == nan


def test_every_parameter_of_every_command_converts_without_pydantic() -> None:
    import typer.main

    from installer.cli import app, lean_converter

    def params(command: Any) -> list[Any]:
        return [*command.params, *(p for sub in getattr(command, "commands", {}).values() for p in params(sub))]

    missing = [p.name for p in params(typer.main.get_group(app))
               if lean_converter(p.type_descriptor.annotation, p.type_descriptor.parameter_info) is None]
    assert not missing, f"typer would import pydantic for: {missing}"


def test_the_profiles_snapshot_is_current() -> None:
    """installer/policy/profiles_snapshot.py is the profile definitions' YAML, parsed (regenerate with
    `python -m installer.policy.profiles --write-snapshot` after changing profiles/*.yaml)."""
    from installer.policy import profiles

    snapshot = Path(profiles.__file__).with_name("profiles_snapshot.py").read_text(encoding="utf-8")
    assert snapshot == profiles.snapshot_source()


def test_profile_definitions_load_from_the_snapshot_without_parsing_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    from installer import yamlio
    from installer.policy import profiles

    def no_yaml(*_: Any) -> Any:
        raise AssertionError("a profile definition was parsed from YAML")

    monkeypatch.setattr(yamlio, "reader", no_yaml)
    profiles._all_profiles.cache_clear()
    profiles._one_profile.cache_clear()
    try:
        assert [p.name for p in profiles.list_profiles()][:2] == ["minimal", "recommended"]
        assert profiles.load_profile("cis").name == "cis"
    finally:
        profiles._all_profiles.cache_clear()
        profiles._one_profile.cache_clear()
