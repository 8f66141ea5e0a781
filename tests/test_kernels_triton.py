"""Triton block-sparse prefill against the masked-dense reference (needs CUDA + triton)."""

import importlib

import pytest
import torch

from sleuth.kernels.config import SparseConfig
from sleuth.kernels.reference import block_sparse_reference, dense_attention


def test_module_imports_without_triton():
    mod = importlib.import_module("sleuth.kernels.triton_prefill")
    assert callable(mod.triton_block_sparse_attention)
    if not mod.available():
        with pytest.raises(RuntimeError, match="kernels/triton_prefill.py"):
            mod.triton_block_sparse_attention(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16))


def test_block_table_lists_own_block_and_selection():
    from sleuth.kernels.block_sparse import plan_blocks
    from sleuth.kernels.triton_prefill import block_table

    q, k = torch.randn(1, 4, 77, 32), torch.randn(1, 2, 300, 32)
    cfg = SparseConfig(block_size=16, top_k=3, n_sink=1, n_local=1)
    sel = plan_blocks(q, k, cfg)
    table = block_table(sel, 19, 3)
    own = torch.arange(sel.first_q_block, 19)
    assert table.shape == (1, 2, len(own), 4)
    assert torch.equal(table[..., -1].long(), own.expand(1, 2, -1))
    assert torch.equal(table[..., :3].long(), sel.blocks)


gpu = pytest.mark.skipif(
    not importlib.import_module("sleuth.kernels.triton_prefill").available(), reason="needs CUDA and triton"
)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("hq,hkv,lq,lk", [(4, 4, 256, 256), (8, 2, 200, 200), (8, 2, 77, 301)])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 3e-2)])
@pytest.mark.parametrize("gate", ["mean", "quest"])
def test_triton_matches_reference(hq, hkv, lq, lk, dtype, tol, gate):
    from sleuth.kernels.triton_prefill import triton_block_sparse_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, h, n, 64, generator=g) for h, n in ((hq, lq), (hkv, lk), (hkv, lk)))
    dev = [t.to("cuda", dtype) for t in (q, k, v)]
    cfg = SparseConfig(block_size=16, top_k=3, n_sink=1, n_local=1, gate=gate)
    out, sel = triton_block_sparse_attention(*dev, cfg, return_selection=True)
    ref = block_sparse_reference(*(t.float() for t in dev), sel)
    assert (out.float() - ref).abs().max().item() <= tol
    full = triton_block_sparse_attention(*dev, SparseConfig(block_size=16, top_k=64))
    assert (full.float() - dense_attention(*(t.float() for t in dev))).abs().max().item() <= tol
