"""The installed ``akhbar`` console script: help, version, errors, argument checks."""

from __future__ import annotations

import dataclasses
import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import akhbar
from akhbar import cli
from akhbar.serving.batch import score as batch
from akhbar.serving.core import store
from akhbar.serving.http import serve

AKHBAR = Path(sys.executable).parent / "akhbar"  # the console script of this venv
COMMANDS = ["pretrain", "train", "evaluate", "score", "serve", "models"]
REPO = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # Generous timeout: pretrain/train/evaluate import torch and transformers for --help.
    return subprocess.run(
        [str(AKHBAR), *args], capture_output=True, text=True, timeout=180, env=env
    )


def test_console_script_is_installed():
    assert AKHBAR.is_file(), f"no console script at {AKHBAR}; run `make setup`"


def test_help_lists_every_command():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    for name in COMMANDS:
        assert name in result.stdout, f"{name!r} missing from `akhbar --help`"


def test_version():
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"akhbar {akhbar.__version__}"


@pytest.mark.parametrize("name", COMMANDS)
def test_subcommand_help(name):
    result = run(name, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: akhbar {name}" in result.stdout


@pytest.mark.parametrize("action", ["list", "export", "import", "promote"])
def test_models_action_help(action):
    result = run("models", action, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: akhbar models {action}" in result.stdout


def test_no_command_is_a_usage_error():
    result = run()
    assert result.returncode == 2
    assert "usage: akhbar" in result.stderr


def test_unknown_command_is_named():
    result = run("frobnicate")
    assert result.returncode == 2
    assert "frobnicate" in result.stderr


def test_score_rejects_bad_summary_sentences_from_console_script():
    result = run(
        "score", "--input", "in.jsonl", "--output", "out.jsonl", "--summary-sentences", "0"
    )
    assert result.returncode == 2
    assert "--summary-sentences" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--summary-sentences", "0"], "--summary-sentences"),
        (["--summary-sentences", "21"], "--summary-sentences"),
        (["--summary-sentences", "three"], "--summary-sentences"),
        (["--summary-max-words", "0"], "--summary-max-words"),
        (["--batch-size", "0"], "--batch-size"),
        (["--engine", "ray", "--concurrency", "0"], "--concurrency"),
        (["--engine", "spark"], "--engine"),
        (["--tasks", "topic,sentiment"], "--tasks"),
        (["--tasks", ","], "--tasks"),
        (["--concurrency", "2"], "--concurrency"),  # Ray-only flag with the local engine
        (["--ray-address", "ray://head:10001"], "--ray-address"),
    ],
)
def test_score_argument_checks_name_the_flag(extra, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        batch.main(["--input", "in.jsonl", "--output", "out.jsonl", *extra])
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_score_output_needs_a_known_extension(capsys):
    with pytest.raises(SystemExit) as exit_info:
        batch.main(["--input", "in.jsonl", "--output", "out.txt"])
    assert exit_info.value.code == 2
    assert "--output" in capsys.readouterr().err


def test_score_parses_the_full_flag_list():
    args = batch.parse_args(
        [
            "--input", "s3://news/archive/",
            "--output", "s3://news/scored.parquet",
            "--tasks", "stance,topic,stance",
            "--claims-field", "claims_ar",
            "--id-field", "doc_id",
            "--summary-sentences", "20",
            "--summary-max-words", "60",
            "--batch-size", "8",
            "--resume",
            "--keep-fields", "url,published",
            "--engine", "ray",
            "--ray-address", "ray://head:10001",
            "--concurrency", "4-16",
            "--actor-cpus", "2",
            "--actor-gpus", "0.5",
            "--shard-rows", "100",
        ]
    )  # fmt: skip
    assert args.tasks == ["stance", "topic"]
    assert (args.claims_field, args.id_field) == ("claims_ar", "doc_id")
    assert (args.summary_sentences, args.summary_max_words, args.batch_size) == (20, 60, 8)
    assert args.resume and args.engine == "ray" and args.concurrency == (4, 16)
    assert (args.actor_cpus, args.actor_gpus, args.shard_rows) == (2.0, 0.5, 100)
    assert args.keep_fields == ("url", "published")


def test_score_defaults():
    args = batch.build_parser().parse_args(["--input", "a.csv", "--output", "b.jsonl"])
    assert args.tasks == ["topic", "summary", "stance"]
    assert (args.claims_field, args.id_field, args.engine) == ("claims", "id", "local")
    assert args.batch_size >= 1 and not args.resume


# --- score, serve, models: one flag style, usage errors, the real defaults in the help ------------
# parse_args parses and checks a command line without running anything.

SERVING_PARSERS = {
    "score": batch.build_parser,
    "serve": serve.build_parser,
    "models": store.build_parser,
}


def _flag_actions(parser):
    """``(prog, action)`` for every option of ``parser`` and of its subcommands' parsers."""
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            yield parser.prog, action
        if action.nargs == "A...":  # the subcommands of `akhbar models`
            for sub in action.choices.values():
                yield from _flag_actions(sub)


@pytest.mark.parametrize("name", SERVING_PARSERS)
def test_serving_flags_are_kebab_case_and_their_help_gives_the_default(name):
    actions = list(_flag_actions(SERVING_PARSERS[name]()))
    assert actions
    for prog, action in actions:
        for flag in action.option_strings:
            assert "_" not in flag, f"{prog} {flag}"
        assert action.help and ("default" in action.help or action.required), (
            f"{prog} {action.option_strings}"
        )


@pytest.mark.parametrize(
    ("parse", "argv"),
    [
        (batch.parse_args, ["--input", "a.jsonl", "--output", "b.jsonl", "--bogus"]),
        (serve.parse_args, ["--bogus"]),
        (store.parse_args, ["list", "--bogus"]),
    ],
)
def test_serving_unknown_flag_prints_the_usage_and_exits_2(parse, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: akhbar ") and "--bogus" in err


def test_score_accepts_snake_case_flags_as_hidden_aliases():
    args = batch.parse_args(
        cli.kebab_flags(
            [
                "--input",
                "a.jsonl",
                "--output",
                "b.jsonl",
                "--summary_sentences",
                "3",
                "--id_field=doc_id",
            ]
        )
    )
    assert (args.summary_sentences, args.id_field) == (3, "doc_id")
    assert "summary_sentences" not in batch.build_parser().format_help().replace(
        "summary_sentences field", ""
    )


def test_serving_parse_args_run_nothing(tmp_path):
    args = batch.parse_args(
        ["--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "out.jsonl")]
    )
    assert args.input.endswith("missing.jsonl") and not (tmp_path / "out.jsonl").exists()
    assert serve.parse_args(["--port", "8080"]).port == 8080
    assert store.parse_args(["promote", "akhbar-topic:v1", "--task", "topic"]).task == ["topic"]


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (["--rejects", "bad.jsonl", "--resume"], "cannot be read back"),
        (
            ["--rejects", "bad.jsonl", "--engine", "ray"],
            "Ray prints its workers' log lines on standard output",
        ),
        ([], "needs --rejects PATH"),
        (["--rejects", "-"], "--rejects must name a file of its own"),
    ],
)
def test_score_to_standard_output_refuses_what_cannot_work_and_says_why(extra, why, capsys):
    with pytest.raises(SystemExit) as exit_info:
        batch.parse_args(["--input", "in.jsonl", "--output", "-", *extra])
    assert exit_info.value.code == 2
    assert why in capsys.readouterr().err


def test_score_to_standard_output_with_a_rejects_file_parses():
    args = batch.parse_args(["--input", "-", "--output", "-", "--rejects", "bad.jsonl"])
    assert (args.output, args.rejects) == ("-", "bad.jsonl")


def test_serve_rejects_a_bad_port():
    result = run("serve", "--port", "70000")
    assert result.returncode == 2
    assert "--port" in result.stderr


def test_serve_without_models_says_how_to_get_them(tmp_path):
    # An empty model store and no shipped defaults: one sentence, before any server starts.
    # (The served tests in tests/serving/test_served.py start the real server.)
    (tmp_path / "none").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKHBAR_", "BENTOML_"))}
    env.update(BENTOML_HOME=str(tmp_path / "bentoml"), AKHBAR_DEFAULT_MODELS=str(tmp_path / "none"))
    result = run("serve", "--port", "3999", env=env)
    assert result.returncode == 1
    assert "make models" in result.stderr and "akhbar models import" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- train, pretrain, evaluate: one flag style, usage errors, complete help -----------------------

TRAINING_COMMANDS = ["train", "pretrain", "evaluate"]


def test_train_unknown_flag_is_a_usage_error_not_a_traceback():
    result = run(
        "train", "topic", "--tfidf_fusion"
    )  # the flag the README used to name (it is --fusion)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: akhbar train") and "--tfidf-fusion" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["pretrain", "--bogus_flag", "1"],
        ["pretrain", "--seq_len", "4"],  # a bad value, refused by the config's check
        ["evaluate", "topic", "--data", "d", "--report", "r", "--bogus_flag"],
        ["evaluate", "topic", "--data", "d", "--report", "r", "--summary_sentences", "0"],
        ["train", "topic", "--max_steps", "many"],
    ],
)
def test_bad_flags_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 2
    assert capsys.readouterr().err.startswith(f"usage: akhbar {argv[0]}")


