"""The tasks akhbar knows, their label sets and the fields each record must carry.

:data:`TASKS` is the one list of task names, in the one order every result, table and
command line shows them. The reader (:mod:`akhbar.models.reader`) checks records against
:data:`TASK_FIELDS`, so training, evaluation and batch scoring agree on what a valid record is.
"""

from __future__ import annotations

from dataclasses import dataclass

TASKS = ("topic", "summary", "stance")

TOPIC_LABELS = ("culture", "economy", "internationalNews", "middleEast", "sport", "technology")
STANCE_LABELS = ("agree", "disagree", "discuss", "unrelated")
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
    # Unlabelled articles for batch scoring; the reader can rename `id` and add a claims list.
    "score": TaskFields(required=("text",), optional=("title", "id"), label_field=None),
}

# How each task uses the encoder: one label per input, or a score per sentence.
SEQUENCE, SENTENCE = "sequence", "sentence"
KINDS = (SEQUENCE, SENTENCE)
TASK_KINDS: dict[str, str] = {"topic": SEQUENCE, "summary": SENTENCE, "stance": SEQUENCE}
# The single "label" of a sentence-scoring head: the sentence belongs in the summary.
SENTENCE_LABEL = "selected"


def task_kind(task: str) -> str:
    """The kind of a known task; a ValueError names the task otherwise."""
    if task not in TASK_KINDS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASK_KINDS)}")
    return TASK_KINDS[task]
