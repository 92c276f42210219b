"""The pretraining corpus: unlabelled news plus the train splits, never held-out text.

Every validation and test record of every dataset, and all of ``summary/easc`` (the
out-of-domain summary check), is hashed after normalisation; any corpus text with the
same hash is removed and counted. Exact duplicates inside the corpus are dropped too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from akhbar.models.normalize import NormalizerConfig, normalize
from akhbar.models.reader import read_records

UNLABELLED = "pretrain_unlabelled/saudinewsnet/saudinewsnet.jsonl.gz"
# (dataset folder, fields whose text goes into the corpus)
TRAIN_SPLITS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("topic/ant_v2.1_multisource", ("title", "text")),
    ("summary/ant_bbc", ("title", "summary", "text")),
    ("summary/ant_leads", ("title", "text")),
    ("stance/unifiedfc_baly2018", ("claim", "text")),
    ("stance/ans_khouja2020", ("claim", "text")),
    ("stance/arabicstancex_alkhathlan2025", ("text",)),
    ("stance/mawqif_alturayeif2022", ("text",)),
)
# What a base pretrained on this corpus names as its data (its model card's ``datasets``).
DATASETS = ("pretrain_unlabelled/saudinewsnet", *(name for name, _ in TRAIN_SPLITS))
NEVER_IN_CORPUS = ("summary/easc",)
HELD_OUT_SPLITS = ("validation", "test")
TEXT_FIELDS = ("title", "text", "claim", "summary", "summaries", "target")


@dataclass
class CorpusStats:
    texts_seen: int = 0
    removed_held_out: int = 0
    removed_duplicates: int = 0
    kept: int = 0
    held_out_for_loss: int = 0
    characters: int = 0
    held_out_hashes: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def text_hash(text: str, config: NormalizerConfig = NormalizerConfig()) -> str:
    """Hash of the normalised text: the identity used to keep held-out text out."""
    return hashlib.sha1(normalize(text, config).encode("utf-8")).hexdigest()


def _raw_records(path: Path) -> Iterator[dict]:
    """Every record of a data file, other fields kept, through the project's one reader."""
    return iter(read_records(path, "score"))


def _strings(record: dict, fields: tuple[str, ...]) -> Iterator[str]:
    for field in fields:
        value = record.get(field)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and v.strip():
                yield v


def held_out_hashes(data_root: Path, config: NormalizerConfig = NormalizerConfig()) -> set[str]:
    """Hashes of every text field in every validation/test split, and of all of EASC."""
    hashes: set[str] = set()
    for folder in sorted(p for p in data_root.glob("*/*") if p.is_dir()):
        name = f"{folder.parent.name}/{folder.name}"
        files = sorted(folder.glob("*.jsonl*"))
        if name not in NEVER_IN_CORPUS:
            files = [f for f in files if f.name.split(".")[0] in HELD_OUT_SPLITS]
        for f in files:
            for record in _raw_records(f):
                hashes.update(text_hash(t, config) for t in _strings(record, TEXT_FIELDS))
    return hashes


def corpus_texts(data_root: Path) -> Iterator[str]:
    """Raw texts, in a fixed order: the unlabelled news, then each train split."""
    for record in _raw_records(data_root / UNLABELLED):
        yield from _strings(record, ("title", "text"))
    for name, fields in TRAIN_SPLITS:
        path = data_root / name / "train.jsonl.gz"
        if path.exists():
            for record in _raw_records(path):
                yield from _strings(record, fields)


def build_corpus(
    data_root: Path,
    out_dir: Path,
    config: NormalizerConfig = NormalizerConfig(),
    loss_holdout_every: int = 200,
) -> CorpusStats:
    """Write ``train.jsonl`` and ``heldout.jsonl`` (for held-out MLM loss) to ``out_dir``.

    One text in ``loss_holdout_every`` (chosen by hash, so stable across runs) is kept
    aside to measure the held-out MLM loss; all of it comes from train splits.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = CorpusStats()
    forbidden = held_out_hashes(data_root, config)
    stats.held_out_hashes = len(forbidden)
    seen: set[str] = set()
    with (
        (out_dir / "train.jsonl").open("w", encoding="utf-8") as train,
        (out_dir / "heldout.jsonl").open("w", encoding="utf-8") as heldout,
    ):
        for text in tqdm(corpus_texts(data_root), desc="corpus", unit=" texts", mininterval=5):
            stats.texts_seen += 1
            h = text_hash(text, config)
            if h in forbidden:
                stats.removed_held_out += 1
                continue
            if h in seen:
                stats.removed_duplicates += 1
                continue
            seen.add(h)
            line = json.dumps({"text": text}, ensure_ascii=False) + "\n"
            if int(h[:8], 16) % loss_holdout_every == 0:
                stats.held_out_for_loss += 1
                heldout.write(line)
            else:
                stats.kept += 1
                stats.characters += len(text)
                train.write(line)
    (out_dir / "stats.json").write_text(json.dumps(stats.to_dict(), indent=2) + "\n")
    return stats


def read_corpus(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)["text"]
