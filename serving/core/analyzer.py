"""The public Python API for scoring articles: what the HTTP service and the batch scorer share.

Load the models once, then analyse one article or many; each result has exactly the shape
one item of ``POST /analyze``'s ``results`` has::

    from akhbar.serving.core.analyzer import Analyzer

    analyzer = Analyzer.from_store()   # the models and settings the service would use (AKHBAR_*)
    # or: Analyzer.from_bundles({"topic": "path/to/bundle", "summary": ..., "stance": ...})
    [result] = analyzer.analyze([{"text": "...", "title": "...", "claims": ["..."]}])
    result["topic"]["label"], result["summary"]["sentences"], result["stances"][0]["label"]

An article is a dict (or any object with ``model_dump()``) with ``text`` and optionally
``id``, ``title``, ``claims``, ``summary_sentences`` (k, 1-20; default: the runtime's, that is
``AKHBAR_SUMMARY_SENTENCES``) and ``summary_max_words``; the Analyzer checks its fields. An
:class:`~akhbar.serving.core.articles.Article`, which the service and the batch scorer
build, has passed the same rules already and is taken as it is. A result holds:

* ``id``: the article's ``id`` (None when it had none);
* ``topic``: ``label``, ``scores`` (a calibrated probability per label), ``low_confidence``;
* ``summary``: ``sentences`` (verbatim), ``indices`` (among the article's candidate
  sentences) and ``offsets`` (``[start, end]`` character offsets into ``text``);
* ``stances``: per claim, ``claim``, ``label``, ``label_set`` (``article`` or ``headline``:
  which stance head answered, :func:`akhbar.models.inputs.stance_head`), ``scores``,
  ``low_confidence`` and ``evidence`` (``[{"text", "start", "end"}]``, offsets into ``text``);
* ``warnings``: ``"mostly non-Arabic text"`` (under half the letters are Arabic) and
  ``"text truncated"`` (the text did not fit the model's windows);
* ``model_versions``: ``{task: store tag or bundle path}`` for the tasks run.

Every call scores all its articles together: one topic batch, one summary batch and one
stance batch with every claim of every article (topic and summary share one encoder pass
when the bundle's topic head reads the summary windows, as the shipped one does).
Boilerplate is removed before scoring (:mod:`akhbar.models.inputs`); offsets still point
into the original text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from akhbar.models.bundle import BundleError, load_bundle
from akhbar.models.normalize import arabic_ratio
from akhbar.models.predict import Predictor, pick_sentences
from akhbar.models.stages import stage
from akhbar.models.tasks import TASKS
from akhbar.serving.core.articles import Article
from akhbar.serving.core.config import DEFAULT_SUMMARY_SENTENCES, Runtime, ScoringConfig
from akhbar.serving.core.limits import (
    id_problem,
    summary_max_words_problem,
    summary_sentences_problem,
)

NON_ARABIC_WARNING = "mostly non-Arabic text"
TRUNCATED_WARNING = "text truncated"
MIN_ARABIC_RATIO = 0.5


@dataclass(frozen=True)
class _Article:
    id: Any
    text: str
    title: str | None
    claims: tuple[str, ...]
    k: int
    max_words: int | None


class ModelLoadError(ValueError):
    """A task's model cannot be loaded; the message names it and what to run."""


def _field_error(index: int, field: str, problem: str) -> ValueError:
    return ValueError(f"articles[{index}].{field} {problem}")


def _coerce(article: Any, index: int, default_k: int) -> _Article:
    """Take an :class:`Article` as it is (validated already); check a dict or another pydantic
    model, raising ValueError naming the field."""
    if isinstance(article, Article):
        k = default_k if article.summary_sentences is None else article.summary_sentences
        return _Article(
            article.id,
            article.text,
            article.title,
            tuple(article.claims),
            k,
            article.summary_max_words,
        )
    if hasattr(article, "model_dump"):
        article = article.model_dump()
    if not isinstance(article, Mapping):
        raise ValueError(
            f"articles[{index}] must be a dict with a 'text' field, got {type(article).__name__}"
        )
    text = article.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _field_error(index, "text", "must be a non-empty string")
    title = article.get("title")
    if title is not None and not isinstance(title, str):
        raise _field_error(index, "title", "must be a string")
    if article.get("id") is not None and (problem := id_problem(article["id"])):
        raise _field_error(index, "id", problem)
    claims = article.get("claims") or ()
    if isinstance(claims, str) or not all(isinstance(c, str) and c.strip() for c in claims):
        raise _field_error(index, "claims", "must be a list of non-empty strings")
    k = article.get("summary_sentences")
    if k is not None and (problem := summary_sentences_problem(k)):
        raise _field_error(index, "summary_sentences", problem)
    max_words = article.get("summary_max_words")
    if max_words is not None and (problem := summary_max_words_problem(max_words)):
        raise _field_error(index, "summary_max_words", problem)
    return _Article(
        article.get("id"), text, title, tuple(claims), default_k if k is None else k, max_words
    )


