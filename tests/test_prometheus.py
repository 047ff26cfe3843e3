"""fixtures/prometheus.py: PromQL through the suite's HTTP discipline against the session
sandbox's real Prometheus, and the /metrics fallback parsed with prometheus-client's parser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fixtures.errors import HttpUnavailable
from fixtures.evidence import Evidence
from fixtures.http import Api, make_client
from fixtures.prometheus import Prometheus, Scrape, Target, rise, scrape, scrape_unhealthy
from fixtures.settings import Budget
from tests.sandbox_handle import Sandbox

WORKER = 'job="trendspark-worker"'


@pytest.fixture
def evidence() -> Evidence:
    return Evidence("tests/test_prometheus.py")


def api_on(url: str, evidence: Evidence) -> Iterator[Api]:
    budget = Budget()
    client = make_client(url, budget)
    try:
        yield Api(client, evidence, budget, None)
    finally:
        client.close()


@pytest.fixture
def prometheus(sandbox: Sandbox, evidence: Evidence) -> Iterator[Prometheus]:
    url = sandbox.env["TRENDSPARK_PROMETHEUS_URL"]
    for api in api_on(url, evidence):
        yield Prometheus(api, evidence, url)


@pytest.mark.sandbox
def test_a_query_is_evidence_with_its_time_and_series(prometheus: Prometheus,
                                                      evidence: Evidence) -> None:
    answer = prometheus.query(f"sum by (source) (trendspark_ingest_items_total{{{WORKER}}})"
                              " or sum by (source) (increase(trendspark_ingest_items_total[1h]))")
    assert answer.series and answer.evaluated_at > 0
    note = next(e["text"] for e in evidence.entries if e["kind"] == "note")
    assert note.startswith("PromQL: sum by (source)") and f"evaluated at {answer.when()}" in note
    assert '{source="x"}' in note
    assert [e["method"] for e in evidence.entries if e["kind"] == "http"] == ["GET"]


@pytest.mark.sandbox
def test_increase_counts_a_series_new_in_the_window_from_zero(prometheus: Prometheus) -> None:
    # `up` of each target: a series new in the hour (Prometheus is rebuilt at every start)
    # counts its value, 1; an older one its increase, 0. Either way each job is there.
    moved = prometheus.increase("up", "1h", ("job",))
    assert {dict(k)["job"] for k in moved} == {"trendspark-backend", "trendspark-worker"}
    assert set(moved.values()) <= {0.0, 1.0}
    items = prometheus.increase(f"trendspark_ingest_items_total{{{WORKER}}}", "60m", ("source",))
    assert {dict(k)["source"] for k, v in items.items() if v > 0} == {"x", "reddit"}


@pytest.mark.sandbox
def test_targets_and_flags(prometheus: Prometheus) -> None:
    targets = prometheus.targets()
    assert {t.job for t in targets} == {"trendspark-backend", "trendspark-worker"}
    assert scrape_unhealthy(targets, ("trendspark-worker", "nosuch"))[0].health == "absent"
    assert prometheus.flags()["storage.tsdb.retention.time"] == "30d"


@pytest.mark.sandbox
def test_a_bad_query_is_unknown_not_a_finding(prometheus: Prometheus) -> None:
    with pytest.raises(HttpUnavailable, match="could not answer 'sum by \\(': "
                                              "/api/v1/query -> 400"):
        prometheus.query("sum by (")


@pytest.mark.sandbox
def test_the_fallback_scrapes_with_the_token_and_parses(sandbox: Sandbox, evidence: Evidence) -> None:
    env = sandbox.env
    for api in api_on(env["TRENDSPARK_WORKER_URL"], evidence):
        first = scrape(api, evidence, env["TRENDSPARK_API_TOKEN"])
        with pytest.raises(HttpUnavailable, match="answered 401"):
            scrape(api, evidence, "not-a-token")
    assert first.total("process_start_time_seconds")
    assert "trendspark_ingest_cycles_total" in first.samples


def test_rise_counts_new_series_and_restarts_from_zero() -> None:
    x, reddit = (("source", "x"),), (("source", "reddit"),)
    first = Scrape(0.0, {"c_total": {x: 10.0, reddit: 5.0}})
    second = Scrape(10.0, {"c_total": {x: 12.0, reddit: 2.0, (("source", "new"),): 3.0}})
    assert rise(first, second, "c_total", ("source",)) == {x: 2.0, reddit: 2.0,
                                                            (("source", "new"),): 3.0}


def test_an_absent_target_is_named() -> None:
    up = Target("a", "h:1", "up", "", "now")
    down = Target("b", "h:2", "down", "server returned HTTP status 401 Unauthorized", "now")
    found = scrape_unhealthy([up, down], ("a", "b", "c"))
    assert [t.job for t in found] == ["c", "b"]
    assert found[1].describe() == ("b (h:2) down, last scrape now: "
                                   "server returned HTTP status 401 Unauthorized")
