"""Which dtype an update computes in: ``run.precision`` = float32 | bfloat16 | auto.

``auto`` takes bfloat16 where the hardware multiplies in it natively (CPUs with AVX512-BF16 or
AMX, GPUs of compute capability 8 and up) and float32 elsewhere, where bfloat16 would be
emulated and slower. Under bfloat16 only the matrix products run in bfloat16 (autocast); the
weights, optimiser state, distributions, losses, return normaliser and two-hot targets stay
float32.
"""

from __future__ import annotations

import functools

import torch

PRECISIONS = ("auto", "float32", "bfloat16")


@functools.cache
def native_bfloat16(device: str) -> bool:
    """Whether ``device`` ('cpu', 'cuda', ...) multiplies bfloat16 matrices in hardware."""
    if device == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return False


def compute_dtype(precision: str, device: str) -> torch.dtype:
    """The dtype of an update's matrix products for ``run.precision`` on ``device``."""
    if precision == "auto":
        return torch.bfloat16 if native_bfloat16(device) else torch.float32
    return getattr(torch, precision)
