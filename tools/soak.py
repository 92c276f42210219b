"""``make soak``: does the service's memory stay bounded over a long run?

It starts ``akhbar serve`` (the models ``make serve`` would load) on 127.0.0.1, measures its
capacity as the throughput of 8 callers for ``--capacity-seconds`` (60), then sends open-loop
arrivals (a Poisson process, whatever the answers' pace) at ``--load`` (70 %) of that capacity
for ``--minutes`` (30), with articles of mixed lengths (the topic test split's own mix). The
server's resident memory, summed over ``akhbar serve``, BentoML's manager and its workers, is
sampled every second and reported per minute, with a PNG plot.

The rule (issue 20): resident memory at the end within :data:`MAX_GROWTH` (+10 %) of its value
at the end of the warm-up (``--warmup-minutes``, 5). Exit 1 when it is broken, or when under
1 % of the requests were answered 200 (a soak of refusals proves nothing).

    python -m tools.soak [--minutes 30] [--load 0.7] [--plot PATH] [--report PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from akhbar.serving.http.settings import ServiceSettings
from tools.loadtest import MemorySampler, load_articles, run_load, verdict
from tools.localserver import bearer

MAX_GROWTH = 0.10
MIB = 1 << 20


@dataclass
class SoakReport:
    capacity_rps: float
    rate_rps: float
    minutes: int
    warmup_minutes: int
    statuses: dict[str, int] = field(default_factory=dict)
    rss_per_minute_mib: list[float] = field(default_factory=list)

    @property
    def warm_index(self) -> int:
        """The minute that ends the warm-up, as an index of ``rss_per_minute_mib``."""
        return max(self.warmup_minutes - 1, 0)

    @property
    def growth(self) -> float | None:
        """Memory at the end against the end of the warm-up."""
        per_minute = self.rss_per_minute_mib
        if len(per_minute) <= self.warm_index + 1:
            return None
        return per_minute[-1] / per_minute[self.warm_index] - 1

    def problems(self) -> list[str]:
        out = []
        if self.growth is None:
            out.append("too few memory samples: the soak ended before its warm-up")
        elif self.growth > MAX_GROWTH:
            warm, end = self.rss_per_minute_mib[self.warm_index], self.rss_per_minute_mib[-1]
            out.append(
                f"resident memory grew {self.growth:.1%} after the warm-up "
                f"({warm:.0f} -> {end:.0f} MiB; at most {MAX_GROWTH:.0%})"
            )
        sent = sum(self.statuses.values())
        if not sent or self.statuses.get("200", 0) < 0.01 * sent:
            out.append(f"too few requests answered 200: {self.statuses}")
        return out

    def text(self) -> str:
        growth = "-" if self.growth is None else f"{self.growth:+.1%}"
        return "\n".join(
            [
                f"soak: {self.minutes} min of open-loop arrivals at {self.rate_rps:.1f} "
                f"requests/s ({self.rate_rps / self.capacity_rps:.0%} of the 8-caller capacity, "
                f"{self.capacity_rps:.1f} requests/s)",
                f"answers: {dict(sorted(self.statuses.items()))}",
                "resident memory per minute (MiB): "
                + ", ".join(f"{v:.0f}" for v in self.rss_per_minute_mib),
                f"growth from the end of the {self.warmup_minutes}-minute warm-up to the end: "
                f"{growth}",
            ]
        )


def per_minute(samples: list[tuple[float, int]], minutes: int) -> list[float]:
    """The last sample of each minute, in MiB (minutes without a sample are skipped)."""
    out = []
    for m in range(1, minutes + 1):
        inside = [rss for t, rss in samples if m - 1 < t / 60 <= m]
        if inside:
            out.append(inside[-1] / MIB)
    return out


async def open_loop(
    url: str, articles: list[dict], rate: float, seconds: float, token: str | None, seed: int = 0
) -> dict[str, int]:
    """Requests at exponential intervals of mean 1/``rate`` for ``seconds``; answer counts."""
    rng, statuses, tasks = random.Random(seed), {}, set()
    headers = bearer(token)

    async def one(client: httpx.AsyncClient) -> None:
        try:
            response = await client.post("/analyze", json={"articles": [rng.choice(articles)]})
            key = str(response.status_code)
        except httpx.HTTPError as exc:
            key = type(exc).__name__
        statuses[key] = statuses.get(key, 0) + 1

    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as c:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            task = asyncio.ensure_future(one(c))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(rng.expovariate(rate))
        await asyncio.gather(*tasks)
    return statuses


def plot(report: SoakReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    minutes = range(1, len(report.rss_per_minute_mib) + 1)
    ax.plot(minutes, report.rss_per_minute_mib, marker="o")
    if report.growth is not None:
        warm = report.rss_per_minute_mib[report.warm_index]
        ax.axhline(warm * (1 + MAX_GROWTH), color="red", linestyle="--", label="warm-up +10 %")
        ax.legend()
    ax.axvline(report.warm_index + 1, color="grey", linestyle=":")
    ax.set_xlabel("minute")
    ax.set_ylabel("resident memory (MiB)")
    ax.set_title(f"make soak: {report.rate_rps:.1f} requests/s, open loop")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace, env: dict[str, str], settings: ServiceSettings) -> SoakReport:
    from tools.localserver import local_server

    articles, source = load_articles(args.articles, settings.scoring.max_text_chars)
    with tempfile.TemporaryDirectory(prefix="akhbar-soak-") as tmp:
        out = Path(tmp)
        articles_file = out / "articles.json"
        articles_file.write_text(json.dumps(articles, ensure_ascii=False), encoding="utf-8")
        print(f"soak: starting akhbar serve; {source}", file=sys.stderr)
        with local_server(env, out / "server.log") as server:
            level, _ = run_load(
                server, articles_file, out / "capacity", 8, args.capacity_seconds, 8, env
            )
            capacity = level.admitted.rps
            if not capacity:
                raise RuntimeError("the capacity run answered nothing")
            rate = args.load * capacity
            print(
                f"soak: capacity {capacity:.1f}/s; {rate:.1f}/s for {args.minutes} min",
                file=sys.stderr,
            )
            sampler = MemorySampler(server)
            sampler.start()
            statuses = asyncio.run(
                open_loop(server.url, articles, rate, args.minutes * 60, settings.api_token)
            )
            sampler.stop()
    return SoakReport(
        capacity_rps=capacity,
        rate_rps=rate,
        minutes=args.minutes,
        warmup_minutes=args.warmup_minutes,
        statuses=statuses,
        rss_per_minute_mib=per_minute(sampler.samples, args.minutes),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--minutes", type=int, default=30, help="Soak length (default 30).")
    parser.add_argument(
        "--warmup-minutes", type=int, default=5, help="Minutes before the reference (default 5)."
    )
    parser.add_argument(
        "--load", type=float, default=0.7, help="Share of the capacity to send (default 0.7)."
    )
    parser.add_argument(
        "--capacity-seconds", type=int, default=60, help="8-caller capacity run (default 60)."
    )
    parser.add_argument(
        "--articles", type=int, default=500, help="Distinct articles to send (default 500)."
    )
    parser.add_argument(
        "--plot", type=Path, default=None, help="Write the memory plot here (default: none)."
    )
    parser.add_argument(
        "--report", type=Path, default=None, help="Also write the figures as JSON (default: none)."
    )
    args = parser.parse_args(argv)
    if not 0 < args.load <= 1:
        parser.error(f"--load must be within (0, 1], got {args.load}")
    for name in ("minutes", "capacity_seconds", "articles"):
        if getattr(args, name) < 1:
            parser.error(
                f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
            )
    if not 0 <= args.warmup_minutes < args.minutes:
        parser.error("--warmup-minutes must be at least 0 and below --minutes")
    env = dict(os.environ)
    try:
        settings = ServiceSettings.from_env(env)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        report = run(args, env, settings)
    except RuntimeError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 1
    print(report.text())
    if args.plot:
        plot(report, args.plot)
    return verdict("soak", report, args.report, growth=report.growth)


if __name__ == "__main__":
    sys.exit(main())
