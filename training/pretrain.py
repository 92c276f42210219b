"""``akhbar pretrain``: tokenizer, corpus and a small Arabic BERT, from scratch or continued.

Stages, each resumable: corpus (held-out filter) → tokenizer → token ids (a packed stream, and
for ``--segments pairs`` the corpus sentence by sentence) → teacher embeddings when distilling →
pretraining with the HF ``Trainer`` (checkpoints, TensorBoard) → export of a standard Hugging
Face model directory with a model card (and the sentence projection when distilling).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertModel,
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import get_last_checkpoint

from akhbar.models.cards import base_card_data, card_text
from akhbar.models.normalize import NormalizerConfig, build_normalizer
from akhbar.models.reader import data_root, read_records
from akhbar.models.sentence_encoder import NAME as TEACHER_NAME
from akhbar.training.corpus import DATASETS as CORPUS_DATASETS
from akhbar.training.corpus import build_corpus, read_corpus
from akhbar.training.distillation import (
    PROJECTION_FILE,
    TEACHER_DIM,
    SentenceBatches,
    save_projection,
    teacher_cache,
)
from akhbar.training.distributed import finish, is_main_process, main_process_first
from akhbar.training.flags import add_dataclass_flags, bf16_field, given
from akhbar.training.pretraining_models import (
    ElectraPretrainer,
    MaskedOnlyBertForMaskedLM,
    SentenceDistillation,
    encoder_of,
    language_model,
)
from akhbar.training.sentence_pairs import PairBatches, Unbatch, sentence_store
from akhbar.training.tokenizer_training import save_tokenizer, train_tokenizer, unk_rate

OBJECTIVES = ("mlm", "electra")
EMBEDDING_INITS = ("random", "word2vec")
SEGMENTS = ("packed", "pairs")
UNK_CHECK_DATASET = "topic/ant_v2.1_multisource"


@dataclass
class PretrainConfig:
    """Settings for ``akhbar pretrain``; every field is a command-line flag."""

    output_dir: str = field(
        default="work/pretrain/base",
        metadata={"help": "Where the finished HF model directory goes."},
    )
    work_dir: str = field(
        default="work/pretrain",
        metadata={"help": "Corpus, token ids, checkpoints and logs (resumable)."},
    )
    data: str | None = field(
        default=None, metadata={"help": "Data root; none: $AKHBAR_DATA, else ../shared/data."}
    )
    corpus: str | None = field(
        default=None,
        metadata={
            "help": "A JSON Lines file of {'text': ...} to use instead of the data root (tests, "
            "custom corpora)."
        },
    )
    objective: str = field(
        default="electra",
        metadata={
            "help": f"{' or '.join(OBJECTIVES)}: masked LM (loss on masked positions only) or "
            "ELECTRA replaced-token detection."
        },
    )
    embedding_init: str = field(
        default="random",
        metadata={
            "help": f"{' or '.join(EMBEDDING_INITS)}: word2vec warm-starts the token embeddings "
            "with skip-gram vectors trained on the same corpus."
        },
    )
    vocab_size: int = field(default=16_000, metadata={"help": "WordPiece vocabulary size."})
    layers: int = field(default=4, metadata={"help": "Transformer layers."})
    hidden: int = field(default=256, metadata={"help": "Hidden size (a multiple of --heads)."})
    heads: int = field(default=4, metadata={"help": "Attention heads."})
    intermediate: int = field(default=1024, metadata={"help": "Feed-forward size."})
    max_positions: int = field(
        default=512, metadata={"help": "Longest sequence the model can take."}
    )
    seq_len: int = field(
        default=128,
        metadata={
            "help": "Sequence length for pretraining: of every packed block, or of the longest "
            "sentence-pair example."
        },
    )
    segments: str = field(
        default="packed",
        metadata={
            "help": f"{' or '.join(SEGMENTS)}: packed fills every sequence with one segment of "
            "running text; pairs makes [CLS] A [SEP] B [SEP] examples of up to --seq-len "
            "tokens, A and B consecutive text of one document split at a sentence boundary, so "
            "token type 1 and every position up to --seq-len are trained."
        },
    )
    batch_size: int = field(
        default=64,
        metadata={
            "help": "Sequences of --seq-len per batch; with --segments pairs, a budget of "
            "--batch-size x --seq-len token slots that shorter examples share."
        },
    )
    learning_rate: float = field(
        default=1e-3, metadata={"help": "Peak learning rate (linear warmup, then linear decay)."}
    )
    warmup_steps: int = field(default=200, metadata={"help": "Warmup steps."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    mlm_probability: float = field(
        default=0.15,
        metadata={"help": "Share of tokens masked (for ELECTRA, the ones the generator fills in)."},
    )
    generator_layers: int = field(default=1, metadata={"help": "ELECTRA generator depth."})
    distill_weight: float = field(
        default=0.0,
        metadata={
            "help": "Weight of the sentence-distillation loss (0: off): a projection of the "
            "encoder's mean-pooled embedding of a corpus sentence regresses the packaged "
            "multilingual sentence encoder's embedding of it (1 - cosine)."
        },
    )
    distill_sentences: int = field(
        default=200_000,
        metadata={
            "help": "Corpus sentences the teacher embeds once (about 390/s on one thread), cached "
            "in --work-dir and reused by every run that asks for as many of the same corpus."
        },
    )
    distill_batch_size: int = field(
        default=64,
        metadata={"help": "Sentences per step for the distillation loss, beside the LM batch."},
    )
    max_steps: int = field(
        default=0, metadata={"help": "Optimizer steps; 0 means derive from --time-budget-minutes."}
    )
    time_budget_minutes: float = field(
        default=20.0,
        metadata={"help": "Wall-clock budget that sizes --max-steps by a short probe."},
    )
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "Continue from a saved base (its weights, tokenizer and architecture; e.g. a "
            "128-token base continued at 512 tokens with pairs)."
        },
    )
    copy_positions: int = field(
        default=0,
        metadata={
            "help": "With --init-from a base pretrained on sequences of this many tokens: its "
            "position rows past them start as copies of its trained rows 1..N-1, repeated (as "
            "Longformer extended RoBERTa), and token type 1 as a copy of type 0, instead of "
            "their untrained values; 0: keep the base's rows."
        },
    )
    head_warmup_steps: int = field(
        default=100,
        metadata={
            "help": "With --init-from: the first N steps train only the parts the base lacks "
            "(ELECTRA's generator and detector, a masked-LM head, the distillation projection) "
            "with the base frozen, so their random start sends no noise into trained weights; "
            "the learning rate then warms up again for the whole model. 0: train everything "
            "from the first step. Unused without --init-from."
        },
    )
    bf16: bool = bf16_field()
    threads: int = field(default=0, metadata={"help": "torch threads; 0 keeps torch's default."})
    compile: bool = field(
        default=True,
        metadata={
            "help": "torch.compile the encoder stacks (inductor; on the CPU it needs a C++ "
            "compiler). The first steps pay the compilation once; --compile false runs eagerly."
        },
    )
    flush_denormal: bool = field(
        default=True,
        metadata={
            "help": "Flush subnormal floats to zero on the CPU while training (a continued base's "
            "softmaxes and gradients underflow into them, "
            "and x86 CPUs handle them about 4x slower)."
        },
    )
    save_steps: int = field(
        default=200,
        metadata={
            "help": "Checkpoint every this many steps (a stopped run resumes from the last)."
        },
    )
    seed: int = field(
        default=42, metadata={"help": "Seed for initialisation, masking and data order."}
    )

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"--objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"
            )
        if self.embedding_init not in EMBEDDING_INITS:
            raise ValueError(
                f"--embedding-init must be one of {', '.join(EMBEDDING_INITS)}, got "
                f"{self.embedding_init!r}"
            )
        if self.segments not in SEGMENTS:
            raise ValueError(
                f"--segments must be one of {', '.join(SEGMENTS)}, got {self.segments!r}"
            )
        if self.distill_weight < 0:
            raise ValueError(f"--distill-weight must be 0 (off) or more, got {self.distill_weight}")
        if self.distill_weight and min(self.distill_sentences, self.distill_batch_size) < 1:
            raise ValueError(
                "--distill-sentences and --distill-batch-size must be at least 1 when "
                f"--distill-weight is on, got {self.distill_sentences} and "
                f"{self.distill_batch_size}"
            )
        if self.hidden % self.heads:
            raise ValueError(
                f"--hidden ({self.hidden}) must be divisible by --heads ({self.heads})"
            )
        if not 8 <= self.seq_len <= self.max_positions:
            raise ValueError(
                "--seq-len must be between 8 and --max-positions "
                f"({self.max_positions}), got {self.seq_len}"
            )
        if self.max_steps <= 0 and self.time_budget_minutes <= 0:
            raise ValueError("set --max-steps or a positive --time-budget-minutes")
        if self.head_warmup_steps < 0 or (
            self.init_from and 0 < self.max_steps <= self.head_warmup_steps
        ):
            raise ValueError(
                "--head-warmup-steps must be 0 or more, and fewer than --max-steps, got "
                f"{self.head_warmup_steps} (--max-steps {self.max_steps})"
            )
        if self.copy_positions and (not self.init_from or self.copy_positions < 2):
            raise ValueError(
                "--copy-positions needs --init-from and at least 2 trained positions, got "
                f"{self.copy_positions}"
            )

    @property
    def head_warmup(self) -> int:
        """The steps of head warm-up this run takes: ``--head-warmup-steps`` when it continues
        a base, 0 otherwise (a fresh model has no trained part to protect)."""
        return self.head_warmup_steps if self.init_from else 0


def cxx_compiler() -> str | None:
    """The C++ compiler inductor would use on the CPU, if there is one."""
    from torch._inductor import config as inductor_config

    for name in (
        inductor_config.cpp.cxx[0]
        if inductor_config.cpp.cxx and inductor_config.cpp.cxx[0]
        else None,
        os.environ.get("CXX"),
        "g++",
        "c++",
        "clang++",
    ):
        if name and shutil.which(name):
            return name
    return None


def compile_encoders(model: torch.nn.Module) -> None:
    """Compile the BERT stacks in place (``nn.Module.compile``: parameter names, checkpoints and
    the export stay those of the eager modules). Their inputs are fixed-shape blocks, so they
    compile once; the masked-position heads (data-dependent shapes) stay eager.

    Compiled stacks use the plain ("eager") attention, which inductor fuses: about 1.2x faster per
    step on the CPU than calling SDPA's flash kernel from the graph. The same arithmetic, and
    the attention setting is not saved with the model."""
    if not cxx_compiler():
        raise RuntimeError(
            "--compile needs a C++ compiler for torch.compile's inductor backend on the CPU "
            "(none of g++, c++, clang++ or $CXX was found): install one (apt-get install g++) "
            "or pass --compile false to train eagerly (slower, same results)"
        )
    lm = language_model(model)
    stacks = [lm.encoder, lm.generator.bert] if isinstance(lm, ElectraPretrainer) else [lm.bert]
    for stack in stacks:
        stack.set_attn_implementation("eager")
        stack.compile()


class PackedBlocks(torch.utils.data.Dataset):
    """Fixed-length blocks cut from one long stream of token ids ([SEP] between texts)."""

    def __init__(self, ids: np.ndarray, seq_len: int, cls_id: int):
        self.ids, self.body, self.cls_id = ids, seq_len - 1, cls_id

    def __len__(self) -> int:
        return len(self.ids) // self.body

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        chunk = torch.from_numpy(self.ids[i * self.body : (i + 1) * self.body].astype(np.int64))
        return {"input_ids": torch.cat([torch.tensor([self.cls_id]), chunk])}


class ThroughputCallback(TrainerCallback):
    """Adds tokens/s to every log line (progress bar and TensorBoard).

    Each figure is wall time between two log lines, so it includes data loading, the optimizer
    and logging; the mean starts at the first log line (the steps before it, compilation
    included, are warm-up). ``first_step_seconds`` is the first step alone (compilation).
    """

    def __init__(self, tokens_per_step: int):
        self.tokens_per_step = tokens_per_step
        self.last: tuple[int, float] | None = None
        self.steps = 0
        self.seconds = 0.0
        self.started: float | None = None
        self.first_step_seconds: float | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self.started is None:
            self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.first_step_seconds is None and self.started is not None:
            self.first_step_seconds = round(time.perf_counter() - self.started, 2)

    def on_log(self, args, state, control, logs=None, **kwargs):
        now = time.perf_counter()
        if self.last is not None and logs is not None and state.global_step > self.last[0]:
            steps, seconds = state.global_step - self.last[0], now - self.last[1]
            self.steps, self.seconds = self.steps + steps, self.seconds + seconds
            logs["tokens_per_second"] = round(steps * self.tokens_per_step / seconds, 1)
        self.last = (state.global_step, now)

    @property
    def tokens_per_second(self) -> float | None:
        """Mean over this process's logged steps (a resumed run counts only its own)."""
        return round(self.steps * self.tokens_per_step / self.seconds, 1) if self.seconds else None


