"""``akhbar train`` and ``akhbar pretrain`` unchanged under ``torchrun``: two CPU processes on
the gloo backend, each training on its share of the batches, and one of them writing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_jsonl
from test_finetune import TAXONOMY, topic_rows
from transformers import AutoModel

from akhbar.models.bundle import load_bundle
from akhbar.models.predict import Predictor
from akhbar.training.distributed import TIMEOUT_ENV

PROCESSES = 2
# The process group's timeout in these runs: a collective that only some processes reach fails
# in this time (the default is 6 hours), well before the runs' own limit of 600 s.
GROUP_TIMEOUT_S = 120


def run_torchrun(
    command: list[str], tmp_path: Path, group_timeout_s: float, timeout: float
) -> subprocess.CompletedProcess:
    """``torchrun --standalone`` (a free port of its own) with ``PROCESSES`` CPU processes; a
    run still going after ``timeout`` fails with the end of its standard error."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TENSORBOARD_LOGGING_DIR": str(tmp_path / "tensorboard"),
        TIMEOUT_ENV: str(group_timeout_s),
    }
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    launcher += [f"--nproc_per_node={PROCESSES}", *command]
    try:
        return subprocess.run(launcher, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr or b""
        stderr = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
        pytest.fail(f"torchrun still running after {timeout} s; its stderr ends:\n{stderr[-3000:]}")


def torchrun(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    done = run_torchrun(["-m", "akhbar.cli", *args], tmp_path, GROUP_TIMEOUT_S, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_train_under_torchrun_shards_the_batches_and_writes_one_bundle(tiny_base, tmp_path):
    data = tmp_path / "data"
    write_jsonl(data / "train.jsonl", topic_rows(40, seed=1))
    write_jsonl(data / "validation.jsonl", topic_rows(20, seed=2))
    out = tmp_path / "out"
    done = torchrun(
        ["train", "topic", "--data", str(data), "--base-model", str(tiny_base)]
        + ["--labels", ",".join(TAXONOMY), "--max-steps", "-1", "--epochs", "1"]
        + ["--batch-size", "8", "--max-length", "32", "--stride", "8", "--eval-steps", "2"]
        + ["--fusion", "", "--output-dir", str(out)],
        tmp_path,
    )
    metrics = json.loads((out / "bundle" / "metrics.json").read_text())
    # 40 rows in batches of 8 are 5 batches; two processes take them two at a time.
    assert metrics["steps"] == math.ceil(5 / PROCESSES)
    assert done.stderr.count("bundle written to") == 1  # the first process reports
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 1
    [prediction] = Predictor(load_bundle(out / "bundle")).topic([topic_rows(1, seed=5)[0]["text"]])
    assert prediction.label in TAXONOMY
    assert sum(prediction.scores.values()) == pytest.approx(1.0)


def test_pretrain_under_torchrun_builds_the_data_once_and_exports_once(tmp_path):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", topic_rows(200, seed=4))
    work, out = tmp_path / "work", tmp_path / "base"
    torchrun(
        ["pretrain", "--corpus", str(corpus), "--work-dir", str(work)]
        + ["--output-dir", str(out), "--objective", "electra", "--vocab-size", "300"]
        + ["--layers", "1", "--hidden", "32", "--heads", "2", "--intermediate", "64"]
        + ["--max-positions", "64", "--seq-len", "32", "--batch-size", "8", "--max-steps", "4"]
        + ["--warmup-steps", "1", "--compile", "false"],
        tmp_path,
    )
    # The first process built the tokenizer and ids; the other found them (one tokenization).
    assert len(list(work.glob("tokens-*"))) == 1
    assert len(list((work / "tensorboard").rglob("events.out.tfevents.*"))) == 1
    report = json.loads((out / "pretrain_report.json").read_text())
    assert report["steps"] == 4 and report["tokens_seen"] == 4 * 8 * 32 * PROCESSES
    assert AutoModel.from_pretrained(out).config.hidden_size == 32


def test_a_process_left_waiting_at_the_end_fails_within_the_group_timeout(tmp_path):
    """The first process never reaches the end of the run (as if stuck in its export): the
    other fails after the group's timeout with an error that says so, and torchrun stops the
    run, instead of everyone waiting for hours."""
    script = tmp_path / "stuck.py"
    script.write_text(
        "import os, time\n"
        "from akhbar.training.distributed import finish, main_process_first\n"
        "with main_process_first():  # starts the process group, as pretraining does\n"
        "    pass\n"
        "if os.environ['RANK'] == '0':\n"
        "    time.sleep(300)\n"
        "finish()\n"
    )
    start = time.monotonic()
    done = run_torchrun([str(script)], tmp_path, group_timeout_s=3, timeout=200)
    assert done.returncode != 0
    assert time.monotonic() - start < 150  # the group's 3 s, not process 0's 300 s
    assert "waited at the end of the run" in done.stderr, done.stderr[-3000:]
