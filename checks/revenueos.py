"""RevenueOS facts runbook 003's checks share: which column set `external_events_raw` has, how
much of the tables without a time index the checks read, the per-provider freshness windows, and
judging a share that must stay high.

`external_events_raw` exists in two shapes. A replay of the migrations gives saas_core's
(`payload_json`, `external_event_id`, `error_text`); the data truth layer's migration meant
`payload`, `idempotency_key`, `error_message`, and the code writes both. The checks read the
table's columns from the catalog and say which set they found; production may hold both, and
then each value is read from whichever column has it.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from fixtures.contract import Catalog
from fixtures.errors import NotEvaluated, SchemaMismatch
from fixtures.evidence import TEXT_CHARS, Evidence
from fixtures.postgres import ReadOnlyDB
from fixtures.verdicts import CheckFailed

RAW = "external_events_raw"

# Upstream indexes none of the columns the checks' windows are on: external_events_raw's
# received_at and status, external_events' received_at, jobs_queue's created_at (its poll index
# covers only queued and running jobs). A window over such a table is a scan of all of it, which
# grows with every day of history. These tables are appended to in arrival order, so their
# newest rows mostly lie in their last pages. A table of up to WHOLE_UP_TO x TAIL_PAGES is read
# whole (the sandbox's at its default volume, a young deployment's: exact); a larger one only its
# last TAIL_PAGES (a TID range scan): no table is read for more than about twice its pages at the
# sandbox's default volume. At production's pace (bench/volume/revenueos.py) those pages hold
# about 1.7 days of raw events, 3.2 days of legacy events, 2.1 days of jobs and 22 days of
# dunning messages (RO-9 pairs a send with another of the last 7 days, so its budget covers
# three times that). Each check notes how far back its pages reached; the README names the
# indexes that would make them exact. A row PostgreSQL stored in an older page's free space
# (after a delete, or space VACUUM reclaimed from updated rows) is not seen: that is the
# approximation's price.
TAIL_PAGES = {RAW: 1536, "external_events": 2048, "jobs_queue": 1536, "dunning_logs": 256}
WHOLE_UP_TO = 1.5
TIME_COLUMN = {RAW: "received_at", "external_events": "received_at", "jobs_queue": "created_at",
               "dunning_logs": "sent_at"}
# RO-4's windows are hours: it reads the last RECENT_PAGES pages (about 14 hours at production's
# pace) and reads back as far as the others only when those leave a provider silent or an
# integration not healthy, so a healthy run stays cheap.
RECENT_PAGES = 512


def _first_page(table: str, pages: int | None) -> str:
    """SQL for the first page read of the table: of its last `pages`, when given; else 0 (all of
    it) up to WHOLE_UP_TO x TAIL_PAGES, and where its last TAIL_PAGES start beyond."""
    size = f"(pg_relation_size('public.{table}') / current_setting('block_size')::int)"
    if pages is not None:
        return f"greatest({size} - {pages}, 0)"
    last = TAIL_PAGES[table]
    return f"(case when {size} <= {int(WHOLE_UP_TO * last)} then 0 else {size} - {last} end)"


def tail(table: str, pages: int | None = None) -> str:
    """SQL for the row id where the pages a check reads of the table start (see _first_page):
    `ctid >= tail(...)` reads only them, whatever the table's size."""
    return f"(select ('(' || {_first_page(table, pages)} || ',0)')::tid)"


# The table's size, where the pages read start, and the oldest row on the first of them: how
# far back the check reached.
REACH = """
select pg_relation_size('public.{table}') / current_setting('block_size')::int as pages,
       {first} as first_page,
       (select min(t.{column}) from public.{table} t
        where t.ctid >= (select ('(' || {first} || ',0)')::tid)
          and t.ctid < (select ('(' || ({first}) + 1 || ',0)')::tid)) as since
"""


def note_reach(db: ReadOnlyDB, evidence: Evidence, table: str, pages: int | None = None,
               index: str | None = None) -> None:
    """Say how much of the table the check read (as `tail` bounds it), when it read less than all
    of it, and which index would make the check exact (`index`, its columns; by default the
    table's time column)."""
    column = TIME_COLUMN[table]
    found = db.one(REACH.format(table=table, column=column, first=_first_page(table, pages)))
    if found["first_page"] == 0:
        return
    index = index or column
    since = f"rows since {found['since']:%Y-%m-%d %H:%M} UTC" if found["since"] else "its newest rows"
    evidence.note(f"{table} has no index on ({index}) upstream: read its last "
                  f"{found['pages'] - found['first_page']} of {found['pages']} pages ({since}), "
                  f"where new rows land; an index on {table} ({index}) would make this exact")