class HeadWarmup(TrainerCallback):
    """Freezes the encoder for the first ``steps`` optimizer steps of a continued base.

    A continued base brings only its encoder; ELECTRA's generator and detector (and a masked-LM
    head, a distillation projection) start random. Trained jointly from the first step, their
    random gradients (the detector's weighted 50 times) move every trained weight at the full
    learning rate before the heads know anything: the first continuation arms fine-tuned worse
    than the base they started from. Frozen at ``on_train_begin``, after the optimizer is
    built and DDP has wrapped the model, so the encoder's parameters are in both (the optimizer
    keeps no state for them until their first gradient).
    """

    def __init__(self, encoder: torch.nn.Module, steps: int):
        self.encoder, self.steps = encoder, steps

    def _set(self, state) -> None:
        self.encoder.requires_grad_(state.global_step >= self.steps)

    def on_train_begin(self, args, state, control, **kwargs):
        self._set(state)  # a resumed run past the warm-up trains everything at once

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.steps:
            self._set(state)


def continuation_lr(step: int, head_steps: int, warmup: int, total: int) -> float:
    """The learning-rate factor with a head warm-up: the fresh heads warm up and hold the peak
    alone; from ``head_steps`` on, the whole model warms up again from 0 over ``warmup`` steps
    and decays linearly to 0 at ``total`` (``get_linear_schedule_with_warmup`` shifted)."""
    if step < head_steps:
        return min(1.0, (step + 1) / max(1, min(warmup, head_steps)))
    step, total = step - head_steps, total - head_steps
    if step < warmup:
        return step / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


