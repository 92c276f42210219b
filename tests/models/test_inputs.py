"""Tests for akhbar.models.inputs: the topic text and the stance evidence."""

from __future__ import annotations

import pytest

from akhbar.models.inputs import Evidence, select_evidence, stance_head, topic_text
from akhbar.models.sentences import Sentence, split_sentences

TITLE = "الحكومة ترفع أسعار الوقود"
BODY_LINES = [
    "قررت الحكومة رفع أسعار الوقود ابتداء من الشهر المقبل.",
    "وقال وزير الطاقة إن القرار يهدف إلى خفض عجز الموازنة.",
]
RELATED = "اقرأ أيضاً: ارتفاع أسعار القمح في الأسواق العالمية"

ARTICLE_SENTENCES = [
    "افتتح المحافظ حديقة عامة جديدة في وسط المدينة.",  # 0: nothing in common with the claim
    "وقررت الحكومة رفع أسعار الوقود بداية الشهر المقبل.",  # 1: الحكومة, أسعار, الوقود
    "وشهدت الملاعب المحلية حضورا جماهيريا كبيرا.",  # 2: nothing
    "وقال متحدث باسم الحكومة إن القرار يهدف إلى خفض العجز.",  # 3: الحكومة
    "واحتج سائقو سيارات الأجرة على ارتفاع أسعار الوقود.",  # 4: أسعار, الوقود
    "ومن المتوقع أن يعتدل الطقس نهاية الأسبوع.",  # 5: nothing
]
ARTICLE = " ".join(ARTICLE_SENTENCES)
CLAIM = "الحكومة ترفع أسعار الوقود"


# --- topic_text ----------------------------------------------------------------------------


def test_topic_text_title_first() -> None:
    out = topic_text("\n".join(BODY_LINES), title=TITLE)
    assert out.split("\n") == [TITLE, *BODY_LINES]


def test_topic_text_title_is_stripped() -> None:
    out = topic_text(BODY_LINES[0], title=f"  {TITLE}\n")
    assert out == f"{TITLE}\n{BODY_LINES[0]}"


@pytest.mark.parametrize("title", [None, "", "   \n"])
def test_topic_text_without_title(title: str | None) -> None:
    assert topic_text("\n".join(BODY_LINES), title=title) == "\n".join(BODY_LINES)


def test_topic_text_drops_related_article_line() -> None:
    text = "\n".join([BODY_LINES[0], RELATED, BODY_LINES[1]])
    out = topic_text(text, title=TITLE)
    assert out.split("\n") == [TITLE, *BODY_LINES]
    assert "القمح" not in out


def test_topic_text_drops_bare_marker_and_its_headline() -> None:
    text = "\n".join(
        [BODY_LINES[0], "اقرأ أيضاً:", "ارتفاع أسعار القمح في الأسواق العالمية", BODY_LINES[1]]
    )
    assert topic_text(text).split("\n") == BODY_LINES


def test_topic_text_drops_follow_prompts() -> None:
    text = "\n".join([BODY_LINES[0], "تابعونا على فيسبوك وتويتر", BODY_LINES[1], "شارك هذا المقال"])
    assert topic_text(text).split("\n") == BODY_LINES


def test_topic_text_keeps_one_sentence_per_line() -> None:
    out = topic_text(" ".join(BODY_LINES))
    assert out.split("\n") == BODY_LINES


def test_topic_text_empty() -> None:
    assert topic_text("") == ""
    assert topic_text("", title=TITLE).strip() == TITLE


# --- select_evidence -----------------------------------------------------------------------


@pytest.fixture
def sentences() -> list[Sentence]:
    found = split_sentences(ARTICLE)
    assert [s.text for s in found] == ARTICLE_SENTENCES
    return found


def picked(evidence: Evidence) -> list[int]:
    return [ARTICLE_SENTENCES.index(s.text) for s in evidence.sentences]


def test_evidence_picks_sentences_sharing_claim_words(sentences: list[Sentence]) -> None:
    evidence = select_evidence(CLAIM, sentences, k=3)
    assert picked(evidence) == [1, 3, 4]
    assert all(score > 0 for score in evidence.scores)


