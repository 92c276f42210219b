"""Tests for akhbar.models.normalize: each step alone, the flags, the config, idempotence."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akhbar.models.normalize import (
    EMAIL_TOKEN,
    URL_TOKEN,
    USER_TOKEN,
    NormalizerConfig,
    arabic_ratio,
    build_normalizer,
    normalize,
)

ALL_OFF = NormalizerConfig(**{f.name: False for f in dataclasses.fields(NormalizerConfig)})


def only(step: str) -> NormalizerConfig:
    """A config with every step off except ``step``."""
    return dataclasses.replace(ALL_OFF, **{step: True})


# --- each step on its own ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("مُحَمَّدٌ", "محمد"),  # damma, fatha, shadda, tanween damm
        ("كِتَابًا", "كتابا"),  # kasra, tanween fath
        ("قَلْبٍ", "قلب"),  # sukun, tanween kasr
        ("هٰذا", "هذا"),  # superscript alef
        ("الرَّحْمٰنِ", "الرحمن"),
    ],
)
def test_strip_diacritics(raw: str, expected: str) -> None:
    assert normalize(raw, only("strip_diacritics")) == expected
    assert normalize(raw) == expected


def test_strip_tatweel() -> None:
    assert normalize("جميــــل جداً", only("strip_tatweel")) == "جميل جداً"


@pytest.mark.parametrize("alef", ["أ", "إ", "آ", "ٱ"])
def test_unify_alef(alef: str) -> None:
    assert normalize(f"{alef}مل", only("unify_alef")) == "امل"


def test_unify_alef_sentence() -> None:
    assert normalize("أحمد إبراهيم آمنة ٱلله", only("unify_alef")) == "احمد ابراهيم امنة الله"


def test_alef_maqsura_to_ya() -> None:
    assert normalize("ذهب إلى المستشفى", only("alef_maqsura_to_ya")) == "ذهب إلي المستشفي"


def test_ta_marbuta_only_when_enabled() -> None:
    assert normalize("المدرسة الجديدة") == "المدرسة الجديدة"  # off by default
    assert NormalizerConfig().ta_marbuta_to_ha is False
    assert normalize("المدرسة الجديدة", only("ta_marbuta_to_ha")) == "المدرسه الجديده"
    assert normalize("المدرسة", NormalizerConfig(ta_marbuta_to_ha=True)) == "المدرسه"


@pytest.mark.parametrize("digits", ["٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹"])
def test_ascii_digits(digits: str) -> None:
    assert normalize(f"عام {digits}", only("ascii_digits")) == "عام 0123456789"


def test_ascii_digits_keeps_decimal_separator() -> None:
    assert normalize("بنسبة ٢٫٥ في المئة") == "بنسبة 2٫5 في المئة"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("زوروا https://example.com/news?id=7 الآن", f"زوروا {URL_TOKEN} الآن"),
        ("زوروا http://akhbar.net اليوم", f"زوروا {URL_TOKEN} اليوم"),
        ("الموقع www.akhbar.net للمزيد", f"الموقع {URL_TOKEN} للمزيد"),
        ("راسلونا على info@akhbar.org اليوم", f"راسلونا على {EMAIL_TOKEN} اليوم"),
        ("كتب @ahmed_99 تغريدة", f"كتب {USER_TOKEN} تغريدة"),
        ("الرابط:https://a.bc/x", f"الرابط: {URL_TOKEN}"),
    ],
)
def test_placeholders(raw: str, expected: str) -> None:
    # Placeholders are padded with spaces, so whitespace collapse belongs with them.
    config = dataclasses.replace(only("placeholders"), collapse_whitespace=True)
    assert normalize(raw, config) == expected


def test_email_is_not_turned_into_a_mention() -> None:
    out = normalize("راسلونا عبر news.desk@akhbar.org")
    assert out == f"راسلونا عبر {EMAIL_TOKEN}"
    assert USER_TOKEN not in out
    assert "@" not in out


def test_placeholders_padded_with_spaces_without_collapse() -> None:
    assert normalize("أ @user ب", only("placeholders")) == f"أ  {USER_TOKEN}  ب"


@pytest.mark.parametrize(
    "raw",
    [
        "سطر أول\nسطر ثان",
        "سطر أول\r\n\r\nسطر ثان",
        "سطر أول\t\tسطر ثان",
        "سطر أول\u00a0سطر ثان",  # no-break space
        "  سطر أول   سطر ثان \n ",
        "سطر أول\u2003\u2028سطر ثان",  # em space, line separator
    ],
)
def test_collapse_whitespace(raw: str) -> None:
    assert normalize(raw, only("collapse_whitespace")) == "سطر أول سطر ثان"


@pytest.mark.parametrize(
    "invisible",
    [
        "\u200b",  # zero-width space
        "\u200c",  # zero-width non-joiner
        "\u200d",  # zero-width joiner
        "\u200e",  # left-to-right mark
        "\u200f",  # right-to-left mark
        "\u061c",  # Arabic letter mark
        "\u202a",
        "\u202b",
        "\u202c",
        "\u202d",
        "\u202e",  # bidi embeddings/overrides
        "\u2066",
        "\u2067",
        "\u2068",
        "\u2069",  # bidi isolates
        "\u2060",  # word joiner
        "\ufeff",  # BOM
        "\u00ad",  # soft hyphen
        "\u0000",
        "\u0007",
        "\u001b",
        "\u007f",
        "\u0085",  # C0/C1 controls
    ],
)
def test_drop_invisible(invisible: str) -> None:
    raw = f"{invisible}وزا{invisible}رة ال{invisible}صحة{invisible}"
    assert normalize(raw, only("drop_invisible")) == "وزارة الصحة"


def test_drop_invisible_keeps_tab_and_newline() -> None:
    assert normalize("أ\tب\nج\rد", only("drop_invisible")) == "أ\tب\nج\rد"


def test_default_normalize_combines_all_steps() -> None:
    raw = "\u200fأَعْلَنَتْ الوزارةُ ــ يوم ٣ مايو ــ عبر https://gov.example/x إلى @press_office\n\n  "
    assert normalize(raw) == f"اعلنت الوزارة يوم 3 مايو عبر {URL_TOKEN} الي {USER_TOKEN}"


# --- each flag off leaves its characters alone --------------------------------------------


@pytest.mark.parametrize(
    ("flag", "raw", "kept"),
    [
        ("drop_invisible", "كل\u200bمة\u200f", "\u200b\u200f"),
        ("placeholders", "https://a.bc info@a.bc @user", "@:/"),
        ("strip_diacritics", "مُحَمَّدٌ هٰذا", "\u064f\u064e\u0651\u064c\u0670"),
        ("strip_tatweel", "جميــل", "\u0640"),
        ("unify_alef", "أ إ آ ٱ", "أإآٱ"),
        ("alef_maqsura_to_ya", "حتى مستشفى", "ى"),
        ("ta_marbuta_to_ha", "مدرسة", "ة"),
        ("ascii_digits", "٣٤ ۵۶", "٣٤۵۶"),
        ("collapse_whitespace", " ب\n\nت\u00a0 ج ", "\n\u00a0"),
    ],
)
def test_flag_off_leaves_characters_alone(flag: str, raw: str, kept: str) -> None:
    assert normalize(raw, ALL_OFF) == raw
    # Turning only this flag off (every other step on) keeps its characters too.
    config = dataclasses.replace(NormalizerConfig(ta_marbuta_to_ha=True), **{flag: False})
    out = normalize(raw, config)
    for ch in kept:
        assert ch in out, (flag, ch, out)
    if flag == "collapse_whitespace":
        assert out == raw


def test_flag_on_changes_its_characters() -> None:
    raws = {
        "drop_invisible": "كل\u200bمة",
        "placeholders": "@user",
        "strip_diacritics": "مُحَمَّد",
        "strip_tatweel": "جميــل",
        "unify_alef": "أمل",
        "alef_maqsura_to_ya": "إلى",
        "ta_marbuta_to_ha": "مدرسة",
        "ascii_digits": "٣٤",
        "collapse_whitespace": "أ  ب",
    }
    assert set(raws) == {f.name for f in dataclasses.fields(NormalizerConfig)}
    for flag, raw in raws.items():
        assert normalize(raw, only(flag)) != raw, flag


# --- config ------------------------------------------------------------------------------


def test_config_round_trip() -> None:
    for config in (
        NormalizerConfig(),
        ALL_OFF,
        NormalizerConfig(ta_marbuta_to_ha=True, placeholders=False),
    ):
        data = config.to_dict()
        assert set(data) == {f.name for f in dataclasses.fields(NormalizerConfig)}
        assert all(isinstance(v, bool) for v in data.values())
        assert NormalizerConfig.from_dict(data) == config


def test_config_from_partial_dict_uses_defaults() -> None:
    assert NormalizerConfig.from_dict({"ta_marbuta_to_ha": True}) == NormalizerConfig(
        ta_marbuta_to_ha=True
    )
    assert NormalizerConfig.from_dict({}) == NormalizerConfig()


def test_config_rejects_unknown_key() -> None:
    with pytest.raises(ValueError, match="strip_hamza"):
        NormalizerConfig.from_dict({"strip_diacritics": True, "strip_hamza": True})


@pytest.mark.parametrize("value", [1, 0, "true", None, 1.0, [True]])
def test_config_rejects_non_bool(value: object) -> None:
    with pytest.raises(ValueError, match="unify_alef") as info:
        NormalizerConfig.from_dict({"unify_alef": value})
    assert "true or false" in str(info.value)


def test_config_rejects_non_dict() -> None:
    with pytest.raises(ValueError, match="object"):
        NormalizerConfig.from_dict([("unify_alef", True)])  # type: ignore[arg-type]


def test_build_normalizer_matches_normalize() -> None:
    config = NormalizerConfig(ta_marbuta_to_ha=True)
    raw = "المدرسةُ الأولى ٢٠٢٤"
    assert (
        build_normalizer(config).normalize_str(raw)
        == normalize(raw, config)
        == "المدرسه الاولي 2024"
    )


# --- idempotence -------------------------------------------------------------------------

_FRAGMENTS = [
    "قال",
    "الوزيرُ",
    "إنَّ",
    "الحكومةَ",
    "ستُعلن",
    "ميزانيــة",
    "آمنة",
    "ٱلله",
    "مستشفى",
    "هٰذا",
    "٢٠٢٤",
    "۱۲",
    "3.5",
    "https://example.com/a?b=1",
    "www.akhbar.net",
    "info@akhbar.org",
    "@ahmed_99",
    "[URL]",
    "[USER]",
    "news",
    "!",
    "؟",
    "،",
    "«",
    "»",
]
_SEPARATORS = [" ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u200b", "\u200f", " \u2028 "]


@st.composite
def news_like_text(draw) -> str:
    parts = draw(st.lists(st.sampled_from(_FRAGMENTS), max_size=12))
    seps = draw(
        st.lists(st.sampled_from(_SEPARATORS), min_size=len(parts) + 1, max_size=len(parts) + 1)
    )
    return seps[0] + "".join(p + s for p, s in zip(parts, seps[1:], strict=True))


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_idempotent_on_arbitrary_text(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8", categories=["L", "M", "N", "P", "Z", "Cc", "Cf"]))
)
def test_idempotent_on_arbitrary_text_all_steps(text: str) -> None:
    config = NormalizerConfig(ta_marbuta_to_ha=True)
    once = normalize(text, config)
    assert normalize(once, config) == once


@settings(max_examples=200, deadline=None)
@given(news_like_text())
def test_idempotent_on_news_like_text(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip()
    assert "  " not in once


@pytest.mark.parametrize(
    "raw", ["ww\u064bw.akhbar.net", "htt\u0640p://akhbar.net", "@\u0661\u0662"]
)
def test_idempotent_when_a_mark_hides_a_placeholder(raw: str) -> None:
    once = normalize(raw)
    assert normalize(once) == once


# --- arabic_ratio --------------------------------------------------------------------------


def test_arabic_ratio() -> None:
    assert arabic_ratio("قال الوزير إن الميزانية سترتفع") == 1.0
    assert arabic_ratio("The minister said the budget will rise") == 0.0
    assert arabic_ratio("كتاب book") == pytest.approx(0.5)
    assert arabic_ratio("") == 0.0
    assert arabic_ratio("123 ٤٥٦ !?") == 0.0  # digits and punctuation are not letters


def test_arabic_ratio_counts_letters_only() -> None:
    assert arabic_ratio("كتب abc") == pytest.approx(3 / 6)
    assert arabic_ratio("كتب a، ١٢٣!") == pytest.approx(3 / 4)
    assert arabic_ratio("مُحَمَّد x") == pytest.approx(4 / 5)  # marks are not letters
