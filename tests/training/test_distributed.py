"""``akhbar train`` and ``akhbar pretrain`` unchanged under ``torchrun``: two CPU processes on
the gloo backend, each training on its share of the batches, and one of them writing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_jsonl
from test_finetune import TAXONOMY, topic_rows
from transformers import AutoModel

from akhbar.models.bundle import load_bundle
from akhbar.models.predict import Predictor

PROCESSES = 2


def torchrun(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``torchrun --standalone`` (a free port of its own) with ``PROCESSES`` CPU processes."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TENSORBOARD_LOGGING_DIR": str(tmp_path / "tensorboard"),
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc_per_node={PROCESSES}", "-m", "akhbar.cli", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
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
