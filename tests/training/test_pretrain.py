"""``akhbar pretrain`` end to end at toy size: learning, export, model card, resume, sentence
pairs at full length, continuation from a saved base, and sentence-embedding distillation."""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import ARABIC_SENTENCES, write_jsonl
from huggingface_hub import ModelCard
from transformers import AutoModel, AutoTokenizer

from akhbar.models import sentence_encoder
from akhbar.models.modeling import mean_pool
from akhbar.models.normalize import normalize
from akhbar.training import pretrain
from akhbar.training.corpus import read_corpus
from akhbar.training.distillation import PROJECTION_FILE, load_projection
from akhbar.training.pretrain import PretrainConfig, run
from akhbar.training.sentence_pairs import (
    PairBatches,
    padded_widths,
    sentence_store,
    truncate_pair,
)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
pytestmark = pytest.mark.usefixtures("isolated")  # tests/conftest.py


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A few hundred Arabic sentences recombined from the shared words, seeded."""
    words = [w for s in ARABIC_SENTENCES for w in s.rstrip(".").split()]
    rng = random.Random(1234)
    rows = [
        {"text": " ".join(rng.choice(words) for _ in range(rng.randint(6, 14))) + "."}
        for _ in range(300)
    ]
    return write_jsonl(tmp_path_factory.mktemp("pretrain_corpus") / "corpus.jsonl", rows)


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> Path:
    """Articles of 3-12 sentences recombined from the shared words, plus one-line titles."""
    words = [w for s in ARABIC_SENTENCES for w in s.rstrip(".").split()]
    rng = random.Random(99)

    def sentence() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(5, 12))) + "."

    rows = [{"text": " ".join(sentence() for _ in range(rng.randint(3, 12)))} for _ in range(120)]
    rows += [{"text": sentence().rstrip(".")} for _ in range(10)]
    return write_jsonl(tmp_path_factory.mktemp("pretrain_documents") / "corpus.jsonl", rows)


def tiny(corpus: Path, tmp_path: Path, objective: str, **overrides) -> PretrainConfig:
    settings = dict(
        output_dir=str(tmp_path / "base"),
        work_dir=str(tmp_path / "work"),
        corpus=str(corpus),
        objective=objective,
        vocab_size=300,
        layers=1,
        hidden=32,
        heads=2,
        intermediate=64,
        max_positions=64,
        seq_len=32,
        batch_size=8,
        learning_rate=1e-3,
        warmup_steps=4,
        max_steps=40,
        save_steps=1000,
        threads=1,
        seed=7,
        # Compiling a toy model costs minutes and tests nothing of ours (see the tests below).
        compile=False,
    )
    settings.update(overrides)
    return PretrainConfig(**settings)


def toy_config():
    """A 1-layer, hidden-16 BERT config for tests that build models directly."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )


