"""Recognise and drop news-page boilerplate: related-article links, app and share prompts.

Scraped articles carry lines such as «اقرأ أيضاً: …», «أخبار ذات صلة» or «تابعونا على
تويتر» that are not part of the story; left in, they leak into extractive summaries and
skew topic and stance scores. Detection works per sentence (see
:func:`akhbar.models.sentences.split_sentences`) on the normalised text, so one pattern
covers spelling variants (اقرأ / إقرأ / اقرا, أيضاً / أيضا, حمّل / حمل). Credit lines
(«المصدر: …») are content and are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from akhbar.models.normalize import normalize
from akhbar.models.sentences import Sentence, split_sentences

_SOCIAL = (
    r"(?:تويتر|منصة اكس|اكس|فيسبوك|فيس بوك|انستغرام|انستجرام|انستقرام|يوتيوب|تيليغرام|تلغرام"
    r"|تيك توك|واتساب|واتس اب|سناب شات|البريد|x|twitter|facebook|instagram|youtube|telegram"
    r"|tiktok|whatsapp)\b"
)

# Searched (re.search, case-insensitive) in the normalised sentence with leading and
# trailing punctuation/symbols removed. Anchored with ^ so that a word such as «شارك»
# only counts when it opens a share prompt, not inside a real sentence.
DEFAULT_PATTERNS: tuple[str, ...] = (
    r"^(?:اخبار|مواضيع|موضوعات|مقالات|قصص) ذات صلة\b",
    r"^(?:اقرا|طالع|شاهد) (?:ايضا|كذلك)\b",
    r"^اقرا المزيد\b",
    r"^للمزيد(?:\s*:| من الاخبار\b)",
    r"^(?:حمل|حملوا|نزل|نزلوا|قم بتحميل) (?:ال)?تطبيق",
    r"^تابعونا\b",
    rf"^تابع(?:نا|وا)? (?:علي|عبر) {_SOCIAL}",
    r"^شارك(?:ها|ه|وا)?\s*(?::|$)",
    r"^شارك (?:هذا|هذه) (?:ال)?(?:مقال|مقالة|خبر|موضوع|تقرير|قصة|صفحة|فيديو|صورة|منشور)\b",
    rf"^شارك(?:ها|ه|وا)? (?:عبر|علي|في) {_SOCIAL}",
    rf"^(?:ال)?مشاركة (?:عبر|علي)(?:\s*:|$|\s+{_SOCIAL})",
    r"^(?:اضغط|انقر) هنا\b",
)

# Fully matched against the same text: a sentence that is nothing but one of these
# markers is dropped together with the NEXT sentence (the related headline).
DEFAULT_DROP_FOLLOWING: tuple[str, ...] = (
    r"(?:اخبار|مواضيع|موضوعات|مقالات|قصص) ذات صلة",
    r"(?:اقرا|طالع|شاهد) (?:ايضا|كذلك)",
    r"للمزيد",
)

_DICT_KEYS = ("patterns", "drop_following", "extra_patterns", "extra_drop_following")
_EDGE_JUNK = re.compile(r"^[\W_]+|[\W_]+$")


def _check_regexes(key: str, value: Any) -> tuple[str, ...]:
    """Return ``value`` as a tuple of regexes, or raise ValueError naming ``key``."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"boilerplate setting {key!r} must be a list of regexes, got {value!r}")
    for pattern in value:
        if not isinstance(pattern, str):
            raise ValueError(f"boilerplate setting {key!r} holds a non-string {pattern!r}")
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as err:
            message = f"boilerplate setting {key!r}: invalid regex {pattern!r}: {err}"
            raise ValueError(message) from err
    return tuple(value)


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern, re.IGNORECASE) for pattern in patterns)


