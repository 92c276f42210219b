"""The public Python API (Analyzer): loading, batching through Predictor, result shape."""

from __future__ import annotations

import pytest
from serving_support import ARTICLE, ARTICLE_TEXT, CLAIMS, ENGLISH_TEXT, STORY

from akhbar.models.predict import Predictor
from akhbar.models.tasks import TASKS
from akhbar.serving.core.analyzer import Analyzer, ModelLoadError


@pytest.fixture(scope="module")
def analyzer(tiny_bundle):
    return Analyzer.from_bundles(
        {t: tiny_bundle for t in TASKS}, versions={"topic": "akhbar-topic:v1"}
    )


def test_a_shared_bundle_is_loaded_once(analyzer):
    assert len({id(p) for p in analyzer.predictors.values()}) == 1
    assert analyzer.tasks == TASKS
    assert analyzer.versions["topic"] == "akhbar-topic:v1"
    assert analyzer.versions["stance"].endswith("bundle")  # no version given: the path


def test_result_shape_matches_the_service(analyzer):
    [result] = analyzer.analyze([ARTICLE])
    assert list(result) == ["id", "topic", "summary", "stances", "warnings", "model_versions"]
    assert [s["claim"] for s in result["stances"]] == CLAIMS
    for sentence, (start, end) in zip(
        result["summary"]["sentences"], result["summary"]["offsets"], strict=True
    ):
        assert ARTICLE_TEXT[start:end] == sentence
    assert result["model_versions"]["topic"] == "akhbar-topic:v1"


def test_pydantic_articles_and_single_parts(analyzer):
    from akhbar.serving.http.service import Article

    article = Article(text=STORY[0], id="p1", claims=["ادعاء"])
    assert analyzer.topic([article])[0].keys() == {"id", "topic", "warnings", "model_versions"}
    assert analyzer.summarize([article])[0]["summary"]["sentences"] == [STORY[0]]
    assert analyzer.stance([article])[0]["stances"][0]["claim"] == "ادعاء"
    assert analyzer.analyze([]) == []


def test_one_call_scores_every_article_and_claim_in_one_batch(analyzer, monkeypatch):
    calls = {"topic_and_sentences": [], "stance": []}
    for name in calls:
        original = getattr(Predictor, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            calls[_name].append(len(args[0]))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Predictor, name, spy)
    articles = [ARTICLE, {"text": STORY[1], "claims": ["أ ب"]}, {"text": ENGLISH_TEXT}]
    results = analyzer.analyze(articles)
    assert calls == {"topic_and_sentences": [3], "stance": [3]}  # 2 + 1 + 0 claims
    assert [len(r["stances"]) for r in results] == [2, 1, 0]
    assert results[2]["warnings"][0] == "mostly non-Arabic text"


@pytest.mark.parametrize(
    ("article", "field"),
    [
        ({"title": "x"}, "text"),
        ({"text": " "}, "text"),
        ({"text": "نص", "claims": "ادعاء"}, "claims"),
        ({"text": "نص", "summary_sentences": 0}, "summary_sentences"),
        ({"text": "نص", "summary_max_words": 0}, "summary_max_words"),
        ({"text": "نص", "id": "x" * 2049}, "id"),
        ({"text": "نص", "id": 1.5}, "id"),
    ],
)
def test_bad_articles_raise_naming_the_field(analyzer, article, field):
    with pytest.raises(ValueError, match=rf"articles\[0\]\.{field}"):
        analyzer.analyze([article])


def test_missing_task_and_unloadable_bundle_are_named(analyzer, tiny_bundle, tmp_path):
    only_topic = Analyzer(dict(topic=analyzer.predictors["topic"]))
    with pytest.raises(ValueError, match="no model loaded for stance"):
        only_topic.stance([{"text": "نص", "claims": ["أ"]}])
    with pytest.raises(
        ModelLoadError, match=r"the summary model .* cannot be loaded .*akhbar models import"
    ):
        Analyzer.from_bundles({"summary": tmp_path / "nowhere"})


def test_scoring_time_splits_into_the_stages_it_marks(analyzer):
    """The service's time split (akhbar.models.stages): every stage the tiny bundle has runs
    for some time, and the stages add up to at most the call's own time."""
    import time

    from akhbar.models.stages import clock

    started = time.perf_counter()
    with clock() as seconds:
        analyzer.analyze([ARTICLE, {"text": ARTICLE_TEXT, "claims": CLAIMS}])
    wall = time.perf_counter() - started
    for name in ("preprocess", "encoder", "postprocess"):
        assert seconds[name] > 0, name
    assert seconds["side_models"] == 0  # the tiny bundle fuses no side model
    assert sum(seconds.values()) <= wall
