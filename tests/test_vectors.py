"""The faiss store: exact search, IVF past the threshold, id ranges, healing from the database."""

import numpy as np
import faiss

from sleuth.index import vectors as V
from sleuth.library import Library
from conftest import write_corpus


def test_ivf_above_threshold_matches_exact(tmp_path, monkeypatch):
    files = {f"d{i}.txt": "\n\n".join(f"Entry {i}-{j}: the {['harbour', 'glacier', 'turbine', 'orchard'][j % 4]} log number {i * 40 + j}."
                                     for j in range(40)) for i in range(8)}
    write_corpus(tmp_path / "docs", files)
    lib = Library(tmp_path / "lib")
    lib.add([tmp_path / "docs"])
    exact = lib.search("turbine log number 127", level="fine", k=5)
    n_fine = lib.vectors.count("fine")
    lib.close()
    # Re-open with a low threshold and no vector files: the store rebuilds as IVF from the DB.
    monkeypatch.setattr(V, "IVF_THRESHOLD", 100)
    for f in (tmp_path / "lib" / "vectors").glob("*"):
        f.unlink()
    lib2 = Library(tmp_path / "lib")
    idx = lib2.vectors.indexes["fine"]
    assert hasattr(idx, "nlist") and idx.ntotal == n_fine
    approx = lib2.search("turbine log number 127", level="fine", k=5)
    assert approx[0]["id"] == exact[0]["id"]
    within = lib2.search("harbour", level="fine", within="d3.txt", k=5)
    assert within and all(h["source"] == "d3.txt" for h in within)


def test_id_range_selector_and_removal(tmp_path):
    store = V.VectorStore(tmp_path / "v")
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((50, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store.add("fine", np.arange(100, 150), vecs)
    hits = store.search("fine", vecs[7], 3, id_range=(120, 129))
    assert hits and all(120 <= i <= 129 for i, _ in hits)
    assert store.search("fine", vecs[7], 1)[0][0] == 107
    store.remove_range(100, 109)
    assert store.count("fine") == 40
    assert all(i >= 110 for i, _ in store.search("fine", vecs[7], 10))
    store.save(generation=3)
    again = V.VectorStore(tmp_path / "v")
    assert again.count("fine") == 40 and again.generation == 3


def _stored_vectors(n=3000, seed=1):
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = rng.standard_normal((40, 384)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return vecs.astype(np.float16).astype(np.float32), queries  # what the database holds


def test_fp16_scan_matches_flat_reference(tmp_path, monkeypatch):
    stored, queries = _stored_vectors()
    ids = np.arange(1, len(stored) + 1)
    ref = V.VectorStore(tmp_path / "ref")
    ref.add("fine", ids, stored)
    monkeypatch.setattr(V, "SQ_THRESHOLD", 1000)
    fast = V.VectorStore(tmp_path / "fast")
    asked = []
    fast.loader = lambda want: (asked.append(len(want)), stored[np.asarray(want) - 1])[1]
    for a in range(0, len(stored), 500):  # grows past the threshold through add(), as indexing does
        fast.add("fine", ids[a:a + 500], stored[a:a + 500])
    assert V._kind(fast.indexes["fine"]) == "sq" and V._kind(ref.indexes["fine"]) == "flat"
    assert not V._needs_rescore(fast.indexes["fine"])
    built = len(asked)  # the upgrade itself reads every vector once
    for q in queries:
        a, b = ref.search("fine", q, 10), fast.search("fine", q, 10)
        assert [i for i, _ in a] == [i for i, _ in b]
        assert np.allclose([s for _, s in a], [s for _, s in b], atol=1e-5)
    assert len(asked) == built  # no database reads at query time


def test_legacy_sq8_index_is_rescored_exactly(tmp_path):
    stored, queries = _stored_vectors()
    ids = np.arange(1, len(stored) + 1)
    ref = V.VectorStore(tmp_path / "ref")
    ref.add("fine", ids, stored)
    sq = faiss.IndexScalarQuantizer(384, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    sq.train(stored)
    legacy = faiss.IndexIDMap2(sq)
    legacy.add_with_ids(stored, ids)
    old = V.VectorStore(tmp_path / "old")
    old.indexes["fine"] = legacy
    old.loader = lambda want: stored[np.asarray(want) - 1]
    assert V._needs_rescore(legacy)
    same = 0
    for q in queries:
        a, b = ref.search("fine", q, 10), old.search("fine", q, 10)
        same += [i for i, _ in a] == [i for i, _ in b]
        sa = dict(a)
        for i, s in b:
            if i in sa:
                assert abs(s - sa[i]) < 1e-5  # re-scored exactly, not the quantised score
    assert same >= 38  # identical top-10 lists for (nearly) every query


def test_indexed_vectors_are_the_databases_and_a_rebuild_searches_the_same(tmp_path):
    # storing hands faiss the vectors as the database keeps them (index/ingest._add_vectors):
    # an index rebuilt from the database alone (another server, a healed run) is the same index
    files = {f"n{i}.txt": "\n\n".join(f"Note {i}-{j}: the {['harbour', 'glacier', 'turbine'][j % 3]} reading was {i * 7 + j}."
                                     for j in range(12)) for i in range(3)}
    write_corpus(tmp_path / "docs", files)
    lib = Library(tmp_path / "lib")
    lib.add([tmp_path / "docs"])
    for tier in V.TIERS:
        idx = lib.vectors.indexes[tier]
        ids = V._ids_of(idx)
        assert len(ids) > 0, tier
        got = np.vstack([idx.reconstruct(int(i)) for i in ids])  # an IndexIDMap2 at this size
        np.testing.assert_array_equal(got, V.load_vectors(lib.engine, ids), err_msg=tier)
    before = [lib.search(q, k=5) for q in ("turbine reading", "glacier 15", "harbour")]
    lib.close()
    for f in (tmp_path / "lib" / "vectors").glob("*"):
        f.unlink()
    lib2 = Library(tmp_path / "lib")
    after = [lib2.search(q, k=5) for q in ("turbine reading", "glacier 15", "harbour")]
    assert [[(h["id"], round(h["score"], 6)) for h in r] for r in after] == [[(h["id"], round(h["score"], 6)) for h in r] for r in before]
    lib2.close()


def test_reserve_makes_room_once_and_the_index_is_the_same(tmp_path):
    """A large file's vectors go into a tier a chunk at a time; room for all of them is made
    first (VectorStore.reserve), so faiss's array is never copied while they go in (the copy
    and the original together were the run's peak). The plain reference adds without it."""
    rng = np.random.default_rng(3)
    v = rng.standard_normal((5000, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ids = np.arange(10, 5010, dtype=np.int64)
    plain, ours = V.VectorStore(tmp_path / "a"), V.VectorStore(tmp_path / "b")
    assert ours.reserve("fine", len(ids))
    codes = faiss.downcast_index(ours.indexes["fine"].index).codes
    at = int(codes.data())
    for a in range(0, len(ids), 1024):
        plain.add("fine", ids[a : a + 1024], v[a : a + 1024])
        ours.add("fine", ids[a : a + 1024], v[a : a + 1024])
        assert int(codes.data()) == at  # never moved: no copy of the array
    assert ours.count("fine") == plain.count("fine") == 5000
    for q in v[:20]:
        assert ours.search("fine", q, 10) == plain.search("fine", q, 10)
    # fewer than the tier holds: its spare room may take them, nothing is made
    assert not ours.reserve("fine", 100)
    # a file that takes the tier past the float16 threshold: the upgrade rebuilds it anyway
    assert not V.VectorStore(tmp_path / "c").reserve("fine", V.SQ_THRESHOLD + 1)
