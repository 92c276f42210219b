"""The benchmark harness's pure parts (benchmarks/): FLOP counting, the batch-size
histogram, the headline figures and the table. The stages themselves run in `make bench`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import flops  # noqa: E402
import run  # noqa: E402
import service  # noqa: E402


def test_encoder_flops_counts_projections_ffn_and_attention():
    # 1 layer, h=2, i=4, L=3: 3 tokens * 2*(4*4 + 2*2*4) + 4*9*2
    assert flops.encoder_flops(3, hidden=2, intermediate=4, layers=1) == 3 * 2 * (16 + 16) + 72
    assert flops.encoder_flops(3, 2, 4, layers=4) == 4 * flops.encoder_flops(3, 2, 4, 1)


def test_batch_sizes_are_the_histogram_difference():
    before = {
        "le=1.0": 2,
        "le=2.0": 2,
        "le=4.0": 2,
        "le=8.0": 2,
        "le=+Inf": 2,
        "sum": 2,
        "count": 2,
    }
    after = {
        "le=1.0": 3,
        "le=2.0": 4,
        "le=4.0": 4,
        "le=8.0": 6,
        "le=+Inf": 6,
        "sum": 2 + 1 + 2 + 7 + 8,
        "count": 6,
    }
    got = service.batch_sizes(before, after)
    assert got == {
        "available": True,
        "batches": 4,
        "requests": 18,
        "mean_batch_size": 4.5,
        "sizes": {"1": 1, "2": 1, "5-8": 2},
    }
    assert service.batch_sizes({}, {}) == {"available": False}


def test_headline_figures_and_table():
    phase = {
        "concurrency": 16,
        "requests": 2,
        "ok": 2,
        "errors": {},
        "wall_s": 1.0,
        "articles_per_s": 2.0,
        "latency_ms": {"p50": 50.0, "p95": 60.0, "p99": 61.0},
        "client_cpu_share_of_one_core": 0.1,
        "server_cpu_cores": 1.9,
        "batches": {"available": False},
        "results": [
            {"i": 0, "status": 200, "topic": "sport", "stances": ["agree"], "summary": [0, 2]},
            {"i": 1, "status": 200, "topic": "economy", "stances": [], "summary": [1]},
        ],
    }
    results = {
        "service": {
            "startup_s": 5.0,
            "workers": [{"precision": "bf16", "torch_threads": 1}] * 2,
            "phases": {"c1_median": phase, "c16": phase},
        },
        "naive": {
            "articles": 2,
            "wall_s": 4.0,
            "articles_per_s": 0.5,
            "latency_ms": phase["latency_ms"],
            "torch_threads": 2,
            "forward_passes": {"per_article_mean": 3.0, "articles_with_exactly_3": 2},
            "results": [
                {"i": 0, "topic": "sport", "stances": ["agree"], "summary": [0, 2]},
                {"i": 1, "topic": "sport", "stances": [], "summary": [0]},
            ],
        },
        "gemm": {
            "size": 8,
            "threads": 2,
            "seconds_each": 1,
            "fp32": {"available": True, "gflops": 100.0, "best_gflops": 110.0},
            "bf16": {"available": False, "note": "n/a"},
            "int8": {"available": False, "note": "n/a"},
        },
        "flops": {
            "articles": [
                {"flops": 30e9, "tokens": {"topic": 10}},
                {"flops": 10e9, "tokens": {"topic": 30}},
            ],
            "median_article": {"flops": 20e9},
        },
        "batch": {
            "articles": 2,
            "rejected": 0,
            "batch_size": 32,
            "precision": "fp32",
            "load_s": 3.0,
            "wall_s": 0.5,
            "articles_per_s": 4.0,
        },
    }
    summary = run.summarize(results, "fp32")
    assert summary["service_vs_naive"] == 4.0
    assert summary["batch_vs_service"] == 2.0
    assert summary["p50_ms_c1"] == 50.0
    assert summary["fraction_of_limit"] == 0.4  # 40 GFLOP in 1 s against 100 GFLOP/s
    assert summary["service_naive_agreement"] == {
        "articles": 2,
        "topic": 0.5,
        "stance": 1.0,
        "summary": 0.5,
    }
    assert run.targets(summary)["service_vs_naive"] == {
        "value": 4.0,
        "target": ">= 3.0",
        "met": True,
    }
    assert run.targets(summary)["p50_ms_c1"] == {"value": 50.0, "target": "<= 40.0", "met": False}


def test_the_service_stage_resolves_each_workers_runtime_from_the_servers_environment(monkeypatch):
    """No log parsing: the configuration code each worker runs, on the environment it gets."""
    for name in [k for k in os.environ if k.startswith("AKHBAR_")]:
        monkeypatch.delenv(name)
    server_env = {"AKHBAR_PRECISION": "int8", "AKHBAR_WORKERS": "2", "AKHBAR_TORCH_THREADS": "3"}
    assert service._workers(server_env) == [{"precision": "int8", "torch_threads": 3}] * 2
    cores = len(os.sched_getaffinity(0))
    assert service._workers({"AKHBAR_PRECISION": "fp32"}) == [
        {"precision": "fp32", "torch_threads": cores}
    ]


def test_requests_per_worker_and_the_time_split_are_differences_over_a_phase():
    before = {
        "requests": {"1": 5.0},
        "stages": {"http": 0.1, "preprocess": 1.0, "encoder": 2.0, "postprocess": 0.5},
    }
    after = {  # worker 2 loaded later: absent before
        "requests": {"1": 7.0, "2": 2.0},
        "stages": {
            "http": 0.14,
            "preprocess": 1.2,
            "encoder": 2.4,
            "side_models": 0.08,
            "postprocess": 0.58,
        },
    }
    assert service.per_worker(before["requests"], after["requests"]) == {"1": 2, "2": 2}
    split = service.time_split(before, after, latency_mean_ms=250.0)
    assert split["requests"] == 4
    assert split["ms_per_request"] == {
        "http": 10.0,
        "preprocess": 50.0,
        "encoder": 100.0,
        "side_models": 20.0,
        "postprocess": 20.0,
    }
    assert (split["stages_ms"], split["rest_ms"]) == (200.0, 50.0)
    assert service.time_split(before, before, 1.0) == {"available": False}  # no requests
    lines = run._time_split_markdown({"c16": {"time_split": split}, "c1": {}})
    assert lines[-1] == "| c16 | 4 | 10.0 | 50.0 | 100.0 | 20.0 | 20.0 | 200.0 | 250.0 | 50.0 |"


def test_two_workers_against_one_is_a_headline_figure_with_its_target():
    def phase(rate: float, served: dict) -> dict:
        return {
            "articles_per_s": rate,
            "latency_ms": {"p50": 10.0},
            "results": [],
            "requests_per_worker": served,
        }

    service_result = {
        "workers": [{"precision": "fp32", "torch_threads": 2}],
        "phases": {
            "c1_median": phase(1.0, {"1": 1}),
            "c16": phase(10.0, {"1": 32}),
            "c16_2_workers": phase(12.0, {"1": 17, "2": 15}),
        },
    }
    summary = run.summarize({"service": service_result}, "fp32")
    assert summary["two_workers_vs_one"] == 1.2
    assert run.targets(summary)["two_workers_vs_one"] == {
        "value": 1.2,
        "target": ">= 1.0",
        "met": True,
    }
    service_result["phases"]["c16_2_workers"]["workers"] = [
        {"precision": "fp32", "torch_threads": 1}
    ] * 2
    service_result["phases"]["c16_2_workers"]["startup_s"] = 9.0
    [_, line] = run._workers_markdown(service_result, summary["two_workers_vs_one"])
    assert "(worker 1: 17, worker 2: 15): **1.2×**" in line
