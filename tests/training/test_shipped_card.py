"""The shipped bundle's card section lists what each task ships and every test figure."""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import ModelCard

from akhbar.training import shipped_card


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_section_names_each_choice_and_each_baseline(tmp_path):
    bundle = tmp_path / "bundle"
    write(
        bundle / "metrics.json",
        {
            "tasks": {
                "topic": {
                    "validation": {
                        "fusion": {
                            "kind": "tfidf",
                            "encoder": 0.8,
                            "tfidf": 0.85,
                            "fused_cv": 0.87,
                            "chosen": "fused",
                        }
                    }
                },
                "summary": {
                    "validation": {
                        "lead_prior": 4.0,
                        "rougeL": 0.59,
                        "rougeL_by_lead_prior": {"0.0": 0.57, "4.0": 0.59, "10000.0": 0.58},
                    }
                },
            }
        },
    )
    (bundle / "README.md").write_text("# card\n")
    write(
        tmp_path / "reports" / "topic" / "metrics.json",
        {
            "data": "topic/ant_v2.1_multisource",
            "split": "test",
            "model": {"macro_f1": 0.9},
            "baselines": {"tfidf": {"macro_f1": 0.88, "diff_ci": [0.001, 0.03]}},
        },
    )
    assert shipped_card.main([str(bundle), str(tmp_path / "reports")]) == 0
    text = (bundle / "README.md").read_text()
    assert text.count("<!-- shipped-figures -->") == 1
    # The test figures are the card's model-index, as the Hugging Face hub reads it.
    card = ModelCard.load(bundle / "README.md")
    assert card.text.startswith("# card\n") and card.data.model_name == "akhbar-bundle"
    [result] = card.data.eval_results
    assert (result.task_name, result.dataset_type, result.dataset_split) == (
        "topic",
        "topic/ant_v2.1_multisource",
        "test",
    )
    assert (result.metric_type, result.metric_value) == ("f1", 0.9)
    assert "fused with the tfidf side model" in text and "fused 0.870" in text
    assert "lead prior 4 (validation ROUGE-L: head alone 0.570, chosen 0.590, Lead-k 0.580)" in text
    assert (
        "| topic | ANT v2.1 multisource, test | 0.900 | tfidf | 0.880 | [+0.001, +0.030] |" in text
    )
    shipped_card.main(
        [str(bundle), str(tmp_path / "reports")]
    )  # rewriting replaces, never duplicates
    again = (bundle / "README.md").read_text()
    assert again.count("## What ships") == 1 and again.count("model-index") == 1


def test_a_head_reading_another_tasks_windows_says_so():
    validation = {
        "fusion": {
            "kind": "tfidf",
            "encoder": 0.8,
            "tfidf": 0.85,
            "fused_cv": 0.87,
            "chosen": "fused",
        },
        "shared_pass": {
            "reads": "summary",
            "macro_f1_shared_pass": 0.87,
            "macro_f1_own_windows": 0.871,
        },
    }
    line = shipped_card.what_ships("topic", validation)
    assert line.startswith("encoder head fused with the tfidf side model")
    assert (
        "reads the summary windows" in line and "0.8700, against 0.8710 on its own windows" in line
    )


def test_a_side_model_that_answers_alone_is_not_called_a_fusion():
    fusion = {
        "kind": "sentence_encoder",
        "encoder": 0.26,
        "sentence_encoder": 0.43,
        "stacked_cv": 0.386,
        "fused_cv": 0.43,
        "side_alone": True,
        "side_model": "pairs_relatedness C=0.1",
        "chosen": "fused",
    }
    line = shipped_card.what_ships("stance", {"fusion": fusion})
    assert line.startswith("the sentence_encoder side model (pairs_relatedness C=0.1) alone")
    assert "head 0.260, sentence_encoder 0.430, both stacked 0.386" in line


def test_slices_are_listed_with_the_labels_they_average_over(tmp_path):
    bundle = tmp_path / "bundle"
    write(bundle / "metrics.json", {"tasks": {}})
    (bundle / "README.md").write_text("# card\n")
    write(
        tmp_path / "reports" / "stance-ans" / "metrics.json",
        {
            "data": "stance/ans_khouja2020",
            "split": "test",
            "model": {"macro_f1": 0.6},
            "baselines": {},
            "model_without_other": {
                "labels": ["agree", "disagree"],
                "macro_f1": 0.7,
                "baselines": {"tfidf": {"macro_f1": 0.5, "diff_ci": [0.1, 0.3]}},
            },
        },
    )
    assert shipped_card.main([str(bundle), str(tmp_path / "reports")]) == 0
    assert (
        "native 3 labels, gold not `other` (agree, disagree) | 0.700 | tfidf | 0.500 | "
        "[+0.100, +0.300] |" in (bundle / "README.md").read_text()
    )
