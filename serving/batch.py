"""``akhbar score``: score a file of articles in batch, streaming and resumable.

Input is JSON Lines (plain or .gz), CSV or Parquet by extension, or ``-`` for standard
input, read with the foundation's reader in its skip policy: bad records go to
``<output>.rejects.jsonl``. Output is JSON Lines (or Parquet, by extension), one record per
good input record, in the shape ``POST /analyze`` returns.

The scorer itself comes with issue 6 (it shares the service's scoring code from issue 5);
until then this command parses and checks its arguments and says so.
"""

from __future__ import annotations

import argparse
import sys

TASKS = ("topic", "summary", "stance")
ENGINES = ("local", "ray")
OUTPUT_SUFFIXES = (".jsonl", ".json", ".parquet")
MAX_SUMMARY_SENTENCES = 20  # the same bound as the service's summary_sentences


def _tasks(value: str) -> list[str]:
    """Parse ``topic,summary,stance`` (any non-empty subset, any order) into a list."""
    tasks = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if not tasks or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(TASKS)}, got {value!r}"
        )
    return list(dict.fromkeys(tasks))  # drop repeats, keep order


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akhbar score",
        description="Score a file of Arabic news articles (topic, summary, stance) in batch. "
        "Bad records go to OUTPUT.rejects.jsonl with their line and reason; the job goes on.",
    )
    parser.add_argument(
        "--input",
        required=True,
        metavar="PATH",
        help="Articles: .jsonl, .jsonl.gz, .csv or .parquet, or - for standard input.",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="PATH",
        help="Results: .jsonl (or .parquet), one record per good input record. An existing "
        "file is never overwritten: use --resume to continue it.",
    )
    parser.add_argument(
        "--tasks",
        type=_tasks,
        default=list(TASKS),
        metavar="LIST",
        help=f"Comma-separated tasks to run (default: {','.join(TASKS)}).",
    )
    parser.add_argument(
        "--claims-field",
        default="claims",
        metavar="NAME",
        help="Input field with the list of claims for stance (default: claims).",
    )
    parser.add_argument(
        "--id-field",
        default="id",
        metavar="NAME",
        help="Input field with the record id (default: id); records without one get "
        "their line number.",
    )
    parser.add_argument(
        "--summary-sentences",
        type=int,
        default=None,
        metavar="K",
        help=f"Sentences per summary, 1-{MAX_SUMMARY_SENTENCES} "
        "(default: the service's default).",
    )
    parser.add_argument(
        "--summary-max-words",
        type=int,
        default=None,
        metavar="N",
        help="Upper bound on summary words (default: none).",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=32,
        metavar="N",
        help="Articles per model batch and per output chunk (default: 32).",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Continue an interrupted job: keep the ids already in OUTPUT, repair a torn "
        "last line, score the rest. Starts afresh when OUTPUT does not exist yet.",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: this process; ray: a Ray Data job (needs the akhbar[ray] extra). "
        "Default: local.",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="Ray cluster to join, e.g. ray://head:10001 (default: start a local Ray). "
        "Only with --engine ray.",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="Ray scoring actors; each loads the models once (default: 1). "
        "Only with --engine ray.",
    )
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject combinations argparse cannot express; each message names the flag."""
    if args.summary_sentences is not None and not (
        1 <= args.summary_sentences <= MAX_SUMMARY_SENTENCES
    ):
        parser.error(
            f"--summary-sentences must be between 1 and {MAX_SUMMARY_SENTENCES}, "
            f"got {args.summary_sentences}"
        )
    if args.summary_max_words is not None and args.summary_max_words < 1:
        parser.error(f"--summary-max-words must be at least 1, got {args.summary_max_words}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.concurrency is not None and args.concurrency < 1:
        parser.error(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.engine != "ray":
        for flag, value in (("--ray-address", args.ray_address), ("--concurrency", args.concurrency)):
            if value is not None:
                parser.error(f"{flag} needs --engine ray")
    if not args.output.lower().endswith(OUTPUT_SUFFIXES):
        parser.error(
            f"--output must end in {', '.join(OUTPUT_SUFFIXES)}, got {args.output!r}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    print(
        "akhbar score: not implemented yet (issue 6); it shares the service's scoring code "
        "(issue 5).",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
