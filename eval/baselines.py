"""Retrieval-only baselines: what a method would put in front of a reader under a token budget.

Every method cuts the context into the same fixed-size chunks (``chunk_tokens`` tokens of
:mod:`sleuth.eval.tokens`, in document order), orders them, and fills the budget in that order;
the last chunk taken is cut at the budget, so a reading never exceeds it.

- ``bm25``: chunks ranked by BM25 (the ``bm25s`` package, Lucene variant, k1=1.5, b=0.75)
  against the query; English is lower-cased ``\\w+`` words minus bm25s' English stopwords,
  Chinese is jieba (search mode) words minus punctuation and bm25s' Chinese stopwords.
- ``dense``: chunks ranked by cosine similarity of sleuth's MiniLM embeddings (``index/embed.py``)
  to the query. MiniLM-L6 was trained on English; on Chinese it is a weak baseline.
- ``head``: chunks in document order — the context truncated to the budget.

Ties (a query with no word in common with a chunk, an empty query) keep document order, so a
ranker with nothing to go on degrades to ``head`` instead of to an arbitrary order.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .tokens import count_tokens, token_spans, truncate_to_tokens

METHODS = ("bm25", "dense", "head")
DEFAULT_CHUNK_TOKENS = 200


@dataclass
class Piece:
    """One unit a method read, in the order it read it.

    ``start``/``end`` are character offsets into the item's context when known (baselines
    always; the agent when its text can be located); ``t_start``/``t_end`` are seconds for
    video evidence.
    """

    text: str
    start: int | None = None
    end: int | None = None
    score: float | None = None
    t_start: float | None = None
    t_end: float | None = None
    node_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def chunk_text(text: str, chunk_tokens: int = DEFAULT_CHUNK_TOKENS) -> list[Piece]:
    """Consecutive chunks of ``chunk_tokens`` tokens covering ``text`` (offsets kept)."""
    if chunk_tokens <= 0:
        raise ValueError("chunk_tokens must be positive")
    spans = token_spans(text)
    out = []
    for i in range(0, len(spans), chunk_tokens):
        group = spans[i : i + chunk_tokens]
        s, e = group[0][0], group[-1][1]
        out.append(Piece(text=text[s:e], start=s, end=e))
    return out


# ---------------------------------------------------------------- lexical


_ZH_PUNCT_RE = re.compile(r"^[\W_]+$", re.UNICODE)
_EN_WORD_RE = re.compile(r"\w+", re.UNICODE)


def stopwords(language: str) -> frozenset[str]:
    """bm25s's stop words for ``zh`` or English (flat BM25 and the evidence checks share them)."""
    from bm25s import stopwords as lists

    return frozenset(lists.STOPWORDS_CHINESE if language == "zh" else lists.STOPWORDS_EN)


def lexical_tokens(text: str, language: str) -> list[str]:
    """Words BM25 indexes: jieba search-mode words for Chinese, ``\\w+`` lower-cased otherwise."""
    stop = stopwords(language)
    if language == "zh":
        import jieba

        jieba.setLogLevel(60)
        words = (w.strip().lower() for w in jieba.cut_for_search(text))
        return [w for w in words if w and not _ZH_PUNCT_RE.match(w) and w not in stop]
    return [w for w in (m.group().lower() for m in _EN_WORD_RE.finditer(text)) if w not in stop]


_stemmer = None


def english_stemmer():
    """PyStemmer's English (Snowball) stemmer, made once."""
    global _stemmer
    if _stemmer is None:
        import Stemmer

        _stemmer = Stemmer.Stemmer("english")
    return _stemmer


def stemmed_tokens(texts: Sequence[str]) -> list[list[str]]:
    """English words as a user's bm25s indexes them: ``bm25s.tokenize`` with its defaults
    (lower-cased words of two or more characters) minus bm25s' English stopwords, then stemmed
    by PyStemmer's English stemmer, so "indexed", "indexing" and "indexes" are one word."""
    import bm25s

    out = bm25s.tokenize(list(texts), stopwords="en", stemmer=english_stemmer(), return_ids=False,
                         show_progress=False)
    return [[w for w in ws if w] for ws in out]


