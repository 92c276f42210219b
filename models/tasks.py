"""The tasks akhbar knows, their label sets and the fields each record must carry.

:data:`TASKS` is the one list of task names, in the one order every result, table and
command line shows them. The reader (:mod:`akhbar.models.reader`) checks records against
:data:`TASK_FIELDS`, so training, evaluation and batch scoring agree on what a valid record is.
"""

from __future__ import annotations

from dataclasses import dataclass

TASKS = ("topic", "summary", "stance")

TOPIC_LABELS = ("culture", "economy", "internationalNews", "middleEast", "sport", "technology")
# Stance is two problems with their own heads and labels (see :data:`STANCE_HEADS`):
# a claim against a whole article (unifiedfc) and a claim against one headline (ANS).
STANCE_LABELS = ("agree", "disagree", "discuss", "unrelated")
HEADLINE_STANCE_LABELS = ("agree", "disagree", "other")
# Each stance head and the label set its answers are in, as results name it (``label_set``).
# A bundle without a ``stance_headline`` head answers every pair with ``stance``.
STANCE_HEADS = {"stance": "article", "stance_headline": "headline"}
# Which head answers a pair (:func:`akhbar.models.inputs.stance_head`): a text of at most this
# many words is a headline or a single sentence, anything longer an article. Chosen on the
# validation splits: ANS headlines run to 16 words and unifiedfc articles start at 19, so the
# rule sends 1 of the 1,342 validation pairs to the other dataset's head (by sentence count
# instead, 5).
HEADLINE_MAX_WORDS = 20
# The coarse topic labels (the topic data's ``label_coarse``):
# both news-of-the-world labels fold into politics.
TOPIC_COARSE = {"internationalNews": "politics", "middleEast": "politics"}


def coarse_topic(label: str) -> str:
    """A topic label on the coarse scale (labels without a coarse parent stay as they are)."""
    return TOPIC_COARSE.get(label, label)


@dataclass(frozen=True)
class TaskFields:
    """Which fields a record of one task carries.

    Parameters
    ----------
    required: present, non-null strings, non-empty after stripping white space.
    optional: may be absent or null; when present and not null, a string (``id`` may also
        be an int, and fields in ``list_fields`` are lists).
    label_field: the field that holds the gold label; None for tasks without one.
    list_fields: optional fields that hold a list of non-empty strings instead of one string.
    one_of: optional fields of which at least one must be present with content (a
        non-blank string or a non-empty list); expresses "summary or summaries".
    """

    required: tuple[str, ...]
    optional: tuple[str, ...]
    label_field: str | None
    list_fields: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()


TASK_FIELDS: dict[str, TaskFields] = {
    "topic": TaskFields(required=("text", "label"), optional=("title", "id"), label_field="label"),
    # A single reference (`summary`, e.g. ANT's standfirst) or several (`summaries`, e.g.
    # EASC's five human summaries): a record needs at least one of the two.
    "summary": TaskFields(
        required=("text",),
        optional=("title", "id", "summary", "summaries"),
        label_field=None,
        list_fields=("summaries",),
        one_of=("summary", "summaries"),
    ),
    "stance": TaskFields(
        required=("claim", "text", "label"), optional=("title", "id"), label_field="label"
    ),
    "stance_headline": TaskFields(
        required=("claim", "text", "label"), optional=("title", "id"), label_field="label"
    ),
    # Unlabelled articles for batch scoring; the reader can rename `id` and add a claims list.
    "score": TaskFields(required=("text",), optional=("title", "id"), label_field=None),
}

# How each task uses the encoder: one label per input, or a score per sentence.
SEQUENCE, SENTENCE = "sequence", "sentence"
KINDS = (SEQUENCE, SENTENCE)
TASK_KINDS: dict[str, str] = {
    "topic": SEQUENCE,
    "summary": SENTENCE,
    "stance": SEQUENCE,
    "stance_headline": SEQUENCE,
}
# The single "label" of a sentence-scoring head: the sentence belongs in the summary.
SENTENCE_LABEL = "selected"


def task_kind(task: str) -> str:
    """The kind of a known task; a ValueError names the task otherwise."""
    if task not in TASK_KINDS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASK_KINDS)}")
    return TASK_KINDS[task]
