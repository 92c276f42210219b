"""Tests for akhbar.training.rouge: the Arabic ROUGE tokenizer, hand-computed ROUGE figures,
averaging over references, and the greedy oracle that labels summary sentences."""

from __future__ import annotations

import pytest

from akhbar.training.rouge import (
    ROUGE_TYPES,
    ArabicTokenizer,
    cut_to_budget,
    greedy_oracle,
    greedy_oracle_order,
    rouge_scores,
    scorer,
    word_budget,
)


@pytest.fixture(scope="module")
def tokenize():
    return ArabicTokenizer().tokenize


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


# --- tokenizer -----------------------------------------------------------------------------


def test_tokenizer_keeps_arabic_letters(tokenize) -> None:
    assert tokenize("ذهب الولد إلى السوق") == ["ذهب", "الولد", "الي", "السوق"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("الْكِتَابُ مُفِيدٌ", ["الكتاب", "مفيد"]),  # diacritics
        ("أحمد وإبراهيم وآمال", ["احمد", "وابراهيم", "وامال"]),  # alef forms
        ("مدرسة جميلة", ["مدرسه", "جميله"]),  # ta marbuta
        ("مستشفى كبير", ["مستشفي", "كبير"]),  # alef maqsura
        ("جمـــيل", ["جميل"]),  # tatweel
        (
            "قال: «نعم»، ثم سأل؟ لا! (حسنا). نهاية…",
            ["قال", "نعم", "ثم", "سال", "لا", "حسنا", "نهايه"],
        ),
        ("عام ٢٠٢٤ و-السوق_الحرة", ["عام", "2024", "و", "السوق", "الحره"]),  # digits; _ and - split
        ("", []),
    ],
)
def test_tokenizer_normalises(tokenize, text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_normalisation_variants_score_as_equal() -> None:
    a = "أعلنت الوزارةُ نتيجة المسابقة."
    b = "اعلنت الوزاره نتيجه المسابقه"
    assert rouge_scores(a, [b]) == pytest.approx({t: 1.0 for t in ROUGE_TYPES})


# --- ROUGE figures -------------------------------------------------------------------------


def test_partial_overlap_exact_values() -> None:
    # Reference 4 words, prediction 3; shared unigrams ذهب, الولد; shared bigram «ذهب الولد»;
    # ة/ه and the diacritic must not matter.
    reference = "ذهب الولدُ إلى المدرسة"
    prediction = "ذهب الولد مسرعا"
    raw = scorer().score(reference, prediction)
    p1, r1 = 2 / 3, 2 / 4
    assert raw["rouge1"].precision == pytest.approx(p1)
    assert raw["rouge1"].recall == pytest.approx(r1)
    assert raw["rouge1"].fmeasure == pytest.approx(4 / 7)
    # Bigrams: prediction has 2, reference 3, one shared.
    assert raw["rouge2"].precision == pytest.approx(1 / 2)
    assert raw["rouge2"].recall == pytest.approx(1 / 3)
    assert raw["rouge2"].fmeasure == pytest.approx(2 / 5)
    # Longest common subsequence «ذهب الولد»: 2 words.
    assert raw["rougeL"].fmeasure == pytest.approx(4 / 7)
    assert rouge_scores(prediction, [reference]) == pytest.approx(
        {"rouge1": 4 / 7, "rouge2": 2 / 5, "rougeL": 4 / 7}
    )


def test_word_order_changes_rouge_l_only() -> None:
    # Reference A B C D, prediction C A B: 3 shared unigrams, 1 shared bigram (A B), LCS A B.
    reference = "سافر الرئيس الى باريس"
    prediction = "الى سافر الرئيس"
    scores = rouge_scores(prediction, [reference])
    assert scores["rouge1"] == pytest.approx(f1(3 / 3, 3 / 4))  # 6/7
    assert scores["rouge2"] == pytest.approx(f1(1 / 2, 1 / 3))  # 2/5
    assert scores["rougeL"] == pytest.approx(f1(2 / 3, 2 / 4))  # 4/7


def test_identical_and_disjoint() -> None:
    text = "ارتفعت أسعار النفط في الأسواق العالمية اليوم"
    assert rouge_scores(text, [text]) == pytest.approx({t: 1.0 for t in ROUGE_TYPES})
    assert rouge_scores(text, ["فاز الفريق بالكأس بعد مباراة صعبة"]) == {
        t: 0.0 for t in ROUGE_TYPES
    }
    assert rouge_scores("", [text]) == {t: 0.0 for t in ROUGE_TYPES}


def test_scores_average_over_references() -> None:
    prediction = "ذهب الولد مسرعا"
    refs = [prediction, "ذهب الولد الى المدرسة", "وصل القطار متاخرا"]
    scores = rouge_scores(prediction, refs)
    assert scores["rouge1"] == pytest.approx((1 + 4 / 7 + 0) / 3)
    assert scores["rouge2"] == pytest.approx((1 + 2 / 5 + 0) / 3)
    assert scores["rougeL"] == pytest.approx((1 + 4 / 7 + 0) / 3)
    assert all(isinstance(v, float) for v in scores.values())


# --- greedy oracle -------------------------------------------------------------------------

REFERENCE = "اجتمع الوزراء في العاصمة لبحث أزمة المياه"


def test_oracle_picks_the_reference_sentence_and_stops() -> None:
    sentences = [
        "فاز الفريق المحلي بالمباراة",
        "اجتمع الوزراء في العاصمة لبحث أزمة المياه",
        "وقال الوزراء إن أزمة المياه تتفاقم في الصيف",
    ]
    # After the exact sentence (score 1.0) nothing can add, so the oracle stops at one.
    assert greedy_oracle(sentences, [REFERENCE], k=3) == [1]


def test_oracle_returns_article_order_and_respects_k() -> None:
    # Reference A B C D E F; sentence 1 (A B C D) gains most, then sentence 0 (E F) completes it.
    reference = "وصل الوفد الى المطار صباح الاثنين"
    sentences = ["صباح الاثنين", "وصل الوفد الى المطار", "انقطعت الكهرباء عن المدينة"]
    assert greedy_oracle(sentences, [reference], k=3) == [0, 1]  # the disjoint one adds nothing
    assert greedy_oracle(sentences, [reference], k=1) == [1]
    assert greedy_oracle(sentences, [reference], k=0) == []


def test_oracle_edge_cases() -> None:
    # Two copies of the reference: the earlier wins; the copy would only lower precision.
    assert greedy_oracle([REFERENCE, REFERENCE], [REFERENCE], k=2) == [0]
    assert greedy_oracle([], [REFERENCE], k=3) == []
    assert (
        greedy_oracle(["فاز الفريق المحلي بالمباراة"], [REFERENCE], k=3) == []
    )  # nothing overlaps


def test_oracle_uses_every_reference() -> None:
    sentences = ["وصل الوفد الى المطار", "انقطعت الكهرباء عن المدينة"]
    refs = ["وصل الوفد الى المطار", "انقطعت الكهرباء عن المدينة"]
    # Each sentence matches one reference: together they beat either alone.
    assert greedy_oracle(sentences, refs, k=2) == [0, 1]


# --- equal word budget ---------------------------------------------------------------------

THREE = ["الشمس تشرق صباحا", "والقمر يظهر ليلا في السماء", "النجوم كثيرة"]  # 3, 5 and 2 words


def test_word_budget_is_the_references_mean_word_count() -> None:
    assert word_budget(["واحد اثنان ثلاثة", "واحد اثنان ثلاثة أربعة خمسة"]) == 4
    assert word_budget(["كلمة واحدة"]) == 2
    assert word_budget([""]) == 1  # never an empty summary


def test_budget_cuts_the_last_sentence_mid_way_and_keeps_article_order() -> None:
    # Rank order 1, 0, 2 with 6 words: sentence 1 whole (5 words), then 1 word of sentence 0.
    assert cut_to_budget(THREE, [1, 0, 2], 6) == "الشمس والقمر يظهر ليلا في السماء"
    # A budget inside the first sentence taken cuts that sentence alone.
    assert cut_to_budget(THREE, [1, 0, 2], 2) == "والقمر يظهر"
    # A budget past the whole text takes every sentence, whole.
    assert cut_to_budget(THREE, [2, 1, 0], 50) == " ".join(THREE)


def test_lead_words_is_the_lead_cut_to_the_budget() -> None:
    assert cut_to_budget(THREE, range(3), 4) == "الشمس تشرق صباحا والقمر"
    assert cut_to_budget(THREE, range(3), 3) == "الشمس تشرق صباحا"
    assert cut_to_budget(THREE, range(3), 9) == "الشمس تشرق صباحا والقمر يظهر ليلا في السماء النجوم"


def test_oracle_order_is_the_greedy_pick_order() -> None:
    reference = ["والقمر يظهر ليلا في السماء الشمس تشرق"]
    order = greedy_oracle_order(THREE, reference, 3)
    assert order[0] == 1  # the sentence that covers most of the reference comes first
    assert greedy_oracle(THREE, reference, 3) == sorted(order)
