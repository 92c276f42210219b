"""Benchmark of ``akhbar score`` against a plain loop that scores one article at a time.

``make bench-batch`` runs it on the 2,938 articles of the topic test split
(``$AKHBAR_DATA/topic/ant_v2.1_multisource/test.jsonl.gz``) with all three tasks, each
article with one claim, its own title. Both ways run in the same invocation, each in a
child process of its own so that its peak memory (peak RSS, models included) is its own:

* ``batch``: :func:`akhbar.serving.batch.score_file`, the local engine, ``--batch-size``
  articles per Analyzer call, streaming to a JSON Lines file;
* ``loop``: ``Analyzer.analyze([article])`` for each article in turn, written to JSON Lines
  the same way (what a script that calls the models one article at a time would do).

Both load the models the service would (``AKHBAR_<TASK>_MODEL``, promoted, shipped). Model
loading is timed apart from scoring; records/s counts scoring only. The report also says
how far the two outputs differ (they score the same articles with the same models; only the
batching differs).

Usage: ``python -m tools.batch_bench [--limit N] [--batch-size N] [--report PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from akhbar.models.tasks import TASKS

TOPIC_TEST = "topic/ant_v2.1_multisource/test.jsonl.gz"


def prepare(source: Path, target: Path, limit: int | None) -> int:
    """Write the benchmark's input: id, title, text and one claim (the title) per article."""
    from akhbar.models.reader import read_records

    n = 0
    with target.open("w", encoding="utf-8") as out:
        for record in read_records(
            source, "score", policy="skip", rejects_path=target.with_suffix(".rejects.jsonl")
        ):
            if limit is not None and n >= limit:
                break
            title = record.get("title")
            claims = [title] if title and title.strip() else []
            article = {
                "id": record.get("id") or record["_line"],
                "title": title,
                "text": record["text"],
                "claims": claims,
            }
            out.write(json.dumps(article, ensure_ascii=False) + "\n")
            n += 1
    return n


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_phase(phase: str, prepared: Path, output: Path, batch_size: int) -> dict[str, Any]:
    """One way of scoring, in this process; its figures as a dict."""
    from akhbar.serving.batch.score import Job, load_analyzer, score_file
    from akhbar.serving.core.config import ScoringConfig

    config = ScoringConfig.from_env()
    runtime = config.runtime()
    runtime.apply()  # both ways with the threads akhbar score uses
    job = Job(str(prepared), output, tasks=TASKS, batch_size=batch_size, progress=False)
    started = time.monotonic()
    analyzer = load_analyzer(job, config, runtime)
    load_s = time.monotonic() - started
    started = time.monotonic()
    if phase == "batch":
        records = score_file(job, analyzer).scored
    else:
        records = 0
        with prepared.open(encoding="utf-8") as source, output.open("w", encoding="utf-8") as out:
            for line in source:
                [result] = analyzer.analyze([json.loads(line)], TASKS)
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
                records += 1
    seconds = time.monotonic() - started
    return {
        "phase": phase,
        "records": records,
        "load_s": round(load_s, 2),
        "score_s": round(seconds, 2),
        "records_per_s": round(records / seconds, 2) if seconds else None,
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "models": analyzer.versions,
    }


def _child(phase: str, prepared: Path, output: Path, batch_size: int) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "tools.batch_bench",
        "--phase",
        phase,
        "--prepared",
        str(prepared),
        "--phase-output",
        str(output),
        "--batch-size",
        str(batch_size),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"batch_bench: the {phase} phase failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(a: Path, b: Path) -> dict[str, Any]:
    """How far two outputs differ: label disagreements and the largest probability gap."""
    labels, gap, n = 0, 0.0, 0
    with a.open(encoding="utf-8") as fa, b.open(encoding="utf-8") as fb:
        for la, lb in zip(fa, fb, strict=True):
            ra, rb = json.loads(la), json.loads(lb)
            n += 1
            pairs = [(ra["topic"], rb["topic"]), *zip(ra["stances"], rb["stances"], strict=True)]
            for x, y in pairs:
                labels += x["label"] != y["label"]
                gap = max(gap, *(abs(x["scores"][k] - y["scores"][k]) for k in x["scores"]))
            labels += ra["summary"]["indices"] != rb["summary"]["indices"]
    return {"records": n, "label_or_summary_differences": labels, "max_probability_gap": gap}


def report_markdown(
    results: list[dict[str, Any]], diff: dict[str, Any], source: str, batch_size: int
) -> str:
    lines = [
        "# Batch scoring benchmark",
        "",
        f"Input: {results[0]['records']} articles of `{source}`, tasks {', '.join(TASKS)}, one "
        f"claim each (the title). Machine: {os.cpu_count()} CPUs. Models: "
        + ", ".join(f"{t}={v}" for t, v in results[0]["models"].items())
        + ".",
        "",
        "| way | records | start-up: imports and models (s) "
        "| scoring (s) | records/s | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {
        "batch": f"`akhbar score` (local engine, batch size {batch_size})",
        "loop": "plain loop, one article per call",
    }
    for r in results:
        lines.append(
            f"| {names[r['phase']]} | {r['records']} | {r['load_s']} | {r['score_s']} | "
            f"{r['records_per_s']} | {r['peak_rss_mib']} |"
        )
    batch, loop = results
    if batch["records_per_s"] and loop["records_per_s"]:
        lines += [
            "",
            "Speed-up of `akhbar score` over the loop: "
            f"{batch['records_per_s'] / loop['records_per_s']:.2f}x.",
        ]
    lines += [
        "",
        f"Outputs compared: {diff['label_or_summary_differences']} label or summary differences in "
        f"{diff['records']} records; largest probability gap {diff['max_probability_gap']:.2e} "
        "(batching changes only padding and summation order).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.batch_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--input", default=None, help=f"Articles (default: $AKHBAR_DATA/{TOPIC_TEST})."
    )
    parser.add_argument("--limit", type=int, default=None, help="Score only the first N articles.")
    parser.add_argument(
        "--batch-size", type=int, default=32, help="akhbar score --batch-size (default: 32)."
    )
    parser.add_argument(
        "--report", default=None, help="Also write the Markdown report (and .json) here."
    )
    parser.add_argument("--phase", choices=("batch", "loop"), help=argparse.SUPPRESS)
    parser.add_argument("--prepared", help=argparse.SUPPRESS)
    parser.add_argument("--phase-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase:  # a child: one way of scoring, figures as one JSON line on stdout
        print(
            json.dumps(
                run_phase(args.phase, Path(args.prepared), Path(args.phase_output), args.batch_size)
            )
        )
        return 0

    from akhbar.models.reader import data_root

    source = Path(args.input) if args.input else data_root() / TOPIC_TEST
    with tempfile.TemporaryDirectory(prefix="akhbar-bench-") as tmp:
        prepared = Path(tmp) / "articles.jsonl"
        n = prepare(source, prepared, args.limit)
        print(f"batch_bench: {n} articles from {source}", file=sys.stderr)
        results = [
            _child(phase, prepared, Path(tmp) / f"{phase}.jsonl", args.batch_size)
            for phase in ("batch", "loop")
        ]
        diff = compare(Path(tmp) / "batch.jsonl", Path(tmp) / "loop.jsonl")
    text = report_markdown(results, diff, str(source), args.batch_size)
    print(text)
    if args.report:
        path = Path(args.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.with_suffix(".json").write_text(
            json.dumps({"results": results, "comparison": diff}, indent=2) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
