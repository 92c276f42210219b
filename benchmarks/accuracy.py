"""Stage ``accuracy``: the accuracy guard. Every faster variant against fp32, on validation.

Each variant is a ``precision`` of :class:`~akhbar.models.predict.Predictor`, the service's
scoring path (:mod:`akhbar.models.precision`), on the same loaded bundles:

* ``fp32``: the bundles as trained (the reference);
* ``int8``: dynamic quantisation of the encoder's linear layers (int8 weights, activations
  quantised per batch at run time);
* ``bf16``: the encoder under bf16 autocast, heads and fusions in fp32;
* ``onnx-int8``: the encoder on ONNX Runtime, fused (attention, layer norms, GELU) and int8;
  heads and fusions in torch, fp32.

Each is scored with batch size ``AKHBAR_MODEL_BATCH_SIZE`` and the metrics training reports:

* topic: macro-F1 on ``topic/ant_v2.1_multisource`` validation;
* stance: macro-F1 on ``stance/unifiedfc_baly2018`` and ``stance/ans_khouja2020`` validation
  (ANS on its native labels, as ``akhbar evaluate`` folds them);
* summary: ROUGE-L (F, k = 1 sentence, as ``make eval``) on ``summary/ant_bbc`` validation.

A variant passes when it loses at most ``max_loss_points`` (0.5) points on every set.
``accuracy_limit`` > 0 scores a seeded random subset of that many records per set (the
same records for every variant) instead of the whole split.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import log, read_json, stage_args, write_json  # noqa: E402

from akhbar.models.bundle import load_bundle  # noqa: E402
from akhbar.models.precision import resolve_precision  # noqa: E402
from akhbar.models.predict import Predictor  # noqa: E402
from akhbar.models.reader import data_root, read_records  # noqa: E402
from akhbar.training.evaluate import label_task  # noqa: E402
from akhbar.training.metrics import macro_f1  # noqa: E402
from akhbar.training.rouge import rouge_scores, scorer  # noqa: E402

SETS = (  # (name, task, dataset folder, metric)
    ("topic", "topic", "topic/ant_v2.1_multisource", "macro_f1"),
    ("stance_unifiedfc", "stance", "stance/unifiedfc_baly2018", "macro_f1"),
    ("stance_ans", "stance", "stance/ans_khouja2020", "macro_f1"),
    ("summary_ant_bbc", "summary", "summary/ant_bbc", "rougeL"),
)
SUMMARY_K = 1
WARMUP = 4  # records per set scored untimed before each variant's timed pass


def records(dataset: str, task: str, limit: int, seed: int = 0) -> list[dict]:
    rows = list(read_records(data_root() / dataset, task, split="validation"))
    if 0 < limit < len(rows):
        rows = [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), limit))]
    return rows


def score_set(predictor: Predictor, task: str, rows: list[dict], metric: str) -> float:
    if metric == "rougeL":
        refs = [r.get("summaries") or [r["summary"]] for r in rows]
        picks = predictor.summary(
            [r["text"] for r in rows], k=SUMMARY_K, titles=[r.get("title") for r in rows]
        )
        rouge = scorer()
        return float(
            np.mean(
                [
                    rouge_scores(" ".join(s.text for s in p.sentences), ref, rouge)["rougeL"]
                    for p, ref in zip(picks, refs)
                ]
            )
        )
    gold, pred, _, _ = label_task(task, rows, predictor)
    names = sorted(set(gold) | set(pred))
    index = {n: i for i, n in enumerate(names)}
    return macro_f1(np.array([index[g] for g in gold]), np.array([index[p] for p in pred]))


def main() -> int:
    args = stage_args(__doc__.split("\n\n")[0])
    config = read_json(args.config)
    variants = ["fp32"] + [v for v in config["variants"] if v != "fp32"]
    batch_size = config["model_batch_size"]
    data = {
        name: records(dataset, task, config["accuracy_limit"]) for name, task, dataset, _ in SETS
    }
    bundles = {}  # a bundle shared by several tasks is loaded once
    for ref in config["models"].values():
        if ref["path"] not in bundles:
            bundles[ref["path"]] = load_bundle(ref["path"])
    results: dict[str, dict] = {}
    for variant in variants:
        # One predictor per bundle: a bundle shared by several tasks is converted once.
        predictors = {
            path: Predictor(bundle, batch_size=batch_size, precision=resolve_precision(variant))
            for path, bundle in bundles.items()
        }
        results[variant] = {}
        for name, task, _, metric in SETS:  # untimed first calls: allocation, lazy imports
            score_set(predictors[config["models"][task]["path"]], task, data[name][:WARMUP], metric)
        for name, task, _, metric in SETS:
            started = time.perf_counter()
            value = score_set(predictors[config["models"][task]["path"]], task, data[name], metric)
            seconds = time.perf_counter() - started
            results[variant][name] = {
                "metric": metric,
                "value": round(value, 4),
                "seconds": round(seconds, 2),
                "records_per_s": round(len(data[name]) / seconds, 2),
            }
            log("accuracy", f"{variant} {name}: {metric} {value:.4f} ({seconds:.1f} s)")
    limit = config["max_loss_points"]
    guard = {}
    for variant in variants[1:]:
        deltas = {
            name: round(100 * (results[variant][name]["value"] - results["fp32"][name]["value"]), 2)
            for name, *_ in SETS
        }
        guard[variant] = {
            "delta_points": deltas,
            "worst_delta_points": min(deltas.values()),
            "passes": all(d >= -limit for d in deltas.values()),
        }
    write_json(
        args.out,
        {
            "records": {name: len(rows) for name, rows in data.items()},
            "subset": "full validation splits"
            if config["accuracy_limit"] <= 0
            else f"seeded random {config['accuracy_limit']} records per validation split (seed 0)",
            "max_loss_points": limit,
            "variants": results,
            "guard": guard,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