@dataclass(frozen=True)
class BoilerplateConfig:
    """Which sentences count as boilerplate; stored with a model so serving matches training.

    Patterns are written in normalised form (``normalize`` with the default
    ``NormalizerConfig``: no hamza on alef, no diacritics, ى → ي, ASCII digits) and are
    matched case-insensitively against the sentence with leading/trailing punctuation
    and symbols removed.

    Parameters
    ----------
    patterns: regexes searched in each sentence; a hit drops the sentence.
    drop_following: regexes that must match the WHOLE sentence; such a bare marker is
        dropped together with the sentence after it (the related headline).

    To extend the defaults in code, pass ``patterns=DEFAULT_PATTERNS + ("my regex",)``.
    In a stored dict, use ``extra_patterns`` / ``extra_drop_following`` (see
    :meth:`from_dict`); :meth:`to_dict` always writes the full resolved lists, so a
    stored config keeps its behaviour when the defaults change.
    """

    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    drop_following: tuple[str, ...] = DEFAULT_DROP_FOLLOWING

    def __post_init__(self) -> None:
        # Fail at construction, not at the first article, and keep the config hashable.
        object.__setattr__(self, "patterns", _check_regexes("patterns", self.patterns))
        object.__setattr__(
            self, "drop_following", _check_regexes("drop_following", self.drop_following)
        )

    def to_dict(self) -> dict[str, list[str]]:
        return {"patterns": list(self.patterns), "drop_following": list(self.drop_following)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BoilerplateConfig:
        """Build from a stored dict, refusing unknown keys, non-lists and invalid regexes.

        Keys: ``patterns`` and ``drop_following`` replace the defaults; ``extra_patterns``
        and ``extra_drop_following`` are appended to them (or to the given lists).
        """
        if not isinstance(data, dict):
            raise ValueError(f"boilerplate settings must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_DICT_KEYS))
        if unknown:
            raise ValueError(
                f"unknown boilerplate setting(s): {', '.join(map(str, unknown))}; "
                f"expected some of: {', '.join(_DICT_KEYS)}"
            )
        values = {key: _check_regexes(key, value) for key, value in data.items()}
        return cls(
            patterns=values.get("patterns", DEFAULT_PATTERNS) + values.get("extra_patterns", ()),
            drop_following=values.get("drop_following", DEFAULT_DROP_FOLLOWING)
            + values.get("extra_drop_following", ()),
        )


def _core(sentence_text: str) -> str:
    """The form patterns see: normalised, without leading/trailing punctuation or bullets."""
    return _EDGE_JUNK.sub("", normalize(sentence_text))


def _is_bare_marker(core: str, config: BoilerplateConfig) -> bool:
    return any(p.fullmatch(core) for p in _compiled(config.drop_following))


def _matches_pattern(core: str, config: BoilerplateConfig) -> bool:
    return any(p.search(core) for p in _compiled(config.patterns))


def is_boilerplate(sentence_text: str, config: BoilerplateConfig = BoilerplateConfig()) -> bool:
    """True when one sentence is boilerplate on its own (a pattern hit or a bare marker)."""
    core = _core(sentence_text)
    return _is_bare_marker(core, config) or _matches_pattern(core, config)


def content_sentences(
    text: str, config: BoilerplateConfig = BoilerplateConfig(), max_chars: int = 400
) -> list[Sentence]:
    """Sentences of ``text`` without boilerplate; offsets still index the original ``text``.

    A sentence that is a bare marker («أخبار ذات صلة», «اقرأ أيضاً:») also drops the
    sentence after it, the related headline.
    """
    kept: list[Sentence] = []
    drop_next = False
    for sentence in split_sentences(text, max_chars):
        core = _core(sentence.text)
        if _is_bare_marker(core, config):
            drop_next = True
        elif drop_next:
            drop_next = False
        elif not _matches_pattern(core, config):
            kept.append(sentence)
    return kept


def strip_boilerplate(text: str, config: BoilerplateConfig = BoilerplateConfig()) -> str:
    """The content sentences joined with newlines, for models that want plain text."""
    return "\n".join(sentence.text for sentence in content_sentences(text, config))
