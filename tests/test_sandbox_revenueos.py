"""The sandbox's RevenueOS, run for real against the session's sandbox: its database, roles,
traffic, app, the other column set of external_events_raw (under which every item must still
pass), and the incident runs runbook 003 is for.

Each fault's own round trip (probe healthy, broken, healthy again, nothing left behind, exactly
its items turned) is in tests/test_sandbox_checks.py, with the checks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from checks.revenueos import TAIL_PAGES, WHOLE_UP_TO
from sandbox.revenueos import incidents, tenants, variants
from sandbox.revenueos.provision import CURRENT_SECRET, PREVIOUS_SECRET
from tests.conftest import ChecksPytester
from tests.sandbox_handle import Sandbox

pytestmark = pytest.mark.sandbox

DB = "revenueos"
SYSTEM = "revenueos"
MARKERS = "payments_not_syncing or dunning_spam or db_maintenance"
REVENUEOS_VARIABLES = {
    "REVENUEOS_DATABASE_URL",
    "REVENUEOS_BASE_URL",
    "REVENUEOS_PREVIOUS_INTERNAL_API_SECRET",
    "REVENUEOS_PROVIDER_MAX_AGE_MINUTES",
}
CRON = "/api/cron/sync"


def secret(sandbox: Sandbox, name: str) -> str:
    return sandbox.state.systems[SYSTEM][name]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Database, roles and env ---------------------------------------------------------------------

def test_env_file_gives_the_checks_no_working_cron_secret(sandbox: Sandbox) -> None:
    env = sandbox.env
    assert {name for name in env if name.startswith("REVENUEOS_")} == REVENUEOS_VARIABLES
    assert env["REVENUEOS_DATABASE_URL"].startswith("postgresql://checks_ro:")
    assert env["REVENUEOS_DATABASE_URL"].endswith("/revenueos")
    assert env["REVENUEOS_PREVIOUS_INTERNAL_API_SECRET"] == secret(sandbox, PREVIOUS_SECRET)
    assert secret(sandbox, CURRENT_SECRET) not in sandbox.env_file.read_text()


def test_checks_ro_reads_but_cannot_write(sandbox: Sandbox) -> None:
    with sandbox.checks_ro(DB) as conn:
        row = conn.execute("SELECT (SELECT oldest_age_seconds FROM public.ops_queue_health_view),"
                           " (SELECT count(*) > 0 FROM public.dunning_logs)").fetchone()
        assert row is not None and row[1] is True
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM public.dunning_logs")
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM public.dunning_logs")


def test_the_schema_is_the_replay_with_the_keys_production_needs(sandbox: Sandbox) -> None:
    with sandbox.superuser(DB) as conn:
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'external_events_raw'")}
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'external_events_raw'")}
        constraints = {r[0] for r in conn.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'u'"
            " AND conrelid IN ('public.external_events_normalized'::regclass,"
            " 'public.dunning_logs'::regclass)")}
        rls = conn.execute("SELECT bool_and(relrowsecurity) FROM pg_class WHERE relname = ANY(%s)",
                           (["external_events_raw", "dunning_logs", "jobs_queue"],)).fetchone()
    assert {"payload_json", "external_event_id", "error_text"} <= columns
    assert not {"payload", "idempotency_key", "error_message"} & columns
    # Only the indexes upstream has: no received_at or status index, so the checks scan.
    assert indexes == {"external_events_raw_pkey",
                       "external_events_raw_org_id_provider_external_event_id_key"}
    assert constraints == {"external_events_normalized_idempotency_key",
                           "dunning_logs_idempotency_key"}
    assert rls == (True,)


# Traffic and the workers ---------------------------------------------------------------------

def test_every_provider_keeps_delivering_and_the_workers_keep_up(sandbox: Sandbox) -> None:
    count = "SELECT count(*) FROM public.external_events_raw"
    before = sandbox.scalar(count, database=DB)
    time.sleep(8)  # Stripe delivers every 6 s or so
    assert sandbox.scalar(count, database=DB) > before
    with sandbox.superuser(DB) as conn:
        newest = dict(conn.execute("SELECT provider, extract(epoch FROM now() - max(received_at))"
                                   " FROM public.external_events_raw GROUP BY provider").fetchall())
        waiting = conn.execute(
            "SELECT (SELECT count(*) FROM public.external_events_raw WHERE status IN"
            " ('pending', 'processing') AND received_at < now() - interval '30 seconds'),"
            " (SELECT oldest_age_seconds FROM public.ops_queue_health_view)").fetchone()
        normalized = conn.execute(
            "SELECT count(*) FILTER (WHERE n.id IS NULL) FROM public.external_events_raw r"
            " LEFT JOIN public.external_events_normalized n ON n.raw_event_id = r.id"
            " WHERE r.status = 'processed' AND r.received_at > now() - interval '1 hour'").fetchone()
    assert set(newest) == {p.name for p in tenants.PROVIDERS}
    assert all(float(age) < 120 for name, age in newest.items() if name != tenants.BELVO.name)
    assert float(newest[tenants.BELVO.name]) < tenants.BELVO_WINDOW_MINUTES * 60
    assert waiting is not None and waiting[0] == 0 and float(waiting[1]) < 30
    assert normalized == (0,)


def test_dunning_sends_each_step_once_and_several_steps_per_payment(sandbox: Sandbox) -> None:
    with sandbox.superuser(DB) as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM (SELECT 1 FROM public.dunning_logs
                       GROUP BY payment_id, rule_id, channel HAVING count(*) > 1) d),
                      (SELECT count(*) FROM (SELECT 1 FROM public.dunning_logs
                       GROUP BY payment_id HAVING count(*) > 1) p),
                      (SELECT max(sent_at) > now() - interval '2 hours' FROM public.dunning_logs),
                      (SELECT array_agg(DISTINCT channel ORDER BY channel) FROM public.dunning_logs)
            """).fetchone()
    assert row is not None
    repeated_steps, multi_step_payments, recent, channels = row
    assert repeated_steps == 0
    assert multi_step_payments > 100  # why the runbook's GROUP BY payment_id is only information
    assert recent is True and channels == ["email", "whatsapp"]


