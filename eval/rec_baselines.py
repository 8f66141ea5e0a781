"""The window baselines of ``sleuth eval recordings``: a transcript cut into fixed 60 s windows,
ranked for a query by BM25 or by dense similarity — what one would build without sleuth.

- ``bm25``: ``bm25s`` (Lucene variant, k1=1.5, b=0.75) over words lower-cased, ASCII-folded,
  stripped of stop words (bm25s' English list and sleuth's own) and stemmed by PyStemmer's
  English Snowball stemmer (tantivy's, the same algorithm, where PyStemmer is missing).
- ``dense``: cosine similarity of sleuth's MiniLM vectors (:func:`sleuth.eval.baselines.default_embedder`,
  256 word pieces a window, more than sleuth's own segments get), the query by the exact path.

Ties keep time order, so a query with nothing to go on returns the windows from the start.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

import numpy as np

METHODS = ("bm25", "dense")


_WORD = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=1)
def _stop() -> frozenset[str]:
    from bm25s import stopwords as lists

    from ..index.lexical import STOPWORDS

    return frozenset(lists.STOPWORDS_EN) | STOPWORDS


@lru_cache(maxsize=1)
def _stemmer():
    """PyStemmer's English Snowball stemmer, else tantivy's (the same algorithm, one word at a time)."""
    try:
        import Stemmer

        return Stemmer.Stemmer("english").stemWords
    except ImportError:
        import tantivy

        an = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw()).filter(tantivy.Filter.stemmer("english")).build()
        return lambda words: [(an.analyze(w) or [w])[0] for w in words]


def bm25_tokens(text: str) -> list[str]:
    """The words the BM25 baseline indexes and searches for: lower-cased, ASCII-folded where the
    letters allow, stop words out, stemmed."""
    import unicodedata

    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode() if not text.isascii() else text.lower()
    return list(_stemmer()([w for w in _WORD.findall(folded) if w not in _stop() and len(w) <= 40]))


class WindowRanker:
    """One transcript's windows, indexed once for BM25 and embedded once, ranked per query."""

    def __init__(self, texts: Sequence[str], embedder=None):
        self.texts = list(texts)
        self._embedder = embedder
        self._bm25 = None
        self._vecs: np.ndarray | None = None

    def scores(self, query: str, method: str) -> np.ndarray:
        if method == "bm25":
            return self._bm25_scores(query)
        if method == "dense":
            return self._dense_scores(query)
        raise ValueError(f"unknown window baseline {method!r} (have: {', '.join(METHODS)})")

    def rank(self, query: str, method: str) -> list[int]:
        """Window indices, best first (stable: equal scores keep time order)."""
        s = self.scores(query, method)
        return [int(i) for i in np.argsort(-np.asarray(s, dtype=np.float64), kind="stable")]

    def _bm25_scores(self, query: str) -> np.ndarray:
        import bm25s

        q = bm25_tokens(query)
        if self._bm25 is None:
            docs = [bm25_tokens(t) for t in self.texts]
            self._bm25 = False if not any(docs) else bm25s.BM25()
            if self._bm25 is not False:
                self._bm25.index(docs, show_progress=False)
        if not q or self._bm25 is False:
            return np.zeros(len(self.texts), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(q), dtype=np.float32)

    def _dense_scores(self, query: str) -> np.ndarray:
        if not self.texts or not query.strip():
            return np.zeros(len(self.texts), dtype=np.float32)
        emb = self._embedder
        if emb is None:
            from .baselines import default_embedder

            emb = self._embedder = default_embedder()
        if self._vecs is None:
            self._vecs = emb.encode(self.texts)
        qv = getattr(emb, "encode_query", emb.encode)([query])[0]
        return (self._vecs @ qv).astype(np.float32)
