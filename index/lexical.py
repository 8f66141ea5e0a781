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
VOCAB_DDL = "CREATE VIRTUAL TABLE IF NOT EXISTS nodes_fts_v USING fts5vocab(nodes_fts, 'row')"

# FTS5 scores every row an OR query matches, so a query word found in a large share of a big
# library makes BM25 cost grow with the library. Words in more than this share of rows (and
# more than PRUNE_MIN_DF rows) are left out of the OR: their IDF is small, so they barely move
# the ranking. Libraries under PRUNE_FROM_ROWS rows are never pruned.
PRUNE_SHARE, PRUNE_MIN_DF, PRUNE_FROM_ROWS = 0.03, 1000, 20_000


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("porter")  # the algorithm of FTS5's porter tokenizer


@lru_cache(maxsize=4096)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word.lower())


def _has_nodes(conn) -> bool:
    return conn.execute(sql("SELECT 1 FROM sqlite_master WHERE name = 'nodes'")).first() is not None


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
        self._rows: tuple[int, int] | None = None  # (cache stamp, row count)
        with engine.begin() as c:
            c.execute(sql(DDL))
            c.execute(sql(VOCAB_DDL))
            c.execute(sql("CREATE TABLE IF NOT EXISTS lexical_state (key TEXT PRIMARY KEY, value INTEGER)"))

    @staticmethod
    def add(conn, rows: list[tuple[int, str, str, str]]) -> None:
        """rows: (node_id, title, body, tier) inside the caller's transaction."""
        if rows:
            conn.execute(
                sql("INSERT INTO nodes_fts(rowid, title, body, tier) VALUES (:i, :t, :b, :r)"),
                [{"i": i, "t": segment(t), "b": segment(b), "r": r} for i, t, b, r in rows],
            )

    @staticmethod
    def set_generation(conn, gen: int) -> None:
        """Sidecar only: the database generation this index reflects (see Library.sync_sidecar_fts)."""
        conn.execute(sql("INSERT OR REPLACE INTO lexical_state(key, value) VALUES ('generation', :g)"), {"g": gen})

    def generation(self) -> int:
        with self.engine.connect() as c:
            v = c.execute(sql("SELECT value FROM lexical_state WHERE key = 'generation'")).scalar()
        return -1 if v is None else int(v)

    @staticmethod
    def delete_range(conn, lo: int, hi: int) -> None:
        conn.execute(sql("DELETE FROM nodes_fts WHERE rowid BETWEEN :lo AND :hi"), {"lo": lo, "hi": hi})

    def search(self, query: str, tiers: tuple[str, ...], k: int, id_range: tuple[int, int] | None = None):
        """[(node_id, bm25)] best first; bm25 is positive, larger is better."""
        terms = query_terms(query)
        if not terms:
            return []
        kept = self.selective_terms(terms)
        if kept is None:
            # Every word is common: rows holding all of them are few and rank first anyway.
            hits = self._run(" AND ".join(match_expr([t]) for t in terms), tiers, k, id_range)
            kept = self._rarest
        else:
            hits = self._run(match_expr(kept), tiers, k, id_range)
        if len(kept) < len(terms) and len(hits) < min(k, 5):
            hits = self._run(match_expr(kept), tiers, k, id_range) if hits is None else hits
            more = self._run(match_expr(terms), tiers, k, id_range)  # pruned too much: full query
            seen = {i for i, _ in hits}
            hits = hits + [h for h in more if h[0] not in seen]
        return hits[:k]

    def selective_terms(self, terms: list[str]) -> list[str] | None:
        """The query words worth scoring (see PRUNE_SHARE); all of them in small libraries;
        None when every word is common (then ``_rarest`` holds the three rarest)."""
        n = self.row_count()
        if n < PRUNE_FROM_ROWS:
            return terms
        stems = {t: _stem(t) for t in terms}
        with self.engine.connect() as c:
            q = sql("SELECT term, doc FROM nodes_fts_v WHERE term IN (" + ",".join(f":s{i}" for i in range(len(stems))) + ")")
            df = dict(c.execute(q, {f"s{i}": v for i, v in enumerate(stems.values())}).all())
        cap = max(PRUNE_MIN_DF, int(PRUNE_SHARE * n))
        kept = [t for t in terms if df.get(stems[t], 0) <= cap]
        if kept:
            return kept
        self._rarest = sorted(terms, key=lambda t: df.get(stems[t], 0))[:3]
        return None

    def row_count(self) -> int:
        """Rows indexed (approximate is fine: it only sets the pruning threshold); recounted
        when the newest rowid moves."""
        with self.engine.connect() as c:
            stamp = c.execute(sql("SELECT rowid FROM nodes_fts ORDER BY rowid DESC LIMIT 1")).scalar() or 0
            if self._rows is None or self._rows[0] != stamp:
                table = "nodes" if _has_nodes(c) else "nodes_fts"
                self._rows = (stamp, int(c.execute(sql(f"SELECT count(*) FROM {table}")).scalar() or 0))
        return self._rows[1]

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
