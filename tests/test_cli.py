"""The installed ``akhbar`` console script: help, version, errors, argument checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import akhbar
from akhbar.serving.batch import score as batch

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
    result = run("score", "--input", "in.jsonl", "--output", "out.jsonl", "--summary-sentences", "0")
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
    parser = batch.build_parser()
    args = parser.parse_args(
        [
            "--input", "-",
            "--output", "out.parquet",
            "--tasks", "stance,topic,stance",
            "--claims-field", "claims_ar",
            "--id-field", "doc_id",
            "--summary-sentences", "20",
            "--summary-max-words", "60",
            "--batch-size", "8",
            "--resume",
            "--engine", "ray",
            "--ray-address", "ray://head:10001",
            "--concurrency", "4",
        ]
    )  # fmt: skip
    batch.check_args(parser, args)
    assert args.tasks == ["stance", "topic"]
    assert (args.claims_field, args.id_field) == ("claims_ar", "doc_id")
    assert (args.summary_sentences, args.summary_max_words, args.batch_size) == (20, 60, 8)
    assert args.resume and args.engine == "ray" and args.concurrency == 4


def test_score_defaults():
    args = batch.build_parser().parse_args(["--input", "a.csv", "--output", "b.jsonl"])
    assert args.tasks == ["topic", "summary", "stance"]
    assert (args.claims_field, args.id_field, args.engine) == ("claims", "id", "local")
    assert args.batch_size >= 1 and not args.resume


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
