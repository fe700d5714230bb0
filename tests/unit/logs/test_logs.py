"""`kaudit logs` without a node: filters (exact and the node's grep -F prefilter), the text line, the
JSON line (bodies dropped unless asked, masked even then), the summary, the rotated-file window, and
the catalogue found from the user's installed wheel."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from installer.auditlog import masking
from installer.auditlog.match import ResourceSpec
from installer.auditlog.reader import Event
from installer.errors import InputError
from installer.logs import logs, summary
from installer.logs.filters import Filters, expand_user
from installer.logs.logs_node import lumberjack_time

DECODE = msgspec.json.Decoder(Event).decode
SECRET = "c3VwZXItc2VjcmV0"


def raw(**over: Any) -> bytes:
    doc: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "a1",
        "stage": "ResponseComplete", "requestURI": "/apis/apps/v1/namespaces/prod/deployments/web/scale",
        "verb": "patch", "user": {"username": "system:serviceaccount:ci:deployer",
                                  "groups": ["system:serviceaccounts", "system:authenticated"]},
        "sourceIPs": ["10.2.3.4"], "userAgent": "kubectl/v1.34.1 (linux/amd64) kubernetes/abcdef",
        "objectRef": {"resource": "deployments", "namespace": "prod", "name": "web", "apiGroup": "apps",
                      "apiVersion": "v1", "subresource": "scale"},
        "responseStatus": {"metadata": {}, "code": 403},
        "requestReceivedTimestamp": "2026-05-01T10:00:00.100000Z", "stageTimestamp": "2026-05-01T10:00:00.342000Z",
    }
    doc.update(over)
    return json.dumps(doc, separators=(",", ":")).encode()


def keep(line: bytes, **kw: Any) -> bool:
    f = Filters.build(**kw)
    exact = f.predicate()(DECODE(line))
    pre = all(any(s.encode() in line for s in group) for group in f.grep_groups())
    assert pre or not exact, ("the prefilter must never drop what the exact filter keeps", kw)
    return exact


def test_filters_exact_and_prefilter_agree() -> None:
    line = raw()
    assert keep(line)
    assert keep(line, users=["ci:deployer"]) and keep(line, users=["system:serviceaccount:ci:*"])
    assert not keep(line, users=["jane"])
    assert keep(line, users=["jane", "ci:deployer"])  # values of one filter are alternatives
    assert keep(line, groups=["system:serviceaccounts"]) and not keep(line, groups=["dev"])
    assert keep(line, verbs=["get", "patch"]) and not keep(line, verbs=["get"])
    assert keep(line, resources=["deployments.apps/scale"]) and keep(line, resources=["*/scale"])
    assert keep(line, resources=["deployments/*"]) and not keep(line, resources=["deployments"])
    assert not keep(line, resources=["deployments.extensions/scale"])
    assert keep(line, namespaces=["prod"]) and not keep(line, namespaces=["dev"])
    assert keep(line, names=["web"]) and not keep(line, names=["api"])
    assert keep(line, codes=["4xx"]) and keep(line, codes=["403"]) and not keep(line, codes=["5xx"])
    assert keep(line, levels=["Metadata"]) and not keep(line, levels=["Request"])
    assert keep(line, stages=["ResponseComplete"]) and not keep(line, stages=["RequestReceived"])
    assert keep(line, since="2026-05-01T09:00:00Z", until="2026-05-01T11:00:00Z")
    assert not keep(line, since="2026-05-01T10:01:00Z")
    assert keep(line, verbs=["patch"], namespaces=["prod"]) and not keep(line, verbs=["patch"], namespaces=["dev"])
    assert not keep(raw(responseStatus=None, stage="RequestReceived"), codes=["4xx"])
    # a value that Go would escape in JSON is not pushed to the node, only filtered exactly
    assert Filters.build(users=["a<b"]).grep_groups() == []


def test_a_trailing_star_is_a_prefix_in_every_filter() -> None:
    """The one matcher's rule (installer/auditlog/match.py), the prefilter a superset of it."""
    line = raw()
    assert keep(line, groups=["system:service*"]) and not keep(line, groups=["system:node*"])
    assert keep(line, namespaces=["pr*"]) and not keep(line, namespaces=["dev*"])
    assert keep(line, names=["we*"]) and not keep(line, names=["api*"])
    assert keep(line, names=["*"]) and not keep(raw(objectRef=None), names=["*"])
    assert not keep(line, groups=["system:serviceaccounts*x"])  # only a final * is a prefix
    assert Filters.build(groups=["system:*"], names=["web-*"], namespaces=["kube-*"]).grep_groups() == [
        ['"system:'], ['"namespace":"kube-'], ['"name":"web-']]


