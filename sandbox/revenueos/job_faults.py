"""The database part of the faults on the job queue and the consistency engine: apply and heal.

Rows a fault adds carry its name (`sandbox_fault`) in their JSON, so that heal finds exactly
those.
"""

from __future__ import annotations

import math

from sandbox import kit
from sandbox.revenueos import tenants
from sandbox.revenueos.incidents import CRITICAL_ANOMALY, JOB_SUCCESS
from sandbox.system import Context, Step

TOTALS = "SELECT sum(success), sum(total) FROM public.ops_job_success_view"
# Sync jobs that gave up after three attempts, spread over the day the success rate covers.
DEAD_JOBS = """
    INSERT INTO public.jobs_queue (org_id, project_id, job_type, payload, status, attempts,
                                   last_error, trace_id, available_at, created_at, updated_at)
    SELECT %(org)s, %(project)s, 'sync_provider',
           jsonb_build_object('provider', 'stripe', 'sandbox_fault', %(name)s::text), 'dead', 3,
           'stripe API: 401 Unauthorized (expired restricted key)', md5(random()::text), at, at,
           at + interval '7 minutes'
    FROM generate_series(1, %(count)s) AS n
    CROSS JOIN LATERAL (SELECT now() - interval '10 minutes'
                               - random() * interval '23 hours' AS at) t
"""
FORGET_JOBS = "DELETE FROM public.jobs_queue WHERE payload ->> 'sandbox_fault' = %s"
ANOMALY = """
    INSERT INTO public.state_anomalies (org_id, project_id, provider, entity_type, external_id,
                                        anomaly_type, details, detected_at, severity, status)
    VALUES (%s, %s, 'stripe', 'payment', 'pi_3QfX7sandbox', 'payment_without_order',
            jsonb_build_object('amount_cents', 189000, 'sandbox_fault', %s::text),
            now() - interval '25 minutes', 'critical', 'open')
"""
FORGET_ANOMALY = "DELETE FROM public.state_anomalies WHERE details ->> 'sandbox_fault' = %s"


def fail_jobs(name: str) -> Step:
    def apply(ctx: Context) -> None:
        target = JOB_SUCCESS[name]
        with ctx.superuser() as conn:
            row = conn.execute(TOTALS).fetchone()
            assert row is not None
            success, total = int(row[0] or 0), int(row[1] or 0)
            # Enough failures over the day for success / (total + failures) = target.
            missing = math.ceil(success / target - total)
            if missing > 0:
                conn.execute(DEAD_JOBS, {"org": tenants.LUMEN.id, "project": tenants.LUMEN_COURSES.id,
                                         "name": name, "count": missing})
    return apply


def forget_jobs(name: str) -> Step:
    return kit.statement(FORGET_JOBS, (name,))


open_critical = kit.statement(ANOMALY, (tenants.SAFRA.id, tenants.SAFRA_STORE.id, CRITICAL_ANOMALY))
forget_anomaly = kit.statement(FORGET_ANOMALY, (CRITICAL_ANOMALY,))
