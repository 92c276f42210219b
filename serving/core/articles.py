"""What an article to score and its result look like: the one schema the HTTP service and the
batch scorer both validate with.

:class:`Article` carries every per-article rule of :mod:`akhbar.serving.core.limits`, as
pydantic validators; those with a configured limit read the current configuration (that of
the server handling the request or of the running batch job, else the environment), and
the OpenAPI document states the limits. The result models are the shape
:class:`~akhbar.serving.core.analyzer.Analyzer` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from akhbar.models.tasks import HEADLINE_MAX_WORDS
from akhbar.serving.core.config import ScoringConfig, current
from akhbar.serving.core.limits import (
    ID_RANGE,
    MAX_ID_CHARS,
    MAX_SUMMARY_SENTENCES,
    claims_problem,
    id_problem,
    summary_max_words_problem,
    summary_sentences_problem,
    text_problem,
    title_problem,
)

# A sample article the project wrote (not from any outlet): the OpenAPI example, `make demo`
# and the load test's payload. It ends in a related-articles block and a follow prompt,
# boilerplate that summary, topic and stance skip.
SAMPLE_ARTICLE: dict[str, Any] = {
    "id": "sample-1",
    "title": "البنك المركزي يبقي أسعار الفائدة دون تغيير",
    "text": (
        "أعلن البنك المركزي اليوم الإبقاء على أسعار الفائدة الرئيسية دون تغيير للمرة الثالثة على "
        "التوالي. وقال محافظ البنك في مؤتمر صحفي إن معدل التضخم تراجع إلى 3.1 في المئة خلال الربع "
        "الأخير من العام. وأضاف أن القرار يهدف إلى دعم النمو الاقتصادي مع الحفاظ على استقرار "
        "الأسعار. وتوقع محللون أن يبدأ البنك خفض الفائدة في النصف الثاني من العام المقبل إذا استمر "
        "تباطؤ التضخم. وارتفعت أسهم البنوك في البورصة المحلية بنسبة طفيفة بعد الإعلان.\nأخبار ذات "
        "صلة\nارتفاع أسعار الذهب في الأسواق العالمية\nتابعونا على تويتر"
    ),
    "claims": ["البنك المركزي رفع أسعار الفائدة", "تراجع معدل التضخم في الربع الأخير"],
    "summary_sentences": 2,
}

# The limits stated in the schema: those of the environment this module is imported in (the
# serving process, see akhbar.serving.http.settings).
SCHEMA_LIMITS = ScoringConfig.from_env()

# The limits this server enforces, stated in its OpenAPI document (/docs.json) so that a
# client, or a fuzzer, generating from the document sends what the service accepts. Only
# documentation: the validators below enforce the limits, with messages naming the setting.
# At least one character that str.strip() keeps: Python's whitespace spelled out, since the
# document's regex dialect (ECMA-262) has a narrower \s (without \x1c-\x1f and \x85).
NOT_BLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_TEXT_SCHEMA = {"maxLength": SCHEMA_LIMITS.max_text_chars, "pattern": NOT_BLANK}
_CLAIMS_SCHEMA = {
    "maxItems": SCHEMA_LIMITS.max_claims,
    "items": {
        "type": "string",
        "minLength": 1,
        "maxLength": SCHEMA_LIMITS.max_claim_chars,
        "pattern": NOT_BLANK,
    },
}


def _refused_by(problem_of: Callable[[object], str | None]) -> BeforeValidator:
    """A validator that refuses, in the rule's own words, a value the rule finds a problem in
    (None passes: the field is optional). It runs before pydantic's own type check, so a
    wrong type gets the rule's sentence too."""

    def check(value: object) -> object:
        if value is not None and (problem := problem_of(value)):
            raise ValueError(problem)
        return value

    return BeforeValidator(check)


