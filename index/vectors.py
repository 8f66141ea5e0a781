"""One faiss index per tier, persisted beside the database as a cache of the embeddings table.

Inner-product search (vectors are L2-normalised, so this is cosine):

- up to ``SQ_THRESHOLD`` vectors: exact, ``IndexFlatIP`` (the reference);
- up to ``IVF_THRESHOLD``: a float16 scalar-quantised scan. The database stores float16, so
  its scores are the stored vectors' own (equal to the flat index's, tested) with half the
  memory; on this CPU it scans as fast as an 8-bit index and, unlike one, needs no re-scoring
  of candidates from the database (which cost ~2 ms of random row reads per query at 100K).
  Libraries built with the earlier 8-bit index keep it, re-scored exactly as before;
- above: IVF, its candidates re-scored exactly from the database.

A GPU copy is used for search when faiss-gpu sees a GPU. Files are replaced atomically, and on
open each index is reconciled with the database (the truth), so a run killed between a commit
and a save heals itself.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import faiss
import numpy as np
from sqlalchemy import text as sql

TIERS = ("source", "coarse", "fine")
SQ_THRESHOLD = 50_000
IVF_THRESHOLD = 1_000_000
# Candidates per wanted hit taken from an approximate index for exact re-scoring: at 100K real
# vectors two per hit already give the exact top 10 and top 40 (ties aside).
RERANK_POOL = 2


def _kind(index) -> str:
    if hasattr(index, "nlist"):
        return "ivf"
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    return "sq" if isinstance(inner, faiss.IndexScalarQuantizer) else "flat"


def _needs_rescore(index) -> bool:
    """IVF (candidates from probed lists) and the legacy 8-bit scan get exact re-scoring."""
    if _kind(index) == "ivf":
        return True
    if _kind(index) == "sq":
        return faiss.downcast_index(index.index).sq.qtype != faiss.ScalarQuantizer.QT_fp16
    return False


def _wanted(n: int) -> str:
    return "ivf" if n > IVF_THRESHOLD else "sq" if n > SQ_THRESHOLD else "flat"


def _new_index(dim: int, n_hint: int = 0, train: np.ndarray | None = None):
    if SQ_THRESHOLD < n_hint <= IVF_THRESHOLD and train is not None:
        sq = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        sq.train(train)  # a no-op for float16; kept so every kind is built the same way
        return faiss.IndexIDMap2(sq)
    if n_hint > IVF_THRESHOLD and train is not None:
        nlist = int(4 * np.sqrt(n_hint))
        quant = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quant, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(train)
        ivf.nprobe = 32
        return ivf
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _ids_of(index) -> np.ndarray:
    if isinstance(index, faiss.IndexIDMap2) or hasattr(index, "id_map"):
        return faiss.vector_to_array(index.id_map)
    inv = index.invlists
    out = [faiss.rev_swig_ptr(inv.get_ids(l), inv.list_size(l)).copy() for l in range(index.nlist)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


class VectorStore:
    def __init__(self, directory: Path, dim: int = 384):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self.lock = threading.RLock()
        self.indexes: dict[str, faiss.Index] = {}
        self._gpu: dict[str, faiss.Index] = {}
        self.generation = -1
        #: ids -> float32 vectors from the database; set by the Library (exact re-scoring, upgrades)
        self.loader = None
        for t in TIERS:
            p = self.dir / f"{t}.faiss"
            self.indexes[t] = faiss.read_index(str(p)) if p.exists() else _new_index(dim)
        meta = self.dir / "vectors.json"
        if meta.exists():
            self.generation = json.loads(meta.read_text()).get("generation", -1)
        self.dirty = False

    # -- writing ---------------------------------------------------------------------------
    def add(self, tier: str, ids: np.ndarray, vecs: np.ndarray) -> None:
        if len(ids) == 0:
            return
        with self.lock:
            self.indexes[tier].add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), np.asarray(ids, dtype=np.int64))
            self._gpu.pop(tier, None)
            self.dirty = True
            self._maybe_upgrade(tier)

    def reserve(self, tier: str, n: int) -> bool:
        """Make room at once for ``n`` vectors about to be added to a flat or float16 tier, when
        they are at least as many as it holds and keep it of its kind. Added a chunk at a time,
        a large file's vectors made faiss's array double and copy itself: the old and the new
        array together were the indexing run's peak (+24 MB for a 5 MB text's 8,900 paragraphs).
        Not for fewer than the tier holds: the array's spare room from its last doubling may
        take them without any copy. True when room was made."""
        with self.lock:
            idx = self.indexes[tier]
            if n <= 0 or n < idx.ntotal or not isinstance(idx, faiss.IndexIDMap2) or _wanted(idx.ntotal + n) != _kind(idx):
                return False
            inner = faiss.downcast_index(idx.index)
            codes = getattr(inner, "codes", None)
            if codes is None:
                return False
            # faiss exposes no reserve(); a std::vector keeps its capacity when it shrinks back
            have = idx.ntotal * inner.code_size
            codes.resize(have + n * inner.code_size)
            codes.resize(have)
            idx.id_map.resize(idx.ntotal + n)
            idx.id_map.resize(idx.ntotal)
            return True

    def _maybe_upgrade(self, tier: str) -> None:
        """Rebuild a tier as SQ8 / IVF once it grows past a threshold (vectors from the database)."""
        idx = self.indexes[tier]
        order = ("flat", "sq", "ivf")
        want = _wanted(idx.ntotal)
        if order.index(want) <= order.index(_kind(idx)) or self.loader is None:
            return
        ids = _ids_of(idx)
        vecs = self.loader(ids)
        rng = np.random.default_rng(0)
        sample = vecs[rng.choice(len(vecs), size=min(len(vecs), 200_000), replace=False)]
        new = _new_index(self.dim, len(ids), sample)
        new.add_with_ids(vecs, ids)
        self.indexes[tier] = new
        self._gpu.pop(tier, None)

    def remove_range(self, lo: int, hi: int) -> None:
        with self.lock:
            for t, idx in self.indexes.items():
                if idx.remove_ids(faiss.IDSelectorRange(lo, hi + 1)):
                    self._gpu.pop(t, None)
                    self.dirty = True

    def save(self, generation: int) -> None:
        """Write every tier and then the generation stamp, each file replaced atomically. A write
        that fails (a full disk) leaves no partial file behind and the store dirty; the files on
        disk are then older than the database, which ``reconcile`` repairs on the next open."""
        with self.lock:
            for t, idx in self.indexes.items():
                tmp = self.dir / f".{t}.faiss.tmp"
                _replace(tmp, self.dir / f"{t}.faiss", lambda tmp=tmp, idx=idx: faiss.write_index(idx, str(tmp)))
            tmp = self.dir / ".vectors.json.tmp"
            stamp = json.dumps({"generation": generation, "dim": self.dim,
                                "counts": {t: int(i.ntotal) for t, i in self.indexes.items()}})
            _replace(tmp, self.dir / "vectors.json", lambda: tmp.write_text(stamp))
            self.generation = generation
            self.dirty = False

    def reconcile(self, engine, generation: int) -> int:
        """Make each tier hold exactly the embeddings in the database. Returns vectors changed."""
        if generation == self.generation:
            return 0
        changed = 0
        with self.lock:
            for t in TIERS:
                with engine.connect() as c:
                    db_ids = np.array([r[0] for r in c.execute(sql("SELECT node_id FROM embeddings WHERE tier=:t"), {"t": t})],
                                      dtype=np.int64)
                have = _ids_of(self.indexes[t])
                extra = np.setdiff1d(have, db_ids)
                missing = np.setdiff1d(db_ids, have)
                if len(extra):
                    self.indexes[t].remove_ids(faiss.IDSelectorBatch(extra))
                if len(missing):
                    vecs = load_vectors(engine, missing)
                    total = self.indexes[t].ntotal + len(missing)
                    if _wanted(total) != _kind(self.indexes[t]) and _wanted(total) != "flat":
                        # crossing a threshold: rebuild from every vector of the tier
                        allv = load_vectors(engine, db_ids)
                        rng = np.random.default_rng(0)
                        sample = allv[rng.choice(len(allv), size=min(len(allv), 200_000), replace=False)]
                        self.indexes[t] = _new_index(self.dim, total, sample)
                        self.indexes[t].add_with_ids(allv, db_ids)
                    else:
                        self.indexes[t].add_with_ids(vecs, missing)
                self._gpu.pop(t, None)
                changed += len(extra) + len(missing)
            self.generation = generation
            self.dirty = self.dirty or changed > 0
        return changed

    # -- reading ---------------------------------------------------------------------------
    def _searchable(self, tier: str):
        idx = self.indexes[tier]
        if getattr(faiss, "get_num_gpus", lambda: 0)() > 0 and idx.ntotal > 50_000:
            if tier not in self._gpu:
                self._gpu[tier] = faiss.index_cpu_to_all_gpus(idx)
            return self._gpu[tier]
        return idx

    def search(self, tier: str, q: np.ndarray, k: int, id_range: tuple[int, int] | None = None):
        with self.lock:
            idx = self._searchable(tier)
            if idx.ntotal == 0:
                return []
            q = np.ascontiguousarray(q.reshape(1, -1), dtype=np.float32)
            params = None
            if id_range is not None:
                sel = faiss.IDSelectorRange(id_range[0], id_range[1] + 1)
                params = (faiss.SearchParametersIVF(sel=sel, nprobe=getattr(idx, "nprobe", 1))
                          if hasattr(idx, "nlist") else faiss.SearchParameters(sel=sel))
            exact = not _needs_rescore(self.indexes[tier])
            want = k if exact or self.loader is None else max(k * RERANK_POOL, 32)
            # One query gains nothing from OpenMP threads, and waking them after the SQL work of
            # a search cost ~20 ms per call here (benchmarks/bench_ingest.py); index building
            # keeps every thread.
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                D, I = idx.search(q, min(want, idx.ntotal), params=params)
            finally:
                faiss.omp_set_num_threads(threads)
            hits = [(int(i), float(d)) for d, i in zip(D[0], I[0]) if i >= 0]
        if exact or self.loader is None or not hits:
            return hits[:k]
        ids = np.array([i for i, _ in hits], dtype=np.int64)
        scores = self.loader(ids) @ q[0]
        order = np.argsort(-scores)[:k]
        return [(int(ids[j]), float(scores[j])) for j in order]

    def count(self, tier: str) -> int:
        return int(self.indexes[tier].ntotal)


def _replace(tmp: Path, dest: Path, write) -> None:
    """``write()`` the temporary file, then move it over ``dest``; a failed write removes it."""
    try:
        write()
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def pack(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype=np.float16).tobytes()


def load_vectors(engine, ids: np.ndarray, chunk: int = 900) -> np.ndarray:
    out = np.zeros((len(ids), 384), dtype=np.float32)
    pos = {int(i): n for n, i in enumerate(ids)}
    with engine.connect() as c:
        for s in range(0, len(ids), chunk):
            part = [int(i) for i in ids[s : s + chunk]]
            q = sql("SELECT node_id, vec FROM embeddings WHERE node_id IN (" + ",".join(map(str, part)) + ")")
            for nid, blob in c.execute(q):
                out[pos[int(nid)]] = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
    return out
