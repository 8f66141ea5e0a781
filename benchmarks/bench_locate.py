"""Ablation of sleuth's structure-aware ranking on MMLongBench-Doc (evidence-page recall@5).

Runs ``Library.search(level="fine", k=40)`` for every answerable question of the split over an
already indexed library, once per setting of the weights in ``sleuth.index.rank`` (and
``PAGE_REF_W``, the weight of pages the question names, in ``sleuth.index.search``), and prints
recall@5 within the question's PDF and over the whole library, per document half (A: the half the
weights were chosen on). The flat baselines are in ``sleuth eval mmlongbench --mode retrieval``.

    python benchmarks/bench_locate.py --library LIB --data ../shared/data/mmlongbench_doc_dev \\
        [name:PAGE_W=0,SECTION_W=0 ...]

With no settings it compares the search before this ranking ("plain": every weight 0) with the
defaults.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sleuth.eval import mmlongbench as MM
from sleuth.eval.loaders import load_mmlongbench
from sleuth.index import lexical as LX
from sleuth.index import rank as RK
from sleuth.index import search as SE
from sleuth.library import Library

#: knob → the module holding it
KNOBS = {"PAGE_W": RK, "SECTION_W": RK, "ROUTE_W": RK, "DOC_W": RK, "CTX_BOOST": LX, "CONTENTLESS": RK, "COARSE_W": RK, "PAGE_REF_W": SE}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("settings", nargs="*", help="name:KNOB=value,KNOB=value")
    a = ap.parse_args()
    lib = Library(a.library)
    have = {s["name"] for s in lib.sources()}
    items = [it for it in load_mmlongbench(a.data) if it.answerable and it.evidence_pages and it.doc_id in have]
    print(f"{len(have)} documents, {len(items)} questions")
    variants = {"plain": dict(PAGE_W=0, SECTION_W=0, ROUTE_W=0, DOC_W=0, CTX_BOOST=0, CONTENTLESS=1.0, COARSE_W=0, PAGE_REF_W=0), "default": {}}
    for s in a.settings:
        name, kv = s.split(":", 1)
        variants[name] = {k: float(v) for k, v in (x.split("=") for x in kv.split(","))}
    base = {k: getattr(mod, k) for k, mod in KNOBS.items()}
    res: dict = {}
    for name, over in variants.items():
        for k, v in {**base, **over}.items():
            setattr(KNOBS[k], k, v)
        t0 = time.perf_counter()
        for it in items:
            for scope in MM.SCOPES:
                pages = MM.sleuth_pages(lib, it.question, it.doc_id if scope == "doc" else None)
                keys = [p for d, p in pages if d == it.doc_id] if scope == "doc" else pages
                gold = sorted(set(it.evidence_pages))
                if scope == "library":
                    gold = [(it.doc_id, p) for p in gold]
                res.setdefault((name, scope), []).append((MM.doc_half(it.doc_id), MM.recall_at(keys, gold, 5)))
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    for k, v in base.items():
        setattr(KNOBS[k], k, v)
    print("| setting | scope | R@5 all | half A | half B |\n|---|---|---:|---:|---:|")
    for (name, scope), v in res.items():
        half = {h: [x for hh, x in v if hh == h] for h in "AB"}
        print(f"| {name} | {scope} | {100 * np.mean([x for _, x in v]):.1f} | "
              + " | ".join(f"{100 * np.mean(half[h]):.1f} (n={len(half[h])})" if half[h] else "—" for h in "AB") + " |")
    lib.close()


if __name__ == "__main__":
    main()
