"""Budgets per attention head: a few retrieval heads read every key, the rest sinks + a local window.

A uniform key budget loses needles on real weights (docs/kernels.md): the few heads that copy from
far back lose the block they need. RazorAttention (Tang et al., 2024) and DuoAttention (Xiao et al.,
2024) keep the whole context for those *retrieval heads* only and give every other head the first
tokens (attention sinks) plus a recent window. This module does the same, training-free:

* :func:`calibrate` runs the model once on a synthetic sequence, random tokens repeated twice
  (RazorAttention's test), and scores each query head by the attention its second-copy queries put
  on the earlier occurrence of their own token (*echo*) and on the token after it (*induction*);
  both lie ``repeat`` tokens back, beyond any local window. Run it once per model and keep the
  JSON (:func:`save_scores`, beside the model; ``bench_sparse_quality.py --calibrate``).
  :func:`calibrate_far` scores heads on real text instead: the attention mass each head puts
  outside the sink block and its local window, i.e. what a window would take from it.
* :func:`policy` turns scores into ``SparseConfig.head_budgets``: the top ``dense_fraction`` of
  heads (by echo + induction) read everything, the others ``window`` keys (sink block + latest
  blocks). ``per="kv"`` ranks whole kv groups (GQA: a kv head's cache can only shrink when no
  query head of its group needs the far keys); ``per="query"`` ranks query heads, which saves
  compute per query head but memory only where a whole group is local.
* :func:`head_policy_attention` computes it: per kv head, the dense query heads by SDPA, the
  others through the block-sparse kernel with the ``"window"`` gate (the torch kernel, or the
  Triton one on CUDA). :func:`head_policy_reference` is the masked dense twin tests compare it to.
* :func:`attended_fraction` and :func:`kv_fraction` count what a policy reads and keeps.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from .config import SparseConfig
from .reference import causal_mask, dense_attention

SCORES_VERSION = 1


# -- computing a policy ------------------------------------------------------------------------------

def _window_cfg(cfg: SparseConfig, budget: int) -> SparseConfig:
    n_sink = min(cfg.n_sink, budget)
    return replace(cfg, top_k=budget, n_sink=n_sink, n_local=budget - n_sink, gate="window", mode="block",
                   head_budgets=None)


def _dense_heads(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, softcap: float | None) -> torch.Tensor:
    """Causal attention (queries = the last ``q_len`` keys) of query heads sharing one kv head."""
    lq, lk = q.shape[2], k.shape[2]
    if softcap is None and lq == lk:
        # one kv head broadcast to the group (a view): SDPA's flash kernels take equal head counts,
        # while enable_gqa may fall back to the math kernel and an L x L matrix per head
        n = q.shape[1]
        return F.scaled_dot_product_attention(q, k.expand(-1, n, -1, -1), v.expand(-1, n, -1, -1), is_causal=True,
                                              scale=scale)
    return dense_attention(q, k, v, scale=scale, softcap=softcap)


def _torch_sparse(q, k, v, cfg, *, scale, softcap):
    from .block_sparse import block_sparse_attention

    return block_sparse_attention(q, k, v, cfg, scale=scale, softcap=softcap)


def head_policy_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    budgets: Sequence[int],
    config: SparseConfig | None = None,
    *,
    scale: float | None = None,
    softcap: float | None = None,
    sparse_fn: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """Causal attention where query head ``i`` reads ``budgets[i]`` earlier key blocks (``-1``: all).

    ``q [b, h_q, q_len, d]``, ``k/v [b, h_kv, kv_len, d]`` (queries are the last ``q_len`` positions).
    A head with a budget reads the ``min(n_sink, budget)`` first blocks, the latest remaining ones
    and its own block (``config.block_size`` keys each). Heads of one kv head with the same budget
    run as one call, so GQA never expands K/V. ``sparse_fn`` (default: the torch block-sparse
    kernel) computes the windowed heads; the Triton kernel has the same signature.
    """
    cfg = config or SparseConfig()
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    if len(budgets) != hq:
        raise ValueError(f"kernels/heads.py: {len(budgets)} budgets for {hq} query heads")
    if hq % hkv:
        raise ValueError(f"kernels/heads.py: {hq} query heads is not a multiple of {hkv} kv heads")
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    sparse_fn = sparse_fn or _torch_sparse
    group = hq // hkv
    earlier = -(-lk // cfg.block_size) - 1  # earlier blocks the last query block has
    out = torch.empty_like(q)
    for h in range(hkv):
        kh, vh = k[:, h : h + 1], v[:, h : h + 1]
        by_budget: dict[int, list[int]] = {}
        for i in range(h * group, (h + 1) * group):
            by_budget.setdefault(-1 if budgets[i] < 0 or budgets[i] >= earlier else int(budgets[i]), []).append(i)
        for budget, heads in by_budget.items():
            idx = torch.tensor(heads, device=q.device)
            qi = q.index_select(1, idx)
            if budget < 0:
                o = _dense_heads(qi, kh, vh, scale, softcap)
            else:
                o = sparse_fn(qi, kh, vh, _window_cfg(cfg, budget), scale=scale, softcap=softcap)
            out.index_copy_(1, idx, o.to(q.dtype))
    return out


def head_policy_mask(budgets: Sequence[int], q_len: int, kv_len: int, block_size: int, n_sink: int,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean ``[h_q, q_len, kv_len]``: which keys each query head may read under ``budgets``
    (causality is left to the caller)."""
    qpos = torch.arange(kv_len - q_len, kv_len, device=device)
    kblk = torch.arange(kv_len, device=device) // block_size
    qblk = qpos // block_size
    rows = []
    for budget in budgets:
        if budget < 0:
            rows.append(torch.ones(q_len, kv_len, dtype=torch.bool, device=device))
            continue
        sinks = min(n_sink, budget)
        local_from = qblk - (budget - sinks)  # own block and the budget - sinks before it
        rows.append((kblk[None, :] < sinks) | (kblk[None, :] >= local_from[:, None]))
    return torch.stack(rows)


