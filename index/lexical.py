"""BM25 over SQLite FTS5 (porter + unicode61); Chinese text is segmented with jieba first.

One FTS table per tier (fine, coarse, source, entity). A tier filter on a shared table costs a
content-row lookup for every matched row before ranking: at 100K paragraphs that was two thirds
of a search's lexical time (benchmarks/bench_ingest.py), and each tier's own table also gives
BM25 the document frequencies of its own kind of text.

With SQLite as the main database the FTS tables live in it and are written in the same
transaction as the nodes, so a killed run leaves no half-indexed file. With another database
(PostgreSQL) they live in a sidecar SQLite file that is reconciled against the nodes on open.
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

TIERS = ("fine", "coarse", "source", "entity")
TOKENIZE = "porter unicode61 remove_diacritics 2"


def table(tier: str) -> str:
    if tier not in TIERS:
        raise ValueError(f"unknown lexical tier {tier!r}")
    return f"fts_{tier}"


def ddl(tier: str) -> list[str]:
    t = table(tier)
    return [f"CREATE VIRTUAL TABLE IF NOT EXISTS {t} USING fts5(title, body, tokenize='{TOKENIZE}')",
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {t}_v USING fts5vocab({t}, 'row')"]


LEGACY = "nodes_fts"  # the single shared table of libraries made before per-tier tables

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
        self._rows: dict[str, tuple] = {}  # tier -> (stamp, row count)
        self._df: dict[str, tuple] = {}  # tier -> (stamp, {stem: rows holding it})
        with engine.begin() as c:
            for t in TIERS:
                for stmt in ddl(t):
                    c.execute(sql(stmt))
            c.execute(sql("CREATE TABLE IF NOT EXISTS lexical_state (key TEXT PRIMARY KEY, value INTEGER)"))
            if c.execute(sql(f"SELECT 1 FROM sqlite_master WHERE name = '{LEGACY}'")).first() is not None:
                self._migrate(c)

    @staticmethod
    def _migrate(conn) -> None:
        """Split a library's shared FTS table into the per-tier tables (its text is already
        segmented, so rows are copied as they are), in one transaction."""
        for t in TIERS:
            conn.execute(sql(f"INSERT INTO {table(t)}(rowid, title, body) SELECT rowid, title, body FROM {LEGACY} "
                             "WHERE tier = :t"), {"t": t})
        conn.execute(sql(f"DROP TABLE IF EXISTS {LEGACY}_v"))
        conn.execute(sql(f"DROP TABLE {LEGACY}"))

    @staticmethod
    def add(conn, rows: list[tuple[int, str, str, str]]) -> None:
        """rows: (node_id, title, body, tier) inside the caller's transaction."""
        for t in TIERS:
            part = [{"i": i, "t": segment(ti), "b": segment(b)} for i, ti, b, r in rows if r == t]
            if part:
                conn.execute(sql(f"INSERT INTO {table(t)}(rowid, title, body) VALUES (:i, :t, :b)"), part)

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
        # Entities have negative ids and nodes positive ones, so a range names one kind.
        for t in (("entity",) if hi < 0 else TIERS[:3] if lo > 0 else TIERS):
            conn.execute(sql(f"DELETE FROM {table(t)} WHERE rowid BETWEEN :lo AND :hi"), {"lo": lo, "hi": hi})

    def search(self, query: str, tiers: tuple[str, ...], k: int, id_range: tuple[int, int] | None = None):
        """[(node_id, bm25)] best first; bm25 is positive, larger is better. With several tiers
        each is ranked in its own table and the lists are merged by score."""
        terms = query_terms(query)
        if not terms:
            return []
        if len(tiers) == 1:
            return self._search_tier(terms, tiers[0], k, id_range)
        merged = [h for t in tiers for h in self._search_tier(terms, t, k, id_range)]
        return sorted(merged, key=lambda h: -h[1])[:k]

    def _search_tier(self, terms: list[str], tier: str, k: int, id_range):
        kept, all_common = self.selective_terms(terms, tier)
        if all_common:
            # Every word is common: rows holding all of them are few and rank first anyway.
            hits = self._run(" AND ".join(match_expr([t]) for t in terms), tier, k, id_range)
        else:
            hits = self._run(match_expr(kept), tier, k, id_range)
        if len(kept) < len(terms) and len(hits) < min(k, 5):
            more = self._run(match_expr(terms), tier, k, id_range)  # pruned too much: full query
            seen = {i for i, _ in hits}
            hits = hits + [h for h in more if h[0] not in seen]
        return hits[:k]

    def selective_terms(self, terms: list[str], tier: str = "fine") -> tuple[list[str], bool]:
        """(the query words worth scoring in a tier, whether every word was common). All words
        in small tables (see PRUNE_SHARE); when every word is common, the three rarest."""
        n, stamp = self.row_count(tier)
        if n < PRUNE_FROM_ROWS:
            return terms, False
        df = self.doc_freqs(tier, [_stem(t) for t in terms], stamp)
        cap = max(PRUNE_MIN_DF, int(PRUNE_SHARE * n))
        kept = [t for t in terms if df[_stem(t)] <= cap]
        if kept:
            return kept, False
        return sorted(terms, key=lambda t: df[_stem(t)])[:3], True

    def doc_freqs(self, tier: str, stems: list[str], stamp) -> dict[str, int]:
        """Rows holding each stem. fts5vocab counts them by walking the word's whole posting
        list (~1 ms for a common word at 100K rows), so counts are cached until the table
        changes; common words, the costly ones, recur across queries."""
        cached_stamp, cache = self._df.get(tier, (None, {}))
        if cached_stamp != stamp:
            cache = {}
            self._df[tier] = (stamp, cache)
        todo = [s for s in dict.fromkeys(stems) if s not in cache]
        if todo:
            with self.engine.connect() as c:
                q = sql(f"SELECT term, doc FROM {table(tier)}_v WHERE term IN ("
                        + ",".join(f":s{i}" for i in range(len(todo))) + ")")
                got = dict(c.execute(q, {f"s{i}": v for i, v in enumerate(todo)}).all())
            if len(cache) > 50_000:
                cache.clear()
            cache.update({s: int(got.get(s, 0)) for s in todo})
        return {s: cache[s] for s in stems}

    def row_count(self, tier: str = "fine") -> tuple[int, tuple[int, int]]:
        """(rows in a tier's table, a stamp that moves when rows are added). Both only steer
        pruning, so a removal alone is picked up at the next addition (new rows get new ids)."""
        t = table(tier)
        with self.engine.connect() as c:
            # FTS5 answers ORDER BY rowid LIMIT 1 from its index but scans for max()/min().
            stamp = tuple(c.execute(sql(f"SELECT rowid FROM {t} ORDER BY rowid {d} LIMIT 1")).scalar() or 0
                          for d in ("DESC", "ASC"))
            if tier not in self._rows or self._rows[tier][0] != stamp:
                self._rows[tier] = (stamp, int(c.execute(sql(f"SELECT count(*) FROM {t}")).scalar() or 0))
        return self._rows[tier][1], stamp

    def search_phrases(self, phrases: list[str], tiers: tuple[str, ...], k: int,
                       id_range: tuple[int, int] | None = None):
        """Nodes containing every phrase verbatim (as FTS phrases), best BM25 first."""
        parts = []
        for p in phrases:
            toks = _WORD_RE.findall(segment(p).lower())
            if toks:
                parts.append('"' + " ".join(toks) + '"')
        if not parts:
            return []
        hits = [h for t in tiers for h in self._run(" AND ".join(parts), t, k, id_range)]
        return sorted(hits, key=lambda h: -h[1])[:k] if len(tiers) > 1 else hits

    def _run(self, match: str, tier: str, k: int, id_range: tuple[int, int] | None):
        t = table(tier)
        where = [f"{t} MATCH :q"]
        params = {"q": match, "k": k}
        if id_range:
            where.append("rowid BETWEEN :lo AND :hi")
            params.update(lo=id_range[0], hi=id_range[1])
        # The score is computed once in the subquery; naming bm25() in both the select list and
        # ORDER BY evaluates it twice per matched row.
        q = (f"SELECT rowid, s FROM (SELECT rowid, -bm25({t}, 2.0, 1.0) AS s FROM {t} "
             f"WHERE {' AND '.join(where)}) ORDER BY s DESC LIMIT :k")
        with self.engine.connect() as c:
            return [(int(r[0]), float(r[1])) for r in c.execute(sql(q), params)]

    def ids(self) -> set[int]:
        with self.engine.connect() as c:
            return {int(r[0]) for t in TIERS for r in c.execute(sql(f"SELECT rowid FROM {table(t)}"))}
