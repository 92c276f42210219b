"""Tests for akhbar.models.base: loading a base encoder, its errors,
and the tokenizer round trip."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from conftest import ARABIC_SENTENCES
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from akhbar.models.base import BaseModelError, load_base
from akhbar.models.normalize import normalize

RAW_WITH_MARKS = [
    "قَالَ وَزِيرُ المَالِيَّةِ إِنَّ الحُكُومَةَ سَتَرْفَعُ مِيزَانِيَّةَ التَّعْلِيمِ.",
    "سَجَّلَ المُهَاجِمُ هَدَفَيْنِ فِي المُبَارَاةِ النِّهَائِيَّةِ.",
    "ارتفعــت أسعــار النفــط في الأسواق العالمية بنسبة ٣٫٥ في المئة.",
    "أعلنت الشركة\u200f عن هاتف جديد  يعمل\n\nبالذكاء الاصطناعي https://example.com/phone",
    "التقى الرئيسُ نظيرَه في العاصمةِ لبحث العلاقات، وكتب @press_office عن اللقاء.",
]


def test_load_base_local_dir(tiny_base: Path) -> None:
    encoder, tokenizer = load_base(str(tiny_base))
    assert isinstance(encoder, PreTrainedModel)
    assert isinstance(tokenizer, PreTrainedTokenizerBase)
    assert encoder.config.hidden_size == 32
    assert len(tokenizer) <= encoder.config.vocab_size
    assert tokenizer.cls_token == "[CLS]"


def error_for(name: str) -> str:
    with pytest.raises(BaseModelError) as info:
        load_base(name)
    message = str(info.value)
    assert name in message, message
    return message


@pytest.mark.parametrize(
    "name", ["/nonexistent/akhbar-base", "./no-such-base-dir", "~/no-such-base-dir"]
)
def test_missing_local_dir(name: str) -> None:
    assert "does not exist or is not a directory" in error_for(name)


def test_file_instead_of_dir(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"not a directory")
    assert "not a directory" in error_for(str(path))


def test_dir_without_weights(tiny_base: Path, tmp_path: Path) -> None:
    base = Path(shutil.copytree(tiny_base, tmp_path / "base"))
    (base / "model.safetensors").unlink()
    message = error_for(str(base))
    assert "cannot be loaded" in message
    assert "model.safetensors" in message


def test_empty_dir(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "cannot be loaded" in error_for(str(empty))


def test_dir_with_only_pickle_weights(tiny_base: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    base = Path(shutil.copytree(tiny_base, tmp_path / "base"))
    torch.save(load_file(str(base / "model.safetensors")), base / "pytorch_model.bin")
    (base / "model.safetensors").unlink()
    assert "cannot be loaded" in error_for(str(base))


@pytest.mark.parametrize("name", ["bad name!", "owner/name/extra", "-leading-dash"])
def test_invalid_name(name: str) -> None:
    assert "neither a local directory nor a hub id" in error_for(name)


def test_unreachable_hub() -> None:
    start = time.monotonic()
    message = error_for("akhbar-tests/no-such-arabic-bert")
    assert time.monotonic() - start < 30  # offline: fails fast instead of retrying
    assert "model hub" in message
    assert "unreachable" in message
    assert "local directory" in message
    assert "--base-model" in message


# --- tokenizer round trip ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tiny_base: Path):
    return AutoTokenizer.from_pretrained(tiny_base)


@pytest.mark.parametrize("raw", RAW_WITH_MARKS, ids=[f"raw{i}" for i in range(len(RAW_WITH_MARKS))])
def test_tokenizer_normalises_raw_text(tokenizer, raw: str) -> None:
    assert normalize(raw) != raw
    assert tokenizer(raw)["input_ids"] == tokenizer(normalize(raw))["input_ids"]


def test_tokenizer_keeps_placeholders_whole(tokenizer) -> None:
    tokens = tokenizer.tokenize(
        "زوروا https://example.com/x وراسلوا info@akhbar.org أو @akhbar_news"
    )
    assert tokens.count("[URL]") == 1
    assert tokens.count("[EMAIL]") == 1
    assert tokens.count("[USER]") == 1


def test_unknown_share_on_fixture_sentences(tokenizer) -> None:
    ids = [i for s in ARABIC_SENTENCES for i in tokenizer(s, add_special_tokens=False)["input_ids"]]
    unknown = sum(1 for i in ids if i == tokenizer.unk_token_id)
    assert len(ids) > 50
    assert unknown / len(ids) <= 0.01
