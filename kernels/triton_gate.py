"""The quest gate's block scores as two Triton GPU kernels.

:func:`gating.quest_block_scores` (the plain reference, used on the CPU) materialises the bound of
every query row against every key block, ``[rows, blocks]`` floats in chunks, and on a GPU at 128K
tokens spends several times longer choosing blocks than the Triton prefill spends attending to
them. Here nothing of that size is stored: for one query block and one kv head,

1. ``_row_lse``: each row's ``logsumexp`` over the earlier blocks of ``scale * UB`` (an online
   log-sum-exp over tiles of blocks), one float per row;
2. ``_block_max``: per tile of key blocks, ``max over valid rows of (scale * UB - lse)`` — the
   row's log-softmax, maximised over rows — written straight into the ``[n_q, n_k]`` scores.

``UB = relu(q) . kmax + min(q, 0) . kmin`` as two ``tl.dot`` calls that accumulate in float32.
For bfloat16/float16 models the inputs are exact in their own dtype (``kmin``/``kmax`` are keys,
``relu(q)`` is ``q`` or 0), so the scores match the reference up to float32 summation order;
float32 inputs use IEEE dots. ``triton`` is imported on first use.
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def _kernels():
    from . import triton_gate_jit

    return triton_gate_jit._row_lse, triton_gate_jit._block_max


def quest_block_scores_triton(
    q_rows: torch.Tensor,
    kmin: torch.Tensor,
    kmax: torch.Tensor,
    first: int,
    scale: float,
    row_valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """GPU twin of :func:`gating.quest_block_scores` (same result) for query blocks with the
    consecutive absolute ids ``first, first + 1, …`` (the reference takes them as a tensor)."""
    b, h, nq, r, d = q_rows.shape
    nk = kmin.shape[2]
    out = torch.empty(b, h, nq, nk, device=q_rows.device, dtype=torch.float32)
    if nq == 0:
        return out
    rows = q_rows.contiguous()
    dt = rows.dtype if rows.dtype in (torch.float16, torch.bfloat16) else torch.float32
    rows = rows.to(dt)
    kmin_c, kmax_c = kmin.to(dt).contiguous(), kmax.to(dt).contiguous()
    valid = (row_valid if row_valid is not None else torch.ones(nq, r, dtype=torch.bool, device=rows.device))
    valid = valid.to(device=rows.device, dtype=torch.int8).contiguous()
    lse = torch.empty(b, h, nq, r, device=rows.device, dtype=torch.float32)
    d_pad = max(16, 1 << (d - 1).bit_length())
    r_t, k_t = 64, 64
    precision = "ieee" if dt == torch.float32 else "tf32"
    row_lse, block_max = _kernels()
    common = (scale, r, nk, d, first, h)
    rs = (rows.stride(0), rows.stride(1), rows.stride(2), rows.stride(3))
    ks = (kmin_c.stride(0), kmin_c.stride(1), kmin_c.stride(2))
    ls = (lse.stride(0), lse.stride(1), lse.stride(2))
    row_lse[(nq, b * h, -(-r // r_t))](rows, kmin_c, kmax_c, lse, *common, *rs, *ks, *ls,
                                       R_T=r_t, K_T=k_t, D_PAD=d_pad, PRECISION=precision)
    block_max[(nq, b * h, -(-nk // k_t))](rows, valid, kmin_c, kmax_c, lse, out, *common, *rs, valid.stride(0), *ks, *ls,
                                          out.stride(0), out.stride(1), out.stride(2),
                                          R_T=r_t, K_T=k_t, D_PAD=d_pad, PRECISION=precision)
    return out
