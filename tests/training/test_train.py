"""``akhbar train``'s command line: YAML defaults, flag overrides, several tasks, errors, help."""

from __future__ import annotations

from dataclasses import fields

import pytest
import yaml

from akhbar.models.tasks import STANCE_LABELS
from akhbar.training.finetune import run
from akhbar.training.finetune_config import CONFIG_DIR, SHARED_OUTPUT, FinetuneConfig
from akhbar.training.flags import flag
from akhbar.training.train import build_parser, parse_args


def test_parse_args_takes_yaml_defaults_and_cli_overrides():
    defaults = yaml.safe_load((CONFIG_DIR / "topic.yaml").read_text())
    [cfg] = parse_args(["topic", "--max-steps", "5", "--data", "x"])
    assert cfg.task == "topic"
    assert cfg.max_steps == 5 and cfg.data == "x"
    assert cfg.max_length == defaults["max_length"]
    assert cfg.batch_size == defaults["batch_size"]
    assert cfg.output_dir == defaults["output_dir"]
    # Without --data the YAML's dataset is used (the dataclass default is empty).
    assert parse_args(["topic", "--max-steps", "5"])[0].data == defaults["data"]
    # The command line beats the YAML.
    [cfg] = parse_args(["topic", "--data", "x", "--max-length", "64", "--batch-size", "4"])
    assert (cfg.max_length, cfg.batch_size) == (64, 4)
    # Stance takes its own file (its label set and class weighting).
    [stance] = parse_args(["stance", "--data", "x"])
    assert stance.labels == ",".join(STANCE_LABELS) and stance.class_weighting is True
    assert (stance.max_windows, stance.eval_steps) == (2, 100)
    # No task named: topic, as before.
    assert parse_args(["--data", "x"])[0].task == "topic"


def test_boolean_flags_take_an_optional_value():
    [cfg] = parse_args(["topic", "--class-weighting", "--bf16", "false", "--random-init", "true"])
    assert (cfg.class_weighting, cfg.bf16, cfg.random_init) == (True, False, True)
    [cfg] = parse_args(["stance", "--class-weighting", "no"])  # the stance YAML turns it on
    assert cfg.class_weighting is False


def test_parse_args_reads_the_task_yaml_from_the_config_dir(tmp_path, monkeypatch):
    # A value that differs from the dataclass default shows the YAML is really read.
    (tmp_path / "topic.yaml").write_text("data: topic/elsewhere\nmax_length: 77\nstride: 7\n")
    monkeypatch.setattr("akhbar.training.finetune_config.CONFIG_DIR", tmp_path)
    [cfg] = parse_args(["topic", "--max-steps", "5", "--data", "x"])
    assert (cfg.max_length, cfg.stride, cfg.max_steps, cfg.data) == (77, 7, 5, "x")
    assert parse_args(["topic", "--max-length", "90"])[0].max_length == 90


