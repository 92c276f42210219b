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

# Tests never reach a model hub: fail fast instead of retrying for a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ARABIC_SENTENCES = [
    "قال وزير المالية إن الحكومة سترفع ميزانية التعليم في العام المقبل.",
    "سجل المهاجم هدفين في المباراة النهائية وفاز فريقه بالكأس.",
    "ارتفعت أسعار النفط في الأسواق العالمية بعد اجتماع المنتجين.",
    "افتتح المهرجان السينمائي دورته الجديدة بعرض فيلم وثائقي عن البحر.",
    "أعلنت الشركة عن هاتف جديد يعمل بالذكاء الاصطناعي وبطارية أطول عمرا.",
    "التقى الرئيس نظيره في العاصمة لبحث العلاقات الثنائية والأمن الإقليمي.",
    "تراجعت البورصة المحلية بنسبة ٢٫٥ في المئة مع نهاية جلسة التداول.",
    "أكد المدرب أن اللاعبين جاهزون للمواجهة المقبلة رغم الإصابات.",
    "نظمت وزارة الثقافة معرضا للكتاب شارك فيه مئات الناشرين العرب.",
    "حذرت الأمم المتحدة من تفاقم الأزمة الإنسانية في المنطقة.",
]


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
    from transformers import BertConfig, BertModel

    from akhbar.models.normalize import NormalizerConfig
    from akhbar.training.tokenizer_training import save_tokenizer, train_tokenizer

    out = tmp_path_factory.mktemp("tiny_base")
    tokenizer = train_tokenizer(ARABIC_SENTENCES * 20, vocab_size=400, min_frequency=1)
    save_tokenizer(tokenizer, out, NormalizerConfig())
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tiny_base, tmp_path_factory) -> Path:
    """A random-weight bundle over the tiny base with the shipped bundle's heads: topic, both
    stance heads (article and headline) and summary."""
    from transformers import AutoModel, AutoTokenizer

    from akhbar.models.bundle import BundleSettings, TaskSettings, save_bundle
    from akhbar.models.modeling import AkhbarModel
    from akhbar.models.tasks import (
        HEADLINE_STANCE_LABELS,
        SENTENCE,
        SEQUENCE,
        STANCE_LABELS,
        TOPIC_LABELS,
    )

    tasks = {
        "topic": TaskSettings(SEQUENCE, TOPIC_LABELS, max_length=64, stride=16),
        "stance": TaskSettings(SEQUENCE, STANCE_LABELS, max_length=64, stride=16),
        "stance_headline": TaskSettings(
            SEQUENCE, HEADLINE_STANCE_LABELS, max_length=64, stride=16, evidence_sentences=1
        ),
        "summary": TaskSettings(SENTENCE, ("selected",), max_length=64, stride=0),
    }
    model = AkhbarModel(AutoModel.from_pretrained(tiny_base), {t: s.head for t, s in tasks.items()})
    out = tmp_path_factory.mktemp("tiny_bundle") / "bundle"
    save_bundle(
        out,
        model,
        AutoTokenizer.from_pretrained(tiny_base),
        BundleSettings(tasks=tasks, base_model=str(tiny_base)),
    )
    return out


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
