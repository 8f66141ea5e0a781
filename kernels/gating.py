"""Which key blocks a query block reads: pooled-key gates and chunk boundaries.

Two training-free gates for fixed blocks:

* ``"mean"`` (MoBA-style): key block ``i`` scores ``sum_{queries t in j, heads g in the kv group}
  q_t . kbar_i`` for query block ``j``; by linearity this is the mean per-token MoBA score up to a
  positive factor. Averaging 128 keys washes out a single distinctive sentence, and summing over
  queries lets the bulk of the block outvote the few tokens (a question) that need a far block.
* ``"quest"`` (Quest's bound, used for prefill too): per block the element-wise key min and max
  give ``UB(q, i) = sum_d max(q_d min_d, q_d max_d) >= max_{k in i} q . k``, computed as two
  matmuls (``relu(q) . max + min(q, 0) . min``). Each query row (token x head of the group) turns
  its bounds into a distribution over the candidate blocks (``log_softmax(scale * UB)``), and a
  block scores the best value any row gives it: one query that needs a block is enough.

One selection is shared by the query heads of a kv group, so each kv block is gathered once;
sinks and the latest blocks are forced in either way.
"""

from __future__ import annotations

import torch

_FORCED = 1e30  # sinks / locals outrank any gate score but stay finite so topk is deterministic


