"""Command-line flags made from a config dataclass, in the style every ``akhbar`` command uses.

One kebab-case flag per field (``max_length`` → ``--max-length``), typed from the field's
annotation, with the field's ``help`` metadata and the default that really applies. (In
run_glue.py ``HfArgumentParser`` does this job; it shows both spellings and only the
dataclass's defaults, where ``akhbar train`` takes its defaults from each task's YAML.)

Flags default to ``argparse.SUPPRESS``, so a parsed namespace holds only what the command
line gave: a caller lays it over the other defaults (a task's YAML) and can tell a flag
that was given from one that was not (``--output-dir`` with several tasks).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from akhbar.models.precision import native_bf16

TRUE, FALSE = ("true", "yes", "t", "y", "1"), ("false", "no", "f", "n", "0")


def flag(name: str) -> str:
    """``max_length`` → ``--max-length``."""
    return "--" + name.replace("_", "-")


def parse_bool(text: str) -> bool:
    """``true``/``false`` (and yes/no, 1/0) for a boolean flag's value."""
    value = text.strip().lower()
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def shown(value: Any) -> str:
    """A default as help shows it: ``none`` for unset, booleans in lower case."""
    if value is None or value == "":
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def add_dataclass_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    defaults: Mapping[str, str] | None = None,
    skip: Iterable[str] = (),
) -> None:
    """Add a flag for every field of ``cls`` but ``skip``.

    ``defaults`` replaces the help's ``default: ...`` text for the fields it names (where the
    real default is not the dataclass's). A field without a default is a required flag; a
    field without ``help`` metadata is a programming error, so every flag is documented.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if "help" not in f.metadata:
            raise TypeError(
                f"{cls.__name__}.{f.name} has no help text; add metadata={{'help': ...}}"
            )
        kind = hints[f.name]
        if isinstance(kind, types.UnionType):  # `str | None`: the flag takes a str
            kind = next(t for t in typing.get_args(kind) if t is not type(None))
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = (
            "required"
            if required
            else f"default: {(defaults or {}).get(f.name) or shown(f.default)}"
        )
        options: dict[str, Any] = {
            "dest": f.name,
            "default": argparse.SUPPRESS,
            "required": required,
            "help": f"{f.metadata['help']} ({default})".replace("%", "%%"),
        }
        if kind is bool:  # `--bf16` alone means true; `--bf16 false` turns it off
            options |= {"type": parse_bool, "nargs": "?", "const": True, "metavar": "true|false"}
        else:
            options["type"] = kind
        parser.add_argument(flag(f.name), **options)


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` that the command line set."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def bf16_field() -> Any:
    """The ``bf16`` setting every training command shares: bf16 autocast only where the CPU
    computes bf16 natively, since emulated bf16 made a fine-tuning step about 10x slower."""
    return dataclasses.field(
        default=native_bf16(),
        metadata={
            "help": "bf16 autocast on the CPU, fp32 master weights; the default is on only where "
            "the CPU computes bf16 natively (AVX512-BF16, AMX): "
            "emulated, a step is tens of times slower."
        },
    )
