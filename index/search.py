"""Located search: dense (faiss) and lexical (tantivy BM25) candidates fused by reciprocal rank.

Reciprocal-rank fusion needs no score calibration between cosine and BM25, which differ in
scale per query; both raw scores are still reported on each hit.
"""

from __future__ import annotations


import numpy as np
from sqlalchemy import func, select

from ..core import LEVELS, Locator
from ..readers.textsplit import CJK_RE, sentence_spans
from .lexical import identifiers, query_terms
from .place_refs import caption_pattern, caption_refs, end_refs, page_refs
from . import rank as RK
from .rank import NodeTables, aggregate, doc_scores, route_scores, source_prior
from .schema import NodeRow, SourceRow

RRF_K = 60
COARSE_POOL = 20  # sections searched for coarse-to-fine (index/rank.py COARSE_W)
#: weight of a place the question names ("the map on page 12", "the cover", "Figure 5"), as one
#: more ranked list of the fusion: twice a single list's, so the place's paragraph leads the hits
PAGE_REF_W = 2.0
#: the most hits one search returns (the CLI allows 100, the agent's tool 20)
MAX_K = 1000
TIER_OF_LEVEL = {"any": ("fine", "coarse", "source"), "source": ("source",), "coarse": ("coarse",), "fine": ("fine",)}


def check_k(k) -> int:
    """``k`` as the number of hits to look for: a whole number of at least 1, at most MAX_K.
    faiss and tantivy set aside room for k hits before they look, so an unchecked k (10**9)
    aborted the process; more than MAX_K hits is a listing, not a search (``outline``)."""
    try:
        n = int(k)
    except (TypeError, ValueError):
        raise ValueError(f"k must be a whole number, not {k!r}") from None
    if n != k or isinstance(k, bool):
        raise ValueError(f"k must be a whole number, not {k!r}")
    if n < 1:
        raise ValueError(f"k must be at least 1, not {n}")
    return min(n, MAX_K)


def tiers_for(level: str) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """(tiers to search, node kinds to keep or None for all)."""
    if level in TIER_OF_LEVEL:
        return TIER_OF_LEVEL[level], None
    if level in LEVELS:
        kinds = LEVELS[level]
        from ..core import tier_of

        return tuple(sorted({tier_of(k) for k in kinds})), kinds
    raise ValueError(f"unknown level {level!r}: use any, source, coarse, fine, entity or one of {sorted(LEVELS)}")


def rrf(ranked_lists: list[list[int]], weights: list[float] | None = None) -> dict[int, float]:
    scores: dict[int, float] = {}
    for li, ids in enumerate(ranked_lists):
        w = 1.0 if weights is None else weights[li]
        for rank, i in enumerate(ids):
            scores[i] = scores.get(i, 0.0) + w / (RRF_K + rank + 1)
    return scores


def dense_weight(query: str) -> float:
    """The embedding model (all-MiniLM-L6-v2) was trained on English; on CJK text its vectors
    are near-random, so there the dense list gets no weight and only breaks ties (measured on LongBench
    passage_retrieval_zh: see README)."""
    cjk = len(CJK_RE.findall(query))
    letters = sum(ch.isalpha() for ch in query) or 1
    return 0.0 if cjk / letters > 0.3 else 1.0


def snippet(text: str, terms: list[str], max_chars: int = 320) -> str:
    """The sentence (with a neighbour if short) holding most query terms.

    Transcript-style text (one timed line per row) is cut at lines, prose at sentence ends."""
    if text.count("\n") >= 2:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        text = "\n".join(lines)
        spans, pos = [], 0
        for ln in lines:
            spans.append((pos, pos + len(ln)))
            pos += len(ln) + 1
    else:
        text = " ".join(text.split())
        spans = sentence_spans(text) or [(0, len(text))]
    if len(text) <= max_chars:
        return text
    low = text.lower()
    best, best_s = 0, -1.0
    for i, (s, e) in enumerate(spans):
        seg = low[s:e]
        sc = sum(1 for t in terms if t in seg) + (0.01 if i == 0 else 0)
        if sc > best_s:
            best, best_s = i, sc
    s, e = spans[best]
    j = best + 1
    while e - s < max_chars * 0.6 and j < len(spans):
        e = spans[j][1]
        j += 1
    out = " ".join(text[s:e].split(" ")) if "\n" not in text[s:e] else " · ".join(text[s:e].split("\n"))
    if len(out) > max_chars:
        out = out[: max_chars - 1].rstrip() + "…"
    return ("… " if s > 0 else "") + out


def locator_for(row: NodeRow, src: SourceRow, scene_ordinal: int | None = None, home=None) -> Locator:
    loc = Locator(source=src.name, path=src.path, kind=src.kind, page=row.page,
                  bbox=tuple(row.bbox) if row.bbox else None, char_start=row.char_start, char_end=row.char_end,
                  t_start=row.t_start, t_end=row.t_end, section_path=list(row.title_path or []))
    if src.kind == "video":
        if row.kind == "scene":
            loc.scene = row.ordinal
        elif row.kind == "segment":
            loc.segment = row.ordinal
            loc.scene = scene_ordinal
        kfs = (row.meta or {}).get("keyframes") or []
        if kfs and src.meta.get("assets"):
            first = kfs[0]["name"] if isinstance(kfs[0], dict) else kfs[0]
            loc.keyframe = str((home / src.meta["assets"] / first)) if home else first
    elif row.tier == "fine":
        loc.paragraph = row.ordinal
    return loc