# The app --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("headers", "status", "error"), [
    ({}, 401, "Missing Authorization header"),
    ({"Authorization": "Basic abc"}, 401, "Invalid Authorization format. Expected: Bearer <token>"),
    (bearer("not-the-secret"), 401, "Unauthorized"),
], ids=["no-header", "wrong-scheme", "wrong-token"])
def test_cron_routes_refuse_as_require_internal_auth_does(
    sandbox: Sandbox, headers: dict[str, str], status: int, error: str
) -> None:
    with sandbox.http(SYSTEM) as client:
        answers = [client.get(CRON, headers=headers)] + [
            client.post(path, headers=headers)
            for path in ("/api/cron/worker", "/api/cron/retention", "/api/cron/consistency")]
    assert {(a.status_code, a.json()["error"]) for a in answers} == {(status, error)}


def test_cron_routes_work_with_the_valid_secret_and_only_with_it(sandbox: Sandbox) -> None:
    headers = bearer(secret(sandbox, CURRENT_SECRET))
    with sandbox.http(SYSTEM) as client:
        sync = client.get(CRON, headers=headers)
        worker = client.post("/api/cron/worker", headers=headers)
        retention = client.post("/api/cron/retention", headers=headers)
        consistency = client.post("/api/cron/consistency", headers=headers)
        old = client.get(CRON, headers=bearer(secret(sandbox, PREVIOUS_SECRET)))
        wrong_method = client.post(CRON, headers=headers)
    assert sync.status_code == 200 and set(sync.json()) == {"processed", "errors"}
    assert worker.json()["success"] is True and "processed" in worker.json()
    assert retention.json()["message"] == "Cleaned jobs older than 30 days"
    assert consistency.json() == {"success": True, "results": {"checked": 2, "errors": []}}
    assert (old.status_code, old.json()) == (401, {"error": "Unauthorized"})
    assert wrong_method.status_code == 405


def test_without_the_variable_every_bearer_gets_a_configuration_error(sandbox: Sandbox) -> None:
    sandbox.fault(incidents.INTERNAL_SECRET_UNSET)
    try:
        with sandbox.http(SYSTEM) as client:
            valid = client.get(CRON, headers=bearer(secret(sandbox, CURRENT_SECRET)))
            anonymous = client.get(CRON)
    finally:
        sandbox.heal(incidents.INTERNAL_SECRET_UNSET)
    assert (valid.status_code, valid.json()) == (500, {"error": "Configuration error"})
    assert anonymous.status_code == 401  # the header is looked at before the variable


def webhook(sandbox: Sandbox, integration: tenants.Integration, body: bytes,
            signature: str | None = None, key: str | None = None) -> tuple[int, dict[str, object]]:
    secret_ = sandbox.scalar("SELECT webhook_secret FROM public.integrations WHERE id = %s",
                             (integration.id,), database=DB)
    signed = hmac.new(str(secret_).encode(), body, hashlib.sha256).hexdigest()
    with sandbox.http(SYSTEM) as client:
        answer = client.post(f"/api/webhooks/{integration.provider.name}",
                             params={"key": key or integration.webhook_key}, content=body,
                             headers={"x-webhook-signature": signature or signed})
    return answer.status_code, answer.json()


