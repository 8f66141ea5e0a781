"""Plain dense attention that every fast path in this package is compared against.

Materialises the full ``q_len x kv_len`` score matrix: use it for tests and short inputs only.
"""

from __future__ import annotations

import math

import torch


def causal_mask(q_len: int, kv_len: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean ``[q_len, kv_len]`` mask, lower-right aligned: the queries are the last ``q_len`` positions."""
    if q_len > kv_len:
        raise ValueError(f"kernels/reference.py: q_len ({q_len}) exceeds kv_len ({kv_len})")
    q_pos = torch.arange(kv_len - q_len, kv_len, device=device)
    return q_pos[:, None] >= torch.arange(kv_len, device=device)[None, :]


def dense_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    scale: float | None = None,
    softcap: float | None = None,
    mask: torch.Tensor | None = None,
    causal: bool = True,
) -> torch.Tensor:
    """Softmax attention in float32 with grouped-query heads.

    ``q``: ``[b, h_q, q_len, d]``; ``k``/``v``: ``[b, h_kv, kv_len, d]`` with ``h_q % h_kv == 0``
    (query head ``i`` reads kv head ``i // (h_q // h_kv)``, the transformers ``repeat_kv`` order).
    ``mask``: optional boolean, broadcastable to ``[b, h_q, q_len, kv_len]`` (True = attend); it is
    combined with the causal mask when ``causal``. Returns ``[b, h_q, q_len, d]`` in ``q``'s dtype.
    """
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    if hq % hkv:
        raise ValueError(f"kernels/reference.py: {hq} query heads is not a multiple of {hkv} kv heads")
    group = hq // hkv
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    kf = k.float().repeat_interleave(group, dim=1)
    vf = v.float().repeat_interleave(group, dim=1)
    scores = torch.matmul(q.float(), kf.transpose(-1, -2)) * scale
    if softcap is not None:
        scores = softcap * torch.tanh(scores / softcap)
    allowed = causal_mask(lq, lk, q.device) if causal else torch.ones(lq, lk, dtype=torch.bool, device=q.device)
    if mask is not None:
        allowed = allowed & mask.to(torch.bool)
    scores = scores.masked_fill(~allowed, float("-inf"))
    probs = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # rows with nothing allowed give zeros
    return torch.matmul(probs, vf).to(q.dtype)


def _masked_by_blocks(q, k, v, allowed_blocks, q_block_of, k_block_of, scale, softcap):
    """Dense attention restricted to (query block, key block) pairs in ``allowed_blocks [b,hkv,nq,nk]``."""
    group = q.shape[1] // k.shape[1]
    mask = allowed_blocks[:, :, q_block_of][:, :, :, k_block_of]  # [b, hkv, lq, lk]
    return dense_attention(q, k, v, scale=scale, softcap=softcap, mask=mask.repeat_interleave(group, dim=1))


def block_sparse_reference(q, k, v, selection, *, scale=None, softcap=None) -> torch.Tensor:
    """What ``block_sparse_attention`` computes for a given selection, as masked dense attention.

    ``selection`` is the kernel's ``BlockSelection``: leading ``n_dense`` query blocks see every
    earlier block; the others see their selected blocks plus their own block (causally).
    """
    b, hkv, lq, lk = q.shape[0], k.shape[1], q.shape[2], k.shape[2]
    bs = selection.block_size
    nkb = -(-lk // bs)
    allowed = torch.zeros(b, hkv, nkb, nkb, dtype=torch.bool, device=q.device)
    first_sparse = selection.first_q_block + selection.n_dense
    allowed[:, :, :first_sparse] = True  # causal masking trims these to earlier blocks
    sel = selection.blocks
    if sel.shape[2]:
        rows = allowed[:, :, first_sparse:]
        rows.scatter_(3, sel.clamp(min=0), (sel >= 0))
        own = torch.arange(first_sparse, nkb, device=q.device)
        rows[:, :, torch.arange(len(own)), own] = True
    positions = torch.arange(lk, device=q.device)
    return _masked_by_blocks(q, k, v, allowed, positions[lk - lq :] // bs, positions // bs, scale, softcap)


def chunk_sparse_reference(q, k, v, starts, selection, *, scale=None, softcap=None) -> torch.Tensor:
    """Masked dense twin of ``varlen_sparse_attention``: ``selection [b, hkv, n_q_chunks, top_k]``
    lists earlier chunks (``-1`` unused) for the query chunks from the first one holding a query."""
    b, hkv, lq, lk = q.shape[0], k.shape[1], q.shape[2], k.shape[2]
    st = torch.as_tensor(starts, device=q.device)
    nc = st.numel()
    positions = torch.arange(lk, device=q.device)
    chunk_of = torch.searchsorted(st, positions, right=True) - 1
    c0 = int(chunk_of[lk - lq])
    allowed = torch.zeros(b, hkv, nc, nc, dtype=torch.bool, device=q.device)
    rows = allowed[:, :, c0:]
    rows.scatter_(3, selection.clamp(min=0), (selection >= 0))
    rows[:, :, torch.arange(nc - c0), torch.arange(c0, nc)] = True
    return _masked_by_blocks(q, k, v, allowed, chunk_of[lk - lq :], chunk_of, scale, softcap)