def test_filter_input_errors() -> None:
    assert expand_user("ci:deployer") == "system:serviceaccount:ci:deployer"
    assert expand_user("system:admin") == "system:admin" and expand_user("jane") == "jane"
    assert ResourceSpec.parse("pods/exec") == ResourceSpec("pods", None, "exec")
    for bad in ({"codes": ["6x"]}, {"levels": ["None"]}, {"stages": ["Done"]}, {"resources": ["pods/"]},
                {"since": "yesterday"}, {"since": "2026-05-02", "until": "2026-05-01"}):
        with pytest.raises(InputError):
            Filters.build(**bad)


def test_lumberjack_names_sort_like_times() -> None:
    assert lumberjack_time("2026-05-01T10:00:09.123456Z") == "2026-05-01T10-00-09.123"


def test_text_line_columns_and_no_bodies() -> None:
    line = raw(requestObject={"kind": "Secret", "data": {"k": SECRET}})
    text = logs.text_line("cp-1", DECODE(line), line, utc=True)
    cols = text.split("  ")
    assert cols == ["2026-05-01T10:00:00.342Z", "cp-1", "ci:deployer", "patch", "deployments.apps/scale",
                    "prod/web", "403", "242ms", "10.2.3.4", "kubectl/v1.34.1"]
    assert SECRET not in text
    colored = logs.text_line("cp-1", DECODE(line), line, utc=True, color=True)
    assert "\x1b[33m403\x1b[0m" in colored
    nonres = raw(requestURI="/version?x=1", objectRef=None, verb="get", userAgent="evil\x1b[2J")
    t2 = logs.text_line("cp-1", DECODE(nonres), nonres, utc=True)
    assert "/version" in t2 and "\x1b" not in t2


def test_json_line_is_the_event_plus_node_and_bodies_need_asking() -> None:
    plain = raw()
    out = json.loads(logs.json_line("cp-1", plain))
    assert out == {**json.loads(plain), "node": "cp-1"}
    body = raw(objectRef={"resource": "secrets", "namespace": "a", "name": "s", "apiVersion": "v1"},
               requestObject={"kind": "Secret", "data": {"k": SECRET}, "metadata": {"name": "s"}},
               responseObject={"kind": "TokenReview", "spec": {"token": "eyJhbGciOi"}})
    dropped = logs.json_line("cp-1", body)
    assert SECRET.encode() not in dropped and b"requestObject" not in dropped and b"eyJhbGciOi" not in dropped
    kept = json.loads(logs.json_line("cp-1", body, bodies=True))
    assert kept["requestObject"]["data"] == {"k": masking.MASK}
    assert kept["requestObject"]["metadata"] == {"name": "s"}
    assert kept["responseObject"]["spec"]["token"] == masking.MASK


def test_summary_counts_and_hint() -> None:
    s = summary.Summary()
    for i in range(5):
        line = raw(auditID=f"a{i}", stageTimestamp=f"2026-05-01T10:0{i % 2}:00.000000Z")
        s.add(DECODE(line), line)
    doc = s.to_json(["cp-1"])
    assert doc["events"] == 5 and doc["users"][0] == {"name": "system:serviceaccount:ci:deployer", "events": 5}
    assert doc["errors"][0] == {"class": "4xx", "user": "system:serviceaccount:ci:deployer", "sourceIP": "10.2.3.4",
                                "events": 5}
    assert [p["events"] for p in doc["perMinute"]] == [3, 2]
    assert doc["busiest"][0]["share"] == 1.0 and doc["simulate"].startswith("kaudit simulate cp-1 ")
    text = summary.render_text(doc)
    assert "ci:deployer" in text and "kaudit simulate cp-1" in text
    assert summary.sparkline([0, 4, 8]) == " ▄█"


