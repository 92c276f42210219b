"""Optional extras: which ``pip install 'akhbar[EXTRA]'`` brings a module, and the one line a
command prints when that module is missing (instead of a traceback).

``pip install akhbar`` serves and scores; the ``train`` extra adds training and evaluation;
``ray`` the Ray engine of ``akhbar score``; ``onnx`` the ONNX export
(``akhbar models export --format onnx``). The packages themselves are listed in
pyproject.toml's ``[project.optional-dependencies]``; a test checks this table against it.

This module imports nothing of akhbar's, so every part of the package may use it.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

# Top-level import name -> the extra that installs it (import names: rouge-score is rouge_score).
EXTRA_OF_MODULE: dict[str, str] = {
    "datasets": "train",
    "accelerate": "train",
    "rouge_score": "train",
    "tensorboard": "train",
    "matplotlib": "train",
    "gensim": "train",
    "ray": "ray",
    "onnx": "onnx",
    "onnxscript": "onnx",
    "onnxruntime": "onnx",
}


class MissingExtra(ModuleNotFoundError):
    """A module of an optional extra is not installed; the message names the pip command."""

    def __init__(self, message: str, *, name: str, extra: str) -> None:
        super().__init__(message, name=name)
        self.extra = extra


def extra_for(module_name: str | None) -> str | None:
    """The extra that installs ``module_name`` (or a submodule of it); None when none does."""
    return EXTRA_OF_MODULE.get((module_name or "").partition(".")[0])


def hint(for_what: str, module_name: str) -> str:
    """``akhbar train needs the 'train' extra (missing module 'rouge_score'): pip install
    'akhbar[train]'`` — one line, for a module of an extra."""
    top = module_name.partition(".")[0]
    extra = EXTRA_OF_MODULE[top]
    return (
        f"{for_what} needs the '{extra}' extra (missing module '{top}'): "
        f"pip install 'akhbar[{extra}]'"
    )


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported, found without importing them."""
    return [
        name
        for name, of in EXTRA_OF_MODULE.items()
        if of == extra and importlib.util.find_spec(name) is None
    ]


def require(module_name: str, for_what: str) -> ModuleType:
    """Import ``module_name``; when it (or a module of another extra it imports) is missing,
    raise :class:`MissingExtra` whose message says which extra to install. Other import
    errors propagate unchanged."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        extra = extra_for(error.name)
        if extra is None:
            raise
        raise MissingExtra(hint(for_what, error.name), name=error.name, extra=extra) from None
