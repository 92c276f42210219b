"""Tokenisation of long texts into overlapping windows.

Many articles exceed the encoder's length. A text becomes up to ``max_windows`` windows
of ``max_length`` tokens that overlap by ``stride``; a model scores each window and the
caller pools the window logits per text (``pool_logits``). Texts cut at ``max_windows``
are reported as truncated so the service can warn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase


@dataclass
class Windows:
    """Encoded windows plus, for each, the index of the text it came from."""

    features: list[dict[str, list[int]]]
    doc_index: np.ndarray
    truncated: list[bool]

    def __len__(self) -> int:
        return len(self.features)


def encode_windows(
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    max_length: int,
    stride: int,
    max_windows: int,
    first: list[str] | None = None,
) -> Windows:
    """Encode ``texts`` (optionally after a ``first`` segment, e.g. a claim) into windows.

    With ``first`` given, only the text is windowed: every window repeats the first
    segment, as a claim must be seen beside each part of the article. A first segment
    longer than half a window is cut to fit (a claim is a sentence, not an article).
    """
    if first is not None:
        first = _fit_first(tokenizer, first, (max_length - stride) // 2 - 2)
    kwargs = dict(
        truncation="only_second" if first is not None else True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
    )
    enc = tokenizer(first, texts, **kwargs) if first is not None else tokenizer(texts, **kwargs)
    mapping = enc["overflow_to_sample_mapping"]
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    features, doc_index = [], []
    seen = [0] * len(texts)
    truncated = [False] * len(texts)
    for row, doc in enumerate(mapping):
        if seen[doc] == max_windows:
            truncated[doc] = True
            continue
        seen[doc] += 1
        features.append({k: enc[k][row] for k in keys})
        doc_index.append(doc)
    return Windows(features, np.asarray(doc_index, dtype=np.int64), truncated)


def _fit_first(tokenizer: PreTrainedTokenizerBase, first: list[str], cap: int) -> list[str]:
    """Each first segment, cut to at most ``cap`` tokens (others are returned as they are)."""
    ids = tokenizer(first, add_special_tokens=False)["input_ids"]
    return [
        text if len(tokens) <= cap else tokenizer.decode(tokens[:cap])
        for text, tokens in zip(first, ids)
    ]


def pool_logits(window_logits: np.ndarray, doc_index: np.ndarray, n_docs: int) -> np.ndarray:
    """Mean of the window logits of each text: (windows, labels) → (n_docs, labels)."""
    sums = np.zeros((n_docs, window_logits.shape[1]), dtype=np.float64)
    np.add.at(sums, doc_index, window_logits)
    counts = np.bincount(doc_index, minlength=n_docs).clip(min=1)
    return sums / counts[:, None]


@dataclass
class SentenceWindows:
    """Windows of whole sentences for sentence scoring (BertSum-style).

    ``sentence_ids`` marks each token with its window-local sentence number (-1 on
    [CLS]/[SEP] and on a title prefix); ``sentence_index[w][j]`` is the article sentence
    behind local sentence j of window w. Sentences that did not fit in ``max_windows`` are
    listed in ``dropped``.
    """

    features: list[dict[str, list[int]]]
    doc_index: np.ndarray
    sentence_index: list[list[int]]
    dropped: list[list[int]]

    def __len__(self) -> int:
        return len(self.features)


def encode_sentence_windows(
    tokenizer: PreTrainedTokenizerBase,
    documents: list[list[str]],
    max_length: int,
    max_windows: int,
    max_sentence_tokens: int = 64,
    titles: Sequence[str | None] | None = None,
    title_tokens: int = 0,
) -> SentenceWindows:
    """Pack each document's sentences, in order, into windows ``[CLS] s1 [SEP] s2 [SEP] ...``.

    One encoder pass scores every sentence in a window. A sentence longer than
    ``max_sentence_tokens`` is cut (its start carries most of its meaning). With
    ``title_tokens`` > 0, every window of a document with a title starts with up to that many
    of the title's tokens, ``[CLS] title [SEP] s1 [SEP] ...``: each sentence is read beside the
    headline, and a head that pools the window (topic) reads the title too. The title is
    never a candidate sentence.
    """
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    flat = [s for doc in documents for s in doc]
    encoded = tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
    prefixes = _title_prefixes(tokenizer, documents, titles, title_tokens)
    out = SentenceWindows([], np.zeros(0, dtype=np.int64), [], [])
    doc_index: list[int] = []
    position = 0
    for d, doc in enumerate(documents):
        ids_of = encoded[position : position + len(doc)]
        position += len(doc)
        windows: list[tuple[list[int], list[int], list[int]]] = []
        dropped: list[int] = []
        start = [cls, *prefixes[d]]
        current: tuple[list[int], list[int], list[int]] = (list(start), [-1] * len(start), [])
        for i, ids in enumerate(ids_of):
            piece = ids[:max_sentence_tokens] or [tokenizer.unk_token_id]
            if len(current[0]) + len(piece) + 1 > max_length and current[2]:
                windows.append(current)
                current = (list(start), [-1] * len(start), [])
            if len(windows) == max_windows:
                dropped.append(i)
                continue
            local = len(current[2])
            piece = piece[: max_length - len(start) - 1]
            current[0].extend(piece + [sep])
            current[1].extend([local] * len(piece) + [-1])
            current[2].append(i)
        if current[2] and len(windows) < max_windows:
            windows.append(current)
        for ids, sentence_ids, index in windows:
            out.features.append(
                {"input_ids": ids, "attention_mask": [1] * len(ids), "sentence_ids": sentence_ids}
            )
            out.sentence_index.append(index)
            doc_index.append(d)
        out.dropped.append(dropped)
    out.doc_index = np.asarray(doc_index, dtype=np.int64)
    return out


def _title_prefixes(
    tokenizer: PreTrainedTokenizerBase,
    documents: list[list[str]],
    titles: Sequence[str | None] | None,
    title_tokens: int,
) -> list[list[int]]:
    """Per document, the tokens its windows start with after [CLS]: up to ``title_tokens`` of
    its title and a [SEP], or nothing (no title, or ``title_tokens`` 0)."""
    if not title_tokens or titles is None:
        return [[] for _ in documents]
    if len(titles) != len(documents):
        raise ValueError(f"{len(titles)} titles for {len(documents)} documents")
    given = [t.strip() if t else "" for t in titles]
    encoded = tokenizer(given, add_special_tokens=False)["input_ids"] if given else []
    return [ids[:title_tokens] + [tokenizer.sep_token_id] if ids else [] for ids in encoded]


# Padding value per feature; labels of sentence tasks are lists padded with the loss's ignore index.
_PAD_VALUES = {"attention_mask": 0, "token_type_ids": 0, "sentence_ids": -1, "labels": -100}
_TOKEN_KEYS = frozenset({"input_ids", "attention_mask", "token_type_ids", "sentence_ids"})


def pad_features(
    features: list[dict], pad_token_id: int, multiple_of: int = 1, max_width: int | None = None
) -> dict[str, torch.Tensor]:
    """Right-pad a batch of window features into tensors (training collator and inference):
    to the longest window, rounded up to a ``multiple_of`` tokens but not past ``max_width``
    (the encoder's positions). Inference pads to a few widths because every new input shape
    costs the CPU kernels' caches memory that is kept
    (:data:`akhbar.models.predict.WIDTH_MULTIPLE`)."""
    batch: dict[str, torch.Tensor] = {}
    for key in features[0]:
        values = [f[key] for f in features]
        if not isinstance(values[0], list):
            batch[key] = torch.tensor(values)
            continue
        width = max(len(v) for v in values)
        if key in _TOKEN_KEYS:
            rounded = -(-width // multiple_of) * multiple_of
            width = max(width, min(rounded, max_width or rounded))
        pad = pad_token_id if key == "input_ids" else _PAD_VALUES.get(key, 0)
        batch[key] = torch.tensor([v + [pad] * (width - len(v)) for v in values])
    return batch