def manifest(*flags: str, mounted: bool = True) -> bytes:
    mounts = "    volumeMounts:\n    - {mountPath: /var/log/kubernetes/audit, name: log}\n" if mounted else ""
    vols = "  volumes:\n  - {name: log, hostPath: {path: /srv/audit, type: DirectoryOrCreate}}\n" if mounted else ""
    lines = "".join(f"    - {f}\n" for f in flags)
    return (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\nspec:\n"
            f"  containers:\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v1.34.1\n"
            f"    command:\n    - kube-apiserver\n    - --secure-port=6443\n{lines}{mounts}{vols}").encode()


@pytest.mark.parametrize(("flags", "mounted", "says"), [
    ((), True, "auditing is off (no --audit-log-path): nothing to read; see `kaudit status`"),
    (("--audit-policy-file=/etc/p.yaml", "--audit-webhook-config-file=/etc/w.kubeconfig"), True,
     "events go to a webhook"),
    (("--audit-log-path=/var/log/kubernetes/audit/audit.log",), False, "not on a hostPath mount"),
    (("--audit-log-path=/var/log/kubernetes/audit/audit.log", "--audit-log-format=legacy"), True, "legacy"),
    (("--audit-log-path=-",), True, "standard output"),
])
def test_odd_nodes_are_one_line(flags: tuple[str, ...], mounted: bool, says: str) -> None:
    from installer.auditlog.node import log_location
    from installer.errors import KauditError

    with pytest.raises(KauditError) as info:
        log_location("cp-1", manifest(*flags, mounted=mounted), None)
    assert says in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_the_log_path_maps_to_the_host() -> None:
    from installer.auditlog.node import log_location

    path, _ = log_location("cp-1", manifest("--audit-log-path=/var/log/kubernetes/audit/audit.log"), None)
    assert path == "/srv/audit/audit.log"


def test_save_makes_a_private_directory_and_files(tmp_path: Any) -> None:
    import os
    import stat

    folder = tmp_path / "saved"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    saver = logs.Saver(str(folder), bodies=False)
    line = raw(requestObject={"kind": "Secret", "data": {"k": SECRET}})
    saver.write("kadmin@10.0.0.1:22", line)
    saver.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    (saved,) = folder.iterdir()
    assert saved.name == "kadmin@10.0.0.1_22.jsonl" and stat.S_IMODE(saved.stat().st_mode) == 0o600
    doc = json.loads(saved.read_text())
    assert doc["node"] == "kadmin@10.0.0.1:22" and "requestObject" not in doc and SECRET not in saved.read_text()
    with pytest.raises(InputError):
        logs.Saver(str(saved), bodies=False)  # a file, not a directory


def _logs_app() -> Any:
    import typer

    from installer.commands import logs as logs_cmd

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """kaudit"""

    logs_cmd.register(app)
    return app


@pytest.mark.parametrize(("args", "detect"), [
    ((), None),
    (("--detect",), []),
    (("--detect", "-o", "json"), []),
    (("--detect", "pod-exec"), ["pod-exec"]),
    (("--detect", "pod-exec", "--detect", "secret-read-by-user,pod-attach"),
     ["pod-exec", "secret-read-by-user", "pod-attach"]),
    (("--detect=pod-exec,pod-attach",), ["pod-exec", "pod-attach"]),
    (("--detect", "pod-exec", "--detect"), []),  # a bare --detect among them: the whole catalogue
])
def test_detect_takes_optional_names(args: tuple[str, ...], detect: list[str] | None, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    seen: list[Any] = []
    monkeypatch.setattr(logs, "logs_command", lambda req, *a, **k: seen.append(req) or 0)
    result = CliRunner().invoke(_logs_app(), ["logs", "cp-1", *args])
    assert result.exit_code == 0, result.output
    (req,) = seen
    assert req.detect == detect and req.targets == ["cp-1"]


def test_unknown_detection_and_the_list(monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from installer.detections import catalogue as detections

    with pytest.raises(InputError, match=r"--detect 'cp-2': no detection .*--list-detections.*TARGETs first"):
        detections.select(detections.load(), ["pod-exec", "cp-2"])
    listed = CliRunner().invoke(_logs_app(), ["logs", "--list-detections"])  # no TARGET needed
    assert listed.exit_code == 0
    names = [ln.split()[0] for ln in listed.stdout.splitlines()]
    assert names == [d.name for d in detections.load()] and "pod-exec" in names
    gone = CliRunner().invoke(_logs_app(), ["logs", "cp-1", "--detection", "pod-exec"])
    assert gone.exit_code == 2  # --detect NAME replaced it
