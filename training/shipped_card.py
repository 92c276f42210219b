"""Write the shipped bundle's model card section: what each task ships, and its test figures.

``make eval`` ends with this: it reads the bundle's validation figures (``metrics.json``,
including which fusion or lead prior won) and the test reports ``akhbar evaluate`` wrote,
replaces the card's ``shipped-figures`` section, and puts the test figures into the card's
front matter as its ``model-index`` (what the Hugging Face hub shows as evaluation results)::

    python -m akhbar.training.shipped_card models/default/shared reports
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard

from akhbar.models.cards import eval_result
from akhbar.training.card_sections import write_section

SECTION = "shipped-figures"  # the model card section this command owns

# Report folder → (task, data, key metric) in the order the card lists them.
REPORTS = {
    "topic": ("topic", "ANT v2.1 multisource, test", "macro_f1"),
    "stance-unifiedfc": ("stance", "unifiedfc (Baly 2018), test", "macro_f1"),
    "stance-ans": ("stance", "ANS (Khouja 2020), test, native 3 labels", "macro_f1"),
    "summary-ant_bbc": ("summary", "ANT BBC, test, k = 1", "rougeL"),
    "summary-easc": ("summary", "EASC, all 153, k = 3 (out of domain)", "rougeL"),
    "summary-ant_bbc-words": ("summary", "ANT BBC, test, equal word budget", "rougeL"),
    "summary-easc-words": ("summary", "EASC, all 153, equal word budget (out of domain)", "rougeL"),
}
# Slices of a test set, scored over the labels their gold holds: report key → what it is.
SLICES = {"model_without_other": "gold not `other`"}


def what_ships(task: str, validation: dict) -> str:
    """One line: the head alone, or the head with the side model or prior that won on validation."""
    shared = validation.get("shared_pass")
    if shared:
        alone = what_ships(task, {k: v for k, v in validation.items() if k != "shared_pass"})
        return (
            f"{alone}; the head reads the {shared['reads']} windows, so one encoder pass serves "
            f"both (validation macro-F1 {shared['macro_f1_shared_pass']:.4f}, against "
            f"{shared['macro_f1_own_windows']:.4f} on its own windows)"
        )
    fusion = validation.get("fusion")
    if fusion:
        kind = fusion["kind"] if "kind" in fusion else "tfidf"
        side = f" ({fusion['side_model']})" if "side_model" in fusion else ""
        if fusion.get("side_alone"):
            stacked = f", both stacked {fusion['stacked_cv']:.3f}" if "stacked_cv" in fusion else ""
            return (
                f"the {kind} side model{side} alone, which beat the head and the stack on "
                f"validation (macro-F1: head {fusion['encoder']:.3f}, {kind} "
                f"{fusion[kind]:.3f}{stacked})"
            )
        if fusion["chosen"] == "fused":
            return (
                f"encoder head fused with the {kind} side model (validation macro-F1, "
                f"cross-validated: head {fusion['encoder']:.3f}, {kind} {fusion[kind]:.3f}, "
                f"fused {fusion['fused_cv']:.3f})"
            )
        return f"encoder head alone (it beat the {kind} fusion on validation)"
    if "lead_prior" in validation:
        by_prior = validation["rougeL_by_lead_prior"]
        return (
            f"sentence head with lead prior {validation['lead_prior']:g} (validation ROUGE-L: "
            f"head alone {by_prior['0.0']:.3f}, chosen {validation['rougeL']:.3f}, "
            f"Lead-k {by_prior['10000.0']:.3f})"
        )
    return "encoder head alone"


def section(bundle: Path, reports: Path) -> str:
    metrics = json.loads((bundle / "metrics.json").read_text())["tasks"]
    lines = [
        "## What ships, and its figures",
        "",
        "This section is rewritten by `make eval`; where it differs from the training-time figures "
        "above, a fusion or lead prior was fitted after training (`akhbar.training.add_fusion`).",
        "",
    ]
    lines += [
        f"- **{task}**: {what_ships(task, figures['validation'])}."
        for task, figures in metrics.items()
    ]
    lines += [
        "",
        "Test figures (`make eval`, same-run baselines; 95% paired-bootstrap interval of the "
        "difference):",
        "",
        "| task | data | model | baseline | baseline figure | model − baseline |",
        "|---|---|---|---|---|---|",
    ]
    for folder, (task, data, key) in REPORTS.items():
        report_file = reports / folder / "metrics.json"
        if not report_file.is_file():
            continue
        report = json.loads(report_file.read_text())
        for name, base in report["baselines"].items():
            if name == "oracle":
                continue
            low, high = base["diff_ci"]
            lines.append(
                f"| {task} | {data} | {report['model'][key]:.3f} | {name} | {base[key]:.3f} | "
                f"[{low:+.3f}, {high:+.3f}] |"
            )
        for slice_key, what in SLICES.items():
            part = report.get(slice_key)
            for name, base in (part or {}).get("baselines", {}).items():
                low, high = base["diff_ci"]
                lines.append(
                    f"| {task} | {data}, {what} ({', '.join(part['labels'])}) | "
                    f"{part['macro_f1']:.3f} | {name} | {base['macro_f1']:.3f} | "
                    f"[{low:+.3f}, {high:+.3f}] |"
                )
    return "\n".join(lines) + "\n"


def test_results(reports: Path) -> list[EvalResult]:
    """The model's figure on each test report, for the card's ``model-index``."""
    results = []
    for folder, (task, description, key) in REPORTS.items():
        report_file = reports / folder / "metrics.json"
        if report_file.is_file():
            report = json.loads(report_file.read_text())
            results.append(
                eval_result(
                    task, report["data"], report["split"], description, key, report["model"][key]
                )
            )
    return results


def write_card(bundle: Path, reports: Path) -> None:
    """Rewrite the figures section and the ``model-index``; the rest of the card stays."""
    card_file = bundle / "README.md"
    write_section(card_file, section(bundle, reports), SECTION)
    card = ModelCard.load(card_file)
    card.data.model_name = card.data.model_name or f"akhbar-{bundle.name}"
    card.data.eval_results = test_results(reports) or None
    card.save(card_file)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m akhbar.training.shipped_card BUNDLE REPORTS", file=sys.stderr)
        return 2
    bundle, reports = Path(args[0]), Path(args[1])
    write_card(bundle, reports)
    print(f"{bundle / 'README.md'}: {SECTION} section written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
