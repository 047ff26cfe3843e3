"""OpsMantik facts that runbooks 000 and 002 both rely on: the ingest window and the drift guards.

Time windows come from the database's now(); `created_month` bounds let the planner prune
partitions, so no query scans a whole month of sessions.
"""

from __future__ import annotations

from fixtures.evidence import TEXT_CHARS
from fixtures.postgres import ReadOnlyDB
from fixtures.verdicts import excerpt

SESSIONS_SINCE = """
select count(*) as sessions
from public.sessions
where created_month >= date_trunc(
          'month', (now() - make_interval(mins => %(minutes)s)) at time zone 'UTC')::date
  and created_at >= now() - make_interval(mins => %(minutes)s)
"""

# When a trigger fires is read from pg_trigger.tgtype's bits (pg_trigger.h: 2 BEFORE, 4 INSERT,
# 64 INSTEAD OF). Its definition can be megabytes (its arguments): it is built only for a trigger
# that does not fire BEFORE INSERT, to be quoted, and only its start and size are read. A
# function's body, as large, is searched on the server.
DRIFT_GUARD_TRIGGERS = f"""
select c.relname as table_name, t.tgname as trigger_name, t.tgenabled as enabled,
       fires.before_insert,
       case when not fires.before_insert then
           (select json_build_object('start', left(d.sql, {TEXT_CHARS}), 'bytes', octet_length(d.sql))
            from pg_get_triggerdef(t.oid) as d(sql))
       end as definition,
       p.proname as function_name,
       p.prosrc like '%%created_month%%' as mentions_created_month,
       p.prosrc like '%%session_month%%' as mentions_session_month
from pg_trigger t
cross join lateral (
    select t.tgtype & 2 <> 0 and t.tgtype & 4 <> 0 and t.tgtype & 64 = 0 as before_insert) fires
join pg_class c on c.oid = t.tgrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_proc p on p.oid = t.tgfoid
where n.nspname = 'public' and c.relname in ('sessions', 'events') and not t.tgisinternal
"""
# The trigger each parent must carry, and the month key its function must set.
EXPECTED_TRIGGERS = {
    "sessions": ("sessions_set_created_month", "mentions_created_month"),
    "events": ("events_set_session_month_from_session", "mentions_session_month"),
}
ENABLED = ("O", "A")  # fires on origin (normal) or always; 'D' is disabled, 'R' replica only

VERIFY_TRIGGERS = "select public.verify_partition_triggers_exist() as triggers_ok"


def trigger_problems(db: ReadOnlyDB, *, check_definitions: bool) -> list[str]:
    """What is wrong with the two drift-guard triggers, read from the catalog; empty if nothing."""
    found = {(r["table_name"], r["trigger_name"]): r for r in db.rows(DRIFT_GUARD_TRIGGERS)}
    problems = []
    for table, (trigger, key_flag) in EXPECTED_TRIGGERS.items():
        row = found.get((table, trigger))
        if row is None:
            problems.append(f"trigger {trigger} is missing on public.{table}")
        elif row["enabled"] not in ENABLED:
            problems.append(f"trigger {trigger} on public.{table} is disabled (tgenabled "
                            f"{row['enabled']!r}); the verify RPC does not notice this")
        elif check_definitions and not row["before_insert"]:
            definition = row["definition"]
            problems.append(f"trigger {trigger} does not fire BEFORE INSERT: "
                            f"{excerpt(definition['start'], definition['bytes'])}")
        elif check_definitions and not row[key_flag]:
            key = key_flag.removeprefix("mentions_")
            problems.append(f"{row['function_name']}() behind {trigger} never sets {key}")
    return problems
