"""Sentence-pair pretraining examples: ``[CLS] A [SEP] B [SEP]``, up to ``--seq-len`` tokens.

Why: the task models read windows of 180–512 tokens, and stance reads two segments (a claim and
an article). Packed single-segment 128-token blocks leave position rows 128–511 and token-type
row 1 at their random initialisation. Here A and B are consecutive text of one document, split at
a sentence boundary (``akhbar.models.sentences``), so B starts at varying positions, long
documents fill every position up to ``--seq-len``, and B trains segment 1.

Examples vary in length; to keep padding low they are batched by length under a token budget
(``--batch-size`` × ``--seq-len`` slots): many short examples or a few long ones per step, so a
step costs about the same whatever the lengths. Widths are multiples of :data:`PAD_MULTIPLE`, so
a compiled encoder sees only a handful of shapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedTokenizerFast

from akhbar.models.sentences import split_sentences

PAD_MULTIPLE = 64
STORE_FILES = ("ids", "sentence_starts", "doc_starts")


@dataclass(frozen=True)
class SentenceStore:
    """The corpus tokenised sentence by sentence, documents kept apart.

    ``ids`` holds every sentence's token ids, document after document; ``sentence_starts[i]`` is
    where sentence ``i`` starts in ``ids`` (one more entry: the end); ``doc_starts[d]`` is the
    index of document ``d``'s first sentence (one more entry: the sentence count).
    """

    ids: np.ndarray
    sentence_starts: np.ndarray
    doc_starts: np.ndarray


def build_sentence_store(
    tokenizer: PreTrainedTokenizerFast, texts: Iterable[str], out_dir: Path, batch: int = 1000
) -> SentenceStore:
    """Split every text into sentences, tokenise them, and save the store under ``out_dir``.

    ``stats.json`` is written last: a store without it was interrupted and is rebuilt.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks: list[np.ndarray] = []
    lengths: list[int] = []
    sentences_per_doc: list[int] = []
    buf: list[list[str]] = []

    def flush() -> None:
        flat = [sentence for doc in buf for sentence in doc]
        encoded = tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
        chunks.extend(np.asarray(ids, dtype=np.uint16) for ids in encoded)
        lengths.extend(len(ids) for ids in encoded)
        sentences_per_doc.extend(len(doc) for doc in buf)
        buf.clear()

    for text in tqdm(texts, desc="sentences", unit=" texts", mininterval=5):
        sentences = [s.text for s in split_sentences(text)]
        if sentences:
            buf.append(sentences)
        if len(buf) == batch:
            flush()
    flush()
    store = SentenceStore(
        ids=np.concatenate(chunks) if chunks else np.zeros(0, np.uint16),
        sentence_starts=np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]),
        doc_starts=np.concatenate([[0], np.cumsum(sentences_per_doc, dtype=np.int64)]),
    )
    for name in STORE_FILES:
        np.save(out_dir / f"{name}.npy", getattr(store, name))
    stats = {"documents": len(sentences_per_doc), "sentences": len(lengths)}
    (out_dir / "stats.json").write_text(json.dumps(stats | {"tokens": len(store.ids)}) + "\n")
    return store


def sentence_store(
    tokenizer: PreTrainedTokenizerFast, texts: Iterable[str], out_dir: Path
) -> SentenceStore:
    """The store under ``out_dir``, built first if it is missing or incomplete."""
    if not (out_dir / "stats.json").exists():
        return build_sentence_store(tokenizer, texts, out_dir)
    return SentenceStore(*(np.load(out_dir / f"{name}.npy", mmap_mode="r") for name in STORE_FILES))


def truncate_pair(a: int, b: int, body: int) -> tuple[int, int]:
    """Lengths of A and B cut to fit ``body`` tokens together, the longer one cut first (as
    BERT's ``truncate_seq_pair``); only two sentences that overflow on their own need it."""
    if a + b <= body:
        return a, b
    half = body // 2
    if a <= half:
        return a, body - a
    if b <= body - half:
        return body - b, b
    return half, body - half


