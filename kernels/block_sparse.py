"""Block-sparse causal prefill attention on CPU (MoBA-style blocks, DHSA-style variable chunks).

Each query block attends causally to its own block plus ``top_k`` earlier key blocks picked by
a gate on pooled keys (``gating.py``). The work is batched: per kv head, ``q_tile`` query blocks at
a time gather their selected key blocks into one ``[q_tile, top_k * block, d]`` tensor and run one
attention call over it with the whole query group folded into the rows (GQA without expanding
K/V); the causal own-block part runs separately and the two are merged by their log-sum-exp.
No ``L x L`` tensor is ever built: the working set is ``q_tile * (top_k + 1) * block`` keys.

Query blocks whose index is ``<= top_k`` have at most ``top_k`` earlier blocks, so the gate would
select all of them: they run as one dense causal prefix (at most ``(top_k + 1) * block`` square).
Compare with ``reference.block_sparse_reference`` (same selection, dense masked maths).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import SparseConfig
from .gating import (
    block_key_bounds,
    change_point_boundaries,
    pooled_block_keys,
    pooled_chunk_keys,
    quest_block_scores,
    select_blocks,
    top_blocks,
)

# Flash attention that also returns the log-sum-exp we need to merge partial results: the CPU
# kernel (float32/bfloat16) and the CUDA one (half precision only, head dim a multiple of 8).
_FLASH_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_FLASH_CUDA = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention", None)


@dataclass
class BlockSelection:
    """What the prefill kernel attended to, for tests and the reference implementation."""

    block_size: int
    first_q_block: int  # absolute block index of the first query block
    n_dense: int  # leading query blocks computed as a dense causal prefix
    blocks: torch.Tensor  # [b, h_kv, n_q_blocks - n_dense, top_k] absolute key block ids (-1 = unused)


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    causal: bool,
    softcap: float | None = None,
    key_valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention of ``q [n, h, r, d]`` over ``k/v [n, h, s, d]`` returning float32 output and
    log-sum-exp ``[n, h, r]``. ``causal`` is lower-right aligned; ``key_valid [n, s]`` masks keys."""
    r, s = q.shape[2], k.shape[2]
    # both flash kernels: no softcap or key mask, and causal only top-left (= lower-right when r == s)
    flash = softcap is None and key_valid is None and (not causal or r == s)
    if flash and _FLASH_CPU is not None and q.device.type == "cpu" and q.dtype in (torch.float32, torch.bfloat16):
        out, lse = _FLASH_CPU(q, k, v, 0.0, causal, scale=scale)
        return out.float(), lse.float()
    if (flash and _FLASH_CUDA is not None and q.device.type == "cuda" and q.dtype in (torch.float16, torch.bfloat16)
            and q.shape[-1] % 8 == 0 and q.shape[-1] <= 256):
        res = _FLASH_CUDA(q, k, v, 0.0, causal, False, scale=scale)
        return res[0].float(), res[1].float()
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
    if softcap is not None:
        scores = softcap * torch.tanh(scores / softcap)
    if causal:
        q_pos = torch.arange(s - r, s, device=q.device)
        scores = scores.masked_fill(q_pos[:, None] < torch.arange(s, device=q.device)[None, :], float("-inf"))
    if key_valid is not None:
        scores = scores.masked_fill(~key_valid[:, None, None, :], float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    probs = torch.exp(scores - lse[..., None]).nan_to_num(0.0)
    return torch.matmul(probs, v.float()), lse


def merge(o1: torch.Tensor, l1: torch.Tensor, o2: torch.Tensor, l2: torch.Tensor) -> torch.Tensor:
    """Softmax over the union of two disjoint key sets from their partial outputs and log-sum-exps."""
    m = torch.maximum(l1, l2)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    w1, w2 = torch.exp(l1 - m), torch.exp(l2 - m)
    return (o1 * w1[..., None] + o2 * w2[..., None]) / (w1 + w2).clamp_min(1e-30)[..., None]


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[int, int, int, int, int, int]:
    if q.dim() != 4 or k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]:
        raise ValueError(
            f"kernels/block_sparse.py: expected q [b,hq,lq,d] and k=v [b,hkv,lk,d], got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    if hq % hkv or lq > lk:
        raise ValueError(f"kernels/block_sparse.py: need hq % hkv == 0 and lq <= lk, got {hq}/{hkv}, {lq}/{lk}")
    return b, hq, lq, d, hkv, lk


def _dense_prefix(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, softcap: float | None) -> torch.Tensor:
    """Causal attention of the leading query blocks (bounded by the key budget), float32."""
    group = q.shape[1] // k.shape[1]
    kr = k.repeat_interleave(group, dim=1)
    vr = v.repeat_interleave(group, dim=1)
    out, _ = attend(q, kr, vr, scale, True, softcap)
    return out


def _quest_scores(rows, kmin, kmax, q_blocks, first_block: int, scale, valid) -> torch.Tensor:
    """The quest gate's scores: the Triton kernels on a CUDA device with triton (the torch form
    stores a bound per row and block, and at 128K tokens took longer than the attention itself),
    else :func:`gating.quest_block_scores`, the reference they are tested against."""
    if rows.is_cuda and _triton_ok():
        from .triton_gate import quest_block_scores_triton  # noqa: PLC0415 - CUDA only

        return quest_block_scores_triton(rows, kmin, kmax, first_block, scale, valid)
    return quest_block_scores(rows, kmin, kmax, q_blocks, scale, valid)


def _triton_ok() -> bool:
    from .cuda import triton_available

    return triton_available()


def _select(
    qg_sparse: torch.Tensor, k: torch.Tensor, cfg: SparseConfig, first_block: int, scale: float, lq: int, front: int
) -> torch.Tensor:
    """Gate for the query blocks ``qg_sparse [b, h_kv, G, n, block, d]`` starting at absolute block
    ``first_block``; ``front`` padded rows precede the ``lq`` real queries on the block grid."""
    b, hkv, group, n, bs, d = qg_sparse.shape
    if n == 0:
        return torch.empty(b, hkv, 0, cfg.top_k, dtype=torch.long, device=k.device)
    q_blocks = torch.arange(first_block, first_block + n, device=k.device)
    if cfg.gate == "window":  # nothing to score: sinks plus the latest blocks fill the budget
        scores = torch.zeros(b, hkv, n, -(-k.shape[2] // cfg.block_size), device=k.device)
        n_sink = min(cfg.n_sink, cfg.top_k)
        return top_blocks(scores, q_blocks, cfg.top_k, n_sink, cfg.top_k - n_sink)
    if cfg.gate == "quest":
        # row validity on the block grid: padded query rows must not vote for blocks
        grid = torch.arange(n * bs, device=k.device) + (q_blocks[0] * bs - (k.shape[2] - lq))
        valid = ((grid >= 0) & (grid < lq)).view(n, 1, bs).expand(n, group, bs).reshape(n, group * bs)
        rows = qg_sparse.permute(0, 1, 3, 2, 4, 5).reshape(b, hkv, n, group * bs, d)
        kmin, kmax = block_key_bounds(k, cfg.block_size)
        scores = _quest_scores(rows, kmin, kmax, q_blocks, first_block, scale, valid)
        return top_blocks(scores, q_blocks, cfg.top_k, cfg.n_sink, cfg.n_local)
    q_sum = qg_sparse.sum(dim=(2, 4), dtype=torch.float32)
    return select_blocks(q_sum, pooled_block_keys(k, cfg.block_size), q_blocks, cfg.top_k, cfg.n_sink, cfg.n_local)


def plan_blocks(
    q: torch.Tensor, k: torch.Tensor, config: SparseConfig | None = None, *, scale: float | None = None
) -> BlockSelection:
    """The :class:`BlockSelection` :func:`block_sparse_attention` would use, without attending
    (the GPU kernel takes it as input)."""
    cfg = config or SparseConfig()
    b, hq, lq, d, hkv, lk = _check(q, k, k)
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    bs = cfg.block_size
    off = lk - lq
    nkb, jq0 = -(-lk // bs), off // bs
    front, pad_k = off - jq0 * bs, -(-lk // bs) * bs - lk
    nqb = nkb - jq0
    n_dense = max(0, min(cfg.top_k - jq0 + 1, nqb))
    qp = F.pad(q, (0, 0, front, pad_k)) if (front or pad_k) else q
    qg = qp.view(b, hkv, hq // hkv, nqb, bs, d)
    return BlockSelection(bs, jq0, n_dense, _select(qg[:, :, :, n_dense:], k, cfg, jq0 + n_dense, scale, lq, front))


def block_sparse_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SparseConfig | None = None,
    *,
    scale: float | None = None,
    softcap: float | None = None,
    return_selection: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, BlockSelection]:
    """Block-sparse causal attention.

    ``q``: ``[b, h_q, q_len, d]``; ``k``/``v``: ``[b, h_kv, kv_len, d]``, ``q_len <= kv_len`` (the
    queries are the last ``q_len`` positions, as in chunked prefill). Returns ``[b, h_q, q_len, d]``
    in ``q``'s dtype, optionally with the :class:`BlockSelection` it used.
    """
    cfg = config or SparseConfig()
    b, hq, lq, d, hkv, lk = _check(q, k, v)
    group, bs, top_k = hq // hkv, cfg.block_size, cfg.top_k
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    off = lk - lq
    nkb = -(-lk // bs)
    pad_k = nkb * bs - lk
    jq0 = off // bs
    front = off - jq0 * bs
    nqb = nkb - jq0

    # Pad keys to whole blocks and queries to the block grid of their absolute positions; padded
    # keys sit after every real query (causal hides them), padded query rows are dropped at the end.
    kp = F.pad(k, (0, 0, 0, pad_k)) if pad_k else k.contiguous()
    vp = F.pad(v, (0, 0, 0, pad_k)) if pad_k else v.contiguous()
    qp = F.pad(q, (0, 0, front, pad_k)) if (front or pad_k) else q.contiguous()
    qg = qp.view(b, hkv, group, nqb, bs, d)
    out = torch.empty(b, hkv, group, nqb, bs, d, dtype=q.dtype, device=q.device)

    n_dense = max(0, min(top_k - jq0 + 1, nqb))
    if n_dense:
        kd = kp[:, :, : (jq0 + n_dense) * bs]
        vd = vp[:, :, : (jq0 + n_dense) * bs]
        dense = _dense_prefix(qp[:, :, : n_dense * bs], kd, vd, scale, softcap)
        out[:, :, :, :n_dense] = dense.view(b, hkv, group, n_dense, bs, d).to(q.dtype)

    n_sparse = nqb - n_dense
    sel = _select(qg[:, :, :, n_dense:], k, cfg, jq0 + n_dense, scale, lq, front)
    if n_sparse:
        kb = kp.view(b, hkv, nkb, bs, d)
        vb = vp.view(b, hkv, nkb, bs, d)
        tile = max(1, cfg.q_tile)
        for bi in range(b):
            for h in range(hkv):
                for t0 in range(0, n_sparse, tile):
                    t1 = min(n_sparse, t0 + tile)
                    n = t1 - t0
                    j0 = jq0 + n_dense + t0  # absolute block of the tile's first query block
                    qt = qg[bi, h, :, n_dense + t0 : n_dense + t1].permute(1, 0, 2, 3).contiguous()  # [n,G,bs,d]
                    ko = kb[bi, h, j0 : j0 + n].unsqueeze(1).expand(n, group, bs, d).contiguous()
                    vo = vb[bi, h, j0 : j0 + n].unsqueeze(1).expand(n, group, bs, d).contiguous()
                    o_own, l_own = attend(qt, ko, vo, scale, True, softcap)
                    if top_k:
                        idx = sel[bi, h, t0:t1].reshape(-1)
                        kg = kb[bi, h].index_select(0, idx).view(n, 1, top_k * bs, d)
                        vg = vb[bi, h].index_select(0, idx).view(n, 1, top_k * bs, d)
                        o_sel, l_sel = attend(qt.view(n, 1, group * bs, d), kg, vg, scale, False, softcap)
                        o_own = merge(o_sel.view(n, group, bs, d), l_sel.view(n, group, bs), o_own, l_own)
                    out[bi, h, :, n_dense + t0 : n_dense + t1] = o_own.permute(1, 0, 2, 3).to(q.dtype)

    result = out.view(b, hq, nqb * bs, d)[:, :, front : front + lq]
    if front or pad_k:
        result = result.contiguous()
    if return_selection:
        return result, BlockSelection(bs, jq0, n_dense, sel)
    return result


def varlen_sparse_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SparseConfig | None = None,
    *,
    starts: list[int] | torch.Tensor | None = None,
    scale: float | None = None,
    softcap: float | None = None,
    return_selection: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Chunk-sparse causal attention over variable-length chunks (DHSA-style).

    ``starts``: ascending chunk start positions over the keys (first must be 0); by default they
    come from :func:`gating.change_point_boundaries` within ``[min_chunk, max_chunk]``. Chunks are
    pooled as ``sum / sqrt(len)``; each query chunk attends causally to itself plus ``top_k``
    earlier chunks. Chunks are padded to the longest one so the gathers stay batched.
    Returns ``[b, h_q, q_len, d]`` (and ``(starts, selection)`` when asked).
    """
    cfg = config or SparseConfig(mode="varlen")
    b, hq, lq, d, hkv, lk = _check(q, k, v)
    group, top_k = hq // hkv, cfg.top_k
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    off = lk - lq
    if starts is None:
        starts = change_point_boundaries(k, cfg.min_chunk, cfg.max_chunk)
    st = torch.as_tensor(starts, dtype=torch.long, device=k.device)
    if st.numel() == 0 or int(st[0]) != 0 or bool((st[1:] <= st[:-1]).any()) or int(st[-1]) >= lk:
        raise ValueError("kernels/block_sparse.py: chunk starts must be strictly ascending, begin at 0, and lie below kv_len")
    nc = st.numel()
    lengths = torch.diff(st, append=torch.tensor([lk], device=k.device))
    cmax = int(lengths.max())
    offs = torch.arange(cmax, device=k.device)
    pos = st[:, None] + offs[None, :]  # [nc, cmax] absolute position of each padded slot
    valid = offs[None, :] < lengths[:, None]
    pos_c = pos.clamp(max=lk - 1)
    kc = k[:, :, pos_c]  # [b, hkv, nc, cmax, d]
    vc = v[:, :, pos_c]

    c0 = int(torch.searchsorted(st, torch.tensor(off, device=k.device), right=True)) - 1
    ncq = nc - c0
    q_rows = pos[c0:] - off  # query row of each padded slot
    q_valid = valid[c0:] & (q_rows >= 0)
    qc = q[:, :, q_rows.clamp(0, lq - 1)] * q_valid[None, None, :, :, None].to(q.dtype)  # [b,hq,ncq,cmax,d]
    qg = qc.view(b, hkv, group, ncq, cmax, d)

    q_sum = qg.sum(dim=(2, 4), dtype=torch.float32)
    sel = select_blocks(
        q_sum, pooled_chunk_keys(k, st, lengths), torch.arange(c0, nc, device=k.device), top_k, cfg.n_sink, cfg.n_local
    )
    out = torch.empty(b, hkv, group, ncq, cmax, d, dtype=q.dtype, device=q.device)
    tile = max(1, cfg.q_tile)
    for bi in range(b):
        for h in range(hkv):
            for t0 in range(0, ncq, tile):
                t1 = min(ncq, t0 + tile)
                n = t1 - t0
                qt = qg[bi, h, :, t0:t1].permute(1, 0, 2, 3).contiguous()  # [n, G, cmax, d]
                own = slice(c0 + t0, c0 + t1)
                ko = kc[bi, h, own].unsqueeze(1).expand(n, group, cmax, d).contiguous()
                vo = vc[bi, h, own].unsqueeze(1).expand(n, group, cmax, d).contiguous()
                # padded keys trail each chunk, so the causal mask alone hides them from real queries
                o, lse = attend(qt, ko, vo, scale, True, softcap)
                if top_k:
                    s = sel[bi, h, t0:t1]
                    idx = s.clamp(min=0).reshape(-1)
                    kv_ok = (valid.index_select(0, idx).view(n, top_k, cmax) & (s >= 0)[..., None]).view(n, -1)
                    kg = kc[bi, h].index_select(0, idx).view(n, 1, top_k * cmax, d)
                    vg = vc[bi, h].index_select(0, idx).view(n, 1, top_k * cmax, d)
                    o_sel, l_sel = attend(qt.view(n, 1, group * cmax, d), kg, vg, scale, False, softcap, kv_ok)
                    o = merge(o_sel.view(n, group, cmax, d), l_sel.view(n, group, cmax), o, lse)
                out[bi, h, :, t0:t1] = o.permute(1, 0, 2, 3).to(q.dtype)
    flat_valid = torch.nonzero(q_valid.reshape(-1)).squeeze(1)
    result = out.view(b, hq, ncq * cmax, d).index_select(2, flat_valid)
    if return_selection:
        return result, (st, sel)
    return result
