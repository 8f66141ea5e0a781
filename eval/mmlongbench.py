"""MMLongBench-Doc: does sleuth find the evidence pages? (``sleuth eval mmlongbench``)

Retrieval mode (no LLM). All PDFs of the split are indexed once into one library. For each
answerable question with gold evidence pages G, every method yields a ranked list of distinct
pages and is scored by recall@k = |top-k ∩ G| / |G| for k in 1, 5, 10, in two scopes:

- ``doc``: within the question's own PDF (pages);
- ``library``: over every PDF of the split ((document, page) pairs).

Gold pages outside the PDF (label noise) stay in G and count as misses.

Methods, all computed in the same run:

- ``sleuth``: ``Library.search(question, level="fine")``, pages of the hits in rank order;
- the flat baselines of :data:`FLAT`, each a page ranking a user could build without sleuth:
  ``page-bm25`` (bm25s with bm25s' English stopwords and PyStemmer's English stemmer over
  pypdfium2's text of each page, the library's OCR text for a page with no text layer),
  ``page-fusion`` (that BM25 and MiniLM page embeddings fused by reciprocal rank),
  ``chunk-fusion`` (the same over 200-token chunks, a page ranked by its best chunk) and
  ``pdfium-page-bm25`` (no OCR: a scanned page is not there); ``*-unstemmed`` are the harness's
  earlier baselines (unstemmed words over the library's own text, so only the ranking differs
  from sleuth's), kept so earlier reports compare. :data:`STRONGEST_FLAT` is the one flat RAG
  (``--mode e2e``) reads by.

Outputs under ``--out``: ``mmlongbench-retrieval.jsonl`` (one record per question, method and
scope, for paired comparison), ``.json`` (means, by evidence source and by document half,
paired bootstrap CIs against the best flat baseline), ``.md`` and ``.png``.

Documents are split into two halves by a hash of the file name (``half`` "A"/"B"), so ranking
can be tuned on one half and reported on both.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .flat import (  # noqa: F401 - the flat rankings' names, as this module has always offered them
    FLAT,
    FLAT_METHODS,
    METHODS,
    RRF_K,
    STRONGEST_FLAT,
    Corpus,
    FlatRanker,
    _cached_embed,
    build_corpora,
    distinct,
    page_texts,
    rrf_rank,
    text_sources,
)
from .loaders import LoaderError, MMLongBenchItem, load_mmlongbench
from .mmlb_library import open_library, progress_bar

KS = (1, 5, 10)
SCOPES = ("doc", "library")
#: hits requested from sleuth's search: enough to fill 10 distinct pages almost always
SEARCH_HITS = 40
BOOTSTRAP = 2000


# ------------------------------------------------------------------ scoring


def recall_at(ranked: Sequence, gold: Sequence, k: int) -> float:
    """|top-k ∩ G| / |G| over distinct ranked entries (a repeated page counts once, at its first rank)."""
    g = set(gold)
    if not g:
        raise ValueError("recall needs gold pages")
    seen: list = []
    for p in ranked:
        if p not in seen:
            seen.append(p)
            if len(seen) == k:
                break
    return len(g.intersection(seen)) / len(g)


def doc_half(doc_id: str) -> str:
    """A or B, from the file name's hash: a fixed split nobody chose by looking at results."""
    return "AB"[hashlib.sha256(doc_id.encode("utf-8")).digest()[0] & 1]


