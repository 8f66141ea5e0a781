"""Block-sparse prefill attention as a Triton GPU kernel.

``tests/test_kernels_triton.py`` and ``tests/test_kernels_cuda.py`` compare it with
``reference.block_sparse_reference`` (and whole models with SDPA) when CUDA and triton are
present; they passed on an H200 (docs/kernels.md, section GPU).

The block selection comes from :func:`block_sparse.plan_blocks` (the same gate as the CPU
kernel) and is turned into a table ``[b, h_kv, n_q_blocks, top_k + 1]`` of key block ids per
query block (own block included, ``-1`` = unused slot). One program handles one query block of
one query head and runs an online softmax over its table entries; the causal test
``key_pos <= query_pos`` is applied to every entry, so the own block needs no special case.
GQA reads kv head ``h // group`` without expanding K/V. ``triton`` is imported on first use, so
this module imports cleanly on machines without it.
"""

from __future__ import annotations

import functools
import math

import torch

from .block_sparse import BlockSelection, plan_blocks
from .config import SparseConfig
from .cuda import triton_available as available  # noqa: F401  (this module's own check, kept by name)


def block_size_ok(block_size: int) -> bool:
    """The kernel's block sizes: powers of two in [16, 128] (one tile of keys per block)."""
    return 16 <= block_size <= 128 and not block_size & (block_size - 1)


def block_table(selection: BlockSelection, n_key_blocks: int, top_k: int) -> torch.Tensor:
    """Key block ids per query block, ``[b, h_kv, n_q_blocks, top_k + 1]`` int32, ``-1`` padded."""
    sel = selection.blocks
    b, hkv = sel.shape[0], sel.shape[1]
    device = sel.device
    n_qb = n_key_blocks - selection.first_q_block
    slots = torch.arange(top_k + 1, device=device)
    absolute = torch.arange(selection.first_q_block, n_key_blocks, device=device)
    table = torch.full((b, hkv, n_qb, top_k + 1), -1, dtype=torch.int32, device=device)
    nd = selection.n_dense
    if nd:  # dense prefix: every block up to and including the query's own
        dense = torch.where(slots[None, :] <= absolute[:nd, None], slots[None, :], -1)
        table[:, :, :nd] = dense.to(torch.int32)
    if n_qb > nd:
        table[:, :, nd:, :top_k] = sel.to(torch.int32)
        table[:, :, nd:, top_k] = absolute[nd:].to(torch.int32)
    return table.contiguous()


@functools.cache
def _kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def _fwd(
        Q, K, V, O, TABLE,
        sm_scale, softcap,
        s_qb, s_qh, s_qm,
        s_kb, s_kh, s_kn,
        s_ob, s_oh, s_om,
        s_tb, s_th, s_tq,
        HQ, GROUP, LQ, LK, OFF, JQ0,
        N_SLOTS: tl.constexpr, BLOCK: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr,
        HAS_SOFTCAP: tl.constexpr, PRECISION: tl.constexpr,
    ):
        qb = tl.program_id(0)
        bh = tl.program_id(1)
        b = bh // HQ
        h = bh % HQ
        hk = h // GROUP
        pos_m = (JQ0 + qb) * BLOCK + tl.arange(0, BLOCK)
        row = pos_m - OFF
        m_ok = (row >= 0) & (row < LQ)
        offs_d = tl.arange(0, D_PAD)
        d_ok = offs_d < D
        q = tl.load(
            Q + b * s_qb + h * s_qh + row[:, None] * s_qm + offs_d[None, :],
            mask=m_ok[:, None] & d_ok[None, :],
            other=0.0,
        )
        m_i = tl.full([BLOCK], float("-inf"), dtype=tl.float32)
        l_i = tl.zeros([BLOCK], dtype=tl.float32)
        acc = tl.zeros([BLOCK, D_PAD], dtype=tl.float32)
        t_base = TABLE + b * s_tb + hk * s_th + qb * s_tq
        for s in range(N_SLOTS):
            kb = tl.load(t_base + s)
            if kb >= 0:
                pos_n = kb * BLOCK + tl.arange(0, BLOCK)
                n_ok = pos_n < LK
                kv_off = b * s_kb + hk * s_kh + pos_n[:, None] * s_kn + offs_d[None, :]
                k = tl.load(K + kv_off, mask=n_ok[:, None] & d_ok[None, :], other=0.0)
                v = tl.load(V + kv_off, mask=n_ok[:, None] & d_ok[None, :], other=0.0)
                qk = tl.dot(q, tl.trans(k), input_precision=PRECISION) * sm_scale
                if HAS_SOFTCAP:
                    # tanh(x) = 2 * sigmoid(2x) - 1 (tl has no portable tanh)
                    qk = softcap * (2.0 * tl.sigmoid(2.0 * qk / softcap) - 1.0)
                ok = n_ok[None, :] & (pos_n[None, :] <= pos_m[:, None])
                qk = tl.where(ok, qk, float("-inf"))
                m_new = tl.maximum(m_i, tl.max(qk, 1))
                m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
                p = tl.exp(qk - m_safe[:, None])
                alpha = tl.exp(m_i - m_safe)
                l_i = l_i * alpha + tl.sum(p, 1)
                acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
                m_i = m_new
        l_safe = tl.where(l_i > 0.0, l_i, 1.0)
        out = acc / l_safe[:, None]
        tl.store(
            O + b * s_ob + h * s_oh + row[:, None] * s_om + offs_d[None, :],
            out.to(O.dtype.element_ty),
            mask=m_ok[:, None] & d_ok[None, :],
        )

    return _fwd


def triton_block_sparse_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SparseConfig | None = None,
    *,
    selection: BlockSelection | None = None,
    scale: float | None = None,
    softcap: float | None = None,
    return_selection: bool = False,
):
    """GPU twin of :func:`block_sparse.block_sparse_attention` (same arguments and result).

    ``block_size`` must be a power of two between 16 and 128. ``selection`` defaults to
    :func:`plan_blocks` with ``config``.
    """
    if not available():
        raise RuntimeError("kernels/triton_prefill.py: needs a CUDA device and the triton package")
    cfg = config or SparseConfig()
    bs = cfg.block_size
    if not block_size_ok(bs):
        raise ValueError(f"kernels/triton_prefill.py: block_size must be a power of two in [16, 128], got {bs}")
    if not q.is_cuda:
        raise ValueError("kernels/triton_prefill.py: tensors must be on a CUDA device")
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    selection = selection if selection is not None else plan_blocks(q, k, cfg, scale=scale)
    n_kb = -(-lk // bs)
    table = block_table(selection, n_kb, cfg.top_k)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = torch.empty_like(q)
    grid = (n_kb - selection.first_q_block, b * hq)
    _kernel()[grid](
        q, k, v, out, table,
        scale, softcap if softcap is not None else 1.0,
        q.stride(0), q.stride(1), q.stride(2),
        k.stride(0), k.stride(1), k.stride(2),
        out.stride(0), out.stride(1), out.stride(2),
        table.stride(0), table.stride(1), table.stride(2),
        hq, hq // hkv, lq, lk, lk - lq, selection.first_q_block,
        N_SLOTS=cfg.top_k + 1, BLOCK=bs, D=d, D_PAD=max(16, 1 << (d - 1).bit_length()),
        HAS_SOFTCAP=softcap is not None,
        PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        num_warps=4 if bs <= 64 else 8,
    )
    return (out, selection) if return_selection else out