def bm25_scores(chunks: Sequence[str], query: str, language: str) -> np.ndarray:
    """BM25 score of each chunk for the query (zeros when the query has no indexable word)."""
    import bm25s

    q = lexical_tokens(query, language)
    docs = [lexical_tokens(c, language) for c in chunks]
    if not q or not any(docs):
        return np.zeros(len(chunks), dtype=np.float32)
    retriever = bm25s.BM25()
    retriever.index(docs, show_progress=False)
    return np.asarray(retriever.get_scores(q), dtype=np.float32)


# ---------------------------------------------------------------- dense

_embedder = None


def default_embedder():
    """sleuth's MiniLM embedder with room for a whole chunk (256 word pieces)."""
    global _embedder
    if _embedder is None:
        from sleuth.index.embed import Embedder

        _embedder = Embedder(max_length=256)
    return _embedder


def dense_scores(chunks: Sequence[str], query: str, embedder=None) -> np.ndarray:
    """Cosine similarity of each chunk's embedding to the query's (vectors are L2-normalised)."""
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    if not query.strip():
        return np.zeros(len(chunks), dtype=np.float32)
    emb = embedder or default_embedder()
    vecs = emb.encode(list(chunks) + [query])
    return (vecs[:-1] @ vecs[-1]).astype(np.float32)


# ---------------------------------------------------------------- ranking and budgets


def rank_chunks(
    context: str,
    query: str,
    method: str,
    language: str = "en",
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    embedder=None,
    scorer: Callable[[Sequence[str], str], np.ndarray] | None = None,
) -> list[Piece]:
    """All chunks of ``context`` in the order ``method`` would read them."""
    chunks = chunk_text(context, chunk_tokens)
    if method == "head":
        return chunks
    texts = [c.text for c in chunks]
    if scorer is not None:
        scores = scorer(texts, query)
    elif method == "bm25":
        scores = bm25_scores(texts, query, language)
    elif method == "dense":
        scores = dense_scores(texts, query, embedder)
    else:
        raise ValueError(f"unknown baseline method {method!r} (have: {', '.join(METHODS)})")
    # Stable sort on -score: equal scores keep document order.
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    out = []
    for i in order:
        c = chunks[int(i)]
        c.score = float(scores[int(i)])
        out.append(c)
    return out


def take_budget(pieces: Sequence[Piece], budget: int) -> list[Piece]:
    """The pieces read in order until ``budget`` tokens are spent; the last one is cut to fit."""
    out: list[Piece] = []
    left = budget
    for p in pieces:
        if left <= 0:
            break
        n = count_tokens(p.text)
        if n == 0:
            continue
        if n <= left:
            out.append(p)
            left -= n
        else:
            cut = truncate_to_tokens(p.text, left)
            end = None if p.start is None else p.start + len(cut)
            out.append(Piece(cut, p.start, end, p.score, p.t_start, p.t_end, p.node_id))
            left = 0
    return out


def render(pieces: Sequence[Piece]) -> str:
    """The reader's context: pieces in document order where positions are known (as LongBench
    v2's RAG prompt sorts retrieved chunks), read order otherwise, separated by blank lines."""
    if pieces and all(p.start is not None for p in pieces):
        pieces = sorted(pieces, key=lambda p: p.start)  # type: ignore[arg-type, return-value]
    return "\n\n".join(p.text for p in pieces)


def baseline_context(
    context: str,
    query: str,
    method: str,
    budget: int,
    language: str = "en",
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    embedder=None,
) -> str:
    """The text ``method`` would put in front of a reader for ``query`` within ``budget`` tokens."""
    return render(take_budget(rank_chunks(context, query, method, language, chunk_tokens, embedder), budget))
