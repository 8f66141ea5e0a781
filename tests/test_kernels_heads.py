"""Per-head budgets (kernels/heads.py): the kernel against its masked dense reference, the counts
a policy reports, calibration on a tiny model, and the transformers path. CUDA cases skip here."""

import importlib

import pytest
import torch

from sleuth.kernels import heads
from sleuth.kernels.block_sparse import block_sparse_attention
from sleuth.kernels.config import SparseConfig
from sleuth.kernels.reference import block_sparse_reference, causal_mask, dense_attention

SHAPES = [  # (q heads, kv heads, q_len, kv_len): GQA, MHA, chunked prefill, one decode step
    (6, 2, 203, 203),
    (4, 4, 160, 160),
    (6, 2, 77, 301),
    (6, 2, 1, 250),
]


def _qkv(hq, hkv, lq, lk, d=32, dtype=torch.float32, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, h, n, d, generator=g) for h, n in ((hq, lq), (hkv, lk), (hkv, lk)))
    return [t.to(device, dtype) for t in (q, k, v)]


def _budgets(hq, seed):
    g = torch.Generator().manual_seed(seed)
    return [[-1, 0, 1, 2, 3, 50][int(i)] for i in torch.randint(0, 6, (hq,), generator=g)]


@pytest.mark.parametrize("hq,hkv,lq,lk", SHAPES)
@pytest.mark.parametrize("n_sink", [0, 1, 2])
def test_policy_matches_masked_reference(hq, hkv, lq, lk, n_sink):
    q, k, v = _qkv(hq, hkv, lq, lk, seed=hq + lq)
    budgets = _budgets(hq, lq + n_sink)
    cfg = SparseConfig(block_size=16, top_k=3, n_sink=n_sink, n_local=0, q_tile=3)
    out = heads.head_policy_attention(q, k, v, budgets, cfg)
    ref = heads.head_policy_reference(q, k, v, budgets, cfg)
    assert out.shape == q.shape
    assert (out - ref).abs().max().item() <= 1e-5


def test_policy_softcap_scale_and_bf16():
    q, k, v = _qkv(6, 2, 150, 330, seed=3)
    budgets = [-1, 2, 2, 4, -1, 0]
    cfg = SparseConfig(block_size=32, top_k=3, n_sink=1, n_local=1)
    out = heads.head_policy_attention(q, k, v, budgets, cfg, scale=0.3, softcap=5.0)
    ref = heads.head_policy_reference(q, k, v, budgets, cfg, scale=0.3, softcap=5.0)
    assert (out - ref).abs().max().item() <= 1e-5
    qb, kb, vb = (t.bfloat16() for t in (q, k, v))
    out = heads.head_policy_attention(qb, kb, vb, budgets, cfg)
    assert out.dtype == torch.bfloat16
    assert (out.float() - heads.head_policy_reference(q, k, v, budgets, cfg)).abs().max().item() <= 3e-2


def test_all_dense_and_all_large_budgets_equal_dense_attention():
    q, k, v = _qkv(6, 2, 200, 200, seed=4)
    for budgets in ([-1] * 6, [1000] * 6):
        out = heads.head_policy_attention(q, k, v, budgets, SparseConfig(block_size=16))
        assert (out - dense_attention(q, k, v)).abs().max().item() <= 1e-5


def test_window_gate_keeps_sinks_and_latest_blocks():
    q, k, v = _qkv(4, 2, 300, 300, seed=5)
    cfg = SparseConfig(block_size=16, top_k=4, n_sink=1, n_local=0, gate="window")
    out, sel = block_sparse_attention(q, k, v, cfg, return_selection=True)
    assert (out - block_sparse_reference(q, k, v, sel)).abs().max().item() <= 1e-5
    own = torch.arange(sel.first_q_block + sel.n_dense, 19)
    want = torch.stack([torch.tensor([0, j - 3, j - 2, j - 1]) for j in own.tolist()])
    assert torch.equal(sel.blocks, want.expand(2, 2, -1, -1))


@pytest.mark.parametrize("length", [100, 256, 1000])
def test_attended_fraction_counts_the_mask(length):
    budgets = [[-1, 0, 3], [2, 2, 7]]
    bs = 16
    causal = causal_mask(length, length)
    pairs = [(heads.head_policy_mask(layer, length, length, bs, 1) & causal).sum(dim=(1, 2)) for layer in budgets]
    want = float(torch.stack(pairs).double().sum() / (6 * causal.sum()))
    assert heads.attended_fraction(budgets, length, bs) == pytest.approx(want, rel=1e-9)
    assert heads.attended_fraction([[-1, -1]], length, bs) == pytest.approx(1.0)


def test_kv_fraction_counts_whole_groups():
    # two kv heads of two query heads: group 0 has a dense head, group 1 keeps its largest window
    # (2 earlier blocks) plus the block being filled
    assert heads.kv_fraction([[-1, 0, 2, 1]], 1024, 64, 2) == pytest.approx((1 + 3 * 64 / 1024) / 2)
    assert heads.kv_fraction([[-1, -1]], 1024, 64, 1) == 1.0