class PretrainTrainer(Trainer):
    """Trainer that adds each step's distillation sentences to its batch, logs the loss's parts
    (masked LM, ELECTRA's detection, distillation) and saves its tied generator/encoder pair."""

    LOSS_PARTS = ("mlm_loss", "rtd_loss", "distill_loss")

    def __init__(
        self,
        *args,
        sentences: SentenceBatches | None = None,
        head_warmup_steps: int = 0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.sentences = sentences
        self.head_warmup_steps = head_warmup_steps
        self._parts: dict[str, list[float]] = {}
        if head_warmup_steps:
            self.add_callback(HeadWarmup(encoder_of(self.model), head_warmup_steps))

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """The stock linear schedule, or :func:`continuation_lr` during a head warm-up."""
        if not self.head_warmup_steps:
            return super().create_scheduler(num_training_steps, optimizer)
        if self.lr_scheduler is None:
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer or self.optimizer,
                functools.partial(
                    continuation_lr,
                    head_steps=self.head_warmup_steps,
                    warmup=self.args.warmup_steps,
                    total=num_training_steps,
                ),
            )
        return self.lr_scheduler

    def with_sentences(self, inputs: dict) -> dict:
        """The LM batch plus this step's distillation sentences (unchanged when not distilling);
        chosen by step number and process, so a resumed run continues the sequence and the
        processes of a distributed run each take their own."""
        if self.sentences is None:
            return inputs
        index = self.state.global_step * self.args.world_size + self.args.process_index
        return {**inputs, **self.sentences.batch(index)}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**self.with_sentences(inputs))
        for key in self.LOSS_PARTS:
            if key in outputs:
                self._parts.setdefault(key, []).append(float(outputs[key]))
        return (outputs["loss"], outputs) if return_outputs else outputs["loss"]

    def log(self, logs: dict, *args, **kwargs) -> None:
        for key, values in self._parts.items():
            if values and "loss" in logs:
                logs[key] = round(float(np.mean(values)), 4)
        if "loss" in logs:
            self._parts = {}
        super().log(logs, *args, **kwargs)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        if isinstance(self.model, PreTrainedModel):
            return super()._save(output_dir, state_dict)
        if not self.args.should_save:
            # The first process writes, as the stock _save does; under torchrun every process
            # got here and wrote the same checkpoint file at once (a torn checkpoint to resume).
            return
        output_dir = output_dir or self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        safetensors.torch.save_model(self.model, os.path.join(output_dir, "model.safetensors"))


