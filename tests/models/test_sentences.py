"""Tests for akhbar.models.sentences: where sentences split and that offsets stay exact."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akhbar.models.sentences import Sentence, split_sentences


def texts(text: str, max_chars: int = 400) -> list[str]:
    """Split, check every offset round-trips, and return the sentence texts."""
    sentences = split_sentences(text, max_chars)
    for sentence in sentences:
        assert text[sentence.start : sentence.end] == sentence.text
    return [sentence.text for sentence in sentences]


@pytest.mark.parametrize("stop", [".", "!", "?", "؟", "؛", "…", "...", "?!", "؟!", "!!!"])
def test_every_terminator_splits(stop: str) -> None:
    text = f"وصل الوفد إلى العاصمة{stop} وبدأت المحادثات صباحا"
    assert texts(text) == [f"وصل الوفد إلى العاصمة{stop}", "وبدأت المحادثات صباحا"]


@pytest.mark.parametrize("closer", ['"', "»", ")", "”"])
def test_closing_quote_or_bracket_stays_with_sentence(closer: str) -> None:
    text = f"قال المتحدث: «سنواصل العمل!{closer} ثم غادر القاعة."
    assert texts(text) == [f"قال المتحدث: «سنواصل العمل!{closer}", "ثم غادر القاعة."]


def test_line_breaks_split_and_crlf_offsets() -> None:
    text = "  \r\n  ارتفعت الأسعار في السوق\r\n\r\nوانخفض الطلب على الذهب  \n"
    assert texts(text) == ["ارتفعت الأسعار في السوق", "وانخفض الطلب على الذهب"]
    first = split_sentences(text)[0]
    assert (first.start, first.end) == (6, 6 + len("ارتفعت الأسعار في السوق"))


def test_offsets_with_leading_spaces_diacritics_and_latin() -> None:
    text = "   أَعْلَنَتِ الوِزارةُ عن خطة جديدة. The plan costs $3.5 billion!  وقالت NASA إنها مستعدة؟"
    assert texts(text) == [
        "أَعْلَنَتِ الوِزارةُ عن خطة جديدة.",
        "The plan costs $3.5 billion!",
        "وقالت NASA إنها مستعدة؟",
    ]
    assert split_sentences(text)[0].start == 3


def test_sentence_is_a_frozen_value() -> None:
    sentence = split_sentences("انتهى الاجتماع.")[0]
    assert sentence == Sentence("انتهى الاجتماع.", 0, 15)
    with pytest.raises(AttributeError):
        sentence.start = 1  # type: ignore[misc]


@pytest.mark.parametrize("number", ["3.5", "٣.٥", "٣٫٥", "2.000", "10.30"])
def test_decimals_do_not_split(number: str) -> None:
    text = f"بلغت النسبة {number} في المئة هذا العام. وتوقع الخبراء المزيد."
    assert texts(text) == [f"بلغت النسبة {number} في المئة هذا العام.", "وتوقع الخبراء المزيد."]


@pytest.mark.parametrize(
    "abbreviation", ["د.", "أ.", "م.", "أ.د.", "أ. د.", "ص.", "ت.", "Dr.", "U.S.", "د.محمد"]
)
def test_abbreviations_do_not_split(abbreviation: str) -> None:
    text = f"استقبل الرئيس {abbreviation} سامي حسن أمس. ثم عقدا مؤتمرا صحفيا."
    assert texts(text) == [f"استقبل الرئيس {abbreviation} سامي حسن أمس.", "ثم عقدا مؤتمرا صحفيا."]


def test_dotted_abbreviation_chains_do_not_split() -> None:
    text = "أرسلوا الطلبات إلى ص.ب. 1234 في موعد أقصاه الأحد. وتعلن النتائج لاحقا."
    assert texts(text) == [
        "أرسلوا الطلبات إلى ص.ب. 1234 في موعد أقصاه الأحد.",
        "وتعلن النتائج لاحقا.",
    ]


def test_era_marker_after_a_year_ends_the_sentence() -> None:
    text = "بنيت القلعة عام 1190 م. وفي القرن الثالث ق.م. كانت قرية. ثم توسعت."
    assert texts(text) == [
        "بنيت القلعة عام 1190 م.",
        "وفي القرن الثالث ق.م. كانت قرية.",
        "ثم توسعت.",
    ]


def test_missing_space_between_arabic_sentences_splits() -> None:
    assert texts("انتهى الاجتماع.وأكد الوزير التزامه") == ["انتهى الاجتماع.", "وأكد الوزير التزامه"]


def test_numbered_list_markers_stay_with_their_item() -> None:
    text = (
        "أبرز القرارات:\n1. رفع الأجور.\n2) خفض الضرائب\n"
        "١. دعم المزارعين\nأ. تحسين الطرق\n  3. بناء مدارس"
    )
    assert texts(text) == [
        "أبرز القرارات:",
        "1. رفع الأجور.",
        "2) خفض الضرائب",
        "١. دعم المزارعين",
        "أ. تحسين الطرق",
        "3. بناء مدارس",
    ]


def test_number_at_end_of_sentence_mid_line_still_splits() -> None:
    assert texts("ارتفع عدد المصابين إلى 12. وتواصل الفرق عملها.") == [
        "ارتفع عدد المصابين إلى 12.",
        "وتواصل الفرق عملها.",
    ]


def test_urls_and_emails_are_not_split() -> None:
    text = (
        "التفاصيل على https://www.example.com/news/item.html?id=3&x=y! وعلى www.example.org. "
        "وللتواصل: info.desk@example.com. شكرا لكم"
    )
    assert texts(text) == [
        "التفاصيل على https://www.example.com/news/item.html?id=3&x=y!",
        "وعلى www.example.org.",
        "وللتواصل: info.desk@example.com.",
        "شكرا لكم",
    ]


def test_punctuation_only_and_empty_pieces_are_dropped() -> None:
    assert texts("") == []
    assert texts(" \n\t\r\n ") == []
    assert texts("...\n***\n!!!") == []
    assert texts("انتهى البث. ... ؟") == ["انتهى البث."]


def test_text_without_punctuation_is_cut_at_white_space() -> None:
    text = " ".join(["أعلنت", "الحكومة", "اليوم", "خطة", "لدعم", "الشباب"] * 40)
    parts = texts(text, max_chars=100)
    assert len(parts) > 5
    assert all(len(part) <= 100 for part in parts)
    assert " ".join(parts) == text


def test_long_piece_prefers_a_comma_in_the_last_third() -> None:
    clause = "تحدث الوزير طويلا عن خطط الحكومة للعام المقبل، "
    parts = texts(clause * 10, max_chars=120)
    assert all(len(part) <= 120 for part in parts)
    assert all(part.endswith("،") for part in parts[:-1])


def test_long_piece_prefers_a_conjunction_in_the_last_third() -> None:
    words = ["سافر", "الوفد", "الرسمي", "إلى", "المدينة", "الساحلية", "وعقد", "لقاءات"]
    text = " ".join(words * 20)
    parts = texts(text, max_chars=180)
    assert all(len(part) <= 180 for part in parts)
    assert all(part.startswith("و") for part in parts[1:])


def test_single_huge_token_is_kept_whole() -> None:
    token = "ا" * 50
    assert texts(f"خبر قصير {token} نهاية", max_chars=20) == ["خبر قصير", token, "نهاية"]


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        split_sentences("نص", max_chars=0)


def test_long_article_is_fast() -> None:
    unit = "قال د. سامي إن النمو بلغ 3.5 بالمئة، وزار www.example.com أمس؟ نعم!\n"
    text = (unit * (100_000 // len(unit) + 1))[:100_000]
    started = time.perf_counter()
    sentences = split_sentences(text)
    # Generous bound (typically ~15 ms): catches quadratic behaviour, not CPU noise.
    assert time.perf_counter() - started < 1.0
    assert len(sentences) > 1000


_ALPHABET = 'قال الوزير إن ذلك .!?؟؛…،,\n\r\t 0123456789٣٫«»"()د.أhttps://www.a.b@c.de'


@settings(max_examples=150, deadline=None)
@given(
    text=st.one_of(st.text(), st.text(alphabet=_ALPHABET, max_size=300)),
    max_chars=st.integers(min_value=1, max_value=60),
)
def test_sentences_are_ordered_disjoint_exact_slices(text: str, max_chars: int) -> None:
    previous_end = 0
    for sentence in split_sentences(text, max_chars):
        assert sentence.text
        assert sentence.text == text[sentence.start : sentence.end]
        assert sentence.text == sentence.text.strip()
        assert previous_end <= sentence.start < sentence.end
        assert len(sentence.text) <= max_chars or not any(ch.isspace() for ch in sentence.text)
        previous_end = sentence.end
