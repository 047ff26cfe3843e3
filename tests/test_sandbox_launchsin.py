"""The sandbox's LaunchSin, run for real: its database, roles, traffic, app and faults.

One sandbox serves the whole module (its own home and env file under tmp_path). Faults are
checked at the source, with the superuser or the app, not through the checks:
tests/test_sandbox_checks.py runs the checks against every fault.
"""

from __future__ import annotations

import hmac
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from dotenv import dotenv_values
from psycopg import IsolationLevel

from sandbox.faults import FAULTS
from sandbox.launchsin import incidents, tenants
from tests.conftest import assert_fault_round_trip

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parent.parent
LAUNCHSIN_VARIABLES = {
    "LAUNCHSIN_DATABASE_URL",
    "LAUNCHSIN_BASE_URL",
    "LAUNCHSIN_EXPECTED_ACTIVE_CONNECTIONS",
    "LAUNCHSIN_CHECK_USER_ID",
    "LAUNCHSIN_CHECK_ORG_ID",
    "LAUNCHSIN_CHECK_PROJECT_ID",
    "LAUNCHSIN_NONMEMBER_USER_ID",
}
PROJECT_EVENTS_24H = ("SELECT count(*) FROM public.canonical_events"
                      " WHERE project_id = %s AND event_time >= now() - interval '24 hours'")
INDEX = "idx_canonical_events_project_time"


@dataclass
class Box:
    home: Path
    env_file: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sandbox", *args, "--home", str(self.home)],
                              cwd=REPO, capture_output=True, text=True, timeout=180, check=False)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"sandbox {' '.join(args)}:\n{result.stdout}{result.stderr}"
        return result.stdout

    @property
    def env(self) -> dict[str, str]:
        return {k: str(v) for k, v in dotenv_values(self.env_file).items()}

    def superuser(self) -> psycopg.Connection[Any]:
        state = json.loads((self.home / "state.json").read_text())
        return psycopg.connect(host="127.0.0.1", port=state["pg_port"], user="postgres",
                               password=state["superuser_password"], dbname="launchsin",
                               autocommit=True)

    def checks_ro(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.env["LAUNCHSIN_DATABASE_URL"], autocommit=True)

    def scalar(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        with self.superuser() as conn:
            row = conn.execute(query, params).fetchone()
        assert row is not None
        return row[0]

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.env["LAUNCHSIN_BASE_URL"], timeout=10)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    """A sandbox for this module: `up` once, `down` at the end whatever happened."""
    root = tmp_path_factory.mktemp("sandbox-launchsin")
    sandbox = Box(root / "home", root / "envs" / "sandbox.env")
    result = sandbox.run("up", "--env-file", str(sandbox.env_file))
    assert result.returncode == 0, f"up failed:\n{result.stdout}{result.stderr}"
    yield sandbox
    sandbox.run("down")


def count_as_user(conn: psycopg.Connection[Any], user: uuid.UUID | str, query: str,
                  params: tuple[Any, ...]) -> int:
    """What the checks' rows_as does: SET LOCAL ROLE plus the JWT claims, then back."""
    claims = json.dumps({"sub": str(user), "role": "authenticated"})
    conn.execute("SELECT set_config('role', 'authenticated', true),"
                 " set_config('request.jwt.claims', %s, true)", (claims,))
    row = conn.execute(query, params).fetchone()
    conn.execute("SELECT set_config('role', 'none', true)")
    assert row is not None
    return int(row[0])


# Database, roles and env ---------------------------------------------------------------------

