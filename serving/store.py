"""``akhbar models``: list, export, import and promote model bundles.

Bundles live in the BentoML model store (tags ``akhbar-<task>``, or one tag for a
shared-encoder bundle). ``promote TAG`` makes a bundle the one the service and the batch
scorer load by default, with no code change.

The implementation comes with issue 4; until then this command parses its arguments and
says so.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akhbar models",
        description="List, export, import and promote akhbar model bundles "
        "(BentoML model store).",
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    sub.add_parser(
        "list",
        help="Show the bundles in the store with their tasks and metrics.",
        description="Show the bundles in the store with their tasks and metrics; "
        "the promoted ones are marked.",
    )

    export = sub.add_parser(
        "export",
        help="Copy a bundle from the store to a directory.",
        description="Copy a bundle from the store to a directory (the bundle format).",
    )
    export.add_argument("tag", metavar="TAG", help="Model tag, e.g. akhbar-topic:latest.")
    export.add_argument("directory", metavar="DIR", help="Directory to write the bundle to.")

    import_ = sub.add_parser(
        "import",
        help="Add a bundle directory to the store.",
        description="Validate a bundle directory and add it to the store; prints its tag.",
    )
    import_.add_argument("directory", metavar="DIR", help="Bundle directory to import.")

    promote = sub.add_parser(
        "promote",
        help="Make a bundle the default for the service and the batch scorer.",
        description="Make a bundle the one the service and the batch scorer load by default.",
    )
    promote.add_argument("tag", metavar="TAG", help="Model tag to promote.")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    print(f"akhbar models {args.action}: not implemented yet (issue 4).", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
