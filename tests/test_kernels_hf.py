"""transformers integration: tiny random Llama / Qwen2 / Gemma2 models with attn_implementation="sleuth_sparse"."""

import pytest
import torch
from transformers import AutoModelForCausalLM, DynamicCache, Gemma2Config, LlamaConfig, Qwen2Config
from transformers.masking_utils import causal_mask_function, sliding_window_causal_mask_function

from sleuth.kernels import hf

hf.register()

PROMPT_LEN, NEW = 150, 12


def _pair(config_cls, dense_impl="sdpa", **extra):
    """The same seeded weights loaded as an sdpa model and a sleuth_sparse model."""
    cfg = dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=1000, max_position_embeddings=2048,
    )
    cfg.update(extra)
    torch.manual_seed(0)
    dense = AutoModelForCausalLM.from_config(config_cls(**cfg), attn_implementation=dense_impl).eval()
    sparse = AutoModelForCausalLM.from_config(config_cls(**cfg), attn_implementation="sleuth_sparse").eval()
    sparse.load_state_dict(dense.state_dict())
    return dense, sparse


def _prompt(seed=1, n=PROMPT_LEN):
    return torch.randint(0, 1000, (1, n), generator=torch.Generator().manual_seed(seed))


def _chunked_generate(model, ids, cache, chunk, new):
    """Feed the prompt through the cache in chunks, then greedy-decode step by step."""
    with torch.no_grad():
        for s in range(0, ids.shape[1], chunk):
            logits = model(ids[:, s : s + chunk], past_key_values=cache, use_cache=True).logits
        out = []
        for _ in range(new):
            tok = logits[:, -1].argmax(-1, keepdim=True)
            out.append(tok)
            logits = model(tok, past_key_values=cache, use_cache=True).logits
    return torch.cat(out, 1)


@pytest.fixture(params=[LlamaConfig, Qwen2Config], ids=["llama", "qwen2"])
def models(request):
    return _pair(request.param)


@pytest.mark.parametrize("min_sparse_len", [100_000, 32], ids=["dense-fallback", "sparse-active"])
def test_generate_matches_sdpa_at_full_budget(models, min_sparse_len):
    dense, sparse = models
    hf.configure(sparse, block_size=16, top_k=64, n_sink=1, n_local=1, min_sparse_len=min_sparse_len)
    ids = _prompt()
    with torch.no_grad():
        want = dense.generate(ids, max_new_tokens=NEW, do_sample=False)
        assert torch.equal(sparse.generate(ids, max_new_tokens=NEW, do_sample=False), want)
        got = sparse.generate(ids, max_new_tokens=NEW, do_sample=False, past_key_values=hf.make_cache(sparse))
        assert torch.equal(got, want)
        assert (sparse(ids).logits - dense(ids).logits).abs().max().item() <= 1e-4


@pytest.mark.parametrize("cache_kind", ["dynamic", "sleuth", "sleuth-disk"])
def test_chunked_prefill_matches_sdpa(models, cache_kind):
    dense, sparse = models
    hf.configure(sparse, block_size=16, top_k=64, n_sink=1, n_local=1, min_sparse_len=32)
    ids = _prompt(seed=2)
    make = {
        "dynamic": lambda m: DynamicCache(config=m.config),
        "sleuth": lambda m: hf.make_cache(m),
        "sleuth-disk": lambda m: hf.make_cache(m, offload="disk"),
    }[cache_kind]
    want = _chunked_generate(dense, ids, DynamicCache(config=dense.config), PROMPT_LEN, NEW)
    assert torch.equal(_chunked_generate(sparse, ids, make(sparse), 48, NEW), want)  # 48: not a block multiple


@pytest.mark.parametrize("gate", ["mean", "quest"])
def test_offloaded_decode_gives_same_tokens_at_partial_budget(models, gate):
    _, sparse = models
    hf.configure(sparse, block_size=16, top_k=3, n_sink=1, n_local=1, min_sparse_len=32, gate=gate, decode_gate=gate)
    ids = _prompt(seed=3, n=300)
    with torch.no_grad():
        on_device = sparse.generate(ids, max_new_tokens=NEW, do_sample=False, past_key_values=hf.make_cache(sparse))
        cache = hf.make_cache(sparse, offload="disk")
        offloaded = sparse.generate(ids, max_new_tokens=NEW, do_sample=False, past_key_values=cache)
    assert torch.equal(on_device, offloaded)
    layer = cache.layers[0]
    assert layer.get_seq_length() == 300 + NEW - 1
    assert 0 < cache.resident_kv_bytes() < 2 * 2 * layer.get_seq_length() * 16 * 4 * len(cache.layers)


