"""``akhbar evaluate``: the random-weight tiny bundle scored on tiny dataset folders, one run
per task (nothing is trained), checking the fixed shape of metrics.json and the reports."""

from __future__ import annotations

import json
import random
from functools import partial
from pathlib import Path

import pytest
from conftest import write_jsonl

from akhbar.models.tasks import STANCE_LABELS, TOPIC_LABELS
from akhbar.training import evaluate as evaluate_module
from akhbar.training import metrics as metrics_module
from akhbar.training.evaluate import fold, main

TOP_LEVEL = {"task", "data", "split", "n", "model", "baselines"}
LABEL_KEYS = {"macro_f1", "macro_f1_ci", "accuracy", "per_class", "classification_report"}
SLICE_KEYS = {"n", "labels", "macro_f1", "macro_f1_ci", "baselines"}
SUMMARY_KEYS = {"k", "rouge1", "rouge2", "rougeL"}
PER_CLASS_KEYS = {"precision", "recall", "f1", "support"}
ANS_LABELS = ("agree", "disagree", "other")

WORDS = {
    "economy": [
        "البورصة",
        "الأسهم",
        "النفط",
        "التضخم",
        "الأسعار",
        "المصرف",
        "الأرباح",
        "ارتفعت",
        "تراجعت",
        "الشركة",
    ],
    "sport": [
        "الفريق",
        "المباراة",
        "الهدف",
        "المدرب",
        "اللاعب",
        "الدوري",
        "الكأس",
        "الملعب",
        "فاز",
        "سجل",
    ],
    "culture": [
        "المهرجان",
        "الرواية",
        "المسرح",
        "الفيلم",
        "الكاتب",
        "المعرض",
        "الشاعر",
        "الموسيقى",
        "افتتح",
        "عرض",
    ],
}
COMMON = ["في", "على", "من", "مع", "بعد", "اليوم", "الجديد", "قال", "أن", "العام"]


def topic_rows(n: int, seed: int, outlets: tuple[str, ...] = ()) -> list[dict]:
    rng = random.Random(seed)
    labels = list(WORDS)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        body = " ".join(rng.choice(WORDS[label] + COMMON) for _ in range(rng.randint(8, 16)))
        row = {
            "id": f"t{seed}-{i}",
            "title": " ".join(rng.sample(WORDS[label], 3)),
            "text": body + ".",
            "label": label,
        }
        if i < len(outlets):
            row["outlet"] = outlets[i]
        rows.append(row)
    return rows


CLAIMS = [
    ("الحكومة سترفع أسعار الوقود الشهر المقبل", "الوقود"),
    ("المنتخب تأهل إلى نهائيات كأس العالم", "المنتخب"),
    ("الشركة ستغلق مصنعها في المدينة", "المصنع"),
    ("الجامعة ألغت الامتحانات النهائية", "الامتحانات"),
]
BODIES = {
    "agree": "أكد المسؤولون أن {c}. وقال المتحدث إن القرار نهائي.",
    "disagree": "نفى المسؤولون أن {c}. ووصف المتحدث الخبر بأنه شائعة.",
    "discuss": "تتداول وسائل الإعلام أن {c}. ولم يصدر أي تعليق رسمي حتى الآن.",
    "unrelated": "هطلت أمطار غزيرة على الساحل. وحذرت الأرصاد من ارتفاع الموج.",
    "other": "تتحدث التقارير عن {w} دون تفاصيل. وهطلت أمطار غزيرة على الساحل.",
}


