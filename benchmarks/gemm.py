"""Stage ``gemm``: the machine's sustained matrix-multiply rate, the compute limit.

Large square products in torch with a service worker's torch threads (resolved and applied
as the worker does, :func:`common.service_settings`): fp32
(``torch.matmul`` of float32), bf16 (of bfloat16 tensors; oneDNN uses AVX512-BF16 where the
CPU has it) and int8 (``torch._int_mm``, int8 × int8 → int32, where this torch build
supports it on CPU). Each runs back to back for ``gemm_seconds`` after one untimed call;
the rate is ``2·n³`` FLOPs (or integer ops) per product over the median product time.
Median, not best: this is the rate the machine sustains, not a lucky burst.

The same is timed at the served encoder's own feed-forward shape, (4096 tokens × h) ·
(h × i) with its hidden size h and feed-forward size i (256 and 1024 for the shipped base),
for fp32 and bf16: how much of the large-GEMM limit a model this narrow can reach at all,
which the report shows beside the fraction of the limit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import log, read_json, service_settings, stage_args, write_json  # noqa: E402

ENCODER_TOKENS = 4096  # tokens in one batch of 16 windows of 256


def rate(dtype: str, n: int, seconds: float, shape: tuple[int, int, int] | None = None) -> dict:
    """GFLOP/s (GOP/s for int8) of ``n × n`` products (or ``(m × k) · (k × p)`` for ``shape``)
    sustained for ``seconds``."""
    torch.manual_seed(0)
    m, k, p = shape or (n, n, n)
    if dtype == "int8":
        if not hasattr(torch, "_int_mm"):
            return {"available": False, "note": "torch._int_mm is missing in this torch build"}
        a = torch.randint(-128, 128, (m, k), dtype=torch.int8)
        b = torch.randint(-128, 128, (k, p), dtype=torch.int8)

        def product():
            return torch._int_mm(a, b)
    else:
        kind = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
        a, b = torch.randn(m, k).to(kind), torch.randn(k, p).to(kind)

        def product():
            return torch.matmul(a, b)

    try:
        product()  # first call: allocation, kernel selection
    except RuntimeError as exc:
        return {"available": False, "note": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        start = time.perf_counter()
        product()
        times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    flops = 2 * m * k * p
    return {
        "available": True,
        "shape": [m, k, p],
        "products": len(times),
        "median_s": round(median, 5),
        "gflops": round(flops / median / 1e9, 1),
        "best_gflops": round(flops / times[0] / 1e9, 1),
    }


def main() -> int:
    args = stage_args(__doc__.split("\n\n")[0])
    config = read_json(args.config)
    n, seconds = config["gemm_size"], config["gemm_seconds"]
    service_settings(config.get("server_env", {})).runtime().apply()
    result = {"threads": torch.get_num_threads(), "size": n, "seconds_each": seconds}
    with torch.inference_mode():
        for dtype in ("fp32", "bf16", "int8"):
            result[dtype] = rate(dtype, n, seconds)
            log(
                "gemm", f"{dtype}: {result[dtype].get('gflops', result[dtype].get('note'))} GFLOP/s"
            )
        encoder = read_json(Path(config["models"]["topic"]["path"]) / "config.json")
        shape = (ENCODER_TOKENS, encoder["hidden_size"], encoder["intermediate_size"])
        result["encoder_shape"] = {
            dtype: rate(dtype, n, seconds, shape) for dtype in ("fp32", "bf16")
        }
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
