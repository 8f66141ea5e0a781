"""The cheaper search path (issue 25, serve latency) answers exactly as the plain one did: hit rows
read without the ORM, one connection for hits and neighbours, query embeddings of concurrent
requests batched, and a server's searches leaving the generation check to its follower."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sqlalchemy import func, select

from conftest import write_corpus

FILES = {
    "harbour.md": "# Harbour\n\n## Wall\n\nThe harbour wall was rebuilt in 1998 with basalt blocks.\n\n"
                  "Grey seals rest on the north pier at low tide.\n\nThe pier lamp is lit at dusk.\n\n"
                  "## Boats\n\nSeven trawlers land cod and haddock on Tuesdays.\n\n"
                  "The ferry to the island leaves at nine.\n",
    "birds.md": "# Birds\n\n## Coast\n\nBlack guillemots nest on the breakwater lighthouse.\n\n"
                "Eleven pairs were counted by the wardens in June.\n\nPuffins were not seen this year.\n",
    "tides.txt": "Tide notes\n\nSpring tides reach six metres at the north pier.\n\n"
                 "Neap tides barely reach two metres at the south slip.\n\nThe slip floods at the equinox.\n",
}
QUERIES = ["basalt harbour wall", "guillemots lighthouse", "spring tides north pier", "seals low tide",
           "wardens counted pairs", "neap tides south slip", "ferry island", "cod haddock trawlers",
           "MB-1074 pier lamp", "the slip at the equinox"]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    from sleuth import Library
    from sleuth.index.embed import Embedder

    root = tmp_path_factory.mktemp("lib")
    files = write_corpus(root / "docs", FILES)
    lib = Library(root / "lib", embedder=Embedder(threads=1))
    lib.add(files)
    yield lib
    lib.close()


def _orm_fetch(lib, ids):
    """The ORM reading fetch_nodes replaced: NodeRow and SourceRow objects from a Session."""
    from sleuth.index.schema import NodeRow, SourceRow

    with lib.Session() as s:
        rows = s.execute(select(NodeRow, SourceRow).join(SourceRow, SourceRow.id == NodeRow.source_id)
                         .where(NodeRow.id.in_(ids))).all()
    return {n.id: (n, src) for n, src in rows}


def _orm_neighbours(lib, nodes):
    from sleuth.index import navigate
    from sleuth.index.schema import NodeRow

    out = {n.id: [] for n in nodes}
    want = {(n.parent_id, n.tier, n.ordinal + d): (n, d) for n in nodes if n.parent_id is not None for d in (-1, 1)}
    if not want:
        return out
    with lib.Session() as s:
        rows = s.execute(select(NodeRow.id, NodeRow.kind, NodeRow.parent_id, NodeRow.tier, NodeRow.ordinal,
                                func.substr(func.coalesce(func.nullif(NodeRow.text, ""), NodeRow.summary, NodeRow.title), 1, 400))
                         .where(NodeRow.parent_id.in_({p for p, _, _ in want}),
                                NodeRow.ordinal.in_({o for _, _, o in want}))).all()
    for rid, kind, pid, tier, ordinal, body in sorted(rows, key=lambda r: r[4]):
        hit = want.get((pid, tier, ordinal))
        if hit is not None:
            n, d = hit
            out[n.id].append({"id": rid, "kind": kind, "rel": "prev" if d < 0 else "next",
                              "snippet": navigate.clip(body or "", 160)})
    return out


def test_rows_and_neighbours_read_without_the_orm_are_the_orm_rows(lib):
    from sleuth.index.schema import NodeRow, SourceRow

    with lib.Session() as s:
        ids = [i for (i,) in s.execute(select(NodeRow.id))]
    assert len(ids) > 15
    ids.append(10**9)  # absent: left out, as before
    got, ref = lib.fetch_nodes(ids), _orm_fetch(lib, ids)
    assert got.keys() == ref.keys()
    for i, (node, src) in got.items():
        rn, rs = ref[i]
        assert {c.key: getattr(node, c.key) for c in NodeRow.__table__.columns} == \
               {c.key: getattr(rn, c.key) for c in NodeRow.__table__.columns}
        assert {c.key: getattr(src, c.key) for c in SourceRow.__table__.columns} == \
               {c.key: getattr(rs, c.key) for c in SourceRow.__table__.columns}
        assert lib.node_dict(node, src, terms=["pier"], full=True) == lib.node_dict(rn, rs, terms=["pier"], full=True)
    nodes = [n for n, _ in got.values()]
    with lib.reading() as conn:
        assert lib.neighbours_many(nodes, conn) == _orm_neighbours(lib, nodes)
    assert lib.neighbours_many(nodes) == _orm_neighbours(lib, nodes)
    assert any(lib.neighbours_many(nodes).values())


def test_concurrent_query_embeddings_are_batched_and_bit_identical(lib):
    from sleuth.index.embed import Embedder

    qs = [f"{q} {w}" for q in QUERIES for w in ("", "tide", "a longer tail of several more words")]
    alone = Embedder(threads=1, int8=False)
    ref = {q: alone.encode([q])[0] for q in qs}
    e = Embedder(threads=1)
    b = e._queries
    b.slots = 1  # one run in flight: every query that comes meanwhile waits for the next
    gate = threading.Event()
    inner = b._encode

    def slow_first(texts):
        gate.wait(10)
        return inner(texts)

    b._encode = slow_first
    with ThreadPoolExecutor(len(qs)) as ex:
        futs = [ex.submit(e.encode_query, [q]) for q in qs]
        while len(b._waiting) < len(qs) - 1:  # the first is in its run; the rest queue behind it
            threading.Event().wait(0.01)
        gate.set()
        got = [f.result()[0] for f in futs]
    assert b.runs < len(qs) and b.queries == len(qs)
    for q, v in zip(qs, got):
        assert np.array_equal(v, ref[q]), q

    def boom(texts):
        raise RuntimeError("model gone")

    b._encode = boom
    with pytest.raises(RuntimeError, match="model gone"):
        e.encode_query(["anything"])


def test_searches_from_many_threads_equal_searches_one_at_a_time(lib):
    lib._qcache.clear()
    one = {q: lib.search(q, k=5) for q in QUERIES}
    lib._qcache.clear()
    with ThreadPoolExecutor(8) as ex:
        many = dict(zip(QUERIES, ex.map(lambda q: lib.search(q, k=5), QUERIES)))
    assert many == one
    assert all(one.values()) and any(h["neighbours"] for hits in one.values() for h in hits)
    assert lib.search("wardens", level="paragraph", within="birds.md", k=2) == \
           lib.search("wardens", level="paragraph", within="birds.md", k=2)


def test_a_followed_library_leaves_the_generation_check_to_its_follower(lib, monkeypatch):
    from sleuth import library as L

    calls = []
    real = L.get_state
    monkeypatch.setattr(L, "get_state", lambda *a, **k: calls.append(1) or real(*a, **k))
    lib.refresh_every = 0.0
    lib.search("harbour wall")
    assert len(calls) == 1  # a plain library checks at every search
    lib.refresh_every = 60.0
    lib.refresh()  # the follower's check (forced)
    calls.clear()
    lib.search("harbour wall")
    lib.search("guillemots")
    assert calls == []
    lib.refresh()
    assert len(calls) == 1
    lib.refresh_every = 0.0


def test_the_embedder_pickles_without_its_query_batcher():
    # Ray sends the embedder to its workers (index/ray_ingest.py): the batcher's lock must not go
    import pickle

    from sleuth.index.embed import Embedder

    e = Embedder()
    e2 = pickle.loads(pickle.dumps(e))
    assert e2._queries is not e._queries and e2._queries._busy == 0
    assert (e2.threads, e2.int8, e2.max_length) == (e.threads, e.int8, e.max_length)
    assert e2.encode_query(["a harbour log"]).shape == (1, e.dim)
