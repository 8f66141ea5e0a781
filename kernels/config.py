"""Settings shared by the prefill kernel, the decode cache and the transformers integration."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


#: keys below which attention runs dense unless ``min_sparse_len`` says otherwise: every length,
#: since no sparse budget kept accuracy on real weights. SmolLM2-135M at 8K: 4,096 of 8,192 keys
#: cost 2-3% in perplexity and left at most 2 of 8 needle answers equal to dense's, whatever the
#: gate or local window. Qwen2.5-Coder-1.5B at 16K: the earlier default (quest gate, 4,096 keys)
#: found 5 of 6 needles against dense's 6 and cost 6.5% in perplexity, and on the CPU it was
#: neither faster nor smaller than SDPA (docs/kernels.md). Sparse attention is opt-in: set
#: ``min_sparse_len`` (``SLEUTH_SPARSE_FROM`` for ``--llm hf``).
NEVER = 2**62
CPU_MIN_SPARSE_LEN = NEVER
#: the same on a CUDA device, where the sparse prefill is faster than SDPA only from ~32K keys (an
#: H200, bfloat16, Qwen2.5-1.5B's shapes: 0.85x at 16K, 1.10x at 32K through the whole model)
CUDA_MIN_SPARSE_LEN = NEVER


@dataclass
class SparseConfig:
    """How much each query looks at.

    ``top_k`` counts *earlier* key blocks per query block; the forced ``n_sink`` first blocks and
    ``n_local`` most recent blocks are part of those ``top_k`` (the gate fills the rest), and the
    query's own block is always added on top. So each query sees at most ``(top_k + 1) * block_size``
    keys, and with ``top_k >= n_blocks`` the result equals dense causal attention.
    """

    block_size: int = 128
    top_k: int = 31
    n_sink: int = 1
    n_local: int = 1
    #: below this many keys the attention runs dense (SDPA); ``None`` (the default) means
    #: CPU_MIN_SPARSE_LEN on the CPU and CUDA_MIN_SPARSE_LEN on a CUDA device (:meth:`dense_below`):
    #: dense at every length. An explicit number applies everywhere (0: always sparse, as the
    #: benchmarks use it; 32768 where a GPU gets faster).
    min_sparse_len: int | None = None
    #: "block" (fixed blocks) or "varlen" (variable chunks, DHSA-style, sqrt(len) pooling).
    mode: str = "block"
    #: block-mode prefill gate: "quest" (per-row key min/max bound; perplexity lower than or equal to
    #: "mean" at every budget measured on real weights, docs/kernels.md), "mean" (MoBA-style mean keys)
    #: or "window" (no gate: the ``n_sink`` first and ``top_k - n_sink`` latest blocks, StreamingLLM's
    #: pattern; what the non-retrieval heads of a ``head_budgets`` policy read).
    gate: str = "quest"
    #: varlen mode: chunk lengths chosen between these by key-similarity change points.
    min_chunk: int = 64
    max_chunk: int = 256
    #: block-mode prefill: "auto" (Triton for bfloat16/float16 on a CUDA device when triton is
    #: installed and the block size is a power of two in [16, 128], else torch), "torch"
    #: (block_sparse.py, any device) or "triton" (triton_prefill.py, CUDA; same selection, compared
    #: with the reference by tests/test_kernels_triton.py; ~6x faster than the torch path on an
    #: H200 at 32K in bfloat16, docs/kernels.md).
    prefill_backend: str = "auto"
    #: decode block summaries: "mean" (mean keys) or "quest" (element-wise min/max keys).
    decode_gate: str = "quest"
    #: query blocks processed per batched matmul; bounds the working set to
    #: q_tile * (top_k + 1) * block_size keys per kv head.
    q_tile: int = 8
    #: per-head policy (``heads.py``): ``head_budgets[layer][query head]`` is the number of earlier
    #: key blocks that head reads, ``-1`` for all of them (a retrieval head, dense); a head with a
    #: budget reads the ``min(n_sink, budget)`` first blocks and the latest others (sinks + local
    #: window, no gate), plus its own block. ``None`` (the default), and layers past the list's end,
    #: keep the uniform ``top_k`` / ``gate`` settings above, so older configs mean what they meant.
    head_budgets: list[list[int]] | None = None

    def __post_init__(self) -> None:
        if self.min_sparse_len is not None and self.min_sparse_len < 0:
            raise ValueError("kernels/config.py: min_sparse_len must be >= 0 (or None for the device's default)")
        if self.block_size < 1 or self.top_k < 0 or self.n_sink < 0 or self.n_local < 0:
            raise ValueError("kernels/config.py: block_size must be >= 1 and top_k, n_sink, n_local >= 0")
        if self.n_sink + self.n_local > self.top_k:
            raise ValueError(
                f"kernels/config.py: n_sink + n_local ({self.n_sink + self.n_local}) exceeds top_k ({self.top_k})"
            )
        if self.mode not in ("block", "varlen"):
            raise ValueError(f"kernels/config.py: mode must be 'block' or 'varlen', got {self.mode!r}")
        if self.gate not in ("mean", "quest", "window"):
            raise ValueError(f"kernels/config.py: gate must be 'mean', 'quest' or 'window', got {self.gate!r}")
        if self.prefill_backend not in ("auto", "torch", "triton"):
            raise ValueError(
                f"kernels/config.py: prefill_backend must be 'auto', 'torch' or 'triton', got {self.prefill_backend!r}"
            )
        if self.decode_gate not in ("mean", "quest"):
            raise ValueError(f"kernels/config.py: decode_gate must be 'mean' or 'quest', got {self.decode_gate!r}")
        if not 1 <= self.min_chunk <= self.max_chunk:
            raise ValueError("kernels/config.py: need 1 <= min_chunk <= max_chunk")
        if self.head_budgets is not None:
            # lists, not tuples: the settings live on a model config as JSON
            self.head_budgets = [[int(x) for x in layer] for layer in self.head_budgets]
            if any(x < -1 for layer in self.head_budgets for x in layer):
                raise ValueError("kernels/config.py: head_budgets entries must be -1 (dense) or >= 0 key blocks")

    def budgets_for(self, layer_idx: int | None) -> list[int] | None:
        """The per-head budgets of layer ``layer_idx``, or ``None`` where the uniform settings apply."""
        if self.head_budgets is None or layer_idx is None or not 0 <= layer_idx < len(self.head_budgets):
            return None
        return self.head_budgets[layer_idx]

    def dense_below(self, device_type: str = "cpu") -> int:
        """Keys below which attention on ``device_type`` ("cpu", "cuda", …) runs dense."""
        if self.min_sparse_len is not None:
            return self.min_sparse_len
        return CUDA_MIN_SPARSE_LEN if device_type == "cuda" else CPU_MIN_SPARSE_LEN

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_any(cls, value: "SparseConfig | dict[str, Any] | None") -> "SparseConfig":
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"kernels/config.py: unknown sparse attention settings {sorted(unknown)}")
        return cls(**value)
