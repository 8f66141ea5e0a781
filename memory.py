"""How this process's C heap gives memory back to the operating system (glibc only).

Two glibc behaviours kept indexing's resident size far above what it uses:

- **The mmap threshold moves up.** glibc serves a large block (≥ 128 KB) with its own mmap and
  unmaps it when freed, but after freeing one it raises that threshold to the block's size (up
  to 32 MB), so later blocks of that size come from the heap, where freed memory is kept and
  fragments: measured on one 32 x 128 batch of the embedding model, the peak was 642 MB above
  the loaded model with the moving threshold and 220 MB with it fixed at 1 MB. Fixing it costs
  speed where native code allocates large blocks at a high rate (every block mapped afresh:
  ~20% of embedding time, ~16% of OCR time), so :func:`bounded_heap` fixes it only around NER
  and storage, whose batches and rows are what a large file adds; the embedder and the readers
  run with glibc's own threshold and are followed by a trim.
- **Freed heap stays mapped.** What onnxruntime frees after loading the model and what the
  readers and the embedder's batches free stays in the heap; :func:`trim_heap` returns it.

Elsewhere (musl, macOS, Windows) these are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from contextlib import contextmanager
from functools import lru_cache

#: blocks at least this large get their own mapping, returned to the OS when freed (inside
#: :func:`bounded_heap`); outside, glibc's own threshold, as grown by then
MMAP_THRESHOLD = 1 << 20
UNBOUNDED = 32 << 20  # glibc's ceiling for its moving threshold: where a long run's has grown to
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


_inside = 0
_inside_lock = threading.Lock()


@contextmanager
def bounded_heap():
    """Blocks of MMAP_THRESHOLD or more get their own mapping while inside (NER and storage:
    their freed batches and rows go straight back to the OS); on leaving, the threshold is lifted
    to UNBOUNDED and free pages are returned. Nests; threads share the setting."""
    global _inside
    libc = _glibc()
    with _inside_lock:
        _inside += 1
        if libc is not None and _inside == 1:
            libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    try:
        yield
    finally:
        with _inside_lock:
            _inside -= 1
            if libc is not None and _inside == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, UNBOUNDED)
                libc.malloc_trim(0)


def trim_heap() -> bool:
    """Return free heap pages to the OS; True when the C library can (glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