def test_env_file_names_the_launchsin_target(box: Box) -> None:
    env = box.env
    assert {name for name in env if name.startswith("LAUNCHSIN_")} == LAUNCHSIN_VARIABLES
    assert env["LAUNCHSIN_DATABASE_URL"].startswith("postgresql://checks_ro:")
    assert env["LAUNCHSIN_DATABASE_URL"].endswith("/launchsin")
    assert env["LAUNCHSIN_BASE_URL"].startswith("http://127.0.0.1:")
    expected = set(env["LAUNCHSIN_EXPECTED_ACTIVE_CONNECTIONS"].split(","))
    with box.superuser() as conn:
        active = {str(r[0]) for r in conn.execute(
            "SELECT id FROM public.source_connections WHERE is_active")}
        total = conn.execute("SELECT count(*) FROM public.source_connections").fetchone()
        member = conn.execute("SELECT role::text FROM public.org_members WHERE org_id = %s"
                              " AND user_id = %s", (env["LAUNCHSIN_CHECK_ORG_ID"],
                                                    env["LAUNCHSIN_CHECK_USER_ID"])).fetchone()
        project_org = conn.execute("SELECT org_id::text FROM public.projects WHERE id = %s",
                                   (env["LAUNCHSIN_CHECK_PROJECT_ID"],)).fetchone()
        outsider = conn.execute("SELECT count(*) FROM public.org_members WHERE org_id = %s"
                                " AND user_id = %s", (env["LAUNCHSIN_CHECK_ORG_ID"],
                                                      env["LAUNCHSIN_NONMEMBER_USER_ID"])).fetchone()
    assert expected == active and total == (30,)
    assert member == ("member",)
    assert project_org == (env["LAUNCHSIN_CHECK_ORG_ID"],)
    assert outsider == (0,)


def test_checks_ro_reads_and_calls_the_rpcs_but_cannot_write(box: Box) -> None:
    insert = ("INSERT INTO public.dlq_events (connection_id, payload_json)"
              " SELECT id, '{}' FROM public.source_connections LIMIT 1")
    with box.checks_ro() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) > 0 FROM public.canonical_events),"
            " (SELECT count(*) > 0 FROM public.get_project_event_stats(%s)),"
            " public.get_connection_event_lag(%s) < interval '10 minutes'",
            (tenants.CHECK_PROJECT.id, incidents.LAGGING.id)).fetchone()
        assert row == (True, True, True)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(insert)
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(insert)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM auth.users")


def test_row_level_security_as_member_and_as_outsider(box: Box) -> None:
    project = tenants.CHECK_PROJECT.id
    with box.checks_ro() as conn:
        conn.autocommit = False
        # One snapshot for every count, so that traffic cannot slip in between.
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        privileged = conn.execute(PROJECT_EVENTS_24H, (project,)).fetchone()
        member = count_as_user(conn, tenants.CHECK_USER.id, PROJECT_EVENTS_24H, (project,))
        outsider = count_as_user(conn, tenants.OUTSIDER.id, PROJECT_EVENTS_24H, (project,))
        own_org = count_as_user(conn, tenants.OUTSIDER.id,
                                "SELECT count(*) FROM public.canonical_events WHERE org_id = %s",
                                (tenants.DELTA.id,))
        memberships = count_as_user(conn, tenants.CHECK_USER.id,
                                    "SELECT count(*) FROM public.org_members", ())
        nobody = count_as_user(conn, uuid.uuid4(), PROJECT_EVENTS_24H, (project,))
        conn.rollback()
    assert privileged is not None and privileged[0] > 0
    assert member == privileged[0]
    assert outsider == 0 and nobody == 0
    assert own_org > 0  # the policy filters by organisation; it does not simply deny
    assert memberships == 1  # no recursion: a user sees their own membership rows


def test_the_project_week_query_uses_its_index(box: Box) -> None:
    with box.checks_ro() as conn:
        row = conn.execute(
            "EXPLAIN (FORMAT JSON) SELECT event_type, count(*) FROM public.canonical_events"
            " WHERE project_id = %s AND event_time >= now() - interval '7 days'"
            " GROUP BY event_type", (tenants.CHECK_PROJECT.id,)).fetchone()
    assert row is not None
    plan = json.dumps(row[0])
    assert f'"Index Name": "{INDEX}"' in plan
    assert '"Seq Scan"' not in plan


FRESHNESS = """
    SELECT max(extract(epoch FROM now() - newest.ingested_at)),
           max(extract(epoch FROM now() - newest.event_time))
    FROM public.source_connections c
    CROSS JOIN LATERAL (SELECT max(ingested_at) AS ingested_at, max(event_time) AS event_time
                        FROM public.canonical_events e
                        WHERE e.source_connection_id = c.id
                          AND e.event_time >= now() - interval '1 day') newest
    WHERE c.is_active
"""


