"""The sandbox's LaunchSin, run for real against the session's sandbox: its database, roles,
traffic, app, and the faults whose effects go beyond their probe.

Each fault's own round trip (probe healthy, broken, healthy again, nothing left behind) is in
tests/test_sandbox_checks.py, with the checks.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from hashlib import sha256

import psycopg
import pytest
from psycopg import IsolationLevel

from sandbox.launchsin import incidents, tenants
from sandbox.launchsin.probes import FRESHNESS, INDEX, PROJECT_EVENTS_24H, count_as_user
from tests.sandbox_handle import Sandbox

pytestmark = pytest.mark.sandbox

DB = "launchsin"
LAUNCHSIN_VARIABLES = {
    "LAUNCHSIN_DATABASE_URL",
    "LAUNCHSIN_BASE_URL",
    "LAUNCHSIN_EXPECTED_ACTIVE_CONNECTIONS",
    "LAUNCHSIN_CHECK_USER_ID",
    "LAUNCHSIN_CHECK_ORG_ID",
    "LAUNCHSIN_CHECK_PROJECT_ID",
    "LAUNCHSIN_NONMEMBER_USER_ID",
}


# Database, roles and env ---------------------------------------------------------------------

def test_env_file_names_the_launchsin_target(sandbox: Sandbox) -> None:
    env = sandbox.env
    assert {name for name in env if name.startswith("LAUNCHSIN_")} == LAUNCHSIN_VARIABLES
    assert env["LAUNCHSIN_DATABASE_URL"].startswith("postgresql://checks_ro:")
    assert env["LAUNCHSIN_DATABASE_URL"].endswith("/launchsin")
    assert env["LAUNCHSIN_BASE_URL"].startswith("http://127.0.0.1:")
    expected = set(env["LAUNCHSIN_EXPECTED_ACTIVE_CONNECTIONS"].split(","))
    with sandbox.superuser(DB) as conn:
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


def test_checks_ro_reads_and_calls_the_rpcs_but_cannot_write(sandbox: Sandbox) -> None:
    insert = ("INSERT INTO public.dlq_events (connection_id, payload_json)"
              " SELECT id, '{}' FROM public.source_connections LIMIT 1")
    with sandbox.checks_ro(DB) as conn:
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


def test_row_level_security_as_member_and_as_outsider(sandbox: Sandbox) -> None:
    project = tenants.CHECK_PROJECT.id
    with sandbox.checks_ro(DB) as conn:
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


def test_the_project_week_query_uses_its_index(sandbox: Sandbox) -> None:
    with sandbox.checks_ro(DB) as conn:
        row = conn.execute(
            "EXPLAIN (FORMAT JSON) SELECT event_type, count(*) FROM public.canonical_events"
            " WHERE project_id = %s AND event_time >= now() - interval '7 days'"
            " GROUP BY event_type", (tenants.CHECK_PROJECT.id,)).fetchone()
    assert row is not None
    plan = json.dumps(row[0])
    assert f'"Index Name": "{INDEX}"' in plan
    assert '"Seq Scan"' not in plan


# Traffic and the DLQ worker ------------------------------------------------------------------

def test_every_active_connection_keeps_delivering(sandbox: Sandbox) -> None:
    with sandbox.superuser(DB) as conn:
        row = conn.execute(FRESHNESS).fetchone()
    assert row is not None
    silence, lag = float(row[0]), float(row[1])
    # The quietest connection delivers about every 3 minutes, its events dated up to a minute
    # before: well inside the checks' 10-minute lag warning and 15-minute silence alarm.
    assert silence < 300 and lag < 360, (silence, lag)
    count = "SELECT count(*) FROM public.canonical_events"
    before = sandbox.scalar(count, database=DB)
    time.sleep(4)
    assert sandbox.scalar(count, database=DB) > before


def test_about_two_percent_of_deliveries_are_dead_letters(sandbox: Sandbox) -> None:
    with sandbox.superuser(DB) as conn:
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


def test_the_dlq_worker_resolves_what_is_due(sandbox: Sandbox) -> None:
    with sandbox.superuser(DB) as conn:
        row = conn.execute(
            """INSERT INTO public.dlq_events (connection_id, payload_json, error_message,
                                              error_class, next_retry_at, created_at)
               VALUES (%s, '{"id": "probe"}', 'probe', 'UNEXPECTED_ERROR',
                       now() - interval '1 second', now() - interval '2 minutes')
               RETURNING id""", (incidents.SILENT.id,)).fetchone()
    assert row is not None
    status = "SELECT status || '/' || attempt_count FROM public.dlq_events WHERE id = %s"
    deadline = time.monotonic() + 30  # the worker passes every 20 s
    while (sandbox.scalar(status, (row[0],), database=DB) == "pending/0"
           and time.monotonic() < deadline):
        time.sleep(1)
    assert sandbox.scalar(status, (row[0],), database=DB) == "resolved/1"


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


def hottok(sandbox: Sandbox, connection: tenants.Connection, body: bytes) -> str:
    secret = sandbox.scalar("SELECT config_json ->> 'hotmart_secret'"
                            " FROM public.source_connections WHERE id = %s", (connection.id,),
                            database=DB)
    return hmac.new(str(secret).encode(), body, sha256).hexdigest()


def letters_of(sandbox: Sandbox, connection: tenants.Connection) -> int:
    return int(sandbox.scalar("SELECT count(*) FROM public.dlq_events WHERE connection_id = %s",
                              (connection.id,), database=DB))


def test_health_needs_a_bearer_token(sandbox: Sandbox) -> None:
    with sandbox.http(DB) as client:
        anonymous = client.get("/api/health")
        signed = client.get("/api/health", headers={"Authorization": "Bearer anything"})
    assert (anonymous.status_code, anonymous.json()) == (401, {"error": "Unauthorized"})
    assert signed.status_code == 200 and signed.json()["status"] == "ok"
    assert signed.json()["timestamp"].endswith("Z")


def test_metrics_are_prometheus_text(sandbox: Sandbox) -> None:
    with sandbox.http(DB) as client:
        client.get("/api/health", headers={"Authorization": "Bearer x"})
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert ('http_request_duration_seconds_count{app="launchsin-server",method="GET",'
            'route="/api/health",status_code="200"}') in response.text


@pytest.mark.parametrize("connection", [
    "not-a-uuid", "5d1a3c2e-7b4f-4e2a-9c61-0f3b8a7d2e19",  # no such connection (fixed: one id per worker)
    str(tenants.connection("aurora-march-meta").id),  # not Hotmart
    str(tenants.connection("vertice-community-hotmart-old").id),  # inactive
])
def test_webhook_for_an_unknown_connection_is_404(sandbox: Sandbox, connection: str) -> None:
    with sandbox.http(DB) as client:
        response = client.post(f"/api/webhooks/hotmart/{connection}", content=b"{}")
    assert (response.status_code, response.json()) == (404, {"error": "Connection not found"})


def test_webhook_with_a_bad_hottok_is_401_and_writes_nothing(sandbox: Sandbox) -> None:
    target = tenants.connection("aurora-march-hotmart")
    body = hotmart_payload(f"HPBAD{uuid.uuid4().hex[:10].upper()}")
    before = letters_of(sandbox, target)
    with sandbox.http(DB) as client:
        response = client.post(f"/api/webhooks/hotmart/{target.id}", content=body,
                               headers={"x-hotmart-hottok": "0" * 64})
    assert (response.status_code, response.json()) == (401, {"error": "Invalid signature"})
    assert letters_of(sandbox, target) == before


def test_webhook_ingests_once_and_counts_the_repeat_as_duplicate(sandbox: Sandbox) -> None:
    target = tenants.connection("aurora-march-hotmart")
    transaction = f"HPTEST{uuid.uuid4().hex[:10].upper()}"
    body = hotmart_payload(transaction)
    headers = {"x-hotmart-hottok": hottok(sandbox, target, body)}
    before = letters_of(sandbox, target)
    with sandbox.http(DB) as client:
        first = client.post(f"/api/webhooks/hotmart/{target.id}", content=body, headers=headers)
        again = client.post(f"/api/webhooks/hotmart/{target.id}", content=body, headers=headers)
    assert first.json() == {"received": True, "processed": 1, "duplicates": 0}
    assert again.json() == {"received": True, "processed": 1, "duplicates": 1}
    key = f"hotmart_{transaction}_PURCHASE_APPROVED"
    with sandbox.superuser(DB) as conn:
        rows = conn.execute(
            """SELECT event_type, project_id, actor_json ? 'email_hash',
                      actor_json::text LIKE '%%Example%%'
               FROM public.canonical_events WHERE source_connection_id = %s
                 AND idempotency_key = %s""", (target.id, key)).fetchall()
        conn.execute("DELETE FROM public.canonical_events WHERE idempotency_key = %s", (key,))
    assert rows == [("purchase_completed", tenants.CHECK_PROJECT.id, True, False)]
    assert letters_of(sandbox, target) == before  # a duplicate is not a dead letter


def test_webhook_without_a_secret_is_acknowledged_and_dead_lettered(sandbox: Sandbox) -> None:
    target = incidents.WITHOUT_HOTTOK
    sandbox.ok("fault", incidents.HOTMART_SECRET_MISSING)
    try:
        with sandbox.http(DB) as client:
            response = client.post(f"/api/webhooks/hotmart/{target.id}",
                                   content=hotmart_payload("HPNOSECRET"),
                                   headers={"x-hotmart-hottok": "whatever"})
        letter = sandbox.scalar("""SELECT error_class || '/' || status FROM public.dlq_events
                                   WHERE connection_id = %s AND payload_json #>>
                                         '{data,purchase,transaction}' = 'HPNOSECRET'""",
                                (target.id,), database=DB)
    finally:
        sandbox.ok("heal", incidents.HOTMART_SECRET_MISSING)
        sandbox.scalar("DELETE FROM public.dlq_events WHERE payload_json #>> "
                       "'{data,purchase,transaction}' = 'HPNOSECRET' RETURNING 1", database=DB)
    assert (response.status_code, response.json()) == (200, {"received": True})
    assert letter == "MISSING_SECRET/pending"


# Faults whose effects go beyond their probe ---------------------------------------------------

def test_a_stop_holds_until_healed_and_heal_refills_the_hour(sandbox: Sandbox) -> None:
    last_hour = ("SELECT count(*) FROM public.canonical_events"
                 " WHERE ingested_at >= now() - interval '1 hour'")
    sandbox.ok("fault", incidents.INGEST_STOPPED)
    try:
        time.sleep(6)  # more than the busiest connection's interval
        assert sandbox.scalar(last_hour, database=DB) == 0
        assert sandbox.scalar("SELECT count(*) FROM public.dlq_events"
                              " WHERE created_at >= now() - interval '1 hour'", database=DB) == 0
    finally:
        sandbox.ok("heal", incidents.INGEST_STOPPED)
    assert sandbox.scalar(last_hour, database=DB) > 1000


def test_drifted_dead_letters_are_still_written_and_heal_gives_the_values_back(sandbox: Sandbox) -> None:
    target = tenants.connection("aurora-march-hotmart")
    body = json.dumps({"id": "drift-probe", "event": "PURCHASE_APPROVED"}).encode()  # no data
    classes = ("SELECT array_agg(error_class || '/' || status ORDER BY error_class, status)"
               " FROM (SELECT DISTINCT error_class, status FROM public.dlq_events) d")
    before = sandbox.scalar(classes, database=DB)
    sandbox.ok("fault", incidents.DLQ_SCHEMA_DRIFT)
    try:
        with sandbox.http(DB) as client:  # an unexpected error: a letter in the migrated columns only
            response = client.post(f"/api/webhooks/hotmart/{target.id}", content=body,
                                   headers={"x-hotmart-hottok": hottok(sandbox, target, body)})
        assert response.status_code == 200 and response.json()["received"] is True
    finally:
        sandbox.ok("heal", incidents.DLQ_SCHEMA_DRIFT)
    probe = ("SELECT error_class || '/' || status || '/' || (next_retry_at IS NOT NULL)"
             " FROM public.dlq_events WHERE payload_json ->> 'id' = 'drift-probe'")
    assert sandbox.scalar(probe, database=DB) in ("UNEXPECTED_ERROR/pending/true",
                                                  "UNEXPECTED_ERROR/resolved/true")
    sandbox.scalar("DELETE FROM public.dlq_events WHERE payload_json ->> 'id' = 'drift-probe'"
                   " RETURNING 1", database=DB)
    assert sandbox.scalar(classes, database=DB) == before
