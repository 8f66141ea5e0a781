"""Index files into the library: read → summarise (:meth:`Ingestor.prepare`) → embed → one
transaction per group of files (:meth:`Ingestor.finish`).

A large file is a group of its own; small files share one (GROUP_TEXTS, GROUP_FILES), so a
thousand one-line files are not a thousand commits. Each group is committed in a single database
transaction (source rows, nodes, embeddings, entities), so a run killed at any point leaves every
file either fully indexed or absent; the next run skips what is committed (same content hash)
and redoes the rest. The tantivy BM25
index is committed right after and healed from the database on open (index/lexical_sync.py). A file that fails to
read is reported and recorded in ``failures`` without touching what was indexed before.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from sqlalchemy import delete, func, insert, select

from ..core import Node, ReaderError, Tree, approx_tokens, tier_of, sha256_file
from ..memory import bounded_heap, trim_heap
from ..readers import PDF_SUFFIXES, check_size, kind_of, read_path, supported_suffixes
from .lexical_sync import entity_row, source_rows
from .schema import EmbeddingRow, EntityRow, FailureRow, MentionRow, NodeRow, RunRow, SourceRow, utcnow
from .store import bump_generation, disk_full
from .summarize import summarise_tree
from .vectors import load_vectors, pack

MAX_WARNINGS = 20  # per file, in its result and its source row
FINE_EMBED_TOKENS = 64  # see README "What gets embedded": lexical search covers the full text
#: rows inserted at a time: a 5 MB text has 4,300 nodes and 100,000 mentions (~40 MB as row
#: dicts at once), and the database driver copies each batch once more
NODE_ROWS = 1000
MENTION_ROWS = 5000
#: texts embedded from one file after which the embedding model is dropped until the next file
#: (Embedder.release): 1,000 took ~10 s, its reload ~0.2 s, and meanwhile the NER model and the
#: file's mentions and rows have its ~65 MB (a 5 MB text: 4,300 texts)
RELEASE_AFTER = 1000


@dataclass
class FileResult:
    path: str
    status: str  # added | updated | skipped | failed | pruned
    reason: str = ""
    nodes: int = 0
    pages: int | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what the reader could not do (file indexed)


class StoreStopped(Exception):
    """A group could not be wholly stored for want of room (a full disk, a quota, a file-size
    limit: :func:`sleuth.index.store.disk_full`). ``results`` say per file what became of it:
    ``failed`` when its transaction was rolled back (nothing of it kept), else stored with a
    warning that its lexical rows wait for the next run. ``cause`` says why, in words."""

    def __init__(self, cause: str, results: list[FileResult]):
        super().__init__(cause)
        self.cause = cause
        self.results = results


def file_hash(path: Path) -> str:
    return sha256_file(path)


def located(p: Path) -> Path:
    """The absolute path a file is indexed under: its folder resolved, its own name kept.

    A symlink stays the link (not its target), so errors name the link and ``--prune`` drops it
    once the link is deleted; for a plain file this is its resolved path.
    """
    p = Path(os.path.abspath(p))
    return p.parent.resolve() / p.name


def expand_paths(paths: list[str | Path]) -> tuple[list[Path], list[FileResult]]:
    """Files to index from files and folders (recursively); missing paths, unreadable folders and
    things that are not regular files (pipes, sockets, devices) are reported, never opened."""
    files, errors = [], []
    sup = supported_suffixes()

    def fail(p, reason: str) -> None:
        errors.append(FileResult(str(p), "failed", reason))

    for p in map(Path, paths):
        if p.is_dir():
            def unreadable(e: OSError) -> None:
                fail(e.filename, f"{e.filename}: cannot read folder ({e.strerror or e}); skipped")

            found = []
            for folder, dirs, names in os.walk(p, onerror=unreadable):
                rel = Path(folder).relative_to(p)
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                if any(part.startswith(".") for part in rel.parts):
                    continue
                for n in names:
                    f = Path(folder) / n
                    if n.startswith(".") or f.suffix.lower() not in sup:
                        continue
                    if f.is_file():
                        found.append(located(f))
                    elif f.exists() or not f.is_symlink():
                        fail(f, f"{f}: not a regular file; skipped")
                    else:
                        fail(f, f"{f}: broken symlink; skipped")
            files.extend(sorted(found))
        elif p.is_file():
            files.append(located(p))
        elif p.exists():
            fail(p, f"{p}: not a regular file (a pipe, socket or device); skipped")
        elif p.is_symlink():
            fail(p, f"{p}: broken symlink")
        else:
            fail(p, f"{p}: no such file or directory")
    seen, out = set(), []
    for f in files:
        key = f.resolve()  # a file and a link to it in the same run are indexed once
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out, errors


@dataclass
class LexicalChanges:
    """Lexical-index edits of one write: id ranges to drop, then rows to add, applied to the
    tantivy index right after the database transaction commits (see index.lexical)."""

    deletes: list[tuple[int, int]] = field(default_factory=list)
    rows: list[tuple[int, str, str, str]] = field(default_factory=list)


@dataclass
class FlatNode:
    node: Node
    local: int
    parent: int | None
    last: int
    depth: int
    ordinal: int
    title_path: list[str]
    lex_path: list[str]  # title_path without synthetic sections ("Part 2: …"), for embeddings
    # (index.lexical_sync.source_rows derives the same path from the database for BM25)


def flatten(root: Node) -> list[FlatNode]:
    out: list[FlatNode] = []

    def visit(n: Node, parent: int | None, depth: int, ordinal: int, path: list[str], lex: list[str]) -> int:
        me = len(out)
        titled = n.kind in ("section", "scene") and bool(n.title)
        tp = path + ([n.title] if titled else [])
        lp = lex + ([n.title] if titled and not n.meta.get("synthetic") else [])
        out.append(FlatNode(n, me, parent, me, depth, ordinal, tp, lp))
        counts: dict[str, int] = {}
        for c in n.children:
            tier = tier_of(c.kind)
            counts[tier] = counts.get(tier, 0) + 1
            visit(c, me, depth + 1, counts[tier], tp, lp)
        out[me].last = len(out) - 1
        return me

    visit(root, None, 0, 1, [], [])
    return out


def _embed_text(fn: FlatNode, summary: str) -> str:
    n = fn.node
    if n.kind in ("document", "video"):
        return f"{n.title}. {summary}"
    if n.kind in ("section", "scene"):
        return " / ".join(fn.title_path) + ". " + summary
    if n.kind == "segment":
        # Speech first and without timestamps: on-screen text often repeats in every segment
        # (a title card) and would otherwise fill the capped embedding window of each.
        speech = " ".join(x.get("text", "") for x in n.meta.get("speech") or [])
        screen = " ".join(dict.fromkeys(x.get("text", "") for x in n.meta.get("screen") or []))
        if speech or screen:
            return (speech + (" | on screen: " + screen if screen else "")).strip()
    head = fn.lex_path[-1] + ": " if fn.lex_path else ""
    return head + (n.title + ". " if n.title else "") + n.text


def norm_entity(name: str) -> str:
    """The key entities are merged and looked up by: lower case, runs of non-word characters as one space."""
    return re.sub(r"[^\w]+", " ", name.lower()).strip()


def embedded_ids(p: "Prepared", base: int) -> dict[str, np.ndarray]:
    """The stored ids of a prepared file's embedded nodes, by vector tier."""
    by: dict[str, list[int]] = {}
    for i in p.which:
        by.setdefault(tier_of(p.flat[i].node.kind), []).append(base + i)
    return {t: np.asarray(v, dtype=np.int64) for t, v in by.items()}