def head_policy_reference(q, k, v, budgets, config: SparseConfig | None = None, *, scale=None, softcap=None):
    """What :func:`head_policy_attention` computes, as masked dense attention (short inputs only)."""
    cfg = config or SparseConfig()
    mask = head_policy_mask(budgets, q.shape[2], k.shape[2], cfg.block_size, cfg.n_sink, q.device)
    return dense_attention(q, k, v, scale=scale, softcap=softcap, mask=mask[None])


# -- what a policy reads and keeps ------------------------------------------------------------------

def _keys_per_query(budget: int, length: int, block_size: int) -> torch.Tensor:
    """Keys each of ``length`` causal queries reads under ``budget`` (float64 ``[length]``)."""
    pos = torch.arange(length, dtype=torch.float64)
    if budget < 0:
        return pos + 1
    qb = torch.div(pos, block_size, rounding_mode="floor")
    own = pos - qb * block_size + 1
    # sinks and latest blocks never overlap once a query has more than ``budget`` earlier blocks,
    # so it reads min(qb, budget) whole earlier blocks, wherever the sinks are
    return own + torch.clamp(qb, max=budget) * block_size


def attended_fraction(head_budgets: Sequence[Sequence[int]], length: int, block_size: int) -> float:
    """Query-key pairs a policy computes over a causal prefill of ``length`` tokens, as a fraction of
    dense causal attention's, averaged over every query head of every layer (the compute share)."""
    causal = length * (length + 1) / 2
    cache: dict[int, float] = {}
    total, n = 0.0, 0
    for layer in head_budgets:
        for budget in layer:
            key = -1 if budget < 0 else int(budget)
            if key not in cache:
                cache[key] = float(_keys_per_query(key, length, block_size).sum()) / causal
            total += cache[key]
            n += 1
    return total / max(1, n)


def kv_fraction(head_budgets: Sequence[Sequence[int]], length: int, block_size: int, n_kv_heads: int) -> float:
    """Keys a cache must hold at ``length`` tokens under a policy, as a fraction of the dense cache:
    a kv head keeps everything when any query head of its group is dense, else its largest window
    (budget blocks + the block being filled). Averaged over the kv heads of every layer."""
    kept, n = 0.0, 0
    for layer in head_budgets:
        group = len(layer) // n_kv_heads
        for h in range(n_kv_heads):
            heads = layer[h * group : (h + 1) * group]
            if any(x < 0 for x in heads):
                kept += 1.0
            else:
                kept += min(length, (max(heads) + 1) * block_size) / length
            n += 1
    return kept / max(1, n)


# -- calibration --------------------------------------------------------------------------------------

