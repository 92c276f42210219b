"""Load a base encoder by hub id or local directory, with one clear error when it fails.

Safetensors only, and ``trust_remote_code`` is never set: a base model is data, not code.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


class BaseModelError(ValueError):
    """The base model could not be loaded; the message names it and says what to do."""


def load_base(name_or_path: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Return (encoder, tokenizer) for a local directory or a hub id."""
    path = Path(name_or_path)
    local = path.exists() or name_or_path.startswith((".", "/", "~"))
    if local and not path.is_dir():
        raise BaseModelError(f"base model {name_or_path!r} does not exist or is not a directory")
    if not local and not _HUB_ID.match(name_or_path):
        raise BaseModelError(
            f"base model {name_or_path!r} is neither a local directory nor a hub id like owner/name"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        # fp32 always: shipped weights are fp16 on disk, and training needs fp32 masters.
        encoder = AutoModel.from_pretrained(name_or_path, use_safetensors=True, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        if local:
            raise BaseModelError(
                f"base model {name_or_path!r} cannot be loaded: {str(exc).splitlines()[0]} "
                "(it needs config.json, model.safetensors and tokenizer files)"
            ) from None
        raise BaseModelError(
            f"base model {name_or_path!r} cannot be loaded from the model hub (it is unreachable "
            "or has no such model with safetensors weights); download it elsewhere and pass its "
            "local directory with --base-model PATH"
        ) from None
    return encoder, tokenizer
