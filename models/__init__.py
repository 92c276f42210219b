"""akhbar.models: everything training and serving must share.

The public API, for notebooks and scripts::

    from akhbar.models import Predictor, load_bundle
    predictor = Predictor(load_bundle("models/default/topic"))
    predictor.topic(["نص الخبر ..."], ["العنوان"])

Names are imported on first use, so ``import akhbar.models.normalize`` stays light.
"""

from importlib import import_module

_EXPORTS = {
    "Bundle": "bundle",
    "BundleError": "bundle",
    "load_bundle": "bundle",
    "save_bundle": "bundle",
    "NormalizerConfig": "normalize",
    "Predictor": "predict",
    "DataError": "reader",
    "read_records": "reader",
    "Sentence": "sentences",
    "split_sentences": "sentences",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'akhbar.models' has no attribute {name!r}")
    return getattr(import_module(f"akhbar.models.{_EXPORTS[name]}"), name)
