"""``Library``: the one object behind the CLI, the agent's tools and the Python API.

    from sleuth import Library
    lib = Library(".sleuth")                 # or Library("postgresql+psycopg://…", home=".sleuth")
    lib.add(["report.pdf", "lecture.mp4"])
    lib.search("gross margin", level="fine")
    ans = lib.ask("Which quarter did margins fall?")
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from .core import Locator
from .index.embed import Embedder
from .index.ingest import FINE_EMBED_TOKENS, FileResult, Ingestor, expand_paths, prune_candidates
from .index.lexical import Lexical
from .index.lexical_sync import heal as heal_lexical
from .index.schema import EmbeddingRow, EntityRow, FailureRow, MentionRow, NodeRow, RunRow, SourceRow
from .index.search import Searcher, locator_for, snippet
from .index.store import db_size, get_state, make_engine
from .index.vectors import VectorStore, load_vectors


class LibraryBusy(RuntimeError):
    pass


class LibraryMissing(FileNotFoundError):
    """A read-only command named a library that does not exist (or whose database is gone)."""


def mask_url(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@host`` URL in it replaced."""
    return re.sub(r"(\w[\w+.-]*://[^\s:/@]*:)[^\s@/]*@", r"\1***@", str(text))


@dataclass
class IndexReport:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    cancelled: bool = False

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    def to_dict(self) -> dict:
        return {"seconds": round(self.seconds, 3), "cancelled": self.cancelled,
                "counts": {k: self.count(k) for k in ("added", "updated", "skipped", "failed", "pruned")},
                "files": [asdict(r) for r in self.results]}


def _tokens(text: str) -> int:
    return max(1, int(len(text.split()) * 1.3)) if text else 0


