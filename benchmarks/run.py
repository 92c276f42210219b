"""``make bench``: every performance figure, measured side by side in one run on one machine.

Stages, each a script of this folder run in a process of its own, one after another:

1. ``service``  the real HTTP service (``akhbar serve``) under a separate load-generator
   process at concurrency 1 and 16, then at 16 with two workers: articles/s, latency
   percentiles, the adaptive batch sizes the service formed, the requests each worker served,
   the time per request by stage, the client's own CPU;
2. ``naive``    the same models one article at a time, no batching, no padding;
3. ``batch``    ``akhbar score``'s local engine over the same articles (no HTTP);
4. ``gemm``     the machine's sustained fp32 / bf16 / int8 matrix-multiply rate;
5. ``flops``    the model FLOPs of every benchmark article, from the configs;
6. ``accuracy`` faster variants (int8, bf16, onnx-int8) against fp32 on the validation splits;
7. ``pretrain`` ``akhbar pretrain`` against a stock ``BertForMaskedLM`` loop, tokens/s.

Articles: a seeded random sample of ``--articles`` articles of the topic test split
(``$AKHBAR_DATA/topic/ant_v2.1_multisource/test.jsonl.gz``), each with one claim, its own
title; ``/analyze`` scores topic, summary and that claim's stance. Models: the ones the
service would load (``AKHBAR_<TASK>_MODEL``, else promoted, else shipped defaults).

Writes ``<out>/latest.json`` (top-level keys ``service_vs_naive``, ``fraction_of_limit``,
``p50_ms_c1``, ``pretrain_vs_stock``, ``two_workers_vs_one``, ``machine``, then the details)
and ``<out>/latest.md``.
See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from akhbar.models.precision import PRECISIONS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    BENCH_DIR,
    REPO,
    TOPIC_TEST,
    log,
    machine,
    read_json,
    resolve_models,
    service_settings,
    write_json,
)

STAGES = ("service", "naive", "batch", "gemm", "flops", "accuracy", "pretrain")
SCRIPTS = {
    "service": "service.py",
    "naive": "naive.py",
    "batch": "batch.py",
    "gemm": "gemm.py",
    "flops": "flops.py",
    "accuracy": "accuracy.py",
    "pretrain": "pretrain_speed.py",
}
# The headline targets: issue 19's ("Performance, second step") for the service, issue 7's
# for pretraining.
TARGETS = {
    "service_vs_naive": 3.0,
    "fraction_of_limit": 0.20,
    "p50_ms_c1": 40.0,
    "pretrain_vs_stock": 2.0,
    "two_workers_vs_one": 1.0,
}
HEADLINE = tuple(TARGETS)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python benchmarks/run.py", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--articles",
        type=int,
        default=_env_int("BENCH_ARTICLES", 320),
        help="Test articles in the sample that c16 and the naive loop both score (BENCH_ARTICLES).",
    )
    p.add_argument(
        "--c1-articles",
        type=int,
        default=_env_int("BENCH_C1_ARTICLES", 100),
        help="Articles of the sample sent one at a time (concurrency 1).",
    )
    p.add_argument(
        "--median-repeats",
        type=int,
        default=_env_int("BENCH_MEDIAN_REPEATS", 40),
        help="Requests with the median-length test article at concurrency 1 (p50_ms_c1).",
    )
    p.add_argument(
        "--warmup-articles", type=int, default=16, help="Untimed requests before the phases."
    )
    p.add_argument(
        "--accuracy-limit",
        type=int,
        default=_env_int("BENCH_ACCURACY_LIMIT", 0),
        help="Records per validation split for the accuracy guard; 0: the whole splits.",
    )
    p.add_argument(
        "--variants",
        default=os.environ.get("BENCH_VARIANTS", "int8,bf16,onnx-int8"),
        help="Faster variants the accuracy guard scores against fp32 (int8, bf16, onnx-int8).",
    )
    p.add_argument(
        "--pretrain-steps",
        type=int,
        default=_env_int("BENCH_PRETRAIN_STEPS", 20),
        help="Timed steps of each pretraining way (after warm-up).",
    )
    p.add_argument(
        "--pretrain-objectives",
        default=os.environ.get("BENCH_PRETRAIN_OBJECTIVES", "electra"),
        help="akhbar pretrain objectives to time; "
        "the first is the shipped one (Makefile: electra).",
    )
    p.add_argument(
        "--pretrain-base",
        default=os.environ.get("BENCH_PRETRAIN_BASE", "models/default/base"),
        help="Base whose config and tokenizer both pretraining ways use.",
    )
    p.add_argument("--gemm-size", type=int, default=2048, help="n of the n × n GEMMs.")
    p.add_argument(
        "--gemm-seconds", type=float, default=3.0, help="Seconds each GEMM precision runs."
    )
    p.add_argument(
        "--precision",
        default=os.environ.get("BENCH_PRECISION", ""),
        choices=("", *PRECISIONS),
        help="Precision the service computes in (auto, fp32, bf16, int8, onnx-int8; "
        "BENCH_PRECISION); default: its AKHBAR_PRECISION setting.",
    )
    p.add_argument(
        "--stages",
        default=os.environ.get("BENCH_STAGES", ",".join(STAGES)),
        help=f"Comma-separated subset of {', '.join(STAGES)}.",
    )
    p.add_argument("--seed", type=int, default=0, help="Seed of the article sample.")
    p.add_argument(
        "--out",
        default=os.environ.get("BENCH_OUT", "benchmarks/results"),
        help="Folder for latest.json and latest.md.",
    )
    p.add_argument(
        "--keep-work", default=None, help="Keep intermediate files (per-request records) here."
    )
    return p


# ---------------------------------------------------------------------------------------
# Inputs


def prepare_articles(work: Path, n: int, seed: int) -> dict:
    """The sample (JSON Lines, API shape) and the median-length test article."""
    from akhbar.models.reader import data_root, read_records

    source = data_root() / TOPIC_TEST
    rows = list(read_records(source, "topic"))

    def article(r: dict) -> dict:
        title = (r.get("title") or "").strip()
        return {
            "id": r["id"],
            "title": r.get("title"),
            "text": r["text"],
            "claims": [title] if title else [],
        }

    sample = [rows[i] for i in random.Random(seed).sample(range(len(rows)), min(n, len(rows)))]
    median = sorted(rows, key=lambda r: (len(r["text"]), str(r["id"])))[len(rows) // 2]
    with (work / "articles.jsonl").open("w", encoding="utf-8") as f:
        for r in sample:
            f.write(json.dumps(article(r), ensure_ascii=False) + "\n")
    (work / "median.jsonl").write_text(
        json.dumps(article(median), ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return {
        "source": str(source),
        "split_size": len(rows),
        "sample": len(sample),
        "seed": seed,
        "median_article": {"id": median["id"], "chars": len(median["text"])},
    }


def run_stage(stage: str, config_path: Path, work: Path) -> tuple[dict | None, str | None, float]:
    out = work / f"{stage}.json"
    started = time.monotonic()
    log("run", f"stage {stage} ...")
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH_DIR / SCRIPTS[stage]),
            "--config",
            str(config_path),
            "--out",
            str(out),
        ],
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        cwd=REPO,
    )
    seconds = time.monotonic() - started
    for line in done.stderr.splitlines():
        if line.startswith("[bench"):
            print(line, file=sys.stderr)
    if done.returncode != 0 or not out.is_file():
        log("run", f"stage {stage} FAILED after {seconds:.0f} s")
        return None, done.stderr[-4000:], seconds
    log("run", f"stage {stage} done in {seconds:.0f} s")
    return read_json(out), None, seconds


# ---------------------------------------------------------------------------------------
# Figures


def _ratio(a, b, digits: int = 2):
    return round(a / b, digits) if a and b else None


def summarize(r: dict, precision: str) -> dict:
    """The headline figures from the stage results (None where a stage is missing)."""
    service, naive, gemm, flops = r.get("service"), r.get("naive"), r.get("gemm"), r.get("flops")
    pretrain, accuracy = r.get("pretrain"), r.get("accuracy")
    out: dict = {}
    c16 = service["phases"]["c16"] if service else None
    out["service_vs_naive"] = _ratio(
        c16 and c16["articles_per_s"], naive and naive["articles_per_s"]
    )
    same = naive and naive.get("at_service_precision")
    if same:
        out["service_vs_naive_same_precision"] = _ratio(
            c16 and c16["articles_per_s"], same["articles_per_s"]
        )
    out["p50_ms_c1"] = service["phases"]["c1_median"]["latency_ms"]["p50"] if service else None
    batch = r.get("batch")
    if batch:
        out["batch_vs_service"] = _ratio(batch["articles_per_s"], c16 and c16["articles_per_s"])
    two = service and service["phases"].get("c16_2_workers")
    out["two_workers_vs_one"] = _ratio(two and two["articles_per_s"], c16 and c16["articles_per_s"])
    compute = {"precision": precision}
    if c16 and flops:
        done = [x["i"] for x in c16["results"] if x["status"] == 200]
        useful = sum(flops["articles"][i]["flops"] for i in done)
        compute["model_gflop_c16"] = round(useful / 1e9, 2)
        compute["achieved_gflops_c16"] = round(useful / c16["wall_s"] / 1e9, 2)
        compute["median_article_gflop"] = round(flops["median_article"]["flops"] / 1e9, 3)
        compute["tokens_per_article_mean"] = round(
            sum(sum(flops["articles"][i]["tokens"].values()) for i in done) / max(len(done), 1), 1
        )
    if naive and flops:
        useful = sum(a["flops"] for a in flops["articles"][: naive["articles"]])
        compute["achieved_gflops_naive"] = round(useful / naive["wall_s"] / 1e9, 2)
    if gemm:
        compute["limit_gflops"] = {k: gemm[k].get("gflops") for k in ("fp32", "bf16", "int8")}
    # Any int8 back-end (torch's or ONNX Runtime's) is held to the int8 GEMM rate.
    limit = gemm and gemm.get("int8" if precision.endswith("int8") else precision, {}).get("gflops")
    out["fraction_of_limit"] = (
        round(compute["achieved_gflops_c16"] / limit, 3)
        if limit and "achieved_gflops_c16" in compute
        else None
    )
    if limit and "achieved_gflops_naive" in compute:
        compute["naive_fraction_of_limit"] = round(compute["achieved_gflops_naive"] / limit, 3)
    out["compute"] = compute
    out["pretrain_vs_stock"] = pretrain["ratio"] if pretrain else None
    out["accuracy_guard"] = (
        {v: g["passes"] for v, g in accuracy["guard"].items()} if accuracy else None
    )
    if c16 and naive:
        by_index = {x["i"]: x for x in c16["results"] if x["status"] == 200}
        pairs = [(by_index[n["i"]], n) for n in naive["results"] if n["i"] in by_index]
        stance_pairs = [(a, b) for s, n in pairs for a, b in zip(s["stances"], n["stances"])]
        out["service_naive_agreement"] = {
            "articles": len(pairs),
            "topic": round(sum(s["topic"] == n["topic"] for s, n in pairs) / len(pairs), 4)
            if pairs
            else None,
            "stance": round(sum(a == b for a, b in stance_pairs) / len(stance_pairs), 4)
            if stance_pairs
            else None,
            "summary": round(
                sum(s.get("summary") == n["summary"] for s, n in pairs) / len(pairs), 4
            )
            if pairs
            else None,
        }
    return out


def targets(s: dict) -> dict:
    def check(key: str, higher: bool) -> dict:
        value = s.get(key)
        met = (
            None if value is None else (value >= TARGETS[key] if higher else value <= TARGETS[key])
        )
        return {
            "value": value,
            "target": (">= " if higher else "<= ") + str(TARGETS[key]),
            "met": met,
        }

    return {
        "service_vs_naive": check("service_vs_naive", True),
        "fraction_of_limit": check("fraction_of_limit", True),
        "p50_ms_c1": check("p50_ms_c1", False),
        "pretrain_vs_stock": check("pretrain_vs_stock", True),
        "two_workers_vs_one": check("two_workers_vs_one", True),
    }


def _fmt(value, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value}{suffix}"


def _workers_markdown(service: dict, ratio) -> list[str]:
    """One worker against two at concurrency 16: articles/s and the requests each served."""
    one, two = service["phases"].get("c16"), service["phases"].get("c16_2_workers")
    if not (one and two):
        return []

    def served(phase: dict) -> str:
        counts = phase.get("requests_per_worker") or {}
        return ", ".join(f"worker {w}: {n}" for w, n in counts.items()) or "not exposed"

    kinds = sorted(
        {f"{w['precision']}, {w['torch_threads']} torch thread(s) each" for w in two["workers"]}
    )
    return [
        "",
        f"**Workers at concurrency 16:** {len(service.get('workers') or [])} worker(s) "
        f"{one['articles_per_s']} articles/s ({served(one)}); {len(two['workers'])} workers "
        f"({', '.join(kinds)}; start-up {two['startup_s']} s) {two['articles_per_s']} "
        f"articles/s ({served(two)}): **{_fmt(ratio, '×')}**.",
    ]


def _time_split_markdown(phases: dict) -> list[str]:
    """Milliseconds per request by stage, per phase (a batch's scoring time is shared by its
    requests, so at concurrency 16 the stages are each request's share)."""
    split = {name: ph["time_split"] for name, ph in phases.items() if ph.get("time_split")}
    split = {name: t for name, t in split.items() if t.get("available")}
    if not split:
        return []
    stages = list(next(iter(split.values()))["ms_per_request"])
    lines = [
        "",
        "Time per request by stage (ms; `http`: in the service's middleware outside the "
        "scorer, i.e. reading, validating and answering; the scoring stages are each request's "
        "share of its batch; rest: the rest of the mean latency: waiting for a batch to start, "
        "hand-offs between threads, BentoML's outer layers, the network and the client). "
        "Contended runs inflate every figure:",
        "",
        "| phase | requests | " + " | ".join(stages) + " | sum | mean latency | rest |",
        "|---|---:|" + "---:|" * (len(stages) + 3),
    ]
    for name, t in split.items():
        cells = " | ".join(str(t["ms_per_request"][stage]) for stage in stages)
        lines.append(
            f"| {name} | {t['requests']} | {cells} | {t['stages_ms']} | "
            f"{_fmt(t['latency_mean_ms'])} | {_fmt(t['rest_ms'])} |"
        )
    return lines


def markdown(report: dict) -> str:
    m, r, s = report["machine"], report["stages"], report
    lines = [
        "# akhbar benchmark",
        "",
        f"Run {report['finished_at']} in {report['total_seconds']:.0f} s. Machine: {m['cpu']}, "
        f"{m['usable_cpus']} usable CPUs, SIMD {', '.join(m['simd']) or 'n/a'}, {m['memory_gib']} "
        f"GiB; torch {m['torch']} ({m['torch_threads_default']} threads by default); load average "
        f"at start {', '.join(map(str, m['load_average_at_start']))}.",
        "",
        "Models: "
        + ", ".join(f"{t} = `{v['version']}`" for t, v in report["models"].items())
        + ".",
        f"Articles: {report['articles']['sample']} of the {report['articles']['split_size']} topic "
        f"test articles (seed {report['articles']['seed']}), one claim each (the title); "
        f"median-length article `{report['articles']['median_article']['id']}` "
        f"({report['articles']['median_article']['chars']} characters).",
        "",
        "## Headline",
        "",
        "| figure | value | target | met |",
        "|---|---:|---:|---|",
    ]
    for key, t in report["targets"].items():
        lines.append(f"| {key} | {_fmt(t['value'])} | {t['target']} | {_fmt(t['met'])} |")
    guard = s.get("accuracy_guard")
    if guard:
        lines.append(
            f"| accuracy guard (≤ {r['accuracy']['max_loss_points']} points lost) | "
            + ", ".join(f"{v}: {'pass' if ok else 'FAIL'}" for v, ok in guard.items())
            + " | | |"
        )

    service = r.get("service")
    if service:
        lines += [
            "",
            "## Service (`POST /analyze`, one article per request)",
            "",
            "| phase | concurrency | requests ok | articles/s | p50 ms | p95 ms | p99 ms "
            "| batches formed (mean size; sizes: count) | requests per worker "
            "| load generator CPU (share of a core) | server CPU (cores) |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
        ]
        for name, ph in service["phases"].items():
            b = ph["batches"]
            batches = (
                (
                    f"{b['batches']} ({b['mean_batch_size']}; "
                    + ", ".join(f"{k}: {v}" for k, v in b["sizes"].items())
                    + ")"
                )
                if b.get("available")
                else "not exposed"
            )
            lat = ph["latency_ms"]
            served = ph.get("requests_per_worker") or {}
            per_worker = ", ".join(f"{w}: {n}" for w, n in served.items()) or "not exposed"
            lines.append(
                f"| {name} | {ph['concurrency']} | {ph['ok']}/{ph['requests']} | "
                f"{ph['articles_per_s']} | {lat['p50']} | {lat['p95']} | {lat['p99']} | {batches} "
                f"| {per_worker} | {ph['client_cpu_share_of_one_core']} "
                f"| {ph['server_cpu_cores']} |"
            )
        errors = {n: ph["errors"] for n, ph in service["phases"].items() if ph["errors"]}
        if errors:
            lines += ["", f"Errors: {json.dumps(errors)}."]
        workers = service.get("workers") or []
        kinds = sorted(
            {f"{w['precision']} with {w['torch_threads']} torch thread(s)" for w in workers}
        )
        lines += [
            "",
            f"Server start-up {service['startup_s']} s; {len(workers)} worker(s): "
            f"{', '.join(kinds) or 'n/a'}.",
        ]
        lines += _workers_markdown(service, s.get("two_workers_vs_one"))
        lines += _time_split_markdown(service["phases"])
    naive = r.get("naive")
    if naive:
        lat = naive["latency_ms"]
        lines += [
            "",
            "## Naive baseline "
            "(same models, one article at a time, one pass per window, no padding)",
            "",
            f"{naive['articles']} articles in {naive['wall_s']} s: **{naive['articles_per_s']} "
            f"articles/s**; latency p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms; "
            f"{naive['forward_passes']['per_article_mean']} forward passes per article "
            f"({naive['forward_passes']['articles_with_exactly_3']} articles with exactly 3); "
            f"{naive['torch_threads']} torch threads, {naive['precision']}.",
            "",
            f"**Service ÷ naive at concurrency 16: {_fmt(s['service_vs_naive'], '×')}.**",
        ]
        same = naive.get("at_service_precision")
        if same:
            lines.append(
                f"The same loop in the service's precision ({same['precision']}): "
                f"{same['articles_per_s']} articles/s, p50 {same['latency_ms']['p50']} ms; service "
                f"÷ that loop: {_fmt(s.get('service_vs_naive_same_precision'), '×')} (the part of "
                "the lead that is not arithmetic)."
            )
        agreement = s.get("service_naive_agreement")
        if agreement:
            lines.append(
                f"Same answers from both on {agreement['articles']} articles (share): topic "
                f"{agreement['topic']}, stance {agreement['stance']}, summary sentences "
                f"{agreement['summary']} (they differ by padding, summation order and the "
                "service's precision)."
            )
    batch = r.get("batch")
    if batch:
        lines += [
            "",
            "## Batch scoring (`akhbar score`, local engine, no HTTP)",
            "",
            f"{batch['articles']} articles in {batch['wall_s']} s (models loaded in "
            f"{batch['load_s']} s, apart): **{batch['articles_per_s']} articles/s**, "
            f"{batch['batch_size']} articles per call, {batch['precision']}; "
            f"÷ the service at concurrency 16: {_fmt(s.get('batch_vs_service'), '×')}.",
        ]
    compute = s.get("compute", {})
    gemm = r.get("gemm")
    if gemm or compute:
        lines += ["", "## Compute limit", ""]
        if gemm:
            lines += [
                f"Sustained GEMM rate, {gemm['size']}×{gemm['size']}, {gemm['threads']} threads, "
                f"{gemm['seconds_each']} s each (median product; best in brackets):",
                "",
                "| precision | GFLOP/s (int8: GOP/s) "
                "| at the encoder's feed-forward shape (4096 tokens) |",
                "|---|---:|---:|",
            ]
            for k in ("fp32", "bf16", "int8"):
                g, small = gemm[k], gemm.get("encoder_shape", {}).get(k, {})
                narrow = (
                    f"{small['gflops']} ({small['best_gflops']})"
                    if small.get("available")
                    else "n/a"
                )
                lines.append(
                    f"| {k} | {g['gflops']} ({g['best_gflops']}) | {narrow} |"
                    if g.get("available")
                    else f"| {k} | unavailable: {g.get('note')} | {narrow} |"
                )
        lines += [
            "",
            f"Service precision: **{compute.get('precision')}**. Model FLOPs on the real tokens of "
            f"the articles the c16 phase scored: {_fmt(compute.get('model_gflop_c16'))} GFLOP "
            f"({_fmt(compute.get('tokens_per_article_mean'))} tokens per article, median-length "
            f"article {_fmt(compute.get('median_article_gflop'))} GFLOP); achieved "
            f"{_fmt(compute.get('achieved_gflops_c16'))} GFLOP/s at c16 = "
            f"**{_fmt(s['fraction_of_limit'])} of the {compute.get('precision')} limit** (naive "
            f"loop: {_fmt(compute.get('achieved_gflops_naive'))} GFLOP/s, "
            f"{_fmt(compute.get('naive_fraction_of_limit'))}).",
        ]
    accuracy = r.get("accuracy")
    if accuracy:
        names = list(accuracy["records"])
        lines += [
            "",
            f"## Accuracy guard ({accuracy['subset']})",
            "",
            "| variant | "
            + " | ".join(f"{n} (n={accuracy['records'][n]})" for n in names)
            + " | worst Δ (points) | passes |",
            "|---|" + "---:|" * len(names) + "---:|---|",
        ]
        for variant, sets in accuracy["variants"].items():
            g = accuracy["guard"].get(variant)
            cells = [
                f"{sets[n]['metric']} {sets[n]['value']:.4f} ({sets[n]['records_per_s']}/s)"
                for n in names
            ]
            lines.append(
                f"| {variant} | "
                + " | ".join(cells)
                + " | "
                + (
                    f"{g['worst_delta_points']} | {'yes' if g['passes'] else 'NO'} |"
                    if g
                    else "reference | |"
                )
            )
    pretrain = r.get("pretrain")
    if pretrain:
        lines += [
            "",
            f"## Pretraining ({pretrain['batch']} × {pretrain['seq_len']} token slots per batch, "
            f"{pretrain['precision']}, config of `{pretrain['base']}`)",
            "",
            "| way | non-padding tokens/s | padding share | steps timed |",
            "|---|---:|---:|---:|",
        ]
        for row in pretrain["rows"].values():
            lines.append(
                f"| {row['way']} | {row['tokens_per_s']} | {row['padding_share']} | "
                f"{row['steps_measured']} |"
            )
        lines += [
            "",
            f"**akhbar pretrain ({pretrain['shipped_objective']}) ÷ stock: "
            f"{_fmt(pretrain['ratio'], '×')}.**",
        ]
    if report["failed"]:
        lines += ["", "## Failed stages", ""] + [
            f"- {k}: see `failures` in latest.json" for k in report["failed"]
        ]
    lines += [
        "",
        "Stage times (s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in report["stage_seconds"].items())
        + ".",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        build_parser().error(
            f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}"
        )
    started = time.monotonic()
    work = Path(args.keep_work or tempfile.mkdtemp(prefix="akhbar-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        info = machine()
        from akhbar.serving.core.store import ModelStoreError

        # The bench measures capacity: 16 callers in a closed loop may find more than the
        # default second of work ahead (AKHBAR_MAX_WAIT), and shedding is make loadtest's
        # subject, so admission waits as long as a request may take.
        server_env = {"AKHBAR_MAX_WAIT": "60"}
        if args.precision:
            server_env["AKHBAR_PRECISION"] = args.precision
        try:
            worker = service_settings(server_env).runtime()  # as each server worker resolves it
            models = resolve_models()
        except (ValueError, ModelStoreError) as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        articles = prepare_articles(work, args.articles, args.seed)
        precision = worker.precision
        log(
            "run",
            f"{articles['sample']} articles; models: "
            + ", ".join(f"{t}={v['version']}" for t, v in models.items()),
        )
        config = {
            "work": str(work),
            "models": models,
            "articles": str(work / "articles.jsonl"),
            "median_article": str(work / "median.jsonl"),
            "c1_articles": args.c1_articles,
            "median_repeats": args.median_repeats,
            "warmup_articles": args.warmup_articles,
            "model_batch_size": worker.model_batch_size,
            "accuracy_limit": args.accuracy_limit,
            "variants": [v for v in args.variants.split(",") if v.strip()],
            "max_loss_points": 0.5,
            "pretrain_steps": args.pretrain_steps,
            "pretrain_objectives": [o for o in args.pretrain_objectives.split(",") if o.strip()],
            "pretrain_base": args.pretrain_base,
            "pretrain_texts": 1000,
            "gemm_size": args.gemm_size,
            "gemm_seconds": args.gemm_seconds,
            "server_env": server_env,
            "precision": precision,
        }
        config_path = work / "config.json"
        write_json(config_path, config)
        results, failures, seconds = {}, {}, {}
        for stage in (s for s in STAGES if s in stages):
            result, error, seconds[stage] = run_stage(stage, config_path, work)
            if error is not None:
                failures[stage] = error
                continue
            results[stage] = result
        summary = summarize(results, precision)
        headline = {k: summary.pop(k) for k in HEADLINE}
        report = {
            **headline,
            "machine": info,
            "targets": targets(headline),
            **summary,
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "total_seconds": round(time.monotonic() - started, 1),
            "stage_seconds": {k: round(v, 1) for k, v in seconds.items()},
            "knobs": {k: v for k, v in vars(args).items() if k not in ("out", "keep_work")},
            "models": models,
            "articles": articles,
            "failed": sorted(failures),
            "failures": failures,
            "stages": {k: _slim(k, v) for k, v in results.items()},
        }
        out = Path(args.out)
        write_json(out / "latest.json", report)
        (out / "latest.md").write_text(markdown(report), encoding="utf-8")
        log(
            "run",
            f"wrote {out / 'latest.json'} and {out / 'latest.md'} "
            f"in {report['total_seconds']:.0f} s",
        )
        print(markdown(report))
        return 1 if failures else 0
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)


def _slim(stage: str, result: dict) -> dict:
    """Stage results without the per-request and per-article lists (kept with --keep-work)."""
    result = json.loads(json.dumps(result))
    if stage == "service":
        for phase in result["phases"].values():
            phase.pop("results", None)
    elif stage == "naive":
        result.pop("results", None)
    elif stage == "flops":
        result["articles"] = len(result["articles"])
    return result


if __name__ == "__main__":
    sys.exit(main())