@pytest.mark.parametrize("objective", ["mlm", "electra"])
def test_pretraining_learns_and_exports_a_stock_hf_model(corpus, tmp_path, objective):
    cfg = tiny(corpus, tmp_path, objective)
    report = run(cfg)
    out = Path(cfg.output_dir)

    assert report["objective"] == objective
    assert report["steps"] == 40
    assert report["tokens_seen"] == 40 * 8 * 32
    assert 50 < report["vocab_size"] <= 300
    before, after = report["heldout_mlm_loss_at_init"], report["heldout_mlm_loss"]
    assert before is not None and after is not None
    assert after < before, f"held-out MLM loss did not fall: {before:.3f} -> {after:.3f}"
    assert json.loads((out / "pretrain_report.json").read_text()) == json.loads(json.dumps(report))

    # A stock Hugging Face directory: AutoModel/AutoTokenizer alone, safetensors only.
    names = {p.name for p in out.rglob("*")}
    assert "model.safetensors" in names
    assert not [n for n in names if n.endswith(PICKLE_SUFFIXES)]
    model = AutoModel.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.model_type == "bert"
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (32, 1)
    assert len(tokenizer) == report["vocab_size"] == model.config.vocab_size
    raw = "قَالَ وزيـــر المالية إن الميزانية ارتفعت ٢٫٥ في المئة"
    assert tokenizer.tokenize(raw) == tokenizer.tokenize(normalize(raw))
    batch = tokenizer(["قال وزير المالية", "سجل المهاجم هدفين"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[0] == 2 and hidden.shape[-1] == 32
    assert torch.isfinite(hidden).all()

    if objective == "electra":  # the default: a saved pooler, the same on every load
        with torch.no_grad():
            pooled = [AutoModel.from_pretrained(out)(**batch).pooler_output for _ in range(2)]
        assert torch.equal(pooled[0], pooled[1])

    card = ModelCard.load(out / "README.md")
    assert "CC BY-NC-SA" in card.text
    assert (card.data.license, card.data.language) == ("cc-by-nc-sa-4.0", "ar")
    assert card.data.pipeline_tag == "feature-extraction"


@pytest.fixture(scope="module")
def mlm_export(corpus, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("mlm_export")
    cfg = tiny(corpus, tmp, "mlm", max_steps=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TENSORBOARD_LOGGING_DIR", str(tmp / "tensorboard"))
        run(cfg)
    return Path(cfg.output_dir)


def test_mlm_export_keeps_the_masked_lm_head(mlm_export):
    from transformers import AutoModelForMaskedLM

    mlm, info = AutoModelForMaskedLM.from_pretrained(mlm_export, output_loading_info=True)
    assert type(mlm).__name__ == "BertForMaskedLM"
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_mlm_export_config_names_the_stock_architecture(mlm_export):
    config = json.loads((mlm_export / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"]


@pytest.mark.parametrize("objective", ["mlm", "electra"])
def test_a_stopped_run_resumes_from_its_last_checkpoint(corpus, tmp_path, monkeypatch, objective):
    steps_done = []
    original = pretrain.PretrainTrainer.training_step

    def counting(self, *args, **kwargs):
        steps_done.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pretrain.PretrainTrainer, "training_step", counting)
    ckpts = tmp_path / "work" / f"checkpoints-{objective}"

    first = run(tiny(corpus, tmp_path, objective, max_steps=20, save_steps=10))
    assert first["steps"] == 20 and len(steps_done) == 20
    assert sorted(p.name for p in ckpts.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-20"]
    weights_20 = ckpts / "checkpoint-20" / "model.safetensors"
    stamp, content = weights_20.stat().st_mtime_ns, weights_20.read_bytes()

    # "Stop" after 20 and start again asking for 30 in the same work dir.
    steps_done.clear()
    second = run(tiny(corpus, tmp_path, objective, max_steps=30, save_steps=10))
    assert second["steps"] == 30
    assert len(steps_done) == 10, "the second run should only train steps 21-30"
    # checkpoint-20 was read, not written again; 10 was rotated out when 30 was saved.
    assert sorted(p.name for p in ckpts.glob("checkpoint-*")) == ["checkpoint-20", "checkpoint-30"]
    assert weights_20.stat().st_mtime_ns == stamp and weights_20.read_bytes() == content
    state = json.loads((ckpts / "checkpoint-30" / "trainer_state.json").read_text())
    assert state["global_step"] == 30 and state["max_steps"] == 30
    # The data stages were not redone either: the tokenizer is the first run's.
    assert second["vocab_size"] == first["vocab_size"]
    assert AutoModel.from_pretrained(tmp_path / "base").config.hidden_size == 32


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"objective": "bert"}, "--objective"),
        ({"embedding_init": "glove"}, "--embedding-init"),
        ({"hidden": 30, "heads": 4}, "--hidden"),
        ({"seq_len": 128, "max_positions": 64}, "--seq-len"),
        ({"seq_len": 4}, "--seq-len"),
        ({"max_steps": 0, "time_budget_minutes": 0}, "--max-steps"),
        ({"segments": "single"}, "--segments"),
        ({"distill_weight": -1.0}, "--distill-weight"),
        ({"distill_weight": 1.0, "distill_batch_size": 0}, "--distill-batch-size"),
    ],
)
def test_config_validation_names_the_flag(overrides, flag):
    with pytest.raises(ValueError, match=flag):
        PretrainConfig(**overrides)


def test_valid_config_is_accepted():
    cfg = PretrainConfig(
        objective="mlm", hidden=32, heads=2, seq_len=32, max_positions=64, max_steps=1
    )
    assert cfg.objective == "mlm"


def test_too_small_corpus_is_refused(tmp_path):
    corpus = write_jsonl(tmp_path / "c" / "corpus.jsonl", [{"text": "قال الوزير"}] * 3)
    cfg = tiny(corpus, tmp_path, "mlm", vocab_size=200, seq_len=64, max_steps=2)
    with pytest.raises(ValueError, match="--seq-len"):
        run(cfg)


def test_sample_tokens_draws_from_the_softmax():
    from akhbar.training.pretraining_models import sample_tokens

    torch.manual_seed(0)
    logits = torch.randn(4, 12) * 2
    draws = sample_tokens(logits.repeat(5000, 1)).view(-1, 4)
    expected = torch.softmax(logits, dim=-1)
    for row in range(4):
        seen = torch.bincount(draws[:, row], minlength=12).float() / draws.shape[0]
        assert (seen - expected[row]).abs().max() < 0.03
    # Tokens of zero probability are never drawn, and the draw stays in the vocabulary.
    certain = torch.full((3, 5), -1e9)
    certain[0, 2] = certain[1, 4] = certain[2, 0] = 0
    assert sample_tokens(certain).tolist() == [2, 4, 0]
    assert sample_tokens(torch.randn(64, 7, dtype=torch.bfloat16)).max() < 7


def test_electra_from_a_saved_base_keeps_the_generator_tied(tmp_path):
    from akhbar.training.pretrain import build_model
    from akhbar.training.pretraining_models import ElectraPretrainer

    ElectraPretrainer(toy_config()).encoder.save_pretrained(tmp_path / "saved")
    cfg = PretrainConfig(
        objective="electra",
        init_from=str(tmp_path / "saved"),
        seq_len=32,
        max_steps=200,
        compile=False,
    )
    model = build_model(cfg, tokenizer=None)
    table = model.encoder.embeddings.word_embeddings.weight
    assert model.generator.cls.predictions.decoder.weight is table
    assert model.generator.bert.embeddings is model.encoder.embeddings
    assert sum(p.numel() for p in model.parameters() if p.shape == table.shape) == table.numel()


def test_compiling_keeps_the_stock_parameter_names():
    from akhbar.training.pretrain import compile_encoders
    from akhbar.training.pretraining_models import ElectraPretrainer

    model = ElectraPretrainer(toy_config())
    names = list(model.state_dict())
    compile_encoders(model)  # lazy: nothing compiles until the first forward
    assert list(model.state_dict()) == names
    assert not [n for n in model.encoder.state_dict() if "_orig_mod" in n]


def test_compile_without_a_cxx_compiler_says_how_to_go_on(monkeypatch):
    from torch._inductor import config as inductor_config

    from akhbar.training.pretrain import compile_encoders
    from akhbar.training.pretraining_models import MaskedOnlyBertForMaskedLM

    monkeypatch.setattr(pretrain.shutil, "which", lambda name: None)
    monkeypatch.setattr(inductor_config.cpp, "cxx", (None, "g++"))
    model = MaskedOnlyBertForMaskedLM(toy_config())
    with pytest.raises(RuntimeError, match="--compile false"):
        compile_encoders(model)


# --- sentence pairs, continuation, distillation ---------------------------------------------


def test_pair_examples_are_two_segments_of_one_document_up_to_seq_len(
    documents, tiny_base, tmp_path
):
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    store = sentence_store(tokenizer, read_corpus(documents), tmp_path / "sentences")
    pairs = PairBatches(store, 64, 8 * 64, tokenizer, seed=0)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id

    features = [f for i in range(len(pairs)) for f in pairs[i]]
    assert len(features) == pairs.stats()["examples"] > 0
    for f in features:
        ids, types, mask = (
            torch.tensor(f[k]) for k in ("input_ids", "token_type_ids", "attention_mask")
        )
        n = int(mask.sum())
        first_sep, second_sep = (ids[:n] == sep).nonzero().flatten().tolist()
        assert ids[0] == cls and second_sep == n - 1 and first_sep > 1
        assert (types[: first_sep + 1] == 0).all() and (types[first_sep + 1 : n] == 1).all()
        assert (types[n:] == 0).all() and (mask[n:] == 0).all()
        assert len(ids) == 64  # the one width at --seq-len 64 (see the next test)
    # Every batch holds one width, within the token budget.
    for i in range(len(pairs)):
        batch = pairs[i]
        assert len({len(f["input_ids"]) for f in batch}) == 1
        assert len(batch) * len(batch[0]["input_ids"]) <= 8 * 64

    # A then B is a run of whole sentences of one document, split at a sentence boundary.
    spans, starts = pairs.spans, np.asarray(store.sentence_starts)
    doc_starts = starts[np.asarray(store.doc_starts)]
    first_and_last = np.stack([spans[:, 0], spans[:, 3] - 1], axis=1)
    doc_of = np.searchsorted(doc_starts, first_and_last, side="right")
    assert (doc_of[:, 0] == doc_of[:, 1]).all()
    assert (spans[:, 1] == spans[:, 2]).all()
    assert np.isin(spans[:, :3], starts).all()

    # Lengths vary, and long documents reach the last positions.
    lengths = [sum(f["attention_mask"]) for f in features]
    assert max(lengths) >= 60 and min(lengths) <= 40


def test_pair_widths_are_multiples_of_64_up_to_seq_len():
    lengths = np.array([3, 64, 65, 300, 512])
    assert padded_widths(lengths, 512).tolist() == [64, 64, 128, 320, 512]
    assert padded_widths(lengths, 100).tolist() == [64, 64, 100, 100, 100]


def test_a_pair_that_overflows_is_cut_longer_side_first():
    assert truncate_pair(20, 10, 50) == (20, 10)
    assert truncate_pair(100, 10, 50) == (40, 10)
    assert truncate_pair(10, 100, 50) == (10, 40)
    assert truncate_pair(100, 100, 50) == (25, 25)


@pytest.mark.parametrize("objective", ["mlm", "electra"])
def test_continuing_with_pairs_trains_the_long_positions_and_segment_b(
    documents, tmp_path, objective
):
    # Without weight decay a row moves only if some step gave it a gradient.
    short = tiny(
        documents, tmp_path / "short", objective, seq_len=16, max_steps=2, weight_decay=0.0
    )
    run(short)
    base = Path(short.output_dir)
    cfg = tiny(
        documents,
        tmp_path / "long",
        objective,
        init_from=str(base),
        segments="pairs",
        seq_len=64,
        max_steps=6,
        warmup_steps=1,
        head_warmup_steps=2,
        weight_decay=0.0,
    )
    report = run(cfg)

    before = AutoModel.from_pretrained(base).embeddings
    after = AutoModel.from_pretrained(cfg.output_dir).embeddings

    def moved(name: str) -> torch.Tensor:
        return (getattr(after, name).weight - getattr(before, name).weight).abs().sum(-1)

    assert after.position_embeddings.weight.shape[0] == 64
    assert (moved("position_embeddings")[:48] > 0).all(), "positions past the first stage's 16"
    assert (moved("token_type_embeddings") > 0).all(), "token type 1 was not trained"
    assert report["init_from"] == str(base) and report["segments"] == "pairs"
    assert report["copy_positions"] == 0
    assert report["init_from_report"]["seq_len"] == 16
    assert report["pairs"]["longest"] >= 60 and 0 < report["pairs"]["segment_b_share"] < 1
    assert "continued from the base at" in (Path(cfg.output_dir) / "README.md").read_text()


def test_a_continued_base_stays_frozen_while_its_fresh_heads_warm_up(documents, tmp_path):
    short = tiny(documents, tmp_path / "short", "electra", seq_len=16, max_steps=2)
    run(short)
    cfg = tiny(
        documents,
        tmp_path / "long",
        "electra",
        init_from=short.output_dir,
        max_steps=5,
        head_warmup_steps=3,
        warmup_steps=1,
        save_steps=3,
    )
    report = run(cfg)
    base = AutoModel.from_pretrained(short.output_dir).state_dict()
    checkpoint = next(Path(cfg.work_dir).glob("checkpoints-*headwarmup3*/checkpoint-3"))
    at_3 = safetensors.torch.load_file(checkpoint / "model.safetensors")
    # Saved after step 3: the encoder is the base's, the heads have trained.
    for name, weight in base.items():
        if not name.startswith("pooler."):
            torch.testing.assert_close(at_3[f"encoder.{name}"], weight)
    end = AutoModel.from_pretrained(cfg.output_dir).state_dict()
    assert not torch.equal(
        end["encoder.layer.0.attention.self.query.weight"],
        base["encoder.layer.0.attention.self.query.weight"],
    )
    assert report["head_warmup_steps"] == 3


def test_the_continuation_schedule_warms_the_heads_then_the_whole_model():
    from akhbar.training.pretrain import continuation_lr

    factors = [continuation_lr(s, head_steps=4, warmup=2, total=10) for s in range(10)]
    assert factors == pytest.approx([0.5, 1.0, 1.0, 1.0, 0.0, 0.5, 1.0, 0.75, 0.5, 0.25])
    with pytest.raises(ValueError, match="--head-warmup-steps"):
        PretrainConfig(init_from="x", max_steps=100, head_warmup_steps=100)
    with pytest.raises(ValueError, match="--head-warmup-steps"):
        PretrainConfig(max_steps=1, head_warmup_steps=-1)


def test_init_from_a_base_too_short_for_seq_len_is_refused(tmp_path):
    from transformers import BertModel

    from akhbar.training.pretrain import build_model

    BertModel(toy_config()).save_pretrained(tmp_path / "short")
    cfg = PretrainConfig(init_from=str(tmp_path / "short"), seq_len=64, max_steps=200)
    with pytest.raises(ValueError, match="--seq-len 64 is longer than the 32 positions"):
        build_model(cfg, tokenizer=None)


def test_copy_positions_gives_untrained_rows_the_shape_of_trained_ones(tmp_path):
    from transformers import BertModel

    from akhbar.training.pretrain import build_model, run_name

    base = BertModel(toy_config())  # 32 positions, as if pretrained on 8-token sequences
    before = base.embeddings.position_embeddings.weight.detach().clone()
    base.save_pretrained(tmp_path / "base")
    cfg = PretrainConfig(
        init_from=str(tmp_path / "base"), copy_positions=8, seq_len=32, max_steps=200
    )
    embeddings = build_model(cfg, tokenizer=None).encoder.embeddings
    after = embeddings.position_embeddings.weight.detach()
    torch.testing.assert_close(after[:8], before[:8])  # the trained rows stay
    for row in range(8, 32):  # rows 8.. repeat rows 1..7 (row 0 belongs to [CLS] alone)
        torch.testing.assert_close(after[row], before[1 + (row - 1) % 7])
    types = embeddings.token_type_embeddings.weight.detach()
    torch.testing.assert_close(types[1], types[0])
    assert "copypos8" in run_name(cfg)
    for wrong in ({"copy_positions": 8}, {"copy_positions": 1, "init_from": "x"}):
        with pytest.raises(ValueError, match="--copy-positions needs --init-from"):
            PretrainConfig(max_steps=200, **wrong)
    with pytest.raises(ValueError, match="--copy-positions 32 leaves nothing to copy into"):
        build_model(
            PretrainConfig(
                init_from=str(tmp_path / "base"), copy_positions=32, seq_len=32, max_steps=200
            ),
            tokenizer=None,
        )


def fake_teacher(calls: list[int]):
    """A stand-in for the multilingual encoder: a unit vector seeded by each sentence."""

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(512) for t in texts]
        vectors = np.asarray(rows, dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    return encode


def test_distillation_caches_the_teacher_logs_its_loss_and_saves_a_projection(
    documents, tmp_path, monkeypatch
):
    calls: list[int] = []
    monkeypatch.setattr(sentence_encoder, "encode", fake_teacher(calls))
    settings = dict(
        segments="pairs",
        seq_len=64,
        distill_weight=1.0,
        distill_sentences=80,
        distill_batch_size=8,
        max_steps=20,
        save_steps=20,
    )
    report = run(tiny(documents, tmp_path, "electra", **settings))
    out, work = tmp_path / "base", tmp_path / "work"

    # The teacher embedded 80 sentences once; they are cached as text and float16 rows.
    assert sum(calls) == 80
    cached = (work / "teacher" / "sentences.jsonl").read_text(encoding="utf-8").splitlines()
    embeddings = np.load(work / "teacher" / "embeddings.npy")
    assert len(set(cached)) == 80 and embeddings.shape == (80, 512)
    assert embeddings.dtype == np.float16
    assert report["distillation"]["sentences"] == 80

    # Each loss part is logged on its own (TensorBoard gets the same dict).
    (ckpt,) = work.glob("checkpoints-*/checkpoint-20")
    logged = json.loads((ckpt / "trainer_state.json").read_text())["log_history"][0]
    assert {"loss", "mlm_loss", "rtd_loss", "distill_loss"} <= set(logged)

    # The projection ships beside the encoder and turns it into a sentence encoder.
    projection = load_projection(out)
    assert projection.weight.shape == (512, 32)
    assert PROJECTION_FILE in (out / "README.md").read_text()
    model, tokenizer = AutoModel.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    batch = tokenizer(["قال وزير المالية", "سجل المهاجم هدفين"], padding=True, return_tensors="pt")
    with torch.no_grad():
        pooled = mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])
        assert torch.isfinite(projection(pooled)).all()

    # A rerun reuses the cache; asking for another number of sentences recomputes it.
    calls.clear()
    run(tiny(documents, tmp_path, "electra", **{**settings, "max_steps": 22}))
    assert calls == []
    run(
        tiny(
            documents, tmp_path, "electra", **{**settings, "max_steps": 22, "distill_sentences": 40}
        )
    )
    assert sum(calls) == 40


