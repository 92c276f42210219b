"""Tests for akhbar.models.bundle: save/load round trip, HF compatibility, and every refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from akhbar import __version__
from akhbar.models.bundle import (
    BundleError,
    BundleSettings,
    TaskSettings,
    load_bundle,
    read_settings,
    save_bundle,
)
from akhbar.models.normalize import NormalizerConfig
from akhbar.models.tasks import SENTENCE, SEQUENCE

TOPICS = ["culture", "economy", "internationalNews", "middleEast", "sport", "technology"]
STANCES = ["agree", "disagree", "discuss", "unrelated"]

TEXTS = [
    "أعلنت وزارةُ الصحة افتتاح مستشفى جديد في العاصمة.",
    "فاز المنتخب على منافسه بثلاثة أهداف في المباراة الودية أمس.",
]


def expected_settings(base_model: str) -> dict:
    def task(kind: str, labels: list[str], stride: int, evidence_sentences: int = 4) -> dict:
        return {
            "kind": kind,
            "labels": labels,
            "temperature": 1.0,
            "low_confidence_threshold": 0.5,
            "max_length": 64,
            "stride": stride,
            "max_windows": 4,
            "evidence_sentences": evidence_sentences,
            "lead_prior": 0.0,
            "reads": "",
            "title_tokens": 0,
        }

    return {
        "format_version": 1,
        "akhbar_version": __version__,
        "base_model": base_model,
        "normalization": {
            "drop_invisible": True,
            "placeholders": True,
            "strip_diacritics": True,
            "strip_tatweel": True,
            "unify_alef": True,
            "alef_maqsura_to_ya": True,
            "ta_marbuta_to_ha": False,
            "ascii_digits": True,
            "collapse_whitespace": True,
        },
        "tasks": {
            "topic": task("sequence", TOPICS, 16),
            "stance": task("sequence", STANCES, 16),
            "stance_headline": task("sequence", ["agree", "disagree", "other"], 16, 1),
            "summary": task("sentence", ["selected"], 0),
        },
    }


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the session bundle that a test may corrupt."""
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


def edit_settings(bundle: Path, change) -> None:
    path = bundle / "akhbar.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def refusal(bundle: Path) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(bundle)
    message = str(info.value)
    assert str(bundle) in message, message
    return message


def sequence_logits(bundle, task: str) -> torch.Tensor:
    enc = bundle.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return bundle.model(
            task, enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids")
        )["logits"]


# --- round trip ----------------------------------------------------------------------------


