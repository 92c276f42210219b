"""Arabic text normalisation, built as a `tokenizers` normaliser.

There is exactly one implementation: :func:`build_normalizer` returns a
``tokenizers.normalizers.Sequence``. The tokenizer carries it in its
``tokenizer.json`` (so ``AutoTokenizer`` alone normalises raw text), and
:func:`normalize` runs the very same object on a Python string. Training, serving and
the tokenizer can therefore never disagree, and token offsets still map back to the
original text because `tokenizers` tracks alignments through every step.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any

from tokenizers import Regex, normalizers

# Placeholder tokens that replace URLs, e-mail addresses and @mentions. The tokenizer
# registers them as added tokens so each stays one token.
URL_TOKEN = "[URL]"
EMAIL_TOKEN = "[EMAIL]"
USER_TOKEN = "[USER]"
PLACEHOLDER_TOKENS = (URL_TOKEN, EMAIL_TOKEN, USER_TOKEN)

# Harakat, Quranic annotation marks and the superscript alef.
_DIACRITICS = "[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed]"
_TATWEEL = "\u0640"
_ALEF_FORMS = "[\u0622\u0623\u0625\u0671]"  # آ أ إ ٱ
# C0/C1 controls except tab/newline/CR, zero-width and bidi formatting characters, BOM.
_INVISIBLE = (
    "[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
    "\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_URL = r"(?:https?://|www\.)[^\s]+"
_EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"
_MENTION = r"@[A-Za-z0-9_]{1,30}"
_ARABIC_INDIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
_PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"


@dataclass(frozen=True)
class NormalizerConfig:
    """Which normalisation steps a model uses; stored in every bundle and tokenizer.

    Parameters
    ----------
    drop_invisible: remove control, zero-width and bidi formatting characters.
    placeholders: replace URLs, e-mail addresses and @mentions with placeholder tokens.
    strip_diacritics: remove harakat and Quranic marks.
    strip_tatweel: remove the kashida (ـ).
    unify_alef: أ إ آ ٱ → ا.
    alef_maqsura_to_ya: ى → ي.
    ta_marbuta_to_ha: ة → ه (off by default: it merges many distinct words).
    ascii_digits: Arabic-Indic and Persian digits → 0-9.
    collapse_whitespace: runs of white space (line breaks included) → one space, trimmed.
    """

    drop_invisible: bool = True
    placeholders: bool = True
    strip_diacritics: bool = True
    strip_tatweel: bool = True
    unify_alef: bool = True
    alef_maqsura_to_ya: bool = True
    ta_marbuta_to_ha: bool = False
    ascii_digits: bool = True
    collapse_whitespace: bool = True

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormalizerConfig:
        """Build from a stored dict, refusing unknown keys and non-boolean values."""
        if not isinstance(data, dict):
            raise ValueError(f"normalisation settings must be an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown normalisation setting(s): {', '.join(unknown)}")
        for key, value in data.items():
            if not isinstance(value, bool):
                raise ValueError(
                    f"normalisation setting {key!r} must be true or false, got {value!r}"
                )
        return cls(**data)


def _replace(pattern: str, content: str) -> normalizers.Replace:
    return normalizers.Replace(Regex(pattern), content)


def build_normalizer(config: NormalizerConfig = NormalizerConfig()) -> normalizers.Normalizer:
    """Return the `tokenizers` normaliser for ``config``; the order of steps matters.

    Placeholders run after the character-level steps, so a diacritic, tatweel or
    Arabic-Indic digit inside a URL or @mention cannot hide it (normalising twice changes
    nothing), and white space collapses last so removed characters leave no double spaces.
    """
    steps: list[normalizers.Normalizer] = []
    if config.drop_invisible:
        steps.append(_replace(_INVISIBLE, ""))
    if config.strip_diacritics:
        steps.append(_replace(_DIACRITICS, ""))
    if config.strip_tatweel:
        steps.append(normalizers.Replace(_TATWEEL, ""))
    if config.unify_alef:
        steps.append(_replace(_ALEF_FORMS, "ا"))
    if config.alef_maqsura_to_ya:
        steps.append(normalizers.Replace("ى", "ي"))
    if config.ta_marbuta_to_ha:
        steps.append(normalizers.Replace("ة", "ه"))
    if config.ascii_digits:
        for digits in (_ARABIC_INDIC_DIGITS, _PERSIAN_DIGITS):
            steps += [normalizers.Replace(d, str(i)) for i, d in enumerate(digits)]
    if config.placeholders:
        steps += [
            _replace(_URL, f" {URL_TOKEN} "),
            _replace(_EMAIL, f" {EMAIL_TOKEN} "),
            _replace(_MENTION, f" {USER_TOKEN} "),
        ]
    if config.collapse_whitespace:
        steps += [_replace(r"\s+", " "), normalizers.Strip()]
    return normalizers.Sequence(steps)


@lru_cache(maxsize=16)
def _cached_normalizer(config: NormalizerConfig) -> normalizers.Normalizer:
    return build_normalizer(config)


def normalize(text: str, config: NormalizerConfig = NormalizerConfig()) -> str:
    """Normalise one string exactly as the tokenizer does."""
    return _cached_normalizer(config).normalize_str(text)


_ARABIC_LETTER = re.compile(r"[\u0621-\u064a\u0671-\u06d3]")
_ANY_LETTER = re.compile(r"[^\W\d_]")


def arabic_ratio(text: str) -> float:
    """Share of letters in ``text`` that are Arabic (0.0 when it has no letters)."""
    letters = _ANY_LETTER.findall(text)
    if not letters:
        return 0.0
    return sum(1 for ch in letters if _ARABIC_LETTER.match(ch)) / len(letters)
