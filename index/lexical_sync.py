"""What the lexical index holds, built from the database, and healing it after a killed run.

Both ingestion and healing build a source's rows here, so a healed index is the one a clean
run would have written: fine nodes are titled by their section path without synthetic sections
("Part 2: …", which the readers invent), coarse and source nodes carry their title and summary,
entities their name and aliases.
"""

from __future__ import annotations

from sqlalchemy import select, text as sql

from .lexical import CTX_WINDOW, FORMAT
from .schema import EntityRow, NodeRow, SourceRow
from .store import get_state, is_sqlite

ENTITY_RANGE = (-(2**62), -1)  # entities are indexed under their negated id
LEGACY_TABLES = ("nodes_fts_v", "nodes_fts", "fts_fine_v", "fts_coarse_v", "fts_source_v", "fts_entity_v",
                 "fts_fine", "fts_coarse", "fts_source", "fts_entity", "lexical_state")


def source_rows(conn, source_ids: list[int]) -> list[tuple]:
    """(node_id, title, body, tier[, ctx]) for every node of these sources, and per source one
    row of tier "doc" under its root node's id: its title and the texts (a list) of all its paragraphs,
    tables and segments (a table's rows repeat its text and are left out), for ranking whole
    documents. A paragraph's ``ctx`` is the text of up to CTX_WINDOW paragraphs on each side of
    it on its page (tables count, their rows neither get nor give context). Sources without pages
    (text, transcripts) have whole paragraphs and segments, not a reader's fragments: no ctx."""
    out = []
    for sid in source_ids:
        lex: dict[int, list[str]] = {}
        root: tuple[int, str] | None = None
        whole: list[str] = []
        page_runs: dict[int, list[tuple[int, str]]] = {}  # page → [(row index in out, text)]
        q = (select(NodeRow.id, NodeRow.parent_id, NodeRow.kind, NodeRow.tier, NodeRow.title, NodeRow.text,
                    NodeRow.summary, NodeRow.meta, NodeRow.page).where(NodeRow.source_id == sid).order_by(NodeRow.id))
        # Ids are given in pre-order, so a parent's path is known before its children's.
        for nid, parent, kind, tier, title, text, summary, meta, page in conn.execute(q):
            path = lex.get(parent, [])
            if kind in ("section", "scene") and title and not (meta or {}).get("synthetic"):
                path = path + [title]
            lex[nid] = path
            if root is None:
                root = (nid, title or "")
            if tier == "fine":
                out.append((nid, " / ".join(path + ([title] if title else [])), text or "", tier))
                if text and kind != "row":
                    if page is not None:
                        page_runs.setdefault(page, []).append((len(out) - 1, text))
                    whole.append(text)
            else:
                out.append((nid, title or "", summary or "", tier))
        for run in page_runs.values():
            texts = [t for _, t in run]
            for j, (at, _) in enumerate(run):
                near = texts[max(0, j - CTX_WINDOW) : j] + texts[j + 1 : j + 1 + CTX_WINDOW]
                if near:
                    out[at] = out[at] + (" ".join(near),)
        if root is not None:
            # the paragraphs themselves, not one string of them: they are held by their own rows
            # already, and a 5 MB text's join (and its copies on the way into tantivy) was 15 MB
            out.append((root[0], root[1], whole, "doc"))
    return out


def entity_row(eid: int, name: str, aliases) -> tuple[int, str, str, str]:
    return (-eid, name, " ".join(aliases or []), "entity")


def entity_rows(conn) -> list[tuple[int, str, str, str]]:
    return [entity_row(*r) for r in conn.execute(select(EntityRow.id, EntityRow.name, EntityRow.aliases))]


def drop_legacy_fts(engine) -> bool:
    """Libraries made before the tantivy index kept SQLite FTS5 tables; they are dropped (the
    tantivy index is rebuilt from the nodes)."""
    if not is_sqlite(engine):
        return False
    with engine.begin() as c:
        present = {r[0] for r in c.execute(sql("SELECT name FROM sqlite_master"))}
        gone = [t for t in LEGACY_TABLES if t in present]
        for t in gone:
            c.execute(sql(f"DROP TABLE IF EXISTS {t}"))
    return bool(gone)


def heal(lib) -> int:
    """Make the lexical index hold exactly the database's nodes and entities. Call inside the
    library's write lock. Returns the number of rows rewritten or dropped (0 when in step)."""
    dropped = drop_legacy_fts(lib.engine)
    gen = int(get_state(lib.engine, "generation", "0"))
    if lib.lexical.generation() == gen and not dropped:
        return 0
    if lib.lexical.format < FORMAT:  # an older schema: rebuilt whole
        lib.lexical.upgrade()
    have, whole = lib.lexical.ids(), lib.lexical.doc_ids()
    with lib.engine.connect() as c:
        spans = c.execute(select(SourceRow.id, SourceRow.root_id, SourceRow.last_id)).all()
        node_ids = {r[0] for r in c.execute(select(NodeRow.id))}
        # a source is rewritten when a node of it is missing, or its whole-text row (a library
        # made before the docs index, or a run killed between the two commits)
        stale = [(sid, lo, hi) for sid, lo, hi in spans
                 if lo is not None and (lo not in whole or any(i not in have for i in range(lo, hi + 1) if i in node_ids))]
        deletes = [(lo, hi) for _, lo, hi in stale]
        deletes += runs(sorted(i for i in have | whole if i > 0 and i not in node_ids))
        # Entity rows are few and their aliases may have grown in the lost write: rewrite all.
        deletes.append(ENTITY_RANGE)
        rows = source_rows(c, [sid for sid, _, _ in stale]) + entity_rows(c)
    lib.lexical.apply(deletes, rows, gen)
    lib.lexical.close_writer()
    return len(rows)


def runs(ids: list[int]) -> list[tuple[int, int]]:
    """Sorted ids as (first, last) ranges of consecutive ids: one delete per range."""
    out: list[tuple[int, int]] = []
    for i in ids:
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out
