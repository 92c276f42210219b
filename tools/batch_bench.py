"""Benchmark of ``akhbar score``, both engines, against a plain loop that scores one article
at a time; and the Ray engine's memory as its input grows.

``make bench-batch`` runs it on the 2,938 articles of the topic test split
(``$AKHBAR_DATA/topic/ant_v2.1_multisource/test.jsonl.gz``) with all three tasks, each
article with one claim, its own title. Every way runs in the same invocation, each in a
child process of its own so that its peak memory (peak RSS, models included) is its own:

* ``batch``: :func:`akhbar.serving.batch.score_file`, the local engine, ``--batch-size``
  articles per Analyzer call, streaming to a JSON Lines file;
* ``ray``: the same with ``--engine ray`` on a local Ray of ``--actors`` actors of one CPU
  each; its peak RSS is the driver's (the actors are Ray's processes), beside the peak of
  Ray's object store and the actors' utilisation (their time in scoring calls, from the
  output's manifests, over the job's wall time);
* ``loop``: ``Analyzer.analyze([article])`` for each article in turn, written to JSON Lines
  the same way (what a script that calls the models one article at a time would do).

All load the models the service would (``AKHBAR_<TASK>_MODEL``, promoted, shipped). Model
loading is timed apart from scoring where the engine allows (the Ray engine loads them in its
actors, so its time includes Ray's start and the loading). The report also says how far the
outputs differ (they score the same articles with the same models; only the batching differs).

``--memory 100000,1000000`` instead scores generated one-sentence records with a tiny
random-weight model (:mod:`tools.tiny_models`; topic only), through the Ray engine at each
size, and reports the driver's peak RSS and the object store's peak: flat memory means the
largest size costs at most 50 MB more than the smallest, for both.

Usage: ``python -m tools.batch_bench [--limit N] [--batch-size N] [--actors N] [--report PATH]
[--memory N,N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from akhbar.models.tasks import TASKS

TOPIC_TEST = "topic/ant_v2.1_multisource/test.jsonl.gz"
_PLASMA = re.compile(r"Plasma memory usage (\d+) MiB")
FLAT_MIB = 50  # the most the largest --memory size may cost above the smallest


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


@contextmanager
def object_store_peak() -> Iterator[Callable[[], float]]:
    """Poll Ray's object store (all nodes) twice a second while this process is a Ray driver;
    yields a function that gives the peak seen, in MiB."""
    import ray
    from ray._private.internal_api import memory_summary

    peak, stop = [0.0], threading.Event()

    def poll() -> None:
        while not stop.wait(0.5):
            if not ray.is_initialized():
                continue
            try:
                found = _PLASMA.search(memory_summary(stats_only=True))
            except Exception:  # noqa: BLE001 - Ray starting or stopping; the next poll sees it
                continue
            if found:
                peak[0] = max(peak[0], float(found.group(1)))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        stop.set()
        thread.join()


def _manifests(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in (folder / "_manifest").glob("*.json")]


def run_phase(
    phase: str, prepared: Path, output: Path, batch_size: int, actors: int, tasks: tuple[str, ...]
) -> dict[str, Any]:
    """One way of scoring, in this process; its figures as a dict."""
    from akhbar.serving.batch.score import Job, load_analyzer, score_file
    from akhbar.serving.core.config import ScoringConfig

    if phase == "ray":
        job = Job(
            str(prepared),
            output,
            tasks=tasks,
            batch_size=batch_size,
            engine="ray",
            concurrency=actors,
            progress=False,
        )
        started = time.monotonic()
        with object_store_peak() as store_peak:
            records = score_file(job).scored
        seconds = time.monotonic() - started
        busy = sum(m["score_seconds"] for m in _manifests(output))
        return {
            "phase": phase,
            "records": records,
            "load_s": None,  # in the actors, within the wall time
            "score_s": round(seconds, 2),
            "records_per_s": round(records / seconds, 2) if seconds else None,
            "peak_rss_mib": round(_peak_rss_mib(), 1),
            "object_store_peak_mib": store_peak(),
            "actors": actors,
            "actor_utilisation": round(busy / (seconds * actors), 3) if seconds else None,
        }
    config = ScoringConfig.from_env()
    runtime = config.runtime()
    runtime.apply()  # both ways with the threads akhbar score uses
    job = Job(str(prepared), output, tasks=tasks, batch_size=batch_size, progress=False)
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
                [result] = analyzer.analyze([json.loads(line)], tasks)
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


def _child(
    phase: str,
    prepared: Path,
    output: Path,
    args: argparse.Namespace,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
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
        str(args.batch_size),
        "--actors",
        str(args.actors),
        "--tasks",
        ",".join(args.tasks),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"batch_bench: the {phase} phase failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_results(path: Path) -> dict[Any, dict[str, Any]]:
    """Results by id, from a JSON Lines file or a Ray output folder of shards."""
    files = sorted(path.glob("part-*.jsonl")) if path.is_dir() else [path]
    results = {}
    for file in files:
        with file.open(encoding="utf-8") as f:
            for line in f:
                result = json.loads(line)
                results[result["id"]] = result
    return results


def compare(a: Path, b: Path) -> dict[str, Any]:
    """How far two outputs differ: label disagreements and the largest probability gap."""
    first, second = read_results(a), read_results(b)
    labels, gap = 0, 0.0
    for key, ra in first.items():
        rb = second[key]
        pairs = [(ra["topic"], rb["topic"]), *zip(ra["stances"], rb["stances"], strict=True)]
        for x, y in pairs:
            labels += x["label"] != y["label"]
            gap = max(gap, *(abs(x["scores"][k] - y["scores"][k]) for k in x["scores"]))
        labels += ra["summary"]["indices"] != rb["summary"]["indices"]
    missing = len(set(first) ^ set(second))
    return {
        "records": len(first),
        "missing": missing,
        "label_or_summary_differences": labels,
        "max_probability_gap": gap,
    }


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def report_markdown(
    results: list[dict[str, Any]],
    diffs: dict[str, dict[str, Any]],
    source: str,
    args: argparse.Namespace,
) -> str:
    by_phase = {r["phase"]: r for r in results}
    models = by_phase["batch"]["models"]
    lines = [
        "# Batch scoring benchmark",
        "",
        f"Input: {by_phase['batch']['records']} articles of `{source}`, tasks "
        f"{', '.join(args.tasks)}, one claim each (the title). Machine: {os.cpu_count()} CPUs. "
        "Models: " + ", ".join(f"{t}={v}" for t, v in models.items()) + ".",
        "",
        "| way | records | start-up: imports and models (s) | scoring (s) | records/s "
        "| peak RSS (MiB) | object store peak (MiB) | actor utilisation |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "batch": f"`akhbar score` (local engine, batch size {args.batch_size})",
        "ray": f"`akhbar score --engine ray` ({args.actors} actors of 1 CPU; scoring time "
        "includes Ray's start and the actors' model loading; RSS: the driver's)",
        "loop": "plain loop, one article per call",
    }
    for r in results:
        lines.append(
            f"| {names[r['phase']]} | {r['records']} | {_cell(r['load_s'])} | {r['score_s']} | "
            f"{r['records_per_s']} | {r['peak_rss_mib']} | "
            f"{_cell(r.get('object_store_peak_mib'))} | {_cell(r.get('actor_utilisation'))} |"
        )
    loop = by_phase["loop"]["records_per_s"]
    lines += [""]
    for phase in ("batch", "ray"):
        if loop and by_phase[phase]["records_per_s"]:
            lines.append(
                f"Speed-up over the loop: {names[phase].split(' (')[0]} "
                f"{by_phase[phase]['records_per_s'] / loop:.2f}x."
            )
    for phase, diff in diffs.items():
        lines += [
            "",
            f"Outputs compared ({names[phase].split(' (')[0]} vs the loop): "
            f"{diff['label_or_summary_differences']} label or summary differences in "
            f"{diff['records']} records, {diff['missing']} records in one output only; largest "
            f"probability gap {diff['max_probability_gap']:.2e} (batching changes only padding "
            "and summation order).",
        ]
    return "\n".join(lines) + "\n"


def memory_run(sizes: list[int], args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    """The Ray engine on ``sizes`` generated one-sentence records, with a tiny model."""
    from tools import tiny_models

    bundle = tiny_models.tiny_bundle(tiny_models.tiny_base(tmp / "base"), tmp / "bundle")
    (tmp / "no-defaults").mkdir()
    env = {
        **os.environ,
        "AKHBAR_TOPIC_MODEL": str(bundle),
        "AKHBAR_DEFAULT_MODELS": str(tmp / "no-defaults"),
        "BENTOML_HOME": str(tmp / "bentoml"),
        "RAY_AUTH_MODE": "disabled",
    }
    sentences = tiny_models.ARABIC_SENTENCES
    args.tasks = ("topic",)
    runs = []
    for size in sizes:
        records = tmp / f"records-{size}.jsonl"
        with records.open("w", encoding="utf-8") as out:
            for i in range(size):
                out.write(json.dumps({"id": i, "text": sentences[i % len(sentences)]}) + "\n")
        print(f"batch_bench: the Ray engine on {size:,} records", file=sys.stderr)
        runs.append(_child("ray", records, tmp / f"out-{size}", args, env))
        records.unlink()
    return runs


def growth(runs: list[dict[str, Any]]) -> tuple[float, float]:
    """How much more driver peak RSS and object store peak (MiB) the largest size took."""
    first, last = runs[0], runs[-1]
    return (
        last["peak_rss_mib"] - first["peak_rss_mib"],
        last["object_store_peak_mib"] - first["object_store_peak_mib"],
    )


def is_flat(runs: list[dict[str, Any]]) -> bool:
    """Both grew by at most :data:`FLAT_MIB` megabytes."""
    return all(mib * 2**20 / 1e6 <= FLAT_MIB for mib in growth(runs))


def memory_markdown(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "# Ray engine memory as the input grows",
        "",
        f"Generated one-sentence records, a tiny random-weight model (tools/tiny_models.py), "
        f"topic only, {args.actors} actors of 1 CPU, batch size {args.batch_size}. Machine: "
        f"{os.cpu_count()} CPUs.",
        "",
        "| records | wall (s) | records/s | driver peak RSS (MiB) | object store peak (MiB) "
        "| actor utilisation |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['records']:,} | {r['score_s']} | {r['records_per_s']} | {r['peak_rss_mib']} "
            f"| {r['object_store_peak_mib']} | {r['actor_utilisation']} |"
        )
    first, last = runs[0], runs[-1]
    rss, store = growth(runs)
    flat = is_flat(runs)
    lines += [
        "",
        f"From {first['records']:,} to {last['records']:,} records: driver peak RSS "
        f"{rss:+.1f} MiB, object store peak {store:+.1f} MiB (rule: at most +{FLAT_MIB} MB "
        f"each): {'flat' if flat else 'NOT flat'}.",
    ]
    return "\n".join(lines) + "\n"


def _write(report: str | None, text: str, data: dict[str, Any]) -> None:
    print(text)
    if report:
        path = Path(report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


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
        "--actors", type=int, default=2, help="Ray actors of one CPU each (default: 2)."
    )
    parser.add_argument(
        "--tasks",
        type=lambda v: tuple(v.split(",")),
        default=TASKS,
        help=f"Comma-separated tasks (default: {','.join(TASKS)}).",
    )
    parser.add_argument(
        "--memory",
        default=None,
        metavar="N,N",
        help="Instead: the Ray engine's memory at these input sizes, e.g. 100000,1000000.",
    )
    parser.add_argument(
        "--report", default=None, help="Also write the Markdown report (and .json) here."
    )
    parser.add_argument("--phase", choices=("batch", "ray", "loop"), help=argparse.SUPPRESS)
    parser.add_argument("--prepared", help=argparse.SUPPRESS)
    parser.add_argument("--phase-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase:  # a child: one way of scoring, figures as one JSON line on stdout
        figures = run_phase(
            args.phase,
            Path(args.prepared),
            Path(args.phase_output),
            args.batch_size,
            args.actors,
            args.tasks,
        )
        print(json.dumps(figures))
        return 0

    with tempfile.TemporaryDirectory(prefix="akhbar-bench-") as tmp:
        if args.memory:
            runs = memory_run([int(n) for n in args.memory.split(",")], args, Path(tmp))
            text = memory_markdown(runs, args)
            _write(args.report, text, {"runs": runs})
            return 0 if is_flat(runs) else 1
        from akhbar.models.reader import data_root

        source = Path(args.input) if args.input else data_root() / TOPIC_TEST
        prepared = Path(tmp) / "articles.jsonl"
        n = prepare(source, prepared, args.limit)
        print(f"batch_bench: {n} articles from {source}", file=sys.stderr)
        outputs = {
            "batch": Path(tmp) / "batch.jsonl",
            "ray": Path(tmp) / "ray",
            "loop": Path(tmp) / "loop.jsonl",
        }
        ray_env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
        results = [
            _child(phase, prepared, output, args, ray_env) for phase, output in outputs.items()
        ]
        diffs = {phase: compare(outputs[phase], outputs["loop"]) for phase in ("batch", "ray")}
    text = report_markdown(results, diffs, str(source), args)
    _write(args.report, text, {"results": results, "comparisons": diffs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
