from __future__ import annotations

import pytest

from installer.errors import InputError
from installer.targets.parse import group_targets, parse_target


@pytest.mark.parametrize(
    ("raw", "user", "host", "port"),
    [
        ("admin@cp1.example.com", "admin", "cp1.example.com", None),
        ("admin@10.0.0.5:2222", "admin", "10.0.0.5", 2222),
        ("ssh://root@cp1:22", "root", "cp1", 22),
        ("ssh://cp1", None, "cp1", None),
        ("cp1-alias", None, "cp1-alias", None),
        ("ubuntu@[fd00::1]:2200", "ubuntu", "fd00::1", 2200),
    ],
)
def test_ssh_forms(raw: str, user: str | None, host: str, port: int | None) -> None:
    t = parse_target(raw)
    assert (t.kind, t.user, t.host, t.port) == ("ssh", user, host, port)


def test_local_kind_minikube() -> None:
    assert parse_target("local").kind == "local"
    k = parse_target("kind://dev/dev-control-plane2")
    assert (k.kind, k.cluster, k.node) == ("kind", "dev", "dev-control-plane2")
    assert parse_target("kind://").cluster == "kind"
    m = parse_target("minikube://")
    assert (m.kind, m.cluster, m.node) == ("minikube", "minikube", None)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty target"),
        ("admin@host:70000", "out of range"),
        ("http://host", "unknown scheme 'http'"),
        ("a b", "is not user@host"),
        ("root@host;touch /tmp/x", "is not user@host"),
        ("kind://Bad_Name", "cluster name 'Bad_Name'"),
        ("admin@$(reboot)", "is not user@host"),
    ],
)
def test_bad_targets_say_why(raw: str, message: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_target(raw)
    assert message in str(exc.value)


def test_targets_together_are_one_cluster() -> None:
    clusters = group_targets([parse_target("a@cp1"), parse_target("a@cp2"), parse_target("kind://dev")])
    assert [len(c.nodes) for c in clusters] == [2, 1]
    assert clusters[1].name == "kind://dev"
