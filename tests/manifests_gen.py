"""Hypothesis strategies for kube-apiserver static pod manifests in the shapes found in the wild.

Each generated manifest is text written the way a person or a tool would write it (not dumped):
indentation widths, indentless or indented lists, a document indented as a whole, comments at
many positions, `--flag=value` and `--flag value`, command or command+args, quoting, CRLF,
trailing `---`, no final newline, blank lines, and unrelated volumes whose names look like
kaudit's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

FLAGS = [
    ("--advertise-address", "10.0.0.5"),
    ("--allow-privileged", "true"),
    ("--authorization-mode", "Node,RBAC"),
    ("--client-ca-file", "/etc/kubernetes/pki/ca.crt"),
    ("--etcd-servers", "https://127.0.0.1:2379"),
    ("--secure-port", "6443"),
    ("--service-cluster-ip-range", "10.96.0.0/12"),
    ("--tls-cert-file", "/etc/kubernetes/pki/apiserver.crt"),
    ("--tls-private-key-file", "/etc/kubernetes/pki/apiserver.key"),
    ("--runtime-config", ""),
]

SIMILAR_NAMES = ["kaudit-policy", "kaudit-log", "kaudit-policy-2", "audit-policy-x", "kaudit", "k8s-certs"]


@dataclass(frozen=True)
class Shape:
    indent: int  # mapping indentation step
    indentless: bool  # "- " at the key's column (kubeadm) or indented by `indent`
    doc_indent: int  # the whole document shifted right
    comments: bool
    eq_form: tuple[bool, ...]  # per flag: --f=v (True) or --f v (False)
    flags_in_args: bool
    quote: str  # "" plain, '"' or "'"
    crlf: bool
    trailing_doc_end: bool
    final_newline: bool
    blank_lines: bool
    annotations: bool
    extra_volumes: tuple[str, ...]
    runner: bool  # kops-style /go-runner in command


def _q(s: str, quote: str) -> str:
    if quote == '"':
        return '"' + s + '"'
    if quote == "'":
        return "'" + s + "'"
    return s if s and not s.startswith(("*", "&", "!", "|", ">", "{", "[")) else '"' + s + '"'


def render(sh: Shape) -> tuple[bytes, dict[str, str]]:
    """The manifest text and the kube-apiserver flags it sets."""
    ind = " " * sh.indent
    seq_off = "" if sh.indentless else ind
    lines: list[str] = []
    c = sh.comments

    def add(depth: int, s: str, comment: str = "") -> None:
        tail = f"  # {comment}" if c and comment else ""
        lines.append(ind * depth + s + tail)

    def seq_item(depth: int, s: str, comment: str = "") -> None:
        # "- " sits at the key's column plus the list offset
        tail = f"  # {comment}" if c and comment else ""
        lines.append(ind * depth + seq_off + "- " + s + tail)

    if c:
        lines.append("# kube-apiserver static pod (generated for tests)")
    add(0, "apiVersion: v1")
    add(0, "kind: Pod", "the kind")
    add(0, "metadata:")
    if sh.annotations:
        add(1, "annotations:")
        add(2, "example.com/endpoint: 10.0.0.5:6443", "kept")
    add(1, "labels:")
    add(2, "component: kube-apiserver")
    add(1, "name: kube-apiserver")
    add(1, "namespace: kube-system")
    if sh.blank_lines:
        lines.append("")
    add(0, "spec:")
    add(1, "containers:")
    # the container mapping starts after "- ": its keys are at depth 2 + seq offset
    cpad = ind * 1 + seq_off + "  "
    argv_items: list[str] = []
    flags: dict[str, str] = {}
    for (name, value), eq in zip(FLAGS, sh.eq_form, strict=False):
        if eq or value == "":
            argv_items.append(f"{name}={value}")
        else:
            argv_items.extend([name, value])
        flags[name] = value
    head = ["/go-runner", "--also-stdout", "/usr/local/bin/kube-apiserver"] if sh.runner else ["kube-apiserver"]
    first_key = True

    def ckey(s: str, comment: str = "") -> None:
        nonlocal first_key
        tail = f"  # {comment}" if c and comment else ""
        if first_key:
            lines.append(ind * 1 + seq_off + "- " + s + tail)
            first_key = False
        else:
            lines.append(cpad + s + tail)

    def citem(s: str, comment: str = "") -> None:
        tail = f"  # {comment}" if c and comment else ""
        lines.append(cpad + seq_off + "- " + _q(s, sh.quote) + tail)

    if sh.flags_in_args:
        ckey("command:")
        for a in head:
            citem(a)
        ckey("args:")
        for i, a in enumerate(argv_items):
            citem(a, "flag" if i == 1 else "")
            if c and i == 2:
                lines.append(cpad + seq_off + "# - --commented-out=flag")
    else:
        ckey("command:", "how it starts")
        for a in head + argv_items:
            citem(a)
            if c and a == head[-1]:
                lines.append(cpad + "# flags follow")
    ckey("image: registry.k8s.io/kube-apiserver:v1.30.2")
    ckey("name: kube-apiserver")
    ckey("readinessProbe:")
    lines.append(cpad + ind + "httpGet:")
    for kv in ("host: 10.0.0.5", "path: /readyz", "port: 6443", "scheme: HTTPS"):
        lines.append(cpad + ind * 2 + kv)
    if sh.blank_lines:
        lines.append("")
    ckey("volumeMounts:")
    mounts = ["k8s-certs", *sh.extra_volumes]
    for i, m in enumerate(mounts):
        lines.append(cpad + seq_off + f"- mountPath: /srv/m{i}")
        lines.append(cpad + seq_off + f"  name: {m}")
        lines.append(cpad + seq_off + "  readOnly: true")
    if c:
        lines.append(cpad + "# end of mounts")
    add(1, "hostNetwork: true")
    add(1, "volumes:")
    for i, m in enumerate(mounts):
        seq_item(1, "hostPath:")
        lines.append(ind * 1 + seq_off + "  " + ind + f"path: /srv/h{i}")
        lines.append(ind * 1 + seq_off + "  " + ind + "type: DirectoryOrCreate")
        lines.append(ind * 1 + seq_off + f"  name: {m}", )
    if c:
        lines.append("# trailing comment")
    add(0, "status: {}")
    if sh.trailing_doc_end:
        lines.append("---")
    pad = " " * sh.doc_indent
    body = [(pad + ln if ln.strip() and ln != "---" else ln) for ln in lines]
    nl = "\r\n" if sh.crlf else "\n"
    text = nl.join(body) + (nl if sh.final_newline else "")
    return text.encode(), flags


shapes = st.builds(
    Shape,
    indent=st.sampled_from([2, 4]),
    indentless=st.booleans(),
    doc_indent=st.sampled_from([0, 0, 2]),
    comments=st.booleans(),
    eq_form=st.tuples(*[st.booleans() for _ in FLAGS]),
    flags_in_args=st.booleans(),
    quote=st.sampled_from(["", "", '"', "'"]),
    crlf=st.booleans(),
    trailing_doc_end=st.booleans(),
    final_newline=st.booleans(),
    blank_lines=st.booleans(),
    annotations=st.booleans(),
    extra_volumes=st.lists(st.sampled_from(SIMILAR_NAMES[:-1]), unique=True, max_size=3).map(tuple),
    runner=st.booleans(),
)
