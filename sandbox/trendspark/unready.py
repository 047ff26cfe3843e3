"""What stands on Prometheus's port while `prometheus_down` is active: a Prometheus that does not
serve, answering 503 to everything (as while it crash-loops replaying its write-ahead log).

Run as a script (`python unready.py PORT`), without the sandbox on its path.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Unready(BaseHTTPRequestHandler):
    def _refuse(self) -> None:
        body = b"Service Unavailable"
        self.send_response(503)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _refuse

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return  # its log would only repeat the same line


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Unready).serve_forever()
