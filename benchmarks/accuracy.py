"""Stage ``accuracy``: the accuracy guard. Every faster variant against fp32, on validation.

Each variant wraps the same loaded bundles without touching ``models/``:

* ``fp32``: the bundles as the service runs them (the reference);
* ``int8``: ``torch.ao.quantization.quantize_dynamic`` of every ``nn.Linear`` (int8 weights,
  activations quantised per batch at run time; works on torch 2.13 with a deprecation
  warning in favour of torchao);
* ``bf16``: the encoder under ``torch.autocast("cpu", dtype=torch.bfloat16)``, heads in fp32.

Each is scored through :class:`~akhbar.models.predict.Predictor` (the service's scoring path,
batch size ``AKHBAR_MODEL_BATCH_SIZE``) with the metrics training reports:

* topic: macro-F1 on ``topic/ant_v2.1_multisource`` validation;
* stance: macro-F1 on ``stance/unifiedfc_baly2018`` and ``stance/ans_khouja2020`` validation
  (ANS on its native labels, as ``akhbar evaluate`` folds them);
* summary: ROUGE-L (F, k = 1 sentence, as ``make eval``) on ``summary/ant_bbc`` validation.

A variant passes when it loses at most ``max_loss_points`` (0.5) points on every set.
``accuracy_limit`` > 0 scores a seeded random subset of that many records per set (the
same records for every variant) instead of the whole split.
"""

from __future__ import annotations

import copy
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import log, read_json, stage_args, write_json  # noqa: E402

from akhbar.models.bundle import load_bundle  # noqa: E402
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
VARIANTS = ("fp32", "int8", "bf16")


def records(dataset: str, task: str, limit: int, seed: int = 0) -> list[dict]:
    rows = list(read_records(data_root() / dataset, task, split="validation"))
    if 0 < limit < len(rows):
        rows = [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), limit))]
    return rows


def variant_model(model: torch.nn.Module, variant: str) -> torch.nn.Module:
    """A copy of ``model`` (an AkhbarModel) that computes in ``variant``'s precision."""
    if variant == "fp32":
        return model
    if variant == "int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    if variant == "bf16":
        wrapped = copy.copy(model)  # shares the weights; only this copy's encode changes
        encode = model.encode

        def encode_bf16(*args, **kwargs):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return encode(*args, **kwargs).float()

        wrapped.encode = encode_bf16
        return wrapped
    raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")


def score_set(predictor: Predictor, task: str, rows: list[dict], metric: str) -> float:
    if metric == "rougeL":
        refs = [r.get("summaries") or [r["summary"]] for r in rows]
        picks = predictor.summary([r["text"] for r in rows], k=SUMMARY_K)
        rouge = scorer()
        return float(np.mean([rouge_scores(" ".join(s.text for s in p.sentences), ref, rouge)["rougeL"]
                              for p, ref in zip(picks, refs)]))
    gold, pred, _ = label_task(task, rows, predictor)
    names = sorted(set(gold) | set(pred))
    index = {n: i for i, n in enumerate(names)}
    return macro_f1(np.array([index[g] for g in gold]), np.array([index[p] for p in pred]))


def main() -> int:
    args = stage_args(__doc__.split("\n\n")[0])
    config = read_json(args.config)
    variants = ["fp32"] + [v for v in config["variants"] if v != "fp32"]
    batch_size = config["model_batch_size"]
    data = {name: records(dataset, task, config["accuracy_limit"]) for name, task, dataset, _ in SETS}
    bundles = {}  # a bundle shared by several tasks is loaded once
    for ref in config["models"].values():
        if ref["path"] not in bundles:
            bundles[ref["path"]] = load_bundle(ref["path"])
    results: dict[str, dict] = {}
    for variant in variants:
        # One variant copy per bundle: a bundle shared by several tasks is converted once.
        predictors = {}
        for path, bundle in bundles.items():
            predictor = Predictor(bundle, batch_size=batch_size)
            predictor.model = variant_model(bundle.model, variant)
            predictors[path] = predictor
        results[variant] = {}
        for name, task, _, metric in SETS:  # untimed first calls: allocation, lazy imports
            score_set(predictors[config["models"][task]["path"]], task, data[name][:WARMUP], metric)
        for name, task, _, metric in SETS:
            started = time.perf_counter()
            value = score_set(predictors[config["models"][task]["path"]], task, data[name], metric)
            seconds = time.perf_counter() - started
            results[variant][name] = {"metric": metric, "value": round(value, 4), "seconds": round(seconds, 2),
                                      "records_per_s": round(len(data[name]) / seconds, 2)}
            log("accuracy", f"{variant} {name}: {metric} {value:.4f} ({seconds:.1f} s)")
    limit = config["max_loss_points"]
    guard = {}
    for variant in variants[1:]:
        deltas = {name: round(100 * (results[variant][name]["value"] - results["fp32"][name]["value"]), 2)
                  for name, *_ in SETS}
        guard[variant] = {"delta_points": deltas, "worst_delta_points": min(deltas.values()),
                          "passes": all(d >= -limit for d in deltas.values())}
    write_json(args.out, {
        "records": {name: len(rows) for name, rows in data.items()},
        "subset": "full validation splits" if config["accuracy_limit"] <= 0
        else f"seeded random {config['accuracy_limit']} records per validation split (seed 0)",
        "max_loss_points": limit,
        "variants": results,
        "guard": guard,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
