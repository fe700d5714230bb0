"""The message in a line of a container's log, whichever way the node recorded it.

The kubelet's CRI log files (/var/log/pods/.../N.log) prefix each line with a timestamp, the
stream and a partial/full tag; with Docker's json-file driver (cri-dockerd) the file holds one JSON
object per line; `crictl logs` prints the bare message. Operators want the message.
"""

from __future__ import annotations

import json
import re

_CRI = re.compile(r"^\d{4}-\d\d-\d\dT\S+ (?:stdout|stderr) [PF] ?(.*)$")


def message(line: str) -> str:
    m = _CRI.match(line)
    if m:
        return m.group(1)
    if line.startswith("{"):
        try:
            doc = json.loads(line)
        except ValueError:
            return line
        log = doc.get("log") if isinstance(doc, dict) else None
        if isinstance(log, str):
            return log.rstrip("\n")
    return line
