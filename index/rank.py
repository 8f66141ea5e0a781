"""Structure-aware ranking of search candidates: evidence added up by page and by section,
sources named in the question or matching it as whole documents preferred, and contentless nodes
kept out of those sums.

Search first gathers candidate paragraphs (BM25 and dense pools, fused by reciprocal rank in
:mod:`sleuth.index.search`). Scoring each paragraph alone misses answers spread over a table
and its heading, or over several short blocks of one page; so here every candidate also gets the
score of its page and of its section, each a reciprocal-rank fusion of two views of the
candidates it holds: summed BM25 (several partial matches add up, as in a page-level BM25) and
best cosine. Everything works on numpy arrays over the candidates, with node facts (page,
section, source, contentless flag) from :class:`NodeTable`, loaded once per library generation:
no SQL per hit.

``aggregate_reference`` is the plain-Python statement of the same scoring, which a test holds
the numpy path to.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from itertools import chain
from dataclasses import dataclass

import numpy as np
from sqlalchemy import case, func, select

from .schema import EntityRow, MentionRow, NodeRow, SourceRow

RRF_K = 60
#: weights of the page and section scores added to a candidate's own fused score. Off: tuned on
#: half A of the MMLongBench-Doc dev documents (page 1.0, section 0.5), they cost recall within a
#: document on the held-out half B with two libraries (3.6 and 2.9 points), so of the source,
#: page and section terms only the source's are on (ROUTE_W, DOC_W); see docs/locate.md
PAGE_W = 0.0
SECTION_W = 0.0
ROUTE_W = 1.0
#: weight of a source's rank among whole documents by BM25 over all their text (whole-library
#: searches): the n-th best adds DOC_W / n. Several partial matches spread over a document are
#: what tells it from the others, which no single paragraph shows; see docs/locate.md
DOC_W = 1.0
DOC_POOL = 10
#: weight of the fused score of a matched section on the paragraphs it holds (coarse-to-fine);
#: 0 skips the section searches of a level="fine" query
COARSE_W = 0.0
#: a contentless node (lone number, running header/footer, reference entry) keeps this share of
#: its own score. Damping it (0.25) lost recall on half A of the dev documents (OCR'd slides: short
#: text is the content there), so it only stays out of its page's and section's sums.
CONTENTLESS = 1.0

_ALPHA_WORD = re.compile(r"[^\W\d_]{3,}")
_REF_TITLE = re.compile(r"^\s*(?:\d+(?:\.\d+)*\.?\s*)?(references|bibliography|works cited|literature cited|citations)\s*$", re.I)
_NAME_TOKEN = re.compile(r"[^\W\d_]{3,}")


def is_contentless(text: str) -> bool:
    """A node with fewer than two words of three letters or more: a lone number or date ("2021."),
    a page number, a stray label."""
    return len(_ALPHA_WORD.findall(text or "")[:2]) < 2


def repeat_key(text: str) -> str:
    """Running headers and footers repeat with only the page number changing."""
    return " ".join(re.sub(r"\d+", "#", (text or "").lower()).split())


@dataclass
class NodeTable:
    """Per node id (dense arrays, index = node id): page (-1 none), source id, section id (the
    nearest coarse ancestor), last descendant id, a contentless flag and a fine-tier flag."""

    generation: int
    page: np.ndarray
    source: np.ndarray
    section: np.ndarray
    last: np.ndarray
    contentless: np.ndarray
    #: source id → {name token: weight}: file name, title and frequent entity names
    source_names: dict[int, set[str]]
    name_df: dict[str, int]
    #: True for paragraph-level (fine tier) nodes; None: every node is
    fine: np.ndarray | None = None

    def sources_named(self, word: str) -> list[int]:
        inv = self.__dict__.get("_inverted")
        if inv is None:
            inv = defaultdict(list)
            for sid, toks in self.source_names.items():
                for t in toks:
                    inv[t].append(sid)
            self.__dict__["_inverted"] = inv
        return inv.get(word, [])

    @classmethod
    def load(cls, lib, generation: int) -> "NodeTable":
        tier_code = case((NodeRow.tier == "fine", 0), (NodeRow.tier == "coarse", 1), else_=2)
        with lib.Session() as s:
            rows = s.execute(select(NodeRow.id, func.coalesce(NodeRow.page, -1), NodeRow.source_id,
                                    func.coalesce(NodeRow.parent_id, -1), NodeRow.last_id, tier_code)).all()
            sections = s.execute(select(NodeRow.id, NodeRow.last_id, NodeRow.title).where(NodeRow.tier == "coarse")).all()
            short = s.execute(select(NodeRow.id, NodeRow.source_id, NodeRow.page, NodeRow.text)
                              .where(NodeRow.tier == "fine", NodeRow.tokens <= 24)).all()
            srcs = s.execute(select(SourceRow.id, SourceRow.name, SourceRow.title)).all()
            ents = s.execute(select(MentionRow.source_id, EntityRow.name, func.count())
                             .join(EntityRow, EntityRow.id == MentionRow.entity_id)
                             .group_by(MentionRow.source_id, EntityRow.id)).all()
        arr = np.fromiter(chain.from_iterable(rows), np.int64, 6 * len(rows)).reshape(-1, 6)  # Rows as tuples: fast
        n = int(arr[:, 0].max()) + 1 if len(arr) else 1
        page = np.full(n, -1, np.int32)
        source = np.zeros(n, np.int32)
        parent = np.full(n, -1, np.int64)
        last = np.zeros(n, np.int64)
        tier = np.full(n, 2, np.int8)
        ids = arr[:, 0]
        page[ids], source[ids], parent[ids], last[ids], tier[ids] = arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5]
        contentless = np.zeros(n, bool)
        # everything under a "References" / "Bibliography" section
        for sid, lst, title in sections:
            if title and _REF_TITLE.match(title) and sid < n:
                contentless[sid + 1 : min(lst, n - 1) + 1] |= tier[sid + 1 : min(lst, n - 1) + 1] == 0
        # the section of a node: its nearest coarse ancestor (paragraphs sit a level or two down)
        section = parent.copy()
        for _ in range(4):
            up = (section >= 0) & (tier[np.clip(section, 0, n - 1)] == 0)
            if not up.any():
                break
            section[up] = parent[section[up]]
        # the queries are separate reads: a file committed between them may add nodes past n
        short = [(nid, sid, pg, text, repeat_key(text)) for nid, sid, pg, text in short if nid < n]
        repeats: dict[tuple[int, str], set[int]] = defaultdict(set)
        for nid, sid, pg, text, key in short:
            if is_contentless(text):
                contentless[nid] = True
            repeats[(sid, key)].add(pg if pg is not None else -1)
        for nid, sid, _pg, _text, key in short:
            if len(repeats[(sid, key)]) >= 3:
                contentless[nid] = True
        names: dict[int, set[str]] = defaultdict(set)
        for sid, name, title in srcs:
            names[sid] |= name_tokens(re.sub(r"\.\w{1,5}$", "", name or "")) | name_tokens(title or "")
        per_src: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for sid, ename, cnt in ents:
            per_src[sid].append((cnt, ename))
        for sid, lst in per_src.items():
            for _cnt, ename in sorted(lst, reverse=True)[:ENTITY_NAMES]:
                names[sid] |= name_tokens(ename)
        df: dict[str, int] = defaultdict(int)
        for toks in names.values():
            for t in toks:
                df[t] += 1
        return cls(generation, page, source, section, last, contentless, dict(names), dict(df), fine=tier == 0)


#: group keys from here up stand for a single node (no page / no section)
OWN_GROUP = 1 << 50

#: entity names per source that route questions to it (its most mentioned ones)
ENTITY_NAMES = 12


def name_tokens(text: str) -> set[str]:
    from .lexical import STOPWORDS

    return {w for w in (m.group().lower() for m in _NAME_TOKEN.finditer(re.sub(r"[_\-]", " ", text or "")))
            if w not in STOPWORDS}


_QUESTION_WORDS = frozenset("what which who whom whose when where why how is are was were do does did can could "
                            "should would will according in on for of the a an list name give tell".split())


def question_names(query: str) -> set[str]:
    """Lower-cased words the question writes with a capital (names, not its first word when that
    is a question word): what may name a source."""
    out = set()
    for i, m in enumerate(re.finditer(r"[^\W\d_][\w'’&.-]*", query)):
        w = m.group().rstrip(".'’").removesuffix("'s").removesuffix("’s")
        if not w[:1].isupper() or (i == 0 and w.lower() in _QUESTION_WORDS):
            continue
        out |= name_tokens(w)
    return out


def route_scores(table: NodeTable, query: str) -> dict[int, float]:
    """source id → weight in [0, 1] for the sources the question names (file name, title or a
    frequent entity), by the inverse document frequency of the matched words among sources."""
    words = question_names(query)
    if not words or not table.source_names:
        return {}
    n = len(table.source_names)
    raw: dict[int, float] = defaultdict(float)
    for w in words:  # through the inverted list: the cost follows the matches, not the library
        for sid in table.sources_named(w):
            raw[sid] += float(np.log((n + 1) / (table.name_df.get(w, 0) + 0.5)))
    if not raw or len(raw) == n:
        return {}
    top = max(raw.values())
    return {sid: v / top for sid, v in raw.items() if top > 0}


def doc_scores(table: NodeTable, doc_hits: list[tuple[int, float]]) -> dict[int, float]:
    """source id → 1 / rank of the source among documents ranked by BM25 over their whole text
    (``doc_hits``: (root node id, score) best first, from the lexical "doc" rows)."""
    out: dict[int, float] = {}
    for root, _ in doc_hits:
        if 0 <= root < len(table.source):
            sid = int(table.source[root])
            if sid not in out:
                out[sid] = 1.0 / (len(out) + 1)
    return out


def source_prior(names: dict[int, float], docs: dict[int, float]) -> dict[int, float]:
    """source id → the weight :func:`aggregate` adds (over RRF_K) to each of its candidates:
    routing by the names the question writes, and the source's rank as a whole document."""
    return {sid: ROUTE_W * names.get(sid, 0.0) + DOC_W * docs.get(sid, 0.0) for sid in names.keys() | docs.keys()}


