"""The ``akhbar`` command: one entry point, one module per subcommand.

Each subcommand module owns its argument parser (``main(argv) -> exit status``) and is
imported only when called, so ``akhbar --help`` stays fast and ``serve`` never loads
training code.

One style for every subcommand: flags are kebab-case (``--output-dir``), and the snake_case
spelling (``--output_dir``) is accepted as an alias without showing in the help, because
:func:`kebab_flags` rewrites it before the subcommand parses its arguments.

A command whose optional extra is not installed (``train``: pretrain, train, evaluate; ``ray``:
``score --engine ray``) prints one line naming the ``pip install`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from akhbar import __version__, extras

# name -> (module with main(argv), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "pretrain": (
        "akhbar.training.pretrain",
        "Train the tokenizer and pretrain the small Arabic BERT.",
    ),
    "train": (
        "akhbar.training.train",
        "Fine-tune a task model (topic, stance, summary) into a bundle.",
    ),
    "evaluate": (
        "akhbar.training.evaluate",
        "Score a bundle on a test set against baselines; write a report.",
    ),
    "score": ("akhbar.serving.batch.score", "Score a file of articles in batch (local or Ray)."),
    "serve": ("akhbar.serving.http.serve", "Start the HTTP service (BentoML) on port 3000."),
    "models": ("akhbar.serving.core.store", "List, import, export and promote model bundles."),
}
# Commands that need an optional extra (akhbar/extras.py): checked before they import anything,
# so a missing package is named at once rather than after the data is loaded.
COMMAND_EXTRAS: dict[str, str] = {"pretrain": "train", "train": "train", "evaluate": "train"}
HELP_FLAGS = ("-h", "--help")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akhbar",
        description="Score Arabic news: topic, stance toward claims, extractive summary.",
        epilog="Run 'akhbar COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"akhbar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        # Options belong to the subcommand's own parser; everything after the name goes there.
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def kebab_flags(argv: list[str]) -> list[str]:
    """``--output_dir x`` → ``--output-dir x`` (and ``--a_b=1`` → ``--a-b=1``), for every long
    flag before a lone ``--``; values and everything after ``--`` are left as they are."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        if arg.startswith("--"):
            name, sep, value = arg.partition("=")
            arg = "--" + name[2:].replace("_", "-") + sep + value
        out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv or argv[0].startswith("-"):
        parser.parse_args(argv)  # prints help / version, or an error naming the problem
        return 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
    what = f"akhbar {name}"
    extra = COMMAND_EXTRAS.get(name)
    # --help needs no extra; only what the command would import does.
    absent = extras.missing(extra) if extra and not set(HELP_FLAGS) & set(rest) else []
    if absent:
        print(extras.hint(what, absent[0]), file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
        return int(module.main(kebab_flags(rest)) or 0)
    except ModuleNotFoundError as error:  # a package of an extra, imported when first needed
        if extras.extra_for(error.name) is None:
            raise
        print(extras.hint(what, error.name), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