@dataclass
class Stored:
    """What is left of a file's tree once it is stored: its warnings, for the file's result."""

    warnings: list[str]


@dataclass
class Prepared:
    """One file read, flattened and summarised: what embedding and storage need. Files are
    embedded and stored in groups (:meth:`Ingestor.finish`), so a run of small files shares one
    embedding call, one database transaction and one lexical commit."""

    path: Path
    st: os.stat_result
    digest: str
    kind: str
    old: SourceRow | None
    tree: Tree
    flat: list[FlatNode]
    summaries: dict[int, str]
    texts: list[str]  # what is embedded, for the nodes flat[which[i]]
    which: list[int]
    timings: dict[str, float]
    vecs: np.ndarray | None = None


#: a group is embedded and stored once it holds this many texts or files: one transaction and
#: one lexical commit per group instead of per file (a commit of the tantivy index cost ~16 ms,
#: as much as indexing a one-line file). A kill loses at most the group in flight.
GROUP_TEXTS = 512
#: vectors handed to faiss at a time when storing (Ingestor._add_vectors)
VECTOR_CHUNK = 2048
GROUP_FILES = 64
#: stage names of FileResult.timings, in pipeline order (docs: benchmarks/bench_ingest.py --real)
STAGES = ("read", "ocr", "summaries", "embed", "entities", "db", "commit", "lexical", "vectors")


