"""Rewrite one marked section of a model card (a README.md), leaving the rest as written.

Reports own their sections (``<!-- NAME -->`` ... ``<!-- /NAME -->``): the base report
writes ``base-report`` into the base's card, ``make eval`` writes ``shipped-figures`` into the
shipped bundle's, and rerunning either replaces its section instead of adding another.
"""

from __future__ import annotations

from pathlib import Path


def write_section(card: Path, body: str, name: str) -> None:
    """Put ``body`` between the ``name`` section markers of ``card``
    (appending them the first time)."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = card.read_text() if card.exists() else ""
    block = f"{start}\n{body}{end}\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    card.write_text(text)