def encode_corpus(
    tokenizer: PreTrainedTokenizerFast, texts, out: Path, batch: int = 1000
) -> np.ndarray:
    """Tokenize every text and concatenate with [SEP] separators into a uint16 stream."""
    sep = tokenizer.sep_token_id
    parts: list[np.ndarray] = []
    buf: list[str] = []

    def flush() -> None:
        for ids in tokenizer(buf, add_special_tokens=False)["input_ids"]:
            parts.append(np.asarray(ids + [sep], dtype=np.uint16))
        buf.clear()

    for text in texts:
        buf.append(text)
        if len(buf) == batch:
            flush()
    if buf:
        flush()
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)
    np.save(out, ids)
    return ids


def tokenizer_key(tokenizer: PreTrainedTokenizerFast) -> str:
    """A short hash of what decides the token ids (normaliser, pre-tokenizer, vocabulary): runs
    that share a work dir but not a tokenizer (a fresh base beside one continued from a shipped
    base) never read each other's ids."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    parts = {key: spec.get(key) for key in ("normalizer", "pre_tokenizer", "model")}
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def bert_config(cfg: PretrainConfig, tokenizer: PreTrainedTokenizerFast) -> BertConfig:
    # No dropout while pretraining: at this compute the model underfits, never overfits.
    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.intermediate,
        max_position_embeddings=cfg.max_positions,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_model(cfg: PretrainConfig, tokenizer: PreTrainedTokenizerFast) -> torch.nn.Module:
    if cfg.init_from:
        config = BertConfig.from_pretrained(cfg.init_from)
        if cfg.seq_len > config.max_position_embeddings:
            raise ValueError(
                f"--seq-len {cfg.seq_len} is longer than the {config.max_position_embeddings} "
                f"positions of --init-from {cfg.init_from}"
            )
    else:
        config = bert_config(cfg, tokenizer)
    if cfg.objective == "mlm":
        if cfg.init_from:
            return MaskedOnlyBertForMaskedLM.from_pretrained(cfg.init_from, dtype=torch.float32)
        return MaskedOnlyBertForMaskedLM(config)
    model = ElectraPretrainer(config, cfg.generator_layers)
    if cfg.init_from:
        model.encoder = model.encoder.from_pretrained(
            cfg.init_from, add_pooling_layer=False, dtype=torch.float32
        )  # a shipped base is stored in fp16; pretraining computes in fp32
        if cfg.copy_positions:
            copy_trained_positions(model.encoder.embeddings, cfg.copy_positions)
        model.tie_embeddings()
    return model


@torch.no_grad()
def copy_trained_positions(embeddings: torch.nn.Module, trained: int) -> None:
    """Rows ``trained``.. of the position embeddings become copies of rows 1..trained-1,
    repeated, and token type 1 a copy of type 0.

    A base pretrained on ``trained``-token sequences of one segment leaves those rows at their
    random initialisation. Copies give every later position the shape of a trained one (row 0
    is skipped: only [CLS] ever sits there), so continued pretraining starts from an encoder
    that already reads them, as Longformer extended RoBERTa's positions (Beltagy et al. 2020).
    """
    positions = embeddings.position_embeddings.weight
    if trained >= positions.shape[0]:
        raise ValueError(
            f"--copy-positions {trained} leaves nothing to copy into: the base has "
            f"{positions.shape[0]} positions"
        )
    source = 1 + (torch.arange(trained, positions.shape[0]) - 1) % (trained - 1)
    positions[trained:] = positions[source]
    types = embeddings.token_type_embeddings.weight
    if types.shape[0] > 1:
        types[1:] = types[0]


class _Documents:
    """Re-iterable token-id documents (split at [SEP]) as gensim wants them: lists of str."""

    def __init__(self, ids: np.ndarray, sep_id: int):
        self.ids, self.cuts = ids, np.flatnonzero(np.asarray(ids) == sep_id)

    def __iter__(self):
        start = 0
        for cut in self.cuts:
            if cut > start:
                yield [str(i) for i in self.ids[start:cut]]
            start = cut + 1


def word2vec_embeddings(
    ids: np.ndarray, sep_id: int, vocab: int, size: int, cache: Path, seed: int
) -> np.ndarray:
    """Skip-gram vectors for every token id, trained on the same corpus in minutes.

    Tokens the corpus never shows get zero rows (the caller keeps their random init).
    """
    if cache.exists():
        return np.load(cache)
    from gensim.models import Word2Vec

    w2v = Word2Vec(
        _Documents(ids, sep_id),
        vector_size=size,
        window=5,
        min_count=1,
        sg=1,
        negative=5,
        workers=max(1, torch.get_num_threads()),
        epochs=1,
        seed=seed,
    )
    vectors = np.zeros((vocab, size), dtype=np.float32)
    for token, index in w2v.wv.key_to_index.items():
        vectors[int(token)] = w2v.wv.vectors[index]
    np.save(cache, vectors)
    return vectors


def warm_start_embeddings(model: torch.nn.Module, vectors: np.ndarray) -> None:
    """Copy word2vec rows into the token embeddings, scaled to twice the init std.

    Twice: post-LN BERT adds position embeddings of the init std before its LayerNorm,
    and the lexical signal should dominate that sum from the first step.
    """
    embeddings = encoder_of(model).embeddings.word_embeddings
    std = 2 * model.config.initializer_range
    known = np.abs(vectors).sum(1) > 0
    scaled = vectors[known] * (std / vectors[known].std())
    with torch.no_grad():
        embeddings.weight[torch.from_numpy(np.flatnonzero(known))] = torch.from_numpy(scaled)


@dataclass
class PretrainData:
    """What :func:`prepare_data` makes.

    ``ids`` and ``heldout`` are the train and held-out texts as one stream each ([SEP] between
    texts); ``train_file`` is the train text itself (sentence pairs and distillation read it);
    ``tokens_dir`` holds everything derived from this tokenizer's ids.
    """

    tokenizer: PreTrainedTokenizerFast
    ids: np.ndarray
    heldout: np.ndarray
    train_file: Path
    tokens_dir: Path
    report: dict


def prepare_data(cfg: PretrainConfig, work: Path) -> PretrainData:
    """Corpus, tokenizer and packed ids; each step is skipped when its output exists."""
    report: dict = {}
    corpus_dir = work / "corpus"
    root = Path(cfg.data) if cfg.data else data_root()
    if cfg.corpus:
        corpus_dir = Path(cfg.corpus).parent
        train_file, heldout_file = Path(cfg.corpus), Path(cfg.corpus)
    else:
        if not (corpus_dir / "stats.json").exists():
            build_corpus(root, corpus_dir)
        report["corpus"] = json.loads((corpus_dir / "stats.json").read_text())
        train_file, heldout_file = corpus_dir / "train.jsonl", corpus_dir / "heldout.jsonl"

    tok_dir = work / "tokenizer"
    if cfg.init_from:
        tok_dir = Path(cfg.init_from)
    elif not (tok_dir / "tokenizer.json").exists():
        tokenizer = train_tokenizer(
            read_corpus(train_file), cfg.vocab_size, model_max_length=cfg.max_positions
        )
        save_tokenizer(tokenizer, tok_dir, NormalizerConfig())
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    report["vocab_size"] = len(tokenizer)
    if not cfg.corpus:
        val = (
            r["text"] for r in read_records(root / UNK_CHECK_DATASET, "topic", split="validation")
        )
        report["unk_rate_validation"] = round(unk_rate(tokenizer, val), 6)

    tokens_dir = work / f"tokens-{tokenizer_key(tokenizer)}"
    ids_file, heldout_ids_file = tokens_dir / "train_ids.npy", tokens_dir / "heldout_ids.npy"
    if not ids_file.exists():
        tokens_dir.mkdir(parents=True, exist_ok=True)
        encode_corpus(tokenizer, read_corpus(heldout_file), heldout_ids_file)
        encode_corpus(tokenizer, read_corpus(train_file), ids_file)
    ids = np.load(ids_file, mmap_mode="r")
    heldout = np.load(heldout_ids_file, mmap_mode="r")
    report["train_tokens_available"] = int(len(ids))
    return PretrainData(tokenizer, ids, heldout, train_file, tokens_dir, report)


@dataclass
class TrainingSet:
    """The examples for the ``Trainer``: its dataset, loader batch size and collator, and the
    real (non-padding) tokens in one step."""

    dataset: torch.utils.data.Dataset
    loader_batch_size: int
    collator: object
    tokens_per_step: float


def training_set(
    cfg: PretrainConfig, data: PretrainData, collator: DataCollatorForLanguageModeling
) -> TrainingSet:
    """Packed blocks, or sentence-pair batches built from the corpus sentence by sentence."""
    if cfg.segments == "packed":
        blocks = PackedBlocks(data.ids, cfg.seq_len, data.tokenizer.cls_token_id)
        if len(blocks) == 0:
            raise ValueError(
                f"the corpus gives no block of {cfg.seq_len} tokens; add text or lower --seq-len"
            )
        return TrainingSet(blocks, cfg.batch_size, collator, cfg.batch_size * cfg.seq_len)
    store = sentence_store(
        data.tokenizer, read_corpus(data.train_file), data.tokens_dir / "sentences"
    )
    pairs = PairBatches(store, cfg.seq_len, cfg.batch_size * cfg.seq_len, data.tokenizer, cfg.seed)
    if len(pairs) == 0:
        raise ValueError(
            "the corpus gives no sentence pair: --segments pairs needs documents of two or more "
            "sentences (or use --segments packed)"
        )
    data.report["pairs"] = pairs.stats()
    return TrainingSet(pairs, 1, Unbatch(collator), pairs.tokens_per_batch())


def run_name(cfg: PretrainConfig) -> str:
    """Checkpoints, plans and logs are kept per recipe (``mlm``, ``electra-word2vec``,
    ``electra-from-base-3f2a1c-pairs512-distill1``, ...), so runs that share a work dir (its
    corpus, token ids and teacher cache) never resume each other's checkpoints."""
    parts = [cfg.objective]
    if cfg.init_from:
        source = Path(cfg.init_from).resolve()
        parts.append(f"from-{source.name}-{hashlib.sha1(str(source).encode()).hexdigest()[:6]}")
    elif cfg.embedding_init != "random":
        parts.append(cfg.embedding_init)
    if cfg.copy_positions:
        parts.append(f"copypos{cfg.copy_positions}")
    if cfg.head_warmup:
        parts.append(f"headwarmup{cfg.head_warmup}")
    if cfg.segments == "pairs":
        parts.append(f"pairs{cfg.seq_len}")
    if cfg.distill_weight:
        parts.append(f"distill{cfg.distill_weight:g}")
    return "-".join(parts)