def test_webhooks_land_pending_are_processed_and_deduplicated(sandbox: Sandbox) -> None:
    integration = tenants.ACTIVE[0]
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex[:16]}", "type": "charge.succeeded",
                       "amount": 4990}).encode()
    event_id = f"{integration.provider.name}:{hashlib.sha256(body).hexdigest()}"
    status = "SELECT status FROM public.external_events_raw WHERE external_event_id = %s"
    try:
        assert webhook(sandbox, integration, body) == (200, {"received": True})
        assert webhook(sandbox, integration, body) == (200, {"received": True, "status": "duplicate"})
        deadline = time.monotonic() + 15  # the sync engine passes every 3 s
        while sandbox.scalar(status, (event_id,), database=DB) != "processed":
            assert time.monotonic() < deadline, "the webhook's raw event was never processed"
            time.sleep(0.5)
        bad = json.dumps({"id": "evt_bad", "type": "charge.succeeded"}).encode()
        assert webhook(sandbox, integration, bad, signature="0" * 64) == (200, {"received": True})
        assert sandbox.scalar("SELECT status || '/' || error_text FROM public.external_events_raw"
                              " WHERE external_event_id = %s",
                              (f"stripe:{hashlib.sha256(bad).hexdigest()}",),
                              database=DB) == "ignored/Invalid Signature"
    finally:
        with sandbox.superuser(DB) as conn:
            conn.execute("DELETE FROM public.jobs_queue WHERE trace_id LIKE 'stripe:%'")
            conn.execute("DELETE FROM public.external_events_normalized WHERE raw_event_id IN"
                         " (SELECT id FROM public.external_events_raw"
                         "  WHERE external_event_id LIKE 'stripe:%')")
            conn.execute("DELETE FROM public.external_events_raw WHERE external_event_id LIKE 'stripe:%'")
            conn.execute("DELETE FROM public.external_events WHERE external_event_id LIKE 'stripe:%'")


def test_webhook_without_a_known_key_is_refused(sandbox: Sandbox) -> None:
    integration = tenants.ACTIVE[0]
    with sandbox.http(SYSTEM) as client:
        no_key = client.post("/api/webhooks/stripe", content=b"{}")
    assert (no_key.status_code, no_key.json()) == (400, {"error": "Missing webhook key"})
    assert webhook(sandbox, integration, b"{}", key="whk_unknown") == (
        404, {"error": "Invalid or inactive webhook key"})


def test_lineage_is_behind_login_and_not_where_the_runbook_says(sandbox: Sandbox) -> None:
    with sandbox.http(SYSTEM) as client:
        anonymous = client.get("/ops/lineage")
        signed_in = client.get("/ops/lineage", headers={"cookie": "sb-access-token=x"})
        runbook_url = client.get("/app/ops/lineage")
        health = client.get("/api/health")
    assert (anonymous.status_code, anonymous.headers["location"]) == (
        307, "/login?next=%2Fops%2Flineage")
    assert signed_in.status_code == 200 and "Lineage Explorer" in signed_in.text
    assert runbook_url.status_code == 404
    assert health.status_code == 404  # RevenueOS has no health endpoint


# The other column set ---------------------------------------------------------------------------

@pytest.fixture
def data_truth_columns(sandbox: Sandbox) -> Iterator[None]:
    """external_events_raw in the data truth layer's column set for the test, then back."""
    context = sandbox.context(SYSTEM)
    variants.to_data_truth(context)
    try:
        time.sleep(4)  # a delivery and a sync engine pass in the new shape
        yield
    finally:
        variants.to_replay(context)
    assert sandbox.leftovers(SYSTEM) == []


def test_every_item_passes_on_the_data_truth_column_set(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester, data_truth_columns: None
) -> None:
    run = sandbox_pytester.run("--allow-side-effects", "-m", MARKERS)
    assert set(run.states().values()) == {"PASS"}, json.dumps(run.messages(), indent=2)
    # The column-set notes (not the notes on how many of its pages a check read).
    notes = {c["item"]: e["text"] for c in run.results["checks"] for e in c["evidence"]
             if e["kind"] == "note" and e["text"].startswith("external_events_raw has")
             and "no index on" not in e["text"]}
    assert set(notes) == {"RO-0", "RO-4", "RO-5", "RO-7"}
    assert all("data truth layer's set (idempotency_key, payload, error_message)" in n
               for n in notes.values())
    with sandbox.superuser(DB) as conn:
        fresh = conn.execute("SELECT count(*) FROM public.external_events_raw"
                             " WHERE received_at > now() - interval '10 seconds'"
                             " AND idempotency_key IS NOT NULL").fetchone()
    assert fresh is not None and fresh[0] > 0  # the traffic writes the new shape


# The incident runs runbook 003 is for ------------------------------------------------------------

