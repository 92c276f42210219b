"""The shipped base in models/default/base/ is a stock Hugging Face directory that works."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ARABIC_SENTENCES
from safetensors import safe_open
from transformers import AutoModel, AutoTokenizer

from akhbar.models.normalize import NormalizerConfig
from akhbar.models.tokenization import applies_normalization

BASE = Path(__file__).resolve().parents[2] / "models" / "default" / "base"


def test_loads_with_auto_classes_and_encodes():
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    model = AutoModel.from_pretrained(BASE)
    batch = tokenizer(ARABIC_SENTENCES[:2], padding=True, return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    assert (
        hidden.shape[:2] == batch["input_ids"].shape and hidden.shape[2] == model.config.hidden_size
    )


def test_tokenizer_normalises_raw_text_with_few_unknown_tokens():
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    assert len(tokenizer) == json.loads((BASE / "config.json").read_text())["vocab_size"]
    assert applies_normalization(tokenizer, NormalizerConfig())
    ids = [i for s in ARABIC_SENTENCES for i in tokenizer(s, add_special_tokens=False)["input_ids"]]
    assert sum(i == tokenizer.unk_token_id for i in ids) / len(ids) <= 0.01
    assert tokenizer.tokenize("قالَ الوزيرُ") == tokenizer.tokenize("قال الوزير")


def test_weights_are_fp16_safetensors_and_the_card_states_the_licence():
    assert not [p.name for p in BASE.iterdir() if p.suffix in (".bin", ".pt", ".pkl")]
    with safe_open(str(BASE / "model.safetensors"), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}
    card = (BASE / "README.md").read_text()
    assert "CC BY-NC-SA 4.0" in card and "base-report" in card


def test_config_states_the_stored_dtype():
    """So that AutoModel.from_pretrained elsewhere loads what is stored (akhbar casts to fp32)."""
    for folder in (BASE, BASE.parent / "shared"):
        stored = json.loads((folder / "config.json").read_text())["dtype"]
        with safe_open(str(folder / "model.safetensors"), "pt") as f:
            assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {f"torch.{stored}"}