def test_auto_backend_runs_the_torch_path_off_cuda(models):
    _, sparse = models
    assert hf.sparse_config_of(sparse.config).prefill_backend == "auto"  # the default
    ids = _prompt(seed=7, n=90)
    outs = []
    for backend in ("auto", "torch"):
        hf.configure(sparse, block_size=16, top_k=3, n_sink=1, n_local=1, min_sparse_len=32, prefill_backend=backend)
        with torch.no_grad():
            outs.append(sparse(ids).logits)
    assert torch.equal(outs[0], outs[1])
    cpu_q = torch.zeros(1, 1, 4, 8)
    assert not hf._use_triton(hf.SparseConfig(prefill_backend="auto"), cpu_q)
    assert hf._use_triton(hf.SparseConfig(prefill_backend="triton"), cpu_q)  # asked for: it says why it cannot


def test_triton_backend_says_what_it_needs(models):
    _, sparse = models
    with pytest.raises(ValueError, match="prefill_backend"):
        hf.configure(sparse, prefill_backend="cuda")
    from sleuth.kernels.triton_prefill import available

    if available():
        pytest.skip("CUDA and triton present: tests/test_kernels_triton.py covers the kernel")
    hf.configure(sparse, block_size=16, top_k=3, n_sink=1, n_local=1, min_sparse_len=32, prefill_backend="triton")
    try:
        with pytest.raises(RuntimeError, match="needs a CUDA device"), torch.no_grad():
            sparse(_prompt(seed=6, n=80))
    finally:
        hf.configure(sparse, prefill_backend="torch")


def test_padded_batch_falls_back_to_dense(models):
    dense, sparse = models
    hf.configure(sparse, block_size=16, top_k=2, n_sink=1, n_local=1, min_sparse_len=8)
    ids = torch.cat([_prompt(seed=4, n=60), _prompt(seed=5, n=60)])
    mask = torch.ones_like(ids)
    mask[1, :20] = 0  # left padding: the mask function must hand the attention a real mask
    with torch.no_grad():
        got = sparse(ids, attention_mask=mask).logits
        want = dense(ids, attention_mask=mask).logits
    assert (got[1, 20:] - want[1, 20:]).abs().max().item() <= 1e-4


def test_mask_function_returns_none_only_for_plain_lower_right_causal():
    kw = dict(batch_size=1, q_length=4, kv_length=10, q_offset=6, kv_offset=0)
    assert hf.sleuth_mask(**kw, mask_function=causal_mask_function) is None
    assert hf.sleuth_mask(**kw, mask_function=causal_mask_function, attention_mask=torch.ones(1, 10, dtype=torch.bool)) is None
    padded = torch.ones(1, 10, dtype=torch.bool)
    padded[0, 0] = False
    mask = hf.sleuth_mask(**kw, mask_function=causal_mask_function, attention_mask=padded)
    assert mask is not None and not mask[0, 0, :, 0].any() and mask[0, 0, 0, 6] and not mask[0, 0, 0, 7]
    slid = hf.sleuth_mask(**kw, mask_function=sliding_window_causal_mask_function(3), local_size=3)
    assert slid is not None and not slid[0, 0, -1, 0]
    static = dict(kw, q_offset=0)  # static cache prefill: keys beyond the queries are empty slots
    assert hf.sleuth_mask(**static, mask_function=causal_mask_function) is not None


def test_gemma2_runs_with_softcap_and_sliding_layers():
    # eager is transformers' reference for softcapping (Gemma2 has no sdpa support)
    dense, sparse = _pair(Gemma2Config, "eager", head_dim=16, sliding_window=32, attn_logit_softcapping=50.0)
    hf.configure(sparse, block_size=16, top_k=64, n_sink=1, n_local=1, min_sparse_len=32)
    ids = _prompt(seed=6, n=100)
    with torch.no_grad():
        got = sparse.generate(ids, max_new_tokens=6, do_sample=False, past_key_values=hf.make_cache(sparse))
        want = dense.generate(ids, max_new_tokens=6, do_sample=False)
    assert got.shape == (1, 106)
    assert torch.equal(got, want)


def test_dense_threshold_follows_the_device_unless_set():
    from sleuth.kernels.config import CPU_MIN_SPARSE_LEN, CUDA_MIN_SPARSE_LEN, SparseConfig

    cfg = SparseConfig()
    assert cfg.min_sparse_len is None
    # no sparse budget kept accuracy on real weights (docs/kernels.md): dense at any length by default
    assert cfg.dense_below("cpu") == CPU_MIN_SPARSE_LEN >= 2**40
    assert cfg.dense_below("cuda") == CUDA_MIN_SPARSE_LEN >= 2**40
    assert SparseConfig(min_sparse_len=0).dense_below("cuda") == 0  # an explicit value applies everywhere
    assert SparseConfig.from_any({**cfg.to_dict(), "min_sparse_len": 32768}).dense_below("cpu") == 32768  # survives the model config
    with pytest.raises(ValueError, match="min_sparse_len"):
        SparseConfig(min_sparse_len=-1)
