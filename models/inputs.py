"""What each task feeds the encoder, built the same way in training and serving.

* topic: the title, then the article with boilerplate removed;
* stance: the claim, then the article sentences most relevant to it (evidence), in
  article order, so long articles are not simply cut at 512 tokens; :func:`stance_head` says
  which stance head (article or headline) answers a pair;
* summary: the article's candidate sentences (:func:`candidate_sentences`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from akhbar.models.boilerplate import content_sentences
from akhbar.models.normalize import normalize
from akhbar.models.sentences import Sentence, split_sentences
from akhbar.models.tasks import HEADLINE_MAX_WORDS

_WORD = re.compile(r"\w+")
# Very common function words carry no evidence; dropping them sharpens the overlap score.
_STOPWORDS = frozenset(
    "في من الي علي عن ان او ثم قد لا ما مع هذا هذه ذلك التي الذي الذين كان كانت بعد قبل "
    "بين حتي كل هو هي هم و ف ب ل".split()
)


def topic_text(text: str, title: str | None = None) -> str:
    """Title and article body, boilerplate removed."""
    body = "\n".join(s.text for s in content_sentences(text))
    return f"{title.strip()}\n{body}" if title and title.strip() else body


def _terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(normalize(text)) if w not in _STOPWORDS and len(w) > 1]


@dataclass(frozen=True)
class Evidence:
    """The sentences chosen for a claim, in article order, with their relevance scores."""

    sentences: tuple[Sentence, ...]
    scores: tuple[float, ...]

    @property
    def text(self) -> str:
        return "\n".join(s.text for s in self.sentences)


@dataclass(frozen=True)
class ArticleTerms:
    """An article's candidate sentences with their term bags and document frequencies:
    what evidence selection reads, built once per article however many claims it has."""

    sentences: tuple[Sentence, ...]
    bags: tuple[Counter, ...]
    df: Counter

    @classmethod
    def of(cls, sentences: Sequence[Sentence]) -> ArticleTerms:
        bags = tuple(Counter(_terms(s.text)) for s in sentences)
        return cls(tuple(sentences), bags, Counter(t for bag in bags for t in bag))


def select_evidence(
    claim: str, sentences: Sequence[Sentence] | ArticleTerms, k: int = 4
) -> Evidence:
    """The ``k`` sentences sharing most (idf-weighted) terms with the claim.

    IDF comes from the article's own sentences, so words the whole article repeats count
    little. Ties keep article order; the result is returned in article order. Pass the
    article's :class:`ArticleTerms` to check several claims against it.
    """
    article = sentences if isinstance(sentences, ArticleTerms) else ArticleTerms.of(sentences)
    n = len(article.sentences)
    if not n:
        return Evidence((), ())
    claim_terms = set(_terms(claim))
    scores = []
    for bag in article.bags:
        overlap = sum(math.log(1 + n / article.df[t]) for t in claim_terms if t in bag)
        scores.append(overlap / math.sqrt(1 + sum(bag.values())) if bag else 0.0)
    ranked = sorted(range(n), key=lambda i: (-scores[i], i))[:k]
    chosen = sorted(ranked)
    return Evidence(
        tuple(article.sentences[i] for i in chosen), tuple(round(scores[i], 4) for i in chosen)
    )


def candidate_sentences(text: str, max_chars: int = 400) -> list[Sentence]:
    """The sentences a summary may pick: content sentences, or all of them when every
    sentence looks like boilerplate (a summary is never empty for non-empty text)."""
    return content_sentences(text, max_chars=max_chars) or split_sentences(text, max_chars)


def stance_evidence(claim: str, text: str, k: int) -> Evidence:
    """Evidence for a claim from the article's content sentences."""
    return select_evidence(claim, candidate_sentences(text), k)


def topic_inputs(texts: Sequence[str], titles: Sequence[str | None]) -> list[str]:
    """What the topic model reads for each article."""
    return [topic_text(t, h) for t, h in zip(texts, titles)]


def stance_head(text: str, heads: Collection[str]) -> str:
    """The stance head of ``heads`` that answers a claim against ``text``: ``stance_headline``
    for a headline or single sentence (at most :data:`~akhbar.models.tasks.HEADLINE_MAX_WORDS`
    words) where the bundle has that head, else ``stance`` (an article)."""
    headline = "stance_headline" in heads and len(text.split()) <= HEADLINE_MAX_WORDS
    return "stance_headline" if headline else "stance"


def stance_inputs(
    claims: Sequence[str], texts: Sequence[str], k: int
) -> tuple[list[str], list[Evidence]]:
    """What the stance model reads after each claim (its evidence, else the whole article),
    and the evidence itself."""
    # Each article is split and indexed once, however many claims it is checked against
    # (16 claims against a 100,000-character article took 1.8 s of 2.9 s before).
    articles = {t: ArticleTerms.of(candidate_sentences(t)) for t in dict.fromkeys(texts)}
    evidence = [select_evidence(c, articles[t], k) for c, t in zip(claims, texts)]
    return [e.text or t for e, t in zip(evidence, texts)], evidence