def test_config_file_overrides_and_unknown_keys_are_refused(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("data: somewhere\nmax_length: 48\nstride: 4\n")
    [cfg] = parse_args(["topic", "--config", str(good), "--stride", "8"])
    assert (cfg.data, cfg.max_length, cfg.stride) == ("somewhere", 48, 8)

    bad = tmp_path / "bad.yaml"
    bad.write_text("data: somewhere\nmax_lenght: 48\n")
    with pytest.raises(SystemExit) as caught:
        parse_args(["topic", "--config", str(bad)])
    assert caught.value.code == 2 and "max_lenght" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        parse_args(["topic", "--config", str(tmp_path / "missing.yaml"), "--data", "x"])
    assert "missing.yaml" in capsys.readouterr().err


def test_several_tasks_read_their_own_yaml_and_share_an_output(tmp_path, monkeypatch, capsys):
    (tmp_path / "topic.yaml").write_text(
        "data: topic/x\nmax_length: 77\nbatch_size: 32\noutput_dir: t\n"
    )
    (tmp_path / "summary.yaml").write_text(
        "data: summary/y\nmax_length: 300\nbatch_size: 8\noutput_dir: s\n"
    )
    monkeypatch.setattr("akhbar.training.finetune_config.CONFIG_DIR", tmp_path)
    topic, summary = parse_args(["topic,summary", "--learning-rate", "1e-4"])
    assert (topic.task, topic.data, topic.max_length, topic.batch_size) == (
        "topic",
        "topic/x",
        77,
        32,
    )
    assert (summary.task, summary.data, summary.max_length, summary.batch_size) == (
        "summary",
        "summary/y",
        300,
        8,
    )
    assert topic.learning_rate == summary.learning_rate == 1e-4
    assert topic.output_dir == summary.output_dir == SHARED_OUTPUT
    # --output-dir is honoured with several tasks, in either spelling
    # (akhbar.cli rewrites --output_dir).
    assert [c.output_dir for c in parse_args(["topic,summary", "--output-dir", "o"])] == ["o", "o"]
    assert [c.output_dir for c in parse_args(["topic,summary", "--output-dir=o2"])] == ["o2", "o2"]
    with pytest.raises(SystemExit):
        parse_args(["topic,summary", "--config", str(tmp_path / "topic.yaml")])
    assert "--config" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["topic,topic"])
    assert "once" in capsys.readouterr().err


def test_run_refuses_a_task_twice():
    cfg = FinetuneConfig(task="topic", data="x")
    with pytest.raises(ValueError, match="once"):
        run([cfg, cfg])


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["topic", "--tfidf-fusion"], "--tfidf-fusion"),  # the old README's flag
        (["topic", "--task", "stance"], "--task"),  # the task is the positional, named once
        (["topic", "--max-steps", "five"], "--max-steps"),
        (["topic", "--batch-size", "0"], "--batch-size"),
        (["topic", "--fusion", "bm25"], "--fusion"),
        (["summary", "--fusion", "tfidf"], "--fusion"),
        (["sentiment"], "sentiment"),
        (["topic", "--bf16", "maybe"], "--bf16"),
    ],
)
def test_a_bad_flag_or_value_is_a_usage_error_naming_it(argv, named, capsys):
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert err.startswith("usage: akhbar train") and named in err


def test_help_documents_every_flag_with_its_real_default():
    parser = build_parser()
    text = parser.format_help()
    assert "usage: akhbar train [-h]" in text and "TASK[,TASK...]" in text
    for f in fields(FinetuneConfig):
        if f.name != "task":
            assert flag(f.name) in text, f"{flag(f.name)} missing from akhbar train --help"
    for action in parser._actions:
        assert action.help, f"{action.option_strings or action.dest} has no help"
        if action.option_strings and action.dest != "help":
            assert "_" not in "".join(action.option_strings), (
                action.option_strings
            )  # kebab-case only
            assert "(default: " in action.help or "(required)" in action.help, action.option_strings
    # Per-task defaults come from each task's YAML, not from topic's whatever the task.
    lengths = {
        t: yaml.safe_load((CONFIG_DIR / f"{t}.yaml").read_text())["max_length"]
        for t in ("topic", "summary")
    }
    max_length = next(a for a in parser._actions if a.dest == "max_length")
    assert (
        f"topic {lengths['topic']}" in max_length.help
        and f"summary {lengths['summary']}" in max_length.help
    )
    dropout = next(
        a for a in parser._actions if a.dest == "dropout"
    )  # no YAML sets it: the dataclass default
    assert dropout.help.endswith("(default: 0.1)")
    assert "--task " not in text


def test_a_bad_record_is_one_line_and_exit_2_not_a_traceback(tmp_path, capsys):
    from akhbar.cli import main

    for split in ("train", "validation"):
        (tmp_path / f"{split}.jsonl").write_text(
            '{"id": "1", "text": "خبر قصير", "label": "رياضة"}\n{"id": 2\n', encoding="utf-8"
        )
    status = main(["train", "topic", "--data", str(tmp_path), "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("akhbar train: ") and "train.jsonl line 2" in err
    assert "Traceback" not in err