class _Probe:
    """Attention function recording echo / induction mass per layer and query head (dense maths)."""

    def __init__(self, start: int, repeat: int):
        self.start, self.repeat = start, repeat  # first token of copy one, tokens per copy
        self.echo: dict[int, torch.Tensor] = {}
        self.induction: dict[int, torch.Tensor] = {}

    def __call__(self, module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
        group = query.shape[1] // key.shape[1]
        kr, vr = key.repeat_interleave(group, 1).float(), value.repeat_interleave(group, 1).float()
        scale = scaling if scaling is not None else 1.0 / math.sqrt(query.shape[-1])
        n = query.shape[2]
        scores = torch.matmul(query.float(), kr.transpose(-1, -2)) * scale
        softcap = kwargs.get("softcap")
        if softcap is not None:
            scores = softcap * torch.tanh(scores / softcap)
        scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool, device=query.device).triu(1), float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        # queries of the second copy (all but its last token, whose successor is outside the copy)
        rows = torch.arange(self.start + self.repeat, self.start + 2 * self.repeat - 1, device=query.device)
        echo = probs[:, :, rows, rows - self.repeat].mean(dim=(0, 2))
        induction = probs[:, :, rows, rows - self.repeat + 1].mean(dim=(0, 2))
        i = int(module.layer_idx)
        self.echo[i] = self.echo.get(i, 0) + echo.cpu()
        self.induction[i] = self.induction.get(i, 0) + induction.cpu()
        return torch.matmul(probs, vr).to(query.dtype).transpose(1, 2).contiguous(), None


