"""Tests for akhbar.models.modeling: pooling against hand-computed tensors, heads, losses."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from transformers import BertConfig, BertModel

from akhbar.models.modeling import AkhbarModel, HeadSpec, TaskModel, mean_pool, sentence_pool
from akhbar.models.tasks import SENTENCE, SEQUENCE

# --- mean_pool -----------------------------------------------------------------------------


def test_mean_pool_hand_computed() -> None:
    hidden = torch.tensor(
        [
            [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
            [[7.0, 8.0], [9.0, 10.0], [100.0, 100.0]],
        ]
    )
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    expected = torch.tensor([[2.0, 3.0], [116.0 / 3, 118.0 / 3]])
    assert torch.allclose(mean_pool(hidden, mask), expected)


def test_mean_pool_ignores_padding_values() -> None:
    hidden = torch.tensor([[[2.0], [4.0], [1e6]]])
    assert torch.allclose(mean_pool(hidden, torch.tensor([[1, 1, 0]])), torch.tensor([[3.0]]))


def test_mean_pool_all_masked_is_zero_not_nan() -> None:
    hidden = torch.ones(1, 3, 2)
    out = mean_pool(hidden, torch.zeros(1, 3, dtype=torch.long))
    assert torch.equal(out, torch.zeros(1, 2))


def test_mean_pool_keeps_dtype() -> None:
    hidden = torch.ones(2, 4, 3, dtype=torch.bfloat16)
    assert mean_pool(hidden, torch.ones(2, 4, dtype=torch.long)).dtype == torch.bfloat16


# --- sentence_pool -------------------------------------------------------------------------


def test_sentence_pool_hand_computed() -> None:
    # [CLS] a a [SEP] b [SEP]  → sentence 0 = mean(2, 3), sentence 1 = 5
    hidden = torch.tensor(
        [[[10.0, -10.0], [2.0, 20.0], [3.0, 30.0], [99.0, 99.0], [5.0, 50.0], [99.0, 99.0]]]
    )
    ids = torch.tensor([[-1, 0, 0, -1, 1, -1]])
    out = sentence_pool(hidden, ids, 2)
    assert out.shape == (1, 2, 2)
    assert torch.allclose(out, torch.tensor([[[2.5, 25.0], [5.0, 50.0]]]))


def test_sentence_pool_padded_batch() -> None:
    hidden = torch.tensor(
        [
            [[1.0], [2.0], [4.0], [8.0], [16.0], [32.0]],
            [[1.0], [3.0], [5.0], [7.0], [0.0], [0.0]],  # two padding positions
        ]
    )
    ids = torch.tensor(
        [
            [-1, 0, 1, 1, 2, -1],
            [-1, 0, 0, -1, -1, -1],  # one sentence; slots 1 and 2 are empty
        ]
    )
    out = sentence_pool(hidden, ids, 3)
    expected = torch.tensor([[[2.0], [6.0], [16.0]], [[4.0], [0.0], [0.0]]])
    assert out.shape == (2, 3, 1)
    assert torch.allclose(out, expected)


def test_sentence_pool_matches_loop() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(3, 12, 5)
    ids = torch.tensor(
        [
            [-1, 0, 0, 0, -1, 1, 1, -1, 2, -1, -1, -1],
            [-1, 0, -1, 1, 1, 1, 1, 1, -1, -1, -1, -1],
            [-1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1],
        ]
    )
    out = sentence_pool(hidden, ids, 3)
    for b in range(3):
        for s in range(3):
            picked = hidden[b][ids[b] == s]
            want = picked.mean(0) if len(picked) else torch.zeros(5)
            assert torch.allclose(out[b, s], want, atol=1e-6), (b, s)


def test_sentence_pool_single_sentence() -> None:
    hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    ids = torch.tensor([[0, 0, -1]])
    assert torch.allclose(sentence_pool(hidden, ids, 1), torch.tensor([[[2.0]]]))


# --- AkhbarModel ---------------------------------------------------------------------------

VOCAB = 40


def tiny_encoder() -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    return BertModel(config)


@pytest.fixture(scope="module")
def model() -> AkhbarModel:
    heads = {
        "topic": HeadSpec(SEQUENCE, 6),
        "stance": HeadSpec(SEQUENCE, 4),
        "summary": HeadSpec(SENTENCE, 1),
    }
    return AkhbarModel(tiny_encoder(), heads).eval()


def batch(batch_size: int = 3, length: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, VOCAB, (batch_size, length), generator=g)
    mask = torch.ones(batch_size, length, dtype=torch.long)
    mask[1, 7:] = 0
    ids[1, 7:] = 0
    return ids, mask


def test_sequence_head_logits_shape(model: AkhbarModel) -> None:
    ids, mask = batch()
    out = model("topic", ids, mask)
    assert set(out) == {"logits"}
    assert out["logits"].shape == (3, 6)
    assert model("stance", ids, mask)["logits"].shape == (3, 4)


def test_sequence_head_loss(model: AkhbarModel) -> None:
    ids, mask = batch()
    labels = torch.tensor([0, 5, 2])
    out = model("topic", ids, mask, labels=labels)
    assert out["logits"].shape == (3, 6)
    assert out["loss"].ndim == 0
    assert torch.allclose(out["loss"], F.cross_entropy(out["logits"], labels))


def test_sequence_head_class_weights(model: AkhbarModel) -> None:
    ids, mask = batch()
    labels = torch.tensor([0, 1, 2])
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0])
    out = model("stance", ids, mask, labels=labels, class_weights=weights)
    assert torch.allclose(out["loss"], F.cross_entropy(out["logits"], labels, weight=weights))


def test_sequence_head_ignores_padding_tokens(model: AkhbarModel) -> None:
    ids, mask = batch()
    full = model("topic", ids, mask)["logits"]
    # The padded row scored alone and unpadded gives the same logits.
    alone = model("topic", ids[1:2, :7], mask[1:2, :7])["logits"]
    assert torch.allclose(full[1], alone[0], atol=1e-5)


def sentence_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, mask = batch(2, 10)
    sentence_ids = torch.tensor(
        [
            [-1, 0, 0, -1, 1, 1, -1, 2, 2, -1],
            [-1, 0, 0, 0, 0, -1, -1, -1, -1, -1],
        ]
    )
    mask = torch.tensor([[1] * 10, [1] * 6 + [0] * 4])
    return ids, mask, sentence_ids


def test_sentence_head_logits_shape(model: AkhbarModel) -> None:
    ids, mask, sentence_ids = sentence_batch()
    out = model("summary", ids, mask, sentence_ids=sentence_ids)
    assert set(out) == {"logits"}
    assert out["logits"].shape == (2, 3)


def test_sentence_head_ignores_minus_100(model: AkhbarModel) -> None:
    ids, mask, sentence_ids = sentence_batch()
    labels = torch.tensor([[1, 0, 1], [0, -100, -100]])
    out = model("summary", ids, mask, sentence_ids=sentence_ids, labels=labels)
    logits = out["logits"]
    real = torch.tensor([[True, True, True], [True, False, False]])
    want = F.binary_cross_entropy_with_logits(logits[real], labels[real].float())
    assert torch.allclose(out["loss"], want)
    assert torch.isfinite(out["loss"])
    # The mean runs over the 4 real slots only, not all 6.
    per_slot = F.binary_cross_entropy_with_logits(
        logits, labels.clamp(min=0).float(), reduction="none"
    )
    assert torch.allclose(out["loss"], per_slot[real].sum() / 4)


def test_sentence_head_needs_sentence_ids(model: AkhbarModel) -> None:
    ids, mask, _ = sentence_batch()
    with pytest.raises(ValueError, match="summary"):
        model("summary", ids, mask)


def test_task_model_forwards_one_task(model: AkhbarModel) -> None:
    ids, mask = batch()
    weights = torch.tensor([1.0, 5.0, 1.0, 1.0])
    view = TaskModel(model, {"stance": weights})
    labels = torch.tensor([3, 0, 1])
    out = view(task="stance", input_ids=ids, attention_mask=mask, labels=labels)
    direct = model("stance", ids, mask, labels=labels, class_weights=weights)
    assert torch.allclose(out["logits"], direct["logits"])
    assert torch.allclose(out["loss"], direct["loss"])
    assert not torch.allclose(out["loss"], model("stance", ids, mask, labels=labels)["loss"])
    # A task without weights trains unweighted.
    topic = view(task="topic", input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 2]))
    assert torch.allclose(
        topic["loss"], model("topic", ids, mask, labels=torch.tensor([0, 1, 2]))["loss"]
    )


def test_heads_built_from_specs(model: AkhbarModel) -> None:
    assert set(model.heads) == {"topic", "stance", "summary"}
    assert model.heads["topic"].out.out_features == 6
    assert model.heads["summary"].out.out_features == 1
    assert model.heads["topic"].dense.in_features == 16


# --- HeadSpec ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["token", "Sequence", "", "sentences"])
def test_head_spec_rejects_bad_kind(kind: str) -> None:
    with pytest.raises(ValueError, match="kind"):
        HeadSpec(kind, 2)


def test_head_spec_rejects_no_outputs() -> None:
    with pytest.raises(ValueError, match="at least one output"):
        HeadSpec(SEQUENCE, 0)


def test_head_spec_accepts_kinds() -> None:
    assert HeadSpec(SEQUENCE, 6).n_outputs == 6
    assert HeadSpec(SENTENCE, 1).kind == SENTENCE
