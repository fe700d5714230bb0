"""Asking the API server whether it is ready, from the node itself, where the kubelet probes.

Probing runs on the node (curl, else wget), against the manifest's own probe target. When
anonymous auth is off, /readyz answers 401: then the node's admin kubeconfig is used (its
token, or its client certificate), handed to curl through stdin or private temp files, never
through argv.
"""

from __future__ import annotations

from dataclasses import dataclass

from installer.node import layout
from installer.transport import Transport

# Shell function `probe URL`: prints "CODE VIA"; VIA is anonymous, admin-token or admin-cert.
PROBE_FUNCTION = r"""
probe() {
  url=$1 kc=$2
  if command -v curl >/dev/null 2>&1; then
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || code=000
  elif command -v wget >/dev/null 2>&1; then
    code=$(wget -q -S --no-check-certificate -T 2 -O /dev/null "$url" 2>&1 | awk '/HTTP\//{c=$2} END{print c+0}')
  else
    echo "000 no-curl-or-wget"; return
  fi
  [ -n "$code" ] || code=000
  if { [ "$code" = 401 ] || [ "$code" = 403 ]; } && [ -r "$kc" ] && command -v curl >/dev/null 2>&1; then
    token=$(sed -n 's/^[[:space:]]*token:[[:space:]]*//p' "$kc" | head -n 1 | tr -d "\"'")
    if [ -n "$token" ]; then
      code=$(printf 'header = "Authorization: Bearer %s"\n' "$token" \
        | curl -sk -K - -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || code=000
      echo "$code admin-token"; return
    fi
    cert=$(sed -n 's/^[[:space:]]*client-certificate-data:[[:space:]]*//p' "$kc" | head -n 1)
    key=$(sed -n 's/^[[:space:]]*client-key-data:[[:space:]]*//p' "$kc" | head -n 1)
    if [ -n "$cert" ] && [ -n "$key" ]; then
      d=$(umask 077; mktemp -d)
      printf %s "$cert" | base64 -d > "$d/c" 2>/dev/null
      printf %s "$key" | base64 -d > "$d/k" 2>/dev/null
      code=$(curl -sk --cert "$d/c" --key "$d/k" -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) \
        || code=000
      rm -rf "$d"
      echo "$code admin-cert"; return
    fi
  fi
  echo "$code anonymous"
}
"""

PROBE_ONCE = PROBE_FUNCTION + 'probe "$1" "$2"\n'


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
        how = "" if self.via == "anonymous" else f" (asked with the {self.via.replace('-', ' ')} of admin.conf)"
        return f"{self.url} answers {self.code}{how}"


def url(scheme: str, host: str, port: int, path: str) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"{scheme.lower()}://{host}:{port}{path}"


def probe(transport: Transport, target_url: str, admin_kubeconfig: str = layout.ADMIN_KUBECONFIG) -> ProbeResult:
    result = transport.run(PROBE_ONCE, [target_url, admin_kubeconfig], timeout=30)
    fields = result.text.split()
    code = int(fields[0]) if fields and fields[0].isdigit() else 0
    via = fields[1] if len(fields) > 1 else "anonymous"
    return ProbeResult(target_url, code, via)
