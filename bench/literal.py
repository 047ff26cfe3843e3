"""The runbooks' own SQL for the items it serves, as an engineer would paste it during the incident.

Runbooks 000 to 002 give SQL for the items here; 003 and 004 are in bench/volume/literal_*.py,
with the items their runbooks describe only in prose marked (FROM_PROSE). The
text follows the runbooks' queries clause for clause (their placeholders, 'conn_123' and
'proj_123', become parameters filled from the target's settings); the benchmark runs each on the
same data as the suite's checks and compares the buffers they touch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.volume import literal_revenueos, literal_trendspark

RUNBOOK_SYSTEM = {"000": "opsmantik", "001": "launchsin", "002": "opsmantik",
                  "003": "revenueos", "004": "trendspark"}

LITERAL: dict[str, dict[str, str]] = {
    "000": {
        # Immediate check 2: sessions of the last 60 minutes.
        "IS-2": "select count(*)::int as sessions_last_60m from public.sessions "
                "where created_at >= now() - interval '60 minutes'",
    },
    "001": {
        # Event flow health: events ingested in the last hour.
        "EI-1": "select count(*) from canonical_events where ingested_at >= now() - interval '1 hour'",
        # Event flow health: events by source over 24 hours.
        "EI-2": "select sc.name, sc.type, count(*) as events from canonical_events ce "
                "join source_connections sc on sc.id = ce.source_connection_id "
                "where ce.event_time >= now() - interval '24 hours' "
                "group by sc.id, sc.name, sc.type order by events desc",
        # Lag: connections whose newest event is more than 5 minutes old.
        "EI-3": "select sc.name, now() - max(ce.event_time) as lag from canonical_events ce "
                "join source_connections sc on sc.id = ce.source_connection_id "
                "group by sc.id, sc.name having now() - max(ce.event_time) > interval '5 minutes'",
        # Duplicates: DLQ rows of class DUPLICATE_EVENT in the last hour.
        "EI-5": "select count(*) from dlq_events where error_class = 'DUPLICATE_EVENT' "
                "and created_at >= now() - interval '1 hour'",
        # High DLQ rate: error patterns of the last hour.
        "EI-8": "select error_class, count(*) as count, max(last_error_message) as sample_error "
                "from dlq_events where created_at >= now() - interval '1 hour' "
                "group by error_class order by count desc",
        # Webhook not receiving events: the connection's status.
        "EI-9": "select id, name, is_active, config_json from source_connections "
                "where id = %(connection)s::uuid",
        # RLS: the project's events (run as the user in the runbook; here the superuser).
        "EI-13": "select count(*) from canonical_events where project_id = %(project)s::uuid",
        # Slow queries: the project's 7-day query the runbook runs under EXPLAIN ANALYZE.
        "EI-18": "select * from canonical_events where project_id = %(project)s::uuid "
                 "and event_time >= now() - interval '7 days'",
    },
    "002": {
        # Command A: the drift-guard triggers and their definitions.
        "PD-3": "select tgname, tgenabled, pg_get_triggerdef(t.oid) as def from pg_trigger t "
                "join pg_class c on c.oid = t.tgrelid where not t.tgisinternal "
                "and c.relname in ('sessions', 'events') order by c.relname, tgname",
    },
    "003": literal_revenueos.LITERAL,
    "004": literal_trendspark.LITERAL,
}
# Items whose runbook says what to look at without giving SQL: the query that prose leads to.
FROM_PROSE = {"003": literal_revenueos.FROM_PROSE, "004": literal_trendspark.FROM_PROSE}


def literal_params(runbook: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The values the runbook's placeholders stand for, from the target's settings."""
    if runbook == "001":
        expected = env.get("LAUNCHSIN_EXPECTED_ACTIVE_CONNECTIONS", "")
        return {"connection": expected.split(",")[0].strip() or None,
                "project": env.get("LAUNCHSIN_CHECK_PROJECT_ID")}
    return {}
