"""Leave-one-outlet-out topic estimate: how topic holds up on an outlet it never saw.

For each outlet in the topic data, both systems get the same articles, the train and
validation splits of the *other* outlets:

- the model fine-tunes the shipped base with the shipped topic recipe (``training/configs/
  topic.yaml``: lengths, windows, TF-IDF fusion) on their train split, and uses their
  validation split for early stopping, calibration and the fusion's stacker;
- the TF-IDF baseline fits on train and validation together.

Each then scores the held-out outlet's test articles on the coarse labels (internationalNews
and middleEast fold into politics, the data's ``label_coarse``). Pooled over outlets, this is
the unseen-outlet figure (``make eval-outlets``, hours on 2 cores)::

    python -m akhbar.training.unseen_outlets --report reports/topic-outlets

Each outlet's labels are kept in ``REPORT/outlets/<outlet>.json`` as it finishes, so a
stopped run resumes with the outlets still missing (and the outlet it was training from its
last checkpoint, as ``akhbar train`` does); ``akhbar train``'s flags (``--max-steps
50``) set the topic recipe and are recorded in the report. Writes ``metrics.json`` and
``report.md`` once every outlet is done; the per-outlet runs go to ``work/outlets/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from akhbar.cli import kebab_flags
from akhbar.models.bundle import load_bundle
from akhbar.models.inputs import topic_inputs
from akhbar.models.predict import Predictor
from akhbar.models.reader import read_records
from akhbar.models.tasks import coarse_topic
from akhbar.training.baselines import fit_predict_tfidf
from akhbar.training.finetune import run
from akhbar.training.finetune_config import FinetuneConfig, add_finetune_flags, load_config
from akhbar.training.flags import given
from akhbar.training.metrics import slice_report
from akhbar.training.task_data import resolve_data

WORK = Path("work/outlets")


def slug(outlet: str) -> str:
    return outlet.replace(" ", "_").replace("/", "_")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


def held_out(outlet: str, splits: dict[str, list[dict]], settings: dict) -> dict:
    """Train both systems without ``outlet``; coarse gold and predicted labels on its test articles.

    ``settings`` override the topic YAML's, as ``akhbar train topic`` flags would."""
    folder = WORK / slug(outlet)
    others = {
        split: [r for r in splits[split] if r.get("outlet") != outlet]
        for split in ("train", "validation")
    }
    for split, rows in others.items():
        write_jsonl(folder / "data" / f"{split}.jsonl", rows)
    cfg = load_config(
        "topic", **settings | {"data": str(folder / "data"), "output_dir": str(folder / "run")}
    )
    start = time.time()
    result = run(cfg)
    test = [r for r in splits["test"] if r.get("outlet") == outlet]
    model = Predictor(load_bundle(result.bundle)).topic(
        [r["text"] for r in test], [r.get("title") for r in test]
    )
    seen = others["train"] + others["validation"]
    tfidf = fit_predict_tfidf(
        topic_inputs([r["text"] for r in seen], [r.get("title") for r in seen]),
        np.array([r["label"] for r in seen]),
        topic_inputs([r["text"] for r in test], [r.get("title") for r in test]),
    )
    return {
        "outlet": outlet,
        "gold": [r["label_coarse"] for r in test],
        "model": [coarse_topic(p.label) for p in model],
        "tfidf": [coarse_topic(str(label)) for label in tfidf],
        "steps": result.metrics["steps"],
        "fusion": bool(load_bundle(result.bundle).fusions),
        "seconds": round(time.time() - start),
    }


def figures(gold: list[str], model: list[str], tfidf: list[str]) -> dict:
    """Macro-F1 over the gold labels of these articles, for the model and TF-IDF, with intervals."""
    names = sorted(set(gold) | set(model) | set(tfidf))
    index = {n: i for i, n in enumerate(names)}
    y, a, b = (np.array([index[v] for v in values]) for values in (gold, model, tfidf))
    report = slice_report(y, a, names, {"tfidf": b})
    return {
        "n": report["n"],
        "labels": report["labels"],
        "model": report["macro_f1"],
        "model_ci": report["macro_f1_ci"],
        "tfidf": report["baselines"]["tfidf"]["macro_f1"],
        "difference": report["macro_f1"] - report["baselines"]["tfidf"]["macro_f1"],
        "diff_ci": report["baselines"]["tfidf"]["diff_ci"],
    }