def _label(prediction) -> dict[str, Any]:
    return {
        "label": prediction.label,
        "scores": prediction.scores,
        "low_confidence": prediction.low_confidence,
    }


class Analyzer:
    """Score articles with one loaded model per task (a shared bundle is loaded once).

    Parameters
    ----------
    predictors: ``{task: Predictor}``; tasks may share one Predictor.
    versions: ``{task: store tag or bundle path}``, reported as ``model_versions``.
    summary_sentences: k when an article does not set ``summary_sentences`` (the runtime's,
        when built with :meth:`from_bundles` or :meth:`from_store`).
    """

    def __init__(
        self,
        predictors: Mapping[str, Predictor],
        versions: Mapping[str, str] | None = None,
        summary_sentences: int = DEFAULT_SUMMARY_SENTENCES,
    ):
        unknown = sorted(set(predictors) - set(TASKS))
        if unknown:
            raise ValueError(
                f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}"
            )
        self.predictors = dict(predictors)
        self.versions = {
            t: (versions or {}).get(t) or str(p.bundle.path) for t, p in self.predictors.items()
        }
        self.summary_sentences = summary_sentences

    @classmethod
    def from_bundles(
        cls,
        bundles: Mapping[str, str | Path],
        versions: Mapping[str, str] | None = None,
        runtime: Runtime | None = None,
    ) -> Analyzer:
        """Load ``{task: bundle directory}``; the same directory for several tasks loads once.

        ``runtime``: k, the model batch size and the precision to score with
        (:meth:`ScoringConfig.runtime <akhbar.serving.core.config.ScoringConfig.runtime>`);
        None takes the configuration's defaults on this machine. It does not set torch's
        threads: :meth:`Runtime.apply <akhbar.serving.core.config.Runtime.apply>` does.

        Raises :class:`ModelLoadError` naming the task, the model and the fix when a bundle
        cannot be loaded or lacks the task's head.
        """
        runtime = runtime or ScoringConfig().runtime()
        loaded: dict[Path, Predictor] = {}
        predictors = {}
        for task, path in bundles.items():
            key = Path(path).expanduser().resolve()
            try:
                if key not in loaded:
                    loaded[key] = Predictor(
                        load_bundle(key),
                        batch_size=runtime.model_batch_size,
                        precision=runtime.precision,
                        device=runtime.device,
                    )
                if task not in loaded[key].bundle.settings.tasks:
                    have = ", ".join(loaded[key].bundle.tasks)
                    raise BundleError(key, f"has no {task!r} task (it has {have})")
            except BundleError as exc:
                name = (versions or {}).get(task) or str(key)
                raise ModelLoadError(
                    f"the {task} model {name} cannot be loaded ({exc}); re-import a good copy with "
                    f"`akhbar models import DIR --task {task}` and promote it, or rebuild the "
                    "defaults with `make models`."
                ) from None
            predictors[task] = loaded[key]
        return cls(predictors, versions, runtime.summary_sentences)

    @classmethod
    def from_store(
        cls,
        tasks: Iterable[str] = TASKS,
        config: ScoringConfig | None = None,
        runtime: Runtime | None = None,
    ) -> Analyzer:
        """Load ``tasks``' models as the service does: ``config``'s model settings
        (``AKHBAR_<TASK>_MODEL``), else the promoted ones, else the shipped defaults (see
        :mod:`akhbar.serving.core.store`), scored with ``runtime``.

        ``config`` None reads the environment; ``runtime`` None is ``config.runtime()``.
        Raises :class:`~akhbar.serving.core.store.ModelStoreError` or :class:`ModelLoadError`.
        """
        config = config or ScoringConfig.from_env()
        refs = config.resolve_models(tasks)
        return cls.from_bundles(
            {t: r.path for t, r in refs.items()},
            {t: r.version for t, r in refs.items()},
            runtime or config.runtime(),
        )

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(t for t in TASKS if t in self.predictors)

    # -----------------------------------------------------------------------------------
    def analyze(
        self, articles: Sequence[Any], tasks: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Score ``articles`` with ``tasks`` (default: every loaded task);
        one result each, in order."""
        tasks = tuple(TASKS if tasks is None else tasks)
        missing = [t for t in tasks if t not in self.predictors]
        if missing:
            raise ValueError(
                f"no model loaded for {', '.join(missing)}; loaded: "
                f"{', '.join(self.tasks) or 'none'}"
            )
        with stage("preprocess"):
            docs = [_coerce(a, i, self.summary_sentences) for i, a in enumerate(articles)]
        results: list[dict[str, Any]] = [{"id": d.id} for d in docs]
        truncated = [False] * len(docs)
        if not docs:
            return []
        texts = [d.text for d in docs]

        topics, scored = self._topic_and_summary(texts, [d.title for d in docs], tasks)
        for i, p in enumerate(topics):
            results[i]["topic"] = _label(p)
            truncated[i] |= p.truncated
        for i, (d, (sentences, scores, cut)) in enumerate(zip(docs, scored)):
            pick = pick_sentences(sentences, scores, d.k, d.max_words, cut)
            results[i]["summary"] = {
                "sentences": [s.text for s in pick.sentences],
                "indices": list(pick.indices),
                "offsets": [[s.start, s.end] for s in pick.sentences],
            }
            truncated[i] |= pick.truncated

        if "stance" in tasks:
            owners = [i for i, d in enumerate(docs) for _ in d.claims]
            claims = [c for d in docs for c in d.claims]
            for i in range(len(docs)):
                results[i]["stances"] = []
            if claims:
                preds = self.predictors["stance"].stance(claims, [texts[i] for i in owners])
                for i, p in zip(owners, preds, strict=True):
                    results[i]["stances"].append(
                        {
                            "claim": p.claim,
                            **_label(p),
                            "label_set": p.label_set,
                            "evidence": [
                                {"text": s.text, "start": s.start, "end": s.end} for s in p.evidence
                            ],
                        }
                    )
                    truncated[i] |= p.truncated

        versions = {t: self.versions[t] for t in TASKS if t in tasks}
        for d, result, cut in zip(docs, results, truncated, strict=True):
            warnings = []
            if arabic_ratio(d.text) < MIN_ARABIC_RATIO:
                warnings.append(NON_ARABIC_WARNING)
            if cut:
                warnings.append(TRUNCATED_WARNING)
            result["warnings"] = warnings
            result["model_versions"] = dict(versions)
        return results

    def _topic_and_summary(
        self, texts: list[str], titles: list[str | None], tasks: tuple[str, ...]
    ) -> tuple[list, list]:
        """Topic predictions and sentence scores for the requested ones of the two (else []);
        one encoder pass serves both when one bundle holds them and its topic head reads the
        summary windows (:meth:`Predictor.topic_and_sentences`)."""
        topic = self.predictors["topic"] if "topic" in tasks else None
        summary = self.predictors["summary"] if "summary" in tasks else None
        if topic is not None and topic is summary:
            return topic.topic_and_sentences(texts, titles)
        return (
            topic.topic(texts, titles) if topic else [],
            summary.sentence_scores(texts, titles=titles) if summary else [],
        )

    def topic(self, articles: Sequence[Any]) -> list[dict[str, Any]]:
        """``id``, ``topic``, ``warnings``, ``model_versions`` per article (``POST /topic``)."""
        return self.analyze(articles, ("topic",))

    def summarize(self, articles: Sequence[Any]) -> list[dict[str, Any]]:
        """``id``, ``summary``, ``warnings``, ``model_versions``
        per article (``POST /summarize``)."""
        return self.analyze(articles, ("summary",))

    def stance(self, articles: Sequence[Any]) -> list[dict[str, Any]]:
        """``id``, ``stances``, ``warnings``, ``model_versions`` per article (``POST /stance``)."""
        return self.analyze(articles, ("stance",))
