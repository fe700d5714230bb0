"""A light check of an audit webhook kubeconfig before it is copied to a node.

Only the shape is checked (a kubeconfig with clusters); what the API server makes of the
contents is proven by the new instance becoming ready, and rolled back when it does not.
"""

from __future__ import annotations

from installer.errors import InputError


def check_kubeconfig(data: bytes, name: str) -> None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 1)
    try:
        doc = yaml.load(data)
    except YAMLError as exc:
        raise InputError(f"--webhook-config {name} is not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict) or doc.get("kind", "Config") != "Config":
        raise InputError(f"--webhook-config {name} is not a kubeconfig (kind: Config)")
    clusters = doc.get("clusters")
    if not isinstance(clusters, list) or not clusters:
        raise InputError(f"--webhook-config {name} names no clusters: the API server needs the receiver's address")
