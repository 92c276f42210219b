"""The arithmetic an encoder may run in at inference, and how ``auto`` picks one.

No torch import here: the scoring core's configuration checks ``AKHBAR_PRECISION`` with it.

* ``fp32``: as trained;
* ``bf16``: autocast to bfloat16; about 2x faster where the CPU has bf16 instructions
  (AVX512-BF16, AMX), slower than fp32 where it has to emulate them;
* ``int8``: dynamic quantisation of the linear layers (int8 weights, activations
  quantised per batch); about 2x faster on any CPU with AVX2 or VNNI;
* ``onnx-int8``: the encoder on ONNX Runtime, its attention and layer norms fused and its
  linear layers int8 (:mod:`akhbar.models.ort_encoder`; needs the ``onnx`` extra);
* ``auto``: int8 on a CPU with AVX2 (torch's x86 int8 kernels), else bf16 on a CPU with
  native bf16, else fp32. Chosen by ``make bench`` (2026-12-07, 2-core AMD EPYC with AVX-512
  BF16 and VNNI, the shipped models, one run per precision): the service's p50 for one
  median article 76 ms in int8 against 140 ms in bf16 (70 ms onnx-int8, which needs an
  extra), 13.5 against 12.0 articles/s at 16 callers; the accuracy guard lost 0.19 points in
  int8 at worst (0.5 allowed).

A setting is one of :data:`PRECISIONS`; :func:`resolve_precision` turns it into one of
:data:`COMPUTED`, what a :class:`~akhbar.models.predict.Predictor` computes in. The
setting is checked where it is read (:mod:`akhbar.serving.core.config`), the arithmetic
where it is used (the Predictor).

``make bench`` scores every variant on the validation splits of all three tasks against
fp32 (the accuracy guard) and times it.
"""

from __future__ import annotations

from pathlib import Path

COMPUTED = ("fp32", "bf16", "int8", "onnx-int8")
# The int8 precisions: CPU kernels only, with one activation scale per forward pass.
INT8 = ("int8", "onnx-int8")
PRECISIONS = ("auto", *COMPUTED)


def _cpu_flags() -> set[str]:
    """This CPU's feature flags, read from /proc/cpuinfo (empty elsewhere)."""
    try:
        flags = next(
            line
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        )
    except (OSError, StopIteration):
        return set()
    return set(flags.split())


def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware."""
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def fast_int8() -> bool:
    """Whether torch's x86 int8 kernels (fbgemm, which needs AVX2) run on this CPU."""
    return "avx2" in _cpu_flags()


def resolve_precision(precision: str) -> str:
    """``auto`` → ``int8``, ``bf16`` or ``fp32`` for this CPU; any other setting as it is."""
    if precision == "auto":
        if fast_int8():
            return "int8"
        return "bf16" if native_bf16() else "fp32"
    return precision
