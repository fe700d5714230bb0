"""Bad input (issue 7, item 4): each case gets one clear message, a non-zero exit code (2: bad input)
and leaves the node exactly as it was; values with shell metacharacters are refused or applied
literally, and never run on the node."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults import MANIFEST, healthy_with, tally
from tests.kaudit_cli import change, kaudit
from tests.node.node import TestNode

STATE = ("/etc/kubernetes", "/var/lib/kaudit")


def snapshot(node: TestNode) -> dict[str, Any]:
    """The manifest's bytes and every entry under the state dirs: mode, size, mtime."""
    out: dict[str, Any] = {"manifest": node.path(MANIFEST).read_bytes()}
    for nd in STATE:
        root = node.path(nd)
        for p in sorted(root.rglob("*")) if root.exists() else []:
            st = p.lstat()
            out[str(p.relative_to(root.parent))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def refused(run: Any, *needles: str) -> str:
    """The run's one message (JSON node message, or stderr before any node was reached)."""
    assert run.code == 2, (run.code, run.out, run.err)
    text = run.node["message"] if run.out.strip().startswith("{") else run.err.strip()
    assert text, (run.out, run.err)
    for n in needles:
        assert n in text, (n, text)
    assert "Traceback" not in run.out + run.err
    return text


# --------------------------------------------------------------------------- refused before the node

TYPO_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
    resource:
      - group: ""
        resources: ["secrets"]
  - level: RequestResponse
"""
V1BETA1_POLICY = """\
apiVersion: audit.k8s.io/v1beta1
kind: Policy
rules:
  - level: Metadata
"""
BODIES_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: RequestResponse
"""

CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("unknown profile", ["--profile", "nope"], ("unknown profile 'nope'", "known profiles: minimal")),
    ("unknown variable", ["--profile", "minimal", "--set", "nope=1"], ("no variable 'nope'", "valid variables")),
    ("bool variable not a bool", ["--profile", "minimal", "--set", "omit_request_received=maybe"],
     ("omit_request_received='maybe'", "expected a boolean")),
    ("--set without =", ["--profile", "minimal", "--set", "exclude_namespaces"], ("expected name=value",)),
    ("variable value that would break YAML", ["--profile", "minimal", "--set", "exclude_namespaces=a: b"],
     ("exclude_namespaces", "is not allowed here")),
    ("resource pattern", ["--profile", "cis", "--set", "extra_metadata_resources=pods]: {x"],
     ("extra_metadata_resources", "is not allowed here")),
    ("variable of another profile", ["--profile", "minimal", "--set", "body_namespaces=ci"],
     ("no variable 'body_namespaces'",)),
    ("negative maxage", ["--profile", "minimal", "--log-maxage", "-1"], ("--log-maxage must be 0 or more",)),
    ("maxsize not a number", ["--profile", "minimal", "--log-maxsize", "big"], ("--log-maxsize",)),
    ("unknown log format", ["--profile", "minimal", "--log-format", "xml"], ("--log-format must be one of",)),
    ("unknown webhook mode", ["--profile", "minimal", "--webhook-mode", "sync"], ("--webhook-mode must be one of",)),
    ("relative log path", ["--profile", "minimal", "--log-path", "audit.log"], ("must be absolute",)),
    ("profile and policy file", ["--profile", "minimal", "--policy-file", "/nonexistent"], ("exactly one",)),
    ("missing policy file", ["--policy-file", "/nonexistent/policy.yaml"], ("cannot read --policy-file",)),
    ("policy typo resource:", ["--policy-file", "{typo}"], ("resource", "not a valid audit policy")),
    ("policy v1beta1", ["--policy-file", "{v1beta1}"], ("v1beta1",)),
    ("policy recording Secrets", ["--policy-file", "{bodies}"], ("Secrets", "--force")),
]


@pytest.fixture(scope="module")
def policy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("policies")
    out = {}
    for name, text in (("typo", TYPO_POLICY), ("v1beta1", V1BETA1_POLICY), ("bodies", BODIES_POLICY)):
        (d / f"{name}.yaml").write_text(text)
        out[name] = str(d / f"{name}.yaml")
    return out