@dataclass(frozen=True)
class ColumnSet:
    name: str
    event_id: str
    payload: str
    error: str

    def columns(self) -> tuple[str, ...]:
        return (self.event_id, self.payload, self.error)


REPLAY = ColumnSet("the migrations' replay set", "external_event_id", "payload_json", "error_text")
DATA_TRUTH = ColumnSet("the data truth layer's set", "idempotency_key", "payload", "error_message")


@dataclass(frozen=True)
class RawColumns:
    """How the checks name external_events_raw's event id and error text (alias `r`)."""

    found: tuple[ColumnSet, ...]

    @property
    def event_id(self) -> sql.Composable:
        return self._coalesce("event_id")

    @property
    def error(self) -> sql.Composable:
        return self._coalesce("error")

    def describe(self) -> str:
        return " and ".join(f"{s.name} ({', '.join(s.columns())})" for s in self.found)

    def _coalesce(self, field: str) -> sql.Composable:
        parts = [sql.SQL("r.{}").format(sql.Identifier(getattr(s, field))) for s in self.found]
        if len(parts) == 1:
            return parts[0]
        return sql.SQL("coalesce({})").format(sql.SQL(", ").join(parts))


def raw_columns(catalog: Catalog, evidence: Evidence) -> RawColumns:
    """The column sets the table has (all their columns present), recorded as evidence; a
    SchemaMismatch naming what is missing when it has neither."""
    found = tuple(s for s in (REPLAY, DATA_TRUTH)
                  if not catalog.missing(f"{RAW}.{c}" for c in s.columns()))
    if not found:
        missing = [f"{s.name}: {', '.join(catalog.missing(f'{RAW}.{c}' for c in s.columns()))}"
                   for s in (REPLAY, DATA_TRUTH)]
        raise SchemaMismatch(f"{RAW} has neither column set the code writes (missing from "
                             f"{'; '.join(missing)})")
    columns = RawColumns(found)
    evidence.note(f"{RAW} has {columns.describe()}")
    return columns


def with_raw(query: str, columns: RawColumns) -> sql.Composed:
    """A query naming `{event_id}` and `{error}` of `external_events_raw r`, `{text_chars}`,
    the most of any text it selects (TEXT_CHARS), and `{raw_tail}` / `{recent_tail}`, where the
    table's last TAIL_PAGES / RECENT_PAGES pages start."""
    return sql.SQL(query).format(event_id=columns.event_id, error=columns.error,
                                 text_chars=sql.Literal(TEXT_CHARS), raw_tail=sql.SQL(tail(RAW)),
                                 recent_tail=sql.SQL(tail(RAW, RECENT_PAGES)))


def last_pages(query: str, pages: int | None = None) -> sql.Composed:
    """The query with `{raw_tail}` and `{legacy_tail}` where external_events_raw's and
    external_events' last `pages` pages start (each table's TAIL_PAGES by default)."""
    return sql.SQL(query).format(raw_tail=sql.SQL(tail(RAW, pages)),
                                 legacy_tail=sql.SQL(tail("external_events", pages)))


def provider_windows(value: str | None, default: float, variable: str) -> dict[str, float]:
    """`belvo=180,asaas=90` -> {provider: minutes}; other providers get the default."""
    windows: dict[str, float] = {}
    for entry in (value or "").split(","):
        if not entry.strip():
            continue
        provider, _, minutes = entry.partition("=")
        try:
            windows[provider.strip()] = float(minutes)
        except ValueError:
            raise NotEvaluated(f"{variable}: cannot read {entry.strip()!r} (expected "
                               "provider=minutes, comma-separated)") from None
    return {"*": default, **windows}


def at_least_share(
    evidence: Evidence, observed: float, what: str, *, warn: float, fail: float, source: str
) -> None:
    """A percentage that must stay high: FAIL under `fail`, WARN under `warn`."""
    __tracebackhide__ = True
    evidence.value(what, observed, expected=f"at least {warn:g} % (warning), at least {fail:g} % "
                   "(critical)", source=source, unit=" %")
    if observed < fail:
        raise CheckFailed(f"{what}: {observed:g} %, under the critical {fail:g} % ({source})")
    if observed < warn:
        evidence.warn(f"{what}: {observed:g} %, under the warning {warn:g} % ({source})")
