"""Leave-one-outlet-out topic estimate: how topic holds up on an outlet it never saw.

For each outlet in the topic data: fine-tune the topic model (the task's YAML recipe, with
the overrides given on the command line, e.g. fewer steps) on the train and validation
articles of the *other* outlets, then score the held-out outlet's test articles on the
coarse labels (internationalNews and middleEast fold into politics, the data's
``label_coarse``), beside the TF-IDF baseline trained on the same articles. Pooled over
outlets, this is the unseen-outlet figure::

    python -m akhbar.training.outlets --report reports/topic-outlets --max_steps 400

Writes ``metrics.json`` and ``report.md``; the per-outlet runs go to ``work/outlets/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from akhbar.models.bundle import load_bundle
from akhbar.models.inputs import topic_inputs
from akhbar.models.predict import Predictor
from akhbar.models.reader import read_records
from akhbar.models.tasks import coarse_topic
from akhbar.training.baselines import fit_predict_tfidf
from akhbar.training.finetune import parse_args, resolve_data, run
from akhbar.training.metrics import bootstrap_ci, bootstrap_diff_ci, macro_f1

WORK = Path("work/outlets")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def held_out(outlet: str, splits: dict[str, list[dict]], overrides: list[str]) -> dict:
    """Train without ``outlet``; coarse labels and predictions on its test articles."""
    folder = WORK / outlet.replace(" ", "_")
    for split in ("train", "validation"):
        write_jsonl(folder / "data" / f"{split}.jsonl", [r for r in splits[split] if r.get("outlet") != outlet])
    [cfg] = parse_args(["topic", *overrides, "--data", str(folder / "data"), "--output_dir", str(folder / "run")])
    predictor = Predictor(load_bundle(run(cfg).bundle))
    test = [r for r in splits["test"] if r.get("outlet") == outlet]
    train = [r for r in splits["train"] if r.get("outlet") != outlet]
    model = predictor.topic([r["text"] for r in test], [r.get("title") for r in test])
    tfidf = fit_predict_tfidf(topic_inputs([r["text"] for r in train], [r.get("title") for r in train]),
                              np.array([r["label"] for r in train]),
                              topic_inputs([r["text"] for r in test], [r.get("title") for r in test]))
    return {"gold": [r["label_coarse"] for r in test], "model": [coarse_topic(p.label) for p in model],
            "tfidf": [coarse_topic(str(label)) for label in tfidf]}


def figures(gold: list[str], model: list[str], tfidf: list[str]) -> dict:
    names = sorted(set(gold) | set(model) | set(tfidf))
    index = {n: i for i, n in enumerate(names)}
    y, a, b = (np.array([index[v] for v in values]) for values in (gold, model, tfidf))
    return {"n": len(y), "model": macro_f1(y, a), "model_ci": bootstrap_ci(y, a), "tfidf": macro_f1(y, b),
            "diff_ci": bootstrap_diff_ci(y, a, b)}


def markdown(metrics: dict) -> str:
    lines = ["# Topic on unseen outlets (leave one outlet out, coarse labels)", "",
             f"Recipe: `akhbar train topic {' '.join(metrics['overrides'])}` without the held-out outlet; "
             "scored on its test articles.", "",
             "| held-out outlet | n | model macro-F1 | TF-IDF | model − TF-IDF (95% CI) |", "|---|---|---|---|---|"]
    for name, f in [*metrics["outlets"].items(), ("**pooled**", metrics["pooled"])]:
        lines.append(f"| {name} | {f['n']} | {f['model']:.3f} | {f['tfidf']:.3f} | "
                     f"[{f['diff_ci'][0]:+.3f}, {f['diff_ci'][1]:+.3f}] |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m akhbar.training.outlets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="topic/ant_v2.1_multisource")
    parser.add_argument("--report", required=True)
    args, overrides = parser.parse_known_args(argv)
    source = resolve_data(args.data)
    splits = {s: list(read_records(source, "topic", split=s)) for s in ("train", "validation", "test")}
    outlets = sorted({r["outlet"] for r in splits["test"] if r.get("outlet")})
    if not outlets:
        parser.error(f"{args.data} has no 'outlet' field to hold out")
    results = {outlet: held_out(outlet, splits, overrides) for outlet in outlets}
    metrics = {"data": args.data, "overrides": overrides,
               "outlets": {o: figures(r["gold"], r["model"], r["tfidf"]) for o, r in results.items()},
               "pooled": figures(*([v for r in results.values() for v in r[key]] for key in ("gold", "model", "tfidf")))}
    out = Path(args.report)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "report.md").write_text(markdown(metrics))
    print(markdown(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