class Ingestor:
    def __init__(self, lib):
        self.lib = lib
        self._made_assets: list[Path] = []

    # -- planning --------------------------------------------------------------------------
    def existing(self, path: Path) -> SourceRow | None:
        with self.lib.Session() as s:
            return s.execute(select(SourceRow).where(SourceRow.path == str(path))).scalar_one_or_none()

    def index_file(self, path: Path, *, force: bool = False, ocr: str = "auto", asr: str = "auto",
                   on_stage: Callable[[str], None] | None = None,
                   on_progress: Callable[[str, float, float], None] | None = None) -> FileResult:
        """Read, summarise, embed and store one file in one transaction.

        ``on_stage(name)`` at each stage (reading, embedding, entities for documents, storing);
        ``on_progress(unit, done, total)`` within a stage: pages or seconds of video while
        reading, nodes while embedding.
        """
        p = self.prepare(path, force=force, ocr=ocr, asr=asr, on_stage=on_stage, on_progress=on_progress)
        if isinstance(p, FileResult):
            return p
        return self.finish([p], on_stage=on_stage, on_progress=on_progress)[0]

    def prepare(self, path: Path, *, force: bool = False, ocr: str = "auto", asr: str = "auto",
                on_stage: Callable[[str], None] | None = None,
                on_progress: Callable[[str, float, float], None] | None = None,
                read: Callable[..., Tree] | None = None) -> Prepared | FileResult:
        """Read and summarise one file: a :class:`Prepared` for :meth:`finish`, or the file's
        result when it is skipped (unchanged) or failed. ``read``: what reads the file
        (:func:`sleuth.readers.read_path`'s signature; index/read_process.py for PDFs)."""
        t0 = time.perf_counter()
        stage = on_stage or (lambda s: None)
        timings: dict[str, float] = {}
        try:
            kind = kind_of(path)
            st = path.stat()
            check_size(path, st.st_size)  # before hashing: a 10 GB sparse log took 33 s to hash
            digest = file_hash(path)
        except (ReaderError, OSError) as e:
            return self._fail(path, str(e) if isinstance(e, ReaderError) else f"{path.name}: {e.strerror or e}")
        old = self.existing(path)
        if old is not None and old.content_hash == digest and not force:
            self._clear_failure(path)
            return FileResult(str(path), "skipped", nodes=old.n_nodes, pages=old.pages)
        stage("reading")
        t = time.perf_counter()
        # The embedding model loads first, while little else is in memory (loading briefly takes
        # a few MB more than it keeps, index/embed_model.py), its blocks mapped apart from the
        # heap so that none of them stays behind as a fragment; a file that fails still loads it.
        with bounded_heap():
            getattr(self.lib.embedder, "load", lambda: None)()
        if kind == "document" and path.suffix.lower() in PDF_SUFFIXES and read is None:
            from ..readers.doc_entities import preload

            preload()  # reading a PDF takes seconds: the NER model loads meanwhile
        try:
            tree = (read or read_path)(path, ocr=ocr, asr=asr, progress=on_progress)
        except ReaderError as e:
            return self._fail(path, str(e))
        except Exception as e:  # a reader bug must not stop the batch; say what broke
            return self._fail(path, f"{path.name}: could not read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
        # Nodes hold their own text; the whole is not needed past reading (19 MB for a 5 MB text
        # with one emoji in it, which makes Python store every character in 4 bytes).
        tree.text = ""
        trim_heap()  # what the reader freed goes back to the OS (sleuth/memory.py)
        read_s = time.perf_counter() - t0  # hashing the file and the skip check are reading too
        timings["ocr"] = min(read_s, tree.timings.get("ocr", 0.0))
        timings["read"] = read_s - timings["ocr"]
        if tree.root.kind != kind:
            tree.root.kind = kind
        t = time.perf_counter()
        flat = flatten(tree.root)
        summaries = summarise_tree(tree.root)
        texts, which = [], []
        for fn in flat:
            txt = _embed_text(fn, summaries.get(id(fn.node), ""))
            if txt.strip():
                texts.append(txt)
                which.append(fn.local)
        trim_heap()  # summarising split every paragraph into sentences: ~9 MB of a 5 MB text's heap
        timings["summaries"] = time.perf_counter() - t
        return Prepared(path, st, digest, kind, old, tree, flat, summaries, texts, which, timings)

    def finish(self, group: list[Prepared], *, on_stage: Callable[[str], None] | None = None,
               on_progress: Callable[[str, float, float], None] | None = None) -> list[FileResult]:
        """Embed, find entities and store a group of prepared files: one embedding call, one
        database transaction, one lexical commit. Each file's stage seconds are its own where
        the work is per file, and its share (by nodes) of the group's shared stages."""
        from ..readers.doc_entities import add_document_entities

        stage = on_stage or (lambda s: None)
        stage("embedding")
        t = time.perf_counter()
        texts = [txt for p in group for txt in p.texts]
        kinds = [p.flat[i].node.kind for p in group for i in p.which]
        # A large file's batches add up in glibc's heap (+102 MB over a 5 MB text's 1,700
        # paragraphs, +46 MB with the heap bounded, at the same speed here); small groups keep the
        # faster unbounded heap (sleuth/memory.py)
        with bounded_heap() if len(texts) >= RELEASE_AFTER else contextlib.nullcontext():
            vecs = self.lib.embed_nodes(texts, kinds,
                                        progress=(lambda d: on_progress("nodes", d, len(texts))) if on_progress else None)
        if len(texts) >= RELEASE_AFTER:
            getattr(self.lib.embedder, "release", lambda: None)()
        at = 0
        for p in group:
            p.vecs, at = vecs[at : at + len(p.texts)], at + len(p.texts)
            p.texts = []
        del texts, kinds, vecs
        shared = {"embed": time.perf_counter() - t}
        for p in group:
            if "entities" in p.tree.timings:  # found where the file was read (index/read_process.py)
                p.timings["entities"] = p.tree.timings["entities"]
            elif p.kind == "document":
                # After embedding, not before: the embedder's batches and the NER model with the
                # mentions it finds are then never in memory at once (nothing embedded uses
                # entities). Beside it in a thread was no faster: onnxruntime keeps both cores busy.
                stage("entities")
                t = time.perf_counter()
                with bounded_heap():  # its batches go back to the OS as they are freed (sleuth/memory.py)
                    add_document_entities(p.tree)
                p.timings["entities"] = time.perf_counter() - t
        stage("storing")
        stopped = None
        sizes = [len(p.flat) for p in group]  # storing frees the trees (Ingestor._store)
        with bounded_heap():  # the same for the rows
            try:
                results = self._store(group, shared)
            except StoreStopped as e:
                stopped, results = e, e.results
        nodes = sum(sizes) or 1
        for p, r, size in zip(group, results, sizes):
            share = size / nodes
            r.timings = {k: p.timings.get(k, 0.0) + share * shared.get(k, 0.0) for k in STAGES}
            warnings = p.tree.warnings
            r.warnings = warnings[:MAX_WARNINGS] + (
                [f"{p.path.name}: {len(warnings) - MAX_WARNINGS} more warnings"] if len(warnings) > MAX_WARNINGS else []) + r.warnings
            p.tree = p.flat = p.summaries = p.vecs = None
        for r in results:
            # its own stages (a file read ahead waited meanwhile: that is not its time)
            r.seconds = sum(r.timings.values())
        trim_heap()  # the group's nodes are freed: give the pages back before the next files
        if stopped is not None:
            raise stopped
        return results

    # -- writing ---------------------------------------------------------------------------
    def _store(self, group: list[Prepared], timings: dict[str, float]) -> list[FileResult]:
        """Store the group in one transaction, then the lexical index and faiss; sets the seconds
        of the shared stages (db, commit, lexical, vectors) in ``timings``."""
        lib = self.lib
        t = time.perf_counter()
        changes = LexicalChanges()
        placed = []  # (prepared, source id, first node id)
        made = self._made_assets = []  # asset folders this group creates: gone with its transaction
        try:
            with lib.engine.begin() as conn:
                for p in group:
                    placed.append((p, *self._store_one(conn, p, changes)))
                t_rows = time.perf_counter()
                changes.rows.extend(source_rows(conn, [sid for _, sid, _ in placed]))
                lexical_s = time.perf_counter() - t_rows
                for p in group:
                    conn.execute(delete(FailureRow).where(FailureRow.path == str(p.path)))
                gen = bump_generation(conn)
                t_commit = time.perf_counter()
        except Exception as e:
            for d in made:  # rolled back: no row names them, and a half-written image may be there
                shutil.rmtree(d, ignore_errors=True)
            cause = disk_full(e, lib.home)
            if cause is None:
                raise
            raise StoreStopped(cause, [FileResult(str(p.path), "failed", f"{p.path.name}: not stored: {cause} "
                                                  f"(writing to {lib.home}); nothing of it was kept")
                                       for p in group]) from e
        # The database is committed; the lexical index and faiss follow (and are healed from the
        # database if we die here). The trees and vectors are freed first, so tantivy's writers
        # grow with nothing of the group left in memory but its rows (a 5 MB text's tree and
        # vectors were ~40 MB of the peak); faiss then takes the vectors back from the database,
        # as every other process that follows the library builds its own.
        t_lex = time.perf_counter()
        timings["db"] = t_commit - t - lexical_s
        timings["commit"] = t_lex - t_commit
        results, embedded = [], []
        for p, src_id, base in placed:
            old = p.old
            if old is not None:
                lib.vectors.remove_range(old.root_id, old.last_id)
                if old.meta.get("assets") and old.content_hash[:16] != p.digest[:16]:
                    shutil.rmtree(lib.home / old.meta["assets"], ignore_errors=True)
            results.append(FileResult(str(p.path), "updated" if old is not None else "added", nodes=len(p.flat),
                                      pages=p.tree.root.meta.get("pages")))
            embedded.append(embedded_ids(p, base))
            # what finish still reads is the warnings; the rest is in the database now
            p.vecs = p.flat = p.summaries = None
            p.tree = Stored(p.tree.warnings)
        trim_heap()  # the statements' rows, the trees and the vectors go back before tantivy's writers grow
        # an entity two files of the group mention has a row from each: the last one holds both
        rows = list({(r[0], r[3]): r for r in changes.rows}.values())
        changes.rows = []
        lexical_full = None
        try:
            lib.lexical.apply(changes.deletes, rows, gen)
        except Exception as e:
            # the files are in the database (the truth); the lexical index, left at its last
            # commit and stamp, is healed from it by the next run with room to write
            lexical_full = disk_full(e, lib.home)
            if lexical_full is None:
                raise
        finally:
            del rows
            trim_heap()  # what tantivy's writers freed (~30 MB after a 5 MB text) goes back before faiss grows
            t_vec = time.perf_counter()
            timings["lexical"] = lexical_s + t_vec - t_lex
            self._add_vectors(embedded)
            lib.vectors.generation = gen
            timings["vectors"] = time.perf_counter() - t_vec
        if lexical_full is not None:
            for p, r in zip(group, results):
                r.warnings.append(f"{p.path.name}: stored, but its words are not searchable yet ({lexical_full} "
                                  f"in {lib.home / 'lexical'}); the next `sleuth index` adds them")
            raise StoreStopped(lexical_full, results)
        return results

    def _add_vectors(self, embedded: list[dict[str, np.ndarray]]) -> None:
        """Each file's vectors, read back from the database, into its tiers' faiss indexes,
        VECTOR_CHUNK at a time (never a whole large file's at once)."""
        lib = self.lib
        for tier in ("source", "coarse", "fine"):
            lib.vectors.reserve(tier, sum(len(by_tier.get(tier, ())) for by_tier in embedded))
            for by_tier in embedded:
                ids = by_tier.get(tier)
                if ids is None:
                    continue
                for a in range(0, len(ids), VECTOR_CHUNK):
                    part = ids[a : a + VECTOR_CHUNK]
                    lib.vectors.add(tier, part, load_vectors(lib.engine, part))

    def _store_one(self, conn, p: Prepared, changes: LexicalChanges) -> tuple[int, int]:
        """One file's rows inside the group's transaction: (source id, first node id). An asset
        folder it creates is noted in ``_made_assets`` (removed if the transaction fails)."""
        lib, tree, flat, path = self.lib, p.tree, p.flat, p.path
        counts = token_counts([fn.node.text for fn in flat])
        asset_dir = None
        if tree.assets:
            asset_dir = lib.home / "assets" / p.digest[:16]
            if not asset_dir.exists():  # one that exists belongs to a stored source too
                self._made_assets.append(asset_dir)
            asset_dir.mkdir(parents=True, exist_ok=True)
            for name, data in tree.assets.items():
                (asset_dir / name).write_bytes(data)
        if p.old is not None:
            self._delete_source(conn, p.old, changes)
        base = (conn.execute(select(func.max(NodeRow.id))).scalar() or 0) + 1
        root = tree.root
        src_id = conn.execute(
            insert(SourceRow).values(
                path=str(path), name=path.name, kind=p.kind, content_hash=p.digest, size=p.st.st_size,
                mtime=p.st.st_mtime, title=root.title or path.stem, pages=root.meta.get("pages"),
                duration=root.meta.get("duration"), root_id=base, last_id=base + len(flat) - 1,
                n_nodes=len(flat), indexed_at=utcnow(),
                meta={k: v for k, v in root.meta.items() if _jsonable(v)} | {"assets": str(asset_dir.relative_to(lib.home)) if asset_dir else None,
                                                                              "warnings": tree.warnings[:20]},
            )
        ).inserted_primary_key[0]
        rows = []
        for fn, ntok in zip(flat, counts):
            n = fn.node
            summary = p.summaries.get(id(n), "")
            rows.append(dict(
                id=base + fn.local, source_id=src_id, parent_id=None if fn.parent is None else base + fn.parent,
                last_id=base + fn.last, kind=n.kind, tier=tier_of(n.kind), ordinal=fn.ordinal, depth=fn.depth,
                title=n.title or "", title_path=fn.title_path, text=n.text or "", summary=summary,
                tokens=ntok if n.text else approx_tokens(summary), page=n.page, page_end=n.meta.get("page_end"),
                bbox=list(n.bbox) if n.bbox else None, char_start=n.char_start, char_end=n.char_end,
                t_start=n.t_start, t_end=n.t_end, meta={k: v for k, v in n.meta.items() if _jsonable(v)},
            ))
            if len(rows) >= NODE_ROWS:
                conn.execute(insert(NodeRow), rows)
                rows = []
        if rows:
            conn.execute(insert(NodeRow), rows)
        which, vecs = p.which, p.vecs
        for k in range(0, len(which), NODE_ROWS):
            conn.execute(insert(EmbeddingRow), [dict(node_id=base + i, tier=tier_of(flat[i].node.kind), vec=pack(v))
                                                for i, v in zip(which[k : k + NODE_ROWS], vecs[k : k + NODE_ROWS])])
        self._store_entities(conn, tree, flat, base, src_id, changes)
        return src_id, base

    def _store_entities(self, conn, tree: Tree, flat, base: int, src_id: int, changes: LexicalChanges) -> None:
        if not tree.entities:
            return
        local = {id(fn.node): fn.local for fn in flat}
        # Entities of one file may share a normalised name ("Unit", "UNIT"): they are one row in
        # the database, so one lexical row too (its final name and aliases), not one per spelling.
        lexical: dict[int, tuple[int, str, str, str]] = {}
        for ent in tree.entities:
            norm = norm_entity(ent.name)
            if not norm:
                continue
            row = conn.execute(select(EntityRow.id, EntityRow.aliases, EntityRow.name).where(EntityRow.norm == norm)).first()
            aliases = sorted({a for a in ent.aliases if a and a != ent.name})
            if row is None:
                eid = conn.execute(insert(EntityRow).values(norm=norm, name=ent.name, kind=ent.kind, aliases=aliases,
                                                            meta={k: v for k, v in ent.meta.items() if _jsonable(v)})).inserted_primary_key[0]
                name = ent.name
            else:
                eid, name = row[0], row[2]
                merged = sorted(set(row[1] or []) | set(aliases) | ({ent.name} - {name}))
                conn.execute(EntityRow.__table__.update().where(EntityRow.id == eid).values(aliases=merged))
                aliases = merged
            lexical[eid] = entity_row(eid, name, aliases)
            ms = []
            for m in ent.mentions:
                li = local.get(id(m.node))
                if li is None:
                    continue
                ms.append(dict(entity_id=eid, node_id=base + li, source_id=src_id, modality=m.modality,
                               surface=m.surface or ent.name, t=m.t, bbox=list(m.bbox) if m.bbox else None))
                if len(ms) >= MENTION_ROWS:
                    conn.execute(insert(MentionRow), ms)
                    ms = []
            if ms:
                conn.execute(insert(MentionRow), ms)
        for eid, lex_row in lexical.items():
            changes.deletes.append((-eid, -eid))
            changes.rows.append(lex_row)

    def _delete_source(self, conn, old: SourceRow, changes: LexicalChanges) -> None:
        if old.root_id is not None:
            changes.deletes.append((old.root_id, old.last_id))
        conn.execute(delete(EmbeddingRow).where(EmbeddingRow.node_id.between(old.root_id or 0, old.last_id or -1)))
        conn.execute(delete(MentionRow).where(MentionRow.source_id == old.id))
        conn.execute(delete(NodeRow).where(NodeRow.source_id == old.id))
        conn.execute(delete(SourceRow).where(SourceRow.id == old.id))
        orphans = [r[0] for r in conn.execute(
            select(EntityRow.id).where(~EntityRow.id.in_(select(MentionRow.entity_id).distinct())))]
        if orphans:
            changes.deletes.extend((-eid, -eid) for eid in orphans)
            conn.execute(delete(EntityRow).where(EntityRow.id.in_(orphans)))

    def remove(self, src: SourceRow) -> None:
        changes = LexicalChanges()
        with self.lib.engine.begin() as conn:
            self._delete_source(conn, src, changes)
            gen = bump_generation(conn)
        self.lib.lexical.apply(changes.deletes, changes.rows, gen)
        self.lib.vectors.remove_range(src.root_id, src.last_id)
        self.lib.vectors.generation = gen
        if src.meta.get("assets") and not self._assets_shared(src):
            shutil.rmtree(self.lib.home / src.meta["assets"], ignore_errors=True)

    def _assets_shared(self, src: SourceRow) -> bool:
        """Assets live under the content hash: an identical copy indexed elsewhere uses the same folder."""
        with self.lib.Session() as s:
            return s.execute(select(func.count()).where(SourceRow.content_hash == src.content_hash,
                                                        SourceRow.id != src.id)).scalar() > 0

    def _fail(self, path: Path, reason: str) -> FileResult:
        reason = " ".join(reason.split())
        if not reason.startswith(path.name) and not reason.startswith(str(path)):
            reason = f"{path.name}: {reason}"
        try:
            with self.lib.engine.begin() as conn:
                conn.execute(delete(FailureRow).where(FailureRow.path == str(path)))
                conn.execute(insert(FailureRow).values(path=str(path), reason=reason, at=utcnow()))
        except Exception:
            pass
        return FileResult(str(path), "failed", reason)

    def _clear_failure(self, path: Path) -> None:
        try:
            with self.lib.engine.begin() as conn:
                conn.execute(delete(FailureRow).where(FailureRow.path == str(path)))
        except Exception as e:
            if disk_full(e) is None:
                raise  # on a full disk the stale failure row stays until there is room

    # -- runs ------------------------------------------------------------------------------
    def start_run(self) -> int:
        """Record a run as "running"; runs still "running" were killed (this one holds the lock)."""
        with self.lib.engine.begin() as conn:
            conn.execute(RunRow.__table__.update().where(RunRow.status == "running").values(status="killed"))
            return conn.execute(insert(RunRow).values(started=utcnow(), status="running")).inserted_primary_key[0]

    def finish_run(self, run_id: int, results: list[FileResult], seconds: float, status: str) -> None:
        c = {k: sum(r.status == k for r in results) for k in ("added", "updated", "skipped", "failed", "pruned")}
        with self.lib.engine.begin() as conn:
            conn.execute(RunRow.__table__.update().where(RunRow.id == run_id).values(
                finished=utcnow(), seconds=seconds, status=status, **c))


def token_counts(texts: list[str], chunk: int = 128) -> list[int]:
    """Word pieces per text (no special tokens), a chunk at a time and without offsets
    (``encode_batch_fast``): encodings hold strings per piece, ~100 bytes each, so 512 texts at
    once added 25 MB to the indexing of a 5 MB text."""
    from .embed import plain_tokenizer

    tok = plain_tokenizer()
    out: list[int] = []
    for i in range(0, len(texts), chunk):
        out.extend(len(e.ids) - 2 for e in tok.encode_batch_fast([t or "" for t in texts[i : i + chunk]]))
    return out


def _jsonable(v) -> bool:
    return isinstance(v, (str, int, float, bool, list, dict, type(None)))


def prune_candidates(lib, roots: list[Path]) -> list[SourceRow]:
    """Indexed sources under the given roots (or anywhere, with no roots) whose file is gone."""
    with lib.Session() as s:
        srcs = list(s.execute(select(SourceRow)).scalars())
    bases = [r.resolve() if r.is_dir() else located(r) for r in roots]  # as expand_paths stores them
    out = []
    for src in srcs:
        p = Path(src.path)
        under = not roots or any(str(p).startswith(str(r) + os.sep) or p == r for r in bases)
        if under and not p.exists():
            out.append(src)
    return out