@pytest.mark.parametrize(("case", "args", "needles"), CASES, ids=[c[0] for c in CASES])
def test_bad_flags_refused_before_any_change(module_node: TestNode, policy_files: dict[str, str], case: str,
                                             args: list[str], needles: tuple[str, ...]) -> None:
    args = [policy_files.get(a.strip("{}"), a) if a.startswith("{") else a for a in args]
    before = snapshot(module_node)
    run = change(module_node, "enable", *args, timeout=3)
    if case == "maxsize not a number":  # typer's own message (usage error, exit 2)
        assert run.code == 2 and "--log-maxsize" in run.err and "valid integer" in run.err, run.err
    else:
        refused(run, *needles)
    assert snapshot(module_node) == before
    tally(f"bad input: {case}", 1, 1, 0)


TARGETS = [("kadmin@", "is not user@host"), ("ssh://kadmin@127.0.0.1:notaport", "is not user@host"),
           ("kadmin@127.0.0.1:99999", "out of range"), ("kind://a/b/c", "not a valid name"),
           ("minikube://x y", "not a valid name"), (":::", "is not user@host"), ("", "empty target"),
           ("kadmin@host;touch /tmp/pwned", "")]


def test_targets_that_do_not_parse(module_node: TestNode) -> None:
    before = snapshot(module_node)
    for target, needle in TARGETS:
        run = kaudit("enable", target, "--yes", "--profile", "minimal", "--timeout", "3")
        assert run.code == 2 and needle in run.out + run.err, (target, run.out, run.err)
        assert "Traceback" not in run.out + run.err
    assert snapshot(module_node) == before
    assert not list(Path("/tmp").glob("pwned"))
    tally("bad input: targets that do not parse", len(TARGETS), len(TARGETS), 0)


# --------------------------------------------------------------------------- bad manifests on the node


@pytest.fixture(scope="module")
def manifest_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    """A node whose manifest each test replaces (the simulator then stops the pod) and puts back."""
    from tests.node import missing_requirements

    if missing_requirements():
        pytest.skip(missing_requirements() or "")
    node = TestNode.start(tmp_path_factory.mktemp("manifest-node"), linger=0.05, restart_delay=0.05)
    try:
        yield node
    finally:
        node.stop()


def _bad_manifests(orig: bytes) -> dict[str, tuple[bytes, tuple[str, ...]]]:
    return {
        "not a Pod": (b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-apiserver\n",
                      ("not a v1 Pod", "ConfigMap")),
        "list, not a mapping": (b"- a\n- b\n", ("not a mapping",)),
        "no kube-apiserver container": (orig.replace(b"kube-apiserver\n", b"etcd\n").replace(b"- kube-apiserver",
                                                                                            b"- etcd"),
                                        ("no container runs kube-apiserver",)),
        "duplicate keys": (orig.replace(b"kind: Pod\n", b"kind: Pod\nkind: Pod\n", 1),
                           ("duplicate key 'kind'", "on the node is not valid as it is")),
        "empty": (b"", ("empty",)),
        "10 MB": (orig + b"#" + b"x" * (10 * 1024 * 1024) + b"\n", ("too large",)),
        "not UTF-8": (orig + b"# caf\xe9 \xff\xfe\n", ("not UTF-8",)),
        "not YAML": (b"apiVersion: v1\nkind: Pod\nspec: {containers: [\n", ("not valid YAML",)),
    }


@pytest.mark.parametrize("case", ["not a Pod", "list, not a mapping", "no kube-apiserver container", "duplicate keys",
                                  "empty", "10 MB", "not UTF-8", "not YAML"])
def test_bad_manifest_refused_and_left_alone(manifest_node: TestNode, case: str) -> None:
    node = manifest_node
    orig = node.path(MANIFEST).read_bytes()
    data, needles = _bad_manifests(orig)[case]
    node.path(MANIFEST).write_bytes(data)
    try:
        before = snapshot(node)
        run = change(node, "enable", "--profile", "minimal", timeout=3)
        text = refused(run, *needles)
        assert len(text) < 600, text  # one message, not the whole manifest
        assert snapshot(node) == before
        run = change(node, "disable", timeout=3)  # refused, or nothing to take out (auditing is off)
        assert run.code == 2 or (run.code == 0 and run.node["action"] == "unchanged"), run.out + run.err
        assert snapshot(node) == before
    finally:
        node.path(MANIFEST).write_bytes(orig)
    healthy_with(node, orig)
    tally(f"bad manifest: {case}", 2, 2, 0)


# --------------------------------------------------------------------------- shell metacharacters


def _markers() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return tag, f"/tmp/pwned-{tag}"


