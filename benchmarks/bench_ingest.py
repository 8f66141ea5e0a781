"""Ingestion speed, OCR speed and search latency (a benchmark, not a test).

    .venv/bin/python benchmarks/bench_ingest.py                 # everything
    .venv/bin/python benchmarks/bench_ingest.py --skip-search   # ingestion + OCR only
    .venv/bin/python benchmarks/bench_ingest.py --real          # real 10-K filings and 1,000 small files
                                                                 # (benchmarks/bench_ingest_real.py)

1. Ingestion: a generated 300-page text PDF (~500 words a page), end to end through
   ``Library.add`` (extraction, summaries, embeddings, storage), split into extraction,
   embedding and storage; pages/s overall. Side by side: the same file embedded with every
   paragraph at 128 tokens (the plain alternative to the 64-token fine-level cap).
2. OCR: seconds per page for image-only pages.
3. Search: p50/p95 latency of ``Library.search`` over >= 100,000 paragraphs, beside the exact
   flat faiss index, and BM25 alone: tantivy beside an SQLite FTS5 table of the same rows. Embedding 100K
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


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "longbench_v2"


KEEP: Path | None = None


def real_paragraphs(n: int) -> list[str]:
    """Real paragraphs (12+ words, no CJK) from the LongBench v2 contexts in ../shared/data
    (documents, papers, reports, dialogues, code), in file order."""
    from sleuth.readers.text import parse_text
    from sleuth.readers.textsplit import CJK_RE

    out: list[str] = []
    for f in sorted(SHARED.glob("md/*/*_context.txt")):
        tree = parse_text(f.read_text(errors="replace"), title=f.stem)
        for node in tree.root.walk():
            if node.kind == "paragraph" and len(node.text.split()) >= 12 and not CJK_RE.search(node.text):
                out.append(node.text)
                if len(out) >= n:
                    return out
    return out


def real_questions(n: int) -> list[str]:
    qs = [json.loads(l)["question"] for l in open(SHARED / "questions_all.jsonl")]
    qs = [q for q in qs if len(q.split()) <= 40]
    random.Random(0).shuffle(qs)
    return qs[:n]


def bench_search(tmp: Path, n_paragraphs: int, n_queries: int) -> dict:
    paras = real_paragraphs(int(n_paragraphs * 1.04))  # long ones are split at sentence ends; keep >= n
    t0 = time.perf_counter()
    pool = Embedder().encode(paras[:4000], max_length=64)
    pool_s = time.perf_counter() - t0
    docs = tmp / "search_corpus"
    docs.mkdir()
    per_file = 1000
    for f in range(0, len(paras), per_file):
        chunk = paras[f : f + per_file]
        body = []
        for s in range(0, len(chunk), 20):
            body.append(f"## Part {f // per_file}.{s // 20}\n")
            body += [p.replace("\n", " ") + "\n" for p in chunk[s : s + 20]]
        (docs / f"doc{f // per_file:04d}.md").write_text(f"# Volume {f // per_file}\n\n" + "\n".join(body))
    lib = Library(tmp / "lib_search", embedder=PoolEmbedder(pool))
    t0 = time.perf_counter()
    lib.add([docs])
    build_s = time.perf_counter() - t0
    if KEEP:
        import shutil

        shutil.copytree(tmp / "lib_search", KEEP, dirs_exist_ok=True)
    n_fine = lib.vectors.count("fine")
    queries = real_questions(n_queries)
    lib.search(queries[0])
    out = {"paragraphs": n_fine, "corpus": "LongBench v2 contexts (real text)", "queries": f"{len(queries)} LongBench v2 questions",
           "fine_index": __import__("sleuth.index.vectors", fromlist=["_kind"])._kind(lib.vectors.indexes["fine"]),
           "pool_embed_s": round(pool_s, 1), "build_s": round(build_s, 1)}
    for level in ("fine", "any"):
        lat = []
        for q in queries:
            lib._qcache.clear()
            t = time.perf_counter()
            lib.search(q, level=level, k=8)
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        out[f"level={level}"] = {"p50_ms": round(statistics.median(lat), 1), "p95_ms": round(lat[int(0.95 * len(lat)) - 1], 1)}
    out["lexical only, level=fine, k=40"] = bench_lexical(lib, queries, tmp)
    # The exact flat index as the baseline, same library, same queries.
    from sleuth.index import vectors as V

    lib.vectors.indexes["fine"] = V._new_index(384)
    lib.vectors.generation = -1
    lib.vectors.loader = None
    save = V.SQ_THRESHOLD
    V.SQ_THRESHOLD = 10**9
    lib.refresh()
    lat = []
    for q in queries:
        lib._qcache.clear()
        t = time.perf_counter()
        lib.search(q, level="fine", k=8)
        lat.append((time.perf_counter() - t) * 1000)
    V.SQ_THRESHOLD = save
    lat.sort()
    out["baseline: level=fine with exact flat faiss"] = {"p50_ms": round(statistics.median(lat), 1),
                                                          "p95_ms": round(lat[int(0.95 * len(lat)) - 1], 1)}
    return out


def bench_lexical(lib: Library, queries: list[str], tmp: Path) -> dict:
    """BM25 alone, side by side: tantivy (block-max WAND top-k, the product) against SQLite FTS5
    over the same fine rows (it scores every row the OR query matches; sleuth used it before),
    with the agreement of their top 10."""
    import sqlite3

    from sleuth.index.lexical import query_terms
    from sleuth.index.lexical_sync import source_rows

    con = sqlite3.connect(tmp / "fts5_baseline.db")
    con.execute("CREATE VIRTUAL TABLE f USING fts5(title, body, tokenize='porter unicode61 remove_diacritics 2')")
    with lib.engine.connect() as c:
        ids = [s["id"] for s in lib.sources()]
        con.executemany("INSERT INTO f(rowid, title, body) VALUES (?, ?, ?)",
                        [(i, t, b) for i, t, b, tier in source_rows(c, ids) if tier == "fine"])
    con.commit()
    sql = ("SELECT rowid FROM (SELECT rowid, bm25(f, 2.0, 1.0) AS s FROM f WHERE f MATCH ?) ORDER BY s LIMIT 40")
    out, tops = {}, {}
    for name in ("tantivy", "fts5"):
        lat, tops[name] = [], []
        for q in queries:
            expr = " OR ".join('"' + t + '"' for t in query_terms(q))
            t = time.perf_counter()
            if name == "tantivy":
                got = [i for i, _ in lib.lexical.search(q, ("fine",), 40)]
            else:
                got = [r[0] for r in con.execute(sql, (expr,))] if expr else []
            lat.append((time.perf_counter() - t) * 1000)
            tops[name].append(set(got[:10]))
        lat.sort()
        out[name] = {"p50_ms": round(statistics.median(lat), 2), "p95_ms": round(lat[int(0.95 * len(lat)) - 1], 2)}
    both = [len(a & b) / max(1, min(len(a), len(b))) for a, b in zip(tops["tantivy"], tops["fts5"]) if a or b]
    out["top10_overlap"] = round(sum(both) / max(1, len(both)), 3)
    out["speedup_p50"] = round(out["fts5"]["p50_ms"] / out["tantivy"]["p50_ms"], 1)
    con.close()
    return out


def main() -> None:
    if "--real" in sys.argv[1:]:  # real filings and small files, split by stage: its own options
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_ingest_real import main as real

        return real([x for x in sys.argv[1:] if x != "--real"])
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--paragraphs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="copy the 100K-paragraph library here")
    a = ap.parse_args()
    global KEEP
    KEEP = a.keep
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
