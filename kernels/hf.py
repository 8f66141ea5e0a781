"""transformers integration: ``register()`` adds the ``"sleuth_sparse"`` attention implementation.

    from sleuth.kernels import hf
    hf.register()
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sleuth_sparse")
    hf.configure(model, top_k=31, block_size=128, min_sparse_len=8192)   # optional
    out = model.generate(ids, past_key_values=hf.make_cache(model), max_new_tokens=64)

What runs where:

* prefill (``q_len > 1``) with at least ``min_sparse_len`` keys (by default never: no sparse
  budget kept accuracy on real weights, :meth:`SparseConfig.dense_below`): :func:`block_sparse_attention`
  (or the varlen chunk mode), also for chunked prefill through a cache (``q_len < kv_len``);
* with ``head_budgets`` (a per-head policy, ``heads.py``) set for the layer: :func:`head_policy_attention`
  for prefill and decode alike (retrieval heads dense, the others sinks + local window), over a
  cache that keeps every key (a plain ``DynamicCache``; an offloaded cache is not supported);
* decode through a :class:`SleuthCache` (``make_cache``) with at least ``min_sparse_len`` keys:
  top-k blocks by query . block summary, optionally with the KV cache offloaded;
* everything else is dense: SDPA, or plain float32 maths when a logit softcap is set.
  Sliding-window layers (Gemma2's local layers) always run dense: their window already bounds
  the cost. Padding masks, static caches and custom mask patterns also run dense.

The mask function registered beside the attention function returns ``None`` exactly when the
mask is the plain causal one with the queries being the last ``q_len`` keys (what the kernels
assume), and otherwise the boolean SDPA mask, which sends the call to the dense path. Without
a registered mask function transformers would pass ``attention_mask=None`` for every pattern.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, causal_mask_function, sdpa_mask

from .block_sparse import block_sparse_attention, varlen_sparse_attention
from .config import SparseConfig
from .decode import OffloadedKV, SleuthCache, SleuthLayer, sparse_decode_attention
from .heads import head_policy_attention
from .reference import causal_mask, dense_attention

NAME = "sleuth_sparse"
#: attribute on the model config holding the settings as a plain dict (survives save_pretrained)
CONFIG_ATTR = "sleuth_sparse"
_default = SparseConfig()


def sparse_config_of(config: Any) -> SparseConfig:
    """The settings stored on a model config (or the defaults given to :func:`register`)."""
    value = getattr(config, CONFIG_ATTR, None) if config is not None else None
    return _default if value is None else SparseConfig.from_any(value)


def configure(model_or_config: Any, **settings: Any) -> SparseConfig:
    """Store sparse settings (``SparseConfig`` fields) on a model or its config; returns them."""
    config = getattr(model_or_config, "config", model_or_config)
    current = sparse_config_of(config).to_dict()
    current.update(settings)
    cfg = SparseConfig.from_any(current)
    setattr(config, CONFIG_ATTR, cfg.to_dict())
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else None
    if text is not None and text is not config:
        setattr(text, CONFIG_ATTR, cfg.to_dict())
    return cfg


def make_cache(model: Any, offload: str | None = None, offload_dir: str | None = None) -> SleuthCache:
    """A :class:`SleuthCache` for ``model`` using its sparse settings; ``offload`` is ``None``,
    ``"cpu"`` or ``"disk"``."""
    return SleuthCache(config=model.config, sparse=sparse_config_of(model.config), offload=offload, offload_dir=offload_dir)


def sleuth_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: int = 0,
    kv_offset: int = 0,
    mask_function=causal_mask_function,
    attention_mask: torch.Tensor | None = None,
    local_size: int | None = None,
    **kwargs: Any,
) -> torch.Tensor | None:
    """``None`` for a plain lower-right causal mask without padding; the SDPA boolean mask otherwise."""
    plain = mask_function is causal_mask_function and local_size is None
    if plain and not isinstance(q_offset, torch.Tensor) and not isinstance(kv_offset, torch.Tensor):
        plain = q_offset + q_length == kv_offset + kv_length
    else:
        plain = False
    if plain and attention_mask is not None:
        plain = bool(attention_mask[:, -kv_length:].all())
    if plain:
        return None
    kwargs.pop("allow_is_causal_skip", None)
    return sdpa_mask(
        batch_size=batch_size,
        q_length=q_length,
        kv_length=kv_length,
        q_offset=q_offset,
        kv_offset=kv_offset,
        mask_function=mask_function,
        attention_mask=attention_mask,
        local_size=local_size,
        allow_is_causal_skip=False,
        **kwargs,
    )


def _dense(query, key, value, mask, scale, softcap) -> torch.Tensor:
    """Dense attention, ``[b, h, q, d]``; ``mask=None`` means lower-right causal."""
    lq, lk = query.shape[2], key.shape[2]
    if softcap is not None:
        return dense_attention(query, key, value, scale=scale, softcap=softcap, mask=mask, causal=mask is None)
    if mask is None:
        if lq == lk:
            return F.scaled_dot_product_attention(query, key, value, is_causal=lq > 1, scale=scale, enable_gqa=True)
        mask = causal_mask(lq, lk, query.device)
    group = query.shape[1] // key.shape[1]
    if group > 1:  # masked GQA is not supported by every SDPA backend
        key, value = key.repeat_interleave(group, dim=1), value.repeat_interleave(group, dim=1)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale)


def sleuth_sparse_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor | OffloadedKV,
    value: torch.Tensor | OffloadedKV,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The function transformers calls per attention layer; returns ``([b, q, h, d], None)``."""
    if dropout and module.training:
        raise ValueError("kernels/hf.py: sleuth_sparse attention does not implement dropout; use it for inference")
    scale = scaling if scaling is not None else 1.0 / math.sqrt(query.shape[-1])
    softcap = kwargs.get("softcap")
    cfg = sparse_config_of(getattr(module, "config", None))
    lq = query.shape[2]

    if isinstance(key, OffloadedKV):
        if attention_mask is not None:
            raise ValueError("kernels/hf.py: an offloaded SleuthCache supports only unpadded causal decoding")
        out = sparse_decode_attention(query, key.layer, scale=scale, softcap=softcap)
    else:
        lk = key.shape[2]
        sliding = kwargs.get("sliding_window") is not None
        layer = getattr(key, "_sleuth_layer", None)
        budgets = cfg.budgets_for(getattr(module, "layer_idx", None))
        if attention_mask is not None or sliding or lk < cfg.dense_below(query.device.type):
            out = _dense(query, key, value, attention_mask, scale, softcap)
        elif budgets is not None:
            # per-head policy, prefill and decode alike: the full cache is kept (no offload), each
            # head reads what its budget allows
            sparse_fn = None
            if _use_triton(cfg, query):
                from .triton_prefill import triton_block_sparse_attention as sparse_fn  # noqa: PLC0415 - CUDA only
            out = head_policy_attention(query, key, value, budgets, cfg, scale=scale, softcap=softcap,
                                        sparse_fn=sparse_fn)
        elif isinstance(layer, SleuthLayer) and lq < layer.cfg.block_size:
            out = sparse_decode_attention(query, layer, scale=scale, softcap=softcap)
        elif cfg.mode == "varlen":
            out = varlen_sparse_attention(query, key, value, cfg, scale=scale, softcap=softcap)
        elif _use_triton(cfg, query):
            from .triton_prefill import triton_block_sparse_attention  # noqa: PLC0415 - CUDA only

            out = triton_block_sparse_attention(query, key, value, cfg, scale=scale, softcap=softcap)
        else:
            out = block_sparse_attention(query, key, value, cfg, scale=scale, softcap=softcap)
    return out.transpose(1, 2).contiguous(), None


def _use_triton(cfg: SparseConfig, query: torch.Tensor) -> bool:
    """``prefill_backend`` resolved: "triton" always (it raises off CUDA); "auto" for half-precision
    queries on CUDA when triton is installed. float32 stays on the torch path: Triton's IEEE float32
    dots were ~6x slower there (SmolLM2 at 8K on an H200, docs/kernels.md)."""
    if cfg.prefill_backend != "auto":
        return cfg.prefill_backend == "triton"
    if not query.is_cuda or query.dtype not in (torch.float16, torch.bfloat16):
        return False
    from .triton_prefill import available, block_size_ok  # noqa: PLC0415

    return block_size_ok(cfg.block_size) and available()


def register(config: SparseConfig | dict | None = None) -> str:
    """Register ``"sleuth_sparse"`` with transformers (idempotent). ``config`` sets the defaults
    used by models whose config carries no ``sleuth_sparse`` settings. Returns the name."""
    global _default
    if config is not None:
        _default = SparseConfig.from_any(config)
    AttentionInterface.register(NAME, sleuth_sparse_attention_forward)
    AttentionMaskInterface.register(NAME, sleuth_mask)
    return NAME
