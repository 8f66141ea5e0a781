"""The tool grammar after search: ``read``, ``outline``, ``entity`` and ``look`` over the database.

``search`` lives in :mod:`sleuth.index.search`; these four walk what it found. Each takes the
:class:`sleuth.Library` and returns JSON-serialisable dicts whose places are :class:`Locator`
dicts plus a rendered ``label`` (the contract in CONTRIBUTING.md).
"""

from __future__ import annotations

from sqlalchemy import func, select

from ..core import approx_tokens, words_for_tokens
from . import table_text
from .ingest import norm_entity
from .schema import EntityRow, MentionRow, NodeRow, SourceRow


def read(lib, node_id: int, start=None, end=None, max_tokens: int = 800) -> dict:
    """Contiguous, order-preserving content under a node.

    Documents: the fine nodes of the subtree in order (a table whole, its rows not again);
    ``start`` is the cursor (an index into them). A table reads as a Markdown pipe table
    (caption, header, body rows; when it comes first and is over budget, the rows that fit), a
    row as its table's caption and header over that row and the rows nearest it that fit (the
    item keeps the row's id and place), a figure as its caption and the text inside its image
    box (:mod:`.table_text`). Videos: transcript lines, on-screen text and keyframe notes of the
    segments that overlap [start, end] seconds, time-ordered; the cursor is the time to continue
    from.
    """
    r = lib.fetch_nodes([int(node_id)]).get(int(node_id))
    if r is None:
        raise KeyError(f"no node {node_id}")
    node, src = r
    if src.kind == "video":
        return _read_video(lib, node, src, start, end, max_tokens)
    with lib.Session() as s:
        # a table's rows are read as part of the table, not a second time after it
        fine = s.execute(select(NodeRow).where(NodeRow.id.between(node.id, node.last_id), NodeRow.tier == "fine",
                                               NodeRow.kind != "row")
                         .order_by(NodeRow.id)).scalars().all()
    if node.tier == "fine":
        fine = [node]
    # the cursor is an index into the fine nodes: a negative or huge one is clamped, never wraps
    i = max(0, min(len(fine), int(start or 0)))
    stop = len(fine) if end is None else max(0, min(len(fine), int(end)))
    items, used, taken = [], 0, set()
    while i < stop:
        f = fine[i]
        if f.id in taken:  # text over a figure, already read with it
            i += 1
            continue
        shown = table_text.render(lib, f, max_tokens - used if items else max_tokens)
        if shown is not None:
            # a table as a Markdown table (rows cut to fit only when it comes first), a row under
            # its table's header with the rows around it, a figure with the text inside it
            text, whole, took = shown
            t = approx_tokens(text)
            if items and (not whole or used + t > max_tokens):
                break
            taken |= took
        else:
            text, t = f.text, f.tokens or approx_tokens(f.text)
            if items and used + t > max_tokens:
                break
        # one paragraph (or figure) over budget: cut at a word boundary; a table or row keeps its
        # header and one row whole (render_table cut what it could)
        if not items and t > max_tokens and f.kind not in ("table", "row"):
            text = clip_tokens(text, max_tokens)
            t = max_tokens
        loc = lib.locator(f, src)
        items.append({"id": f.id, "kind": f.kind, "title_path": list(f.title_path or []), "text": text,
                      "locator": loc.to_dict(), "label": loc.label()})
        used += t
        i += 1
    return {"node": lib.node_dict(node, src), "items": items, "cursor": i if i < stop else None,
            "tokens": used, "total": len(fine)}


