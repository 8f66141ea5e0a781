"""The openai backend against a real HTTP server on 127.0.0.1 speaking chat completions."""

import json
import socket
import time

import pytest

from fakes.corpus import build, node_with
from fakes.openai_server import FakeOpenAI
from sleuth.agent import AgentError, ask
from sleuth.agent.llm import OpenAIChat


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = build(tmp_path_factory.mktemp("openai"))
    yield lib
    lib.close()


def tool_results(req) -> list[dict]:
    return [json.loads(m["content"]) for m in req["messages"] if m["role"] == "tool"]


def cite_facts(req, bogus=None):
    """A model's final answer: cite every hit/item naming one of the facts, plus a made-up id."""
    ids = []
    for r in tool_results(req):
        for h in r.get("hits", []) + r.get("items", []):
            text = h.get("snippet") or h.get("text") or ""
            if ("Voss" in text or "titanium" in text) and h["id"] not in ids:
                ids.append(h["id"])
    text = " ".join(f"Found it [{i}]." for i in ids)
    if bogus:
        text += f" Also this [{bogus}]."
    return {"content": text}


def test_tool_calls_then_a_cited_answer(lib):
    def responder(req):
        if not any(m["role"] == "tool" for m in req["messages"]):
            return {"tool_calls": [
                {"id": "a", "name": "search", "arguments": {"query": "who led the Ares program", "level": "fine", "k": 3}},
                {"id": "b", "name": "search", "arguments": {"query": "Nereus hull material", "level": "fine", "k": 3}}]}
        return cite_facts(req, bogus=999999)

    with FakeOpenAI(responder) as srv:
        events = []
        ans = ask(lib, "Who led the Ares program and what was the Nereus hull made of?", llm="openai", agent="tools",
                  base_url=srv.base_url, model="m1", api_key="sk-test", on_event=events.append)
    first, second = srv.requests
    assert {t["function"]["name"] for t in first["tools"]} == {"search", "read", "outline", "entity", "look"}
    assert first["model"] == "m1" and "cite the node id" in first["messages"][0]["content"]
    assert srv.headers[0].get("Authorization") == "Bearer sk-test"
    # both results went back, each answering its own call id, after the assistant turn that made them
    assert [m["tool_call_id"] for m in second["messages"] if m["role"] == "tool"] == ["a", "b"]
    assert second["messages"][2]["role"] == "assistant" and len(second["messages"][2]["tool_calls"]) == 2
    want = {node_with(lib, "mars.md", "Voss"), node_with(lib, "ocean.txt", "titanium")}
    assert {c.node_id for c in ans.citations} == want
    assert "999999" not in ans.text and any("999999" in n for n in ans.notes)
    assert ans.cost.llm_calls == 2 and ans.cost.tokens_in > 0 and ans.cost.tokens_out == 14
    assert ans.policy == "llm:openai" and [e for e in events if e["type"] == "llm"]


def test_model_defaults_to_what_the_server_lists(lib):
    with FakeOpenAI(lambda req: {"content": "Nothing to add."}, model="served-model") as srv:
        ans = ask(lib, "Who led the Ares program?", llm="openai", agent="tools", base_url=srv.base_url.rsplit("/v1", 1)[0])
    assert srv.requests[0]["model"] == "served-model"
    assert ans.text.startswith("Nothing to add.")


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_server_is_one_clear_line(lib):
    t0 = time.perf_counter()
    with pytest.raises(AgentError) as e:
        ask(lib, "Who led the Ares program?", llm="openai", agent="tools", base_url=f"http://127.0.0.1:{_closed_port()}/v1",
            model="m", retries=2, backoff=0.05)
    msg = str(e.value)
    assert "cannot reach the LLM server" in msg and "127.0.0.1" in msg and "\n" not in msg
    assert time.perf_counter() - t0 < 10


def test_no_server_configured(lib, monkeypatch):
    for k in ("SLEUTH_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY", "SLEUTH_API_KEY"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(AgentError, match="no LLM server"):
        ask(lib, "Who led the Ares program?", llm="openai")


def test_malformed_tool_calls_become_observations_the_model_sees(lib):
    def responder(req):
        n = len(srv.requests)
        if n == 1:  # text call with broken JSON
            return {"content": '<tool_call>{"name": "search", "arguments": {"query": "Voss"</tool_call>'}
        if n == 2:  # native call whose arguments are not JSON, and one to a tool that does not exist
            return {"tool_calls": [{"id": "x1", "name": "search", "arguments": "{query: Voss"},
                                   {"id": "x2", "name": "teleport", "arguments": "{}"}]}
        if n == 3:
            return {"tool_calls": [{"id": "x3", "name": "search", "arguments": {"query": "who led the Ares program"}}]}
        return cite_facts(req)

    with FakeOpenAI(responder) as srv:
        ans = ask(lib, "Who led the Ares program?", llm="openai", agent="tools", base_url=srv.base_url, model="m")
    assert len(srv.requests) == 4
    seen2 = " ".join(m.get("content") or "" for m in srv.requests[1]["messages"])
    assert "could not parse tool call" in seen2
    errs3 = {m["tool_call_id"]: json.loads(m["content"])["error"] for m in srv.requests[2]["messages"] if m["role"] == "tool"}
    assert "could not parse the arguments" in errs3["x1"] and "unknown tool 'teleport'" in errs3["x2"]
    assert [t.ok for t in ans.trace] == [False, False, False, True]
    assert [c.node_id for c in ans.citations] == [node_with(lib, "mars.md", "Voss")]


def test_server_without_native_tools_falls_back_to_text_calls(lib):
    def responder(req):
        if "tools" in req:
            return 400, {"error": {"message": "\"auto\" tool choice requires --enable-auto-tool-choice"}}
        if not any("<tool_response" in (m.get("content") or "") for m in req["messages"]):
            return {"content": '```json\n{"name": "search", "arguments": {"query": "who led the Ares program", "k": 3}}\n```'}
        hits = []
        for m in req["messages"]:
            if "<tool_response" in (m.get("content") or ""):
                body = m["content"].split("\n", 1)[1].rsplit("\n</tool_response>", 1)[0]
                hits += json.loads(body)["hits"]
        voss = next(h["id"] for h in hits if "Voss" in h["snippet"])
        return {"content": f"Dr. Helena Voss [{voss}]."}

    with FakeOpenAI(responder) as srv:
        ans = ask(lib, "Who led the Ares program?", llm="openai", agent="tools", base_url=srv.base_url, model="m")
    assert "tools" in srv.requests[0] and all("tools" not in r for r in srv.requests[1:])
    system = srv.requests[1]["messages"][0]["content"]  # the tools are described in the prompt instead
    assert '{"name": "search", "description"' in system and "<tool_call>" in system
    assert [c.node_id for c in ans.citations] == [node_with(lib, "mars.md", "Voss")]


def test_retries_transient_errors_then_succeeds():
    state = {"n": 0}

    def responder(req):
        state["n"] += 1
        return (503, {"error": "warming up"}) if state["n"] < 3 else {"content": "ok"}

    with FakeOpenAI(responder) as srv:
        llm = OpenAIChat(srv.base_url, "m", retries=3, backoff=0.01)
        assert llm.chat([{"role": "user", "content": "hi"}]).content == "ok"
        with pytest.raises(AgentError, match="HTTP 503"):
            state["n"] = -10
            OpenAIChat(srv.base_url, "m", retries=2, backoff=0.01).chat([{"role": "user", "content": "hi"}])
