"""Whether the GPU paths can run here: one check, imported by the modules that choose a path."""

from __future__ import annotations

import functools

import torch


@functools.cache
def triton_available() -> bool:
    """True when a CUDA device and triton are both present."""
    if not torch.cuda.is_available():
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