def test_round_trip(tiny_bundle: Path, tiny_base: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    assert bundle.path == tiny_bundle
    assert bundle.tasks == ("topic", "stance", "stance_headline", "summary")
    assert bundle.settings.tasks["topic"].labels == tuple(TOPICS)
    assert bundle.settings.tasks["stance"].labels == tuple(STANCES)
    assert bundle.settings.tasks["summary"].labels == ("selected",)
    assert bundle.settings.tasks["summary"].kind == SENTENCE
    assert bundle.settings.tasks["topic"].kind == SEQUENCE
    assert bundle.settings.normalization == NormalizerConfig()
    assert bundle.settings.base_model == str(tiny_base)
    assert bundle.metrics == {}
    assert not bundle.model.training


def test_saved_settings_file_is_exact(tiny_bundle: Path, tiny_base: Path) -> None:
    data = json.loads((tiny_bundle / "akhbar.json").read_text(encoding="utf-8"))
    assert data == expected_settings(str(tiny_base))
    assert read_settings(tiny_bundle).to_dict() == data


def test_bundle_layout(tiny_bundle: Path) -> None:
    names = {p.name for p in tiny_bundle.iterdir()}
    assert {
        "akhbar.json",
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "README.md",
        "metrics.json",
    } <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl"))]
    heads = {
        k.split(".")[1]
        for k in load_file(str(tiny_bundle / "model.safetensors"))
        if k.startswith("heads.")
    }
    assert heads == {"topic", "stance", "stance_headline", "summary"}


def test_loaded_model_is_deterministic(tiny_bundle: Path) -> None:
    first, second = load_bundle(tiny_bundle), load_bundle(tiny_bundle)
    for task, n in (("topic", len(TOPICS)), ("stance", len(STANCES))):
        a, b = sequence_logits(first, task), sequence_logits(second, task)
        assert a.shape == (len(TEXTS), n)
        assert torch.equal(a, b)


def test_save_load_save_gives_identical_weights(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    again = save_bundle(tmp_path / "again", bundle.model, bundle.tokenizer, bundle.settings)
    reloaded = load_bundle(again)
    assert reloaded.settings == bundle.settings
    original = load_file(str(tiny_bundle / "model.safetensors"))
    copied = load_file(str(again / "model.safetensors"))
    assert original.keys() == copied.keys()
    for key in original:
        assert torch.equal(original[key], copied[key]), key
    assert torch.equal(sequence_logits(bundle, "topic"), sequence_logits(reloaded, "topic"))


def test_save_refuses_settings_without_matching_head(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    tasks = dict(bundle.settings.tasks)
    tasks["topic"] = TaskSettings(SEQUENCE, tuple(TOPICS[:5]), max_length=64, stride=16)
    with pytest.raises(BundleError, match="topic"):
        save_bundle(tmp_path / "bad", bundle.model, bundle.tokenizer, BundleSettings(tasks=tasks))


def test_hugging_face_auto_model_loads_encoder(tiny_bundle: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    encoder = AutoModel.from_pretrained(tiny_bundle).eval()
    bundle = load_bundle(tiny_bundle)
    ours = bundle.model.encoder.state_dict()
    for key, value in encoder.state_dict().items():
        if key in ours:
            assert torch.equal(value, ours[key]), key
    enc = AutoTokenizer.from_pretrained(tiny_bundle)(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hf = encoder(**enc).last_hidden_state
        mine = bundle.model.encode(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    assert torch.allclose(hf, mine)


def test_a_classifier_pipeline_on_a_bundle_says_it_is_not_one(tiny_bundle: Path) -> None:
    """transformers gives a bundle a random head; every answer must say so, never LABEL_0."""
    from transformers import pipeline

    from akhbar.models.bundle import NOT_A_CLASSIFIER

    classify = pipeline("text-classification", model=str(tiny_bundle))
    answers = classify(TEXTS)
    assert answers and all(a["label"] == NOT_A_CLASSIFIER for a in answers)
    assert "akhbar models export" in NOT_A_CLASSIFIER


# --- refusals ------------------------------------------------------------------------------


def test_refuses_missing_weights(bundle_copy: Path) -> None:
    (bundle_copy / "model.safetensors").unlink()
    assert "model.safetensors" in refusal(bundle_copy)


def test_refuses_missing_settings(bundle_copy: Path) -> None:
    (bundle_copy / "akhbar.json").unlink()
    assert "akhbar.json" in refusal(bundle_copy)


def test_read_settings_refuses_missing_settings(bundle_copy: Path) -> None:
    (bundle_copy / "akhbar.json").unlink()
    with pytest.raises(BundleError, match="akhbar.json is missing"):
        read_settings(bundle_copy)


def test_refuses_not_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "nothing-here"
    assert "not a directory" in refusal(path)


def test_refuses_pickle_file(bundle_copy: Path) -> None:
    torch.save({"weight": torch.zeros(2)}, bundle_copy / "pytorch_model.bin")
    message = refusal(bundle_copy)
    assert "pytorch_model.bin" in message
    assert "pickle" in message


def test_refuses_invalid_json(bundle_copy: Path) -> None:
    (bundle_copy / "akhbar.json").write_text('{"tasks": {"topic": ', encoding="utf-8")
    message = refusal(bundle_copy)
    assert "akhbar.json" in message
    assert "not valid JSON" in message


def test_refuses_settings_without_normalization(bundle_copy: Path) -> None:
    edit_settings(bundle_copy, lambda d: d.pop("normalization"))
    message = refusal(bundle_copy)
    assert "akhbar.json" in message
    assert "normalization" in message


def test_refuses_bad_normalization_value(bundle_copy: Path) -> None:
    edit_settings(bundle_copy, lambda d: d["normalization"].update(unify_alef="yes"))
    assert "unify_alef" in refusal(bundle_copy)


@pytest.mark.parametrize(
    ("task", "title_tokens", "expected"),
    [
        ("summary", 17, "title_tokens must be within 0 and a quarter of max_length (16), got 17"),
        ("topic", 8, "only sentence tasks read a title prefix, not a sequence task"),
    ],
)
def test_refuses_a_title_prefix_that_cannot_be(
    bundle_copy: Path, task: str, title_tokens: int, expected: str
) -> None:
    edit_settings(bundle_copy, lambda d: d["tasks"][task].update(title_tokens=title_tokens))
    assert expected in refusal(bundle_copy)


def test_refuses_task_without_labels(bundle_copy: Path) -> None:
    edit_settings(bundle_copy, lambda d: d["tasks"]["stance"].pop("labels"))
    message = refusal(bundle_copy)
    assert "stance" in message
    assert "labels" in message


@pytest.mark.parametrize("labels", [TOPICS[:5], TOPICS + ["health"]], ids=["shorter", "longer"])
def test_refuses_label_count_not_matching_head(bundle_copy: Path, labels: list[str]) -> None:
    edit_settings(bundle_copy, lambda d: d["tasks"]["topic"].update(labels=labels))
    message = refusal(bundle_copy)
    assert "topic" in message
    assert f"{len(labels)} label(s)" in message
    assert f"{len(TOPICS)} output(s)" in message


def test_refuses_truncated_weights(bundle_copy: Path) -> None:
    weights = bundle_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    message = refusal(bundle_copy)
    assert "model.safetensors" in message
    assert "truncated" in message


def test_refuses_head_not_described(bundle_copy: Path) -> None:
    edit_settings(bundle_copy, lambda d: d["tasks"].pop("summary"))
    message = refusal(bundle_copy)
    assert "summary" in message
    assert "does not describe" in message


def test_refuses_task_without_head(bundle_copy: Path) -> None:
    weights = bundle_copy / "model.safetensors"
    state = {k: v for k, v in load_file(str(weights)).items() if not k.startswith("heads.stance.")}
    save_file(state, str(weights), metadata={"format": "pt"})
    message = refusal(bundle_copy)
    assert "stance" in message
    assert "no head" in message


def test_refuses_tokenizer_with_other_normalizer(bundle_copy: Path) -> None:
    from tokenizers import Tokenizer, normalizers

    path = bundle_copy / "tokenizer.json"
    tok = Tokenizer.from_file(str(path))
    tok.normalizer = normalizers.NFC()
    tok.save(str(path))
    message = refusal(bundle_copy)
    assert "normalisation" in message


@pytest.mark.parametrize(
    ("task", "reads", "expected"),
    [
        (
            "topic",
            "stance",
            "task 'topic' reads the windows of 'stance', which is not a sentence task",
        ),
        (
            "topic",
            "headlines",
            "task 'topic' reads the windows of 'headlines', which is not a sentence task",
        ),
        ("summary", "summary", "only sequence tasks may read another task's windows"),
    ],
)
def test_refuses_a_task_reading_windows_it_cannot(
    bundle_copy: Path, task: str, reads: str, expected: str
) -> None:
    edit_settings(bundle_copy, lambda d: d["tasks"][task].update(reads=reads))
    assert expected in refusal(bundle_copy)
