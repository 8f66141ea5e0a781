"""BM25 over SQLite FTS5 (porter + unicode61); Chinese text is segmented with jieba first.

With SQLite as the main database the FTS table lives in it and is written in the same
transaction as the nodes, so a killed run leaves no half-indexed file. With another database
(PostgreSQL) it lives in a sidecar SQLite file that is reconciled against the nodes on open.
"""

from __future__ import annotations

import re
from functools import lru_cache

from sqlalchemy import text as sql

from ..readers.textsplit import CJK_RE

STOPWORDS = frozenset(
    """a an and are as at be but by did do does for from had has have how i if in into is it its
    of on or over so such than that the their them then there these they this to under up was
    were what when where which while who whom whose why will with within would you your about
    after again all also am any because been before being between both can could each few
    more most no nor not now only other our out own same should some still through too very
    says said tell me give list name find show much many""".split()
)

_WORD_RE = re.compile(r"[\w\u3400-\u9fff]+", re.UNICODE)

DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS nodes_fts USING fts5("
    "title, body, tier UNINDEXED, tokenize='porter unicode61 remove_diacritics 2')"
)


@lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def segment(text: str) -> str:
    """Text as FTS5 should see it: CJK runs cut into words with spaces between."""
    if not CJK_RE.search(text):
        return text
    return " ".join(_jieba().cut(text))


# Chinese function words that jieba emits as words; they carry no topic.
ZH_STOPWORDS = frozenset("的 了 是 在 和 与 及 或 也 都 就 而 但 并 被 把 对 从 向 为 以 于 这 那 其 之 个 中 上 下 等 着 将 已 又 还 很 更 最 有 没有 一个 我们 他们 可以 进行 通过 由于 因为 所以 如果 没有".split())


def query_terms(query: str, max_terms: int = 64) -> list[str]:
    terms, seen = [], set()
    for w in _WORD_RE.findall(segment(query).lower()):
        if w in STOPWORDS or w in ZH_STOPWORDS or w in seen or (len(w) < 2 and not CJK_RE.match(w)):
            continue
        seen.add(w)
        terms.append(w)
    return terms[:max_terms]


_IDENT_RE = re.compile(r"\b(?=[\w\-./]*\d)[A-Za-z0-9][\w\-./]*[A-Za-z0-9]\b|\b[A-Z]{2,}[A-Za-z]*\b")


def identifiers(query: str) -> list[str]:
    """Code-like tokens (MB-1074, 3.2, ISO-9001, WHO): words a user means literally."""
    out = []
    for m in _IDENT_RE.finditer(query):
        tok = m.group().strip("./-")
        if len(tok) >= 2 and tok.lower() not in STOPWORDS and tok not in out:
            out.append(tok)
    return out


def match_expr(terms: list[str]) -> str:
    return " OR ".join('"' + t.replace('"', "") + '"' for t in terms)


class Lexical:
    def __init__(self, engine):
        self.engine = engine
        with engine.begin() as c:
            c.execute(sql(DDL))

    @staticmethod
    def add(conn, rows: list[tuple[int, str, str, str]]) -> None:
        """rows: (node_id, title, body, tier) inside the caller's transaction."""
        if rows:
            conn.execute(
                sql("INSERT INTO nodes_fts(rowid, title, body, tier) VALUES (:i, :t, :b, :r)"),
                [{"i": i, "t": segment(t), "b": segment(b), "r": r} for i, t, b, r in rows],
            )

    @staticmethod
    def delete_range(conn, lo: int, hi: int) -> None:
        conn.execute(sql("DELETE FROM nodes_fts WHERE rowid BETWEEN :lo AND :hi"), {"lo": lo, "hi": hi})

    def search(self, query: str, tiers: tuple[str, ...], k: int, id_range: tuple[int, int] | None = None):
        """[(node_id, bm25)] best first; bm25 is positive, larger is better."""
        terms = query_terms(query)
        return self._run(match_expr(terms), tiers, k, id_range) if terms else []

    def search_phrases(self, phrases: list[str], tiers: tuple[str, ...], k: int,
                       id_range: tuple[int, int] | None = None):
        """Nodes containing every phrase verbatim (as FTS phrases), best BM25 first."""
        parts = []
        for p in phrases:
            toks = _WORD_RE.findall(segment(p).lower())
            if toks:
                parts.append('"' + " ".join(toks) + '"')
        return self._run(" AND ".join(parts), tiers, k, id_range) if parts else []

    def _run(self, match: str, tiers: tuple[str, ...], k: int, id_range: tuple[int, int] | None):
        where = ["nodes_fts MATCH :q"]
        params = {"q": match, "k": k}
        if tiers:
            where.append("tier IN (" + ",".join(f":t{i}" for i in range(len(tiers))) + ")")
            params.update({f"t{i}": t for i, t in enumerate(tiers)})
        if id_range:
            where.append("rowid BETWEEN :lo AND :hi")
            params.update(lo=id_range[0], hi=id_range[1])
        q = (f"SELECT rowid, -bm25(nodes_fts, 2.0, 1.0) FROM nodes_fts WHERE {' AND '.join(where)} "
             "ORDER BY bm25(nodes_fts, 2.0, 1.0) LIMIT :k")
        with self.engine.connect() as c:
            return [(int(r[0]), float(r[1])) for r in c.execute(sql(q), params)]

    def ids(self) -> set[int]:
        with self.engine.connect() as c:
            return {int(r[0]) for r in c.execute(sql("SELECT rowid FROM nodes_fts"))}
