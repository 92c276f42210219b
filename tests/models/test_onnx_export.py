"""``akhbar models export --format onnx``: one head as a graph onnxruntime runs without akhbar."""

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
# The card's example runs where akhbar, torch and transformers cannot be imported.
WITHOUT_AKHBAR = (
    "import sys\nfor name in ('akhbar', 'torch', 'transformers'):\n    sys.modules[name] = None\n"
)


@pytest.fixture(scope="module")
def exports(tiny_bundle: Path, tmp_path_factory) -> dict[str, Path]:
    """The tiny bundle's topic and stance heads, exported through the CLI."""
    out = tmp_path_factory.mktemp("onnx")
    for task in ("topic", "stance"):
        code = store.main(
            ["export", str(tiny_bundle), str(out / task), "--format", "onnx", "--task", task]
        )
        assert code == 0
    return {task: out / task for task in ("topic", "stance")}


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


def test_each_export_answers_as_the_bundle_head_does(exports, tiny_bundle):
    predictor = Predictor(load_bundle(tiny_bundle))
    topic, _ = predictor.encoder_logits("topic", [ARTICLE])
    assert np.allclose(_session_logits(exports["topic"], ARTICLE, None), topic, atol=1e-4)
    stance, _ = predictor.encoder_logits("stance", [ARTICLE], [CLAIM])
    assert np.allclose(_session_logits(exports["stance"], CLAIM, ARTICLE), stance, atol=1e-4)


def test_the_cards_example_runs_with_onnxruntime_alone(exports, tiny_bundle):
    card = (exports["stance"] / "README.md").read_text()
    [example] = re.findall(r"```python\n(.*?)```", card, re.S)
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_AKHBAR + example],
        cwd=exports["stance"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    label = run.stdout.split()[0]
    assert label in load_bundle(tiny_bundle).settings.tasks["stance"].labels
    # The card's front matter and what the graph leaves out.
    assert "library_name: onnx" in card and "pipeline_tag: text-classification" in card
    assert "**Windowing.**" in card and "**Evidence.**" in card


def test_a_sentence_head_or_an_unnamed_one_is_refused_in_one_line(tiny_bundle, tmp_path, capsys):
    for args, problem in (
        (["--task", "summary"], "summary head scores sentences"),
        ([], "name one with --task"),
    ):
        target = tmp_path / problem.split()[0]
        assert store.main(["export", str(tiny_bundle), str(target), "--format", "onnx", *args]) == 1
        err = capsys.readouterr().err
        assert problem in err and err.count("\n") == 1