def test_snake_case_flags_are_accepted_by_akhbar_train(monkeypatch, tmp_path, capsys):
    runs = []

    def fake_run(cfgs):
        runs.append(cfgs)
        return SimpleNamespace(metrics={"steps": 0}, bundle=tmp_path / "bundle")

    monkeypatch.setattr("akhbar.training.finetune.run", fake_run)
    assert (
        cli.main(
            [
                "train",
                "topic,summary",
                "--max_steps",
                "5",
                "--base_model",
                "b",
                "--output_dir",
                str(tmp_path),
                "--skip_bad",
            ]
        )
        == 0
    )
    [cfgs] = runs
    assert [c.task for c in cfgs] == ["topic", "summary"]
    # --output-dir is honoured with several tasks, whatever its spelling.
    assert all(
        (c.max_steps, c.base_model, c.output_dir, c.skip_bad) == (5, "b", str(tmp_path), True)
        for c in cfgs
    )
    assert f"bundle written to {tmp_path / 'bundle'}" in capsys.readouterr().err


def test_snake_case_flags_parse_for_pretrain_and_evaluate():
    from akhbar.training import evaluate, pretrain

    cfg = pretrain.parse_args(
        cli.kebab_flags(["--max_steps", "5", "--embedding_init", "word2vec", "--compile", "false"])
    )
    assert (cfg.max_steps, cfg.embedding_init, cfg.compile) == (5, "word2vec", False)
    args = evaluate.parse_args(
        cli.kebab_flags(["summary", "--data", "d", "--report", "r", "--summary_sentences", "3"])
    )
    assert (args.task, args.summary_sentences) == ("summary", 3)