# Traffic and the DLQ worker ------------------------------------------------------------------

def test_every_active_connection_keeps_delivering(box: Box) -> None:
    with box.superuser() as conn:
        row = conn.execute(FRESHNESS).fetchone()
    assert row is not None
    silence, lag = float(row[0]), float(row[1])
    # The quietest connection delivers about every 3 minutes, its events dated up to a minute
    # before: well inside the checks' 10-minute lag warning and 15-minute silence alarm.
    assert silence < 300 and lag < 360, (silence, lag)
    count = "SELECT count(*) FROM public.canonical_events"
    before = box.scalar(count)
    time.sleep(4)
    assert box.scalar(count) > before


def test_about_two_percent_of_deliveries_are_dead_letters(box: Box) -> None:
    with box.superuser() as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM public.dlq_events
                       WHERE created_at >= now() - interval '1 hour'),
                      (SELECT count(*) FROM public.canonical_events
                       WHERE ingested_at >= now() - interval '1 hour'),
                      (SELECT array_agg(DISTINCT error_class) FROM public.dlq_events
                       WHERE created_at >= now() - interval '24 hours')""").fetchone()
    assert row is not None
    letters, events, classes = row
    assert events > 1000
    assert 0.005 < letters / (letters + events) < 0.04
    assert classes == ["UNEXPECTED_ERROR"]


def test_the_dlq_worker_resolves_what_is_due(box: Box) -> None:
    with box.superuser() as conn:
        row = conn.execute(
            """INSERT INTO public.dlq_events (connection_id, payload_json, error_message,
                                              error_class, next_retry_at, created_at)
               VALUES (%s, '{"id": "probe"}', 'probe', 'UNEXPECTED_ERROR',
                       now() - interval '1 second', now() - interval '2 minutes')
               RETURNING id""", (incidents.SILENT.id,)).fetchone()
    assert row is not None
    status = "SELECT status || '/' || attempt_count FROM public.dlq_events WHERE id = %s"
    deadline = time.monotonic() + 30  # the worker passes every 20 s
    while box.scalar(status, (row[0],)) == "pending/0" and time.monotonic() < deadline:
        time.sleep(1)
    assert box.scalar(status, (row[0],)) == "resolved/1"


# The app --------------------------------------------------------------------------------------

def hotmart_payload(transaction: str, event: str = "PURCHASE_APPROVED") -> bytes:
    now = int(time.time())
    return json.dumps({
        "id": str(uuid.uuid4()), "event": event, "version": "2.0.0",
        "data": {"purchase": {
            "transaction": transaction, "status": "APPROVED", "order_date": now - 90,
            "approved_date": now - 30,
            "buyer": {"email": "Buyer@Example.com", "name": "Buyer", "phone": "+55 11 90000-0000"},
            "product": {"id": 4242, "name": "Curso Sandbox"},
            "price": {"value": 497.0, "currency_code": "BRL"},
            "payment": {"type": "PIX"}}},
    }).encode()


def hottok(box: Box, connection: tenants.Connection, body: bytes) -> str:
    secret = box.scalar("SELECT config_json ->> 'hotmart_secret' FROM public.source_connections"
                        " WHERE id = %s", (connection.id,))
    return hmac.new(str(secret).encode(), body, sha256).hexdigest()


def letters_of(box: Box, connection: tenants.Connection) -> int:
    return int(box.scalar("SELECT count(*) FROM public.dlq_events WHERE connection_id = %s",
                          (connection.id,)))


def test_health_needs_a_bearer_token(box: Box) -> None:
    with box.http() as client:
        anonymous = client.get("/api/health")
        signed = client.get("/api/health", headers={"Authorization": "Bearer anything"})
    assert (anonymous.status_code, anonymous.json()) == (401, {"error": "Unauthorized"})
    assert signed.status_code == 200 and signed.json()["status"] == "ok"
    assert signed.json()["timestamp"].endswith("Z")


def test_metrics_are_prometheus_text(box: Box) -> None:
    with box.http() as client:
        client.get("/api/health", headers={"Authorization": "Bearer x"})
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert ('http_request_duration_seconds_count{app="launchsin-server",method="GET",'
            'route="/api/health",status_code="200"}') in response.text


@pytest.mark.parametrize("connection", [
    "not-a-uuid", str(uuid.uuid4()),
    str(tenants.connection("aurora-march-meta").id),  # not Hotmart
    str(tenants.connection("vertice-community-hotmart-old").id),  # inactive
])
def test_webhook_for_an_unknown_connection_is_404(box: Box, connection: str) -> None:
    with box.http() as client:
        response = client.post(f"/api/webhooks/hotmart/{connection}", content=b"{}")
    assert (response.status_code, response.json()) == (404, {"error": "Connection not found"})


def test_webhook_with_a_bad_hottok_is_401_and_writes_nothing(box: Box) -> None:
    target = tenants.connection("aurora-march-hotmart")
    body = hotmart_payload(f"HPBAD{uuid.uuid4().hex[:10].upper()}")
    before = letters_of(box, target)
    with box.http() as client:
        response = client.post(f"/api/webhooks/hotmart/{target.id}", content=body,
                               headers={"x-hotmart-hottok": "0" * 64})
    assert (response.status_code, response.json()) == (401, {"error": "Invalid signature"})
    assert letters_of(box, target) == before


def test_webhook_ingests_once_and_counts_the_repeat_as_duplicate(box: Box) -> None:
    target = tenants.connection("aurora-march-hotmart")
    transaction = f"HPTEST{uuid.uuid4().hex[:10].upper()}"
    body = hotmart_payload(transaction)
    headers = {"x-hotmart-hottok": hottok(box, target, body)}
    before = letters_of(box, target)
    with box.http() as client:
        first = client.post(f"/api/webhooks/hotmart/{target.id}", content=body, headers=headers)
        again = client.post(f"/api/webhooks/hotmart/{target.id}", content=body, headers=headers)
    assert first.json() == {"received": True, "processed": 1, "duplicates": 0}
    assert again.json() == {"received": True, "processed": 1, "duplicates": 1}
    key = f"hotmart_{transaction}_PURCHASE_APPROVED"
    with box.superuser() as conn:
        rows = conn.execute(
            """SELECT event_type, project_id, actor_json ? 'email_hash',
                      actor_json::text LIKE '%%Example%%'
               FROM public.canonical_events WHERE source_connection_id = %s
                 AND idempotency_key = %s""", (target.id, key)).fetchall()
        conn.execute("DELETE FROM public.canonical_events WHERE idempotency_key = %s", (key,))
    assert rows == [("purchase_completed", tenants.CHECK_PROJECT.id, True, False)]
    assert letters_of(box, target) == before  # a duplicate is not a dead letter


def test_webhook_without_a_secret_is_acknowledged_and_dead_lettered(box: Box) -> None:
    target = incidents.WITHOUT_HOTTOK
    box.ok("fault", incidents.HOTMART_SECRET_MISSING)
    try:
        with box.http() as client:
            response = client.post(f"/api/webhooks/hotmart/{target.id}",
                                   content=hotmart_payload("HPNOSECRET"),
                                   headers={"x-hotmart-hottok": "whatever"})
        letter = box.scalar("""SELECT error_class || '/' || status FROM public.dlq_events
                               WHERE connection_id = %s AND payload_json #>>
                                     '{data,purchase,transaction}' = 'HPNOSECRET'""", (target.id,))
    finally:
        box.ok("heal", incidents.HOTMART_SECRET_MISSING)
        box.scalar("DELETE FROM public.dlq_events WHERE payload_json #>> "
                   "'{data,purchase,transaction}' = 'HPNOSECRET' RETURNING 1")
    assert (response.status_code, response.json()) == (200, {"received": True})
    assert letter == "MISSING_SECRET/pending"


# Faults ---------------------------------------------------------------------------------------

def _sql(query: str, *params: Any) -> Callable[[Box], bool]:
    def probe(box: Box) -> bool:
        return bool(box.scalar(query, params))
    return probe


def _member_sees_the_project(box: Box) -> bool:
    with box.checks_ro() as conn, conn.transaction():
        return count_as_user(conn, tenants.CHECK_USER.id, PROJECT_EVENTS_24H,
                             (tenants.CHECK_PROJECT.id,)) > 0


def _health_answers(box: Box) -> bool:
    with box.http() as client:
        return client.get("/api/health", headers={"Authorization": "Bearer x"}).status_code == 200


DLQ_SHARE_UNDER_5 = """
    SELECT d::float / nullif(d + e, 0) < 0.05 FROM
        (SELECT count(*) AS d FROM public.dlq_events
         WHERE created_at >= now() - interval '1 hour') dd,
        (SELECT count(*) AS e FROM public.canonical_events
         WHERE ingested_at >= now() - interval '1 hour') ee
