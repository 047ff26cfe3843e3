"""RevenueOS facts runbook 003's checks share: which column set `external_events_raw` has, the
per-provider freshness windows, and judging a share that must stay high.

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
from fixtures.evidence import Evidence
from fixtures.verdicts import CheckFailed

RAW = "external_events_raw"


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
    """A query naming `{event_id}` and `{error}` of `external_events_raw r`."""
    return sql.SQL(query).format(event_id=columns.event_id, error=columns.error)


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
