"""Which key blocks a query block reads: pooled-key gates and chunk boundaries.

The gate scores key block ``i`` for query block ``j`` by ``sum_{queries t in j, heads g in the
kv group} q_t . kbar_i``; by linearity this is the mean per-token MoBA score up to a positive
factor, so it ranks blocks exactly as the per-token mean would, at a fraction of the cost.
One selection is shared by the query heads of a kv group, so each kv block is gathered once.
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


def select_blocks(
    q_sum: torch.Tensor,
    k_pooled: torch.Tensor,
    q_block_ids: torch.Tensor,
    top_k: int,
    n_sink: int,
    n_local: int,
) -> torch.Tensor:
    """Top-``top_k`` earlier key blocks for each query block, ascending.

    ``q_sum``: ``[b, h_kv, n_q, d]`` summed queries per query block; ``k_pooled``: ``[b, h_kv, n_k, d]``;
    ``q_block_ids``: ``[n_q]`` absolute block index of each query block.
    A query block with fewer than ``top_k`` earlier blocks gets all of them and ``-1`` in the
    unused slots. Returns long ``[b, h_kv, n_q, top_k]``, ascending (``-1`` first).
    """
    scores = torch.einsum("bhqd,bhkd->bhqk", q_sum.float(), k_pooled.float())
    kid = torch.arange(k_pooled.shape[2], device=scores.device)
    j = q_block_ids.to(scores.device)[:, None]
    forced = (kid[None, :] < n_sink) | ((kid[None, :] >= j - n_local) & (kid[None, :] < j))
    scores = scores.masked_fill(forced, _FORCED).masked_fill(kid[None, :] >= j, float("-inf"))
    top = scores.topk(min(top_k, scores.shape[-1]), dim=-1)
    sel = top.indices.masked_fill(top.values == float("-inf"), -1)
    if sel.shape[-1] < top_k:
        sel = torch.nn.functional.pad(sel, (0, top_k - sel.shape[-1]), value=-1)
    return sel.sort(dim=-1).values


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
