"""Tests for akhbar.models.windowing: overlapping windows of long texts, and logit pooling."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from akhbar.models.windowing import encode_windows, pool_logits

LONG_TEXT = " ".join(
    [
        "قال وزير الاقتصاد إن معدل التضخم تراجع خلال الربع الأخير من العام.",
        "وأضاف أن الحكومة ستواصل دعم المشاريع الصغيرة والمتوسطة في المحافظات.",
        "وأشار إلى أن الصادرات الزراعية ارتفعت بنسبة كبيرة مقارنة بالعام الماضي.",
        "من جهته، رحب اتحاد الغرف التجارية بالقرارات الجديدة ودعا إلى تسهيل القروض.",
        "ويتوقع خبراء أن يستقر سعر صرف العملة المحلية في الأشهر المقبلة.",
        "وفي سياق متصل، افتتحت الوزارة مركزا لتدريب الشباب على ريادة الأعمال.",
        "وشارك في حفل الافتتاح عدد من المسؤولين وممثلي القطاع الخاص.",
        "واختتم الوزير كلمته بالتأكيد على أهمية التعاون بين جميع الأطراف.",
    ]
    * 3
)
SHORT_TEXT = "أمطار غزيرة على العاصمة اليوم."
CLAIM = "الحكومة سترفع أسعار الوقود الشهر المقبل"


@pytest.fixture(scope="module")
def tokenizer(tiny_base: Path):
    return AutoTokenizer.from_pretrained(tiny_base)


def content(tokenizer, ids: list[int]) -> list[int]:
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id}
    return [i for i in ids if i not in special]


def body_tokens(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_long_text_windows_fit_and_overlap(tokenizer) -> None:
    max_length, stride = 48, 12
    body = body_tokens(tokenizer, LONG_TEXT)
    assert len(body) > 3 * max_length  # the text really is long
    windows = encode_windows(tokenizer, [LONG_TEXT], max_length, stride, max_windows=100)
    assert len(windows) > 3
    assert windows.truncated == [False]
    assert windows.doc_index.tolist() == [0] * len(windows)
    parts = []
    for feature in windows.features:
        ids = feature["input_ids"]
        assert len(ids) <= max_length
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert len(feature["attention_mask"]) == len(ids)
        parts.append(content(tokenizer, ids))
    for a, b in pairwise(parts):
        assert a[-stride:] == b[:stride]
    # Dropping the overlaps gives back the whole text, in order.
    rebuilt = parts[0] + [t for p in parts[1:] for t in p[stride:]]
    assert rebuilt == body


def test_all_but_last_window_are_full(tokenizer) -> None:
    windows = encode_windows(tokenizer, [LONG_TEXT], 40, 8, max_windows=100)
    lengths = [len(f["input_ids"]) for f in windows.features]
    assert all(n == 40 for n in lengths[:-1])
    assert lengths[-1] <= 40


def test_max_windows_caps_and_flags_truncated(tokenizer) -> None:
    uncapped = encode_windows(tokenizer, [LONG_TEXT], 48, 12, max_windows=100)
    capped = encode_windows(tokenizer, [LONG_TEXT], 48, 12, max_windows=2)
    assert len(uncapped) > 2
    assert len(capped) == 2
    assert capped.truncated == [True]
    # The kept windows are the first ones.
    assert [f["input_ids"] for f in capped.features] == [
        f["input_ids"] for f in uncapped.features[:2]
    ]


def test_exactly_max_windows_is_not_truncated(tokenizer) -> None:
    n = len(encode_windows(tokenizer, [LONG_TEXT], 48, 12, max_windows=100))
    exact = encode_windows(tokenizer, [LONG_TEXT], 48, 12, max_windows=n)
    assert len(exact) == n
    assert exact.truncated == [False]


def test_short_text_is_one_window(tokenizer) -> None:
    windows = encode_windows(tokenizer, [SHORT_TEXT], 48, 12, max_windows=4)
    assert len(windows) == 1
    assert windows.truncated == [False]
    ids = windows.features[0]["input_ids"]
    assert content(tokenizer, ids) == body_tokens(tokenizer, SHORT_TEXT)


def test_several_texts_map_back(tokenizer) -> None:
    texts = [SHORT_TEXT, LONG_TEXT, SHORT_TEXT]
    windows = encode_windows(tokenizer, texts, 48, 12, max_windows=3)
    index = windows.doc_index.tolist()
    assert index == [0, 1, 1, 1, 2]
    assert windows.doc_index.dtype == np.int64
    assert windows.truncated == [False, True, False]


def test_pair_mode_repeats_the_claim(tokenizer) -> None:
    max_length, stride = 48, 8
    claim = body_tokens(tokenizer, CLAIM)
    body = body_tokens(tokenizer, LONG_TEXT)
    windows = encode_windows(
        tokenizer, [LONG_TEXT], max_length, stride, max_windows=100, first=[CLAIM]
    )
    assert len(windows) > 2
    assert windows.truncated == [False]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    parts = []
    for feature in windows.features:
        ids, types = feature["input_ids"], feature["token_type_ids"]
        assert len(ids) <= max_length
        head = [cls] + claim + [sep]
        assert ids[: len(head)] == head  # the full claim opens every window
        assert types[: len(head)] == [0] * len(head)
        assert types[len(head) :] == [1] * (len(ids) - len(head))
        assert ids[-1] == sep
        parts.append(ids[len(head) : -1])
    for a, b in pairwise(parts):
        assert a[-stride:] == b[:stride]
    assert parts[0] + [t for p in parts[1:] for t in p[stride:]] == body


def test_pair_mode_caps_windows(tokenizer) -> None:
    windows = encode_windows(
        tokenizer, [LONG_TEXT, SHORT_TEXT], 48, 8, max_windows=2, first=[CLAIM, CLAIM]
    )
    assert windows.doc_index.tolist() == [0, 0, 1]
    assert windows.truncated == [True, False]


# --- pool_logits ---------------------------------------------------------------------------


def test_pool_logits_exact_means() -> None:
    logits = np.array([[1.0, 2.0], [3.0, 6.0], [10.0, -10.0], [0.5, 0.25], [1.5, 0.75]])
    doc_index = np.array([0, 0, 1, 2, 2])
    pooled = pool_logits(logits, doc_index, 3)
    assert pooled.shape == (3, 2)
    np.testing.assert_array_equal(pooled, [[2.0, 4.0], [10.0, -10.0], [1.0, 0.5]])


def test_pool_logits_unordered_windows_and_empty_doc() -> None:
    logits = np.array([[4.0], [1.0], [2.0]], dtype=np.float32)
    pooled = pool_logits(logits, np.array([2, 0, 2]), 4)
    np.testing.assert_array_equal(pooled, [[1.0], [0.0], [3.0], [0.0]])
    assert pooled.dtype == np.float64


def test_pool_logits_round_trip_with_windows(tokenizer) -> None:
    windows = encode_windows(tokenizer, [SHORT_TEXT, LONG_TEXT], 48, 12, max_windows=3)
    logits = np.arange(len(windows) * 2, dtype=np.float64).reshape(-1, 2)
    pooled = pool_logits(logits, windows.doc_index, 2)
    np.testing.assert_allclose(pooled[0], logits[0])
    np.testing.assert_allclose(pooled[1], logits[1:].mean(0))
