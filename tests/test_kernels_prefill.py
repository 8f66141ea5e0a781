"""Block-sparse / varlen prefill kernels against the dense and masked-dense references."""

import pytest
import torch

from sleuth.kernels.block_sparse import block_sparse_attention, plan_blocks, varlen_sparse_attention
from sleuth.kernels.config import SparseConfig
from sleuth.kernels.gating import (
    block_key_bounds,
    change_point_boundaries,
    pooled_chunk_keys,
    quest_block_scores,
    quest_bounds,
)
from sleuth.kernels.reference import block_sparse_reference, chunk_sparse_reference, dense_attention

SHAPES = [  # (q heads, kv heads, q_len, kv_len): MHA, GQA, chunked prefill with unaligned offsets
    (4, 4, 160, 160),
    (8, 2, 203, 203),
    (8, 2, 77, 301),
    (4, 1, 130, 520),
    (4, 2, 1, 97),
]


def _qkv(hq, hkv, lq, lk, d=32, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(2, hq, lq, d, generator=g)
    k = torch.randn(2, hkv, lk, d, generator=g)
    v = torch.randn(2, hkv, lk, d, generator=g)
    return q.to(dtype), k.to(dtype), v.to(dtype)


@pytest.mark.parametrize("gate", ["mean", "quest"])
@pytest.mark.parametrize("hq,hkv,lq,lk", SHAPES)
def test_full_budget_equals_dense(hq, hkv, lq, lk, gate):
    q, k, v = _qkv(hq, hkv, lq, lk)
    cfg = SparseConfig(block_size=16, top_k=64, n_sink=1, n_local=2, q_tile=3, gate=gate)
    out = block_sparse_attention(q, k, v, cfg)
    assert out.shape == q.shape
    assert (out - dense_attention(q, k, v)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("gate", ["mean", "quest"])
@pytest.mark.parametrize("hq,hkv,lq,lk", SHAPES)
def test_partial_budget_matches_masked_reference(hq, hkv, lq, lk, gate):
    q, k, v = _qkv(hq, hkv, lq, lk, seed=1)
    cfg = SparseConfig(block_size=16, top_k=3, n_sink=1, n_local=1, q_tile=2, gate=gate)
    out, sel = block_sparse_attention(q, k, v, cfg, return_selection=True)
    ref = block_sparse_reference(q, k, v, sel)
    assert (out - ref).abs().max().item() <= 1e-5
    if lk // 16 > 5 and lq > 32:  # sparse for real: differs from dense
        assert (out - dense_attention(q, k, v)).abs().max().item() > 1e-3
    # every selected block is earlier than its query block, sinks and the latest block are kept
    blocks = sel.blocks
    if blocks.shape[2]:
        own = torch.arange(sel.first_q_block + sel.n_dense, sel.first_q_block + sel.n_dense + blocks.shape[2])
        assert (blocks < own[None, None, :, None]).all()
        assert (blocks == 0).any(-1).all()
        assert (blocks == (own - 1)[None, None, :, None]).any(-1).all()


def test_softcap_and_scale_follow_reference():
    q, k, v = _qkv(8, 2, 100, 180, seed=2)
    cfg = SparseConfig(block_size=16, top_k=4, n_sink=1, n_local=1)
    out, sel = block_sparse_attention(q, k, v, cfg, scale=0.3, softcap=5.0, return_selection=True)
    ref = block_sparse_reference(q, k, v, sel, scale=0.3, softcap=5.0)
    assert (out - ref).abs().max().item() <= 1e-5


def test_bf16_close_to_fp32_reference():
    q, k, v = _qkv(8, 2, 150, 330, dtype=torch.bfloat16, seed=3)
    cfg = SparseConfig(block_size=32, top_k=4, n_sink=1, n_local=1)
    out, sel = block_sparse_attention(q, k, v, cfg, return_selection=True)
    assert out.dtype == torch.bfloat16
    ref = block_sparse_reference(q.float(), k.float(), v.float(), sel)
    assert (out.float() - ref).abs().max().item() <= 3e-2
    full = block_sparse_attention(q, k, v, SparseConfig(block_size=32, top_k=64))
    assert (full.float() - dense_attention(q.float(), k.float(), v.float())).abs().max().item() <= 3e-2


@pytest.mark.parametrize("gate", ["mean", "quest"])
def test_gate_finds_planted_needle_block(gate):
    g = torch.Generator().manual_seed(4)
    d, bs, n_blocks = 64, 16, 24
    k = torch.randn(1, 2, bs * n_blocks, d, generator=g) * 0.1
    q = torch.randn(1, 4, bs * n_blocks, d, generator=g) * 0.1
    direction = torch.nn.functional.normalize(torch.randn(d, generator=g), dim=0)
    needle = 7
    k[:, :, needle * bs : (needle + 1) * bs] += 3.0 * direction
    q[:, :, -bs:] += 3.0 * direction  # only the last query block asks for it
    sel = plan_blocks(q, k, SparseConfig(block_size=bs, top_k=3, n_sink=1, n_local=1, gate=gate))
    first = sel.first_q_block + sel.n_dense
    assert (sel.blocks[0, :, -1] == needle).any(-1).all()
    if gate == "quest":
        # every row with a positive component along the shift really does attend more to that
        # block (its bound, and its true q.k, are the largest), so quest may pick it everywhere
        return
    # the mean gate follows the summed query: the other query blocks are not all drawn to it
    others = sel.blocks[0, :, needle + 2 - first : -1]
    assert not (others == needle).any(-1).all()


def test_quest_bound_is_the_elementwise_form_and_bounds_every_key():
    g = torch.Generator().manual_seed(6)
    k = torch.randn(1, 2, 100, 16, generator=g)  # 100 keys: the last block of 32 is partial
    q = torch.randn(1, 2, 7, 16, generator=g)
    kmin, kmax = block_key_bounds(k, 32)
    ub = quest_bounds(q, kmin, kmax)  # [1, 2, 7, 4]
    plain = torch.maximum(q[:, :, :, None, :] * kmin[:, :, None], q[:, :, :, None, :] * kmax[:, :, None]).sum(-1)
    assert torch.allclose(ub, plain, atol=1e-5)
    dots = q @ k.transpose(-1, -2)  # [1, 2, 7, 100]
    for i in range(4):
        assert (ub[..., i] >= dots[..., i * 32 : (i + 1) * 32].amax(-1) - 1e-5).all()


def test_quest_scores_match_a_plain_loop():
    g = torch.Generator().manual_seed(7)
    b, h, nq, r, d, nk = 1, 2, 3, 5, 8, 6
    rows = torch.randn(b, h, nq, r, d, generator=g)
    kmin, kmax = block_key_bounds(torch.randn(b, h, nk * 4, d, generator=g), 4)
    ids = torch.tensor([3, 4, 5])
    valid = torch.ones(nq, r, dtype=torch.bool)
    valid[0, :2] = False  # padded rows do not vote
    got = quest_block_scores(rows, kmin, kmax, ids, scale=0.5, row_valid=valid, max_elems=1)  # one block a step
    for j in range(nq):
        for hh in range(h):
            best = torch.full((nk,), float("-inf"))
            for t in range(r):
                if not valid[j, t]:
                    continue
                qv = rows[0, hh, j, t]
                ub = torch.stack([torch.maximum(qv * kmin[0, hh, i], qv * kmax[0, hh, i]).sum() for i in range(nk)])
                cand = ub[: int(ids[j])] * 0.5
                lp = cand - torch.logsumexp(cand, 0)
                best[: int(ids[j])] = torch.maximum(best[: int(ids[j])], lp)
            assert torch.allclose(got[0, hh, j], best, atol=1e-5)


def test_quest_gate_finds_one_needle_token_that_the_mean_gate_dilutes():
    # one distinctive key among 31 ordinary ones per block, asked for by one query token: the
    # mean of the block hides it, the min/max bound does not
    g = torch.Generator().manual_seed(8)
    d, bs, n_blocks = 64, 32, 40
    k = torch.randn(1, 1, bs * n_blocks, d, generator=g)
    q = torch.randn(1, 2, bs * n_blocks, d, generator=g)
    direction = torch.nn.functional.normalize(torch.randn(d, generator=g), dim=0)
    needle = 9
    k[:, :, needle * bs + 5] = 12.0 * direction
    q[:, :, -3] = 12.0 * direction
    found = {}
    for gate in ("mean", "quest"):
        sel = plan_blocks(q, k, SparseConfig(block_size=bs, top_k=4, n_sink=1, n_local=1, gate=gate))
        found[gate] = bool((sel.blocks[0, 0, -1] == needle).any())
    assert found["quest"]
    assert not found["mean"]


@pytest.mark.parametrize("hq,hkv,lq,lk", SHAPES)
def test_varlen_full_budget_equals_dense(hq, hkv, lq, lk):
    q, k, v = _qkv(hq, hkv, lq, lk, seed=5)
    cfg = SparseConfig(mode="varlen", top_k=64, n_sink=1, n_local=1, min_chunk=8, max_chunk=40)
    out = varlen_sparse_attention(q, k, v, cfg)
    assert (out - dense_attention(q, k, v)).abs().max().item() <= 1e-5


def test_varlen_partial_budget_matches_masked_reference():
    q, k, v = _qkv(8, 2, 140, 400, seed=6)
    cfg = SparseConfig(mode="varlen", top_k=3, n_sink=1, n_local=1, min_chunk=12, max_chunk=40)
    starts = [0, 17, 50, 64, 100, 139, 170, 211, 250, 261, 300, 333, 370]
    out, (st, sel) = varlen_sparse_attention(q, k, v, cfg, starts=starts, return_selection=True)
    assert st.tolist() == starts
    assert (out - chunk_sparse_reference(q, k, v, st, sel)).abs().max().item() <= 1e-5


def test_change_points_follow_key_shifts_and_length_limits():
    g = torch.Generator().manual_seed(7)
    segments = [30, 55, 20, 70, 45]  # keys cluster around a different direction per segment
    k = torch.cat([torch.randn(1, 2, 1, 32, generator=g) * 4 + torch.randn(1, 2, n, 32, generator=g) * 0.2 for n in segments], 2)
    starts = change_point_boundaries(k, min_len=10, max_len=80)
    expected = torch.tensor(segments).cumsum(0)[:-1].tolist()
    assert starts[0] == 0 and set(expected) <= set(starts)
    lengths = torch.diff(torch.tensor(starts + [k.shape[2]]))
    assert lengths.min() >= 10 and lengths.max() <= 80


def test_chunk_pooling_is_sqrt_length_normalised():
    k = torch.ones(1, 1, 12, 4)
    pooled = pooled_chunk_keys(k, torch.tensor([0, 3]), torch.tensor([3, 9]))
    assert torch.allclose(pooled[0, 0, :, 0], torch.tensor([3 / 3**0.5, 9 / 3.0]))


def test_rejects_bad_shapes_with_one_line_message():
    q, k, v = _qkv(6, 4, 10, 10)
    with pytest.raises(ValueError, match="kernels/block_sparse.py"):
        block_sparse_attention(q, k, v)
    with pytest.raises(ValueError, match="kernels/config.py"):
        SparseConfig(top_k=1, n_sink=1, n_local=1)