class Article(BaseModel):
    """One article to score."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": SAMPLE_ARTICLE})

    text: str = Field(
        min_length=1,
        json_schema_extra=_TEXT_SCHEMA,
        description="The article, as published (at most AKHBAR_MAX_TEXT_CHARS, "
        "default 100,000 characters).",
    )
    id: Annotated[
        Annotated[str, Field(max_length=MAX_ID_CHARS)]
        | Annotated[int, Field(ge=ID_RANGE[0], le=ID_RANGE[1])]
        | None,
        _refused_by(id_problem),
    ] = Field(
        None,
        description=f"Echoed in the result: a string of at most {MAX_ID_CHARS} characters or a "
        "64-bit whole number.",
    )
    title: str | None = Field(
        None,
        json_schema_extra={"maxLength": SCHEMA_LIMITS.max_text_chars},
        description="Headline; helps topic.",
    )
    claims: list[str] = Field(
        default_factory=list,
        json_schema_extra=_CLAIMS_SCHEMA,
        description="Claims to judge the article's stance on "
        "(at most AKHBAR_MAX_CLAIMS, default 16).",
    )
    summary_sentences: Annotated[int | None, _refused_by(summary_sentences_problem)] = Field(
        None,
        strict=True,
        json_schema_extra={"minimum": 1, "maximum": MAX_SUMMARY_SENTENCES},
        description=f"Summary length k, 1 to {MAX_SUMMARY_SENTENCES} (default "
        f"AKHBAR_SUMMARY_SENTENCES, {SCHEMA_LIMITS.summary_sentences} on this server).",
    )
    summary_max_words: Annotated[int | None, _refused_by(summary_max_words_problem)] = Field(
        None,
        strict=True,
        json_schema_extra={"minimum": 1},
        description="Upper bound on summary words.",
    )

    # The rules live in akhbar.serving.core.limits.
    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if problem := text_problem(value, current()):
            raise ValueError(problem)
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if problem := title_problem(value, current()):
            raise ValueError(problem)
        return value

    @field_validator("claims")
    @classmethod
    def _claims(cls, value: list[str]) -> list[str]:
        if problem := claims_problem(value, current()):
            raise ValueError(problem)
        return value


class StanceArticle(Article):
    """An article for ``/stance``: at least one claim."""

    claims: list[str] = Field(
        min_length=1,
        json_schema_extra=_CLAIMS_SCHEMA,
        description="Claims to judge the article's stance on (1 to AKHBAR_MAX_CLAIMS, default 16).",
    )


def article_count(value: list) -> list:
    limit = current().max_articles
    if len(value) > limit:
        raise ValueError(
            f"{len(value)} articles; the limit is {limit} per request (AKHBAR_MAX_ARTICLES)"
        )
    return value


ARTICLES_SCHEMA = {"maxItems": SCHEMA_LIMITS.max_articles}
Articles = Annotated[
    list[Article],
    Field(min_length=1, json_schema_extra=ARTICLES_SCHEMA),
    AfterValidator(article_count),
]
StanceArticles = Annotated[
    list[StanceArticle],
    Field(min_length=1, json_schema_extra=ARTICLES_SCHEMA),
    AfterValidator(article_count),
]


class Label(BaseModel):
    label: str
    scores: dict[str, float]
    low_confidence: bool


class Summary(BaseModel):
    sentences: list[str]
    indices: list[int]
    offsets: list[tuple[int, int]]


class Evidence(BaseModel):
    text: str
    start: int
    end: int


class Stance(BaseModel):
    claim: str
    label: str = Field(description="The most probable label of `label_set`.")
    label_set: Literal["article", "headline"] = Field(
        description="Which stance head answered, and so the labels of `label` and `scores`: "
        "`article` (a claim against an article: agree, disagree, discuss, unrelated) or "
        f"`headline` (a claim against a text of at most {HEADLINE_MAX_WORDS} words, such as a "
        "headline: agree, disagree, other). Models without a headline head answer every "
        "claim with `article`."
    )
    scores: dict[str, float]
    low_confidence: bool
    evidence: list[Evidence]


class AnalyzeResult(BaseModel):
    id: str | int | None
    topic: Label
    summary: Summary
    stances: list[Stance]
    warnings: list[str]
    model_versions: dict[str, str]


class TopicResult(BaseModel):
    id: str | int | None
    topic: Label
    warnings: list[str]
    model_versions: dict[str, str]


class SummaryResult(BaseModel):
    id: str | int | None
    summary: Summary
    warnings: list[str]
    model_versions: dict[str, str]


class StanceResult(BaseModel):
    id: str | int | None
    stances: list[Stance]
    warnings: list[str]
    model_versions: dict[str, str]


class AnalyzeResponse(BaseModel):
    results: list[AnalyzeResult]


class TopicResponse(BaseModel):
    results: list[TopicResult]


class SummaryResponse(BaseModel):
    results: list[SummaryResult]


class StanceResponse(BaseModel):
    results: list[StanceResult]