"""
LAG_UNDER_10 = ("SELECT now() - max(event_time) < interval '10 minutes' FROM public.canonical_events"
                " WHERE source_connection_id = %s")

# For each fault, a look at the thing it breaks: True when healthy.
PROBES: dict[str, Callable[[Box], bool]] = {
    incidents.CONNECTION_LAG_WARN: _sql(LAG_UNDER_10, incidents.LAGGING.id),
    incidents.CONNECTION_LAG_CRITICAL: _sql(LAG_UNDER_10, incidents.LAGGING.id),
    incidents.CONNECTION_SILENT: _sql(
        "SELECT max(ingested_at) > now() - interval '15 minutes' FROM public.canonical_events"
        " WHERE source_connection_id = %s", incidents.SILENT.id),
    incidents.CONNECTION_DEAD: _sql(
        "SELECT count(*) > 0 FROM public.canonical_events WHERE source_connection_id = %s"
        " AND ingested_at >= now() - interval '24 hours'", incidents.DEAD.id),
    incidents.INGEST_STOPPED: _sql(
        "SELECT count(*) > 0 FROM public.canonical_events"
        " WHERE ingested_at >= now() - interval '1 hour'"),
    incidents.DLQ_RATE_WARN: _sql(DLQ_SHARE_UNDER_5),
    incidents.DLQ_RATE_CRITICAL: _sql(DLQ_SHARE_UNDER_5),
    incidents.DLQ_WORKER_STOPPED: _sql(
        "SELECT count(*) = 0 FROM public.dlq_events WHERE status = 'pending'"
        " AND next_retry_at < now() - interval '2 minutes'"),
    incidents.DUPLICATE_GUARD_DROPPED: _sql(
        "SELECT count(*) = 1 AND NOT EXISTS (SELECT 1 FROM public.canonical_events"
        "  GROUP BY source_connection_id, idempotency_key HAVING count(*) > 1)"
        " FROM pg_constraint WHERE conname = 'unique_event_per_source' AND convalidated"),
    incidents.FUTURE_EVENTS: _sql(
        "SELECT count(*) = 0 FROM public.canonical_events"
        " WHERE event_time > now() + interval '5 minutes'"),
    incidents.CONNECTION_INACTIVE: _sql(
        "SELECT is_active FROM public.source_connections WHERE id = %s", incidents.DEACTIVATED.id),
    incidents.RLS_MEMBER_DENIED: _member_sees_the_project,
    incidents.MEMBER_REMOVED: _sql(
        "SELECT count(*) = 1 FROM public.org_members WHERE org_id = %s AND user_id = %s",
        tenants.CHECK_ORG.id, tenants.CHECK_USER.id),
    incidents.DLQ_SCHEMA_DRIFT: _sql(
        "SELECT count(*) = 4 FROM information_schema.columns WHERE table_schema = 'public'"
        " AND table_name = 'dlq_events' AND column_name = ANY(%s)", list(incidents.DRIFTED_COLUMNS)),
    incidents.DLQ_UNKNOWN_ERROR_CLASS: _sql(
        "SELECT count(*) = 0 FROM public.dlq_events WHERE created_at >= now() - interval '24 hours'"
        " AND error_class <> ALL(ARRAY['MISSING_SECRET', 'INSERT_FAILED', 'UNEXPECTED_ERROR'])"),
    incidents.INSERT_FAILURES: _sql(
        "SELECT count(*) = 0 FROM public.dlq_events WHERE error_class = 'INSERT_FAILED'"
        " AND created_at >= now() - interval '1 hour'"),
    incidents.HOTMART_SECRET_MISSING: _sql(
        "SELECT bool_and(config_json ? 'hotmart_secret') FROM public.source_connections"
        " WHERE is_active AND type = 'hotmart'"),
    incidents.PROJECT_INDEX_DROPPED: _sql(f"SELECT to_regclass('public.{INDEX}') IS NOT NULL"),
    incidents.API_HEALTH_FAILING: _health_answers,
}
LEFTOVERS = """
    SELECT (SELECT count(*) FROM public.canonical_events WHERE raw_ref_json ? 'sandbox_fault')
         + (SELECT count(*) FROM public.dlq_events WHERE payload_json ? 'sandbox_fault')
         + (SELECT count(*) FROM public.dlq_events WHERE error_class IS NULL)
         + (SELECT count(*) FROM pg_namespace WHERE nspname = 'sandbox_stash')
