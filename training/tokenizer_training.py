"""Train the project's WordPiece tokenizer with the `tokenizers` library (``akhbar pretrain``).

Using a tokenizer is :mod:`akhbar.models.tokenization`'s job: it makes any tokenizer, this
one or a hub model's, apply the project's normalisation.

The tokenizer carries the project's normaliser in its ``tokenizer.json``, so
``AutoTokenizer.from_pretrained(dir)`` alone turns raw Arabic news text (diacritics,
Arabic-Indic digits, URLs and all) into the tokens the model was trained on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from akhbar.models.normalize import PLACEHOLDER_TOKENS, NormalizerConfig, build_normalizer
from akhbar.models.tokenization import NORMALIZATION_FILE

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 16_000,
    normalization: NormalizerConfig = NormalizerConfig(),
    min_frequency: int = 2,
    model_max_length: int = 512,
) -> PreTrainedTokenizerFast:
    """Train a BERT-style WordPiece tokenizer on raw ``texts``.

    The normaliser runs inside the tokenizer, so ``texts`` are passed un-normalised.
    """
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = build_normalizer(normalization)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS) + list(PLACEHOLDER_TOKENS),
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tok.train_from_iterator(_non_empty(texts), trainer=trainer)
    # Placeholders are produced by the normaliser, so they must match on normalised text.
    tok.add_tokens([AddedToken(t, normalized=True, single_word=False) for t in PLACEHOLDER_TOKENS])
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return wrap_tokenizer(tok, model_max_length)


def wrap_tokenizer(tok: Tokenizer, model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """Wrap a `tokenizers` object for transformers
    (see KNOWN-TRAPS: never BertTokenizerFast(vocab_file=...))."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
        # Sentence pairs (claim, article) need segment ids.
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def save_tokenizer(
    tokenizer: PreTrainedTokenizerFast, out_dir: Path, normalization: NormalizerConfig
) -> None:
    """Save in Hugging Face layout plus the normalisation settings as JSON."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / NORMALIZATION_FILE).write_text(json.dumps(normalization.to_dict(), indent=2) + "\n")


def unk_rate(tokenizer: PreTrainedTokenizerFast, texts: Iterable[str]) -> float:
    """Share of tokens that are ``[UNK]`` over ``texts`` (special tokens excluded)."""
    unk_id = tokenizer.unk_token_id
    total = unknown = 0
    batch: list[str] = []
    for text in _non_empty(texts):
        batch.append(text)
        if len(batch) == 256:
            total, unknown = _count(tokenizer, batch, unk_id, total, unknown)
            batch = []
    if batch:
        total, unknown = _count(tokenizer, batch, unk_id, total, unknown)
    return unknown / total if total else 0.0


def _count(
    tokenizer: PreTrainedTokenizerFast, batch: list[str], unk_id: int, total: int, unknown: int
) -> tuple[int, int]:
    for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
        total += len(ids)
        unknown += sum(1 for i in ids if i == unk_id)
    return total, unknown


def _non_empty(texts: Iterable[str]) -> Iterator[str]:
    return (t for t in texts if t and t.strip())