# The settings dataclass whose fields are a command's flags (evaluate's flags are plain argparse).
SETTINGS = {
    "train": ("akhbar.training.finetune_config", "FinetuneConfig"),
    "pretrain": ("akhbar.training.pretrain", "PretrainConfig"),
}


@pytest.mark.parametrize("name", TRAINING_COMMANDS)
def test_help_documents_every_flag_with_its_default(name):
    parser = importlib.import_module(cli.COMMANDS[name][0]).build_parser()
    text = parser.format_help()
    for action in parser._actions:
        if action.dest == "help":
            continue
        assert action.help, f"akhbar {name}: {action.option_strings or action.dest} has no help"
        if action.option_strings:
            assert all("_" not in o for o in action.option_strings), (
                action.option_strings
            )  # kebab-case only
            assert "(default: " in action.help or "(required)" in action.help, action.option_strings
            assert action.option_strings[0] in text
    module, cls = SETTINGS.get(name, (None, None))
    for f in dataclasses.fields(getattr(importlib.import_module(module), cls)) if module else ():
        if f.name != "task":  # akhbar train's positional TASK[,TASK...]
            assert "--" + f.name.replace("_", "-") in text, (
                f"--{f.name} missing from akhbar {name} --help"
            )


def test_train_usage_shows_the_task_positional(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["train", "--help"])
    assert caught.value.code == 0
    usage = capsys.readouterr().out.splitlines()[0]
    assert (
        usage.startswith("usage: akhbar train")
        and "TASK[,TASK...]" in usage
        and "--task" not in usage
    )


# --- a missing optional extra: one line naming the pip install, exit status 2 --------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "topic"],
        ["pretrain"],
        ["evaluate", "topic", "--data", "d", "--report", "r"],
    ],
)
def test_training_commands_without_the_train_extra_say_what_to_install(argv, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "rouge_score", None)  # `import rouge_score` now fails
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == (
        f"akhbar {argv[0]} needs the 'train' extra (missing module 'rouge_score'): "
        "pip install 'akhbar[train]'\n"
    )


def test_train_help_needs_no_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "rouge_score", None)
    with pytest.raises(SystemExit) as caught:
        cli.main(["train", "--help"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith("usage: akhbar train")


def test_a_module_of_an_extra_missing_while_running_is_named(monkeypatch, capsys):
    def needs(module):
        def main(argv):
            raise ModuleNotFoundError(f"No module named '{module}'", name=module)

        return main

    monkeypatch.setattr("akhbar.training.train.main", needs("gensim.models"))
    assert cli.main(["train", "topic"]) == 2
    assert capsys.readouterr().err == (
        "akhbar train needs the 'train' extra (missing module 'gensim'): "
        "pip install 'akhbar[train]'\n"
    )
    monkeypatch.setattr("akhbar.serving.batch.score.main", needs("ray"))
    assert cli.main(["score"]) == 2
    assert "akhbar score needs the 'ray' extra" in capsys.readouterr().err
    # A module no extra installs is a bug, not a missing extra: its traceback stays.
    monkeypatch.setattr("akhbar.training.train.main", needs("frobnicate"))
    with pytest.raises(ModuleNotFoundError, match="frobnicate"):
        cli.main(["train", "topic"])
