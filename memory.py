"""How this process's C heap gives memory back to the operating system (glibc only).

Two glibc behaviours kept indexing's resident size far above what it uses:

- **The mmap threshold moves up.** glibc serves a large block (≥ 128 KB) with its own mmap and
  unmaps it when freed, but after freeing one it raises that threshold to the block's size (up
  to 32 MB), so later blocks of that size come from the heap, where freed memory is kept and
  fragments. onnxruntime's activations are such blocks: measured on one 32 x 128 batch of the
  embedding model, the peak was 642 MB above the loaded model with the moving threshold and 220
  MB with it fixed at 1 MB, and the model then sat 115 MB higher instead of 8 MB.
  :func:`bound_heap` fixes it at :data:`MMAP_THRESHOLD` (which also stops the moving). Inside
  :func:`unbounded_heap` (the embedder's batches, the readers) it is lifted again: mapping each
  block afresh cost ~20% of embedding time and ~16% of OCR time, and a trim when they are done
  returns most of it. The bound holds for NER and storage.
- **Freed heap stays mapped.** What onnxruntime frees after loading the model and what spaCy's
  batches free stays in the heap; :func:`trim_heap` returns it.

Elsewhere (musl, macOS, Windows) these are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from contextlib import contextmanager
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


_inside = 0
_inside_lock = threading.Lock()


@contextmanager
def unbounded_heap():
    """Large blocks come from the heap while inside (glibc's fastest), then the threshold is
    bounded again and the freed pages returned. For onnxruntime's batches: mapping every 1-6 MB
    activation afresh cost ~20% of embedding time in page faults (593 paragraphs: 4.34 s vs
    3.66 s), while one trim after all batches gives back what they left; with batches of 8 x 64
    pieces the embedding stage of a 5 MB text stays below the later stages' peak."""
    global _inside
    libc = _glibc()
    with _inside_lock:
        _inside += 1
        if libc is not None and _inside == 1 and bound_heap():
            libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    try:
        yield
    finally:
        with _inside_lock:
            _inside -= 1
            if libc is not None and _inside == 0 and bound_heap():
                libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                libc.malloc_trim(0)


def trim_heap() -> bool:
    """Return free heap pages to the OS; True when the C library can (glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
