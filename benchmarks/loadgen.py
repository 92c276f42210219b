"""The load generator: a closed-loop async httpx client, run in a process of its own.

``--concurrency C`` workers each keep one ``POST /analyze`` in flight (one article per
request) until every article of ``--articles`` (JSON Lines, each line one article as the
API takes it) has been sent once (``--repeat`` times). Request bodies are serialised before
the clock starts, so the client's own work is sending, waiting and reading the reply.

Writes one JSON object: articles/s over the measured wall time (first send to last reply),
latency percentiles of the successful requests, errors by status, the labels the service
returned per article (to check them against the naive loop), and this process's own CPU
time (user + system) during the measured part, as a share of one core.

Usage: ``python benchmarks/loadgen.py --url URL --articles FILE --concurrency N --out OUT.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import percentiles_ms, write_json  # noqa: E402

TIMEOUT_S = 600


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _labels(reply: bytes) -> dict:
    """The topic and stance labels and the summary's sentence indices
    of a one-article /analyze reply."""
    [result] = json.loads(reply)["results"]
    return {
        "topic": result["topic"]["label"],
        "stances": [s["label"] for s in result["stances"]],
        "summary": result["summary"]["indices"],
    }


async def _run(url: str, bodies: list[tuple[int, bytes]], concurrency: int, headers: dict) -> dict:
    queue: asyncio.Queue = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    records: list[dict] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, timeout=TIMEOUT_S, limits=limits, headers=headers
    ) as client:

        async def worker() -> None:
            while True:
                try:
                    index, body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                start = time.perf_counter()
                try:
                    reply = await client.post("/analyze", content=body)
                    status, content = reply.status_code, reply.content
                except httpx.HTTPError as exc:
                    status, content = type(exc).__name__, b""
                end = time.perf_counter()
                record = {"i": index, "start": start, "end": end, "status": status}
                if status == 200:
                    record |= _labels(content)
                records.append(record)

        cpu0, wall0 = _cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu1, wall1 = _cpu_seconds(), time.perf_counter()
    ok = [r for r in records if r["status"] == 200]
    errors: dict[str, int] = {}
    for r in records:
        if r["status"] != 200:
            errors[str(r["status"])] = errors.get(str(r["status"]), 0) + 1
    wall = wall1 - wall0
    return {
        "concurrency": concurrency,
        "requests": len(records),
        "ok": len(ok),
        "errors": errors,
        "wall_s": round(wall, 3),
        "articles_per_s": round(len(ok) / wall, 3) if wall > 0 else None,
        "latency_ms": percentiles_ms([r["end"] - r["start"] for r in ok]),
        "client_cpu_s": round(cpu1 - cpu0, 3),
        "client_cpu_share_of_one_core": round((cpu1 - cpu0) / wall, 3) if wall > 0 else None,
        "results": [
            {
                "i": r["i"],
                "ms": round((r["end"] - r["start"]) * 1000, 2),
                "status": r["status"],
                **(
                    {k: r[k] for k in ("topic", "stances", "summary")} if r["status"] == 200 else {}
                ),
            }
            for r in sorted(records, key=lambda r: r["start"])
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--articles", required=True, help="JSON Lines, one article per line.")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument(
        "--repeat", type=int, default=1, help="Send the whole list this many times."
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.articles, encoding="utf-8") as f:
        articles = [json.loads(line) for line in f if line.strip()]
    bodies = [
        (i, json.dumps({"articles": [a]}, ensure_ascii=False).encode("utf-8"))
        for _ in range(args.repeat)
        for i, a in enumerate(articles)
    ]
    headers = {"content-type": "application/json"}
    if os.environ.get("AKHBAR_API_TOKEN"):
        headers["authorization"] = f"Bearer {os.environ['AKHBAR_API_TOKEN']}"
    result = asyncio.run(_run(args.url, bodies, args.concurrency, headers))
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
