"""Split Arabic (and mixed Latin) news text into sentences with exact character offsets.

Every :class:`Sentence` is a verbatim slice of the input, so extractive summaries and
highlighted spans can always point back into the article exactly as published. The
splitter is rule based: one regular-expression pass finds line breaks and terminator
runs (URLs and e-mail addresses are consumed whole so their dots never split), and a
few cheap checks decide whether a lone full stop really ends a sentence. Pieces that
are still too long (radio briefs, tweets without punctuation) are cut at white space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Sentence:
    """One sentence: ``text == original[start:end]``, trimmed of surrounding white space."""

    text: str
    start: int
    end: int


# Sentence terminators; runs such as "?!", "..." or "؟؟" count as one.
_TERMINATORS = r".!?؟؛…۔"
# Closing quotes/brackets that stay with the sentence they close.
_CLOSERS = r"\"'»”’)\]}›"
# Opening quotes/brackets ignored when looking at the word before a full stop.
_OPENERS = "\"'«“‘([{‹"
# Everything str.splitlines() breaks on.
_LINE_BREAKS = r"\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
# A URL ends before trailing punctuation that is followed by white space or the end.
_URL = rf"(?:https?://|www\.)\S*?(?=[{_TERMINATORS},،:;{_CLOSERS}]*(?:\s|\Z))"
# The look-behind makes the local part start only at the start of a run (linear time).
_EMAIL = r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+"
_SCAN = re.compile(
    rf"(?P<skip>{_URL}|{_EMAIL})"
    rf"|(?P<stop>[{_TERMINATORS}]+)[{_CLOSERS}]*"
    rf"|[{_LINE_BREAKS}]"
)

_MARKS = r"\u0610-\u061a\u064b-\u065f\u0670\u0640"  # harakat, Quranic marks, tatweel
_LETTER = rf"[^\W\d_][{_MARKS}]*"
# Arabic abbreviations are single letters with a full stop (د. أ. م. ص. ت. ج. هـ.) or
# chains of them (أ.د. ق.م. ص.ب. ج.م.ع. د.ك. U.S. e.g.), so the rule is structural:
# a word made only of dotted single letters is an abbreviation, not a sentence end.
_ABBREVIATION = re.compile(rf"(?:{_LETTER}\.)*{_LETTER}")
# Multi-letter Latin abbreviations that precede a name.
_TITLES = frozenset({"dr", "mr", "mrs", "ms", "prof", "jr", "sr", "st", "gen", "eng", "vs"})
# Era markers after a year (عام 1990 م. / 300 ق.م.) usually end the sentence.
_ERAS = frozenset({"م", "ه", "هـ", "ق.م"})
_NUMBER_BEFORE = re.compile(r"\d\s*\Z")
# "1." "١." "2.3." at the start of a line mark a list item, not a sentence.
_LIST_NUMBER = re.compile(r"\d{1,3}(?:\.\d{1,3})*")
_ARABIC_WORD_END = re.compile(rf"[\u0621-\u064a\u0671-\u06d3][{_MARKS}]*\Z")
_ARABIC_LETTER = re.compile(r"[\u0621-\u064a\u0671-\u06d3]")
_BLANK = re.compile(r"\s*")
_TOKEN_LOOKBACK = 40  # enough to classify the word before a full stop

_HAS_WORD = re.compile(r"[^\W_]")
_LAST_COMMA = re.compile(r".*[،,](?=\s)", re.S)
_LAST_CONJUNCTION = re.compile(r".*(\s)و", re.S)
_LAST_SPACE = re.compile(r".*(\s)", re.S)
_SPACE = re.compile(r"\s")
_NON_SPACE = re.compile(r"\S")


def split_sentences(text: str, max_chars: int = 400) -> list[Sentence]:
    """Split ``text`` into sentences; each is at most ``max_chars`` long unless it is one token.

    Splits on . ! ? ؟ ؛ … (and runs of them, with closing quotes/brackets kept) and on
    line breaks. A full stop does not split inside decimals (3.5, ٣.٥, 2.000), dotted
    abbreviations (د. محمد, أ.د., ص.ب., U.S., Dr.), list numbers at the start of a line
    (1. / ١.), URLs or e-mail addresses. A full stop glued to the next character splits
    only between two Arabic words (a missing space: «الوزير.وأضاف»). Era markers after a
    number («عام 1990 م.») end the sentence. Pieces without any letter or digit are
    dropped, as are empty ones.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    sentences: list[Sentence] = []
    piece_start = 0
    line_start = 0
    for match in _SCAN.finditer(text):
        kind = match.lastgroup
        if kind == "skip":
            continue
        if kind == "stop":
            if not _ends_sentence(text, match, line_start):
                continue
            _emit(text, piece_start, match.end(), max_chars, sentences)
        else:  # line break
            _emit(text, piece_start, match.start(), max_chars, sentences)
            line_start = match.end()
        piece_start = match.end()
    _emit(text, piece_start, len(text), max_chars, sentences)
    return sentences


