"""Connections to the sandbox cluster. Everything goes over TCP on loopback with a password."""

from __future__ import annotations

from importlib import resources
from urllib.parse import quote

import psycopg
from psycopg.rows import TupleRow

from sandbox.procs import LOOPBACK

Connection = psycopg.Connection[TupleRow]
APPLICATION_NAME = "runbook-sandbox"


def url(user: str, password: str, port: int, dbname: str) -> str:
    credentials = f"{quote(user)}:{quote(password, safe='')}"
    return f"postgresql://{credentials}@{LOOPBACK}:{port}/{quote(dbname)}"


def connect(
    port: int, user: str, password: str, dbname: str, *, autocommit: bool = True
) -> Connection:
    return psycopg.connect(
        host=LOOPBACK, port=port, user=user, password=password, dbname=dbname,
        autocommit=autocommit, connect_timeout=5, application_name=APPLICATION_NAME,
    )


def apply_supabase_auth(conn: Connection) -> None:
    """The auth schema every system's policies build on (sandbox/supabase_auth.sql)."""
    script = resources.files("sandbox").joinpath("supabase_auth.sql").read_text()
    conn.execute(script.encode())
