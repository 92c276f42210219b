"""The encoder on ONNX Runtime, fused and quantised to int8: the ``onnx-int8`` precision.

The bundle's encoder is exported once with ``torch.onnx`` (dynamo), fused for ONNX Runtime by
onnxscript's rewriter (one attention node per layer, skip-layer-norm, bias-GELU) and quantised
(``quantize_dynamic``: int8 weights, activations quantised per batch). The result is cached
under ``$AKHBAR_CACHE`` (default ``~/.cache/akhbar``), keyed by the encoder's weights and the
library versions, so a worker that starts again loads it instead of exporting. The task heads
stay in torch, in fp32: a few small matrices on the pooled states.

Needs the ``onnx`` extra (``onnx`` and ``onnxscript`` export, ``onnxruntime`` runs).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from akhbar.extras import require
from akhbar.models.bundle import WEIGHTS_FILE, Bundle
from akhbar.models.exports import INPUTS, export_graph

CACHE_ENV = "AKHBAR_CACHE"


class _Encoder(torch.nn.Module):
    """Token ids → last hidden states; what the graph computes."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        return self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path("~", ".cache", "akhbar")).expanduser() / "onnx"


def _cache_key(bundle: Bundle, ort_version: str) -> str:
    """The encoder's weights and the versions that shape the graph."""
    digest = hashlib.sha256()
    with open(bundle.path / WEIGHTS_FILE, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    digest.update(f"torch {torch.__version__} onnxruntime {ort_version}".encode())
    return digest.hexdigest()[:20]


def build_graph(bundle: Bundle, target: Path) -> Path:
    """Export, fuse and quantise the encoder of ``bundle`` into ``target`` (one .onnx file)."""
    require("onnxscript", "AKHBAR_PRECISION=onnx-int8")
    import onnx_ir
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    example = bundle.tokenizer(["نص", "نص آخر أطول"], padding=True, return_tensors="pt")
    with tempfile.TemporaryDirectory(prefix="akhbar-onnx-") as tmp:
        exported, fused = Path(tmp) / "encoder.onnx", Path(tmp) / "fused.onnx"
        export_graph(_Encoder(bundle.model.encoder), example, exported, "hidden")
        # onnxscript's fusions match what the dynamo exporter writes (ONNX Runtime's own BERT
        # optimiser fused the layer norms and GELU but no attention here).
        graph, _ = optimize_for_ort(onnx_ir.load(str(exported)))
        onnx_ir.save(graph, str(fused))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        quantize_dynamic(str(fused), str(partial), weight_type=QuantType.QInt8)
        partial.replace(target)  # whole or absent: a worker never loads half a graph
    return target


class OrtEncoder:
    """Runs a bundle's encoder with ONNX Runtime (fused, int8), on ``threads`` threads."""

    def __init__(self, bundle: Bundle, threads: int) -> None:
        ort = require("onnxruntime", "AKHBAR_PRECISION=onnx-int8")
        path = cache_dir() / f"{_cache_key(bundle, ort.__version__)}-int8.onnx"
        if not path.is_file():
            build_graph(bundle, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        feeds = {
            name: np.ascontiguousarray(t.numpy(), dtype=np.int64)
            for name, t in zip(INPUTS, (input_ids, attention_mask, token_type_ids))
        }
        (hidden,) = self.session.run(["hidden"], feeds)
        return torch.from_numpy(hidden)