def _read_video(lib, node: NodeRow, src: SourceRow, start, end, max_tokens: int) -> dict:
    t0 = float(start) if start is not None else (node.t_start or 0.0)
    t1 = float(end) if end is not None else (node.t_end if node.t_end is not None else float("inf"))
    with lib.Session() as s:
        segs = s.execute(select(NodeRow).where(NodeRow.id.between(node.id, node.last_id), NodeRow.kind == "segment",
                                               NodeRow.t_end >= t0, NodeRow.t_start <= t1)
                         .order_by(NodeRow.t_start)).scalars().all()
    events = []
    for sg in segs:
        m = sg.meta or {}
        for sp in m.get("speech") or []:
            events.append((float(sp.get("t0", sg.t_start or 0)), float(sp.get("t1", sp.get("t0", 0))), "speech", sp.get("text", ""), sg))
        for sc in m.get("screen") or []:
            events.append((float(sc.get("t", sg.t_start or 0)), float(sc.get("t", 0)), "screen", sc.get("text", ""), sg))
        for kf in m.get("keyframes") or []:
            if isinstance(kf, dict) and kf.get("note"):
                events.append((float(kf.get("t", sg.t_start or 0)), float(kf.get("t", 0)), "keyframe", kf["note"], sg))
        if not (m.get("speech") or m.get("screen")) and sg.text:
            events.append((sg.t_start or 0.0, sg.t_end or 0.0, "text", sg.text, sg))
    events.sort(key=lambda e: (e[0], e[2]))
    items, used, cursor = [], 0, None
    for ev_t0, ev_t1, mod, text, sg in events:
        if ev_t1 < t0 or ev_t0 > t1 or not text:
            continue
        t = approx_tokens(text)
        if items and used + t > max_tokens:
            cursor = ev_t0
            break
        loc = lib.locator(sg, src)
        loc.t_start, loc.t_end = ev_t0, max(ev_t0, ev_t1)
        items.append({"id": sg.id, "kind": mod, "t": round(ev_t0, 2), "text": text, "locator": loc.to_dict(),
                      "label": loc.label()})
        used += t
    return {"node": lib.node_dict(node, src), "items": items, "cursor": cursor, "tokens": used,
            "span": [t0, None if t1 == float("inf") else t1]}


OUTLINE_BATCH = 400  # rows fetched per call; the token budget usually stops earlier


def listing(lib) -> list[dict]:
    """``sleuth ls``'s rows: the indexed sources (their files checked), then the files that never
    indexed (their only version failed), with the reason."""
    rows = lib.sources(check_files=True)
    indexed = {r["path"] for r in rows}
    return rows + [{"id": None, "name": f["path"].rsplit("/", 1)[-1], "path": f["path"], "kind": None, "title": "",
                    "pages": None, "duration": None, "nodes": 0, "root_id": None, "indexed_at": None,
                    "status": "failed", "reason": f["reason"]} for f in lib.failures() if f["path"] not in indexed]


def node_in_context(lib, node_id: int) -> dict:
    """``sleuth show``'s node: the node with its locator and its neighbours (KeyError: no node)."""
    d = lib.get_node(node_id)
    r = lib.fetch_nodes([node_id]).get(node_id)
    if r is None:  # removed between the two reads
        raise KeyError(f"no node {node_id}")
    d["neighbours"] = lib.neighbours(r[0])
    return d


def whole_outline(lib, node_id: int, depth: int) -> list[dict]:
    """Every outline item under ``node_id`` to ``depth``, all pages of :func:`outline` joined
    (``sleuth outline`` and the server's ``/outline`` show everything asked for)."""
    items, cursor = [], None
    while True:
        page = outline(lib, node_id, depth=depth, cursor=cursor, max_tokens=100_000)
        items.extend(page["items"])
        cursor = page["cursor"]
        if cursor is None:
            return items


