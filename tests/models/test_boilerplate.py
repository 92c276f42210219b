"""Tests for akhbar.models.boilerplate: which sentences are dropped, and its config."""

from __future__ import annotations

import pytest

from akhbar.models.boilerplate import (
    DEFAULT_DROP_FOLLOWING,
    DEFAULT_PATTERNS,
    BoilerplateConfig,
    content_sentences,
    is_boilerplate,
    strip_boilerplate,
)
from akhbar.models.normalize import normalize

STORY_START = "أعلنت وزارة الصحة افتتاح مستشفى جديد في المدينة."
STORY_END = "وقال الوزير إن المستشفى يخدم آلاف المرضى."


@pytest.mark.parametrize(
    "line",
    [
        "أخبار ذات صلة",
        "أخبار ذات صلة: افتتاح جسر جديد فوق النهر",
        "اقرأ أيضاً: ارتفاع أسعار القمح",
        "اقرأ أيضا",
        "إقرأ أيضاً:",
        "للمزيد: زوروا صفحتنا",
        "للمزيد",
        "حمّل تطبيق الأخبار الآن مجانا",
        "حمل التطبيق",
        "تابعونا على فيسبوك وتويتر",
        "تابعنا على تويتر",
        "شارك",
        "شارك:",
        "شارك هذا المقال",
        "مشاركة عبر:",
        "مشاركة عبر واتساب",
        "• اقرأ أيضاً >>",
    ],
)
def test_default_markers_are_boilerplate_and_removed(line: str) -> None:
    assert is_boilerplate(line)
    text = f"{STORY_START}\n{line}\n\n{STORY_END}"
    # A bare marker takes the next line with it, so only the first story line is
    # certain to survive; the line itself must always go.
    kept = [s.text for s in content_sentences(text)]
    assert line not in kept
    assert kept[0] == STORY_START


@pytest.mark.parametrize(
    "sentence",
    [
        "شارك الوزير في المؤتمر.",
        "شارك في الاجتماع أكثر من مئة خبير.",
        "المصدر: وكالة الأنباء الرسمية",
        "حمل المتظاهرون لافتات كبيرة.",
        "تابع الجمهور المباراة باهتمام.",
        "قرأ الرئيس البيان الختامي.",
    ],
)
def test_content_that_merely_contains_a_marker_word_is_kept(sentence: str) -> None:
    assert not is_boilerplate(sentence)
    assert strip_boilerplate(sentence) == sentence


def test_headline_after_bare_related_marker_is_removed() -> None:
    text = f"{STORY_START}\nأخبار ذات صلة\nالوزير يفتتح مدرسة جديدة\n{STORY_END}"
    assert [s.text for s in content_sentences(text)] == [STORY_START, STORY_END]


def test_headline_after_bare_read_also_marker_is_removed() -> None:
    text = f"{STORY_START}\nاقرأ أيضاً:\nارتفاع أسعار الذهب عالميا\n{STORY_END}"
    assert strip_boilerplate(text) == f"{STORY_START}\n{STORY_END}"


def test_marker_with_headline_on_same_line_drops_only_that_line() -> None:
    text = f"{STORY_START}\nاقرأ أيضاً: ارتفاع أسعار الذهب عالميا\n{STORY_END}"
    assert strip_boilerplate(text) == f"{STORY_START}\n{STORY_END}"


def test_consecutive_markers_still_drop_the_headline() -> None:
    text = f"{STORY_START}\nأخبار ذات صلة\nاقرأ أيضا\nالوزير يفتتح مدرسة جديدة\n{STORY_END}"
    assert strip_boilerplate(text) == f"{STORY_START}\n{STORY_END}"


def test_kept_offsets_index_the_original_text() -> None:
    text = f"  شارك\r\n{STORY_START} تابعونا على تويتر.\n  {STORY_END}\nالمصدر: الوكالة"
    kept = content_sentences(text)
    assert [s.text for s in kept] == [STORY_START, STORY_END, "المصدر: الوكالة"]
    for sentence in kept:
        assert text[sentence.start : sentence.end] == sentence.text


def test_default_patterns_are_written_in_normalised_form() -> None:
    for pattern in DEFAULT_PATTERNS + DEFAULT_DROP_FOLLOWING:
        assert normalize(pattern) == pattern


def test_extra_patterns_in_code_and_in_config() -> None:
    line = "اشترك في نشرتنا البريدية"
    assert not is_boilerplate(line)
    in_code = BoilerplateConfig(patterns=DEFAULT_PATTERNS + (r"^اشترك في نشرتنا",))
    from_config = BoilerplateConfig.from_dict({"extra_patterns": [r"^اشترك في نشرتنا"]})
    assert in_code == from_config
    assert is_boilerplate(line, from_config)
    assert strip_boilerplate(f"{STORY_START}\n{line}", from_config) == STORY_START


def test_extra_drop_following_marker() -> None:
    config = BoilerplateConfig.from_dict({"extra_drop_following": ["مواضيع مقترحة"]})
    text = f"{STORY_START}\nمواضيع مقترحة\nعنوان خبر آخر\n{STORY_END}"
    assert strip_boilerplate(text, config) == f"{STORY_START}\n{STORY_END}"


def test_replacing_patterns_turns_defaults_off() -> None:
    config = BoilerplateConfig.from_dict({"patterns": [], "drop_following": []})
    assert not is_boilerplate("اقرأ أيضاً", config)


def test_dict_round_trip() -> None:
    config = BoilerplateConfig.from_dict({"extra_patterns": ["^اعلان$"]})
    assert BoilerplateConfig.from_dict(config.to_dict()) == config
    assert BoilerplateConfig().to_dict() == {
        "patterns": list(DEFAULT_PATTERNS),
        "drop_following": list(DEFAULT_DROP_FOLLOWING),
    }


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown boilerplate setting.*extra_patern"):
        BoilerplateConfig.from_dict({"extra_patern": ["x"]})


def test_from_dict_rejects_invalid_regex_naming_key_and_pattern() -> None:
    with pytest.raises(ValueError, match=r"'extra_patterns': invalid regex '\^\(شارك'"):
        BoilerplateConfig.from_dict({"extra_patterns": ["^(شارك"]})


@pytest.mark.parametrize("bad", ["^شارك", [1], None])
def test_from_dict_rejects_values_that_are_not_lists_of_strings(bad: object) -> None:
    with pytest.raises(ValueError, match="'patterns'"):
        BoilerplateConfig.from_dict({"patterns": bad})


def test_constructor_validates_regexes_too() -> None:
    with pytest.raises(ValueError, match="'drop_following': invalid regex"):
        BoilerplateConfig(drop_following=("[",))
