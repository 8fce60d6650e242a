"""Mixed precision by what the hardware does fast: bf16 on CPUs with native bf16, fp16 on CUDA, else fp32.

bf16 autocast about doubles a DynUNet step on CPUs with AVX-512 BF16 or AMX; on a CPU without them
(AVX2 only, as some AMD EPYC machines here) the same bf16 convolution ran about 250x slower than in
float32 (10 s against 0.04 s for one 16-channel 64^3 convolution, timed once by hand), so there float32 is the fast path.
"""

from __future__ import annotations

import torch


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX tiles)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The autocast dtype for ``device_type`` ("cpu", "cuda"), or None where float32 is faster."""
    if device_type == "cuda":
        return torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else None


def lightning_precision(device_type: str) -> str:
    """Lightning's ``precision`` for ``device_type``: "16-mixed", "bf16-mixed" or "32-true"."""
    dtype = autocast_dtype(device_type)
    return {torch.float16: "16-mixed", torch.bfloat16: "bf16-mixed", None: "32-true"}[dtype]
