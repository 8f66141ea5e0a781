"""Flat rankings of PDF pages: the baselines a user builds without sleuth.

Used by ``sleuth eval mmlongbench``: in retrieval mode every method of :data:`FLAT` is scored
beside sleuth's search (:mod:`.mmlongbench`); in ``--mode e2e`` flat RAG reads the pages
:data:`STRONGEST_FLAT` ranks first (:mod:`.mmlongbench_e2e`, through :class:`FlatRanker`).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

RRF_K = 60
CHUNK_TOKENS = 200


def distinct(seq) -> list:
    """The items in order, each at its first place."""
    out, seen = [], set()
    for x in seq:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


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


@dataclass(frozen=True)
class Flat:
    """One flat ranking: which page text, which unit, which words, and whether MiniLM is fused in.

    ``text``: ``pdf`` (pypdfium2's text layer of each page, as a user without sleuth's reader gets
    it; a page with no text layer, a scanned slide, gets the library's OCR text of that page, as
    a user who OCRs such pages would), ``pdfium`` (the text layer only: pages without one are not
    units) or ``library`` (sleuth's fine nodes joined per page, OCR included, so only the ranking
    differs from sleuth's). ``unit``: ``page`` or ``chunk`` (200-token pieces of a page, the page
    ranked by its best piece). ``words``: ``stem`` (bm25s' tokenizer, English stopwords,
    PyStemmer's English stemmer) or ``plain`` (lower-cased ``\\w+`` words minus the stopwords,
    unstemmed: the harness's earlier baselines).
    ``dense``: BM25 and MiniLM (first 256 word pieces) fused by reciprocal rank.
    """

    text: str
    unit: str
    words: str
    dense: bool


#: The flat baselines every run measures. The first three are what a user builds with bm25s and
#: MiniLM over pypdfium2's page text (OCR where a page has no text layer); ``pdfium-page-bm25``
#: is the same BM25 with no OCR at all; ``*-unstemmed`` are the harness's earlier baselines
#: (unstemmed words over the library's text), kept so earlier reports compare.
FLAT: dict[str, Flat] = {
    "page-bm25": Flat("pdf", "page", "stem", False),
    "page-fusion": Flat("pdf", "page", "stem", True),
    "chunk-fusion": Flat("pdf", "chunk", "stem", True),
    "pdfium-page-bm25": Flat("pdfium", "page", "stem", False),
    "page-bm25-unstemmed": Flat("library", "page", "plain", False),
    "chunk-fusion-unstemmed": Flat("library", "chunk", "plain", True),
}
FLAT_METHODS = tuple(FLAT)
METHODS = ("sleuth",) + FLAT_METHODS
#: The flat ranking flat RAG (``--mode e2e``) reads by: the best flat baseline by recall@5 on the
#: dev split, within a document (63.5, against 60.8 for page fusion and 59.1 for page BM25) and
#: over the library (48.6) alike, in one run (docs/locate.md, "Flat baselines").
STRONGEST_FLAT = "chunk-fusion"


def words_of(texts: Sequence[str], words: str) -> list[list[str]]:
    """The words BM25 indexes for each text: ``stem`` (a user's bm25s) or ``plain`` (unstemmed)."""
    from .baselines import lexical_tokens, stemmed_tokens

    if words == "stem":
        return stemmed_tokens(texts)
    if words == "plain":
        return [lexical_tokens(t, "en") for t in texts]
    raise ValueError(f"unknown words {words!r} (have: stem, plain)")


@dataclass
class Corpus:
    """Units (pages or chunks) of one or more documents, each owned by a (document, page) key,
    with their MiniLM vectors; a BM25 index per kind of words, made on first use."""

    keys: list[tuple[str, int]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    vecs: np.ndarray | None = None
    _bm25: dict[str, Any] = field(default_factory=dict)

    def subset(self, idx: Sequence[int]) -> "Corpus":
        vecs = None if self.vecs is None else (self.vecs[list(idx)] if idx else np.zeros((0, 384), np.float32))
        return Corpus(keys=[self.keys[i] for i in idx], texts=[self.texts[i] for i in idx], vecs=vecs)

    def bm25(self, query: str, words: str) -> np.ndarray:
        import bm25s

        q = words_of([query], words)[0]
        if not q or not self.texts:
            return np.zeros(len(self.texts), dtype=np.float32)
        if words not in self._bm25:
            r = bm25s.BM25()
            # a unit with no indexable word keeps its place with a word no query has
            r.index([ws or ["\u2205"] for ws in words_of(self.texts, words)], show_progress=False)
            self._bm25[words] = r
        return np.asarray(self._bm25[words].get_scores(q), dtype=np.float32)

    def dense(self, qv: np.ndarray) -> np.ndarray:
        return (self.vecs @ qv).astype(np.float32)

    def order(self, query: str, qv: np.ndarray | None, words: str, fuse: bool) -> np.ndarray:
        """Unit indices, best first; ties keep document order."""
        s = self.bm25(query, words)
        if not fuse:
            return np.argsort(-s, kind="stable")
        # dense gets a +1 shift so every unit is in its list (cosines can be negative)
        return rrf_rank([s, self.dense(qv) + 1.0])

    def rank(self, query: str, qv: np.ndarray | None, words: str, fuse: bool) -> list[tuple[str, int]]:
        """Distinct (document, page) keys, best first (a page ranks at its best unit)."""
        return distinct(self.keys[i] for i in self.order(query, qv, words, fuse))


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


def pdfium_pages(path: str | Path) -> dict[int, str]:
    """Page (1-based) → pypdfium2's text of that page; pages with no text are left out, and a
    file pdfium cannot open has no pages."""
    import pypdfium2 as pdfium

    out: dict[int, str] = {}
    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError:
        return out
    try:
        for i in range(len(pdf)):
            page = pdf[i]
            try:
                tp = page.get_textpage()
                text = tp.get_text_bounded()
                tp.close()
            except pdfium.PdfiumError:
                text = ""
            finally:
                page.close()
            if text.strip():
                out[i + 1] = text
    finally:
        pdf.close()
    return out


def with_ocr(pdfium: dict[int, str], library: dict[int, str]) -> dict[int, str]:
    """A document's pages as a user with OCR reads them: pypdfium2's text layer, and for a page
    with none the library's text of that page (sleuth's OCR of it)."""
    pages = {**{p: t for p, t in library.items() if p not in pdfium}, **pdfium}
    return dict(sorted(pages.items()))


def text_sources(lib, sources: set[str], cache: Path | None = None) -> dict[str, dict[str, dict[int, str]]]:
    """Text source (``pdf``, ``pdfium``, ``library``) → document → page → text, for ``sources``."""
    out: dict[str, dict[str, dict[int, str]]] = {}
    if sources & {"library", "pdf"}:
        out["library"] = page_texts(lib)
    if sources & {"pdfium", "pdf"}:
        out["pdfium"] = pdfium_texts(lib, cache)
    if "pdf" in sources:
        docs = set(out["library"]) | set(out["pdfium"])
        out["pdf"] = {d: with_ocr(out["pdfium"].get(d, {}), out["library"].get(d, {})) for d in docs}
    return {k: v for k, v in out.items() if k in sources}


def pdfium_texts(lib, cache: Path | None = None) -> dict[str, dict[int, str]]:
    """Document name → pypdfium2 page texts for every PDF in the library, kept under ``cache``
    per (path, size, mtime) so a rerun reads only changed files."""
    f = cache / "pdfium-pages.json" if cache else None
    known: dict[str, Any] = {}
    if f is not None and f.is_file():
        try:
            known = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}
    out, changed = {}, False
    for src in lib.sources():
        path = Path(src.get("path") or "")
        if path.suffix.lower() != ".pdf" or not path.is_file():
            continue
        st = path.stat()
        stamp = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if known.get(src["name"], {}).get("stamp") != stamp:
            known[src["name"]] = {"stamp": stamp, "pages": {str(k): v for k, v in pdfium_pages(path).items()}}
            changed = True
        out[src["name"]] = {int(k): v for k, v in known[src["name"]]["pages"].items()}
    if f is not None and changed:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(known), encoding="utf-8")
    return out


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


def units(pages: dict[str, dict[int, str]], unit: str) -> Corpus:
    """Every page of every document as one unit, or as its 200-token chunks."""
    from .baselines import chunk_text

    c = Corpus()
    for doc in sorted(pages):
        for p, text in pages[doc].items():
            for t in ([text] if unit == "page" else [x.text for x in chunk_text(text, CHUNK_TOKENS)]):
                c.keys.append((doc, p))
                c.texts.append(t)
    return c


def build_corpora(texts: dict[str, dict[str, dict[int, str]]], embed, methods: Sequence[str] = FLAT_METHODS
                  ) -> dict[tuple[str, str], dict[str, Corpus]]:
    """(text, unit) → scope → Corpus, ``library`` and ``doc:<name>``, for the units ``methods``
    rank; ``texts``: text source → document → page → text. Vectors only where a method fuses."""
    need: dict[tuple[str, str], bool] = {}
    for m in methods:
        f = FLAT[m]
        need[(f.text, f.unit)] = need.get((f.text, f.unit), False) or f.dense
    out: dict[tuple[str, str], dict[str, Corpus]] = {}
    for (text, unit), dense in need.items():
        whole = units(texts[text], unit)
        whole.vecs = embed(whole.texts) if dense else None
        by_doc: dict[str, list[int]] = defaultdict(list)
        for i, k in enumerate(whole.keys):
            by_doc[k[0]].append(i)
        out[(text, unit)] = {"library": whole, **{f"doc:{d}": whole.subset(idx) for d, idx in by_doc.items()}}
    return out


class FlatRanker:
    """One flat ranking (default :data:`STRONGEST_FLAT`) of one document at a time, for flat RAG:
    a document's units (pages or chunks) are read and embedded on first use (vectors kept under
    ``cache`` when given, so retrieval and e2e runs with the same ``--out`` embed once)."""

    def __init__(self, lib, method: str | None = None, cache: Path | None = None):
        method = method or STRONGEST_FLAT
        if method not in FLAT:
            raise ValueError(f"unknown flat ranking {method!r} (have: {', '.join(FLAT)})")
        self.lib, self.method, self.flat = lib, method, FLAT[method]
        self.embed = _cached_embed(lib, cache) if cache is not None else (
            lambda texts: lib.embedder.encode(texts, max_length=256) if texts else np.zeros((0, 384), np.float32))
        self._docs: dict[str, Corpus] = {}
        self._library_text: dict[str, dict[int, str]] | None = None

    def _pages(self, doc: str) -> dict[int, str]:
        if self.flat.text in ("library", "pdf") and self._library_text is None:
            self._library_text = page_texts(self.lib)
        library = (self._library_text or {}).get(doc, {})
        if self.flat.text == "library":
            return library
        try:
            src = self.lib.find_source(doc)
        except (KeyError, ValueError):  # not indexed, or a name several files share: nothing to rank
            return {}
        pdfium = pdfium_pages(src["path"]) if src.get("path") else {}
        return with_ocr(pdfium, library) if self.flat.text == "pdf" else pdfium

    def prepare(self, doc: str) -> None:
        """Read and embed ``doc``'s units now (a user's index is built before the questions)."""
        self._corpus(doc)

    def _corpus(self, doc: str) -> Corpus:
        if doc not in self._docs:
            c = units({doc: self._pages(doc)}, self.flat.unit)
            if self.flat.dense:
                c.vecs = np.asarray(self.embed(c.texts), np.float32) if c.texts else np.zeros((0, 384), np.float32)
            self._docs[doc] = c
        return self._docs[doc]

    def rank(self, doc: str, question: str) -> list[tuple[int, str]]:
        """(page, text) of the document's units, best first (a page's chunks one by one)."""
        c = self._corpus(doc)
        if not c.texts:
            return []
        qv = self.lib.embedder.encode([question], max_length=256)[0] if self.flat.dense else None
        return [(c.keys[i][1], c.texts[i]) for i in c.order(question, qv, self.flat.words, self.flat.dense)]
