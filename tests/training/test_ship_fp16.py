"""``ship_fp16``: the shipped copy stores fp16 weights, its config says so, and akhbar still
loads it in fp32 with the same answers."""

from __future__ import annotations

import json

import torch
from safetensors import safe_open

from akhbar.models.bundle import load_bundle
from akhbar.training.ship_fp16 import ship_fp16


def test_shipped_copy_is_fp16_says_so_and_loads_in_fp32(tiny_bundle, tmp_path):
    shipped = ship_fp16(tiny_bundle, tmp_path / "shipped")
    assert json.loads((shipped / "config.json").read_text())["dtype"] == "float16"
    with safe_open(str(shipped / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}

    original, copy = load_bundle(tiny_bundle).model, load_bundle(shipped).model
    assert {p.dtype for p in copy.parameters()} == {torch.float32}
    ids = torch.tensor([[2, 40, 41, 42, 3]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        a, b = original.encode(ids, mask), copy.encode(ids, mask)
    assert torch.allclose(a, b, atol=1e-2)
