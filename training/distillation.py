"""Sentence-embedding distillation data: the teacher's cached embeddings, a batch of them per
step, and the student's saved projection.

The teacher is the packaged multilingual sentence encoder (:mod:`akhbar.models.sentence_encoder`,
about 390 sentences/s on one thread), far too slow to run beside every step, so its embeddings
of ``--distill-sentences`` corpus sentences are computed once and cached in the work dir (float16
beside the sentences). The cache is reused by every run that asks for the same number of
sentences of the same corpus (it does not depend on ``--seed`` or the tokenizer), and rebuilt
when either changes.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from tqdm import tqdm
from transformers import PreTrainedTokenizerFast

from akhbar.models import sentence_encoder
from akhbar.models.sentences import split_sentences
from akhbar.training.corpus import read_corpus

TEACHER_DIM = 512
# Sentences the teacher and the student both read whole: long enough to carry meaning, short
# enough (about 50 tokens) to fit MAX_SENTENCE_TOKENS.
SENTENCE_CHARS = (20, 200)
MAX_SENTENCE_TOKENS = 64
# Fixed, not --seed: runs with different seeds share one cache.
SAMPLING_SEED = 2020
ENCODE_CHUNK = 512
PROJECTION_FILE = "sentence_projection.safetensors"


@dataclass(frozen=True)
class TeacherCache:
    """Corpus sentences and the teacher's unit-length embeddings of them (float16, one row
    each)."""

    sentences: list[str]
    embeddings: np.ndarray


def file_sha1(path: Path) -> str:
    """Content hash of the corpus file: a rebuilt but identical corpus keeps the cache."""
    digest = hashlib.sha1()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sample_sentences(texts: Iterable[str], n: int, seed: int = SAMPLING_SEED) -> list[str]:
    """``n`` distinct sentences drawn evenly from the whole corpus (reservoir sampling), each of
    :data:`SENTENCE_CHARS` characters; fewer when the corpus has fewer."""
    rng = random.Random(seed)
    chosen: list[str] = []
    members: set[str] = set()
    seen = 0
    for text in texts:
        for sentence in split_sentences(text):
            s = sentence.text
            if not SENTENCE_CHARS[0] <= len(s) <= SENTENCE_CHARS[1] or s in members:
                continue
            seen += 1
            if len(chosen) < n:
                chosen.append(s)
                members.add(s)
            elif (slot := rng.randrange(seen)) < n:
                members.discard(chosen[slot])
                chosen[slot] = s
                members.add(s)
    return chosen


def teacher_embeddings(sentences: list[str]) -> np.ndarray:
    """The teacher's embeddings in float16 (unit vectors keep ample precision there)."""
    out = np.zeros((len(sentences), TEACHER_DIM), np.float16)
    for start in tqdm(
        range(0, len(sentences), ENCODE_CHUNK), desc="teacher", unit=" chunks", mininterval=10
    ):
        out[start : start + ENCODE_CHUNK] = sentence_encoder.encode(
            sentences[start : start + ENCODE_CHUNK]
        )
    return out


def teacher_cache(corpus_file: Path, cache_dir: Path, n: int) -> TeacherCache:
    """The cached teacher embeddings of ``n`` sentences of ``corpus_file``, computed if the cache
    is missing, incomplete, or was made for another ``n`` or corpus.

    ``meta.json`` is written last, so an interrupted computation is redone, never half-read.
    """
    key = {
        "requested_sentences": n,
        "corpus_sha1": file_sha1(corpus_file),
        "teacher": sentence_encoder.NAME,
        "sentence_chars": list(SENTENCE_CHARS),
        "sampling_seed": SAMPLING_SEED,
    }
    meta_file = cache_dir / "meta.json"
    if meta_file.exists() and json.loads(meta_file.read_text())["key"] == key:
        lines = (cache_dir / "sentences.jsonl").read_text(encoding="utf-8").splitlines()
        return TeacherCache(
            sentences=[json.loads(line) for line in lines],
            embeddings=np.load(cache_dir / "embeddings.npy"),
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta_file.unlink(missing_ok=True)
    sentences = sample_sentences(read_corpus(corpus_file), n)
    if not sentences:
        raise ValueError(
            f"{corpus_file} has no sentence of {SENTENCE_CHARS[0]}-{SENTENCE_CHARS[1]} characters "
            "to distil on; add text or set --distill-weight 0"
        )
    embeddings = teacher_embeddings(sentences)
    (cache_dir / "sentences.jsonl").write_text(
        "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in sentences), encoding="utf-8"
    )
    np.save(cache_dir / "embeddings.npy", embeddings)
    meta_file.write_text(json.dumps({"key": key, "sentences": len(sentences)}, indent=2) + "\n")
    return TeacherCache(sentences, embeddings)


class SentenceBatches:
    """The cached sentences, tokenised once, served as one batch per optimizer step.

    The batch of step ``s`` is a fixed function of ``s`` (a seeded permutation, walked in order
    and wrapped), so a resumed run sees the sentences the stopped run would have.
    """

    def __init__(
        self,
        cache: TeacherCache,
        tokenizer: PreTrainedTokenizerFast,
        batch_size: int,
        seed: int,
    ):
        self.ids = tokenizer(cache.sentences, truncation=True, max_length=MAX_SENTENCE_TOKENS)[
            "input_ids"
        ]
        self.teacher = torch.from_numpy(cache.embeddings.astype(np.float32))
        self.order = np.random.default_rng(seed).permutation(len(self.ids))
        self.batch_size, self.pad = batch_size, tokenizer.pad_token_id

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """``sentence_ids``, ``sentence_mask`` (padded to the longest) and ``teacher`` rows."""
        rows = self.order[(step * self.batch_size + np.arange(self.batch_size)) % len(self.order)]
        longest = max(len(self.ids[r]) for r in rows)
        ids = torch.full((len(rows), longest), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(self.ids[r])] = torch.tensor(self.ids[r])
            mask[i, : len(self.ids[r])] = 1
        return {"sentence_ids": ids, "sentence_mask": mask, "teacher": self.teacher[rows]}


def save_projection(projection: torch.nn.Linear, out_dir: Path) -> Path:
    """Write the trained projection beside the exported encoder, with what it expects."""
    path = out_dir / PROJECTION_FILE
    safetensors.torch.save_file(
        {
            "weight": projection.weight.detach().float().contiguous(),
            "bias": projection.bias.detach().float().contiguous(),
        },
        str(path),
        metadata={
            "pooling": "mean of the last hidden states over non-padding tokens, [CLS] and [SEP] "
            "included",
            "teacher": sentence_encoder.NAME,
            "teacher_dim": str(TEACHER_DIM),
            "loss": "1 - cosine",
        },
    )
    return path


def load_projection(model_dir: Path) -> torch.nn.Linear:
    """The projection saved by :func:`save_projection`: hidden size → teacher space."""
    state = safetensors.torch.load_file(str(Path(model_dir) / PROJECTION_FILE))
    out_dim, in_dim = state["weight"].shape
    projection = torch.nn.Linear(in_dim, out_dim)
    projection.load_state_dict(state)
    return projection