def pair_spans(store: SentenceStore, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """``(a_start, a_end, b_start, b_end)`` offsets into ``store.ids``, one row per example.

    Each document is cut greedily into runs of whole sentences that fill ``seq_len`` (less the
    three special tokens); each run is split at a random sentence boundary inside it. A run
    needs two sentences, so one-sentence documents (titles) and a lone last sentence are left out.
    """
    body = seq_len - 3
    starts, docs = np.asarray(store.sentence_starts), np.asarray(store.doc_starts)
    spans: list[tuple[int, int, int, int]] = []
    for first, last in zip(docs[:-1], docs[1:]):
        bounds = starts[first : last + 1]
        i, n = 0, len(bounds) - 1
        while n - i >= 2:
            j = max(i + 2, int(np.searchsorted(bounds, bounds[i] + body, side="right")) - 1)
            k = int(rng.integers(i + 1, j))
            a, b = truncate_pair(bounds[k] - bounds[i], bounds[j] - bounds[k], body)
            spans.append((bounds[i], bounds[i] + a, bounds[k], bounds[k] + b))
            i = j
    return np.asarray(spans, dtype=np.int64).reshape(-1, 4)


def padded_widths(lengths: np.ndarray, seq_len: int) -> np.ndarray:
    """Each example's padded width: the next multiple of :data:`PAD_MULTIPLE`, at most
    ``seq_len``."""
    return np.minimum(seq_len, -(-np.asarray(lengths) // PAD_MULTIPLE) * PAD_MULTIPLE)


def length_batches(
    widths: np.ndarray, tokens_per_batch: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Example indices grouped into batches of one padded width, each within the token budget.

    Examples are shuffled within a width; the trainer shuffles the batches.
    """
    order = rng.permutation(len(widths))
    batches: list[np.ndarray] = []
    for w in np.unique(widths):
        members = order[widths[order] == w]
        rows = max(1, tokens_per_batch // int(w))
        batches += [members[s : s + rows] for s in range(0, len(members), rows)]
    return batches


class PairBatches(torch.utils.data.Dataset):
    """One item is one whole batch: a list of features all of one padded width.

    Each feature carries ``token_type_ids`` (0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``), its
    ``attention_mask`` and a ``special_tokens_mask`` that keeps [CLS], [SEP] and padding unmasked.
    Use it with ``per_device_train_batch_size=1`` and :class:`Unbatch` around the collator.
    """

    def __init__(
        self,
        store: SentenceStore,
        seq_len: int,
        tokens_per_batch: int,
        tokenizer: PreTrainedTokenizerFast,
        seed: int,
    ):
        rng = np.random.default_rng(seed)
        self.ids = store.ids
        self.cls, self.sep, self.pad = (
            tokenizer.cls_token_id,
            tokenizer.sep_token_id,
            tokenizer.pad_token_id,
        )
        self.spans = pair_spans(store, seq_len, rng)
        a, b = self.spans[:, 1] - self.spans[:, 0], self.spans[:, 3] - self.spans[:, 2]
        self.lengths = a + b + 3
        self.widths = padded_widths(self.lengths, seq_len)
        self.batches = length_batches(self.widths, tokens_per_batch, rng)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> list[dict[str, list[int]]]:
        members = self.batches[i]
        w = int(self.widths[members[0]])  # one width per batch
        return [self.feature(int(m), w) for m in members]

    def feature(self, example: int, w: int) -> dict[str, list[int]]:
        """One example padded to width ``w``."""
        a0, a1, b0, b1 = self.spans[example]
        a, b = self.ids[a0:a1].tolist(), self.ids[b0:b1].tolist()
        ids = [self.cls, *a, self.sep, *b, self.sep]
        pad = w - len(ids)
        special = [1] + [0] * len(a) + [1] + [0] * len(b) + [1]
        return {
            "input_ids": ids + [self.pad] * pad,
            "token_type_ids": [0] * (len(a) + 2) + [1] * (len(b) + 1) + [0] * pad,
            "attention_mask": [1] * len(ids) + [0] * pad,
            "special_tokens_mask": special + [1] * pad,
        }

    def tokens_per_batch(self) -> float:
        """Mean real (non-padding) tokens in a batch: what throughput and tokens seen count."""
        return float(self.lengths.sum() / max(1, len(self.batches)))

    def stats(self) -> dict:
        """What the examples look like, for the pretraining report."""
        slots = sum(len(b) * int(self.widths[b[0]]) for b in self.batches)
        return {
            "examples": len(self.spans),
            "batches": len(self.batches),
            "mean_tokens": round(float(self.lengths.mean()), 1) if len(self.spans) else 0.0,
            "longest": int(self.lengths.max()) if len(self.spans) else 0,
            "segment_b_share": round(
                float((self.spans[:, 3] - self.spans[:, 2]).sum() / max(1, self.lengths.sum())), 3
            ),
            "padding_share": round(1 - float(self.lengths.sum()) / max(1, slots), 3),
        }


class Unbatch:
    """Collator for :class:`PairBatches`: the loader's batch of one item is that item's batch."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, items: list[list[dict]]) -> dict[str, torch.Tensor]:
        return self.collator(items[0])