def outline(lib, node_id: int | None = None, depth: int = 2, cursor: str | None = None, max_tokens: int = 1500) -> dict:
    """The structure (sources, sections/scenes) under a node, paged under a token budget.

    Items are in document order with their depth below the node, child count, page span
    (``page``..``page_end``) or time span in the locator; ``cursor`` continues the listing.
    """
    after = int(cursor) if cursor else 0
    with lib.Session() as s:
        if node_id is None:
            base_depth, lo, hi = 0, 0, None
        else:
            base = s.get(NodeRow, int(node_id)) if valid_id(node_id) else None
            if base is None:
                raise KeyError(f"no node {node_id}")
            base_depth, lo, hi = base.depth, base.id, base.last_id
        q = select(NodeRow, SourceRow).join(SourceRow, SourceRow.id == NodeRow.source_id).where(
            NodeRow.tier != "fine", NodeRow.depth <= base_depth + depth, NodeRow.id > max(after, lo - 1))
        if hi is not None:
            q = q.where(NodeRow.id <= hi)
        rows = s.execute(q.order_by(NodeRow.id).limit(OUTLINE_BATCH)).all()
        ids = [n.id for n, _ in rows]
        kids = dict(s.execute(select(NodeRow.parent_id, func.count()).where(NodeRow.parent_id.in_(ids))
                              .group_by(NodeRow.parent_id)).all()) if ids else {}
    items, used, next_cursor = [], 0, None
    for n, src in rows:
        title = n.title or src.name
        cost = 8 + len(title) // 4
        if items and used + cost > max_tokens:
            next_cursor = str(items[-1]["id"])
            break
        loc = lib.locator(n, src)
        items.append({"id": n.id, "kind": n.kind, "title": title, "depth": n.depth - base_depth,
                      "n_children": int(kids.get(n.id, 0)), "page_end": n.page_end, "label": loc.label(),
                      "locator": loc.to_dict()})
        used += cost
    if next_cursor is None and len(rows) == OUTLINE_BATCH:
        next_cursor = str(items[-1]["id"])
    return {"items": items, "cursor": next_cursor, "tokens": used}


def entity(lib, name_or_id, max_mentions: int = 50) -> dict:
    """An entity card and its located mentions; by id, by normalised name, else by BM25 over names."""
    with lib.Session() as s:
        ent = None
        if (isinstance(name_or_id, int) or str(name_or_id).isdigit()) and valid_id(name_or_id):
            ent = s.get(EntityRow, int(name_or_id))
        if ent is None:
            ent = s.execute(select(EntityRow).where(EntityRow.norm == norm_entity(str(name_or_id)))).scalars().first()
        if ent is None:
            hits = [-i for i, _ in lib.lexical.search(str(name_or_id), ("entity",), 1) if i < 0]
            ent = s.get(EntityRow, hits[0]) if hits else None
        if ent is None:
            raise KeyError(f"no entity {name_or_id!r}")
        ms = s.execute(select(MentionRow).where(MentionRow.entity_id == ent.id).order_by(MentionRow.source_id, MentionRow.t)
                       .limit(max(0, min(int(max_mentions), 2**62)))).scalars().all()  # SQL integers are 64-bit
        total = s.execute(select(func.count()).where(MentionRow.entity_id == ent.id)).scalar()
    nodes = lib.fetch_nodes(sorted({m.node_id for m in ms}))
    mentions = []
    for m in ms:
        node, src = nodes[m.node_id]
        loc = lib.locator(node, src)
        if m.t is not None:
            loc.t_start = loc.t_end = m.t
        if m.bbox:
            loc.bbox = tuple(m.bbox)
        mentions.append({"node_id": m.node_id, "modality": m.modality, "surface": m.surface,
                         "locator": loc.to_dict(), "label": loc.label()})
    mods = sorted({m["modality"] for m in mentions})
    return {"entity": {"id": ent.id, "name": ent.name, "kind": ent.kind, "aliases": ent.aliases,
                       "modalities": mods, "n_mentions": int(total or 0)}, "mentions": mentions}


