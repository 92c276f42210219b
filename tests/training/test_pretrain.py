"""``akhbar pretrain`` end to end at toy size: learning, export, model card, resume."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from conftest import ARABIC_SENTENCES, write_jsonl
from transformers import AutoModel, AutoTokenizer

from akhbar.models.normalize import normalize
from akhbar.training import pretrain
from akhbar.training.pretrain import PretrainConfig, run

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

    card = (out / "README.md").read_text()
    assert "CC BY-NC-SA" in card
    assert "license: cc-by-nc-sa-4.0" in card


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
    from transformers import BertConfig

    from akhbar.training.pretrain import build_model
    from akhbar.training.pretraining_models import ElectraPretrainer

    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    ElectraPretrainer(config).encoder.save_pretrained(tmp_path / "saved")
    cfg = PretrainConfig(
        objective="electra", init_from=str(tmp_path / "saved"), max_steps=1, compile=False
    )
    model = build_model(cfg, tokenizer=None)
    table = model.encoder.embeddings.word_embeddings.weight
    assert model.generator.cls.predictions.decoder.weight is table
    assert model.generator.bert.embeddings is model.encoder.embeddings
    assert sum(p.numel() for p in model.parameters() if p.shape == table.shape) == table.numel()


def test_compiling_keeps_the_stock_parameter_names():
    from transformers import BertConfig

    from akhbar.training.pretrain import compile_encoders
    from akhbar.training.pretraining_models import ElectraPretrainer

    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    model = ElectraPretrainer(config)
    names = list(model.state_dict())
    compile_encoders(model)  # lazy: nothing compiles until the first forward
    assert list(model.state_dict()) == names
    assert not [n for n in model.encoder.state_dict() if "_orig_mod" in n]


def test_compile_without_a_cxx_compiler_says_how_to_go_on(monkeypatch):
    from torch._inductor import config as inductor_config
    from transformers import BertConfig

    from akhbar.training.pretrain import compile_encoders
    from akhbar.training.pretraining_models import MaskedOnlyBertForMaskedLM

    monkeypatch.setattr(pretrain.shutil, "which", lambda name: None)
    monkeypatch.setattr(inductor_config.cpp, "cxx", (None, "g++"))
    model = MaskedOnlyBertForMaskedLM(
        BertConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    )
    with pytest.raises(RuntimeError, match="--compile false"):
        compile_encoders(model)
