"""The dunning cadence: which message each overdue payment gets, and when.

No upstream code writes dunning_logs; the sandbox stands in for the cron the runbook expects.
Every project has four rules (an email two days before the due date, a WhatsApp the day after,
an email on day 3, a WhatsApp on day 7). Payments fall due every `every` seconds per project,
deterministically (payment k of a project is due at k * every seconds since the epoch), and each
is paid after a number of steps drawn from its hash, so some get one message and some all four.
`fill` writes every send due in a window that is not in the log yet, so provisioning, the
traffic and heals all call it; it never sends a step twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import psycopg

from sandbox import db, kit
from sandbox.revenueos import tenants
from sandbox.revenueos.tenants import Project

HISTORY = timedelta(days=14)
# Seconds between two payments falling due, per project.
EVERY = {
    tenants.LUMEN_COURSES: 1200, tenants.LUMEN_MENTORING: 3600, tenants.ORBITA_PLANS: 1800,
    tenants.PRAXIS_RETAINERS: 7200, tenants.SAFRA_STORE: 2700, tenants.SAFRA_SUBSCRIPTIONS: 5400,
}
# (days after the due date, channel, template name)
CADENCE = ((-2, "email", "Lembrete de vencimento"), (1, "whatsapp", "Pagamento em aberto"),
           (3, "email", "Segundo aviso"), (7, "whatsapp", "Último aviso"))


def rule_id(project: Project, days: int, channel: str) -> uuid.UUID:
    return uuid.uuid5(project.id, f"rule:{days}:{channel}")


def template_id(project: Project, channel: str, name: str) -> uuid.UUID:
    return uuid.uuid5(project.id, f"template:{channel}:{name}")


TEMPLATE = """
    INSERT INTO public.dunning_templates (id, project_id, type, name, subject, body_content,
                                          is_default)
    VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING
"""
RULE = """
    INSERT INTO public.dunning_rules (id, project_id, days_after_due, channel, template_id)
    VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING
"""

# Step n of a rule set is the rule with the n-th smallest offset; payment k of a project gets
# steps 1 .. 1 + (its hash mod 4), then it is paid. The jitter (0-49 s) is the cron's own.
FILL = """
    WITH rules AS (
        SELECT r.id AS rule_id, r.project_id, r.channel, r.days_after_due, p.every,
               row_number() OVER (PARTITION BY r.project_id ORDER BY r.days_after_due) AS step
        FROM public.dunning_rules r
        JOIN unnest(%(projects)s::uuid[], %(every)s::int[]) AS p(project_id, every)
             ON p.project_id = r.project_id
        WHERE r.active
    ), due AS (
        SELECT rules.*, k, md5(rules.project_id::text || ':' || k) AS h
        FROM rules
        CROSS JOIN LATERAL generate_series(
            floor((extract(epoch FROM %(since)s::timestamptz) - rules.days_after_due * 86400 - 60)
                  / rules.every)::bigint,
            floor((extract(epoch FROM %(until)s::timestamptz) - rules.days_after_due * 86400)
                  / rules.every)::bigint) AS k
    ), sends AS (
        SELECT due.*, md5('payment:' || due.h)::uuid AS payment_id,
               to_timestamp(due.k * due.every + due.days_after_due * 86400
                            + ('x' || substr(due.h, 1, 4))::bit(16)::int %% 50) AS sent_at,
               ('x' || substr(due.h, 5, 2))::bit(8)::int AS draw
        FROM due
    )
    INSERT INTO public.dunning_logs (project_id, rule_id, payment_id, customer_id, channel,
                                     status, provider_message_id, sent_at)
    SELECT s.project_id, s.rule_id, s.payment_id, 'cus_' || substr(s.h, 7, 12), s.channel,
           CASE WHEN s.draw < 5 THEN 'failed' WHEN s.draw < 40 THEN 'sent'
                WHEN s.draw < 150 THEN 'delivered' ELSE 'read' END,
           CASE s.channel WHEN 'whatsapp' THEN 'wamid.' ELSE 'msg_' END
               || substr(md5(s.h || s.step), 1, 24),
           s.sent_at
    FROM sends s
    WHERE s.step <= 1 + s.draw %% 4
      AND s.sent_at > %(since)s AND s.sent_at <= least(%(until)s::timestamptz, now())
      AND NOT EXISTS (SELECT 1 FROM public.dunning_logs l WHERE l.payment_id = s.payment_id
                      AND l.rule_id = s.rule_id AND l.channel = s.channel)
"""


def ensure_rules(conn: db.Connection) -> None:
    with conn.cursor() as cur:
        for project in EVERY:
            for days, channel, name in CADENCE:
                template = template_id(project, channel, name)
                cur.execute(TEMPLATE, (template, project.id, channel, name,
                                       name if channel == "email" else None,
                                       f"Olá {{{{customer.name}}}}, {name.lower()}.", days == 1))
                cur.execute(RULE, (rule_id(project, days, channel), project.id, days, channel,
                                   template))


def fill(conn: db.Connection, since: datetime, until: datetime | None = None) -> int:
    """Send what fell due in (since, until] and is not in the log; 0 when the table is missing
    (dunning_table_missing, or a database built from the migrations alone)."""
    params = {"projects": [p.id for p in EVERY], "every": list(EVERY.values()),
              "since": since, "until": until or kit.db_now(conn)}
    try:
        with conn.transaction():
            return conn.execute(FILL, params).rowcount
    except psycopg.errors.UndefinedTable:
        return 0


def history(conn: db.Connection) -> int:
    ensure_rules(conn)
    return fill(conn, kit.db_now(conn) - HISTORY)
