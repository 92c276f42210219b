"""``akhbar models export --format hf|onnx``: one head that runs without akhbar, answering as the
bundle's head does (the real ``pipeline`` and ``InferenceSession``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from akhbar.models.bundle import load_bundle
from akhbar.models.predict import Predictor
from akhbar.serving.core import store

pytestmark = pytest.mark.slow

# Short enough for one window of the tiny bundle (64 tokens), where akhbar adds nothing.
ARTICLE = "افتتحت البلدية حديقة عامة وسط الحي القديم."
CLAIM = "البلدية افتتحت حديقة"
# The ONNX card's example runs where akhbar, torch and transformers cannot be imported.
WITHOUT_AKHBAR = (
    "import sys\nfor name in ('akhbar', 'torch', 'transformers'):\n    sys.modules[name] = None\n"
)


@pytest.fixture(scope="module")
def exports(tiny_bundle: Path, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """The tiny bundle's topic and stance heads in both formats, exported through the CLI."""
    out = tmp_path_factory.mktemp("exports")
    made = {}
    for format in ("hf", "onnx"):
        for task in ("topic", "stance"):
            target = out / f"{format}-{task}"
            args = ["export", str(tiny_bundle), str(target), "--format", format, "--task", task]
            assert store.main(args) == 0
            made[format, task] = target
    return made


@pytest.fixture(scope="module")
def bundle_probs(tiny_bundle: Path) -> dict[str, np.ndarray]:
    """The bundle head's calibrated probabilities (no side model) on ARTICLE and CLAIM."""
    bundle = load_bundle(tiny_bundle)
    predictor = Predictor(bundle)
    logits = {
        "topic": predictor.encoder_logits("topic", [ARTICLE])[0][0],
        "stance": predictor.encoder_logits("stance", [ARTICLE], [CLAIM])[0][0],
    }
    probs = {}
    for task, row in logits.items():
        scaled = row / bundle.settings.tasks[task].temperature
        probs[task] = np.exp(scaled - scaled.max()) / np.exp(scaled - scaled.max()).sum()
    return probs


def test_the_hf_export_answers_in_a_pipeline_as_the_bundle_head_does(
    exports, tiny_bundle, bundle_probs
):
    from transformers import pipeline

    labels = {t: load_bundle(tiny_bundle).settings.tasks[t].labels for t in ("topic", "stance")}
    inputs = {"topic": ARTICLE, "stance": {"text": CLAIM, "text_pair": ARTICLE}}
    for task, text in inputs.items():
        classify = pipeline(
            "text-classification", model=str(exports["hf", task]), trust_remote_code=True
        )
        answer = {a["label"]: a["score"] for a in classify(text, top_k=None)}
        assert set(answer) == set(labels[task])  # the bundle's labels, not LABEL_0
        got = np.array([answer[label] for label in labels[task]])
        assert np.allclose(got, bundle_probs[task], atol=1e-4), task


def test_the_hf_export_refuses_to_load_without_its_code(exports):
    from transformers import AutoModelForSequenceClassification

    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoModelForSequenceClassification.from_pretrained(str(exports["hf", "topic"]))


def _session_logits(export: Path, first: str, second: str | None) -> np.ndarray:
    import onnxruntime
    from tokenizers import Tokenizer

    encoding = Tokenizer.from_file(str(export / "tokenizer.json")).encode(first, second)
    inputs = {
        "input_ids": [encoding.ids],
        "attention_mask": [encoding.attention_mask],
        "token_type_ids": [encoding.type_ids],
    }
    session = onnxruntime.InferenceSession(str(export / "model.onnx"))
    return session.run(["logits"], {k: np.array(v, dtype=np.int64) for k, v in inputs.items()})[0]


def test_each_onnx_export_answers_as_the_bundle_head_does(exports, tiny_bundle):
    predictor = Predictor(load_bundle(tiny_bundle))
    topic, _ = predictor.encoder_logits("topic", [ARTICLE])
    assert np.allclose(_session_logits(exports["onnx", "topic"], ARTICLE, None), topic, atol=1e-4)
    stance, _ = predictor.encoder_logits("stance", [ARTICLE], [CLAIM])
    got = _session_logits(exports["onnx", "stance"], CLAIM, ARTICLE)
    assert np.allclose(got, stance, atol=1e-4)


def test_the_onnx_cards_example_runs_with_onnxruntime_alone(exports, tiny_bundle):
    card = (exports["onnx", "stance"] / "README.md").read_text()
    [example] = re.findall(r"```python\n(.*?)```", card, re.S)
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_AKHBAR + example],
        cwd=exports["onnx", "stance"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    label = run.stdout.split()[0]
    assert label in load_bundle(tiny_bundle).settings.tasks["stance"].labels
    # The card's front matter and what the export leaves out.
    assert "library_name: onnx" in card and "pipeline_tag: text-classification" in card
    assert "**Windowing.**" in card and "**Evidence.**" in card


def test_a_sentence_head_or_an_unnamed_one_is_refused_in_one_line(tiny_bundle, tmp_path, capsys):
    for args, problem in (
        (["--task", "summary"], "summary head scores sentences"),
        ([], "name one with --task"),
    ):
        target = tmp_path / problem.split()[0]
        assert store.main(["export", str(tiny_bundle), str(target), "--format", "hf", *args]) == 1
        err = capsys.readouterr().err
        assert problem in err and err.count("\n") == 1


def test_a_head_whose_side_model_answers_alone_says_the_export_is_not_what_akhbar_answers(
    tiny_bundle,
):
    from akhbar.models.exports import _left_out

    bundle = load_bundle(tiny_bundle)
    validation = bundle.metrics.setdefault("tasks", {}).setdefault("stance", {})
    validation.setdefault("validation", {})["fusion"] = {
        "kind": "sentence_encoder",
        "encoder": 0.26,
        "sentence_encoder": 0.43,
        "side_alone": True,
        "chosen": "fused",
    }
    [side] = [line for line in _left_out(bundle, "stance") if "**Side model.**" in line]
    assert "side model alone" in side and "0.430 against 0.260" in side
    assert "not what akhbar's answers come from" in side
