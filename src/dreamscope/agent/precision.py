"""Which dtype an update computes in: ``run.precision`` = float32 | bfloat16 | auto.

``auto`` takes bfloat16 where the hardware multiplies in it natively (CPUs with AVX512-BF16 or
AMX, GPUs of compute capability 8 and up) and the model is large enough for the products to
dominate (``world_model.deter`` >= ``AUTO_MIN_DETER``), float32 elsewhere: emulated bfloat16 is
slower, and at toy sizes the casts cost more than the products save (measured in
docs/benchmarks_speed.md: the `tiny` update is slower in bfloat16, size1m faster). Under bfloat16 only the matrix products run in bfloat16 (autocast); the
weights, optimiser state, distributions, losses, return normaliser and two-hot targets stay
float32.
"""

from __future__ import annotations

import functools

import torch

PRECISIONS = ("auto", "float32", "bfloat16")
#: The smallest deterministic state (size1m's) at which ``auto`` computes in bfloat16.
AUTO_MIN_DETER = 512


@functools.cache
def native_bfloat16(device: str) -> bool:
    """Whether ``device`` ('cpu', 'cuda', ...) multiplies bfloat16 matrices in hardware."""
    if device == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return False


def compute_dtype(precision: str, device: str, deter: int = AUTO_MIN_DETER) -> torch.dtype:
    """The dtype of an update's matrix products for ``run.precision`` on ``device``, for a model
    whose deterministic state has ``deter`` units."""
    if precision == "auto":
        return torch.bfloat16 if native_bfloat16(device) and deter >= AUTO_MIN_DETER else torch.float32
    return getattr(torch, precision)