class Library:
    def __init__(self, location: str | os.PathLike = ".sleuth", *, home: str | os.PathLike | None = None,
                 embedder: Embedder | None = None, create: bool = True):
        """``create=False`` (read-only commands): a missing library, or a folder whose
        library.db was deleted, raises LibraryMissing instead of becoming a new empty library,
        and a library that cannot be written (a read-only mount) is opened read-only."""
        loc = str(location)
        self.read_only = False
        if "://" in loc:
            self.url = loc
            self.home = Path(home or ".sleuth").resolve()
        else:
            self.home = Path(loc).resolve()
            self.url = f"sqlite:///{self.home / 'library.db'}"
            if not create:
                db = self.home / "library.db"
                if not db.is_file():
                    what = "no library.db in it" if self.home.is_dir() else "no such folder"
                    raise LibraryMissing(f"{self.home}: not a sleuth library ({what}); `sleuth index` creates one")
                self.read_only = not os.access(self.home, os.W_OK) or not os.access(db, os.W_OK)
        if not self.read_only:
            self.home.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(self.url, read_only=self.read_only, lock_dir=None if self.read_only else self.home)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.lexical = Lexical(self.home / "lexical", read_only=self.read_only)
        self.vectors = VectorStore(self.home / "vectors")
        self.vectors.loader = lambda ids: load_vectors(self.engine, ids)
        self.embedder = embedder or Embedder()
        self.searcher = Searcher(self)
        self.ingestor = Ingestor(self)
        self._refresh_lock = threading.Lock()
        self._qcache: dict[str, np.ndarray] = {}
        self._heal_if_free()
        self.refresh()

    # -- derived indexes -------------------------------------------------------------------
    def refresh(self) -> None:
        """Bring the faiss indexes in step with the database (cheap when nothing changed)."""
        gen = int(get_state(self.engine, "generation", "0"))
        if gen != self.vectors.generation:
            with self._refresh_lock:
                self.vectors.reconcile(self.engine, gen)
        self.lexical.refresh()

    def _heal_if_free(self) -> None:
        """On open: heal the lexical index if a run was killed between its database commit and
        the lexical commit, unless an index run holds the library (it heals when it starts)."""
        if self.read_only or self.lexical.generation() == int(get_state(self.engine, "generation", "0")):
            return
        try:
            with self.write_lock():
                heal_lexical(self)
        except LibraryBusy:
            pass

    def embed_nodes(self, texts: list[str], kinds: list[str]) -> np.ndarray:
        """Paragraph-like nodes are embedded from their first FINE_EMBED_TOKENS word pieces (the
        lexical index holds all their words); sections, sources and video segments use 128."""
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        fine = [i for i, k in enumerate(kinds) if k in ("paragraph", "table", "figure")]
        other = [i for i, k in enumerate(kinds) if k not in ("paragraph", "table", "figure")]
        if fine:
            out[fine] = self.embedder.encode([texts[i] for i in fine], max_length=FINE_EMBED_TOKENS)
        if other:
            out[other] = self.embedder.encode([texts[i] for i in other])
        return out

    def embed_query(self, query: str) -> np.ndarray:
        v = self._qcache.get(query)
        if v is None:
            v = self.embedder.encode([query])[0]
            if len(self._qcache) > 256:
                self._qcache.clear()
            self._qcache[query] = v
        return v

    # -- indexing --------------------------------------------------------------------------
    @contextmanager
    def write_lock(self):
        """One index run per library at a time; searches never wait for it."""
        fh = open(self.home / "index.lock", "w")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LibraryBusy(f"{self.home}: another `sleuth index` is writing to this library") from None
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def add(self, paths, *, prune: bool = False, force: bool = False, ocr: str = "auto", asr: str = "auto",
            progress: Callable[[str, str, int, int], None] | None = None,
            on_result: Callable[[FileResult], None] | None = None) -> IndexReport:
        """Index files and folders. ``progress(event, path, done, total)``; returns an IndexReport.

        Ctrl-C between or during files stops cleanly: committed files stay, the file in flight is
        rolled back, and the next run picks up where this one stopped. Bad ``ocr``/``asr`` values
        raise ValueError before any work.
        """
        from .readers import check_modes

        ocr, asr = check_modes(ocr, asr)
        if self.read_only:
            raise PermissionError(f"{self.home}: library is read-only")
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        t0 = time.perf_counter()
        report = IndexReport()
        files, missing = expand_paths(list(paths))
        report.results.extend(missing)
        for r in missing:
            on_result and on_result(r)
        with self.write_lock():
            heal_lexical(self)
            self.refresh()
            run_id = self.ingestor.start_run()
            status = "done"
            try:
                for n, f in enumerate(files):
                    progress and progress("start", str(f), n, len(files))
                    res = self.ingestor.index_file(
                        f, force=force, ocr=ocr, asr=asr,
                        on_stage=(lambda st, f=f, n=n: progress("stage:" + st, str(f), n, len(files))) if progress else None)
                    report.results.append(res)
                    on_result and on_result(res)
                    progress and progress("done", str(f), n + 1, len(files))
                    if self.vectors.dirty and (n % 25 == 24):
                        self.vectors.save(self.vectors.generation)
                if prune:
                    for src in prune_candidates(self, [Path(p) for p in paths]):
                        self.ingestor.remove(src)
                        r = FileResult(src.path, "pruned", "file no longer exists")
                        report.results.append(r)
                        on_result and on_result(r)
            except KeyboardInterrupt:
                report.cancelled, status = True, "cancelled"
                raise
            finally:
                self.lexical.close_writer()
                if self.vectors.dirty:
                    self.vectors.save(self.vectors.generation)
                report.seconds = time.perf_counter() - t0
                self.ingestor.finish_run(run_id, report.results, report.seconds, status)
        return report

    def remove(self, name_or_path: str) -> bool:
        with self.Session() as s:
            src = s.execute(select(SourceRow).where((SourceRow.name == name_or_path) | (SourceRow.path == str(Path(name_or_path).resolve())))).scalars().first()
        if src is None:
            return False
        with self.write_lock():
            heal_lexical(self)
            try:
                self.ingestor.remove(src)
            finally:
                self.lexical.close_writer()
            self.vectors.save(self.vectors.generation)
        return True

    # -- node views ------------------------------------------------------------------------
    def fetch_nodes(self, ids: list[int]) -> dict[int, tuple[NodeRow, SourceRow]]:
        ids = [i for i in ids if _valid_id(i)]  # a database integer is 64-bit: larger ids match nothing
        if not ids:
            return {}
        with self.Session() as s:
            rows = s.execute(select(NodeRow, SourceRow).join(SourceRow, SourceRow.id == NodeRow.source_id)
                             .where(NodeRow.id.in_(ids))).all()
        return {n.id: (n, src) for n, src in rows}

    def _scene_ordinal(self, node: NodeRow) -> int | None:
        if node.kind != "segment" or node.parent_id is None:
            return None
        with self.Session() as s:
            p = s.get(NodeRow, node.parent_id)
        return p.ordinal if p is not None and p.kind == "scene" else None

    def locator(self, node: NodeRow, src: SourceRow) -> Locator:
        return locator_for(node, src, self._scene_ordinal(node), self.home)

    def node_dict(self, node: NodeRow, src: SourceRow, terms: list[str] | None = None, full: bool = False) -> dict:
        body = node.text or node.summary or ""
        loc = self.locator(node, src)
        d = {"id": node.id, "kind": node.kind, "source": src.name, "source_id": src.id, "title": node.title,
             "title_path": list(node.title_path or []),
             "snippet": snippet(body, terms or []), "locator": loc.to_dict(), "label": loc.label()}
        if full:
            d.update(text=node.text, summary=node.summary, parent_id=node.parent_id, tokens=node.tokens,
                     meta=node.meta, last_id=node.last_id)
        return d

    def get_node(self, node_id: int) -> dict:
        r = self.fetch_nodes([int(node_id)]).get(int(node_id)) if _valid_id(node_id) else None
        if r is None:
            raise KeyError(f"no node {node_id}")
        return self.node_dict(*r, full=True)

    def neighbours(self, node: NodeRow) -> list[dict]:
        return self.neighbours_many([node])[node.id]

    def neighbours_many(self, nodes: list[NodeRow]) -> dict[int, list[dict]]:
        """± one sibling of each node (same parent and tier), in one query."""
        out: dict[int, list[dict]] = {n.id: [] for n in nodes}
        parents = {n.parent_id for n in nodes if n.parent_id is not None}
        if not parents:
            return out
        want = {(n.parent_id, n.tier, n.ordinal + d): (n, d) for n in nodes if n.parent_id is not None for d in (-1, 1)}
        ords = {o for _, _, o in want}
        with self.Session() as s:
            rows = s.execute(select(NodeRow.id, NodeRow.kind, NodeRow.parent_id, NodeRow.tier, NodeRow.ordinal,
                                    func.substr(func.coalesce(func.nullif(NodeRow.text, ""), NodeRow.summary, NodeRow.title), 1, 400))
                             .where(NodeRow.parent_id.in_(parents), NodeRow.ordinal.in_(ords))).all()
        for rid, kind, pid, tier, ordinal, body in sorted(rows, key=lambda r: r[4]):
            hit = want.get((pid, tier, ordinal))
            if hit is not None:
                n, d = hit
                out[n.id].append({"id": rid, "kind": kind, "rel": "prev" if d < 0 else "next", "snippet": _clip(body or "", 160)})
        return out

    # -- the tool grammar ------------------------------------------------------------------
    def search(self, query: str, level: str = "any", within=None, k: int = 8) -> list[dict]:
        return self.searcher.search(query, level=level, within=within, k=k)

    def read(self, node_id: int, start=None, end=None, max_tokens: int = 800) -> dict:
        """Contiguous, order-preserving content under a node.

        Documents: the fine nodes of the subtree in order; ``start`` is the cursor (an index into
        them). Videos: transcript lines, on-screen text and keyframe notes of the segments that
        overlap [start, end] seconds, time-ordered; the cursor is the time to continue from.
        """
        r = self.fetch_nodes([int(node_id)]).get(int(node_id)) if _valid_id(node_id) else None
        if r is None:
            raise KeyError(f"no node {node_id}")
        node, src = r
        if src.kind == "video":
            return self._read_video(node, src, start, end, max_tokens)
        with self.Session() as s:
            fine = s.execute(select(NodeRow).where(NodeRow.id.between(node.id, node.last_id), NodeRow.tier == "fine")
                             .order_by(NodeRow.id)).scalars().all()
        if node.tier == "fine":
            fine = [node]
        i = int(start or 0)
        stop = len(fine) if end is None else min(len(fine), int(end))
        items, used = [], 0
        while i < stop:
            f = fine[i]
            t = f.tokens or _tokens(f.text)
            if items and used + t > max_tokens:
                break
            text = f.text
            if not items and t > max_tokens:  # one paragraph over budget: cut at a word boundary
                text = _clip_tokens(text, max_tokens)
                t = max_tokens
            items.append({"id": f.id, "kind": f.kind, "title_path": list(f.title_path or []), "text": text,
                          "locator": self.locator(f, src).to_dict(), "label": self.locator(f, src).label()})
            used += t
            i += 1
        return {"node": self.node_dict(node, src), "items": items, "cursor": i if i < stop else None,
                "tokens": used, "total": len(fine)}

    def _read_video(self, node: NodeRow, src: SourceRow, start, end, max_tokens: int) -> dict:
        t0 = float(start) if start is not None else (node.t_start or 0.0)
        t1 = float(end) if end is not None else (node.t_end if node.t_end is not None else float("inf"))
        with self.Session() as s:
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
            t = _tokens(text)
            if items and used + t > max_tokens:
                cursor = ev_t0
                break
            loc = self.locator(sg, src)
            loc.t_start, loc.t_end = ev_t0, max(ev_t0, ev_t1)
            items.append({"id": sg.id, "kind": mod, "t": round(ev_t0, 2), "text": text, "locator": loc.to_dict(),
                          "label": loc.label()})
            used += t
        return {"node": self.node_dict(node, src), "items": items, "cursor": cursor, "tokens": used,
                "span": [t0, None if t1 == float("inf") else t1]}

    def outline(self, node_id: int | None = None, depth: int = 2, cursor: str | None = None,
                max_tokens: int = 1500) -> dict:
        """The structure (sources, sections/scenes) under a node, paged under a token budget."""
        after = int(cursor) if cursor else 0
        with self.Session() as s:
            if node_id is None:
                base_depth, lo, hi = 0, 0, None
            else:
                base = s.get(NodeRow, int(node_id))
                if base is None:
                    raise KeyError(f"no node {node_id}")
                base_depth, lo, hi = base.depth, base.id, base.last_id
            q = select(NodeRow, SourceRow).join(SourceRow, SourceRow.id == NodeRow.source_id).where(
                NodeRow.tier != "fine", NodeRow.depth <= base_depth + depth, NodeRow.id > max(after, lo - 1))
            if hi is not None:
                q = q.where(NodeRow.id <= hi)
            rows = s.execute(q.order_by(NodeRow.id).limit(400)).all()
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
            loc = self.locator(n, src)
            items.append({"id": n.id, "kind": n.kind, "title": title, "depth": n.depth - base_depth,
                          "n_children": int(kids.get(n.id, 0)), "label": loc.label(), "locator": loc.to_dict()})
            used += cost
        if next_cursor is None and len(rows) == 400:
            next_cursor = str(items[-1]["id"])
        return {"items": items, "cursor": next_cursor, "tokens": used}

    def entity(self, name_or_id, max_mentions: int = 50) -> dict:
        with self.Session() as s:
            ent = None
            if isinstance(name_or_id, int) or str(name_or_id).isdigit():
                ent = s.get(EntityRow, int(name_or_id))
            if ent is None:
                from .index.ingest import _norm_entity

                ent = s.execute(select(EntityRow).where(EntityRow.norm == _norm_entity(str(name_or_id)))).scalars().first()
            if ent is None:
                hits = [-i for i, _ in self.lexical.search(str(name_or_id), ("entity",), 1) if i < 0]
                ent = s.get(EntityRow, hits[0]) if hits else None
            if ent is None:
                raise KeyError(f"no entity {name_or_id!r}")
            ms = s.execute(select(MentionRow).where(MentionRow.entity_id == ent.id).order_by(MentionRow.source_id, MentionRow.t)
                           .limit(max_mentions)).scalars().all()
            total = s.execute(select(func.count()).where(MentionRow.entity_id == ent.id)).scalar()
        nodes = self.fetch_nodes(sorted({m.node_id for m in ms}))
        mentions = []
        for m in ms:
            node, src = nodes[m.node_id]
            loc = self.locator(node, src)
            if m.t is not None:
                loc.t_start = loc.t_end = m.t
            if m.bbox:
                loc.bbox = tuple(m.bbox)
            mentions.append({"node_id": m.node_id, "modality": m.modality, "surface": m.surface,
                             "locator": loc.to_dict(), "label": loc.label()})
        mods = sorted({m["modality"] for m in mentions})
        return {"entity": {"id": ent.id, "name": ent.name, "kind": ent.kind, "aliases": ent.aliases,
                           "modalities": mods, "n_mentions": int(total or 0)}, "mentions": mentions}

    def look(self, node_or_time) -> dict:
        """Frame-level detail at a moment: ``look(node_id)``, ``look("talk.mp4@75.5")`` or
        ``look({"source": "talk.mp4", "t": 75.5})``."""
        src_name, t, node_id = None, None, None
        if isinstance(node_or_time, dict):
            src_name, t, node_id = node_or_time.get("source"), node_or_time.get("t"), node_or_time.get("node")
        elif isinstance(node_or_time, str) and "@" in node_or_time:
            src_name, ts = node_or_time.rsplit("@", 1)
            t = _parse_time(ts)
        else:
            node_id = int(node_or_time)
        with self.Session() as s:
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
                return {"source": src.name, "t": None, "page": n.page, "bbox": n.bbox, "keyframe": None,
                        "ocr": [], "text": _clip(n.text or n.summary, 600), "caption": None}
            seg = s.execute(select(NodeRow).where(NodeRow.source_id == src.id, NodeRow.kind == "segment",
                                                  NodeRow.t_start <= t, NodeRow.t_end >= t).order_by(NodeRow.t_start)).scalars().first()
        if seg is None:
            raise ValueError(f"{src.name}: no segment at {t}s")
        m = seg.meta or {}
        kfs = [k if isinstance(k, dict) else {"name": k, "t": seg.t_start} for k in (m.get("keyframes") or [])]
        best = min(kfs, key=lambda k: abs(float(k.get("t", 0)) - t)) if kfs else None
        asset_dir = self.home / src.meta["assets"] if src.meta.get("assets") else None
        ocr = [x for x in (m.get("screen") or []) if abs(float(x.get("t", seg.t_start)) - t) <= 5.0]
        speech = [x for x in (m.get("speech") or []) if float(x.get("t0", 0)) - 3 <= t <= float(x.get("t1", 0)) + 3]
        loc = self.locator(seg, src)
        loc.t_start = loc.t_end = t
        return {"source": src.name, "t": t, "node": seg.id, "label": loc.label(),
                "keyframe": str(asset_dir / best["name"]) if best and asset_dir else None,
                "keyframe_t": float(best.get("t", 0)) if best else None,
                "ocr": ocr, "speech": speech, "caption": None}

    def check_unchanged(self, source_id: int) -> None:
        """ReaderError unless the source's file still has the content it was indexed with (boxes
        and pages belong to that content, not to whatever file now sits at the path)."""
        from .core import ReaderError, sha256_file

        with self.Session() as s:
            src = s.get(SourceRow, int(source_id))
        if src is None:
            raise KeyError(f"no source {source_id}")
        p = Path(src.path)
        if not p.is_file():
            raise ReaderError(f"{src.path}: no longer exists (indexed as {src.name}); re-index it")
        if sha256_file(p) != src.content_hash:
            raise ReaderError(f"{src.path}: changed since it was indexed; run `sleuth index` on it first")

    def _index_lock_free(self) -> bool:
        """True when no index run holds this library (a run marked "running" was killed)."""
        try:
            fh = open(self.home / "index.lock", "r")
        except OSError:
            return True
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(fh, fcntl.LOCK_UN)
            return True

    # -- status ----------------------------------------------------------------------------
    def status(self) -> dict:
        with self.Session() as s:
            kinds = dict(s.execute(select(NodeRow.kind, func.count()).group_by(NodeRow.kind)).all())
            tiers = dict(s.execute(select(NodeRow.tier, func.count()).group_by(NodeRow.tier)).all())
            sources = dict(s.execute(select(SourceRow.kind, func.count()).group_by(SourceRow.kind)).all())
            n_ent = s.execute(select(func.count()).select_from(EntityRow)).scalar()
            n_emb = s.execute(select(func.count()).select_from(EmbeddingRow)).scalar()
            last = s.execute(select(RunRow).order_by(RunRow.id.desc()).limit(1)).scalars().first()
            fails = s.execute(select(FailureRow).order_by(FailureRow.at.desc()).limit(20)).scalars().all()
        vec_bytes = sum(p.stat().st_size for p in (self.home / "vectors").glob("*.faiss"))
        lex_bytes = sum(p.stat().st_size for p in (self.home / "lexical").iterdir() if p.is_file())
        return {
            "library": str(self.home), "database": mask_url(self.url).split("@")[-1], "read_only": self.read_only,
            "sources": sources, "levels": tiers, "kinds": kinds, "entities": int(n_ent or 0), "embeddings": int(n_emb or 0),
            "vectors": {t: self.vectors.count(t) for t in ("source", "coarse", "fine")},
            "bytes": {"database": db_size(self.engine, self.home), "vectors": vec_bytes, "lexical": lex_bytes},
            "last_run": None if last is None else {
                "started": last.started.isoformat(), "seconds": round(last.seconds or 0, 2),
                # a run is recorded "running" when it starts; if no process holds the lock it died
                "status": "killed" if last.status == "running" and self._index_lock_free() else last.status,
                "added": last.added, "updated": last.updated, "skipped": last.skipped, "failed": last.failed, "pruned": last.pruned},
            "failures": [{"path": f.path, "reason": f.reason} for f in fails],
        }

    def sources(self) -> list[dict]:
        with self.Session() as s:
            rows = s.execute(select(SourceRow).order_by(SourceRow.name)).scalars().all()
        return [{"id": r.id, "name": r.name, "path": r.path, "kind": r.kind, "title": r.title, "pages": r.pages,
                 "duration": r.duration, "nodes": r.n_nodes, "root_id": r.root_id} for r in rows]

    def ask(self, question: str, **kwargs: Any):
        """Answer with the agent graph; see :func:`sleuth.agent.ask`."""
        from .agent import ask as _ask

        return _ask(self, question, **kwargs)

    def close(self) -> None:
        self.lexical.close_writer()
        if self.vectors.dirty and not self.read_only:
            self.vectors.save(self.vectors.generation)
        self.engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _valid_id(node_id) -> bool:
    try:
        return 0 < int(node_id) < 2**63
    except (TypeError, ValueError):
        return False


def _clip(text: str, n: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _clip_tokens(text: str, max_tokens: int) -> str:
    words = text.split()
    keep = max(1, int(max_tokens / 1.3))
    return text if len(words) <= keep else " ".join(words[:keep]) + " …"


def _parse_time(ts: str) -> float:
    ts = ts.strip()
    if ":" in ts:
        parts = [float(p) for p in ts.split(":")]
        sec = 0.0
        for p in parts:
            sec = sec * 60 + p
        return sec
    return float(ts)
