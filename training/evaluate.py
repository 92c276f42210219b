"""``akhbar evaluate TASK``: score a bundle on a split beside same-run baselines.

Writes ``metrics.json`` (fixed shape, below) and ``report.md`` (+ confusion matrix and
reliability diagram for label tasks) to ``--report``. The model is scored through
:class:`akhbar.models.predict.Predictor`, the very path the service uses.

metrics.json: ``task``, ``data``, ``split``, ``n``; ``model`` (topic/stance: ``macro_f1``,
``macro_f1_ci``, ``accuracy``, ``per_class``, and scikit-learn's ``classification_report``;
summary: ``k``, ``rouge1``, ``rouge2``, ``rougeL``); ``baselines`` (``tfidf``,
``sentence_encoder`` / ``lead``, ``oracle``, same keys plus ``diff_ci``: the
paired-bootstrap interval of model − baseline). For ANS the label figures are on its native
three labels, and ``model_without_other`` gives agree/disagree macro-F1 on the pairs whose
gold is not ``other``; for unifiedfc ``model_dedup`` repeats them without the test articles
that also occur in train, and ``evidence_rationale_hit_rate`` says how often the evidence
holds a rationale line; ``label_sets`` counts the pairs each stance head answered (``article``,
``headline``: :func:`akhbar.models.inputs.stance_head`), its labels folded into the data's
(``other`` ↔ ``discuss``, ``unrelated`` → ``other``). Topic data with an ``outlet`` field adds
``per_outlet``. Slices
(``per_outlet``, ``model_without_other``) average macro-F1 over the labels their gold holds,
named in ``labels``. ``--summary-budget reference-words`` replaces ``k`` by ``budget`` and
``mean_words`` and adds ``lead_words``; ``--compare`` adds ``compare``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from akhbar.models.bundle import load_bundle
from akhbar.models.inputs import stance_evidence, stance_inputs, topic_inputs
from akhbar.models.predict import Predictor, pick_sentences
from akhbar.models.reader import read_records
from akhbar.models.tasks import TASK_KINDS
from akhbar.training.baselines import (
    fit_predict_tfidf,
    fit_predict_tfidf_pairs,
    fit_predict_use_pairs,
)
from akhbar.training.corpus import text_hash
from akhbar.training.metrics import (
    accuracy,
    bootstrap_diff_ci,
    classification_report,
    macro_f1,
    slice_report,
)
from akhbar.training.plots import confusion_png, reliability_png
from akhbar.training.rouge import (
    ROUGE_TYPES,
    cut_to_budget,
    greedy_oracle,
    greedy_oracle_order,
    rouge_scores,
    scorer,
    word_budget,
)
from akhbar.training.task_data import resolve_data

DEFAULT_MODEL = "models/default/shared"
# ANS labels its "neither" pairs `other`: an article head's discuss and unrelated fold into it;
# on article data (unifiedfc) a headline head's `other` folds into discuss.
# Summary lengths: the model's top k sentences, or each summary cut to its references' mean words.
SENTENCES, REFERENCE_WORDS = "sentences", "reference-words"
NATIVE_OTHER = "other"
NATIVE_FOLDS = {NATIVE_OTHER: ("discuss", "unrelated"), "discuss": (NATIVE_OTHER,)}


def load(data: Path, task: str, split: str | None) -> list[dict]:
    """Records of one split, or of every split with ``--split all``."""
    if data.is_dir() and split == "all":
        return [
            r
            for s in ("train", "validation", "test")
            if any(data.glob(f"{s}.jsonl*"))
            for r in read_records(data, task, split=s)
        ]
    return list(read_records(data, task, split=split if data.is_dir() else None))


def train_split(data: Path, task: str) -> list[dict] | None:
    """The train split beside the evaluated one, for fitting baselines (None for a single file)."""
    return (
        list(read_records(data, task, split="train"))
        if data.is_dir() and any(data.glob("train.jsonl*"))
        else None
    )


def fold(label: str, native: set[str]) -> str:
    """Map a model label onto the data's native label set
    (ANS: discuss/unrelated → other; unifiedfc: other → discuss)."""
    for target, sources in NATIVE_FOLDS.items():
        if target in native and label in sources:
            return target
    return label


def label_task(
    task: str, records: list[dict], predictor: Predictor
) -> tuple[list[str], list[str], np.ndarray, dict[str, int]]:
    """Gold labels, predicted labels (folded to the native set), each prediction's calibrated
    probability, and for stance how many pairs each label set (head) answered."""
    if task == "topic":
        preds = predictor.topic([r["text"] for r in records], [r.get("title") for r in records])
        label_sets = {}
    else:
        preds = predictor.stance([r["claim"] for r in records], [r["text"] for r in records])
        label_sets = dict(Counter(p.label_set for p in preds))
    native = {r["label"] for r in records}
    gold = [r["label"] for r in records]
    return (
        gold,
        [fold(p.label, native) for p in preds],
        np.array([p.scores[p.label] for p in preds]),
        label_sets,
    )


def baseline_inputs(task: str, records: list[dict]) -> tuple[list[str], list[str] | None]:
    if task == "topic":
        return topic_inputs([r["text"] for r in records], [r.get("title") for r in records]), None
    claims = [r["claim"] for r in records]
    # The sentence-encoder baseline of the data README: the 3 sentences most like the claim.
    return stance_inputs(claims, [r["text"] for r in records], 3)[0], claims


def label_report(
    task: str, records: list[dict], train: list[dict] | None, predictor: Predictor, out: Path
) -> tuple[dict, np.ndarray]:
    """Figures, and the gold/predicted label pairs ((n, 2) array) for paired comparisons."""
    gold, pred, top, label_sets = label_task(task, records, predictor)
    names = sorted(set(gold) | set(pred))
    index = {n: i for i, n in enumerate(names)}
    y, y_model = np.array([index[g] for g in gold]), np.array([index[p] for p in pred])
    result = {"model": classification_report(y, y_model, names)}
    if label_sets:
        result["label_sets"] = label_sets
    confusion_png(y, y_model, names, out / "confusion.png")
    reliability_png(top, y_model == y, out / "reliability.png")
    predictions = baseline_predictions(task, records, train, index) if train is not None else {}
    result["baselines"] = {
        name: classification_report(y, y_base, names)
        | {"diff_ci": bootstrap_diff_ci(y, y_model, y_base)}
        for name, y_base in predictions.items()
    }
    outlet = np.array([r.get("outlet") or "" for r in records])
    if task == "topic" and outlet.any():
        result["per_outlet"] = {
            o: slice_report(
                y[outlet == o],
                y_model[outlet == o],
                names,
                {name: y_base[outlet == o] for name, y_base in predictions.items()},
            )
            for o in sorted(set(outlet) - {""})
        }
    if task == "stance" and NATIVE_OTHER in index:
        # ANS: agree vs disagree on the pairs whose gold is one of them;
        # a predicted `other` is an error.
        keep = y != index[NATIVE_OTHER]
        result["model_without_other"] = slice_report(
            y[keep],
            y_model[keep],
            names,
            {name: y_base[keep] for name, y_base in predictions.items()},
        )
    if task == "stance" and train is not None and records and "rationale" in records[0]:
        seen = {text_hash(r["text"]) for r in train}
        fresh = np.array([text_hash(r["text"]) not in seen for r in records])
        result["model_dedup"] = classification_report(y[fresh], y_model[fresh], names) | {
            "n": int(fresh.sum())
        }
        result["evidence_rationale_hit_rate"] = rationale_hit_rate(records, predictor)
    return result, np.stack([y, y_model], axis=1)


def baseline_predictions(
    task: str, records: list[dict], train: list[dict], index: dict[str, int]
) -> dict[str, np.ndarray]:
    """Each same-run baseline, fitted on ``train`` (labels the model cannot name left out),
    on ``records``."""
    texts, first = baseline_inputs(task, records)
    train_texts, train_first = baseline_inputs(task, train)
    train_y = np.array([index.get(r["label"], -1) for r in train])
    keep = train_y >= 0
    tt = [t for t, k in zip(train_texts, keep) if k]
    if task == "topic":
        return {"tfidf": fit_predict_tfidf(tt, train_y[keep], texts)}
    tf = [f for f, k in zip(train_first, keep) if k]
    return {
        name: fit(tf, tt, train_y[keep], first, texts)
        for name, fit in (
            ("tfidf", fit_predict_tfidf_pairs),
            ("sentence_encoder", fit_predict_use_pairs),
        )
    }


def rationale_hit_rate(records: list[dict], predictor: Predictor) -> float | None:
    """Share of agree/disagree pairs with a rationale whose evidence holds a rationale line."""
    hits = total = 0
    for r in records:
        lines = (
            json.loads(r["rationale"])
            if isinstance(r.get("rationale"), str) and r["rationale"].strip()
            else r.get("rationale")
        )
        if not lines or r["label"] not in ("agree", "disagree"):
            continue
        text_lines = r["text"].split("\n")
        wanted = [
            text_lines[i].strip()
            for i in lines
            if isinstance(i, int) and i < len(text_lines) and text_lines[i].strip()
        ]
        evidence = stance_evidence(
            r["claim"], r["text"], predictor.bundle.settings.tasks["stance"].evidence_sentences
        ).sentences
        total += 1
        hits += any(w in s.text or s.text in w for w in wanted for s in evidence)
    return hits / total if total else None


def summary_report(
    records: list[dict], predictor: Predictor, k: int, budget: str = SENTENCES
) -> tuple[dict, np.ndarray]:
    """Figures, and the model's ROUGE-L per document for paired comparisons.

    ``budget`` ``sentences``: the model's top k sentences against Lead-k and the oracle's k.
    ``reference-words``: each summary cut to the mean word count of the article's references
    (:func:`cut_to_budget`): the model's sentences in its rank order, the lead (``lead_words``)
    and the greedy oracle in its pick order, with Lead-k beside them.
    """
    refs = [r.get("summaries") or [r["summary"]] for r in records]
    rouge = scorer()
    scored = predictor.sentence_scores(
        [r["text"] for r in records], titles=[r.get("title") for r in records]
    )
    docs = [[s.text for s in sentences] for sentences, _, _ in scored]
    systems = {"lead": [" ".join(d[:k]) for d in docs]}
    if budget == SENTENCES:
        systems["model"] = [
            " ".join(s.text for s in pick_sentences(sentences, scores, k).sentences)
            for sentences, scores, _ in scored
        ]
        systems["oracle"] = [
            " ".join(d[i] for i in greedy_oracle(d, ref, k)) for d, ref in zip(docs, refs)
        ]
    else:
        words = [word_budget(ref) for ref in refs]
        ranks = [
            sorted(range(len(scores)), key=lambda i, s=scores: (-s[i], i))
            for _, scores, _ in scored
        ]
        systems["model"] = [cut_to_budget(d, rank, w) for d, rank, w in zip(docs, ranks, words)]
        systems["lead_words"] = [cut_to_budget(d, range(len(d)), w) for d, w in zip(docs, words)]
        systems["oracle"] = [
            cut_to_budget(d, greedy_oracle_order(d, ref, len(d)), w)
            for d, ref, w in zip(docs, refs, words)
        ]
    per_doc = {
        name: [rouge_scores(text, ref, rouge) for text, ref in zip(texts, refs)]
        for name, texts in systems.items()
    }
    size = (
        {"k": k} if budget == SENTENCES else {"budget": budget, "mean_words": float(np.mean(words))}
    )

    def figures(name: str) -> dict:
        return ({"k": k} if name == "lead" else size) | {
            t: float(np.mean([d[t] for d in per_doc[name]])) for t in ROUGE_TYPES
        }

    model_l = np.array([d["rougeL"] for d in per_doc["model"]])
    baselines = {
        name: figures(name)
        | {"diff_ci": mean_diff_ci(model_l - np.array([d["rougeL"] for d in per_doc[name]]))}
        for name in systems
        if name != "model"
    }
    return {"model": figures("model"), "baselines": baselines}, model_l


def mean_diff_ci(diff: np.ndarray, n: int = 1000, seed: int = 0) -> list[float]:
    """Bootstrap interval of a mean per-document difference."""
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(1)
    return [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]


def compare(task: str, ours: np.ndarray, theirs: np.ndarray) -> dict:
    """Per metric: which model is better and whether the 95% interval of the gap excludes 0."""
    if TASK_KINDS[task] == "sentence":
        gaps = {"rougeL": (float(ours.mean() - theirs.mean()), mean_diff_ci(ours - theirs))}
    else:
        y, a, b = ours[:, 0], ours[:, 1], theirs[:, 1]
        gaps = {
            "macro_f1": (macro_f1(y, a) - macro_f1(y, b), bootstrap_diff_ci(y, a, b)),
            "accuracy": (
                accuracy(y, a) - accuracy(y, b),
                bootstrap_diff_ci(y, a, b, metric=accuracy),
            ),
        }
    return {
        metric: {
            "difference": gap,
            "diff_ci": ci,
            "better": "model" if gap > 0 else "compare" if gap < 0 else "tie",
            "significant": ci[0] > 0 or ci[1] < 0,
        }
        for metric, (gap, ci) in gaps.items()
    }


def markdown(metrics: dict) -> str:
    lines = [
        f"# {metrics['task']} on {metrics['data']} ({metrics['split']}, n = {metrics['n']})",
        "",
    ]
    key = "rougeL" if metrics["task"] == "summary" else "macro_f1"
    if metrics["model"].get("budget") == REFERENCE_WORDS:
        lines += [
            f"Every summary but lead's (k = {metrics['baselines']['lead']['k']}) is cut to the "
            "mean word count of its article's references (mean "
            f"{metrics['model']['mean_words']:.1f} words).",
            "",
        ]
    lines += [
        "| system | " + key + " | diff vs model (95% CI) |",
        "|---|---|---|",
        f"| model | {metrics['model'][key]:.3f} | - |",
    ]
    for name, b in metrics["baselines"].items():
        lo, hi = b["diff_ci"]
        lines.append(f"| {name} | {b[key]:.3f} | model − {name}: [{lo:+.3f}, {hi:+.3f}] |")
    if "model_dedup" in metrics:
        lines += [
            "",
            f"Without test articles that also occur in train (n = {metrics['model_dedup']['n']}): "
            f"macro-F1 {metrics['model_dedup']['macro_f1']:.3f}.",
        ]
    if "label_sets" in metrics:
        answered = ", ".join(f"{name} {n}" for name, n in sorted(metrics["label_sets"].items()))
        lines += ["", f"Pairs answered by each stance head (label set): {answered}."]
    if "model_without_other" in metrics:
        lines += ["", *slice_table("slice", {"gold not `other`": metrics["model_without_other"]})]
    for metric, v in metrics.get("compare", {}).get("verdict", {}).items():
        lines.append(
            f"Against {metrics['compare']['model']}: {metric} {v['difference']:+.3f} "
            f"(95% CI [{v['diff_ci'][0]:+.3f}, {v['diff_ci'][1]:+.3f}]), better: {v['better']}, "
            f"{'significant' if v['significant'] else 'not significant'}."
        )
    if metrics.get("per_outlet"):
        lines += ["", *slice_table("outlet", metrics["per_outlet"])]
    return "\n".join(lines) + "\n"


def slice_table(kind: str, slices: dict[str, dict]) -> list[str]:
    """Rows of slice figures (macro-F1 over each slice's gold labels), baselines beside."""
    names = sorted({b for v in slices.values() for b in v.get("baselines", {})})
    lines = [
        f"| {kind} | n | labels | macro-F1 (95% CI) | "
        + " | ".join(f"{b} | model − {b}" for b in names)
        + " |",
        "|---" * (4 + 2 * len(names)) + "|",
    ]
    for name, v in slices.items():
        cells = [
            f"{v['baselines'][b]['macro_f1']:.3f} | [{v['baselines'][b]['diff_ci'][0]:+.3f}, "
            f"{v['baselines'][b]['diff_ci'][1]:+.3f}]"
            for b in names
        ]
        lines.append(
            f"| {name} | {v['n']} | {', '.join(v['labels'])} | {v['macro_f1']:.3f} "
            f"[{v['macro_f1_ci'][0]:.3f}, {v['macro_f1_ci'][1]:.3f}] | " + " | ".join(cells) + " |"
        )
    return [*lines, "", "Macro-F1 of a slice averages over the labels its gold holds (`labels`)."]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akhbar evaluate",
        description="Score a bundle on a split beside same-run "
        "baselines; write metrics.json and report.md to --report.",
    )
    parser.add_argument("task", choices=list(TASK_KINDS), help="The bundle's task to score.")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"Bundle directory (default: {DEFAULT_MODEL}, the shipped one).",
    )
    parser.add_argument(
        "--data",
        required=True,
        help="A data file or a dataset folder, as a path or relative to $AKHBAR_DATA (required).",
    )
    parser.add_argument(
        "--split",
        default="test",
        help="Split of a dataset folder: train, validation, test or all (default: test).",
    )
    parser.add_argument(
        "--report", required=True, help="Directory for metrics.json and report.md (required)."
    )
    parser.add_argument(
        "--summary-sentences",
        type=int,
        default=1,
        help="k for summary: the model's and the oracle's sentences, and Lead-k (default: 1).",
    )
    parser.add_argument(
        "--summary-budget",
        choices=[SENTENCES, REFERENCE_WORDS],
        default=SENTENCES,
        help="Summary length: k sentences, or each article's summary cut to the mean word count "
        f"of its references, beside the lead cut the same way (lead_words) (default: {SENTENCES}).",
    )
    parser.add_argument(
        "--compare", default=None, help="A second bundle scored on the same split (default: none)."
    )
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The settings, without running anything; a bad value exits with status 2 and a usage line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.summary_sentences <= 20:
        parser.error("--summary-sentences must be between 1 and 20")
    return args


def evaluate(
    task: str, model: str, data: str, split: str, k: int, out: Path, budget: str = SENTENCES
) -> tuple[dict, np.ndarray]:
    source = resolve_data(data)
    records = load(source, task, split)
    if not records:
        raise ValueError(f"{data} ({split}) holds no records to evaluate")
    predictor = Predictor(load_bundle(model))
    out.mkdir(parents=True, exist_ok=True)
    if TASK_KINDS[task] == "sentence":
        body, outcomes = summary_report(records, predictor, k, budget)
    else:
        body, outcomes = label_report(task, records, train_split(source, task), predictor, out)
    return {"task": task, "data": str(data), "split": split, "n": len(records)} | body, outcomes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out = Path(args.report)
    metrics, ours = evaluate(
        args.task,
        args.model,
        args.data,
        args.split,
        args.summary_sentences,
        out,
        args.summary_budget,
    )
    if args.compare:
        other, theirs = evaluate(
            args.task,
            args.compare,
            args.data,
            args.split,
            args.summary_sentences,
            out / "compare",
            args.summary_budget,
        )
        metrics["compare"] = {
            "model": args.compare,
            "figures": other["model"],
            "verdict": compare(args.task, ours, theirs),
        }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(markdown(metrics))
    print(markdown(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
