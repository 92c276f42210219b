"""The base-vs-random-vs-TF-IDF report: one run, paired intervals, a model-card section."""

from __future__ import annotations

import json

import pytest
from conftest import write_jsonl
from test_finetune import topic_rows

from akhbar.training.base_report import BaseReportConfig, parse_args, run_report


def test_report_compares_base_random_and_tfidf_on_one_split(tiny_base, tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    data = tmp_path / "data"
    write_jsonl(data / "train.jsonl", topic_rows(30, seed=1))
    write_jsonl(data / "validation.jsonl", topic_rows(15, seed=2))
    card = tmp_path / "card.md"
    card.write_text("# base\n")
    cfg = BaseReportConfig(
        bases=str(tiny_base),
        data=str(data),
        output_dir=str(tmp_path / "report"),
        work_dir=str(tmp_path / "runs"),
        max_steps=4,
        max_length=32,
        batch_size=8,
        model_card=str(card),
    )
    report = run_report(cfg)
    assert set(report["results"]) == {"random-init", tiny_base.name, "tfidf"}
    assert report["n"] == 15
    base = report["results"][tiny_base.name]
    assert base["random_init"] is False and report["results"]["random-init"]["random_init"] is True
    for key in ("macro_f1", "macro_f1_ci", "diff_vs_random_ci", "diff_vs_tfidf_ci"):
        assert key in base
    lo, hi = base["diff_vs_random_ci"]
    assert lo <= hi
    saved = json.loads((tmp_path / "report" / "base_report.json").read_text())
    assert saved["results"]["tfidf"]["macro_f1"] == report["results"]["tfidf"]["macro_f1"]
    text = card.read_text()
    assert text.startswith("# base\n") and "<!-- base-report -->" in text and "| tfidf |" in text


def test_command_line_takes_kebab_case_and_the_snake_case_alias(capsys):
    cfg = parse_args(
        ["--bases", "a,b", "--output-dir", "r", "--max_steps", "5", "--model_card", "c.md"]
    )
    assert (cfg.bases, cfg.output_dir, cfg.max_steps, cfg.model_card) == ("a,b", "r", 5, "c.md")
    assert cfg.max_length == BaseReportConfig(bases="x").max_length
    with pytest.raises(SystemExit) as caught:
        parse_args(["--output-dir", "r"])
    assert caught.value.code == 2 and "--bases" in capsys.readouterr().err