def bootstrap_ci(diff: Sequence[float], n: int = BOOTSTRAP, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the mean of paired differences, resampling questions."""
    d = np.asarray(diff, dtype=np.float64)
    if d.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


# ------------------------------------------------------------------ methods


def sleuth_pages(lib, question: str, within: str | None, level: str = "fine", k: int = SEARCH_HITS) -> list[tuple[str, int]]:
    hits = lib.search(question, level=level, within=within, k=k)
    out = []
    for h in hits:
        loc = h.get("locator") or {}
        if loc.get("page") is not None:
            out.append((loc.get("source"), int(loc["page"])))
    return distinct(out)


def flat_pages(corpora, method: str, scope: str, question: str, qv: np.ndarray | None) -> list[tuple[str, int]]:
    """Distinct (document, page) pairs by flat ``method`` in ``scope`` (``library`` or
    ``doc:<name>``); nothing when that scope has no text of that kind."""
    f = FLAT[method]
    c = corpora[(f.text, f.unit)].get(scope)
    return c.rank(question, qv, f.words, f.dense) if c is not None else []


def rank_all(lib, item: MMLongBenchItem, corpora, qv: np.ndarray, methods: Sequence[str] = FLAT_METHODS
             ) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """(method, scope) → ranked distinct (document, page) pairs."""
    out: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for scope in SCOPES:
        within = item.doc_id if scope == "doc" else None
        out[("sleuth", scope)] = sleuth_pages(lib, item.question, within)
        key = "library" if scope == "library" else f"doc:{item.doc_id}"
        for m in methods:
            out[(m, scope)] = flat_pages(corpora, m, key, item.question, qv)
    return out


def score_item(item: MMLongBenchItem, ranked: dict[tuple[str, str], list[tuple[str, int]]]) -> list[dict[str, Any]]:
    recs = []
    gold = sorted(set(item.evidence_pages))
    for (method, scope), pages in ranked.items():
        if scope == "doc":
            ranked_keys: list = [p for d, p in pages if d == item.doc_id]
            g: list = gold
        else:
            ranked_keys = pages
            g = [(item.doc_id, p) for p in gold]
        rec = {"id": item.id, "doc_id": item.doc_id, "doc_type": item.doc_type, "half": doc_half(item.doc_id),
               "question": item.question, "sources": item.evidence_sources, "gold": gold,
               "method": method, "scope": scope,
               "top": [list(x) if isinstance(x, tuple) else x for x in ranked_keys[:10]]}
        for k in KS:
            rec[f"r@{k}"] = recall_at(ranked_keys, g, k)
        recs.append(rec)
    return recs


# ------------------------------------------------------------------ summary and reports


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means (×100) per scope/method/k, by evidence source and by half; paired bootstrap CI of
    sleuth minus the best flat baseline (best by recall@5 in that scope) for recall@5, by half,
    and at every k against that same baseline (``by_k``)."""
    by = defaultdict(list)
    for r in records:
        by[(r["scope"], r["method"])].append(r)
    out: dict[str, Any] = {"n_questions": len({r["id"] for r in records}), "scopes": {}}
    for scope in SCOPES:
        sc: dict[str, Any] = {"methods": {}, "by_source": {}, "by_half": {}}
        for m in METHODS:
            rs = by.get((scope, m), [])
            if not rs:
                continue
            sc["methods"][m] = {f"r@{k}": round(100 * float(np.mean([r[f"r@{k}"] for r in rs])), 2) for k in KS}
            sc["methods"][m]["n"] = len(rs)
            srcs = defaultdict(list)
            halves = defaultdict(list)
            for r in rs:
                for s in set(r["sources"]) or {"(none)"}:
                    srcs[s].append(r["r@5"])
                halves[r["half"]].append(r["r@5"])
            sc["by_source"][m] = {s: {"r@5": round(100 * float(np.mean(v)), 2), "n": len(v)} for s, v in sorted(srcs.items())}
            sc["by_half"][m] = {h: {"r@5": round(100 * float(np.mean(v)), 2), "n": len(v)} for h, v in sorted(halves.items())}
        flats = [m for m in FLAT_METHODS if m in sc["methods"]]
        if "sleuth" in sc["methods"] and flats:
            best = max(flats, key=lambda m: sc["methods"][m]["r@5"])
            a = {r["id"]: r["r@5"] for r in by[(scope, "sleuth")]}
            b = {r["id"]: r["r@5"] for r in by[(scope, best)]}
            ids = sorted(set(a) & set(b))
            diff = [a[i] - b[i] for i in ids]
            lo, hi = bootstrap_ci(diff)
            sc["paired"] = {"baseline": best, "k": 5, "n": len(ids), "mean_diff": round(100 * float(np.mean(diff)), 2),
                            "ci95": [round(100 * lo, 2), round(100 * hi, 2)], "by_k": {}}
            for k in KS:  # the same baseline at every k
                ak = {r["id"]: r[f"r@{k}"] for r in by[(scope, "sleuth")]}
                bk = {r["id"]: r[f"r@{k}"] for r in by[(scope, best)]}
                d = [ak[i] - bk[i] for i in ids]
                lo, hi = bootstrap_ci(d)
                sc["paired"]["by_k"][f"r@{k}"] = {"mean_diff": round(100 * float(np.mean(d)), 2),
                                                  "ci95": [round(100 * lo, 2), round(100 * hi, 2)]}
            for h in ("A", "B"):
                hid = [i for i in ids if doc_half(i.split("#")[0]) == h]
                if hid:
                    d = [a[i] - b[i] for i in hid]
                    lo, hi = bootstrap_ci(d)
                    sc["paired"][f"half_{h}"] = {"n": len(hid), "mean_diff": round(100 * float(np.mean(d)), 2),
                                                 "ci95": [round(100 * lo, 2), round(100 * hi, 2)]}
        out["scopes"][scope] = sc
    return out


def markdown(summary: dict[str, Any]) -> str:
    lines = [f"### MMLongBench-Doc evidence-page recall (× 100), {summary['n_questions']} answerable questions", ""]
    if summary.get("documents_not_indexed"):
        lines += [f"Not indexed (their questions left out): {', '.join(summary['documents_not_indexed'])}", ""]
    for scope in SCOPES:
        sc = summary["scopes"].get(scope)
        if not sc:
            continue
        lines += [f"**{'within the question’s document' if scope == 'doc' else 'whole library'}**", "",
                  "| method | R@1 | R@5 | R@10 | R@5 half A | R@5 half B |", "|---|---:|---:|---:|---:|---:|"]
        for m, v in sc["methods"].items():
            h = sc["by_half"].get(m, {})
            lines.append(f"| {m} | {v['r@1']:.1f} | {v['r@5']:.1f} | {v['r@10']:.1f} | "
                         f"{h.get('A', {}).get('r@5', float('nan')):.1f} | {h.get('B', {}).get('r@5', float('nan')):.1f} |")
        if "paired" in sc:
            p = sc["paired"]
            lines += ["", f"sleuth − {p['baseline']} (R@5, paired, n = {p['n']}): {p['mean_diff']:+.1f} points, "
                      f"95% bootstrap CI [{p['ci95'][0]:+.1f}, {p['ci95'][1]:+.1f}]"
                      + "".join(f"; half {h}: {p[f'half_{h}']['mean_diff']:+.1f} [{p[f'half_{h}']['ci95'][0]:+.1f}, "
                                f"{p[f'half_{h}']['ci95'][1]:+.1f}]" for h in "AB" if f"half_{h}" in p)]
            if p.get("by_k"):
                lines += ["", "At every k against the same baseline: " + "; ".join(
                    f"{k.upper()}: {v['mean_diff']:+.1f} [{v['ci95'][0]:+.1f}, {v['ci95'][1]:+.1f}]"
                    for k, v in p["by_k"].items()) + "."]
        srcs = sorted({s for v in sc["by_source"].values() for s in v})
        if srcs:
            lines += ["", "R@5 by evidence source (a question counts under each source it lists):", "",
                      "| method | " + " | ".join(f"{s} (n={sc['by_source'][next(iter(sc['by_source']))].get(s, {}).get('n', 0)})" for s in srcs) + " |",
                      "|---|" + "---:|" * len(srcs)]
            for m, v in sc["by_source"].items():
                lines.append(f"| {m} | " + " | ".join(f"{v[s]['r@5']:.1f}" if s in v else "—" for s in srcs) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(SCOPES), figsize=(9, 3.6), squeeze=False)
    for ax, scope in zip(axes[0], SCOPES):
        meths = summary["scopes"].get(scope, {}).get("methods", {})
        for m, v in meths.items():
            ax.plot(list(KS), [v[f"r@{k}"] for k in KS], marker="o", label=m)
        ax.set_title("within document" if scope == "doc" else "whole library")
        ax.set_xticks(list(KS))
        ax.set_xlabel("k (pages)")
        ax.set_ylabel("evidence-page recall@k (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ driver


def run_retrieval(data, out: Path, limit=None, subset=None, library=None, progress: bool = True) -> dict[str, Any]:
    items = [it for it in load_mmlongbench(data, limit=None, doc_types=subset) if it.answerable and it.evidence_pages]
    if limit:
        items = items[:limit]
    if not items:
        raise LoaderError(f"{data}: no answerable questions with evidence pages selected")
    out.mkdir(parents=True, exist_ok=True)
    stem = out / "mmlongbench-retrieval"
    with progress_bar(progress) as prog:
        lib = open_library(Path(data), items, library, out, prog)
        indexed = {src["name"] for src in lib.sources()}
        missing = sorted({it.doc_id for it in items} - indexed)
        items = [it for it in items if it.doc_id in indexed]
        try:
            if not items:
                raise LoaderError(f"{data}: none of the questions' documents is indexed")
            t = prog.add_task("page corpora", total=None)
            cache = out / "mmlongbench-cache"
            texts = text_sources(lib, {FLAT[m].text for m in FLAT_METHODS}, cache)
            corpora = build_corpora(texts, _cached_embed(lib, cache))
            prog.update(t, total=1, completed=1)
            records: list[dict[str, Any]] = []
            task = prog.add_task("questions", total=len(items))
            for it in items:
                qv = lib.embedder.encode([it.question], max_length=256)[0]
                records += score_item(it, rank_all(lib, it, corpora, qv))
                prog.advance(task)
        finally:
            lib.close()
    jsonl = stem.with_suffix(".jsonl")
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    summary = summarise(records)
    summary["documents_not_indexed"] = missing
    js = stem.with_suffix(".json")
    js.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    md = stem.with_suffix(".md")
    md.write_text(markdown(summary), encoding="utf-8")
    png = plot(summary, stem.with_suffix(".png"))
    return {"items": len(items), "documents_not_indexed": missing, "records": str(jsonl), "json": str(js), "markdown": str(md), "plot": str(png),
            "recall@5": {s: {m: v["r@5"] for m, v in summary["scopes"][s]["methods"].items()} for s in SCOPES}}


#: mode → runner(data, out, limit=, subset=, library=, progress=, llm_options=) → summary dict.
#: The e2e mode (an LLM answers; issue "A real model in the loop") registers itself here.
MODES: dict[str, Callable[..., dict[str, Any]]] = {
    "retrieval": lambda data, out, llm_options=None, **kw: run_retrieval(data, out, **kw),
    "e2e": lambda data, out, **kw: _e2e(data, out, **kw),
}


def _e2e(data, out, **kw) -> dict[str, Any]:
    from .mmlongbench_e2e import run_mode

    return run_mode(data, out, **kw)


def run_mmlongbench(data, out, mode: str = "retrieval", **kw) -> dict[str, Any]:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} for mmlongbench (have: {', '.join(MODES)})")
    if not Path(data).exists():
        raise LoaderError(f"{data}: no such folder or file")
    return MODES[mode](Path(data), Path(out), **kw)
