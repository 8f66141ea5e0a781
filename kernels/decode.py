"""Sparse decode: per-block key summaries kept as tokens append, top-k block selection per step,
and a KV cache that may live off the compute device (CPU memory or a disk memmap).

Each decode step scores the complete earlier blocks by ``query . summary`` (mean keys, or Quest's
element-wise min/max bound), keeps the ``n_sink`` first and ``n_local`` latest blocks, fills up
to ``top_k`` blocks by score, adds the block holding the newest tokens, gathers only those
blocks and attends to them. With ``offload`` set, only the summaries live on the compute device
and the selected blocks are brought in per step, so resident KV is bounded by the budget.

:class:`SleuthCache` plugs this into transformers' ``generate()`` (see ``hf.py``).
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import tempfile
import weakref

import numpy as np
import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from .config import SparseConfig
from .gating import quest_bounds

_NUMPY_STORAGE = {torch.float32: np.float32, torch.float16: np.float16, torch.bfloat16: np.uint16}


def _grow(t: torch.Tensor, dim: int, need: int) -> torch.Tensor:
    """Double ``t`` along ``dim`` until it holds ``need`` (amortised O(1) appends)."""
    cap = t.shape[dim]
    if need <= cap:
        return t
    new_cap = max(need, 2 * cap, 16)
    shape = list(t.shape)
    shape[dim] = new_cap
    bigger = torch.empty(shape, dtype=t.dtype, device=t.device, pin_memory=t.is_pinned())
    bigger.narrow(dim, 0, cap).copy_(t)
    return bigger


class TensorKVStore:
    """Full K/V as ``[b, h, capacity, d]`` tensors on the compute device or in (pinned) CPU memory."""

    def __init__(self, like: torch.Tensor, where: str):
        self.compute_device = like.device
        pin = where == "cpu" and torch.cuda.is_available()
        storage = "cpu" if where == "cpu" else like.device
        b, h, _, d = like.shape
        self.k = torch.empty(b, h, 0, d, dtype=like.dtype, device=storage, pin_memory=pin)
        self.v = torch.empty_like(self.k, pin_memory=pin) if pin else torch.empty_like(self.k)
        self.length = 0
        self.on_compute_device = torch.device(storage) == self.compute_device

    def append(self, k: torch.Tensor, v: torch.Tensor) -> None:
        end = self.length + k.shape[2]
        self.k, self.v = _grow(self.k, 2, end), _grow(self.v, 2, end)
        self.k[:, :, self.length : end].copy_(k, non_blocking=True)
        self.v[:, :, self.length : end].copy_(v, non_blocking=True)
        self.length = end

    def read(self, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.k[:, :, start:end], self.v[:, :, start:end]
        if not self.on_compute_device:
            k, v = k.to(self.compute_device, non_blocking=True), v.to(self.compute_device, non_blocking=True)
        return k, v

    def gather_blocks(self, blocks: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``blocks [b, h, n]`` complete block ids -> ``[b, h, n * block_size, d]`` on the compute device."""
        b, h, n = blocks.shape
        blocks = blocks.to(self.k.device)
        bi = torch.arange(b, device=self.k.device)[:, None, None]
        hi = torch.arange(h, device=self.k.device)[None, :, None]
        nb = self.length // block_size
        out = []
        for t in (self.k, self.v):
            tb = t[:, :, : nb * block_size].view(b, h, nb, block_size, t.shape[-1])
            g = tb[bi, hi, blocks].reshape(b, h, n * block_size, t.shape[-1])
            out.append(g if self.on_compute_device else g.to(self.compute_device, non_blocking=True))
        return out[0], out[1]

    def nbytes_on_compute_device(self) -> int:
        if not self.on_compute_device:
            return 0
        return 2 * self.length * self.k.shape[0] * self.k.shape[1] * self.k.shape[3] * self.k.element_size()

    def close(self) -> None:
        self.k = self.v = None  # type: ignore[assignment]


