"""Certificates a client must reject, made at run time with trustme (nothing is committed).

Every mode issues the server certificate from a fresh throw-away CA whose PEM is written to
`ca_path`. A client that trusts only its usual roots rejects all three modes; a client told to
trust `ca_path` accepts "self_signed" (the positive control) and still rejects the other two for
their own reason (hostname mismatch, expiry), which proves each failure is the intended one.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import trustme

TlsMode = Literal["self_signed", "wrong_host", "expired"]
TLS_MODES: tuple[TlsMode, ...] = ("self_signed", "wrong_host", "expired")
# The name the "wrong_host" certificate is issued for; .invalid never resolves (RFC 2606).
WRONG_HOST = "some-other-service.invalid"
HANDSHAKE_DEADLINE_S = 5.0


@dataclass(frozen=True)
class TlsMaterial:
    context: ssl.SSLContext  # server side, certificate chain loaded
    ca_path: Path  # PEM of the CA that issued the server certificate


def make_tls(mode: TlsMode, directory: Path) -> TlsMaterial:
    ca = trustme.CA(organization_name="hostile-target test CA")
    if mode == "self_signed":
        leaf = ca.issue_cert("127.0.0.1", "localhost")
    elif mode == "wrong_host":
        leaf = ca.issue_cert(WRONG_HOST)
    else:
        now = datetime.now(UTC)
        leaf = ca.issue_cert(
            "127.0.0.1",
            "localhost",
            not_before=now - timedelta(days=30),
            not_after=now - timedelta(days=1),
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return TlsMaterial(context=context, ca_path=ca_path)


def server_handshake(
    context: ssl.SSLContext, conn: socket.socket, stop: threading.Event
) -> ssl.SSLSocket | None:
    """Wraps an accepted connection; None if the client rejects the certificate, stalls or leaves.

    The handshake runs in the connection's own thread with a polling timeout, so a client that
    connects and never says hello cannot block the acceptor or outlive close().
    """
    tls_conn = context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
    deadline = time.monotonic() + HANDSHAKE_DEADLINE_S
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            tls_conn.do_handshake()
        except TimeoutError:
            continue
        except OSError:
            break  # includes ssl.SSLError: the client refused our certificate
        return tls_conn
    tls_conn.close()
    return None