def stance_rows(n: int, seed: int, labels: tuple[str, ...]) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        claim, word = CLAIMS[i % len(CLAIMS)]
        label = labels[(i // len(CLAIMS) + i) % len(labels)]
        extra = " ".join(rng.sample(COMMON, 4))
        rows.append(
            {
                "id": f"s{seed}-{i}",
                "claim": claim,
                "text": BODIES[label].format(c=claim, w=word) + f" {extra}.",
                "label": label,
            }
        )
    return rows


ARTICLES = [
    [
        "افتتح وزير الصحة مستشفى جديدا في الشمال.",
        "ويضم المستشفى مئتي سرير وقسما للطوارئ.",
        "وحضر الافتتاح عدد من النواب.",
        "وقال الوزير إن مستشفيات أخرى ستفتتح قريبا.",
    ],
    [
        "فاز النادي بلقب الدوري للمرة الثالثة.",
        "وسجل المهاجم هدف الفوز في الدقيقة الأخيرة.",
        "واحتفل المشجعون في الشوارع حتى الصباح.",
        "ويستعد الفريق الآن لبطولة القارة.",
    ],
    [
        "تراجعت أسعار الذهب في السوق المحلية.",
        "ويعزو التجار التراجع إلى قلة الطلب.",
        "ويتوقع المحللون أن تستقر الأسعار قريبا.",
    ],
    [
        "أعلنت البلدية إغلاق الجسر القديم للصيانة.",
        "ويستمر الإغلاق ثلاثة أسابيع.",
        "ودعت البلدية السائقين إلى استخدام طرق بديلة.",
        "وستعمل الفرق ليلا لتسريع الأشغال.",
        "اقرأ أيضاً: خطة جديدة لتطوير النقل العام",
    ],
]


def summary_rows(prefix: str) -> list[dict]:
    rows = []
    for i, sentences in enumerate(ARTICLES):
        reference = " ".join(sentences[:2])  # the lead-2 sentences exactly
        row = {"id": f"{prefix}{i}", "text": "\n".join(sentences)}
        row |= {"summaries": [reference, reference]} if i == 0 else {"summary": reference}
        rows.append(row)
    return rows


def write_splits(folder: Path, splits: dict[str, list[dict]]) -> Path:
    for split, rows in splits.items():
        write_jsonl(folder / f"{split}.jsonl", rows)
    return folder


TOPIC_OUTLETS = ("alpha", "alpha", "beta", "alpha", "beta")  # the last 4 test rows carry none


@pytest.fixture(scope="module", autouse=True)
def fewer_bootstrap_samples():
    """100 bootstrap resamples instead of 1000: same code path, a tenth of the time."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(metrics_module, "bootstrap_ci", partial(metrics_module.bootstrap_ci, n=100))
        mp.setattr(
            evaluate_module, "bootstrap_diff_ci", partial(evaluate_module.bootstrap_diff_ci, n=100)
        )
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval_data")
    return {
        "topic": write_splits(
            root / "topic",
            {
                "train": topic_rows(18, 1),
                "validation": topic_rows(3, 2),
                "test": topic_rows(9, 3, TOPIC_OUTLETS),
            },
        ),
        "stance": write_splits(
            root / "stance",
            {
                "train": stance_rows(20, 1, STANCE_LABELS),
                "validation": stance_rows(4, 2, STANCE_LABELS),
                "test": stance_rows(8, 3, STANCE_LABELS),
            },
        ),
        "ans": write_splits(
            root / "ans",
            {"train": stance_rows(12, 4, ANS_LABELS), "test": stance_rows(6, 5, ANS_LABELS)},
        ),
        "summary": write_splits(
            root / "summary",
            {
                "train": summary_rows("a")[:2],
                "validation": summary_rows("b")[:1],
                "test": summary_rows("c"),
            },
        ),
    }


def evaluate(task: str, bundle: Path, data: Path, out: Path, *extra: str) -> tuple[Path, dict]:
    assert (
        main([task, "--model", str(bundle), "--data", str(data), "--report", str(out), *extra]) == 0
    )
    return out, json.loads((out / "metrics.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def topic_run(tiny_bundle, data, tmp_path_factory):
    return evaluate(
        "topic",
        tiny_bundle,
        data["topic"],
        tmp_path_factory.mktemp("topic_report"),
        "--compare",
        str(tiny_bundle),
    )


@pytest.fixture(scope="module")
def stance_run(tiny_bundle, data, tmp_path_factory):
    return evaluate("stance", tiny_bundle, data["stance"], tmp_path_factory.mktemp("stance_report"))


@pytest.fixture(scope="module")
def summary_run(tiny_bundle, data, tmp_path_factory):
    return evaluate(
        "summary",
        tiny_bundle,
        data["summary"],
        tmp_path_factory.mktemp("summary_report"),
        "--summary-sentences",
        "2",
    )


def check_label_figures(figures: dict, allowed: set[str]) -> None:
    assert set(figures) >= LABEL_KEYS
    assert 0.0 <= figures["macro_f1"] <= 1.0 and 0.0 <= figures["accuracy"] <= 1.0
    lo, hi = figures["macro_f1_ci"]
    assert 0.0 <= lo <= hi <= 1.0
    assert set(figures["per_class"]) <= allowed
    for values in figures["per_class"].values():
        assert set(values) == PER_CLASS_KEYS


def check_label_reports(out: Path) -> None:
    for name in ("report.md", "confusion.png", "reliability.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- topic ---------------------------------------------------------------------------------


def test_topic_metrics_shape(topic_run, data) -> None:
    out, metrics = topic_run
    assert set(metrics) == TOP_LEVEL | {"per_outlet", "compare"}
    assert metrics["task"] == "topic" and metrics["split"] == "test" and metrics["n"] == 9
    assert metrics["data"] == str(data["topic"])
    assert set(metrics["model"]) == LABEL_KEYS
    check_label_figures(metrics["model"], set(TOPIC_LABELS))
    # Gold classes always appear, with their test support.
    assert {
        name: v["support"] for name, v in metrics["model"]["per_class"].items() if v["support"]
    } == {"economy": 3, "sport": 3, "culture": 3}
    assert set(metrics["baselines"]) == {"tfidf"}
    tfidf = metrics["baselines"]["tfidf"]
    assert set(tfidf) == LABEL_KEYS | {"diff_ci"}
    check_label_figures(tfidf, set(TOPIC_LABELS))
    assert len(tfidf["diff_ci"]) == 2 and tfidf["diff_ci"][0] <= tfidf["diff_ci"][1]
    check_label_reports(out)


def test_topic_per_outlet(topic_run) -> None:
    _, metrics = topic_run
    per_outlet = metrics["per_outlet"]
    assert set(per_outlet) == {"alpha", "beta"}  # records without an outlet are left out
    assert per_outlet["alpha"]["n"] == 3 and per_outlet["beta"]["n"] == 2
    assert all(set(v) == SLICE_KEYS and 0.0 <= v["macro_f1"] <= 1.0 for v in per_outlet.values())
    # Each outlet averages over its own gold labels
    # (rows 0, 1, 3 are alpha; 2, 4 beta; labels cycle).
    assert per_outlet["alpha"]["labels"] == ["economy", "sport"]
    assert per_outlet["beta"]["labels"] == ["culture", "sport"]
    assert set(per_outlet["alpha"]["baselines"]) == {"tfidf"}


def test_compare_with_the_same_bundle_is_a_tie(topic_run, tiny_bundle) -> None:
    out, metrics = topic_run
    compare = metrics["compare"]
    assert compare["model"] == str(tiny_bundle)
    assert compare["figures"] == metrics["model"]
    assert set(compare["verdict"]) == {"macro_f1", "accuracy"}
    for verdict in compare["verdict"].values():
        assert verdict == {
            "difference": 0.0,
            "diff_ci": [0.0, 0.0],
            "better": "tie",
            "significant": False,
        }
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.count("better: tie, not significant") == 2
    assert "| tfidf |" in report and "| alpha | 3 |" in report
    assert (out / "compare" / "confusion.png").is_file()


# --- stance --------------------------------------------------------------------------------


def test_stance_metrics_shape(stance_run) -> None:
    out, metrics = stance_run
    assert set(metrics) == TOP_LEVEL | {"label_sets"}
    assert metrics["task"] == "stance" and metrics["n"] == 8
    # Each pair is answered by one of the bundle's two stance heads, its labels folded into
    # the data's (a headline head's `other` counts as `discuss`).
    assert set(metrics["label_sets"]) <= {"article", "headline"}
    assert sum(metrics["label_sets"].values()) == 8
    assert set(metrics["model"]) == LABEL_KEYS
    check_label_figures(metrics["model"], set(STANCE_LABELS))
    assert set(metrics["baselines"]) == {"tfidf", "sentence_encoder"}
    for baseline in metrics["baselines"].values():
        assert set(baseline) == LABEL_KEYS | {"diff_ci"}
        check_label_figures(baseline, set(STANCE_LABELS))
    check_label_reports(out)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| sentence_encoder |" in report and "| tfidf |" in report
    assert "Pairs answered by each stance head" in report


@pytest.mark.parametrize(
    ("label", "native", "expected"),
    [
        ("discuss", set(ANS_LABELS), "other"),
        ("unrelated", set(ANS_LABELS), "other"),
        ("agree", set(ANS_LABELS), "agree"),
        ("disagree", set(ANS_LABELS), "disagree"),
        ("discuss", set(STANCE_LABELS), "discuss"),  # no `other` in the data: nothing folds
        ("unrelated", set(STANCE_LABELS), "unrelated"),
        ("other", set(STANCE_LABELS), "discuss"),  # a headline head's answer on article data
        ("sport", {"sport", "economy"}, "sport"),
    ],
)
def test_fold(label: str, native: set[str], expected: str) -> None:
    assert fold(label, native) == expected


def test_ans_labels_fold_end_to_end(tiny_bundle, data, tmp_path) -> None:
    out, metrics = evaluate("stance", tiny_bundle, data["ans"], tmp_path / "ans")
    assert metrics["n"] == 6
    assert set(metrics["model"]["per_class"]) <= set(ANS_LABELS)
    assert {k for k, v in metrics["model"]["per_class"].items() if v["support"]} == set(ANS_LABELS)
    for baseline in metrics["baselines"].values():
        assert set(baseline["per_class"]) == set(metrics["model"]["per_class"])
    without_other = metrics["model_without_other"]
    assert set(without_other) == SLICE_KEYS and without_other["labels"] == ["agree", "disagree"]
    assert without_other["n"] == sum(
        v["support"] for k, v in metrics["model"]["per_class"].items() if k != "other"
    )
    assert "gold not `other`" in (out / "report.md").read_text(encoding="utf-8")


def test_unifiedfc_has_no_without_other_figure(stance_run) -> None:
    assert "model_without_other" not in stance_run[1]


# --- summary -------------------------------------------------------------------------------


def test_summary_metrics_shape(summary_run) -> None:
    out, metrics = summary_run
    assert set(metrics) == TOP_LEVEL
    assert metrics["task"] == "summary" and metrics["n"] == len(ARTICLES)
    assert set(metrics["model"]) == SUMMARY_KEYS and metrics["model"]["k"] == 2
    assert all(0.0 <= metrics["model"][t] <= 1.0 for t in ("rouge1", "rouge2", "rougeL"))
    assert set(metrics["baselines"]) == {"lead", "oracle"}
    for name, baseline in metrics["baselines"].items():
        assert set(baseline) == SUMMARY_KEYS | {"diff_ci"} and baseline["k"] == 2
        # Every reference is the article's first two sentences: lead-2 and the oracle match it.
        for t in ("rouge1", "rouge2", "rougeL"):
            assert baseline[t] == pytest.approx(1.0), (name, t)
        lo, hi = baseline["diff_ci"]
        assert lo <= hi <= 1e-9  # the model cannot beat a perfect score
    assert (out / "report.md").is_file()
    assert not (out / "confusion.png").exists()


def test_summary_at_an_equal_word_budget(tiny_bundle, data, tmp_path) -> None:
    out, metrics = evaluate(
        "summary",
        tiny_bundle,
        data["summary"],
        tmp_path / "words",
        "--summary-budget",
        "reference-words",
    )
    assert set(metrics["baselines"]) == {"lead", "lead_words", "oracle"}
    assert metrics["model"]["budget"] == "reference-words" and "k" not in metrics["model"]
    assert metrics["baselines"]["lead"]["k"] == 1
    # Every reference is the article's first two sentences:
    # the lead cut to their words is the reference.
    assert metrics["model"]["mean_words"] == pytest.approx(
        sum(len(" ".join(a[:2]).split()) for a in ARTICLES) / len(ARTICLES)
    )
    for t in ("rouge1", "rouge2", "rougeL"):
        assert metrics["baselines"]["lead_words"][t] == pytest.approx(1.0)
        assert metrics["baselines"]["lead"][t] < 1.0
    assert "mean word count" in (out / "report.md").read_text(encoding="utf-8")


def test_split_all_counts_every_split(tiny_bundle, data, tmp_path) -> None:
    _, metrics = evaluate(
        "summary", tiny_bundle, data["summary"], tmp_path / "all", "--split", "all"
    )
    assert metrics["split"] == "all"
    assert metrics["n"] == 2 + 1 + len(ARTICLES)
    assert metrics["model"]["k"] == 1  # the default


@pytest.mark.parametrize("k", ["0", "21"])
def test_summary_sentences_out_of_range_is_a_usage_error(
    tiny_bundle, data, tmp_path, capsys, k: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "summary",
                "--model",
                str(tiny_bundle),
                "--data",
                str(data["summary"]),
                "--report",
                str(tmp_path / "out"),
                "--summary-sentences",
                k,
            ]
        )
    assert exc.value.code == 2
    assert "--summary-sentences" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