class MemmapKVStore:
    """Full K/V in a disk file, block-major ``[n_blocks, b, h, block, d]`` so that a selected block
    is one contiguous read and appends only extend the file."""

    def __init__(self, like: torch.Tensor, block_size: int, directory: str):
        if like.dtype not in _NUMPY_STORAGE:
            raise ValueError(f"kernels/decode.py: cannot memmap dtype {like.dtype}")
        self.compute_device, self.dtype = like.device, like.dtype
        self.np_dtype = _NUMPY_STORAGE[like.dtype]
        b, h, _, d = like.shape
        self.block_shape = (b, h, block_size, d)
        self.block_size = block_size
        os.makedirs(directory, exist_ok=True)
        self.paths = []
        for name in ("k", "v"):  # separate files: growing one must not move the other's data
            fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".bin", dir=directory)
            os.close(fd)
            self.paths.append(path)
        self.capacity = 0
        self.k = self.v = None
        self.length = 0
        self._finalizer = weakref.finalize(self, _remove, *self.paths)

    def _reserve(self, n_blocks: int) -> None:
        if n_blocks <= self.capacity:
            return
        cap = max(n_blocks, 2 * self.capacity, 8)
        per_block = int(np.prod(self.block_shape)) * np.dtype(self.np_dtype).itemsize
        self.k = self.v = None  # drop old maps before the files grow
        maps = []
        for path in self.paths:
            with open(path, "r+b") as f:
                f.truncate(cap * per_block)
            maps.append(np.memmap(path, dtype=self.np_dtype, mode="r+", shape=(cap, *self.block_shape)))
        self.k, self.v = maps
        self.capacity = cap

    def _to_numpy(self, t: torch.Tensor) -> np.ndarray:
        t = t.detach().to("cpu")
        if t.dtype == torch.bfloat16:
            t = t.view(torch.uint16)
        return t.numpy()

    def _to_torch(self, a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a))
        if self.dtype == torch.bfloat16:
            t = t.view(torch.bfloat16)
        return t.to(self.compute_device)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> None:
        bs = self.block_size
        end = self.length + k.shape[2]
        self._reserve(-(-end // bs))
        kn, vn = self._to_numpy(k), self._to_numpy(v)
        pos = self.length
        while pos < end:  # one iteration per touched block
            blk, off = divmod(pos, bs)
            take = min(bs - off, end - pos)
            src = slice(pos - self.length, pos - self.length + take)
            self.k[blk, :, :, off : off + take] = kn[:, :, src]
            self.v[blk, :, :, off : off + take] = vn[:, :, src]
            pos += take
        self.length = end

    def read(self, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        bs = self.block_size
        b0, b1 = start // bs, -(-end // bs)
        out = []
        for a in (self.k, self.v):
            blocks = np.ascontiguousarray(a[b0:b1])  # [n, b, h, bs, d]
            t = self._to_torch(blocks).permute(1, 2, 0, 3, 4).reshape(*self.block_shape[:2], -1, self.block_shape[3])
            out.append(t[:, :, start - b0 * bs : end - b0 * bs])
        return out[0], out[1]

    def gather_blocks(self, blocks: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        b, h, n = blocks.shape
        idx = blocks.cpu().numpy()
        bi = np.arange(b)[:, None, None]
        hi = np.arange(h)[None, :, None]
        out = []
        for a in (self.k, self.v):
            g = a[idx, bi, hi]  # [b, h, n, bs, d], fancy indexing reads only the selected blocks
            out.append(self._to_torch(g).reshape(b, h, n * block_size, -1))
        return out[0], out[1]

    def nbytes_on_compute_device(self) -> int:
        return 0

    def close(self) -> None:
        self.k = self.v = None
        self._finalizer()


def _remove(*paths: str) -> None:
    for path in paths:
        try:
            os.remove(path)
        except OSError:
            pass


class BlockSummaries:
    """Running per-block key sums (and element-wise min/max for Quest), float32 on the compute device."""

    def __init__(self, like: torch.Tensor, block_size: int, quest: bool):
        b, h, _, d = like.shape
        self.block_size, self.quest = block_size, quest
        self.sums = torch.zeros(b, h, 0, d, device=like.device)
        self.mins = torch.empty(b, h, 0, d, device=like.device) if quest else None
        self.maxs = torch.empty(b, h, 0, d, device=like.device) if quest else None

    def add(self, k: torch.Tensor, start: int) -> None:
        m = k.shape[2]
        nb = -(-(start + m) // self.block_size)
        old = self.sums.shape[2]
        self.sums = _grow(self.sums, 2, nb)
        if self.sums.shape[2] > old:
            self.sums[:, :, old:].zero_()
        blk = torch.arange(start, start + m, device=k.device) // self.block_size
        kf = k.float()
        self.sums.index_add_(2, blk, kf)
        if self.quest:
            for name, fill, how in (("mins", math.inf, "amin"), ("maxs", -math.inf, "amax")):
                t = getattr(self, name)
                cap = t.shape[2]
                t = _grow(t, 2, nb)
                if t.shape[2] > cap:
                    t[:, :, cap:].fill_(fill)
                t.scatter_reduce_(2, blk[None, None, :, None].expand_as(kf), kf, how, include_self=True)
                setattr(self, name, t)

    def scores(self, q: torch.Tensor, n_blocks: int, scale: float | None = None) -> torch.Tensor:
        """``q [b, h_kv, R, d]`` (query rows of the group) -> ``[b, h_kv, n_blocks]`` gate scores.

        Mean: ``sum_rows q . kbar`` (MoBA). Quest: per row ``log_softmax(scale * UB)`` over the
        blocks, best row per block, like the prefill gate (``gating.quest_block_scores``)."""
        qf = q.float()
        if not self.quest:
            return torch.einsum("bhd,bhnd->bhn", qf.sum(2), self.sums[:, :, :n_blocks]) / self.block_size
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        ub = quest_bounds(qf, self.mins[:, :, :n_blocks], self.maxs[:, :, :n_blocks]) * scale  # [b, h, R, n]
        return torch.log_softmax(ub, dim=-1).amax(2)

    def nbytes(self) -> int:
        n = sum(t.numel() for t in (self.sums, self.mins, self.maxs) if t is not None)
        return n * 4


class OffloadedKV:
    """What an offloaded :class:`SleuthLayer` hands the attention function during decode instead of
    K/V tensors: a pointer back to the layer, which gathers the blocks it selects."""

    def __init__(self, layer: "SleuthLayer"):
        self.layer = layer

    @property
    def shape(self) -> tuple[int, ...]:
        b, h, _, d = self.layer.store_shape
        return (b, h, self.layer.length, d)


class SleuthLayer(DynamicLayer):
    """A transformers cache layer holding K/V in a :class:`TensorKVStore` or :class:`MemmapKVStore`
    plus incremental :class:`BlockSummaries`.

    ``offload``: ``None`` keeps K/V on the compute device (``update`` returns views, no copies);
    ``"cpu"`` keeps them in (pinned) CPU memory; ``"disk"`` in a memmap under ``offload_dir``.
    Offloaded layers return :class:`OffloadedKV` for single-token steps; a multi-token prefill step
    gets this layer's full K/V materialised on the compute device for the duration of the call.
    """

    def __init__(self, config: SparseConfig | None = None, offload: str | None = None, offload_dir: str | None = None):
        super().__init__()
        if offload not in (None, "cpu", "disk"):
            raise ValueError(f"kernels/decode.py: offload must be None, 'cpu' or 'disk', got {offload!r}")
        self.cfg = SparseConfig.from_any(config)
        # ``offload`` is also a transformers layer method name, hence ``placement``
        self.placement, self.offload_dir = offload, offload_dir
        self.length = 0
        self.last_step_bytes = 0  # KV bytes gathered onto the compute device by the latest decode step

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        self.store_shape = tuple(key_states.shape)
        if self.placement == "disk":
            self.store = MemmapKVStore(key_states, self.cfg.block_size, self.offload_dir or tempfile.gettempdir())
        else:
            self.store = TensorKVStore(key_states, "cpu" if self.placement == "cpu" else "device")
        self.summaries = BlockSummaries(key_states, self.cfg.block_size, self.cfg.decode_gate == "quest")
        self.keys = torch.tensor([], dtype=self.dtype, device=self.device)
        self.values = torch.tensor([], dtype=self.dtype, device=self.device)
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        self.store.append(key_states, value_states)
        self.summaries.add(key_states, self.length)
        self.length += key_states.shape[2]
        if self.placement is not None and key_states.shape[2] == 1:
            handle = OffloadedKV(self)
            return handle, handle
        k, v = self.store.read(0, self.length)
        if self.placement is None:
            self.keys, self.values = k, v
        k._sleuth_layer = self  # lets the attention function find the summaries for decode
        return k, v

    def get_seq_length(self) -> int:
        return self.length

    def resident_kv_bytes(self) -> int:
        """KV-related bytes held on the compute device between steps plus the latest step's gather."""
        if not self.is_initialized:
            return 0
        return self.store.nbytes_on_compute_device() + self.summaries.nbytes() + self.last_step_bytes

    def crop(self, max_length: int) -> None:
        raise NotImplementedError("kernels/decode.py: SleuthLayer does not support cropping (assisted decoding)")

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError("kernels/decode.py: SleuthLayer does not support beam search")

    def offload(self):  # transformers' whole-layer offloading; this layer manages its own placement
        return None

    def prefetch(self):
        return None

    def reset(self) -> None:
        if self.is_initialized:
            self.store.close()
        self.is_initialized = False
        self.length = 0
        self.last_step_bytes = 0


def select_decode_blocks(layer: SleuthLayer, q: torch.Tensor, n_blocks: int, scale: float | None = None) -> torch.Tensor:
    """Top-k complete blocks ``[b, h_kv, min(top_k, n_blocks)]`` (ascending) for query rows ``q [b, h_kv, R, d]``."""
    cfg = layer.cfg
    b, h = q.shape[0], q.shape[1]
    if n_blocks <= cfg.top_k:
        return torch.arange(n_blocks, device=q.device).expand(b, h, n_blocks)
    scores = layer.summaries.scores(q, n_blocks, scale)
    ids = torch.arange(n_blocks, device=q.device)
    forced = (ids < cfg.n_sink) | (ids >= n_blocks - cfg.n_local)
    scores = scores.masked_fill(forced, 1e30)
    return scores.topk(cfg.top_k, dim=-1).indices.sort(dim=-1).values


def sparse_decode_attention(
    query: torch.Tensor, layer: SleuthLayer, *, scale: float | None = None, softcap: float | None = None
) -> torch.Tensor:
    """Attention of new queries ``[b, h_q, q_len, d]`` (the last ``q_len`` cached tokens, usually one)
    over the selected blocks of ``layer``. Returns ``[b, h_q, q_len, d]``."""
    b, hq, lq, d = query.shape
    cfg = layer.cfg
    bs = cfg.block_size
    hkv = layer.store_shape[1]
    group = hq // hkv
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    n = layer.length
    first_new = n - lq
    cur = first_new // bs  # the block holding the first new token is always attended in full
    qg = query.reshape(b, hkv, group * lq, d)  # rows ordered (group head, token)
    sel = select_decode_blocks(layer, qg, cur, scale)
    k_sel, v_sel = layer.store.gather_blocks(sel, bs) if sel.shape[-1] else (None, None)
    k_tail, v_tail = layer.store.read(cur * bs, n)
    k = k_tail if k_sel is None else torch.cat([k_sel, k_tail], dim=2)
    v = v_tail if v_sel is None else torch.cat([v_sel, v_tail], dim=2)
    layer.last_step_bytes = 0 if layer.placement is None else 2 * k.numel() * k.element_size()

    scores = torch.matmul(qg.float(), k.float().transpose(-1, -2)) * scale  # [b, hkv, G*lq, S]
    if softcap is not None:
        scores = softcap * torch.tanh(scores / softcap)
    if lq > 1:  # causal inside the tail for multi-token steps
        tail_pos = torch.arange(cur * bs, n, device=query.device)
        q_pos = torch.arange(first_new, n, device=query.device).repeat(group)
        bad = torch.zeros(group * lq, k.shape[2], dtype=torch.bool, device=query.device)
        bad[:, k.shape[2] - tail_pos.numel() :] = tail_pos[None, :] > q_pos[:, None]
        scores = scores.masked_fill(bad, float("-inf"))
    out = torch.matmul(torch.softmax(scores, dim=-1), v.float())
    return out.reshape(b, hq, lq, d).to(query.dtype)


class SleuthCache(DynamicCache):
    """``DynamicCache`` whose full-attention layers are :class:`SleuthLayer`; sliding-window layers
    (Gemma2) stay transformers' own. Pass it as ``past_key_values`` to ``generate()`` with
    ``attn_implementation="sleuth_sparse"``."""

    def __init__(
        self,
        config=None,
        sparse: SparseConfig | dict | None = None,
        offload: str | None = None,
        offload_dir: str | None = None,
    ):
        super().__init__(config=config)
        self.sparse = SparseConfig.from_any(sparse)
        self._tmpdir = None
        if offload == "disk" and offload_dir is None:
            self._tmpdir = offload_dir = tempfile.mkdtemp(prefix="sleuth-kv-")
            weakref.finalize(self, shutil.rmtree, self._tmpdir, True)
        make = functools.partial(SleuthLayer, self.sparse, offload, offload_dir)
        if self.layers:
            self.layers = [make() if type(layer) is DynamicLayer else layer for layer in self.layers]
        else:
            self.layer_class_to_replicate = make

    def resident_kv_bytes(self) -> int:
        """KV bytes on the compute device now, summed over layers (dense layers count their K/V)."""
        total = 0
        for layer in self.layers:
            if isinstance(layer, SleuthLayer):
                total += layer.resident_kv_bytes()
            elif getattr(layer, "is_initialized", False) and isinstance(layer.keys, torch.Tensor):
                total += layer.keys.numel() * layer.keys.element_size() * 2
        return total