class NodeTables:
    """The current :class:`NodeTable` of a library, reloaded when its generation changes."""

    def __init__(self):
        self._table: NodeTable | None = None
        self._lock = threading.Lock()

    def get(self, lib, generation: int) -> NodeTable:
        t = self._table
        if t is None or t.generation != generation:
            with self._lock:
                t = self._table
                if t is None or t.generation != generation:
                    t = self._table = NodeTable.load(lib, generation)
        return t


def _rrf_of(keys: np.ndarray, values: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """Per group (0..G-1 in ``keys``' unique order): weight / (RRF_K + rank) of the group's value."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(len(values))
    return np.where(values > 0, weight / (RRF_K + ranks + 1), 0.0)


def group_scores(groups: np.ndarray, bm25: np.ndarray, dense: np.ndarray, dense_w: float) -> np.ndarray:
    """Per candidate: the fused score of its group (page or section) — RRF of the groups ranked by
    summed BM25 and by best cosine. Candidates with group -1 get 0."""
    valid = groups >= 0
    out = np.zeros(len(groups), np.float64)
    if not valid.any():
        return out
    uniq, inv = np.unique(groups[valid], return_inverse=True)
    lex = np.zeros(len(uniq))
    np.add.at(lex, inv, bm25[valid])
    den = np.full(len(uniq), -np.inf)
    np.maximum.at(den, inv, dense[valid])
    den = np.where(np.isfinite(den), den + 1.0, 0.0)  # cosines may be negative; 0 = not seen
    g = _rrf_of(uniq, lex) + _rrf_of(uniq, den, dense_w)
    out[valid] = g[inv]
    return out


def coarse_bonus(ids: np.ndarray, coarse_ids: np.ndarray, coarse_scores: np.ndarray, table: NodeTable) -> np.ndarray:
    """Per candidate: the best fused score among the matched sections (coarse hits) holding it."""
    if not len(coarse_ids) or not len(ids):
        return np.zeros(len(ids))
    cid = np.asarray(coarse_ids, np.int64)
    ok = cid < len(table.last)
    cid, cs = cid[ok], np.asarray(coarse_scores, np.float64)[ok]
    last = table.last[cid]
    inside = (ids[:, None] > cid[None, :]) & (ids[:, None] <= last[None, :])
    return np.where(inside, cs[None, :], 0.0).max(axis=1, initial=0.0)


def aggregate(ids: np.ndarray, own: np.ndarray, bm25: np.ndarray, dense: np.ndarray, table: NodeTable,
              dense_w: float = 1.0, route: dict[int, float] | None = None,
              coarse: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Final scores of candidate fine nodes ``ids`` (own fused score, raw BM25 (0 = not a lexical
    hit), raw cosine (-inf = not a dense hit)): own + page + section + its source's weight in
    ``route`` (:func:`source_prior`) / RRF_K (+ the score of a matched section holding it,
    coarse-to-fine), contentless damped."""
    ids = np.asarray(ids, np.int64)
    inside = ids < len(table.page)
    safe = np.where(inside, ids, 0)
    cl = table.contentless[safe] & inside
    # a contentless node adds nothing to its page or section
    b = np.where(cl, 0.0, bm25)
    d = np.where(cl, -np.inf, dense)
    src = table.source[safe].astype(np.int64)
    # a node with no page (Markdown, text) or no section is its own group, so a source without
    # pages competes on equal terms with a PDF whose page holds several matches
    alone = OWN_GROUP + ids
    pages = np.where(inside & (table.page[safe] >= 0), src * 1_000_000 + table.page[safe], alone)
    secs = np.where(inside & (table.section[safe] >= 0), table.section[safe], alone)
    score = own.astype(np.float64, copy=True)
    if PAGE_W:
        score += PAGE_W * group_scores(pages, b, d, dense_w)
    if SECTION_W:
        score += SECTION_W * group_scores(secs, b, d, dense_w)
    if route:
        score = score + np.array([route.get(int(s), 0.0) for s in src]) * inside / RRF_K
    if coarse is not None and COARSE_W:
        score = score + COARSE_W * coarse_bonus(ids, coarse[0], coarse[1], table)
    return np.where(cl, score * CONTENTLESS, score)


def aggregate_reference(ids, own, bm25, dense, table: NodeTable, dense_w: float = 1.0, route=None,
                        coarse=None) -> list[float]:
    """The same scores as :func:`aggregate`, one candidate at a time (the reference a test compares to)."""
    def fused(key_of) -> dict:
        lex, den = defaultdict(float), {}
        for i, nid in enumerate(ids):
            k = key_of(nid)
            if k is None or (nid < len(table.page) and table.contentless[nid]):
                continue
            lex[k] += float(bm25[i])
            if np.isfinite(dense[i]):
                den[k] = max(den.get(k, -np.inf), float(dense[i]))
        keys = sorted({key_of(n) for n in ids if key_of(n) is not None})
        out = {k: 0.0 for k in keys}
        for vals, w in (({k: lex.get(k, 0.0) for k in keys}, 1.0), ({k: den.get(k, -1.0) + 1.0 for k in keys}, dense_w)):
            order = sorted(keys, key=lambda k: -vals[k])  # stable: ties keep key order, as np.argsort does
            for r, k in enumerate(order):
                if vals[k] > 0:
                    out[k] += w / (RRF_K + r + 1)
        return out

    def page_of(nid):
        if nid >= len(table.page) or table.page[nid] < 0:
            return OWN_GROUP + int(nid)
        return int(table.source[nid]) * 1_000_000 + int(table.page[nid])

    def sec_of(nid):
        if nid >= len(table.page) or table.section[nid] < 0:
            return OWN_GROUP + int(nid)
        return int(table.section[nid])

    pg, sc = fused(page_of), fused(sec_of)
    out = []
    for i, nid in enumerate(ids):
        s = float(own[i]) + PAGE_W * pg.get(page_of(nid), 0.0) + SECTION_W * sc.get(sec_of(nid), 0.0)
        if route and nid < len(table.page):
            s += route.get(int(table.source[nid]), 0.0) / RRF_K
        if coarse is not None and COARSE_W:
            s += COARSE_W * max([float(sc) for c, sc in zip(*coarse) if c < len(table.last) and c < nid <= table.last[c]],
                                default=0.0)
        if nid < len(table.page) and table.contentless[nid]:
            s *= CONTENTLESS
        out.append(s)
    return out