def look(lib, node_or_time) -> dict:
    """Frame-level detail at a moment: ``look(node_id)``, ``look("talk.mp4@75.5")`` or
    ``look({"source": "talk.mp4", "t": 75.5})``.

    For a video: the keyframe nearest the moment, the on-screen text within 5 s and the speech
    within 3 s. For a document node: its page, box and text. (No caption: no vision model ships.)
    """
    src_name, t, node_id = None, None, None
    if isinstance(node_or_time, dict):
        src_name, t, node_id = node_or_time.get("source"), node_or_time.get("t"), node_or_time.get("node")
    elif isinstance(node_or_time, str) and "@" in node_or_time:
        src_name, ts = node_or_time.rsplit("@", 1)
        t = parse_time(ts)
    else:
        node_id = int(node_or_time)
    if node_id is not None and not valid_id(node_id):
        raise KeyError(f"no node {node_id}")
    with lib.Session() as s:
        if node_id is not None:
            n = s.get(NodeRow, int(node_id))
            if n is None:
                raise KeyError(f"no node {node_id}")
            src = s.get(SourceRow, n.source_id)
            if t is None:
                t = n.t_start if n.t_start is not None else None
                if n.t_start is not None and n.t_end is not None:
                    t = (n.t_start + n.t_end) / 2
        else:
            src = s.execute(select(SourceRow).where(SourceRow.name == src_name)).scalars().first()
            if src is None:
                raise KeyError(f"no indexed source named {src_name!r}")
        if src.kind != "video":
            if node_id is None:
                raise ValueError(f"{src.name} is not a video: look takes a node id for documents")
            loc = lib.locator(n, src)
            return {"source": src.name, "t": None, "node": n.id, "label": loc.label(), "locator": loc.to_dict(),
                    "page": n.page, "bbox": n.bbox, "keyframe": None, "ocr": [], "text": clip(n.text or n.summary, 600)}
        seg = s.execute(select(NodeRow).where(NodeRow.source_id == src.id, NodeRow.kind == "segment",
                                              NodeRow.t_start <= t, NodeRow.t_end >= t).order_by(NodeRow.t_start)).scalars().first()
    if seg is None:
        raise ValueError(f"{src.name}: no segment at {t}s")
    m = seg.meta or {}
    kfs = [k if isinstance(k, dict) else {"name": k, "t": seg.t_start} for k in (m.get("keyframes") or [])]
    best = min(kfs, key=lambda k: abs(float(k.get("t", 0)) - t)) if kfs else None
    asset_dir = lib.home / src.meta["assets"] if src.meta.get("assets") else None
    ocr = [x for x in (m.get("screen") or []) if abs(float(x.get("t", seg.t_start)) - t) <= 5.0]
    speech = [x for x in (m.get("speech") or []) if float(x.get("t0", 0)) - 3 <= t <= float(x.get("t1", 0)) + 3]
    loc = lib.locator(seg, src)
    loc.t_start = loc.t_end = t
    return {"source": src.name, "t": t, "node": seg.id, "label": loc.label(), "locator": loc.to_dict(),
            "keyframe": str(asset_dir / best["name"]) if best and asset_dir else None,
            "keyframe_t": float(best.get("t", 0)) if best else None,
            "ocr": ocr, "speech": speech}


def valid_id(node_id) -> bool:
    """A node id the database can hold (a 64-bit integer above 0); larger ones match nothing."""
    try:
        return 0 < int(node_id) < 2**63
    except (TypeError, ValueError):
        return False


def clip(text: str, n: int) -> str:
    """Whitespace collapsed, cut to ``n`` characters with an ellipsis."""
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def clip_tokens(text: str, max_tokens: int) -> str:
    """The first words of ``text`` that fit ``max_tokens`` (by :func:`approx_tokens`)."""
    words = text.split()
    keep = words_for_tokens(max_tokens)
    return text if len(words) <= keep else " ".join(words[:keep]) + " …"


def parse_time(ts: str) -> float:
    """Seconds from ``"75.5"``, ``"1:15.5"`` or ``"0:01:15"``."""
    ts = ts.strip()
    if ":" in ts:
        sec = 0.0
        for p in ts.split(":"):
            sec = sec * 60 + float(p)
        return sec
    return float(ts)
