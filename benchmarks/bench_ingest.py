"""Ingestion speed, OCR speed and search latency (a benchmark, not a test).

    .venv/bin/python benchmarks/bench_ingest.py                 # everything
    .venv/bin/python benchmarks/bench_ingest.py --skip-search   # ingestion + OCR only

1. Ingestion: a generated 300-page text PDF (~500 words a page), end to end through
   ``Library.add`` (extraction, summaries, embeddings, storage), split into extraction,
   embedding and storage; pages/s overall. Side by side: the same file embedded with every
   paragraph at 128 tokens (the plain alternative to the 64-token fine-level cap).
2. OCR: seconds per page for image-only pages.
3. Search: p50/p95 latency of ``Library.search`` over >= 100,000 paragraphs. Embedding 100K
   paragraphs with MiniLM takes ~40 min on 2 cores, so this index gets its *paragraph vectors*
   from a mix of real embeddings of a 4,000-paragraph pool (each vector a normalised sum of three
   pool vectors); texts, FTS, SQL and faiss are real and the query is embedded by the real model.
   Latency of exact faiss search does not depend on vector values.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sleuth.index import ingest as ingest_mod
from sleuth.index.embed import Embedder
from sleuth.library import Library
from sleuth.samples import make_long_pdf, make_scanned_pdf


def bench_ingest(tmp: Path, pages: int) -> dict:
    pdf = tmp / "long.pdf"
    make_long_pdf(pdf, pages=pages, words_per_page=500, seed=0)
    out = {}
    for label, fine_tokens in (("sleuth (fine level at 64 tokens)", 64), ("baseline (fine level at 128 tokens)", 128)):
        ingest_mod.FINE_EMBED_TOKENS = fine_tokens
        import sleuth.library as L

        L.FINE_EMBED_TOKENS = fine_tokens
        lib = Library(tmp / f"lib{fine_tokens}")
        lib.embedder.encode(["warm up the session"])
        t0 = time.perf_counter()
        rep = lib.add([pdf])
        total = time.perf_counter() - t0
        r = rep.results[0]
        assert r.status == "added", r.reason
        st = lib.status()
        out[label] = {"seconds": round(total, 2), "pages_per_s": round(pages / total, 2),
                      "split_s": {k: round(v, 2) for k, v in r.timings.items()},
                      "paragraphs": st["kinds"].get("paragraph", 0), "sections": st["kinds"].get("section", 0)}
        lib.close()
    ingest_mod.FINE_EMBED_TOKENS = 64
    return out


def bench_ocr(tmp: Path, n_pages: int = 3) -> dict:
    from sleuth.readers.pdf import read_pdf

    lines = [f"Line {i}: the survey of the northern estuary recorded {i * 7} herons." for i in range(30)]
    pdf = tmp / "scan.pdf"
    make_scanned_pdf(pdf, [lines] * n_pages)  # a list of pages, each a list of lines
    read_pdf(pdf)  # load the models once
    t0 = time.perf_counter()
    tree = read_pdf(pdf)
    dt = time.perf_counter() - t0
    pages = tree.root.meta.get("pages", 1)
    return {"pages": pages, "seconds_per_page": round(dt / pages, 2)}


class PoolEmbedder(Embedder):
    """Real embeddings for queries and coarse nodes; paragraph vectors mixed from a real pool."""

    def __init__(self, pool: np.ndarray):
        super().__init__()
        self.pool = pool

    def encode(self, texts, progress=None, max_length=None):
        if max_length is None:
            return super().encode(texts, progress)
        rng = np.random.default_rng(len(texts))
        idx = rng.integers(0, len(self.pool), size=(len(texts), 3))
        v = self.pool[idx].sum(1)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def bench_search(tmp: Path, n_paragraphs: int, n_queries: int) -> dict:
    rng = random.Random(0)

    vocab = _vocab()
    def para() -> str:
        return " ".join(rng.choice(vocab) for _ in range(rng.randint(40, 90))) + "."

    pool_texts = [para() for _ in range(4000)]
    t0 = time.perf_counter()
    pool = Embedder().encode(pool_texts, max_length=64)
    pool_s = time.perf_counter() - t0
    docs = tmp / "search_corpus"
    docs.mkdir()
    per_file = 1000
    for f in range(n_paragraphs // per_file):
        body = []
        for s in range(per_file // 20):
            body.append(f"## Chapter {f}.{s}\n")
            body += [para() + "\n" for _ in range(20)]
        (docs / f"doc{f:04d}.md").write_text(f"# Volume {f}\n\n" + "\n".join(body))
    lib = Library(tmp / "lib_search", embedder=PoolEmbedder(pool))
    t0 = time.perf_counter()
    lib.add([docs])
    build_s = time.perf_counter() - t0
    n_fine = lib.vectors.count("fine")
    queries = [" ".join(rng.choice(vocab) for _ in range(rng.randint(3, 8))) for _ in range(n_queries)]
    lib.search(queries[0])
    out = {"paragraphs": n_fine, "pool_embed_s": round(pool_s, 1), "build_s": round(build_s, 1)}
    for level in ("fine", "any"):
        lat = []
        for q in queries:
            lib._qcache.clear()
            t = time.perf_counter()
            lib.search(q, level=level, k=8)
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        out[f"level={level}"] = {"p50_ms": round(statistics.median(lat), 1), "p95_ms": round(lat[int(0.95 * len(lat)) - 1], 1)}
    return out


def _vocab() -> list[str]:
    base = ("harbour turbine ledger glacier falcon quarry lantern meadow cobalt orchard estuary basalt tariff "
            "coupon margin freight subsidy pension reactor enzyme protein vaccine archive treaty senate ballot "
            "canal bridge tunnel railway airport satellite telescope crater comet nebula galaxy orbit plasma "
            "lattice crystal polymer alloy ceramic resin fibre cotton wool linen silk leather timber granite "
            "marble clay sand gravel river delta lagoon reef island peninsula plateau valley canyon summit "
            "the of and in to a for with on by from as at that this which revenue growth quarter analysis "
            "policy network learning model data results method table figure energy climate system").split()
    rng = random.Random(1)
    # Zipf-like: common words repeat, rare ones make queries selective.
    extra = [f"{w}{i}" for w in base[:40] for i in range(25)]
    return base * 20 + extra


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--paragraphs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    res = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not a.skip_ingest:
            res["ingest"] = bench_ingest(tmp, a.pages)
            print(json.dumps({"ingest": res["ingest"]}, indent=2), flush=True)
            res["ocr"] = bench_ocr(tmp)
            print(json.dumps({"ocr": res["ocr"]}, indent=2), flush=True)
        if not a.skip_search:
            res["search"] = bench_search(tmp, a.paragraphs, a.queries)
            print(json.dumps({"search": res["search"]}, indent=2), flush=True)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    sys.exit(main())