class _FarProbe:
    """Attention function recording, per layer and query head, the attention mass the last ``rows``
    queries put outside the sink block and a ``window``-key local window (SDPA for the output)."""

    def __init__(self, window: int, block_size: int, n_sink: int, rows: int):
        self.budget, self.block_size, self.n_sink, self.rows = max(0, window // block_size - 1), block_size, n_sink, rows
        self.far: dict[int, torch.Tensor] = {}

    def __call__(self, module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
        group = query.shape[1] // key.shape[1]
        kr, vr = key.repeat_interleave(group, 1), value.repeat_interleave(group, 1)
        scale = scaling if scaling is not None else 1.0 / math.sqrt(query.shape[-1])
        n = query.shape[2]
        rows = min(self.rows, n)
        scores = torch.matmul(query[:, :, n - rows :].float(), kr.float().transpose(-1, -2)) * scale
        softcap = kwargs.get("softcap")
        if softcap is not None:
            scores = softcap * torch.tanh(scores / softcap)
        scores = scores.masked_fill(~causal_mask(rows, n, query.device), float("-inf"))
        keep = head_policy_mask([self.budget], rows, n, self.block_size, self.n_sink, query.device)[0]
        far = 1.0 - (torch.softmax(scores, dim=-1) * keep).sum(-1)
        i = int(module.layer_idx)
        self.far[i] = self.far.get(i, 0) + far.mean(dim=(0, 2)).cpu()
        out = F.scaled_dot_product_attention(query, kr, vr, is_causal=True, scale=scale)
        return out.transpose(1, 2).contiguous(), None


def calibrate_far(model: Any, ids: torch.Tensor, *, window: int = 1024, block_size: int = 128, n_sink: int = 1,
                  rows: int = 1024) -> dict:
    """Far-attention scores on real text ``ids [1, n]``: per layer and query head, the mean attention
    mass of the last ``rows`` queries outside the first ``n_sink`` blocks and the ``window``-key
    local window (what :func:`policy` with that window would drop). Returns the keys ``far``,
    ``far_window``, ``far_tokens`` to merge into a scores dict."""
    from transformers import AttentionInterface

    name = "sleuth_head_far_probe"
    probe = _FarProbe(window, block_size, n_sink, rows)
    AttentionInterface.register(name, probe)
    before = model.config._attn_implementation
    model.set_attn_implementation(name)
    try:
        with torch.inference_mode():
            model(input_ids=ids.to(next(model.parameters()).device), use_cache=False, logits_to_keep=1)
    finally:
        model.set_attn_implementation(before)
    return {"far": [[round(float(x), 6) for x in probe.far[i]] for i in sorted(probe.far)],
            "far_window": window, "far_tokens": int(ids.shape[-1]), "far_rows": rows}


def calibrate(model: Any, *, repeat: int = 1024, trials: int = 1, seed: int = 0, bos: int | None = None,
              token_range: tuple[int, int] = (1000, 30000)) -> dict:
    """Echo and induction scores of every query head of ``model`` (a transformers causal LM).

    Each trial feeds ``[bos] + r + r``, ``r`` being ``repeat`` random token ids drawn from
    ``token_range`` (ordinary vocabulary, no special tokens). Returns the scores dict that
    :func:`save_scores` writes and :func:`policy` reads, averaged over ``trials``.
    """
    from transformers import AttentionInterface

    name = "sleuth_head_probe"
    start = 0 if bos is None else 1
    probe = _Probe(start, repeat)
    AttentionInterface.register(name, probe)
    before = model.config._attn_implementation
    model.set_attn_implementation(name)
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    try:
        for _ in range(trials):
            r = torch.randint(token_range[0], token_range[1], (repeat,), generator=g)
            ids = torch.cat([torch.tensor([bos] if bos is not None else [], dtype=torch.long), r, r])[None].to(device)
            with torch.inference_mode():
                model(input_ids=ids, use_cache=False, logits_to_keep=1)
    finally:
        model.set_attn_implementation(before)
    layers = sorted(probe.echo)
    cfg = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    return {
        "version": SCORES_VERSION,
        "method": "echo/induction mass on random tokens repeated twice (RazorAttention)",
        "repeat": repeat, "trials": trials, "seed": seed, "token_range": list(token_range),
        "n_layers": len(layers), "n_heads": int(cfg.num_attention_heads),
        "n_kv_heads": int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads),
        "echo": [[round(float(x) / trials, 6) for x in probe.echo[i]] for i in layers],
        "induction": [[round(float(x) / trials, 6) for x in probe.induction[i]] for i in layers],
    }


def save_scores(scores: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(scores, indent=1) + "\n")
    tmp.replace(path)
    return path


def load_scores(path: str | Path) -> dict | None:
    """Scores written by :func:`save_scores`, or ``None`` when absent or from another version."""
    try:
        scores = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return scores if scores.get("version") == SCORES_VERSION else None


def head_scores(scores: dict, kind: str = "induction") -> torch.Tensor:
    """``[n_layers, n_heads]`` retrieval score: echo + induction mass (``kind="induction"``), or the
    far-attention mass on real text (``kind="far"``, from :func:`calibrate_far`)."""
    if kind == "far":
        return torch.tensor(scores["far"], dtype=torch.float64)
    if kind != "induction":
        raise ValueError(f"kernels/heads.py: score kind must be 'induction' or 'far', got {kind!r}")
    return torch.tensor(scores["echo"], dtype=torch.float64) + torch.tensor(scores["induction"], dtype=torch.float64)


def policy(scores: dict, *, dense_fraction: float, window: int, block_size: int = 128, per: str = "kv",
           kind: str = "induction") -> list[list[int]]:
    """``SparseConfig.head_budgets`` from calibration ``scores`` (of ``kind``, :func:`head_scores`):
    the best-scoring ``round(dense_fraction * count)`` heads (query heads, or kv groups ranked by
    their best query head when ``per="kv"``) read every key, the others ``window`` keys:
    ``window // block_size - 1`` earlier blocks (sinks + latest) plus their own."""
    if per not in ("kv", "query"):
        raise ValueError(f"kernels/heads.py: per must be 'kv' or 'query', got {per!r}")
    s = head_scores(scores, kind)
    n_layers, n_heads = s.shape
    n_kv = int(scores["n_kv_heads"])
    budget = max(0, window // block_size - 1)
    out = torch.full((n_layers, n_heads), budget, dtype=torch.long)
    if per == "query":
        n_dense = round(dense_fraction * s.numel())
        if n_dense:
            out.view(-1)[s.view(-1).topk(n_dense).indices] = -1
    else:
        group = n_heads // n_kv
        gs = s.view(n_layers, n_kv, group).amax(-1)
        n_dense = round(dense_fraction * gs.numel())
        if n_dense:
            dense = torch.zeros(gs.numel(), dtype=torch.bool)
            dense[gs.view(-1).topk(n_dense).indices] = True
            out[dense.view(n_layers, n_kv).repeat_interleave(group, dim=1)] = -1
    return out.tolist()
