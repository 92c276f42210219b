"""Make any tokenizer apply the project's normalisation itself.

The project's own base carries the normaliser already. A hub tokenizer (AraBERT,
CAMeLBERT) has its own; the project's runs in front of it, so the saved bundle's
tokenizer normalises raw text exactly as training did, with no separate step.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import normalizers
from transformers import PreTrainedTokenizerBase

from akhbar.models.normalize import NormalizerConfig, build_normalizer, normalize

NORMALIZATION_FILE = "akhbar_normalization.json"
PROBE = "أَحْمَدُ إلى ــ المدرسة ٣٤ ۵ https://a.b/c info@a.bc @user\u200b  مدينةٌ"


def stored_normalization(model_dir: str | Path) -> NormalizerConfig:
    """The normalisation a base recorded beside its tokenizer (defaults for hub models)."""
    path = Path(model_dir) / NORMALIZATION_FILE
    return (
        NormalizerConfig.from_dict(json.loads(path.read_text()))
        if path.is_file()
        else NormalizerConfig()
    )


def applies_normalization(tokenizer: PreTrainedTokenizerBase, config: NormalizerConfig) -> bool:
    """True when tokenizing raw text equals tokenizing pre-normalised text (on a probe)."""
    return tokenizer.tokenize(PROBE) == tokenizer.tokenize(normalize(PROBE, config))


def ensure_normalization(
    tokenizer: PreTrainedTokenizerBase, config: NormalizerConfig
) -> PreTrainedTokenizerBase:
    """Prepend the project's normaliser unless the tokenizer already applies it."""
    if applies_normalization(tokenizer, config):
        return tokenizer
    backend = tokenizer.backend_tokenizer
    own = [build_normalizer(config)]
    if backend.normalizer is not None:
        own.append(backend.normalizer)
    backend.normalizer = normalizers.Sequence(own)
    return tokenizer
