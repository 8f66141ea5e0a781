"""Sparse long-context attention for the local transformers backend.

Stable entry points (used by ``sleuth.agent``'s ``hf`` backend):

* :func:`sleuth.kernels.hf.register` — registers ``attn_implementation="sleuth_sparse"`` (attention
  and mask functions) with transformers; call once before ``from_pretrained``/``from_config``.
* :func:`sleuth.kernels.hf.configure` — set block size, ``top_k``, sinks, locals, ``min_sparse_len``.
* :func:`sleuth.kernels.hf.make_cache` — a :class:`SleuthCache` for sparse (optionally offloaded) decode.

Kernels, each beside the plain reference a test compares it to:

* :func:`block_sparse_attention` / :func:`varlen_sparse_attention` (CPU prefill) vs
  :func:`reference.block_sparse_reference` / :func:`reference.chunk_sparse_reference` and
  :func:`reference.dense_attention`;
* :func:`heads.head_policy_attention` (per-head budgets: retrieval heads dense, the others sinks +
  a local window; heads found once per model by :func:`heads.calibrate`) vs
  :func:`heads.head_policy_reference`;
* :func:`decode.sparse_decode_attention` vs dense attention over the kept blocks;
* ``triton_prefill.triton_block_sparse_attention`` (GPU, imported lazily) vs the reference.

See ``docs/kernels.md`` for measured trade-offs.
"""

from .block_sparse import BlockSelection, block_sparse_attention, varlen_sparse_attention
from .config import SparseConfig
from .reference import block_sparse_reference, chunk_sparse_reference, dense_attention

__all__ = [
    "BlockSelection",
    "SparseConfig",
    "block_sparse_attention",
    "varlen_sparse_attention",
    "dense_attention",
    "block_sparse_reference",
    "chunk_sparse_reference",
    "register",
]


def register(config: SparseConfig | dict | None = None) -> str:
    """Shortcut for :func:`sleuth.kernels.hf.register` (imports transformers only when called)."""
    from .hf import register as _register

    return _register(config)
