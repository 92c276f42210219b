"""``make loadtest``'s arithmetic and rules (tools/loadtest.py), without a server: the run
itself takes minutes (``make loadtest LOADTEST_SECONDS=30`` for a quick one)."""

from __future__ import annotations

import json

from tools.loadtest import (
    LoadFigures,
    LoadReport,
    OverloadFigures,
    percentile,
    read_locust_json,
)


def test_figures_come_from_locusts_json_totals_and_histogram(tmp_path):
    stats = [
        {
            "name": "/analyze",
            "num_requests": 100,
            "num_failures": 0,
            "start_time": 10.0,
            "last_request_timestamp": 60.0,
            "max_response_time": 2950.0,
            "response_times": {"1000": 50, "2000": 45, "3000": 5},
        },
        {
            "name": "/analyze",
            "num_requests": 0,
            "num_failures": 0,
            "start_time": 0.0,
            "last_request_timestamp": None,
            "max_response_time": None,
            "response_times": {},
        },
    ]
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    figures = read_locust_json(tmp_path / "stats.json")
    assert (figures.requests, figures.failures, figures.seconds, figures.rps) == (100, 0, 50.0, 2.0)
    assert (figures.p50_ms, figures.p95_ms, figures.p99_ms) == (
        1000.0,
        2000.0,
        2950.0,
    )  # capped at the max
    assert percentile({}, 0.5) is None


def _report(**changes) -> LoadReport:
    values = dict(
        articles="a",
        users=32,
        seconds=300,
        warmup=60,
        locust_exit=0,
        rss_warm_mib=1000.0,
        rss_end_mib=1050.0,
        rss_peak_mib=1100.0,
        ready_after=200,
        alive_after=True,
        load=LoadFigures(requests=1000, rps=5.0),
        overload=OverloadFigures(sent=160, statuses={"200": 64, "503": 96}),
    )
    return LoadReport(**{**values, **changes})


def test_the_rules():
    assert _report().problems() == []
    assert "grew 15.0%" in _report(rss_end_mib=1150.0).problems()[0]
    assert (
        "failed request"
        in _report(load=LoadFigures(requests=10, failures=1), locust_exit=1).problems()[0]
    )
    shed_nothing = OverloadFigures(sent=160, statuses={"200": 160})
    assert "not shed" in _report(overload=shed_nothing).problems()[0]
    dropped = OverloadFigures(sent=160, statuses={"200": 64, "503": 90, "ReadError": 6})
    assert "ReadError" in _report(overload=dropped).problems()[0]
    timed_out = OverloadFigures(sent=160, statuses={"200": 50, "503": 96, "504": 14})
    assert _report(overload=timed_out).problems() == []
    no_retry = OverloadFigures(
        sent=160, statuses={"200": 64, "503": 96}, shed_without_retry_after=3
    )
    assert "without Retry-After" in _report(overload=no_retry).problems()[0]
    assert "readyz" in _report(ready_after=None, alive_after=False).problems()[0]