def markdown(metrics: dict) -> str:
    recipe = " ".join(["akhbar train topic", *metrics["overrides"]])
    lines = [
        "# Topic on unseen outlets (leave one outlet out, coarse labels)",
        "",
        f"Recipe: `{recipe}` (the shipped base and topic settings: the topic model alone, not the "
        "joint topic + stance + summary run that ships, which would take about an hour per outlet "
        "on 2 cores), trained on the train split of the other outlets, with their validation "
        "split for early stopping, calibration and the TF-IDF fusion's stacker. TF-IDF fits on "
        "the same articles: train and validation of the other outlets. Both are scored on the "
        "held-out outlet's test articles.",
        "",
        "The shipped base's pretraining corpus includes every outlet's *train* text, unlabelled, "
        "the held-out outlet's among them (no validation or test text); the estimate is therefore "
        "for an outlet whose style the base has read, not for one it has never seen.",
        "",
        "| held-out outlet | n | labels | model macro-F1 (95% CI) | TF-IDF | model − TF-IDF (95% "
        "CI) | steps | fusion kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, f in [*metrics["outlets"].items(), ("**pooled**", metrics["pooled"])]:
        run_info = metrics["runs"].get(name, {})
        lines.append(
            f"| {name} | {f['n']} | {len(f['labels'])} | {f['model']:.3f} [{f['model_ci'][0]:.3f}, "
            f"{f['model_ci'][1]:.3f}] | {f['tfidf']:.3f} | {f['difference']:+.3f} "
            f"[{f['diff_ci'][0]:+.3f}, {f['diff_ci'][1]:+.3f}] | {run_info.get('steps', '')} | "
            f"{'' if not run_info else 'yes' if run_info['fusion'] else 'no'} |"
        )
    lines += [
        "",
        "Macro-F1 averages over the labels each outlet's gold holds (`labels` in metrics.json).",
    ]
    return "\n".join(lines) + "\n"


PROG = "python -m akhbar.training.unseen_outlets"
# Set per held-out outlet, so not flags of the recipe.
PER_OUTLET = ("data", "validation", "output_dir")


def own_flags() -> argparse.ArgumentParser:
    """This command's own flags; everything else on its command line is the topic recipe's."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--data",
        default="topic/ant_v2.1_multisource",
        help="Topic dataset folder with outlet fields (default: topic/ant_v2.1_multisource).",
    )
    parser.add_argument(
        "--report",
        required=True,
        metavar="DIR",
        help="Folder for metrics.json, report.md and outlets/ (required).",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage="%(prog)s [-h] --report DIR [--data DATA] [--SETTING VALUE ...]",
        description=__doc__.split("\n\n")[0],
        parents=[own_flags()],
    )
    add_finetune_flags(
        parser.add_argument_group(
            "the topic recipe: akhbar train's flags (default: the topic YAML's)"
        ),
        skip=PER_OUTLET,
        tasks=("topic",),
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = kebab_flags(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)  # an unknown or bad flag stops here, with a usage line
    _, overrides = own_flags().parse_known_args(argv)  # the recipe's flags as given, for the report
    settings = given(args, FinetuneConfig)
    try:
        load_config("topic", **settings | {"data": args.data})
    except ValueError as exc:
        parser.error(str(exc))
    source = resolve_data(args.data)
    splits = {
        s: list(read_records(source, "topic", split=s)) for s in ("train", "validation", "test")
    }
    outlets = sorted({r["outlet"] for r in splits["test"] if r.get("outlet")})
    if not outlets:
        parser.error(f"{args.data} has no 'outlet' field to hold out")
    out = Path(args.report)
    (out / "outlets").mkdir(parents=True, exist_ok=True)
    results = {}
    for outlet in outlets:
        done = out / "outlets" / f"{slug(outlet)}.json"
        # Earlier runs recorded snake_case flags; they name the same recipe.
        if (
            done.is_file()
            and kebab_flags(json.loads(done.read_text()).get("overrides") or []) == overrides
        ):
            print(f"{outlet}: done earlier ({done})", file=sys.stderr)
        else:
            done.write_text(
                json.dumps(held_out(outlet, splits, settings) | {"overrides": overrides}) + "\n"
            )
        results[outlet] = json.loads(done.read_text())
    pooled = {
        key: [v for r in results.values() for v in r[key]] for key in ("gold", "model", "tfidf")
    }
    metrics = {
        "data": args.data,
        "overrides": overrides,
        "outlets": {o: figures(r["gold"], r["model"], r["tfidf"]) for o, r in results.items()},
        "pooled": figures(pooled["gold"], pooled["model"], pooled["tfidf"]),
        "runs": {o: {k: r[k] for k in ("steps", "fusion", "seconds")} for o, r in results.items()},
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(markdown(metrics))
    print(markdown(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