def test_evidence_in_article_order(sentences: list[Sentence]) -> None:
    evidence = select_evidence(CLAIM, sentences, k=3)
    # Sentence 4 shares more with the claim than 3, yet 3 comes first, as in the article.
    scores = dict(zip(picked(evidence), evidence.scores, strict=True))
    assert scores[1] > scores[4] > scores[3]
    assert [s.start for s in evidence.sentences] == sorted(s.start for s in evidence.sentences)


@pytest.mark.parametrize(("k", "expected"), [(1, [1]), (2, [1, 4]), (3, [1, 3, 4])])
def test_evidence_k_caps_count(sentences: list[Sentence], k: int, expected: list[int]) -> None:
    evidence = select_evidence(CLAIM, sentences, k=k)
    assert picked(evidence) == expected
    assert len(evidence.scores) == len(evidence.sentences) == k


def test_evidence_k_larger_than_article(sentences: list[Sentence]) -> None:
    evidence = select_evidence(CLAIM, sentences, k=50)
    assert picked(evidence) == list(range(6))


def test_evidence_fills_up_with_article_start(sentences: list[Sentence]) -> None:
    # Only three sentences share a word; the fourth slot goes to the earliest other one.
    evidence = select_evidence(CLAIM, sentences, k=4)
    assert picked(evidence) == [0, 1, 3, 4]
    assert evidence.scores[0] == 0.0


def test_evidence_ignores_diacritics_and_hamza(sentences: list[Sentence]) -> None:
    plain = select_evidence(CLAIM, sentences, k=3)
    marked = select_evidence("الحُكومةُ تَرفعُ اسعار الوَقود", sentences, k=3)
    assert marked == plain


def test_evidence_claim_without_shared_words(sentences: list[Sentence]) -> None:
    evidence = select_evidence("انطلاق مهرجان الموسيقى العربية", sentences, k=2)
    assert picked(evidence) == [0, 1]
    assert evidence.scores == (0.0, 0.0)


def test_evidence_text_joins_sentences(sentences: list[Sentence]) -> None:
    evidence = select_evidence(CLAIM, sentences, k=2)
    assert evidence.text == f"{ARTICLE_SENTENCES[1]}\n{ARTICLE_SENTENCES[4]}"
    for s in evidence.sentences:
        assert ARTICLE[s.start : s.end] == s.text


def test_evidence_empty_article() -> None:
    evidence = select_evidence(CLAIM, [], k=4)
    assert evidence == Evidence((), ())
    assert evidence.text == ""
    assert select_evidence(CLAIM, split_sentences(""), k=4).sentences == ()


def test_a_text_of_up_to_twenty_words_goes_to_the_headline_head_when_there_is_one() -> None:
    both = ("stance", "stance_headline")
    headline = " ".join(["كلمة"] * 20)
    assert stance_head(headline, both) == "stance_headline"
    assert stance_head(headline + " أخرى", both) == "stance"
    assert stance_head("المركزي يرفع الفائدة", ("stance",)) == "stance"


def test_stance_inputs_read_each_article_once_and_choose_as_per_claim(monkeypatch) -> None:
    from akhbar.models import inputs

    calls: list[str] = []
    split = inputs.candidate_sentences

    def counting(text: str, *args, **kwargs):
        calls.append(text)
        return split(text, *args, **kwargs)

    monkeypatch.setattr(inputs, "candidate_sentences", counting)
    claims = [CLAIM, "انطلاق مهرجان الموسيقى العربية", CLAIM]
    texts, evidence = inputs.stance_inputs(claims, [ARTICLE, ARTICLE, "نص قصير آخر."], k=2)
    assert calls == [ARTICLE, "نص قصير آخر."]  # one split per distinct article
    for claim, text, chosen in zip(claims[:2], texts, evidence, strict=False):
        assert chosen == select_evidence(claim, split(ARTICLE), k=2)
        assert text == chosen.text
