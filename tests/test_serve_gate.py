"""``sleuth serve``'s gate: searches and reads run at most ``reads`` at once, first come first
served, and an ask stream does not take a place in it. The server runs in this process (uvicorn in
a thread) on a small SQLite library; no PostgreSQL needed."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import write_corpus


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import uvicorn

    from sleuth import Library
    from sleuth.serve.http import build_app

    root = tmp_path_factory.mktemp("gate")
    docs = root / "docs"
    write_corpus(docs, {"harbour.md": "# Harbour\n\nThe harbour wall was rebuilt in 1998 with basalt blocks.\n",
                        "mill.md": "# Mill\n\nThe mill wheel turned until 1952, when the river was diverted.\n"})
    lib = Library(root / "lib")
    assert not lib.add([docs]).failed

    # every search and read records how many were inside the library at once, and in what order
    # they entered; each holds its place for 60 ms so that the requests overlap (a query with
    # "slow" in it for 0.8 s)
    inside, seen, order, lock = [0], [], [], threading.Lock()

    def slow(fn):
        def call(*a, **kw):
            with lock:
                inside[0] += 1
                seen.append(inside[0])
                order.append(a[0] if a else None)
            try:
                time.sleep(0.8 if "slow" in str(a[0]) else 0.06)
                return fn(*a, **kw)
            finally:
                with lock:
                    inside[0] -= 1
        return call

    lib.search = slow(lib.search)
    lib.read = slow(lib.read)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inner = build_app(lib, rate=0, reads=2)
    arrived = []

    async def app(scope, receive, send):  # notes each search as it reaches the server
        if scope["type"] == "http" and scope["path"] == "/search":
            from urllib.parse import parse_qs

            arrived.append(parse_qs(scope["query_string"].decode()).get("q", [""])[0])
        await inner(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    yield base, seen, order, arrived
    server.should_exit = True
    t.join(10)


def test_at_most_reads_searches_at_once(served):
    base, seen, _, _ = served
    seen.clear()
    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda i: httpx.get(base + "/search", params={"q": f"harbour wall {i}"}, timeout=30).status_code,
                              range(12)))
    assert codes == [200] * 12
    assert len(seen) == 12
    assert max(seen) == 2  # the gate held two, and the load did fill it


def test_waiting_searches_enter_in_arrival_order(served):
    base, _, order, arrived = served
    order.clear()
    arrived.clear()
    def get(q):
        th = threading.Thread(target=httpx.get, args=(base + "/search",), kwargs={"params": {"q": q}, "timeout": 30})
        th.start()
        return th

    held = [get("slow mill 0"), get("slow mill 1")]
    time.sleep(0.2)  # both places taken for 0.8 s
    late = []
    for i in range(6):  # these wait, and must enter in the order they came
        late.append(get(f"wait {i}"))
        time.sleep(0.07)
    for th in held + late:
        th.join(30)
    assert order[:2] in (["slow mill 0", "slow mill 1"], ["slow mill 1", "slow mill 0"])
    # in the order they reached the server (a client thread may be slow to connect on a busy machine)
    waited = [q for q in arrived if q.startswith("wait")]
    assert sorted(waited) == [f"wait {i}" for i in range(6)]
    assert order[2:] == waited


def test_reads_share_the_gate_and_answers_are_unchanged(served):
    base, seen, _, _ = served
    hits = httpx.get(base + "/search", params={"q": "basalt blocks"}, timeout=30).json()
    assert hits and "basalt" in hits[0]["snippet"]
    seen.clear()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: httpx.get(base + "/read", params={"node": hits[0]["id"]}, timeout=30).json(), range(8)))
    assert all("basalt" in str(g) for g in got)
    assert max(seen) == 2


def test_ask_does_not_wait_behind_the_gate(served):
    """An answer (heuristic planner: no model) is served while searches fill the gate: it is
    back before the gate has let the queued searches through (8 x 0.8 s over 2 places)."""
    base, _, _, _ = served
    with ThreadPoolExecutor(10) as pool:
        busy = [pool.submit(httpx.get, base + "/search", params={"q": f"slow wall {i}"}, timeout=30) for i in range(8)]
        time.sleep(0.2)
        r = httpx.post(base + "/ask", json={"question": "When was the harbour wall rebuilt?", "stream": False}, timeout=60)
        assert r.status_code == 200 and "1998" in r.text
        waiting = sum(not f.done() for f in busy)
        assert all(f.result().status_code == 200 for f in busy)
    assert waiting >= 2
