"""A server's model is sized by what it can take (issue 23, item 5): its context length found
from what the server says, its speeds measured, a refused long prompt retried within the context
the refusal states, and follow-up rounds only when the measured speed leaves time for them."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from fakes.corpus import build
from fakes.openai_server import FakeOpenAI
from sleuth.agent import ask
from sleuth.agent import models as M
from sleuth.agent.chat import LLMContextError, LLMReply
from sleuth.agent.llm import OpenAIChat
from sleuth.agent.policy_compact import CompactLLMPolicy
from sleuth.agent.server_probe import context_from_error, context_from_listing


@pytest.fixture(autouse=True)
def own_speeds(tmp_path, monkeypatch):
    # measured speeds are kept beside the models: here, in a file of the test's own
    monkeypatch.setattr(M, "_speeds_file", lambda: tmp_path / "speeds.json")


# -- what servers say -------------------------------------------------------------------------------

def test_context_and_prompt_size_are_read_from_each_servers_refusal():
    # python -m llama_cpp.server (its formatter's exact words), OpenAI and vLLM
    llama_py = ("This model's maximum context length is 2048 tokens. However, you requested 3112 tokens "
                "(3000 in the messages, 112 in the completion). Please reduce the length of the messages or completion.")
    assert context_from_error(llama_py) == (2048, 3000)
    vllm = ("This model's maximum context length is 32768 tokens. However, you requested 40000 tokens in the "
            "messages, Please reduce the length of the messages.")
    assert context_from_error(vllm)[0] == 32768
    # llama-server: a structured error whose message names no number
    llama_server = json.dumps({"error": {"code": 400, "message": "the request exceeds the available context size, "
                                         "try increasing it", "type": "exceed_context_size_error",
                                         "n_prompt_tokens": 5000, "n_ctx": 4096}})
    assert context_from_error(llama_server) == (4096, 5000)
    assert context_from_error("LLM server answered HTTP 400: invalid model name") == (None, None)


def test_context_is_found_in_a_model_listing_or_llama_servers_props():
    assert context_from_listing({"data": [{"id": "big", "max_model_len": 131072}]}, None, "big") == 131072
    assert context_from_listing({"data": [{"id": "q"}]}, {"default_generation_settings": {"n_ctx": 16384}}, "q") == 16384
    assert context_from_listing({"data": [{"id": "q", "owned_by": "me"}]}, None, "q") is None


def _mock_server(prefill_tps: float, gen_tps: float, listing: dict, max_ctx: int | None = None):
    """An OpenAI-compatible server that takes the time a model of those speeds would take."""
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/models"):
            return httpx.Response(200, json=listing)
        if request.method == "GET":
            return httpx.Response(404, json={"error": "no route"})
        req = json.loads(request.content)
        seen.append(req)
        prompt = sum(len(m["content"].split()) for m in req["messages"]) + 10
        if max_ctx and prompt + req["max_tokens"] > max_ctx:
            return httpx.Response(400, json={"error": {"message": f"This model's maximum context length is {max_ctx} "
                                                       f"tokens. However, you requested {prompt + req['max_tokens']} tokens "
                                                       f"({prompt} in the messages, {req['max_tokens']} in the completion)."}})
        out = req["max_tokens"]
        time.sleep(0.02 + prompt / prefill_tps + out / gen_tps)
        text = "ok" if out == 1 else " ".join(str(i) for i in range(1, out + 1))
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": text}}],
                                          "usage": {"prompt_tokens": prompt, "completion_tokens": out}})

    client = httpx.Client(base_url="http://big-node/v1", transport=httpx.MockTransport(handler))
    return client, seen


def test_calibrate_finds_the_context_and_measures_both_speeds():
    client, _ = _mock_server(2000, 100, {"data": [{"id": "big", "max_model_len": 65536}]})
    chat = OpenAIChat("http://big-node/v1", client=client)
    chat.calibrate()
    assert chat.max_ctx == 65536
    assert 1000 < chat.prefill_tps < 3000 and 60 < chat.gen_tps < 140
    # kept, and reused instead of measuring again
    again = OpenAIChat("http://big-node/v1", client=_mock_server(10, 1, {"data": [{"id": "big"}]})[0])
    again.calibrate()
    assert again.prefill_tps == pytest.approx(chat.prefill_tps, abs=0.1)


def test_a_prompt_over_the_context_raises_with_the_stated_length():
    client, _ = _mock_server(5000, 500, {"data": [{"id": "m"}]}, max_ctx=300)
    chat = OpenAIChat("http://big-node/v1", client=client)
    with pytest.raises(LLMContextError) as e:
        chat.chat([{"role": "user", "content": "word " * 400}], max_tokens=20)
    assert e.value.max_ctx == 300 and e.value.prompt_tokens == 410 and chat.max_ctx == 300


# -- the agent over a server --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = build(tmp_path_factory.mktemp("sizing"))
    yield lib
    lib.close()


def test_a_refused_answer_is_retried_within_the_context_the_server_states(lib):
    # the server states no context up front; the answer prompt (every passage of the small corpus)
    # is refused, and the second try fits the 250 tokens the refusal named
    def responder(req):
        prompt = sum(len(str(m.get("content") or "").split()) for m in req["messages"])
        if prompt + req["max_tokens"] > 250:
            return 400, {"error": {"message": f"This model's maximum context length is 250 tokens. However, you "
                                              f"requested {prompt + req['max_tokens']} tokens ({prompt} in the "
                                              f"messages, {req['max_tokens']} in the completion)."}}
        user = req["messages"][-1]["content"]
        if "search queries" in user:
            return {"content": '["Ares program leader"]'}
        return {"content": "Dr. Helena Voss led the Ares program." if "Voss" in user else "Not answerable."}

    with FakeOpenAI(responder) as srv:
        a = ask(lib, "Who led the Ares program?", llm="openai", base_url=srv.base_url,
                budget="seconds=120", evidence_tokens=3000)
        prompts = [sum(len(str(m.get("content") or "").split()) for m in r["messages"]) for r in srv.requests]
    assert "Voss" in a.text and a.citations
    assert max(prompts) + 120 > 250 and prompts[-1] + 120 <= 250


class _Fast:
    """A scripted model with a measured speed: plan, then (if asked) follow-up queries, then the answer."""

    name = "fast"

    def __init__(self, prefill_tps: float, gen_tps: float, max_ctx: int = 16384):
        self.prefill_tps, self.gen_tps, self.max_ctx = prefill_tps, gen_tps, max_ctx
        self.prompts: list[str] = []

    def estimate_seconds(self, prompt_tokens, max_tokens):
        return prompt_tokens / self.prefill_tps + max_tokens / self.gen_tps

    def chat(self, messages, tools=None, *, timeout=None, max_tokens=None):
        user = messages[-1]["content"]
        self.prompts.append(user)
        if user.startswith("Write 2 to 4 short search queries"):
            text = '["Ares program"]'
        elif "still missing" in user:
            text = '["Perseverance Nine launch site"]'
        else:
            text = "Dr. Helena Voss led it; the rocket launched from Kourou."
        return LLMReply(content=text, tokens_in=len(user.split()), tokens_out=10, native=False, seconds=0.01)


def test_a_fast_model_runs_a_follow_up_round_and_a_slow_one_does_not(lib):
    q = "Who led the Ares program and where did its rocket launch from?"
    fast = _Fast(20000, 500)
    events: list[dict] = []
    a = ask(lib, q, llm=fast, budget="seconds=120", on_event=events.append)
    searched = [c["args"]["query"] for e in events if e["type"] == "round" for c in e["calls"] if c["tool"] == "search"]
    assert "Perseverance Nine launch site" in searched
    assert sum(1 for p in fast.prompts if "still missing" in p) >= 1 and a.cost.rounds >= 4
    # no paragraph is read twice: a follow-up round reads only what was not read before
    reads = [int(t.arguments["node"]) for t in a.trace if t.tool == "read"]
    assert reads and len(reads) == len(set(reads))

    slow = _Fast(150, 20, 32768)  # a 1.5B model on two cores: its reading fills the time on its own
    a2 = ask(lib, q, llm=slow, budget="seconds=120")
    assert not any("still missing" in p for p in slow.prompts) and a2.cost.rounds == 2
    assert CompactLLMPolicy(slow).evidence_target() < CompactLLMPolicy(fast).evidence_target()


def test_a_context_the_user_gives_caps_the_reading():
    from sleuth.agent.llm import make_llm

    chat = make_llm("openai", base_url="http://big-node/v1", model="m", context=4096)
    chat.prefill_tps, chat.gen_tps, chat._calibrated = 5000.0, 200.0, True
    assert chat.max_ctx == 4096
    target = CompactLLMPolicy(chat).evidence_target()
    assert 3000 < target <= 4096 - 450 - 200


def test_a_fixed_evidence_budget_runs_no_follow_up_round(lib):
    fast = _Fast(20000, 500)
    a = ask(lib, "Who led the Ares program and where did its rocket launch from?", llm=fast, budget="seconds=120",
            evidence_tokens=1200)
    assert not any("still missing" in p for p in fast.prompts) and a.cost.rounds == 2
