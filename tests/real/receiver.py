"""An audit webhook receiver of the test's own: HTTPS (a certificate of the test's own CA) on 127.0.0.1 of the
real node's network namespace, so the API server reaches it on its loopback. Appends every event of every
EventList it is POSTed to OUT as one JSON line; answers 200.

    python receiver.py CERT KEY PORT OUT
"""

from __future__ import annotations

import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> int:
    cert, key, port, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                items = json.loads(body).get("items") or []
            except ValueError:
                items = []
            with open(out, "a") as f:
                for ev in items:
                    f.write(json.dumps(ev) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("listening", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