class Searcher:
    def __init__(self, lib):
        self.lib = lib
        self.tables = NodeTables()

    def _lexical(self, query: str, tiers, pool: int, id_range):
        """Per-tier BM25 lists, and per-tier lists of nodes holding every identifier verbatim."""
        lex = {t: self.lib.lexical.search(query, (t,), pool, id_range) for t in tiers}
        idents = identifiers(query)
        exact = {t: self.lib.lexical.search_phrases(idents, (t,), pool, id_range) for t in tiers} if idents else {}
        return lex, exact

    def resolve_within(self, within) -> tuple[int, int] | None:
        if within is None or within == "":
            return None
        with self.lib.Session() as s:
            if isinstance(within, int) or (isinstance(within, str) and within.isdigit()):
                row = s.get(NodeRow, int(within)) if int(within) < 2**63 else None  # ids are 64-bit
                if row is None:
                    raise ValueError(f"no node {within}")
                return row.id, row.last_id
            src = s.execute(select(SourceRow).where((SourceRow.name == within) | (SourceRow.path == within))).scalars().first()
            if src is None:
                raise ValueError(f"no indexed source named {within!r}")
            return src.root_id, src.last_id

    def search(self, query: str, level: str = "any", within=None, k: int = 8) -> list[dict]:
        query = (query or "").strip()
        if not query:
            raise ValueError("empty query")
        k = check_k(k)
        if level == "entity":
            return self.search_entities(query, k)
        tiers, kinds = tiers_for(level)
        id_range = self.resolve_within(within)
        self.lib.refresh(force=False)
        pool = max(40, 5 * k)
        dense_w = dense_weight(query)

        # BM25 (tantivy, ~1 ms) runs inline: in a worker thread beside the query embedding it
        # gained nothing on two cores (benchmarks/bench_ingest.py).
        lex, exact = self._lexical(query, tiers, pool, id_range)
        qv = self.lib.embed_query(query)
        dense = {t: self.lib.vectors.search(t, qv, pool, id_range) for t in tiers}
        lists, weights, dense_s, lex_s = [], [], {}, {}
        for tier in tiers:
            d, lx = dense[tier], lex[tier]
            dense_s.update(d)
            lex_s.update(lx)
            # Coarse/source nodes summarise many paragraphs; a slightly lower weight keeps a
            # precise paragraph above the section that merely contains it.
            w = 1.0 if tier == "fine" else 0.8
            lists += [[i for i, _ in d], [i for i, _ in lx]]
            weights += [w * dense_w, w]
        # Rank fusion ignores score gaps, so a code the user typed ("MB-1074") found verbatim by
        # BM25 could be outvoted by dense neighbours; nodes holding every identifier of the
        # query verbatim form one more ranked list with double weight.
        for tier, ex in exact.items():
            lex_s.update({i: s for i, s in ex if i not in lex_s})
            lists.append([i for i, _ in ex])
            weights.append(2.0 if tier == "fine" else 1.6)
        fused = rrf(lists, weights)
        if not fused:
            return []
        if "fine" in tiers:
            coarse = None
            if RK.COARSE_W:
                cd = dense.get("coarse") or self.lib.vectors.search("coarse", qv, COARSE_POOL, id_range)
                cl = lex.get("coarse") or self.lib.lexical.search(query, ("coarse",), COARSE_POOL, id_range)
                cf = rrf([[i for i, _ in cd], [i for i, _ in cl]], [dense_w, 1.0])
                coarse = (np.fromiter(cf, np.int64, len(cf)), np.fromiter(cf.values(), np.float64, len(cf)))
            self._structure(fused, query, dense.get("fine", []), lex.get("fine", []) + exact.get("fine", []),
                            dense_w, within is None, coarse)
        if "fine" in tiers and PAGE_REF_W:
            pages, ends, captions = page_refs(query), end_refs(query), caption_refs(query)
            if pages or ends or captions:
                self._named_places(fused, query, pages, ends, captions, id_range)
        ranked = sorted(fused, key=lambda i: (-fused[i], -dense_s.get(i, 0.0)))
        terms = query_terms(query)
        chosen, start, step = [], 0, (k + 2 if kinds is None else 4 * k)
        with self.lib.reading() as conn:  # one pooled connection for the hits and their neighbours
            while len(chosen) < k and start < len(ranked):
                batch = ranked[start : start + step]
                rows = self.lib.fetch_nodes(batch, conn)
                for i in batch:
                    r = rows.get(i)
                    if r is not None and (kinds is None or r[0].kind in kinds):
                        chosen.append((i, *r))
                        if len(chosen) >= k:
                            break
                start += step
            near = self.lib.neighbours_many([node for _, node, _ in chosen], conn)
        hits = []
        for i, node, src in chosen:
            hit = self.lib.node_dict(node, src, terms=terms)
            hit.update(score=round(fused[i], 5), dense=round(dense_s[i], 4) if i in dense_s else None,
                       bm25=round(lex_s[i], 3) if i in lex_s else None, neighbours=near[node.id])
            hits.append(hit)
        return hits

    def _structure(self, fused: dict[int, float], query: str, dense_hits, lex_hits, dense_w: float, routing: bool,
                   coarse=None) -> None:
        """Rescore the fine candidates in place with their page, section and source (index/rank.py)."""
        ids = np.fromiter(dict.fromkeys([i for i, _ in dense_hits] + [i for i, _ in lex_hits]), np.int64)
        if not len(ids):
            return
        table = self.tables.get(self.lib, self.lib.vectors.generation)
        bm, dn = dict(lex_hits), dict(dense_hits)
        own = np.array([fused[i] for i in ids])
        b = np.array([bm.get(i, 0.0) for i in ids])
        d = np.array([dn.get(i, -np.inf) for i in ids])
        route = None
        if routing:
            docs = self.lib.lexical.search_docs(query, RK.DOC_POOL) if RK.DOC_W else []
            route = source_prior(route_scores(table, query), doc_scores(table, docs))
        for i, v in zip(ids.tolist(), aggregate(ids, own, b, d, table, dense_w, route, coarse).tolist()):
            fused[i] = v

    def _named_places(self, fused: dict[int, float], query: str, pages: list[int], ends: list[str],
                      captions: list[tuple[str, int]], id_range) -> None:
        """Raise one paragraph of each place the question names (index/place_refs.py), pages
        first, in the order named. A page gives its best candidate or, when it shares no word
        with the question (a picture, a map), its first paragraph with content; "the cover" is
        the first page, "the last page" the last; "Figure 5" is the paragraph its caption opens.
        Places are looked for within the searched range; over the whole library only in a source
        the question names, since every long document has a page 12 and a Figure 1."""
        table = self.tables.get(self.lib, self.lib.vectors.generation)
        n = len(table.page)
        if id_range is None:
            # over the whole library only a source the question names by name (index/rank.py
            # routing) says whose page it is: the best candidate's source was wrong as often
            named = [sid for sid, w in route_scores(table, query).items() if w >= 1.0]
            if len(named) != 1:
                return
            with self.lib.Session() as s:
                src = s.get(SourceRow, named[0])
                if src is None:
                    return
                id_range = (src.root_id, src.last_id)
        lo, hi = id_range
        in_range = NodeRow.id.between(lo, hi)
        targets: list[int] = []
        if ends:
            with self.lib.Session() as s:
                first, last = s.execute(select(func.min(NodeRow.page), func.max(NodeRow.page))
                                        .where(in_range, NodeRow.tier == "fine")).one()
            pages = pages + [p for p in ([first] if "first" in ends else []) + ([last] if "last" in ends else [])
                             if p is not None and p not in pages]
        if pages:
            best: dict[int, int] = {}  # page → its best candidate
            for i, v in fused.items():
                if lo <= i <= hi and i < n and (table.fine is None or table.fine[i]):
                    p = int(table.page[i])
                    if p in pages and (p not in best or v > fused[best[p]]):
                        best[p] = i
            missing = [p for p in pages if p not in best]
            if missing:
                with self.lib.Session() as s:
                    rows = s.execute(select(NodeRow.id, NodeRow.page).where(in_range, NodeRow.tier == "fine",
                                                                           NodeRow.page.in_(missing))
                                     .order_by(NodeRow.id)).all()
                for nid, p in rows:
                    # the first paragraph with content; a page of lone numbers still gets its first
                    if p not in best or (nid < n and best[p] < n and table.contentless[best[p]]
                                         and not table.contentless[nid]):
                        best[p] = nid
            targets += [best[p] for p in pages if p in best]
        for kind, number in captions:
            words = ("figure", "fig") if kind == "figure" else ("table", "tab")
            ids = dict.fromkeys(i for w in words
                                for i, _ in self.lib.lexical.search_phrases([f"{w} {number}"], ("fine",), 20, id_range))
            pattern = caption_pattern(kind, number)
            rows = self.lib.fetch_nodes(sorted(ids))
            hit = next((i for i in sorted(ids) if i in rows
                        and (pattern.match(rows[i][0].title or "") or pattern.match(rows[i][0].text or ""))), None)
            if hit is not None and hit not in targets:
                targets.append(hit)
        for r, i in enumerate(targets):
            fused[i] = fused.get(i, 0.0) + PAGE_REF_W / (RRF_K + r + 1)

    def search_entities(self, query: str, k: int) -> list[dict]:
        ids = [-i for i, _ in self.lib.lexical.search(query, ("entity",), k) if i < 0]
        return [self.lib.entity(eid, max_mentions=5) for eid in ids]

