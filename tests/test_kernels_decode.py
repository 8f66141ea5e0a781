"""Sparse decode: block summaries, selection, offloaded stores, against dense attention."""

import pytest
import torch

from sleuth.kernels.config import SparseConfig
from sleuth.kernels.decode import SleuthLayer, select_decode_blocks, sparse_decode_attention
from sleuth.kernels.reference import dense_attention


def _fill(layer, k, v, chunks):
    """Append k/v [b, h, n, d] to the layer in the given chunk sizes, like prefill then decode."""
    pos = 0
    for m in chunks:
        layer.update(k[:, :, pos : pos + m], v[:, :, pos : pos + m])
        pos += m
    assert layer.get_seq_length() == pos


def _kv(n, hkv=2, d=32, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, hkv, n, d, generator=g).to(dtype), torch.randn(1, hkv, n, d, generator=g).to(dtype)


@pytest.mark.parametrize("offload", [None, "cpu", "disk"])
@pytest.mark.parametrize("gate", ["mean", "quest"])
def test_full_budget_decode_equals_dense(offload, gate, tmp_path):
    k, v = _kv(150)
    layer = SleuthLayer(SparseConfig(block_size=16, top_k=32, n_sink=1, n_local=1, decode_gate=gate), offload, str(tmp_path))
    _fill(layer, k, v, [100, 30, 1, 1, 17, 1])
    q = torch.randn(1, 8, 1, 32)
    out = sparse_decode_attention(q, layer)
    assert (out - dense_attention(q, k, v)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("offload", [None, "disk"])
def test_partial_budget_is_dense_over_kept_blocks(offload, tmp_path):
    bs, n = 16, 16 * 12 + 5
    k, v = _kv(n, seed=1)
    layer = SleuthLayer(SparseConfig(block_size=bs, top_k=4, n_sink=1, n_local=1), offload, str(tmp_path))
    _fill(layer, k, v, [n - 3, 1, 1, 1])
    q = torch.randn(1, 8, 1, 32)
    cur = (n - 1) // bs
    sel = select_decode_blocks(layer, q.reshape(1, 2, 4, 32), cur)
    assert sel.shape == (1, 2, 4)
    assert (sel[..., 0] == 0).all() and (sel[..., -1] == cur - 1).all()  # sink and local kept
    block_of = torch.arange(n) // bs
    keep = torch.zeros(1, 2, 1, n, dtype=torch.bool)
    for h in range(2):
        keep[0, h, 0] = torch.isin(block_of, sel[0, h]) | (block_of == cur)
    ref = dense_attention(q, k, v, mask=keep.repeat_interleave(4, dim=1))
    assert (sparse_decode_attention(q, layer) - ref).abs().max().item() <= 1e-5
    assert (sparse_decode_attention(q, layer) - dense_attention(q, k, v)).abs().max().item() > 1e-4


def test_multi_token_step_is_causal():
    k, v = _kv(90, seed=2)
    layer = SleuthLayer(SparseConfig(block_size=16, top_k=32))
    _fill(layer, k, v, [83, 7])
    q = torch.randn(1, 8, 7, 32)
    assert (sparse_decode_attention(q, layer) - dense_attention(q, k, v)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("gate", ["mean", "quest"])
def test_summaries_track_appended_keys_and_find_needle(gate):
    bs, d = 16, 32
    k, v = _kv(16 * 20, d=d, seed=3)
    k *= 0.1
    direction = torch.nn.functional.normalize(torch.randn(d), dim=0)
    k[:, :, 5 * bs : 6 * bs] += 3 * direction
    layer = SleuthLayer(SparseConfig(block_size=bs, top_k=3, n_sink=1, n_local=1, decode_gate=gate))
    _fill(layer, k, v, [37, 100, 1, 1, 181])
    sums = layer.summaries.sums[:, :, :20]
    assert torch.allclose(sums, k.view(1, 2, 20, bs, d).sum(3), atol=1e-5)
    if gate == "quest":
        assert torch.equal(layer.summaries.maxs[:, :, :20], k.view(1, 2, 20, bs, d).amax(3))
    q = (3 * direction).expand(1, 8, 1, d)
    sel = select_decode_blocks(layer, q.reshape(1, 2, 4, d), 19)
    assert (sel == 5).any(-1).all()


def test_offload_bounds_resident_bytes(tmp_path):
    k, v = _kv(16 * 64, seed=4)
    dense_layer = SleuthLayer(SparseConfig(block_size=16, top_k=4))
    disk_layer = SleuthLayer(SparseConfig(block_size=16, top_k=4), "disk", str(tmp_path))
    for layer in (dense_layer, disk_layer):
        _fill(layer, k, v, [16 * 64 - 1, 1])
        sparse_decode_attention(torch.randn(1, 8, 1, 32), layer)
    full = 2 * k.numel() * k.element_size()
    assert dense_layer.resident_kv_bytes() >= full
    gathered = 2 * 2 * 5 * 16 * 32 * 4  # k and v, 2 kv heads, top_k + current block
    assert disk_layer.resident_kv_bytes() <= gathered + disk_layer.summaries.nbytes()
    assert disk_layer.resident_kv_bytes() < full / 4


def test_bf16_disk_store_round_trips(tmp_path):
    k, v = _kv(70, dtype=torch.bfloat16, seed=5)
    layer = SleuthLayer(SparseConfig(block_size=16, top_k=8), "disk", str(tmp_path))
    _fill(layer, k, v, [50, 20])
    rk, rv = layer.store.read(0, 70)
    assert torch.equal(rk, k) and torch.equal(rv, v)
