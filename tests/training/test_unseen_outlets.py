"""Leave-one-outlet-out: each outlet is scored by a model that never saw it, on coarse labels."""

from __future__ import annotations

import json
import random

import pytest
from conftest import write_jsonl

from akhbar.models.tasks import coarse_topic
from akhbar.training import unseen_outlets

WORDS = {
    "sport": ["الفريق", "المباراة", "الهدف", "المدرب", "الدوري"],
    "economy": ["الأسهم", "النفط", "البورصة", "التضخم", "المصرف"],
    "middleEast": ["الحكومة", "الوزير", "البرلمان", "الانتخابات", "المفاوضات"],
}
COARSE = {"sport": "sport", "economy": "economy", "middleEast": "politics"}


def rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = list(WORDS)[i % 3]
        text = " ".join(rng.choice(WORDS[label]) for _ in range(10)) + "."
        out.append(
            {
                "id": f"{seed}-{i}",
                "title": rng.choice(WORDS[label]),
                "text": text,
                "label": label,
                "label_coarse": COARSE[label],
                "outlet": "صحيفة أ" if i % 2 else "Radio B",
            }
        )
    return out


def test_each_outlet_is_held_out_and_scored_on_coarse_labels(
    tiny_base, tmp_path, monkeypatch, isolated
):
    data = tmp_path / "topic"
    for split, seed in (("train", 1), ("validation", 2), ("test", 3)):
        write_jsonl(data / f"{split}.jsonl", rows(24, seed))
    monkeypatch.chdir(tmp_path)
    recipe = [
        "--fusion",
        "",
        "--max-steps",
        "2",
        "--eval-steps",
        "2",
        "--batch-size",
        "8",
        "--max-length",
        "32",
        "--stride",
        "8",
        "--threads",
        "1",
    ]
    assert (
        unseen_outlets.main(
            [
                "--data",
                str(data),
                "--report",
                str(tmp_path / "report"),
                "--base-model",
                str(tiny_base),
                *recipe,
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert set(metrics["outlets"]) == {"صحيفة أ", "Radio B"}
    assert [f["n"] for f in metrics["outlets"].values()] == [12, 12] and metrics["pooled"][
        "n"
    ] == 24
    for figures in [*metrics["outlets"].values(), metrics["pooled"]]:
        assert 0 <= figures["model"] <= 1 and 0 <= figures["tfidf"] <= 1
        assert figures["labels"] == ["economy", "politics", "sport"]
        assert figures["difference"] == pytest.approx(figures["model"] - figures["tfidf"])
    assert metrics["runs"]["Radio B"]["steps"] == 2
    assert metrics["overrides"] == ["--base-model", str(tiny_base), *recipe]
    assert (
        "pretraining corpus includes every outlet's *train* text"
        in (tmp_path / "report" / "report.md").read_text()
    )
    # The held-out outlet is absent from its run's training data.
    train = (tmp_path / "work" / "outlets" / "Radio_B" / "data" / "train.jsonl").read_text()
    assert "Radio B" not in train and "صحيفة أ" in train
    assert coarse_topic("middleEast") == coarse_topic("internationalNews") == "politics"
    # The held-out validation split is the other outlets' too (the model's early stopping).
    validation = (
        tmp_path / "work" / "outlets" / "Radio_B" / "data" / "validation.jsonl"
    ).read_text()
    assert "Radio B" not in validation and "صحيفة أ" in validation
    # A second run of the same recipe, in snake_case spellings,
    # finds every outlet done and trains nothing.
    monkeypatch.setattr(
        unseen_outlets, "held_out", lambda *a: pytest.fail("retrained a finished outlet")
    )
    snake = ["--" + a[2:].replace("-", "_") if a.startswith("--") else a for a in recipe]
    assert (
        unseen_outlets.main(
            [
                "--data",
                str(data),
                "--report",
                str(tmp_path / "report"),
                "--base_model",
                str(tiny_base),
                *snake,
            ]
        )
        == 0
    )


def test_data_without_outlets_is_refused(tmp_path):
    data = tmp_path / "topic"
    for split in ("train", "validation", "test"):
        write_jsonl(
            data / f"{split}.jsonl",
            [{k: v for k, v in r.items() if k != "outlet"} for r in rows(6, 1)],
        )
    with pytest.raises(SystemExit):
        unseen_outlets.main(["--data", str(data), "--report", str(tmp_path / "r")])


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--max-stepz", "3"], "--max-stepz"),
        (["--fusion", "bm25"], "--fusion"),
        (["--output-dir", "x"], "--output-dir"),
    ],
)
def test_a_bad_recipe_flag_is_a_usage_error_before_any_work(tmp_path, extra, named, capsys):
    with pytest.raises(SystemExit) as caught:
        unseen_outlets.main(
            ["--data", str(tmp_path / "missing"), "--report", str(tmp_path / "r"), *extra]
        )
    err = capsys.readouterr().err
    assert (
        caught.value.code == 2
        and err.startswith("usage: python -m akhbar.training.unseen_outlets")
        and named in err
    )
    assert not (tmp_path / "r").exists()
