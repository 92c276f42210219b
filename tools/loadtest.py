"""``make loadtest``: the service under sustained load, as a newsroom would run it.

It starts ``akhbar serve`` on a free port of 127.0.0.1 with the models the service would use
(``AKHBAR_<TASK>_MODEL``, the promoted or the shipped ones) and its own settings, then:

1. **Lone request, before**: one article sent alone :data:`LONE_REPEATS` times (median).
2. **Load levels**: for each of ``--users`` (8, 32 and 64 callers), locust
   (:mod:`tools.locustfile`), in a process of its own, runs that many users for ``--seconds``
   (60), each posting real-length articles to ``POST /analyze`` back to back. A 503 with
   ``Retry-After`` is shedding doing its job: counted apart (its own latencies), not as a
   failure. The server's resident memory (``akhbar serve``, BentoML's process manager and its
   workers together) is sampled every second over all levels. With several levels the
   quietest runs once more at the end: a server slows a little as it ages (8 / 64 / 8 / 64
   callers on one server gave 15.2 / 14.3 / 14.2 / 13.6 requests/s), which a fixed order
   would charge to the busier levels, so the busiest is judged against the quietest's mean
   before and after.
3. **Overload**: twice ``AKHBAR_MAX_QUEUE`` plus ``--overload-extra`` (32) requests at once,
   more than the service holds: each must be answered: 200, 503 (or 429) with ``Retry-After``
   for those beyond the queue (at least one must be), or 504 with ``Retry-After`` for those
   admitted but not scored within ``AKHBAR_REQUEST_TIMEOUT``; never a dropped connection.
4. **Large requests** (:mod:`tools.large_request`): the largest legal request beside 8
   callers, answered 200 or refused at once; the largest size admitted, completed; and a
   client who leaves mid-request, after which the server must be idle within 2 s.
5. **Lone request, after**, and ``/readyz`` must answer 200 with the server still running.

It reports, per level, the admitted requests (requests/s, p50/p95/p99) and the shed ones
(count, p99), memory after the warm-up (``--warmup`` seconds, default a fifth of the first
level up to 60 s) and at the end, the overload answers, the large requests and the lone
request before and after. Memory is reported, not judged: the levels raise the load, so it
is no steady state (``make soak`` is the memory rule). It exits 1 when a rule is broken
(:meth:`LoadReport.problems`): a failed request (anything but 200, or 503 with
``Retry-After``); admitted p95 above :data:`MAX_ADMITTED_P95_MS`; shed p99 above
:data:`MAX_SHED_P99_MS`; the busiest level's throughput below :data:`MIN_THROUGHPUT_RATIO` of
the quietest's (the mean of its two runs); the lone request after the load slower than
:data:`MAX_LONE_RATIO` times before; an overload answer other than those above; a large
request's rule; a server down or not ready afterwards.

Articles: the topic test split of ``$AKHBAR_DATA`` (real articles, each with its title as a
claim) when it is there, else project-written articles of 1,500-4,000 characters.

    python -m tools.loadtest [--seconds 60] [--users 8,32,64] [--report PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from akhbar.serving.http.settings import ServiceSettings
from tools.large_request import LargeFigures, run_large
from tools.localserver import bearer

TOPIC_TEST = "topic/ant_v2.1_multisource"
MAX_ADMITTED_P95_MS = 2500.0
MAX_SHED_P99_MS = 100.0
MIN_THROUGHPUT_RATIO = 0.90  # the busiest level's admitted requests/s against the quietest's
MAX_LONE_RATIO = 1.5  # a lone request after the load against before it
LONE_REPEATS = 10
ADMITTED = "/analyze"
SHED = "/analyze shed"  # locust's name for requests refused with 503 + Retry-After
SHED_STATUSES = (429, 503)
TIMED_OUT = (
    504  # admitted, but not scored within AKHBAR_REQUEST_TIMEOUT: answered, with Retry-After
)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def load_articles(limit: int, max_chars: int) -> tuple[list[dict[str, Any]], str]:
    """Up to ``limit`` articles to post, and where they came from."""
    try:
        from akhbar.models.reader import DataError, dataset_path, read_records

        articles = []
        for record in read_records(dataset_path(TOPIC_TEST), "topic", split="test"):
            if len(articles) >= limit:
                break
            text, title = record["text"][:max_chars], record.get("title")
            articles.append(
                {
                    "id": str(record.get("id") or record["_line"]),
                    "title": title,
                    "text": text,
                    "claims": [title] if title and title.strip() else [],
                }
            )
        if articles:
            return articles, f"{len(articles)} articles of the topic test split ($AKHBAR_DATA)"
    except (DataError, OSError, ValueError):
        pass
    return _written_articles(
        limit, max_chars
    ), f"{limit} project-written articles (no $AKHBAR_DATA)"


def _written_articles(limit: int, max_chars: int) -> list[dict[str, Any]]:
    from akhbar.serving.core.articles import SAMPLE_ARTICLE

    paragraph = SAMPLE_ARTICLE["text"].split("\n")[0]
    out = []
    for i in range(limit):
        size = 1500 + (i * 997) % 2500  # 1,500-4,000 characters
        text = (" ".join([paragraph] * (size // len(paragraph) + 1)))[: min(size, max_chars)]
        out.append(
            {
                "id": f"load-{i}",
                "title": SAMPLE_ARTICLE["title"],
                "text": text,
                "claims": SAMPLE_ARTICLE["claims"][: 1 + i % 2],
            }
        )
    return out


# ---------------------------------------------------------------------------------------
# Figures


@dataclass
class LoadFigures:
    requests: int = 0
    failures: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    failure_kinds: dict[str, int] = field(default_factory=dict)


def percentile(histogram: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile (0-1) of locust's response-time histogram (ms -> count)."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= rank:
            return float(ms)
    return float(max(histogram))


def read_locust_json(path: Path, name: str) -> LoadFigures:
    """Totals and percentiles of the requests called ``name`` in locust's ``--json-file`` (its
    CSV's last row undercounts)."""
    entries = [e for e in json.loads(path.read_text(encoding="utf-8")) if e["name"] == name]
    figures = LoadFigures()
    histogram: dict[int, int] = {}
    starts, ends = [], []
    for entry in entries:
        figures.requests += entry["num_requests"]
        figures.failures += entry["num_failures"]
        for ms, count in entry.get("response_times", {}).items():
            histogram[int(float(ms))] = histogram.get(int(float(ms)), 0) + count
        if entry["num_requests"]:
            starts.append(entry["start_time"])
            ends.append(entry["last_request_timestamp"])
        if entry.get("max_response_time") is not None:
            figures.max_ms = max(figures.max_ms or 0.0, float(entry["max_response_time"]))
    if starts:
        figures.seconds = max(ends) - min(starts)
        figures.rps = figures.requests / figures.seconds if figures.seconds > 0 else 0.0
    # Locust rounds times above 100 ms to two significant digits: no percentile above the max.
    figures.p50_ms, figures.p95_ms, figures.p99_ms = (
        min(p, figures.max_ms) if p is not None and figures.max_ms is not None else p
        for p in (percentile(histogram, q) for q in (0.50, 0.95, 0.99))
    )
    return figures