def _no_marker(node: TestNode, tag: str) -> None:
    inside = node.run(f"ls /tmp/pwned-{tag}* 2>/dev/null; true").stdout.strip()
    assert not inside, inside
    assert not list(Path("/tmp").glob(f"pwned-{tag}*"))


def _nasty(marker: str) -> list[str]:
    return [f"a;touch {marker}-semi", f"$(touch {marker}-dollar)", f"`touch {marker}-tick`",
            f"x' ; touch {marker}-squote ; '", f'x" ; touch {marker}-dquote ; "', f"a b|touch {marker}-pipe"]


def test_set_values_with_shell_metacharacters(node_factory: Any) -> None:
    node = node_factory(linger=0.05, restart_delay=0.05)
    orig = node.path(MANIFEST).read_bytes()
    tag, marker = _markers()
    tries = 0
    # A pattern-guarded variable refuses them...
    for value in _nasty(marker):
        before = snapshot(node)
        run = change(node, "enable", "--profile", "minimal", "--set", f"exclude_namespaces={value}", timeout=3)
        refused(run, "exclude_namespaces", "is not allowed here")
        assert snapshot(node) == before
        tries += 1
    # ...a free-text one (user names may hold nearly anything) takes them literally, as YAML strings.
    users = [v.replace(",", " ") for v in _nasty(marker)]
    run = change(node, "enable", "--profile", "minimal", "--set", "ignore_users=" + ",".join(users), timeout=10)
    assert run.code == 0, run.out + run.err
    tries += 1
    from ruamel.yaml import YAML

    policy = next(node.path("/etc/kubernetes/audit").glob("policy-*.yaml"))
    rules = YAML(typ="safe", pure=True).load(policy.read_text())["rules"]
    assert rules[0]["level"] == "None" and rules[0]["users"] == users
    _no_marker(node, tag)
    assert change(node, "disable", timeout=10).code == 0 and node.path(MANIFEST).read_bytes() == orig
    _no_marker(node, tag)
    tally("shell metacharacters in --set values", tries, tries, 0)


def test_log_paths_with_shell_metacharacters(node_factory: Any) -> None:
    node = node_factory(linger=0.05, restart_delay=0.05)
    orig = node.path(MANIFEST).read_bytes()
    tag, marker = _markers()
    applied = 0
    paths = [f"/var/log/x $(touch {marker}-dollar)/audit.log", f"/var/log/x`touch {marker}-tick`/audit.log",
             f"/var/log/a;touch {marker}-semi;/audit.log", f"/var/log/q'\"{tag}/audit.log",
             "/var/log/with space/audit.log"]
    for path in paths:
        before = snapshot(node)
        run = change(node, "enable", "--profile", "minimal", "--log-path", path, timeout=10)
        _no_marker(node, tag)
        if run.code == 0:  # applied literally: the manifest carries the path as it was given
            from installer.manifest.read import read

            info = read(node.path(MANIFEST).read_bytes())
            log = next(p for p in info.audit.paths if p.flag == "--audit-log-path")
            assert log.container_path == path, (log, path)
            assert f"--audit-log-path={path}" in (node.current_instance() or {}).get("argv", [])
            applied += 1
            assert change(node, "disable", timeout=10).code == 0
            assert node.path(MANIFEST).read_bytes() == orig
        else:
            refused(run, "--log-path")
            assert snapshot(node) == before
        _no_marker(node, tag)
    tally("shell metacharacters in --log-path", len(paths), len(paths), 0)


def test_policy_file_path_with_shell_metacharacters(node_factory: Any, tmp_path: Path) -> None:
    node = node_factory(linger=0.05, restart_delay=0.05)
    orig = node.path(MANIFEST).read_bytes()
    tag, marker = _markers()
    m = marker.replace("/", "\\\\057")  # no "/" in a file name: printf makes the marker's path
    d = tmp_path / f"p $(touch $(printf {m}-dollar)) `touch $(printf {m}-tick)`; touch $(printf {m}-semi) 'q\""
    d.mkdir()
    f = d / "my policy;$(touch x).yaml"
    f.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n")
    run = change(node, "enable", "--policy-file", str(f), timeout=10)
    assert run.code == 0, run.out + run.err
    _no_marker(node, tag)
    assert not (tmp_path / "x").exists() and not list(d.parent.glob("x"))
    assert change(node, "disable", timeout=10).code == 0 and node.path(MANIFEST).read_bytes() == orig
    _no_marker(node, tag)
    tally("shell metacharacters in a --policy-file path", 1, 1, 0)