def test_payments_not_syncing_fails_while_the_worker_is_down_and_passes_after(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester
) -> None:
    with sandbox.broken(incidents.WORKER_DOWN):
        down = sandbox_pytester.run("-m", "payments_not_syncing", "--target", "sandbox")
    assert down.ret == 2
    assert {i: s for i, s in down.states().items() if s != "PASS"} == {"RO-1": "FAIL", "RO-5": "FAIL"}
    assert [d["conclusion"] for d in down.results["diagnosis"]] == [
        "raw rows exist but stay `pending`: the worker is down"]
    healed = sandbox_pytester.run("-m", "payments_not_syncing", "--target", "sandbox")
    assert healed.ret == 0, json.dumps(healed.messages(), indent=2)


OLD_SEND = "test:older-send"  # marks the sends the fixture below adds, so that it removes exactly those
OLD_SENDS = 40_000  # a month of a busy cadence: several hundred pages, past what RO-9 reads whole


@pytest.fixture
def long_dunning_log(sandbox: Sandbox) -> Iterator[int]:
    """dunning_logs grown past RO-9's page budget by a month of older sends, stored before the
    live ones as production's arrival order stores them; its pages, then back as it was."""
    with sandbox.superuser(DB) as conn, conn.transaction():
        conn.execute("LOCK TABLE public.dunning_logs IN ACCESS EXCLUSIVE MODE")
        conn.execute("CREATE TEMP TABLE live ON COMMIT DROP AS SELECT * FROM public.dunning_logs")
        conn.execute("TRUNCATE public.dunning_logs")
        conn.execute("""INSERT INTO public.dunning_logs (project_id, rule_id, payment_id, customer_id,
                                                         channel, status, provider_message_id, sent_at)
                        SELECT (SELECT project_id FROM live LIMIT 1), NULL, gen_random_uuid(),
                               'cus_old_' || n, 'email', 'read', %s,
                               now() - interval '60 days' + n * interval '1 minute'
                        FROM generate_series(1, %s) AS n""", (OLD_SEND, OLD_SENDS))
        conn.execute("INSERT INTO public.dunning_logs SELECT * FROM live ORDER BY sent_at")
        found = conn.execute("SELECT pg_relation_size('public.dunning_logs') / 8192").fetchone()
    assert found is not None
    try:
        yield found[0]
    finally:
        with sandbox.superuser(DB) as conn:
            conn.execute("DELETE FROM public.dunning_logs WHERE provider_message_id = %s", (OLD_SEND,))
            conn.execute("VACUUM FULL public.dunning_logs")  # the live rows in arrival order again


def test_a_dunning_log_past_its_budget_is_read_from_its_last_pages_and_still_catches_a_double_send(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester, long_dunning_log: int
) -> None:
    budget = TAIL_PAGES["dunning_logs"]
    assert long_dunning_log > WHOLE_UP_TO * budget
    healthy = sandbox_pytester.run("-m", "dunning_spam", "--target", "sandbox")
    assert healthy.states()["RO-9"] == "PASS", json.dumps(healthy.messages(), indent=2)
    notes = [e["text"] for c in healthy.results["checks"] if c["item"] == "RO-9"
             for e in c["evidence"] if e["kind"] == "note"]
    # The pages of the whole table (the cadence may have added one since), of which its last.
    reach = [int(m[1]) for n in notes if (m := re.search(rf"read its last {budget} of (\d+) pages", n))]
    assert len(reach) == 1 and reach[0] >= long_dunning_log, notes
    with sandbox.broken(incidents.DUNNING_DOUBLE_SEND):
        run = sandbox_pytester.run("-m", "dunning_spam", "--target", "sandbox")
    assert run.states()["RO-9"] == "FAIL", json.dumps(run.messages(), indent=2)
    assert "within 60 s" in run.messages()["RO-9"]


def test_dunning_spam_without_the_dunning_tables_is_unknown_naming_them(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester
) -> None:
    with sandbox.broken(incidents.DUNNING_TABLE_MISSING):
        run = sandbox_pytester.run("-m", "dunning_spam", "--target", "sandbox")
    assert run.ret == 3
    assert run.states() == {"RO-0": "UNKNOWN", "RO-9": "UNKNOWN", "RO-10": "UNKNOWN"}
    messages = run.messages()
    assert messages["RO-0"].startswith("SchemaMismatch: schema drift: table dunning_logs is missing "
                                       "(needed by RO-9, RO-10)")
    assert all("not evaluated: schema contract (table dunning_logs is missing" in messages[item]
               for item in ("RO-9", "RO-10"))
    assert not [line for line in run.outlines + run.errlines
                if "Traceback" in line or "UndefinedTable" in line]