class MemorySampler(threading.Thread):
    """Samples the server's resident memory every ``every`` seconds until stopped."""

    def __init__(self, server, every: float = 1.0):
        super().__init__(daemon=True)
        self.server, self.every = server, every
        self.samples: list[tuple[float, int]] = []
        self.started = time.monotonic()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((time.monotonic() - self.started, self.server.rss_bytes()))
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def at(self, seconds: float) -> int | None:
        """The first sample at or after ``seconds``."""
        return next((rss for t, rss in self.samples if t >= seconds), None)


# ---------------------------------------------------------------------------------------
# Phases


@dataclass
class Level:
    """One load level: its callers, what was admitted and what was shed."""

    users: int
    admitted: LoadFigures
    shed: LoadFigures
    locust_exit: int
    generator_cores: float = 0.0  # locust's CPU over the level, in cores: it shares the machine


def run_load(
    server,
    articles_file: Path,
    out: Path,
    users: int,
    seconds: int,
    spawn_rate: int,
    env: dict[str, str],
    stop: threading.Event | None = None,
) -> tuple[Level, str]:
    """locust against ``server`` for ``seconds``, or until ``stop`` is set (locust then stops
    on SIGTERM, writing its figures); the level's figures and locust's output tail."""
    out.mkdir(parents=True, exist_ok=True)
    locustfile = Path(__file__).with_name("locustfile.py")
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--host",
        server.url,
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "-t",
        f"{seconds}s",
        "--stop-timeout",
        "30",
        "--json-file",
        str(out / "stats"),
        "--csv",
        str(out / "run"),
        "--exit-code-on-error",
        "1",
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    locust_env = {**env, "AKHBAR_LOADTEST_ARTICLES": str(articles_file)}
    with open(out / "locust.log", "wb") as log:
        before, started = _children_cpu(), time.monotonic()
        proc = subprocess.Popen(command, env=locust_env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + seconds + 180  # the run, the stop timeout, start-up
        while proc.poll() is None and time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                proc.send_signal(signal.SIGTERM)  # locust writes its figures and exits
                deadline, stop = min(deadline, time.monotonic() + 60), None
            time.sleep(0.5)
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        generator_cores = (_children_cpu() - before) / max(time.monotonic() - started, 1e-9)
    tail = (out / "locust.log").read_text(encoding="utf-8", errors="replace")[-3000:]
    stats = out / "stats.json"
    if not stats.exists():
        return Level(users, LoadFigures(), LoadFigures(), code), tail
    admitted, shed = read_locust_json(stats, ADMITTED), read_locust_json(stats, SHED)
    failures = out / "run_failures.csv"
    if failures.exists():
        import csv

        with failures.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                admitted.failure_kinds[row.get("Error", "?")[:120]] = int(
                    row.get("Occurrences", 0) or 0
                )
    return Level(users, admitted, shed, code, round(generator_cores, 2)), tail


def _children_cpu() -> float:
    """CPU seconds of this process's children that have ended (a level's locust, once
    waited for; the server is still running)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def lone_request_ms(url: str, article: dict[str, Any], token: str | None) -> float:
    """The median latency of one article sent alone :data:`LONE_REPEATS` times (after one
    unmeasured call)."""
    import statistics

    headers = bearer(token)
    times = []
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        for i in range(LONE_REPEATS + 1):
            started = time.perf_counter()
            client.post("/analyze", json={"articles": [article]}).raise_for_status()
            if i:
                times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


@dataclass
class OverloadFigures:
    sent: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    shed_without_retry_after: int = 0
    seconds: float = 0.0


def run_overload(
    url: str, articles: list[dict[str, Any]], count: int, timeout: float, token: str | None
) -> OverloadFigures:
    """``count`` requests at once, each on its own connection; what came back."""
    import asyncio

    headers = bearer(token)
    figures = OverloadFigures(sent=count)

    async def one(client: httpx.AsyncClient, i: int) -> None:
        try:
            response = await client.post(
                "/analyze", json={"articles": [articles[i % len(articles)]]}
            )
            key = str(response.status_code)
            figures.shed_without_retry_after += response.status_code in (
                *SHED_STATUSES,
                TIMED_OUT,
            ) and not response.headers.get("retry-after")
        except httpx.HTTPError as exc:
            key = type(exc).__name__
        figures.statuses[key] = figures.statuses.get(key, 0) + 1

    async def burst() -> None:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=url, headers=headers, timeout=timeout, limits=limits
        ) as client:
            await asyncio.gather(*(one(client, i) for i in range(count)))

    started = time.monotonic()
    asyncio.run(burst())
    figures.seconds = time.monotonic() - started
    return figures


@dataclass
class LoadReport:
    articles: str
    seconds: int
    warmup: int
    levels: list[Level]
    lone_before_ms: float | None
    lone_after_ms: float | None
    rss_warm_mib: float | None
    rss_end_mib: float | None
    rss_peak_mib: float | None
    overload: OverloadFigures
    ready_after: int | None
    alive_after: bool
    large: LargeFigures | None = None
    rss_every_10s_mib: list[int] = field(default_factory=list)

    @property
    def memory_growth(self) -> float | None:
        if not self.rss_warm_mib or self.rss_end_mib is None:
            return None
        return self.rss_end_mib / self.rss_warm_mib - 1

    def problems(self) -> list[str]:
        out = []
        for level in self.levels:
            load, at = level.admitted, f"at {level.users} callers"
            if load.requests == 0:
                out.append(f"no request was admitted {at}")
            if load.failures or level.locust_exit != 0:
                out.append(
                    f"{load.failures} failed request(s) {at} (locust exit {level.locust_exit}): "
                    f"{load.failure_kinds}"
                )
            if load.p95_ms is not None and load.p95_ms > MAX_ADMITTED_P95_MS:
                out.append(
                    f"admitted p95 {load.p95_ms:.0f} ms {at} (at most {MAX_ADMITTED_P95_MS:.0f})"
                )
            if level.shed.p99_ms is not None and level.shed.p99_ms > MAX_SHED_P99_MS:
                out.append(
                    f"shed p99 {level.shed.p99_ms:.0f} ms {at} (under {MAX_SHED_P99_MS:.0f})"
                )
        if len({v.users for v in self.levels}) > 1:
            fewest = min(v.users for v in self.levels)
            quiet = [v.admitted.rps for v in self.levels if v.users == fewest]
            quiet_rps = sum(quiet) / len(quiet)
            busy = max(self.levels, key=lambda v: v.users)
            if quiet_rps and busy.admitted.rps < MIN_THROUGHPUT_RATIO * quiet_rps:
                out.append(
                    f"throughput at {busy.users} callers {busy.admitted.rps:.1f} requests/s, below "
                    f"{MIN_THROUGHPUT_RATIO:.0%} of {quiet_rps:.1f} at {fewest} (mean of "
                    f"{len(quiet)} run(s))"
                )
        if self.lone_before_ms and self.lone_after_ms:
            if self.lone_after_ms > MAX_LONE_RATIO * self.lone_before_ms:
                out.append(
                    f"a lone request took {self.lone_after_ms:.0f} ms after the load against "
                    f"{self.lone_before_ms:.0f} ms before (at most {MAX_LONE_RATIO:g}x)"
                )
        allowed = ("200", str(TIMED_OUT), *map(str, SHED_STATUSES))
        other = {k: v for k, v in self.overload.statuses.items() if k not in allowed}
        if other:
            out.append(f"overload answers other than 200/429/503/504: {other}")
        if self.overload.shed_without_retry_after:
            out.append(
                f"{self.overload.shed_without_retry_after} shed answer(s) without Retry-After"
            )
        if self.large is not None:
            out.extend(self.large.problems(MAX_ADMITTED_P95_MS))
        if not any(self.overload.statuses.get(str(s)) for s in SHED_STATUSES):
            out.append("the overload burst was not shed (no 429/503): raise --overload-extra")
        if self.ready_after != 200 or not self.alive_after:
            out.append(
                f"afterwards: /readyz {self.ready_after}, server running: {self.alive_after}"
            )
        return out

    def text(self) -> str:
        def ms(value):
            return "-" if value is None else f"{value:.0f} ms"

        growth = "-" if self.memory_growth is None else f"{self.memory_growth:+.1%}"
        rows = [
            f"| {v.users} | {v.admitted.requests} | {v.admitted.failures} | "
            f"{v.admitted.rps:.1f} | {ms(v.admitted.p50_ms)} | {ms(v.admitted.p95_ms)} | "
            f"{ms(v.admitted.p99_ms)} | {v.shed.requests} | {ms(v.shed.p99_ms)} | "
            f"{v.generator_cores:.2f} |"
            for v in self.levels
        ]
        return "\n".join(
            [
                f"load test: {self.seconds} s per level on 127.0.0.1, {self.articles}",
                "",
                "| callers | admitted | failed | requests/s | p50 | p95 | p99 | shed | shed p99 "
                "| load generator CPU (cores) |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                *rows,
                "",
                f"lone request (median of {LONE_REPEATS}): {ms(self.lone_before_ms)} before the "
                f"load, {ms(self.lone_after_ms)} after",
                f"resident memory: {self.rss_warm_mib or 0:.0f} MiB after {self.warmup} s of "
                f"warm-up, {self.rss_end_mib or 0:.0f} MiB at the end ({growth}), peak "
                f"{self.rss_peak_mib or 0:.0f} MiB",
                f"overload: {self.overload.sent} requests at once -> "
                f"{dict(sorted(self.overload.statuses.items()))} in {self.overload.seconds:.1f} s; "
                f"shed without Retry-After: {self.overload.shed_without_retry_after}",
                *([self.large.text()] if self.large is not None else []),
                f"afterwards: /readyz {self.ready_after}, server running: {self.alive_after}",
            ]
        )


def run(args: argparse.Namespace, env: dict[str, str], settings: ServiceSettings) -> LoadReport:
    """The lone request, the load levels, the burst and the lone request again, against
    ``akhbar serve`` started with ``env`` (whose settings are ``settings``)."""
    from tools.localserver import local_server

    articles, source = load_articles(args.articles, settings.scoring.max_text_chars)
    warmup = args.warmup if args.warmup is not None else min(60, args.seconds // 5)
    token = settings.api_token
    with tempfile.TemporaryDirectory(prefix="akhbar-loadtest-") as tmp:
        out = Path(tmp)
        articles_file = out / "articles.json"
        articles_file.write_text(json.dumps(articles, ensure_ascii=False), encoding="utf-8")
        print(f"loadtest: starting akhbar serve; {source}", file=sys.stderr)
        with local_server(env, out / "server.log") as server:
            lone_before = lone_request_ms(server.url, articles[0], token)
            sampler = MemorySampler(server)
            sampler.start()
            levels = []
            # The quietest level again at the end, against the server's ageing (above).
            order = [*args.users, min(args.users)] if len(set(args.users)) > 1 else args.users
            for index, users in enumerate(order):
                print(f"loadtest: {users} users for {args.seconds} s", file=sys.stderr)
                level, tail = run_load(
                    server,
                    articles_file,
                    out / f"level-{index}-users-{users}",
                    users,
                    args.seconds,
                    args.spawn_rate,
                    env,
                )
                if level.locust_exit != 0 and not level.admitted.requests:
                    print(tail, file=sys.stderr)
                levels.append(level)
            sampler.stop()
            # Twice the queue: requests still in the socket backlog are not in the queue yet.
            count = 2 * settings.max_queue + args.overload_extra
            print(f"loadtest: overload, {count} requests at once", file=sys.stderr)
            overload = run_overload(
                server.url, articles, count, settings.request_timeout + 30, token
            )
            print(
                "loadtest: the largest requests beside 8 callers, then a caller who leaves",
                file=sys.stderr,
            )
            large = run_large(
                server,
                articles,
                settings,
                lambda users, seconds, stop: run_load(
                    server,
                    articles_file,
                    out / "beside-large",
                    users,
                    seconds,
                    args.spawn_rate,
                    env,
                    stop,
                )[0],
            )
            try:
                ready = httpx.get(server.url + "/readyz", timeout=30).status_code
                lone_after = lone_request_ms(server.url, articles[0], token)
            except httpx.HTTPError:
                ready, lone_after = None, None
            alive = server.process.poll() is None
        mib = 1 << 20
        warm = sampler.at(warmup)
        samples = [rss for _, rss in sampler.samples]
        return LoadReport(
            articles=source,
            seconds=args.seconds,
            warmup=warmup,
            levels=levels,
            lone_before_ms=lone_before,
            lone_after_ms=lone_after,
            rss_warm_mib=warm / mib if warm else None,
            rss_end_mib=samples[-1] / mib if samples else None,
            rss_peak_mib=max(samples, default=0) / mib,
            overload=overload,
            ready_after=ready,
            alive_after=alive,
            large=large,
            rss_every_10s_mib=[round(rss / mib) for rss in samples][::10],
        )


def _user_levels(value: str) -> list[int]:
    try:
        levels = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(
            f"must be whole numbers of at least 1, separated by commas, got {value!r}"
        )
    return levels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.loadtest", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--seconds",
        type=int,
        default=_env_int("LOADTEST_SECONDS", 60),
        help="How long each load level runs (default 60, or $LOADTEST_SECONDS).",
    )
    parser.add_argument(
        "--users",
        type=_user_levels,
        default=_user_levels(os.environ.get("LOADTEST_USERS") or "8,32,64"),
        help="Concurrent users of each level, in order (default 8,32,64, or $LOADTEST_USERS).",
    )
    parser.add_argument(
        "--spawn-rate", type=int, default=8, help="Users started per second (default 8)."
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="Seconds of load before the 'after warm-up' "
        "memory figure (default: a fifth of a level, at most 60).",
    )
    parser.add_argument(
        "--articles", type=int, default=200, help="Distinct articles to send (default 200)."
    )
    parser.add_argument(
        "--overload-extra",
        type=int,
        default=32,
        help="Requests beyond twice AKHBAR_MAX_QUEUE in the overload burst (default 32).",
    )
    parser.add_argument(
        "--report", type=Path, default=None, help="Also write the figures here as JSON."
    )
    args = parser.parse_args(argv)
    for name in ("seconds", "spawn_rate", "articles", "overload_extra"):
        if getattr(args, name) < 1:
            parser.error(
                f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
            )
    env = dict(os.environ)
    try:
        settings = ServiceSettings.from_env(env)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        report = run(args, env, settings)
    except RuntimeError as exc:  # the server did not start
        print(f"loadtest: {exc}", file=sys.stderr)
        return 1
    print(report.text())
    return verdict("loadtest", report, args.report, memory_growth=report.memory_growth)


def verdict(tool: str, report: Any, path: Path | None, **derived: Any) -> int:
    """Write ``report`` (a dataclass with ``problems()``) and ``derived`` figures as JSON to
    ``path`` when given, print each broken rule, and return the exit status."""
    problems = report.problems()
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**asdict(report), **derived, "problems": problems}
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for line in problems:
        print(f"FAIL {line}")
    print(f"{tool}: " + ("passed" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