def _ends_sentence(text: str, match: re.Match[str], line_start: int) -> bool:
    """Decide whether a terminator run ends a sentence; only a lone full stop is in doubt."""
    if match.group("stop") != ".":
        return True
    after = text[match.end() : match.end() + 1]
    glued = bool(after) and not after.isspace()
    if glued and not _ARABIC_LETTER.match(after):
        return False  # decimals, domains, U.S., 2.000: only Arabic-Arabic can be a lost space
    token_start, token = _token_before(text, match.start())
    if not token:
        return True
    if _ABBREVIATION.fullmatch(token):
        return (
            not glued
            and token in _ERAS
            and bool(_NUMBER_BEFORE.search(text, max(0, token_start - 8), token_start))
        )
    if token.lower() in _TITLES:
        return False
    if glued:
        return bool(_ARABIC_WORD_END.search(token))
    is_list_item = _LIST_NUMBER.fullmatch(token) and _BLANK.fullmatch(text, line_start, token_start)
    return not is_list_item


def _token_before(text: str, end: int) -> tuple[int, str]:
    """The non-space word that ends at ``end`` (opening quotes removed) and its start."""
    window = text[max(0, end - _TOKEN_LOOKBACK) : end]
    if not window or window[-1].isspace():
        return end, ""
    token = window.rsplit(None, 1)[-1].lstrip(_OPENERS)
    return end - len(token), token


def _emit(text: str, start: int, end: int, max_chars: int, out: list[Sentence]) -> None:
    """Trim ``text[start:end]`` and append it, cut into pieces if it is too long."""
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return
    start += len(piece) - len(piece.lstrip())
    end = start + len(stripped)
    while end - start > max_chars:
        cut = _long_cut(text, start, end, max_chars)
        _append(text, start, cut, out)
        next_word = _NON_SPACE.search(text, cut, end)
        if next_word is None:
            return
        start = next_word.start()
    _append(text, start, end, out)


def _long_cut(text: str, start: int, end: int, max_chars: int) -> int:
    """Where to cut an over-long piece that starts at a non-space ``start``.

    Prefers just after a comma, then just before a word starting with و, when either
    lies in the last third of the window; else the last white space; else (one huge
    token) the first white space after it.
    """
    limit = start + max_chars + 1  # a cut at start + max_chars keeps the piece in bounds
    last_third = start + (2 * max_chars) // 3
    if match := _LAST_COMMA.match(text, last_third, limit):
        return match.end()
    if match := _LAST_CONJUNCTION.match(text, last_third, limit):
        return match.start(1)
    if match := _LAST_SPACE.match(text, start + 1, limit):
        return match.start(1)
    match = _SPACE.search(text, limit, end)
    return match.start() if match else end


def _append(text: str, start: int, end: int, out: list[Sentence]) -> None:
    """Append ``text[start:end]`` right-trimmed, unless it holds no letter or digit."""
    piece = text[start:end].rstrip()
    if _HAS_WORD.search(piece):
        out.append(Sentence(piece, start, start + len(piece)))
