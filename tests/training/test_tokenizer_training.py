"""The project's WordPiece tokenizer: trained, saved, and reloaded with AutoTokenizer alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ARABIC_SENTENCES
from transformers import AutoTokenizer

from akhbar.models.normalize import URL_TOKEN, NormalizerConfig, normalize
from akhbar.models.tokenization import NORMALIZATION_FILE
from akhbar.training.tokenizer_training import (
    SPECIAL_TOKENS,
    save_tokenizer,
    train_tokenizer,
    unk_rate,
)

VOCAB = 300


@pytest.fixture(scope="module")
def saved_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tokenizer")
    tokenizer = train_tokenizer(ARABIC_SENTENCES * 5, vocab_size=VOCAB, min_frequency=1)
    save_tokenizer(tokenizer, out, NormalizerConfig())
    return out


@pytest.fixture(scope="module")
def tok(saved_dir):
    return AutoTokenizer.from_pretrained(saved_dir)


def test_reloaded_tokenizer_has_the_trained_vocabulary(tok):
    # The trap: a tokenizer that knows only the special tokens still "works" but maps
    # every word to [UNK]. The reload must carry the whole trained vocabulary.
    assert len(tok) > 50
    assert len(tok) == VOCAB
    assert len(tok) > len(SPECIAL_TOKENS) + 3
    for special in SPECIAL_TOKENS:
        assert tok.convert_tokens_to_ids(special) != tok.unk_token_id or special == "[UNK]"
    assert tok.pad_token == "[PAD]" and tok.mask_token == "[MASK]"
    # Whole words of the training text are in the vocabulary, not spelled out as [UNK].
    assert tok.unk_token_id not in tok("قال وزير المالية", add_special_tokens=False)["input_ids"]


def test_single_text_is_wrapped_in_cls_and_sep(tok):
    ids = tok("سجل المهاجم هدفين")["input_ids"]
    assert ids[0] == tok.cls_token_id
    assert ids[-1] == tok.sep_token_id


def test_normaliser_runs_inside_the_tokenizer(tok):
    # Diacritics, tatweel, hamza-on-alef forms, alef maqsura and Arabic-Indic digits.
    raw = "قَالَ وَزِيـــرُ المـالية إنّ الميزانيةَ ارتفعت بنسبة ٢٥ في المئة إلى"
    plain = normalize(raw)
    assert plain != raw
    assert "ـ" not in plain and "٢" not in plain and "25" in plain
    assert tok.tokenize(raw) == tok.tokenize(plain)
    assert tok(raw)["input_ids"] == tok(plain)["input_ids"]
    # And the diacritised form tokenizes like the bare word it was trained on.
    assert tok.tokenize("وَزِيرُ") == tok.tokenize("وزير")


@pytest.mark.parametrize(
    "url", ["https://example.com/news/2024?id=7", "http://a.b/c", "www.akhbar.example/x_y"]
)
def test_url_becomes_one_placeholder_token(tok, url):
    tokens = tok.tokenize(f"اقرأ الخبر على {url} اليوم")
    assert tokens.count(URL_TOKEN) == 1
    url_id = tok.convert_tokens_to_ids(URL_TOKEN)
    assert url_id != tok.unk_token_id
    assert tok(f"{url} قال")["input_ids"].count(url_id) == 1
    # Nothing of the URL itself survives as separate tokens.
    assert not any(piece in "".join(tokens) for piece in ("example", "http", "www"))


def test_pair_encoding_gives_segment_ids(tok):
    enc = tok("قال وزير المالية", "ارتفعت أسعار النفط في الأسواق")
    types = enc["token_type_ids"]
    ids = enc["input_ids"]
    assert set(types) == {0, 1}
    # [CLS] A [SEP] are segment 0, B [SEP] segment 1, contiguous.
    first_one = types.index(1)
    assert all(t == 0 for t in types[:first_one]) and all(t == 1 for t in types[first_one:])
    assert ids[first_one - 1] == tok.sep_token_id and ids[-1] == tok.sep_token_id
    assert ids.count(tok.sep_token_id) == 2
    assert "token_type_ids" in tok("قال")


def test_unk_rate(tok):
    assert unk_rate(tok, ARABIC_SENTENCES) == 0.0
    assert unk_rate(tok, ["我们今天去北京看新闻"]) > 0
    mixed = unk_rate(tok, ARABIC_SENTENCES + ["我们今天去北京看新闻"])
    assert 0 < mixed < 1
    # Empty and blank texts are skipped, not counted.
    assert unk_rate(tok, ["", "   "]) == 0.0


def test_saved_normalisation_settings_equal_the_config(saved_dir, tmp_path):
    stored = json.loads((saved_dir / NORMALIZATION_FILE).read_text())
    assert stored == NormalizerConfig().to_dict()
    assert NormalizerConfig.from_dict(stored) == NormalizerConfig()

    custom = NormalizerConfig(ta_marbuta_to_ha=True, ascii_digits=False)
    tokenizer = train_tokenizer(
        ARABIC_SENTENCES, vocab_size=200, normalization=custom, min_frequency=1
    )
    save_tokenizer(tokenizer, tmp_path / "custom", custom)
    assert json.loads((tmp_path / "custom" / NORMALIZATION_FILE).read_text()) == custom.to_dict()
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "custom")
    # The custom normaliser is the one inside the saved tokenizer.
    assert reloaded.backend_tokenizer.normalizer.normalize_str("مدينةٌ ٢٥") == "مدينه ٢٥"
    assert reloaded.tokenize("مدينة") == reloaded.tokenize("مدينه")


def test_saved_directory_is_plain_hf_layout(saved_dir):
    names = {p.name for p in saved_dir.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", NORMALIZATION_FILE} <= names
    assert not any(n.endswith((".bin", ".pkl", ".pt")) for n in names)
