"""The sparse paths on a CUDA device against their plain references (skipped without CUDA).

CI has no GPU; ``scripts/gpu_check.sh`` runs these on a lent one. They cover what the CPU tests
cannot: PyTorch's CUDA flash kernel inside the torch prefill path (its log-sum-exp merges the
partial results), the fused Triton quest gate against the torch gate, the Triton prefill inside
whole transformers models, and decode with the KV cache offloaded from the GPU. All passed on an
H200 (docs/kernels.md, section GPU).
"""

import pytest
import torch

from sleuth.kernels.block_sparse import block_sparse_attention
from sleuth.kernels.config import SparseConfig
from sleuth.kernels.reference import block_sparse_reference, dense_attention

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _qkv(hq, hkv, lq, lk, d, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, h, n, d, generator=g) for h, n in ((hq, lq), (hkv, lk), (hkv, lk)))
    return [t.to("cuda", dtype) for t in (q, k, v)]


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 3e-2), (torch.float16, 5e-3)])
@pytest.mark.parametrize("gate", ["mean", "quest"])
@pytest.mark.parametrize("hq,hkv,lq,lk", [(8, 2, 1000, 1000), (8, 2, 333, 1100)])
def test_torch_prefill_on_cuda_matches_reference(dtype, tol, gate, hq, hkv, lq, lk):
    q, k, v = _qkv(hq, hkv, lq, lk, 64, dtype)
    cfg = SparseConfig(block_size=64, top_k=5, n_sink=1, n_local=1, gate=gate, q_tile=3)
    out, sel = block_sparse_attention(q, k, v, cfg, return_selection=True)
    assert out.dtype == dtype and out.is_cuda
    ref = block_sparse_reference(q.float(), k.float(), v.float(), sel)
    assert (out.float() - ref).abs().max().item() <= tol
    full = block_sparse_attention(q, k, v, SparseConfig(block_size=64, top_k=64))
    assert (full.float() - dense_attention(q.float(), k.float(), v.float())).abs().max().item() <= tol


def test_cuda_selection_matches_cpu_selection():
    """The gate gives the same blocks on the GPU as on the CPU (float32, no ties in random data)."""
    q, k, v = _qkv(8, 2, 900, 900, 64, torch.float32, seed=3)
    cfg = SparseConfig(block_size=64, top_k=4, gate="quest")
    _, sel_gpu = block_sparse_attention(q, k, v, cfg, return_selection=True)
    _, sel_cpu = block_sparse_attention(q.cpu(), k.cpu(), v.cpu(), cfg, return_selection=True)
    assert torch.equal(sel_gpu.blocks.cpu(), sel_cpu.blocks)


def _tiny_pair(backend):
    from transformers import AutoModelForCausalLM, Qwen2Config

    from sleuth.kernels import hf

    hf.register()
    cfg = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=8,
               num_key_value_heads=2, vocab_size=1000, max_position_embeddings=4096)
    torch.manual_seed(0)
    dense = AutoModelForCausalLM.from_config(Qwen2Config(**cfg), attn_implementation="sdpa").eval()
    sparse = AutoModelForCausalLM.from_config(Qwen2Config(**cfg), attn_implementation="sleuth_sparse").eval()
    sparse.load_state_dict(dense.state_dict())
    hf.configure(sparse, block_size=64, top_k=64, min_sparse_len=128, prefill_backend=backend)
    return dense.cuda(), sparse.cuda()


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_whole_model_at_full_budget_matches_sdpa_on_cuda(backend):
    if backend == "triton":
        from sleuth.kernels.triton_prefill import available

        if not available():
            pytest.skip("needs triton")
    dense, sparse = _tiny_pair(backend)
    ids = torch.randint(0, 1000, (1, 700), generator=torch.Generator().manual_seed(1)).cuda()
    with torch.inference_mode():
        want = dense(ids).logits
        got = sparse(ids).logits
    assert (got - want).abs().max().item() <= 1e-3


def test_offloaded_decode_on_cuda_matches_sdpa_at_full_budget():
    from sleuth.kernels import hf

    dense, sparse = _tiny_pair("torch")
    ids = torch.randint(0, 1000, (1, 400), generator=torch.Generator().manual_seed(2)).cuda()
    with torch.inference_mode():
        want = dense.generate(ids, max_new_tokens=8, do_sample=False)
        for offload in ("cpu", "disk"):
            got = sparse.generate(ids, max_new_tokens=8, do_sample=False,
                                  past_key_values=hf.make_cache(sparse, offload=offload))
            assert torch.equal(got, want), offload


def _triton():
    from sleuth.kernels.triton_prefill import available

    if not available():
        pytest.skip("needs triton")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("b,h,nq,r,d,n_keys,first", [(1, 2, 5, 40, 64, 130, 3), (2, 1, 3, 200, 128, 2230, 137),
                                                     (1, 1, 4, 16, 32, 60, 0)])
def test_triton_gate_matches_torch_gate(dtype, b, h, nq, r, d, n_keys, first):
    """The fused gate kernels against gating.quest_block_scores on the same (upcast) inputs."""
    from sleuth.kernels.gating import block_key_bounds, quest_block_scores
    from sleuth.kernels.triton_gate import quest_block_scores_triton

    _triton()
    g = torch.Generator().manual_seed(n_keys)
    rows = torch.randn(b, h, nq, r, d, generator=g).to("cuda", dtype)
    kmin, kmax = block_key_bounds(torch.randn(b, h, n_keys, d, generator=g).to("cuda", dtype), 16)
    valid = (torch.rand(nq, r, generator=g) > 0.2).cuda()
    ids = torch.arange(first, first + nq, device="cuda")
    want = quest_block_scores(rows.float(), kmin, kmax, ids, 0.125, valid)
    got = quest_block_scores_triton(rows, kmin, kmax, first, 0.125, valid)
    finite = torch.isfinite(want)
    assert torch.equal(finite, torch.isfinite(got))
    assert (got[finite] - want[finite]).abs().max().item() <= 1e-3
