"""A pytest plugin for `bench/scale.py`: what each check cost the database server.

Around each check it resets pg_stat_statements and then sums, over the statements run by the
checker's logins (and any role they can SET ROLE to, as the RLS checks do), the shared buffers
hit and read, the execution time and the calls. The sandbox's own traffic runs as other roles
and is left out. One JSON line per check goes to BENCH_STATEMENTS_OUT.

Enabled with `-p bench.statements`; BENCH_STATEMENTS_DSN is a superuser connection to a database
holding the pg_stat_statements extension, BENCH_CHECKER_ROLES the checker's logins.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from typing import Any

import psycopg
import pytest

from fixtures.run import check_id_of

COST = """
select coalesce(sum(shared_blks_hit + shared_blks_read), 0)::bigint as blocks,
       coalesce(sum(shared_blks_read), 0)::bigint as blocks_read,
       coalesce(sum(total_exec_time), 0)::float8 as server_ms,
       coalesce(sum(calls), 0)::bigint as statements
from pg_stat_statements
where userid in (select r.oid from pg_roles r
                 where exists (select 1 from unnest(%(logins)s::text[]) as login(name)
                               where pg_has_role(login.name, r.oid, 'MEMBER')))
"""


class StatementCost:
    def __init__(self, dsn: str, logins: list[str], out: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.logins = logins
        self.out = open(out, "a")  # noqa: SIM115 - open for the whole session, closed at its end

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, Any]:
        self.conn.execute("select pg_stat_statements_reset()")
        result = yield
        row = self.conn.execute(COST, {"logins": self.logins}).fetchone()
        assert row is not None
        check = check_id_of(item)
        self.out.write(json.dumps({
            "nodeid": item.nodeid, "item": check.item, "runbook": check.runbook,
            "system": check.system, "markers": sorted({m.name for m in item.iter_markers()}),
            "blocks": row[0], "blocks_read": row[1], "server_ms": round(row[2], 3),
            "statements": row[3]}) + "\n")
        self.out.flush()
        return result

    def pytest_unconfigure(self) -> None:
        self.out.close()
        self.conn.close()


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(StatementCost(
        os.environ["BENCH_STATEMENTS_DSN"], os.environ["BENCH_CHECKER_ROLES"].split(","),
        os.environ["BENCH_STATEMENTS_OUT"]), "bench-statement-cost")
