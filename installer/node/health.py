"""Asking the API server whether it is ready, from the node itself, where the kubelet probes.

Probing runs on the node (curl, else wget), against the manifest's own probe target. When
anonymous auth is off, /readyz answers 401: then the node's admin kubeconfig is used (its
token, or its client certificate), handed to curl through stdin or private temp files, never
through argv, and only to the API server's own address (`Probe.to_itself`) over TLS verified
against the kubeconfig's cluster CA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from installer.node import layout
from installer.scripts import load as scripts
from installer.transport import Transport

if TYPE_CHECKING:
    from installer.manifest.read import Probe


@dataclass(frozen=True)
class ProbeResult:
    url: str
    code: int
    via: str

    @property
    def ready(self) -> bool:
        return self.code == 200

    def describe(self) -> str:
        if self.code == 0:
            return f"{self.url} does not answer"
        if self.via == "no-cluster-ca":
            how = (" (asked anonymously: admin.conf has no cluster CA to verify the API server with, so its "
                   "credentials were not sent)")
        else:
            how = "" if self.via == "anonymous" else f" (asked with the {self.via.replace('-', ' ')} of admin.conf)"
        return f"{self.url} answers {self.code}{how}"

    def gate_answer(self) -> str | None:
        """The health gate's verdict on the node this probe asked: None when its API server is healthy (ready),
        else why not, one line. kaudit's rollout (`rollout.HealthGate`) and `kaudit status`'s `healthy` and
        `health` both come from here, so the Ansible collection's gate is kaudit's."""
        return None if self.ready else self.describe()


def url(scheme: str, host: str, port: int, path: str) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"{scheme.lower()}://{host}:{port}{path}"


def admin_kubeconfig_for(probe: Probe, node_layout: layout.NodeLayout) -> str:
    """The admin kubeconfig the probe may use after a 401/403: none unless it asks the API server itself."""
    return node_layout.admin_kubeconfig if probe.to_itself else ""


def probe(transport: Transport, target_url: str, admin_kubeconfig: str) -> ProbeResult:
    result = transport.run(*scripts.PROBE_ONCE.bind(url=target_url, kubeconfig=admin_kubeconfig), timeout=30)
    return _result(target_url, result.text)


def probe_from(transport: Transport, urls: list[str], admin_kubeconfig: str,
               anonymous: frozenset[str] = frozenset()) -> list[ProbeResult]:
    """Each URL asked once from the node behind `transport` (other nodes' API servers): one remote command.
    URLs in `anonymous` are never sent credentials."""
    args = [f"anon:{u}" if u in anonymous else u for u in urls]
    result = transport.run(*scripts.PROBE_PEERS.bind(args, kubeconfig=admin_kubeconfig), timeout=30 + 5 * len(urls))
    lines = result.text.splitlines()
    return [_result(url, lines[i] if i < len(lines) else "") for i, url in enumerate(urls)]


def _result(url: str, line: str) -> ProbeResult:
    fields = line.split()
    code = int(fields[0]) if fields and fields[0].isdigit() else 0
    via = fields[1] if len(fields) > 1 else "anonymous"
    return ProbeResult(url, code, via)
