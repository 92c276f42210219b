"""``akhbar train TASK[,TASK...]``: fine-tune a base encoder into a model bundle.

Each task's settings come from ``training/configs/TASK.yaml`` (or ``--config FILE``), and
the flags given override them. Several tasks, comma-separated, train one shared encoder
with a head per task into one bundle (the shipped default).
"""

from __future__ import annotations

import argparse
import json
import sys

from akhbar.models.tasks import TASK_KINDS
from akhbar.training.finetune_config import FinetuneConfig, add_finetune_flags, run_configs
from akhbar.training.flags import given

USAGE = "%(prog)s [-h] [TASK[,TASK...]] [--config FILE] [--SETTING VALUE ...]"
DESCRIPTION = (
    "Fine-tune a base encoder into a model bundle. Each task's settings come from "
    "training/configs/TASK.yaml (or --config FILE), and the flags given override them."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="akhbar train", usage=USAGE, description=DESCRIPTION)
    parser.add_argument(
        "tasks",
        nargs="?",
        default="topic",
        metavar="TASK[,TASK...]",
        help=f"{', '.join(TASK_KINDS)}; several, comma-separated, train one shared encoder "
        "with a head each into one bundle (default: topic).",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="YAML file of one task's settings (default: training/configs/TASK.yaml).",
    )
    add_finetune_flags(
        parser.add_argument_group(
            "settings (each defaults to the task's YAML, else the value shown)"
        )
    )
    return parser


def parse_args(argv: list[str]) -> list[FinetuneConfig]:
    """The run's settings, one config per task, without running anything; a bad value or
    flag exits with status 2 and a usage line, as argparse does."""
    parser = build_parser()
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",")]
    if len(set(tasks)) != len(tasks):
        parser.error(f"each task may appear once in a run, got {args.tasks!r}")
    try:
        return run_configs(tasks, given(args, FinetuneConfig), args.config)
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    cfgs = parse_args(sys.argv[1:] if argv is None else argv)
    # Imported here: torch and transformers are not needed for --help or a usage error.
    from akhbar.models.reader import DataError
    from akhbar.training.finetune import CheckpointConflict, run

    try:
        result = run(cfgs)
    except (DataError, CheckpointConflict) as exc:  # bad input: one line, not a traceback
        print(f"akhbar train: {exc}", file=sys.stderr)
        return 2
    if result is not None:  # None: another process of a distributed run writes the bundle
        print(json.dumps(result.metrics, indent=2))
        print(f"bundle written to {result.bundle}", file=sys.stderr)
    return 0
