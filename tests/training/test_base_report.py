"""The base-vs-random-vs-TF-IDF report: one run, paired intervals, a model-card section."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
from conftest import write_jsonl
from test_finetune import topic_rows

from akhbar.training.base_report import BaseReportConfig, parse_args, run_report
from akhbar.training.finetune import run


def test_report_pairs_each_base_with_the_control_random_init_and_the_baseline(
    tiny_base, tmp_path, monkeypatch
):
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    other = tmp_path / "other-base"
    shutil.copytree(tiny_base, other)
    data = tmp_path / "data"
    write_jsonl(data / "train.jsonl", topic_rows(30, seed=1))
    write_jsonl(data / "validation.jsonl", topic_rows(15, seed=2))
    card = tmp_path / "card.md"
    card.write_text("# base\n")
    cfg = BaseReportConfig(
        bases=f"{tiny_base},{other}",
        evaluations="topic",
        data=str(data),
        output_dir=str(tmp_path / "report"),
        work_dir=str(tmp_path / "runs"),
        max_steps=4,
        max_length=32,
        batch_size=8,
        model_card=str(card),
    )
    report = run_report(cfg)
    topic = report["evaluations"]["topic"]
    assert set(topic["results"]) == {"random-init", tiny_base.name, "other-base", "tfidf"}
    assert topic["n"] == 15 and topic["control"] == tiny_base.name
    control, base = topic["results"][tiny_base.name], topic["results"]["other-base"]
    assert base["random_init"] is False and topic["results"]["random-init"]["random_init"] is True
    assert base["steps"] == 4
    for key in ("macro_f1", "macro_f1_ci", "diff_vs_control_ci", "diff_vs_random_ci"):
        assert key in base
    assert "diff_vs_control_ci" not in control and "diff_vs_baseline_ci" in control
    lo, hi = base["diff_vs_random_ci"]
    assert lo <= hi
    # Every prediction is kept, so a base trained later can be paired with these runs.
    assert len(topic["gold"]) == 15
    assert set(topic["predictions"]) == set(topic["results"])
    saved = json.loads((tmp_path / "report" / "base_report.json").read_text())
    assert (
        saved["evaluations"]["topic"]["results"]["tfidf"]["macro_f1"]
        == (topic["results"]["tfidf"]["macro_f1"])
    )
    text = card.read_text()
    assert text.startswith("# base\n") and "<!-- base-report -->" in text and "| tfidf |" in text
    assert "## topic (n = 15" in text

    # A base trained later is paired with the control's earlier run, which is not fine-tuned again.
    later = tmp_path / "later-base"
    shutil.copytree(tiny_base, later)
    trained = []
    monkeypatch.setattr(
        "akhbar.training.base_report.run", lambda ft: trained.append(ft.base_model) or run(ft)
    )
    again = replace(
        cfg,
        bases=f"{tiny_base},{later}",
        random_init=False,
        reuse=str(tmp_path / "report" / "base_report.json"),
        output_dir=str(tmp_path / "report-later"),
        model_card=None,
    )
    paired = run_report(again)["evaluations"]["topic"]
    assert trained == [str(later)]
    assert paired["predictions"][tiny_base.name] == topic["predictions"][tiny_base.name]
    assert paired["results"][tiny_base.name]["reused"] is True
    assert "diff_vs_control_ci" in paired["results"]["later-base"]
    with pytest.raises(ValueError, match="--reuse .* was made with --max-steps 4, this run has 5"):
        run_report(replace(again, max_steps=5))


def test_command_line_takes_kebab_case_and_the_snake_case_alias(capsys):
    cfg = parse_args(
        ["--bases", "a,b", "--output-dir", "r", "--max_steps", "5", "--model_card", "c.md"]
    )
    assert (cfg.bases, cfg.output_dir, cfg.max_steps, cfg.model_card) == ("a,b", "r", 5, "c.md")
    assert cfg.max_length == BaseReportConfig(bases="x").max_length
    assert cfg.names == ["topic", "ans", "unifiedfc"]
    with pytest.raises(SystemExit) as caught:
        parse_args(["--output-dir", "r"])
    assert caught.value.code == 2 and "--bases" in capsys.readouterr().err
    for wrong, named in (
        (["--evaluations", "topic,fnc"], "unknown fnc"),
        (["--data", "d"], "name one --evaluations"),
    ):
        with pytest.raises(SystemExit) as caught:
            parse_args(["--bases", "a", *wrong])
        assert caught.value.code == 2 and named in capsys.readouterr().err


def test_reused_reports_are_merged_when_their_settings_and_gold_agree(tmp_path):
    from akhbar.training.base_report import earlier_runs

    cfg = BaseReportConfig(bases="a,b", max_steps=7)

    def report(file: str, run_name: str, gold: list[int], **config) -> str:
        evaluation = {
            "gold": gold,
            "labels": ["x", "y"],
            "results": {run_name: {"base": run_name, "random_init": False}},
            "predictions": {run_name: gold},
        }
        settings = {key: getattr(cfg, key) for key in ("data", "max_length", "batch_size")}
        settings |= {"max_steps": 7, "max_train_samples": 0, "seed": 42, **config}
        path = tmp_path / file
        path.write_text(json.dumps({"config": settings, "evaluations": {"topic": evaluation}}))
        return str(path)

    first, second = report("1.json", "a", [0, 1]), report("2.json", "b", [0, 1])
    merged = earlier_runs(replace(cfg, reuse=f"{first},{second}"), "topic")
    assert set(merged["results"]) == set(merged["predictions"]) == {"a", "b"}
    assert earlier_runs(replace(cfg, reuse=first), "ans") == {}
    other_gold = report("3.json", "b", [1, 1])
    with pytest.raises(ValueError, match="gold differs"):
        earlier_runs(replace(cfg, reuse=f"{first},{other_gold}"), "topic")
    other_seed = report("4.json", "b", [0, 1], seed=1)
    with pytest.raises(ValueError, match="--seed 1, this run has 42"):
        earlier_runs(replace(cfg, reuse=other_seed), "topic")
