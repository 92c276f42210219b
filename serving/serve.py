"""``akhbar serve``: start the HTTP service (BentoML) that scores Arabic news articles.

Host: ``127.0.0.1`` by default, so a plain ``make serve`` never exposes an unauthenticated
API to the network. Pass ``--host 0.0.0.0`` to accept other machines (and set
``AKHBAR_API_TOKEN``). A Bento built with ``bentoml build`` and run with ``bentoml serve`` or
``bentoml containerize`` binds 0.0.0.0 on its own; this flag does not affect it.

The service itself comes with issue 5; until then this command parses its arguments and
says what is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_PORT = 3000
DEFAULT_HOST = "127.0.0.1"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akhbar serve",
        description="Start the HTTP service that scores Arabic news articles "
        "(topic, stance, extractive summary).",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default: {DEFAULT_PORT})."
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"Address to bind (default: {DEFAULT_HOST}, this machine only). Use 0.0.0.0 to "
        "accept other machines, and set AKHBAR_API_TOKEN when you do.",
    )
    return parser


TASK_BUNDLES = ("topic", "stance", "summary")


def _default_models_present() -> bool:
    """True when models/default/ holds the shipped task bundles (issue 4).

    ``serving/`` and ``models/`` are siblings both in the repository and installed
    (``akhbar/serving``, ``akhbar/models``), so one relative path serves both layouts.
    """
    default = Path(__file__).resolve().parent.parent / "models" / "default"
    return all((default / task / "akhbar.json").is_file() for task in TASK_BUNDLES)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")

    if not _default_models_present():
        print(
            "akhbar serve: the default task models (models/default/topic, stance, summary) are not "
            "built yet; build them with `make models` (issue 4) or, "
            "once the service exists (issue 5), point AKHBAR_TOPIC_MODEL, AKHBAR_STANCE_MODEL "
            "and AKHBAR_SUMMARY_MODEL at bundles.",
            file=sys.stderr,
        )
    else:
        print("akhbar serve: not implemented yet (issue 5).", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
