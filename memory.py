"""How this process's C heap gives memory back to the operating system (glibc only).

Two glibc behaviours kept indexing's resident size far above what it uses:

- **The mmap threshold moves up.** glibc serves a large block (≥ 128 KB) with its own mmap and
  unmaps it when freed, but after freeing one it raises that threshold to the block's size (up
  to 32 MB), so later blocks of that size come from the heap, where freed memory is kept and
  fragments. onnxruntime's activations are such blocks (a few MB to tens of MB per operator):
  measured on one 32 x 128 batch of the embedding model, the peak was 642 MB above the loaded
  model with the moving threshold and 220 MB with it fixed at 1 MB, and the model then sat 115
  MB higher instead of 8 MB. :func:`bound_heap` fixes it at :data:`MMAP_THRESHOLD` (which also
  stops the moving): embedding speed unchanged within noise (benchmarks/bench_memory.py).
- **Freed heap stays mapped.** What onnxruntime frees after folding the model's weights at load
  (~60 MB) and what spaCy's batches free stays in the heap; :func:`trim_heap` returns it.

Elsewhere (musl, macOS, Windows) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache

#: blocks at least this large get their own mapping, returned to the OS when freed
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


@lru_cache(maxsize=1)
def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):  # not glibc
        return None
    return libc


@lru_cache(maxsize=1)
def bound_heap() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD (once per process); True when done."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def trim_heap() -> bool:
    """Return free heap pages to the OS; True when the C library can (glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