def pooled_block_keys(k: torch.Tensor, block_size: int) -> torch.Tensor:
    """Mean key of each block, float32 ``[b, h_kv, n_blocks, d]``; the last block may be partial."""
    b, h, n, d = k.shape
    nb = -(-n // block_size)
    pad = nb * block_size - n
    kf = k.float()
    if pad:
        kf = torch.nn.functional.pad(kf, (0, 0, 0, pad))
    sums = kf.view(b, h, nb, block_size, d).sum(3)
    counts = torch.full((nb,), float(block_size), device=k.device)
    counts[-1] = block_size - pad
    return sums / counts[:, None]


def block_key_bounds(k: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Element-wise min and max key of each block, float32 ``[b, h_kv, n_blocks, d]`` each."""
    b, h, n, d = k.shape
    nb = -(-n // block_size)
    pad = nb * block_size - n
    kf = k.float()
    if pad:  # repeat the last key: it changes neither the min nor the max of the partial block
        kf = torch.cat([kf, kf[:, :, -1:].expand(b, h, pad, d)], dim=2)
    kb = kf.view(b, h, nb, block_size, d)
    return kb.amin(3), kb.amax(3)


def quest_bounds(q: torch.Tensor, kmin: torch.Tensor, kmax: torch.Tensor) -> torch.Tensor:
    """``UB[..., r, i] = sum_d max(q_rd kmin_id, q_rd kmax_id)`` for ``q [b, h, ..., r, d]`` and
    ``kmin/kmax [b, h, n, d]``: two matmuls instead of the ``[r, n, d]`` element-wise form."""
    qf = q.float()
    extra = qf.dim() - 4
    kmax_t = kmax.transpose(-1, -2).reshape(*kmax.shape[:2], *([1] * extra), kmax.shape[3], kmax.shape[2])
    kmin_t = kmin.transpose(-1, -2).reshape(*kmin.shape[:2], *([1] * extra), kmin.shape[3], kmin.shape[2])
    return torch.matmul(qf.clamp(min=0), kmax_t) + torch.matmul(qf.clamp(max=0), kmin_t)


def quest_block_scores(
    q_rows: torch.Tensor,
    kmin: torch.Tensor,
    kmax: torch.Tensor,
    q_block_ids: torch.Tensor,
    scale: float,
    row_valid: torch.Tensor | None = None,
    max_elems: int = 1 << 24,
) -> torch.Tensor:
    """Quest gate scores ``[b, h_kv, n_q, n_k]``: per query block, the best ``log_softmax`` over
    earlier blocks of ``scale * UB`` that any of its rows gives each block.

    ``q_rows [b, h_kv, n_q, r, d]`` (the rows of a query block: its tokens for every query head of
    the group); ``row_valid [n_q, r]`` marks real rows (padding rows are ignored). Blocks that are
    not earlier than the query block get ``-inf``. Query blocks are scored ``max_elems`` bounds at
    a time, so the working set stays bounded at any length.
    """
    b, h, nq, r, _ = q_rows.shape
    nk = kmin.shape[2]
    out = torch.empty(b, h, nq, nk, device=q_rows.device)
    kid = torch.arange(nk, device=q_rows.device)
    jids = q_block_ids.to(q_rows.device)
    step = max(1, max_elems // max(1, b * h * r * nk))
    for s in range(0, nq, step):
        e = min(nq, s + step)
        ub = quest_bounds(q_rows[:, :, s:e], kmin, kmax) * scale  # [b, h, n, r, nk]
        later = kid[None, :] >= jids[s:e, None]  # [n, nk]
        ub = ub.masked_fill(later[:, None, :], float("-inf"))
        logp = torch.log_softmax(ub, dim=-1)
        logp = logp.masked_fill(logp.isnan(), float("-inf"))  # rows with no candidate at all
        if row_valid is not None:
            logp = logp.masked_fill(~row_valid[s:e, :, None].to(logp.device), float("-inf"))
        out[:, :, s:e] = logp.amax(3)
    return out


def top_blocks(scores: torch.Tensor, q_block_ids: torch.Tensor, top_k: int, n_sink: int, n_local: int) -> torch.Tensor:
    """Top-``top_k`` earlier key blocks per query block from gate ``scores [b, h_kv, n_q, n_k]``,
    with the ``n_sink`` first and ``n_local`` latest earlier blocks forced in. A query block with
    fewer than ``top_k`` earlier blocks gets all of them and ``-1`` in the unused slots.
    Returns long ``[b, h_kv, n_q, top_k]``, ascending (``-1`` first)."""
    scores = scores.float().nan_to_num(nan=-1e29, neginf=-1e29, posinf=1e29)
    kid = torch.arange(scores.shape[-1], device=scores.device)
    j = q_block_ids.to(scores.device)[:, None]
    forced = (kid[None, :] < n_sink) | ((kid[None, :] >= j - n_local) & (kid[None, :] < j))
    scores = scores.masked_fill(forced, _FORCED).masked_fill(kid[None, :] >= j, float("-inf"))
    top = scores.topk(min(top_k, scores.shape[-1]), dim=-1)
    sel = top.indices.masked_fill(top.values == float("-inf"), -1)
    if sel.shape[-1] < top_k:
        sel = torch.nn.functional.pad(sel, (0, top_k - sel.shape[-1]), value=-1)
    return sel.sort(dim=-1).values


def select_blocks(
    q_sum: torch.Tensor,
    k_pooled: torch.Tensor,
    q_block_ids: torch.Tensor,
    top_k: int,
    n_sink: int,
    n_local: int,
) -> torch.Tensor:
    """Mean-key (MoBA-style) gate: top-``top_k`` earlier key blocks for each query block, ascending.

    ``q_sum``: ``[b, h_kv, n_q, d]`` summed queries per query block; ``k_pooled``: ``[b, h_kv, n_k, d]``;
    ``q_block_ids``: ``[n_q]`` absolute block index of each query block. See :func:`top_blocks`.
    """
    scores = torch.einsum("bhqd,bhkd->bhqk", q_sum.float(), k_pooled.float())
    return top_blocks(scores, q_block_ids, top_k, n_sink, n_local)


def change_point_boundaries(k: torch.Tensor, min_len: int, max_len: int) -> list[int]:
    """Chunk start positions where the keys change most (DHSA-style variable-length chunks).

    The change signal is ``1 - cos(k_t, k_{t-1})`` averaged over batch and kv heads (one set of
    boundaries for all heads keeps the gathers batched). From each chunk start the next one is
    the largest change in ``[start + min_len, start + max_len]``. Loops over chunks, not tokens.
    """
    n = k.shape[2]
    if n <= max_len:
        return [0]
    kf = torch.nn.functional.normalize(k.float(), dim=-1)
    change = torch.zeros(n, device=k.device)
    change[1:] = (1.0 - (kf[:, :, 1:] * kf[:, :, :-1]).sum(-1)).mean(dim=(0, 1))
    change = change.cpu()
    starts = [0]
    while n - starts[-1] > max_len:
        lo, hi = starts[-1] + min_len, min(starts[-1] + max_len, n - 1)
        starts.append(lo + int(torch.argmax(change[lo : hi + 1])))
    return starts


def pooled_chunk_keys(k: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``sum(keys of chunk) / sqrt(len)``: DHSA's length normalisation, so long chunks neither
    dominate (sum) nor get washed out (mean). Float32 ``[b, h_kv, n_chunks, d]``."""
    b, h, n, d = k.shape
    chunk_of = torch.repeat_interleave(torch.arange(len(starts), device=k.device), lengths.to(k.device))
    sums = torch.zeros(b, h, len(starts), d, device=k.device, dtype=torch.float32)
    sums.index_add_(2, chunk_of, k.float())
    return sums / lengths.to(k.device, torch.float32).sqrt()[:, None]
