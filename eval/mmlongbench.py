"""MMLongBench-Doc: does sleuth find the evidence pages? (``sleuth eval mmlongbench``)

Retrieval mode (no LLM). All PDFs of the split are indexed once into one library. For each
answerable question with gold evidence pages G, every method yields a ranked list of distinct
pages and is scored by recall@k = |top-k ∩ G| / |G| for k in 1, 5, 10, in two scopes:

- ``doc``: within the question's own PDF (pages);
- ``library``: over every PDF of the split ((document, page) pairs).

Gold pages outside the PDF (label noise) stay in G and count as misses.

Methods, all computed in the same run on the same extracted text (the library's paragraphs,
joined per page, so the reader is held fixed and only ranking differs):

- ``sleuth``: ``Library.search(question, level="fine")``, pages of the hits in rank order;
- ``page-bm25``: BM25 (bm25s) over whole pages;
- ``page-fusion``: page BM25 and MiniLM page embeddings fused by reciprocal rank;
- ``chunk-fusion``: 200-token chunks of each page, BM25 + MiniLM fused, pages in order of
  their best chunk.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .loaders import LoaderError, MMLongBenchItem, load_mmlongbench
from .mmlb_library import open_library, progress_bar

KS = (1, 5, 10)
SCOPES = ("doc", "library")
FLAT_METHODS = ("page-bm25", "page-fusion", "chunk-fusion")
METHODS = ("sleuth",) + FLAT_METHODS
RRF_K = 60
CHUNK_TOKENS = 200
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


def distinct(seq) -> list:
    out, seen = [], set()
    for x in seq:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


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


def rrf_rank(score_lists: Sequence[np.ndarray]) -> np.ndarray:
    """Indices ordered by reciprocal-rank fusion of several score arrays over the same items;
    ties (and items no list saw) keep their original order."""
    n = len(score_lists[0])
    fused = np.zeros(n, dtype=np.float64)
    for s in score_lists:
        order = np.argsort(-s, kind="stable")
        ranks = np.empty(n, dtype=np.float64)
        ranks[order] = np.arange(n)
        fused += np.where(s > 0, 1.0 / (RRF_K + ranks + 1), 0.0)
    return np.argsort(-fused, kind="stable")


# ------------------------------------------------------------------ flat corpora


@dataclass
class Corpus:
    """Units (pages or chunks) of one or more documents, each owned by a (document, page) key."""

    keys: list[tuple[str, int]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    _bm25: Any = None
    _vecs: np.ndarray | None = None

    def index(self, embed: Callable[[list[str]], np.ndarray]) -> "Corpus":
        import bm25s

        from .baselines import lexical_tokens

        docs = [lexical_tokens(t, "en") or ["\u2205"] for t in self.texts]
        self._bm25 = bm25s.BM25()
        self._bm25.index(docs, show_progress=False)
        self._vecs = embed(self.texts)
        return self

    def bm25(self, query: str) -> np.ndarray:
        from .baselines import lexical_tokens

        q = lexical_tokens(query, "en")
        if not q or not self.texts:
            return np.zeros(len(self.texts), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(q), dtype=np.float32)

    def dense(self, qv: np.ndarray) -> np.ndarray:
        return (self._vecs @ qv).astype(np.float32)

    def pages_bm25(self, query: str) -> list[tuple[str, int]]:
        s = self.bm25(query)
        return distinct(self.keys[i] for i in np.argsort(-s, kind="stable"))

    def pages_fusion(self, query: str, qv: np.ndarray) -> list[tuple[str, int]]:
        # dense gets a +1 shift so every unit is in its list (cosines can be negative)
        order = rrf_rank([self.bm25(query), self.dense(qv) + 1.0])
        return distinct(self.keys[i] for i in order)


def page_texts(lib) -> dict[str, dict[int, str]]:
    """Document name → page → the text of its fine nodes (paragraphs, tables, …) in order."""
    from sqlalchemy import select

    from ..index.schema import NodeRow, SourceRow

    out: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    with lib.Session() as s:
        rows = s.execute(select(SourceRow.name, NodeRow.page, NodeRow.text)
                         .join(SourceRow, SourceRow.id == NodeRow.source_id)
                         # a table's rows repeat its text: the table stands for them
                         .where(NodeRow.tier == "fine", NodeRow.kind != "row", NodeRow.page.is_not(None))
                         .order_by(NodeRow.id)).all()
    for name, page, text in rows:
        if text and text.strip():
            out[name][int(page)].append(text)
    return {d: {p: "\n".join(ts) for p, ts in sorted(pages.items())} for d, pages in out.items()}


def _cached_embed(lib, cache: Path, max_length: int = 256) -> Callable[[list[str]], np.ndarray]:
    """MiniLM vectors of texts, kept per text hash under ``cache`` so a rerun (or a library
    grown by a few documents) embeds only what is new."""
    keys_f, vecs_f = cache / f"emb-{max_length}.keys.json", cache / f"emb-{max_length}.npy"

    def embed(texts: list[str]) -> np.ndarray:
        known: dict[str, int] = {}
        store = np.zeros((0, 384), np.float32)
        if keys_f.is_file() and vecs_f.is_file():
            try:
                known = {k: i for i, k in enumerate(json.loads(keys_f.read_text()))}
                store = np.load(vecs_f)
            except (OSError, ValueError):
                known, store = {}, store
            if len(known) != len(store):
                known, store = {}, np.zeros((0, 384), np.float32)
        hs = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        todo = list(dict.fromkeys(h for h in hs if h not in known))
        if todo:
            first = {h: t for h, t in zip(hs, texts)}
            new = lib.embedder.encode([first[h] for h in todo], max_length=max_length)
            for h in todo:
                known[h] = len(known)
            store = np.concatenate([store, new.astype(np.float32)])
            cache.mkdir(parents=True, exist_ok=True)
            np.save(vecs_f, store)
            keys_f.write_text(json.dumps(sorted(known, key=known.get)))
        return store[[known[h] for h in hs]] if hs else np.zeros((0, 384), np.float32)

    return embed


def build_corpora(pages: dict[str, dict[int, str]], embed) -> dict[str, dict[str, Corpus]]:
    """scope/kind → Corpus: ``page``/``chunk`` for the whole library and per document."""
    from .baselines import chunk_text

    page_all, chunk_all = Corpus(), Corpus()
    for doc in sorted(pages):
        for p, text in pages[doc].items():
            page_all.keys.append((doc, p))
            page_all.texts.append(text)
            for c in chunk_text(text, CHUNK_TOKENS):
                chunk_all.keys.append((doc, p))
                chunk_all.texts.append(c.text)
    page_all.index(embed)
    chunk_all.index(embed)
    per_doc: dict[str, dict[str, Corpus]] = {}
    for kind, whole in (("page", page_all), ("chunk", chunk_all)):
        for doc in pages:
            idx = [i for i, k in enumerate(whole.keys) if k[0] == doc]
            c = Corpus(keys=[whole.keys[i] for i in idx], texts=[whole.texts[i] for i in idx])
            import bm25s

            from .baselines import lexical_tokens

            c._bm25 = bm25s.BM25()
            c._bm25.index([lexical_tokens(t, "en") or ["\u2205"] for t in c.texts], show_progress=False)
            c._vecs = whole._vecs[idx] if idx else np.zeros((0, 384), np.float32)
            per_doc.setdefault(doc, {})[kind] = c
    return {"library": {"page": page_all, "chunk": chunk_all}, **{f"doc:{d}": v for d, v in per_doc.items()}}


# ------------------------------------------------------------------ methods


def sleuth_pages(lib, question: str, within: str | None, level: str = "fine", k: int = SEARCH_HITS) -> list[tuple[str, int]]:
    hits = lib.search(question, level=level, within=within, k=k)
    out = []
    for h in hits:
        loc = h.get("locator") or {}
        if loc.get("page") is not None:
            out.append((loc.get("source"), int(loc["page"])))
    return distinct(out)


def rank_all(lib, item: MMLongBenchItem, corpora, qv: np.ndarray) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """(method, scope) → ranked distinct (document, page) pairs."""
    out: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for scope in SCOPES:
        c = corpora["library"] if scope == "library" else corpora.get(f"doc:{item.doc_id}", {})
        within = item.doc_id if scope == "doc" else None
        out[("sleuth", scope)] = sleuth_pages(lib, item.question, within)
        if not c:  # the document has no text at all: flat methods rank nothing
            for m in FLAT_METHODS:
                out[(m, scope)] = []
            continue
        out[("page-bm25", scope)] = c["page"].pages_bm25(item.question)
        out[("page-fusion", scope)] = c["page"].pages_fusion(item.question, qv)
        out[("chunk-fusion", scope)] = c["chunk"].pages_fusion(item.question, qv)
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
    sleuth minus the best flat baseline (best by recall@5 in that scope) for recall@5."""
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
            corpora = build_corpora(page_texts(lib), _cached_embed(lib, out / "mmlongbench-cache"))
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
