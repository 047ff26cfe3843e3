"""A hostile target for the suite's self-tests: loopback servers that misbehave like production.

- `silent_listener()`: TCP that accepts and never answers (a hung database or HTTP server);
- `refused_port()`: a loopback port where connections are refused;
- `HostileHttp`: HTTP/1.1 or HTTPS with routes for bad bodies, redirects, auth errors, retries,
  slow drips, silence, huge and compressed bodies, and certificates a client must reject.
"""

from __future__ import annotations

from tests.hostile.httpd import HostileHttp
from tests.hostile.routes import ROUTES
from tests.hostile.tcp import refused_port, silent_listener
from tests.hostile.tls import TLS_MODES, WRONG_HOST, TlsMode
from tests.hostile.wire import RecordedRequest

__all__ = [
    "ROUTES",
    "TLS_MODES",
    "WRONG_HOST",
    "HostileHttp",
    "RecordedRequest",
    "TlsMode",
    "refused_port",
    "silent_listener",
]