def test_distillation_wraps_the_masked_lm_too_and_trains_the_encoder():
    from akhbar.training.pretraining_models import (
        MaskedOnlyBertForMaskedLM,
        SentenceDistillation,
    )

    model = SentenceDistillation(
        MaskedOnlyBertForMaskedLM(toy_config()), teacher_dim=512, weight=0.5
    )
    ids = torch.randint(5, 50, (2, 12))
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    teacher = torch.nn.functional.normalize(torch.randn(3, 512), dim=-1)
    out = model(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        labels=labels,
        token_type_ids=torch.zeros_like(ids),
        sentence_ids=torch.randint(5, 50, (3, 7)),
        sentence_mask=torch.ones(3, 7, dtype=torch.long),
        teacher=teacher,
    )
    assert set(out) == {"loss", "mlm_loss", "distill_loss"}
    assert torch.isclose(out["loss"], out["mlm_loss"] + 0.5 * out["distill_loss"])
    out["loss"].backward()
    assert model.projection.weight.grad.abs().sum() > 0
    assert model.pretrainer.bert.encoder.layer[0].output.dense.weight.grad.abs().sum() > 0


def test_the_sentence_batch_is_a_function_of_the_step(tiny_base):
    from akhbar.training.distillation import SentenceBatches, TeacherCache

    sentences = [s.rstrip(".") for s in ARABIC_SENTENCES]
    cache = TeacherCache(sentences, np.eye(len(sentences), 512, dtype=np.float16))
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    first, again = (SentenceBatches(cache, tokenizer, 4, seed=3) for _ in range(2))
    for step in (0, 7):
        a, b = first.batch(step), again.batch(step)
        assert all(torch.equal(a[k], b[k]) for k in a)
    batch = first.batch(1)
    assert batch["teacher"].shape == (4, 512) and batch["sentence_ids"].shape[0] == 4
    real = batch["sentence_ids"] != tokenizer.pad_token_id
    assert (batch["sentence_mask"].sum(1) == real.sum(1)).all()
    # Steps walk one permutation of the 10 sentences: steps 0 and 1 show 8 different ones.
    seen = torch.cat([first.batch(s)["teacher"].argmax(1) for s in (0, 1)])
    assert len(set(seen.tolist())) == 8
