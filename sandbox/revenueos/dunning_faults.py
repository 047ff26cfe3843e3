"""The database part of the faults on dunning: apply and heal."""

from __future__ import annotations

from psycopg import sql

from sandbox import kit
from sandbox.revenueos import dunning
from sandbox.revenueos.incidents import DUNNING_DOUBLE_SEND, DUNNING_TABLES, STASH
from sandbox.system import Context

FAULT_MESSAGE = f"sandbox-fault:{DUNNING_DOUBLE_SEND}"
# "Run now" in the dunning UI, 20 seconds after the cron sent the same step: the customer gets
# the WhatsApp twice. A manual run has no rule, so the idempotency key does not stop it.
DOUBLE_SEND = """
    INSERT INTO public.dunning_logs (project_id, rule_id, payment_id, customer_id, channel, status,
                                     provider_message_id, sent_at)
    SELECT project_id, NULL, payment_id, customer_id, channel, 'delivered', %s,
           sent_at + interval '20 seconds'
    FROM public.dunning_logs
    WHERE channel = 'whatsapp' AND rule_id IS NOT NULL AND sent_at <= now() - interval '30 seconds'
    ORDER BY sent_at DESC
    LIMIT 1
"""

send_twice = kit.statement(DOUBLE_SEND, (FAULT_MESSAGE,))
forget_double_send = kit.statement(
    "DELETE FROM public.dunning_logs WHERE provider_message_id = %s", (FAULT_MESSAGE,))
drop_key = kit.statement(
    "ALTER TABLE public.dunning_logs DROP CONSTRAINT IF EXISTS dunning_logs_idempotency_key")
restore_key = kit.script(__package__, "dunning_key.sql")


def take_tables(ctx: Context) -> None:
    """The state of a database built from the migrations alone, where the dunning migration
    failed; the tables wait, data and all, in a schema the checks cannot see."""
    with ctx.superuser() as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(STASH)))
        for table in DUNNING_TABLES:
            conn.execute(sql.SQL("ALTER TABLE IF EXISTS public.{} SET SCHEMA {}").format(
                sql.Identifier(table), sql.Identifier(STASH)))


def give_tables_back(ctx: Context) -> None:
    with ctx.superuser() as conn:
        with conn.transaction():
            for table in DUNNING_TABLES:
                conn.execute(sql.SQL("ALTER TABLE IF EXISTS {}.{} SET SCHEMA public").format(
                    sql.Identifier(STASH), sql.Identifier(table)))
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {}").format(sql.Identifier(STASH)))
        # The sends that fell due while the tables were away: the cron's first pass, now.
        dunning.fill(conn, kit.db_now(conn) - dunning.HISTORY)