SCORES = {"version": heads.SCORES_VERSION, "n_kv_heads": 2,
          "echo": [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
          "induction": [[0.9, 0.1, 0.0, 0.2], [0.0, 0.05, 0.3, 0.0]]}


def test_policy_ranks_query_heads_or_kv_groups():
    assert heads.policy(SCORES, dense_fraction=0.25, window=256, block_size=64, per="query") == [
        [-1, 3, 3, 3], [3, 3, -1, 3]]
    # per kv group (pairs of query heads): group scores 0.9, 0.2, 0.05, 0.3 -> the best two are dense
    assert heads.policy(SCORES, dense_fraction=0.5, window=256, block_size=64, per="kv") == [
        [-1, -1, 3, 3], [3, 3, -1, -1]]
    assert heads.policy(SCORES, dense_fraction=0.0, window=128, block_size=64) == [[1] * 4, [1] * 4]


def test_config_stays_backward_compatible():
    old = {"block_size": 64, "top_k": 7, "n_sink": 1, "n_local": 1, "min_sparse_len": 0, "gate": "quest"}
    cfg = SparseConfig.from_any(old)
    assert cfg.head_budgets is None and cfg.budgets_for(0) is None
    cfg = SparseConfig.from_any({**old, "head_budgets": [(-1, 2)]})
    assert cfg.budgets_for(0) == [-1, 2] and cfg.budgets_for(1) is None and cfg.budgets_for(None) is None
    assert SparseConfig.from_any(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="head_budgets"):
        SparseConfig(head_budgets=[[-2]])


def _tiny(impl, layers=2):
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(0)
    cfg = Qwen2Config(hidden_size=96, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=6,
                      num_key_value_heads=2, vocab_size=1000, max_position_embeddings=2048)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation=impl).eval()


def test_calibrate_scores_every_head_and_restores_attention(tmp_path):
    model = _tiny("sdpa")
    scores = heads.calibrate(model, repeat=48, trials=2, token_range=(10, 900))
    assert model.config._attn_implementation == "sdpa"
    assert (scores["n_layers"], scores["n_heads"], scores["n_kv_heads"]) == (2, 6, 2)
    s = heads.head_scores(scores)
    assert s.shape == (2, 6) and (s >= 0).all() and (s <= 1).all()
    path = heads.save_scores(scores, tmp_path / "m.heads.json")
    assert heads.load_scores(path) == scores
    assert heads.load_scores(tmp_path / "absent.json") is None


def test_far_scores_measure_mass_outside_the_window():
    model = _tiny("sdpa")
    ids = torch.randint(0, 1000, (1, 200), generator=torch.Generator().manual_seed(3))
    far = heads.calibrate_far(model, ids, window=64, block_size=16, rows=50)
    assert model.config._attn_implementation == "sdpa"
    s = heads.head_scores(far, "far")
    assert s.shape == (2, 6) and (s > 0).all() and (s < 1).all()  # random weights attend everywhere
    # a window holding every key leaves nothing outside it
    assert heads.head_scores(heads.calibrate_far(model, ids, window=256, block_size=16, rows=50), "far").abs().max() < 1e-6
    budgets = heads.policy({**far, "n_kv_heads": 2}, dense_fraction=0.5, window=64, block_size=16, kind="far")
    assert sum(x < 0 for layer in budgets for x in layer) == 6


def test_whole_model_policy_through_transformers():
    from sleuth.kernels import hf

    hf.register()
    dense = _tiny("sdpa")
    sparse = _tiny("sleuth_sparse")
    sparse.load_state_dict(dense.state_dict())
    ids = torch.randint(0, 1000, (1, 300), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = dense(ids).logits
        hf.configure(sparse, block_size=16, min_sparse_len=0, head_budgets=[[-1] * 6, [-1] * 6])
        assert (sparse(ids).logits - want).abs().max().item() <= 1e-4
        policy = [[-1, 1, 1, 2, 2, 2], [0, 0, -1, -1, 3, 3]]
        hf.configure(sparse, head_budgets=policy)
        got = sparse(ids).logits
        assert (got - want).abs().max().item() > 1e-3  # the windows change something
        # decoding through the cache reads the same keys as one prefill of the whole sequence
        from transformers import DynamicCache

        cache = DynamicCache(config=sparse.config)
        sparse(ids[:, :290], past_key_values=cache, use_cache=True)
        step = sparse(ids[:, 290:], past_key_values=cache, use_cache=True).logits
        assert (step - got[:, 290:]).abs().max().item() <= 1e-4


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 3e-2)])
def test_policy_on_cuda_matches_reference(dtype, tol):
    q, k, v = _qkv(12, 2, 1000, 1000, 64, dtype, seed=6, device="cuda")
    budgets = [-1, 3, 3, 5, -1, 0, 3, 3, 3, 3, 3, 7]
    cfg = SparseConfig(block_size=64, top_k=3, n_sink=1, n_local=1)
    ref = heads.head_policy_reference(q.float(), k.float(), v.float(), budgets, cfg)
    out = heads.head_policy_attention(q, k, v, budgets, cfg)
    assert (out.float() - ref).abs().max().item() <= tol
    if dtype == torch.bfloat16 and importlib.import_module("sleuth.kernels.triton_prefill").available():
        from sleuth.kernels.triton_prefill import triton_block_sparse_attention

        out = heads.head_policy_attention(q, k, v, budgets, cfg, sparse_fn=triton_block_sparse_attention)
        assert (out.float() - ref).abs().max().item() <= tol