def plan_steps(cfg: PretrainConfig, trainer: Trainer, work: Path) -> int:
    """Steps that fit the time budget, measured once by a short probe and remembered."""
    plan_file = work / f"plan-{run_name(cfg)}.json"
    if cfg.max_steps > 0:
        return cfg.max_steps
    if plan_file.exists():
        return json.loads(plan_file.read_text())["max_steps"]
    model, loader = trainer.model, trainer.get_train_dataloader()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=0.0
    )  # lr 0: the probe leaves weights unchanged
    batches = iter(loader)
    timings = []
    for i in range(8):
        batch = next(batches)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = model(**trainer.with_sentences(batch))["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if i >= 3:
            timings.append(time.perf_counter() - start)
    step_s = float(np.median(timings))
    steps = max(10, int(cfg.time_budget_minutes * 60 / step_s))
    plan_file.write_text(json.dumps({"max_steps": steps, "probe_step_seconds": step_s}) + "\n")
    return steps


def heldout_mlm_loss(
    model: torch.nn.Module, heldout: PackedBlocks, collator, batch_size: int, seed: int
) -> float:
    """Mean masked-LM loss on held-out blocks with a fixed masking seed (generator for ELECTRA)."""
    mlm = language_model(model)
    mlm = mlm.generator if isinstance(mlm, ElectraPretrainer) else mlm
    mlm.eval()
    torch.manual_seed(seed)
    losses = []
    # Eager: a few hundred blocks do not repay compiling an inference graph (a compiled stack
    # would otherwise recompile for eval mode and a short last batch).
    with torch.inference_mode(), torch.compiler.set_stance("force_eager"):
        for start in range(0, min(len(heldout), 512), batch_size):
            batch = collator(
                [heldout[i] for i in range(start, min(start + batch_size, len(heldout)))]
            )
            losses.append(mlm(**batch).loss.item())
    return float(np.mean(losses)) if losses else float("nan")


def with_fixed_pooler(encoder: BertModel) -> BertModel:
    """The encoder with a saved pooler: the identity, so ``pooler_output`` is tanh of the
    [CLS] state.

    Pretraining has no pooler (neither objective reads one), and ``AutoModel.from_pretrained``
    would draw a random one at every load, so two loads of the base would disagree on
    ``pooler_output``. akhbar's heads mean-pool the token states and never read it.
    """
    full = BertModel(encoder.config, add_pooling_layer=True)
    missing, unexpected = full.load_state_dict(encoder.state_dict(), strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise ValueError(f"the encoder does not fit BertModel ({(missing + unexpected)[:3]})")
    with torch.no_grad():
        torch.nn.init.eye_(full.pooler.dense.weight)
        full.pooler.dense.bias.zero_()
    return full


def export(model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, out: Path) -> None:
    """Save the encoder as a stock Hugging Face directory (safetensors, no custom code), and
    beside it the sentence projection when the model was distilled."""
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(model, SentenceDistillation):
        save_projection(model.projection, out)
        model = model.pretrainer
    if isinstance(model, ElectraPretrainer):
        with_fixed_pooler(model.encoder).save_pretrained(out)
    else:
        model.save_pretrained(out)
        if isinstance(model, MaskedOnlyBertForMaskedLM):
            # save_pretrained records the class name; the checkpoint is a stock BertForMaskedLM.
            model.config.architectures = ["BertForMaskedLM"]
            model.config.save_pretrained(out)
    # The tokenizer carries this version's normaliser, whatever version trained its vocabulary.
    tokenizer.backend_tokenizer.normalizer = build_normalizer(NormalizerConfig())
    save_tokenizer(tokenizer, out, NormalizerConfig())


def provenance(cfg: PretrainConfig) -> str:
    """How the weights were made, as the card's opening says it: an arm that continues from a
    saved base names it."""
    inputs = (
        "sentence pairs ([CLS] A [SEP] B [SEP], token types 0 and 1)"
        if cfg.segments == "pairs"
        else "packed single-segment sequences"
    )
    start = (
        f"continued from the base at `{cfg.init_from}` (its weights and tokenizer)"
        if cfg.init_from
        else "pretrained from scratch"
    )
    distilled = (
        " plus sentence-embedding distillation from the multilingual Universal Sentence Encoder "
        f"(weight {cfg.distill_weight:g})"
        if cfg.distill_weight
        else ""
    )
    return (
        f"{start} on Arabic news with the `{cfg.objective}` objective{distilled}, on {inputs} of "
        f"up to {cfg.seq_len} tokens, by `akhbar pretrain`"
    )


def projection_section(cfg: PretrainConfig, report: dict) -> list[str]:
    """The card's note on ``sentence_projection.safetensors``, when the base was distilled."""
    if not cfg.distill_weight:
        return []
    return [
        "## Sentence projection",
        "",
        f"`{PROJECTION_FILE}` maps the encoder's mean-pooled last hidden state (non-padding "
        f"tokens, [CLS] and [SEP] included) to the {TEACHER_DIM}-dimensional space of "
        f"{TEACHER_NAME}; it was trained with a `1 - cosine` loss on "
        f"{report['distillation']['sentences']:,} corpus sentences (weight {cfg.distill_weight:g}"
        "). Load it with `akhbar.training.distillation.load_projection(dir)` to use the encoder "
        "as a sentence encoder; fine-tuning ignores it.",
        "",
    ]


def model_card(cfg: PretrainConfig, report: dict) -> str:
    lines = [
        "# akhbar Arabic BERT (small, made here)",
        "",
        f"A {report['layers']}-layer, hidden-{report['hidden']} BERT encoder {provenance(cfg)}. "
        "Load it with `AutoModel.from_pretrained(dir)` and `AutoTokenizer.from_pretrained(dir)`; "
        "the tokenizer carries the project's Arabic normaliser, so raw text goes in as it is.",
        "",
        *projection_section(cfg, report),
        "## Licence",
        "",
        "Pretrained on SaudiNewsNet (CC BY-NC-SA 4.0) and the train splits of the labelled sets; "
        "the weights are shared under CC BY-NC-SA 4.0: non-commercial use, with attribution, under "
        "the same terms.",
        "",
        "## Data",
        "",
        "`pretrain_unlabelled/saudinewsnet` plus the train splits of the labelled sets. Every text "
        "whose normalised hash matches a validation or test text of any set, or any of "
        "`summary/easc`, was removed.",
        "",
        "## Figures",
        "",
        "```json",
        json.dumps(report, indent=2, ensure_ascii=False),
        "```",
        "",
        "## Config",
        "",
        "```json",
        json.dumps(asdict(cfg), indent=2),
        "```",
        "",
    ]
    datasets = () if cfg.corpus else CORPUS_DATASETS  # a given corpus file is the caller's own
    return card_text(base_card_data(datasets), "\n".join(lines))


def run(cfg: PretrainConfig) -> dict | None:
    """Pretrain and export; the report. Under ``torchrun`` or ``accelerate launch`` every
    process trains on its share of the batches and only the first writes the model, the
    report and the card; the others return None."""
    # Process-wide; restored afterwards so that a caller's own work
    # (tests, notebooks) is unaffected.
    flushing = cfg.flush_denormal and torch.set_flush_denormal(True)
    try:
        return _run(cfg)
    finally:
        if flushing:
            torch.set_flush_denormal(False)


def _run(cfg: PretrainConfig) -> dict | None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    set_seed(cfg.seed)
    work, out = Path(cfg.work_dir), Path(cfg.output_dir)
    work.mkdir(parents=True, exist_ok=True)
    # Under torchrun the first process builds each data stage; the others then find its files.
    with main_process_first():
        data = prepare_data(cfg, work)
        tokenizer, report = data.tokenizer, data.report
        model = build_model(cfg, tokenizer)
        if cfg.embedding_init == "word2vec" and not cfg.init_from:
            vectors = word2vec_embeddings(
                data.ids,
                tokenizer.sep_token_id,
                len(tokenizer),
                cfg.hidden,
                data.tokens_dir / f"word2vec-{cfg.hidden}.npy",
                cfg.seed,
            )
            warm_start_embeddings(model, vectors)
        sentences = None
        if cfg.distill_weight:
            cache = teacher_cache(data.train_file, work / "teacher", cfg.distill_sentences)
            sentences = SentenceBatches(cache, tokenizer, cfg.distill_batch_size, cfg.seed)
            model = SentenceDistillation(model, TEACHER_DIM, cfg.distill_weight)
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=cfg.mlm_probability)
        examples = training_set(cfg, data, collator)
    heldout_set = PackedBlocks(data.heldout, cfg.seq_len, tokenizer.cls_token_id)
    ckpt_dir = work / f"checkpoints-{run_name(cfg)}"
    # transformers 5 takes the TensorBoard folder from the environment only.
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(work / "tensorboard" / run_name(cfg))
    args = TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=examples.loader_batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type="linear",
        max_steps=1,
        save_steps=cfg.save_steps,
        save_total_limit=2,
        logging_steps=20,
        report_to=["tensorboard"],
        bf16=cfg.bf16,
        use_cpu=not torch.cuda.is_available(),  # bf16 on the CPU needs it
        # A frozen encoder (the head warm-up) gets no gradients, which DDP must expect.
        ddp_find_unused_parameters=bool(cfg.head_warmup),
        dataloader_num_workers=0,
        seed=cfg.seed,
        remove_unused_columns=False,
        adam_beta2=0.98,
        max_grad_norm=1.0,
    )
    tokens_per_step = examples.tokens_per_step * args.world_size  # every process's batch
    throughput = ThroughputCallback(tokens_per_step)
    if cfg.compile:
        compile_encoders(model)
    trainer = PretrainTrainer(
        model=model,
        args=args,
        train_dataset=examples.dataset,
        data_collator=examples.collator,
        callbacks=[throughput],
        sentences=sentences,
        head_warmup_steps=cfg.head_warmup,
    )
    with main_process_first():  # one probe; the other processes read its plan
        trainer.args.max_steps = plan_steps(cfg, trainer, work)
    main = is_main_process()
    start = time.time()
    loss_before = (
        heldout_mlm_loss(model, heldout_set, collator, cfg.batch_size, cfg.seed)
        if main and not cfg.init_from
        else None
    )
    trainer.train(
        resume_from_checkpoint=get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.exists() else None
    )
    wall = time.time() - start
    if not main:  # the first process reports and exports
        finish()
        return None
    report.update(
        objective=cfg.objective,
        embedding_init=cfg.embedding_init,
        init_from=cfg.init_from,
        copy_positions=cfg.copy_positions,
        head_warmup_steps=cfg.head_warmup,
        layers=model.config.num_hidden_layers,
        hidden=model.config.hidden_size,
        segments=cfg.segments,
        seq_len=cfg.seq_len,
        steps=trainer.state.global_step,
        tokens_seen=round(trainer.state.global_step * tokens_per_step),
        wall_seconds_this_run=round(wall, 1),
        tokens_per_second=throughput.tokens_per_second,
        first_step_seconds=throughput.first_step_seconds,
        compiled=cfg.compile,
        heldout_mlm_loss_at_init=loss_before,
        heldout_mlm_loss=heldout_mlm_loss(model, heldout_set, collator, cfg.batch_size, cfg.seed),
        hardware=f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
        f"threads, {'cuda' if torch.cuda.is_available() else 'cpu'}",
        torch=torch.__version__,
    )
    if cfg.init_from and (Path(cfg.init_from) / "pretrain_report.json").exists():
        # The shipped base's card then tells every stage, not only the last one.
        report["init_from_report"] = json.loads(
            (Path(cfg.init_from) / "pretrain_report.json").read_text()
        )
    if sentences is not None:
        report["distillation"] = {
            "teacher": TEACHER_NAME,
            "weight": cfg.distill_weight,
            "sentences": len(sentences),
            "batch_size": cfg.distill_batch_size,
        }
    export(trainer.model, tokenizer, out)
    (out / "pretrain_report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "README.md").write_text(model_card(cfg, report))
    finish()
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akhbar pretrain",
        description="Train the tokenizer and pretrain a small Arabic BERT from scratch (or "
        "continue a saved one), in resumable stages; every flag has a default.",
    )
    add_dataclass_flags(parser, PretrainConfig)
    return parser


def parse_args(argv: list[str]) -> PretrainConfig:
    """The settings, without running anything; a bad value exits with status 2 and a usage line."""
    parser = build_parser()
    try:
        return PretrainConfig(**given(parser.parse_args(argv), PretrainConfig))
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    report = run(parse_args(sys.argv[1:] if argv is None else argv))
    if report is not None:
        print(json.dumps(report, indent=2), file=sys.stderr)
    return 0