"""


def test_every_launchsin_fault_has_a_probe() -> None:
    assert set(PROBES) == {name for name, f in FAULTS.items() if f.system == "launchsin"}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_fault_breaks_its_target_and_heal_restores_it(box: Box, name: str) -> None:
    assert_fault_round_trip(box, name, PROBES[name])
    assert box.scalar(LEFTOVERS) == 0, f"{name}: heal left fault rows or the stash behind"
    with box.superuser() as conn:
        row = conn.execute(FRESHNESS).fetchone()
    assert row is not None and float(row[0]) < 15 * 60 and float(row[1]) < 10 * 60, row


def test_a_stop_holds_until_healed_and_heal_refills_the_hour(box: Box) -> None:
    last_hour = ("SELECT count(*) FROM public.canonical_events"
                 " WHERE ingested_at >= now() - interval '1 hour'")
    box.ok("fault", incidents.INGEST_STOPPED)
    try:
        time.sleep(6)  # more than the busiest connection's interval
        assert box.scalar(last_hour) == 0
        assert box.scalar("SELECT count(*) FROM public.dlq_events"
                          " WHERE created_at >= now() - interval '1 hour'") == 0
    finally:
        box.ok("heal", incidents.INGEST_STOPPED)
    assert box.scalar(last_hour) > 1000


def test_drifted_dead_letters_are_still_written_and_heal_gives_the_values_back(box: Box) -> None:
    target = tenants.connection("aurora-march-hotmart")
    body = json.dumps({"id": "drift-probe", "event": "PURCHASE_APPROVED"}).encode()  # no data
    classes = ("SELECT array_agg(error_class || '/' || status ORDER BY error_class, status)"
               " FROM (SELECT DISTINCT error_class, status FROM public.dlq_events) d")
    before = box.scalar(classes)
    box.ok("fault", incidents.DLQ_SCHEMA_DRIFT)
    try:
        with box.http() as client:  # an unexpected error: a letter in the migrated columns only
            response = client.post(f"/api/webhooks/hotmart/{target.id}", content=body,
                                   headers={"x-hotmart-hottok": hottok(box, target, body)})
        assert response.status_code == 200 and response.json()["received"] is True
    finally:
        box.ok("heal", incidents.DLQ_SCHEMA_DRIFT)
    probe = ("SELECT error_class || '/' || status || '/' || (next_retry_at IS NOT NULL)"
             " FROM public.dlq_events WHERE payload_json ->> 'id' = 'drift-probe'")
    assert box.scalar(probe) in ("UNEXPECTED_ERROR/pending/true", "UNEXPECTED_ERROR/resolved/true")
    box.scalar("DELETE FROM public.dlq_events WHERE payload_json ->> 'id' = 'drift-probe' RETURNING 1")
    assert box.scalar(classes) == before
