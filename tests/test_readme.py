"""Every ``akhbar ...`` command the READMEs show parses with the real parser (nothing runs).

Commands are taken from the fenced code blocks (one per line, ``\\`` continuations joined,
``# comments`` dropped, the ``akhbar`` part of a shell pipe) and from inline code spans that
give a subcommand with arguments (usage sketches with ``[...]`` or ``a | b`` are left out).
"""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

from akhbar.cli import COMMANDS, kebab_flags

REPO = Path(__file__).resolve().parent.parent
READMES = ("README.md", "serving/README.md")
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
INLINE = re.compile(r"`(akhbar [^`]+)`")


def block_commands(text: str) -> list[str]:
    commands = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("|"):
                if part.strip().startswith("akhbar "):
                    commands.append(shlex.join(shlex.split(part, comments=True)))
    return commands


def inline_commands(text: str) -> list[str]:
    spans = (" ".join(span.split()) for span in INLINE.findall(FENCE.sub("", text)))
    return [
        s
        for s in spans
        if len(s.split()) > 2 and s.split()[1] in COMMANDS and not re.search(r"[\[|]", s)
    ]


def readme_commands() -> list[tuple[str, str]]:
    found = []
    for name in READMES:
        text = (REPO / name).read_text(encoding="utf-8")
        found += [(name, command) for command in block_commands(text) + inline_commands(text)]
    return found


COMMAND_LINES = readme_commands()


def test_the_readmes_show_commands_of_every_kind():
    shown = {command.split()[1] for _, command in COMMAND_LINES}
    assert {"score", "train", "evaluate", "pretrain", "models"} <= shown, shown


@pytest.mark.parametrize(("readme", "command"), COMMAND_LINES, ids=[c for _, c in COMMAND_LINES])
def test_readme_command_parses(readme: str, command: str):
    _, name, *rest = shlex.split(command)
    assert name in COMMANDS, f"{readme}: unknown subcommand in {command!r}"
    module = importlib.import_module(COMMANDS[name][0])
    try:
        module.parse_args(kebab_flags(rest))
    except SystemExit as exit_:
        if exit_.code != 0 or "--help" not in rest:
            pytest.fail(f"{readme}: `{command}` does not parse (exit {exit_.code})")
