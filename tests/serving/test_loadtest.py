"""``make loadtest``'s and ``make soak``'s arithmetic and rules (tools/loadtest.py,
tools/soak.py), without a server: the runs themselves take minutes."""

from __future__ import annotations

import json

from tools.loadtest import (
    SHED,
    Level,
    LoadFigures,
    LoadReport,
    OverloadFigures,
    percentile,
    read_locust_json,
)
from tools.soak import SoakReport, per_minute


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
        {
            "name": SHED,
            "num_requests": 40,
            "num_failures": 0,
            "start_time": 20.0,
            "last_request_timestamp": 60.0,
            "max_response_time": 9.0,
            "response_times": {"4": 30, "9": 10},
        },
    ]
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    figures = read_locust_json(tmp_path / "stats.json", "/analyze")
    shed = read_locust_json(tmp_path / "stats.json", SHED)
    assert (shed.requests, shed.p50_ms, shed.p99_ms) == (40, 4.0, 9.0)
    assert (figures.requests, figures.failures, figures.seconds, figures.rps) == (100, 0, 50.0, 2.0)
    assert (figures.p50_ms, figures.p95_ms, figures.p99_ms) == (
        1000.0,
        2000.0,
        2950.0,
    )  # capped at the max
    assert percentile({}, 0.5) is None


def _level(users: int, rps: float = 5.0, p95: float = 2000.0, **changes) -> Level:
    values = dict(
        users=users,
        admitted=LoadFigures(requests=300, rps=rps, p95_ms=p95),
        shed=LoadFigures(requests=10, p99_ms=20.0),
        locust_exit=0,
    )
    return Level(**{**values, **changes})


def _report(**changes) -> LoadReport:
    values = dict(
        articles="a",
        seconds=60,
        warmup=12,
        levels=[_level(8), _level(32), _level(64, rps=4.6)],
        lone_before_ms=100.0,
        lone_after_ms=140.0,
        rss_warm_mib=1000.0,
        rss_end_mib=1050.0,
        rss_peak_mib=1100.0,
        ready_after=200,
        alive_after=True,
        overload=OverloadFigures(sent=160, statuses={"200": 64, "503": 96}),
    )
    return LoadReport(**{**values, **changes})


def test_the_rules():
    assert _report().problems() == []
    assert _report(rss_end_mib=1500.0).problems() == []  # reported; make soak judges memory
    failed = _level(32, admitted=LoadFigures(requests=10, failures=1), locust_exit=1)
    assert "failed request(s) at 32 callers" in _report(levels=[failed]).problems()[0]
    slow = _report(levels=[_level(8), _level(64, p95=2600.0)])
    assert slow.problems() == ["admitted p95 2600 ms at 64 callers (at most 2500)"]
    slow_shed = _level(64, shed=LoadFigures(requests=5, p99_ms=150.0))
    assert "shed p99 150 ms" in _report(levels=[_level(8), slow_shed]).problems()[0]
    collapsed = _report(levels=[_level(8, rps=10.0), _level(64, rps=8.9)])
    assert "below 90% of 10.0 at 8 (mean of 1 run(s))" in collapsed.problems()[0]
    # The quietest level's second run (at the end) counts: the busiest is judged against the
    # mean, so the server's ageing is not charged to it alone.
    aged = [_level(8, rps=10.0), _level(64, rps=8.9), _level(8, rps=9.6)]
    assert _report(levels=aged).problems() == []
    aged[1] = _level(64, rps=8.5)
    assert "below 90% of 9.8 at 8 (mean of 2 run(s))" in _report(levels=aged).problems()[0]
    assert "lone request took 151 ms" in _report(lone_after_ms=151.0).problems()[0]
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
    assert "| 64 | 300 | 0 | 4.6 |" in _report().text()


def test_the_soak_takes_the_last_sample_of_each_minute_and_measures_from_the_warm_up():
    samples = [(t, (1000 + t) * (1 << 20)) for t in range(0, 185, 5)]  # +1 MiB a second
    assert per_minute(samples, 3) == [1060.0, 1120.0, 1180.0]
    report = SoakReport(10.0, 7.0, 3, 1, {"200": 900, "503": 3}, [1000.0, 1050.0, 1080.0])
    assert report.growth == 1080 / 1000 - 1 and report.problems() == []  # from minute 1's end
    grown = SoakReport(10.0, 7.0, 3, 1, {"200": 900}, [1000.0, 1000.0, 1150.0])
    assert "grew 15.0%" in grown.problems()[0]
    refused = SoakReport(10.0, 7.0, 3, 1, {"503": 900, "200": 1}, [1000.0, 1000.0, 1000.0])
    assert "too few requests answered 200" in refused.problems()[0]
    assert "ended before its warm-up" in SoakReport(10.0, 7.0, 3, 1, {}, [1000.0]).problems()[0]


def test_the_verdict_writes_the_figures_and_fails_on_a_broken_rule(tmp_path, capsys):
    from tools.loadtest import verdict

    assert verdict("loadtest", _report(), tmp_path / "ok.json", memory_growth=0.05) == 0
    broken = _report(ready_after=None, alive_after=False)
    assert verdict("loadtest", broken, tmp_path / "r" / "bad.json") == 1
    written = json.loads((tmp_path / "r" / "bad.json").read_text(encoding="utf-8"))
    assert written["problems"] == broken.problems() and written["levels"][0]["users"] == 8
    assert "FAIL afterwards" in capsys.readouterr().out


def test_the_large_request_rules():
    from tools.large_request import LargeFigures, Sent, large_articles

    def large(**changes) -> LargeFigures:
        values = dict(
            chars=100_000,
            claims=16,
            largest=Sent(64, "413", 0.4),
            tried=[Sent(64, "413", 0.3), Sent(16, "413", 0.1), Sent(4, "200", 20.0)],
            beside_p95_ms=1200.0,
            beside_requests=300,
            idle_after_s=0.8,
        )
        return LargeFigures(**{**values, **changes})

    assert large().problems(2500) == [] and large().admitted == Sent(4, "200", 20.0)
    assert _report(large=large()).problems() == []
    assert "not at once" in large(largest=Sent(64, "503", 59.0)).problems(2500)[0]
    assert "got 504" in large(largest=Sent(64, "504", 61.0)).problems(2500)[0]
    timed_out = large(tried=[Sent(64, "413", 0.3), Sent(16, "504", 60.0)])
    assert "16 articles got 504" in timed_out.problems(2500)[0]
    refused = large(tried=[Sent(n, "413", 0.1) for n in (64, 16, 4, 1)])
    assert "lower the limits" in refused.problems(2500)[0]
    assert "p95 was 2600 ms" in large(beside_p95_ms=2600.0).problems(2500)[0]
    assert "idle never later" in large(idle_after_s=None).problems(2500)[0]
    assert "idle 2.5 s later" in large(idle_after_s=2.5).problems(2500)[0]
    assert "4 articles -> 200 in 20.0 s" in large().text()
    # The large articles: the given texts end to end, cut to the limit, the titles as claims.
    given = [{"text": "نص " * 10, "title": f"عنوان {i}"} for i in range(3)]
    [article] = large_articles(given, 1, chars=100, claims=5)
    assert len(article["text"]) == 100 and article["claims"][:3] == [
        "عنوان 0",
        "عنوان 1",
        "عنوان 2",
    ]
    assert len(article["claims"]) == 5
