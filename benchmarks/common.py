"""What every benchmark stage shares: paths, the machine's description, JSON files, models.

The stages are plain scripts (``python benchmarks/<stage>.py --config CONFIG --out OUT``)
that :mod:`run` starts one after another, each in a process of its own, so that one stage's
threads, caches and memory never colour another's figures. ``CONFIG`` is the JSON file
``run.py`` writes once per run (models, article files, knobs); ``OUT`` is the stage's result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from akhbar.serving.http.settings import ServiceSettings

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "benchmarks"
TOPIC_TEST = "topic/ant_v2.1_multisource/test.jsonl.gz"


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_jsonl(path: str | Path) -> list[dict]:
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def stage_args(description: str) -> argparse.Namespace:
    """``--config`` and ``--out``, the two arguments every stage takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--config", required=True, help="The run's config.json (written by run.py)."
    )
    parser.add_argument("--out", required=True, help="Where this stage writes its JSON result.")
    return parser.parse_args()


def percentiles_ms(seconds: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/mean/max of latencies given in seconds, in milliseconds."""
    import numpy as np

    if not seconds:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    ms = np.asarray(seconds) * 1000
    return {
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p95": round(float(np.percentile(ms, 95)), 1),
        "p99": round(float(np.percentile(ms, 99)), 1),
        "mean": round(float(ms.mean()), 1),
        "max": round(float(ms.max()), 1),
    }


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "flags", "cpu cores") and key not in info:
                info[key] = value.strip()
    except OSError:
        pass
    return info


def machine() -> dict[str, Any]:
    """CPU model, cores, SIMD features, memory, torch version and threads:
    what the figures depend on."""
    import torch

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    try:
        mem_kib = int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
    except (OSError, StopIteration, ValueError):
        mem_kib = 0
    return {
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cores_per_socket": int(info["cpu cores"]) if info.get("cpu cores", "").isdigit() else None,
        "simd": [f for f in wanted if f in flags],
        "memory_gib": round(mem_kib / 2**20, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def service_settings(server_env: dict[str, str]) -> ServiceSettings:
    """The settings the benchmarked server runs with: this environment with the run's
    ``server_env`` on top, exactly as the ``service`` stage starts it. Stages resolve the
    scoring runtime from these (precision, torch threads, k), as the server's workers do;
    a bad value raises ValueError naming its variable."""
    from akhbar.serving.http.settings import ServiceSettings

    return ServiceSettings.from_env({**os.environ, **server_env})


def resolve_models() -> dict[str, dict[str, str]]:
    """``{task: {"path", "version"}}``: the bundles the service would load.

    ``AKHBAR_<TASK>_MODEL`` (a directory or a store tag), else the promoted model, else the
    shipped default (imported into the BentoML store on first use, as ``akhbar serve`` does).
    """
    from akhbar.serving.core.config import ScoringConfig

    refs = ScoringConfig.from_env().resolve_models()
    return {t: {"path": str(r.path), "version": r.version} for t, r in refs.items()}


def load_predictors(models: dict[str, dict[str, str]], precision: str) -> dict:
    """``{task: Predictor}`` computing in ``precision`` (fp32, bf16 or int8); a bundle shared by
    several tasks is loaded once."""
    from akhbar.models.bundle import load_bundle
    from akhbar.models.predict import Predictor

    loaded: dict[str, Any] = {}
    out = {}
    for task, ref in models.items():
        if ref["path"] not in loaded:
            loaded[ref["path"]] = Predictor(load_bundle(ref["path"]), precision=precision)
        out[task] = loaded[ref["path"]]
    return out


def log(stage: str, message: str) -> None:
    print(f"[bench {stage}] {message}", file=sys.stderr, flush=True)
