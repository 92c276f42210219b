"""Shared fixtures: a tiny Arabic base model and bundle, built once per test run.

Everything here is made from sentences the project writes itself, with random weights
and no network, so a test run downloads nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tools import tiny_models

# Tests never reach a model hub: fail fast instead of retrying for a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ARABIC_SENTENCES = tiny_models.ARABIC_SENTENCES  # the tests' own sentences, shared with tools


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120) -> None:
    """Poll ``condition`` until it holds, while the child ``proc`` (started with ``stderr=PIPE``)
    runs; fail with the end of its standard error when it exits first, and kill it on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the child ended first: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the child")
        time.sleep(0.005)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Keep a training run's side effects inside its test: TensorBoard logs under tmp_path
    (transformers takes the folder from the environment), and torch's thread count, which
    ``--threads`` sets process-wide, restored afterwards."""
    import torch

    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tensorboard"))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """A 1-layer, hidden-32 BERT with a WordPiece tokenizer trained on the sentences above."""
    return tiny_models.tiny_base(tmp_path_factory.mktemp("tiny_base"))


@pytest.fixture(scope="session")
def tiny_bundle(tiny_base, tmp_path_factory) -> Path:
    """A random-weight bundle over the tiny base with the shipped bundle's heads: topic, both
    stance heads (article and headline) and summary."""
    return tiny_models.tiny_bundle(tiny_base, tmp_path_factory.mktemp("tiny_bundle") / "bundle")


# ---------------------------------------------------------------------------------------
# Batch scoring (tests/serving/test_batch.py, test_batch_ray.py)


@pytest.fixture(scope="session")
def analyzer(tiny_bundle):
    """The Analyzer on the tiny bundle for every task (modules may define their own)."""
    from akhbar.models.tasks import TASKS
    from akhbar.serving.core.analyzer import Analyzer

    return Analyzer.from_bundles({t: tiny_bundle for t in TASKS})


@pytest.fixture()
def env(monkeypatch, tiny_bundle, tmp_path):
    """Models on the tiny bundle (as the service resolves them), the test's limits."""
    from serving_support import point_at  # tests/serving/, on the path for the tests there

    point_at(
        monkeypatch,
        tiny_bundle,
        tmp_path / "home",
        AKHBAR_MAX_TEXT_CHARS="600",
        AKHBAR_MAX_CLAIMS="4",
    )
    return tmp_path


@pytest.fixture()
def torch_threads():
    """Put torch's thread count back after a test that lets akhbar set it."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
