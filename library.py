"""``Library``: the one object behind the CLI, the agent's tools and the Python API.

    from sleuth import Library
    lib = Library(".sleuth")                 # or Library("postgresql+psycopg://…", home=".sleuth")
    lib.add(["report.pdf", "lecture.mp4"])
    lib.search("gross margin", level="fine")
    ans = lib.ask("Which quarter did margins fall?")
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import sessionmaker

from .core import Locator
from .index import navigate
from .index.embed import Embedder
from .index.ingest import (FINE_EMBED_TOKENS, GROUP_FILES, GROUP_TEXTS, FileResult, Ingestor, StoreStopped, expand_paths,
                           prune_candidates)
from .index.lexical import Lexical
from .index.lexical_sync import heal as heal_lexical
from .index.read_ahead import ReadAhead
from .index.read_process import ReaderProcess, WorkerUnavailable
from .index.schema import EmbeddingRow, EntityRow, FailureRow, NodeRow, RunRow, SourceRow
from .index.search import Searcher, locator_for, snippet
from .index.store import db_size, disk_full, get_state, make_engine, mask_url, redact_url  # noqa: F401 - the CLI imports mask_url from here
from .index.vectors import VectorStore, load_vectors
from .readers import PDF_SUFFIXES, read_path

#: seconds between saves of the faiss files during an index run (they are derived: a run killed
#: in between is reconciled from the database on the next open)
SAVE_EVERY_S = 30.0
#: files read ahead of the one being embedded (index/read_ahead.py); 0 reads each in turn
READ_AHEAD = 1


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # gone meanwhile: its failure is reported in its turn
        return 0


class LibraryBusy(RuntimeError):
    pass


class LibraryMissing(FileNotFoundError):
    """A read-only command named a library that does not exist (or whose database is gone)."""


class NotALibrary(ValueError):
    """The library path (or ``home``) names something that is not a folder, such as a file."""


class DiskFull(OSError):
    """A write to the library failed for want of room (the disk, a quota, the file-size limit).
    What was stored before stays; nothing is left half-written. ``str()`` is one line naming
    the library and the cause."""

    def __init__(self, where, cause: str, what: str = ""):
        super().__init__(errno.ENOSPC, f"{cause}; {what}" if what else cause, str(where))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _folder(path: Path, given, what: str) -> Path:
    """``path`` unless something other than a folder is there (the OS's own error named neither
    the path as given nor what was wrong with it)."""
    if path.exists() and not path.is_dir():
        kind = "a file" if path.is_file() else "not a folder"
        raise NotALibrary(f"{given}: is {kind}, not {what}")
    return path


@dataclass
class IndexReport:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    cancelled: bool = False
    #: why the run stopped before the end (a full disk), or ""; the failed file's reason says it too
    stopped: str = ""

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    def to_dict(self) -> dict:
        return {"seconds": round(self.seconds, 3), "cancelled": self.cancelled, "stopped": self.stopped,
                "counts": {k: self.count(k) for k in ("added", "updated", "skipped", "failed", "pruned")},
                "files": [asdict(r) for r in self.results]}


class Library:
    """A library of indexed documents and videos: a database (the truth) plus derived faiss and
    tantivy indexes in a folder.

    The API, all returning JSON-serialisable data (see CONTRIBUTING.md "Contracts"):

    - building: :meth:`add`, :meth:`remove`, :meth:`close` (also a context manager);
    - the tool grammar: :meth:`search`, :meth:`read`, :meth:`outline`, :meth:`entity`, :meth:`look`;
    - contents: :meth:`sources`, :meth:`find_source`, :meth:`get_node`, :meth:`status`, :meth:`failures`;
    - answers: :meth:`ask`.

    ``home`` (the folder), ``url`` (the database; show it with ``redact_url``), ``read_only``
    and ``full`` (the cause, when it was opened read-only for want of room) are public. The rest (``engine``,
    ``Session``, ``lexical``, ``vectors``, ``embedder``, ``searcher`` and the row
    helpers ``fetch_nodes``, ``node_dict``, ``locator``, ``neighbours_many``, ``embed_*``) are the
    collaborators ``index/`` and ``agent/`` work through: internal, may change.
    """

    def __init__(self, location: str | os.PathLike = ".sleuth", *, home: str | os.PathLike | None = None,
                 embedder: Embedder | None = None, create: bool = True, read_only: bool | None = None):
        """``create=False`` (read-only commands): a missing library, or a folder whose
        library.db was deleted, raises LibraryMissing instead of becoming a new empty library.

        ``read_only``: ``True`` opens an existing library without writing anything to its
        folder (searches, reads and listings work; :meth:`add` and :meth:`remove` raise
        PermissionError); ``None`` (the default) does so when the folder or its database cannot
        be written (a read-only mount, a folder made read-only); ``False`` never does.

        A path (or ``home``) that is a file raises NotALibrary."""
        loc = str(location)
        if "://" in loc:
            self.url = loc
            self.home = _folder(Path(home or ".sleuth").resolve(), home or ".sleuth", "a folder for the library's indexes")
            self.read_only = bool(read_only)
        else:
            self.home = _folder(Path(loc).resolve(), loc, "a library folder")
            self.url = f"sqlite:///{self.home / 'library.db'}"
            db = self.home / "library.db"
            if (not create or read_only) and not db.is_file():
                what = "no library.db in it" if self.home.is_dir() else "no such folder"
                raise LibraryMissing(f"{self.home}: not a sleuth library ({what}); `sleuth index` creates one")
            if read_only is None:
                self.read_only = db.is_file() and not all(os.access(p, os.W_OK) for p in (self.home, db)
                                                          if p.exists())
            else:
                self.read_only = read_only
        #: why this library was opened read-only for want of room (a full disk), or None
        self.full: str | None = None
        if not self.read_only:
            self.home.mkdir(parents=True, exist_ok=True)
        engine = None
        existed = "://" in loc or (self.home / "library.db").is_file()
        try:
            engine = make_engine(self.url, read_only=self.read_only, lock_dir=None if self.read_only else self.home)
            get_state(engine, "generation", "0")  # SQLite makes its -shm file at the first read
            self.engine = engine
        except Exception as e:
            # SQLite cannot open a WAL database for writing without room for its -shm file;
            # reading needs none: a full disk leaves the library readable
            self.full = None if self.read_only else disk_full(e, self.home)
            if self.full is None:
                raise
            if engine is not None:
                engine.dispose()
            if not existed:
                raise DiskFull(self.home, self.full, "no library can be created there") from e
            logging.getLogger("sleuth").warning("%s: %s; opened read-only until there is room", self.home, self.full)
            self.read_only = True
            self.engine = make_engine(self.url, read_only=True)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        # Reads outside any transaction: on PostgreSQL a Session costs BEGIN and, when the pool
        # takes the connection back, ROLLBACK, two round trips around each one-statement read
        self._reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        try:
            # a folder that is only full can still be opened in place (tantivy's lock files are empty)
            self.lexical = Lexical(self.home / "lexical", read_only=self.read_only and self.full is None)
            self.vectors = VectorStore(self.home / "vectors")
        except Exception as e:  # a library whose index folders are not there yet, on a full disk
            cause = disk_full(e, self.home)
            if cause is None:
                raise
            self.engine.dispose()
            raise DiskFull(self.home, cause, "its indexes cannot be opened; free some space") from e
        self.vectors.loader = lambda ids: load_vectors(self.engine, ids)
        self.embedder = embedder or Embedder()
        self.searcher = Searcher(self)
        self._ingestor = Ingestor(self)
        self._refresh_lock = threading.Lock()
        #: seconds a check of the database's generation stands for the searches after it; 0 (the
        #: default): every search checks. ``sleuth serve`` sets its follower's period: the
        #: follower checks that often anyway, and the check cost each request a database round
        #: trip (serve/follow.py)
        self.refresh_every = 0.0
        self._checked = -float("inf")
        self._qcache: dict[str, np.ndarray] = {}
        self._heal_if_free()
        self.refresh()

    # -- derived indexes -------------------------------------------------------------------
    def refresh(self, force: bool = True) -> None:
        """Bring the faiss indexes in step with the database (cheap when nothing changed).
        ``force=False`` (searches): skip the database when it was checked less than
        ``refresh_every`` seconds ago."""
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_every:
            self.lexical.refresh()
            return
        self._checked = now
        gen = int(get_state(self._reads, "generation", "0"))
        if gen != self.vectors.generation:
            with self._refresh_lock:
                self.vectors.reconcile(self.engine, gen)
        self.lexical.refresh()

    def _heal_if_free(self) -> None:
        """On open: heal the lexical index if a run was killed between its database commit and
        the lexical commit, unless an index run holds the library (it heals when it starts).
        On a full disk the index is searched as it is, and healed once there is room."""
        if self.read_only or self.lexical.generation() == int(get_state(self.engine, "generation", "0")):
            return
        try:
            with self.write_lock():
                heal_lexical(self)
        except LibraryBusy:
            pass
        except Exception as e:
            cause = disk_full(e, self.home)
            if cause is None:
                raise
            logging.getLogger("sleuth").warning("%s: the word index is behind the database (%s); it is brought up "
                                                "to date once there is room", self.home, cause)

    def embed_nodes(self, texts: list[str], kinds: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Paragraph-like nodes are embedded from their first FINE_EMBED_TOKENS word pieces (the
        lexical index holds all their words); sections, sources and video segments use 128.
        ``progress(n_done)`` counts texts embedded so far."""
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        fine = [i for i, k in enumerate(kinds) if k in ("paragraph", "table", "figure", "row")]
        other = [i for i, k in enumerate(kinds) if k not in ("paragraph", "table", "figure", "row")]
        kw = {}
        if fine:
            if progress:
                kw = {"progress": progress}
            out[fine] = self.embedder.encode([texts[i] for i in fine], max_length=FINE_EMBED_TOKENS, **kw)
        if other:
            if progress:
                kw = {"progress": lambda d: progress(len(fine) + d)}
            out[other] = self.embedder.encode([texts[i] for i in other], **kw)
        return out

    def embed_query(self, query: str) -> np.ndarray:
        """The query's vector (the last 256 queries are cached: the agent repeats itself)."""
        v = self._qcache.get(query)
        if v is None:
            enc = getattr(self.embedder, "encode_query", self.embedder.encode)  # embedders given by callers may lack it
            v = enc([query])[0]
            if len(self._qcache) > 256:
                self._qcache.clear()
            self._qcache[query] = v
        return v

    # -- indexing --------------------------------------------------------------------------
    def _if_room(self, step, what: str) -> str | None:
        """Run ``step()``; on a full disk say so in one logged line and return the cause (a step
        whose work the next open redoes from the database: saving faiss, closing the writer)."""
        try:
            step()
        except Exception as e:
            cause = disk_full(e, self.home)
            if cause is None:
                raise
            logging.getLogger("sleuth").warning("%s: %s was not saved (%s); it is rebuilt from the database on the next open",
                                                self.home, what, cause)
            return cause
        return None

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
            on_result: Callable[[FileResult], None] | None = None, ray: bool | str | None = None) -> IndexReport:
        """Index files and folders; returns an IndexReport.

        ``progress(event, path, done, total)``: ``start`` and ``done`` events count files
        (``done`` of ``total``); ``stage:<name>`` names the stage a file is in; ``within:<unit>``
        counts work inside the current file (``pages``, ``s frames`` … seconds of video,
        ``nodes`` embedded), ``done`` of ``total`` in that unit.

        Files are taken smallest first (the report keeps the given order). The next file is read
        in a thread while the previous ones are embedded and stored (index/read_ahead.py), a PDF
        in a reader process that also finds its entities (index/read_process.py): ``start``,
        ``stage:reading`` and ``within:pages`` events come from that thread, the others and
        ``on_result`` from the caller's. Small files are stored in groups (index/ingest.py
        ``GROUP_FILES``), one transaction each.

        Ctrl-C between or during files stops cleanly: committed files stay, the files in flight
        are rolled back, and the next run picks up where this one stopped. Bad ``ocr``/``asr``
        values raise ValueError before any work.

        ``ray``: read, OCR, transcribe, find entities and embed on a Ray cluster (its address, or
        ``True`` for a local instance started for this run) and store here as above; every node
        must see the files at the same path (index/ray_ingest.py). ``RayUnavailable`` (a
        RuntimeError) when it cannot be reached.

        A full disk (or quota, or file-size limit) stops the run the same way: the files being
        stored get a result naming the file and the cause (``failed``, nothing of them kept; or
        stored, with a warning when only their lexical rows could not be written, which the next
        run adds), the last of them saying how many files were not attempted; ``report.stopped``
        holds the cause. What was stored before stays and the library stays readable. When there
        is no room even to begin, DiskFull is raised. A read-only library raises PermissionError.
        """
        from .readers import check_modes
        from .readers.doc_entities import preload as preload_ner

        ocr, asr = check_modes(ocr, asr)
        if self.full:
            raise DiskFull(self.home, self.full, "nothing was indexed; free some space and run it again")
        if self.read_only:
            raise PermissionError(f"{self.home}: library is read-only (opened read-only, or its folder cannot be written)")
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        t0 = time.perf_counter()
        report = IndexReport()
        files, missing = expand_paths(list(paths))
        report.results.extend(missing)
        for r in missing:
            on_result and on_result(r)
        with self.write_lock():
            try:
                heal_lexical(self)
                self.refresh()
                run_id = self._ingestor.start_run()
            except Exception as e:
                cause = disk_full(e, self.home)
                if cause is None:
                    raise
                raise DiskFull(self.home, cause, "nothing was indexed; free some space and run it again") from e
            status = "done"
            reader = None
            try:
                finished = 0
                group: list = []
                pending = 0  # texts in the group
                saved = time.perf_counter()

                def report_done(res: FileResult, f) -> None:
                    nonlocal finished
                    finished += 1
                    report.results.append(res)
                    on_result and on_result(res)
                    progress and progress("done", str(f), finished, len(files))

                def flush() -> None:
                    nonlocal saved, pending, status
                    if not group:
                        return
                    stage = (lambda st, f=group[-1].path: progress("stage:" + st, str(f), finished, len(files))) if progress else None
                    within = (lambda unit, d, t, f=group[-1].path: progress("within:" + unit, str(f), d, t)) if progress else None
                    try:
                        results = finish(group, on_stage=stage, on_progress=within)
                    except StoreStopped as e:
                        # a full disk fails every file after this one too: stop, and say so once
                        results, report.stopped, status = e.results, e.cause, "disk full"
                        left = len(files) - finished - len(results)
                        note = f"indexing stopped ({e.cause}): {left} more file{'s' * (left != 1)} not attempted" if left else ""
                        last = results[-1]
                        if note and last.status == "failed":
                            last.reason += f"; {note}"
                        elif note:
                            last.warnings.append(f"{Path(last.path).name}: {note}")
                    for p, res in zip(group, results):
                        report_done(res, p.path)
                    group.clear()
                    pending = 0
                    # faiss is derived (reconciled from the database on open): saved now and
                    # then, not after every small file (each save writes the whole index)
                    if not report.stopped and self.vectors.dirty and time.perf_counter() - saved > SAVE_EVERY_S:
                        self._if_room(lambda: self.vectors.save(self.vectors.generation), "the vector index")
                        saved = time.perf_counter()

                def prepare(n: int, f: Path):
                    progress and progress("start", str(f), n, len(files))

                    def within(unit, d, t):
                        ahead.check()  # the run stopped: the reading thread stops at the next page
                        progress and progress("within:" + unit, str(f), d, t)

                    return self._ingestor.prepare(
                        f, force=force, ocr=ocr, asr=asr, on_progress=within, read=read,
                        on_stage=(lambda st: progress("stage:" + st, str(f), n, len(files))) if progress else None)

                in_process = READ_AHEAD <= 0

                def read(path: Path, **kw):
                    nonlocal in_process
                    if path.suffix.lower() in PDF_SUFFIXES:
                        if not in_process:
                            try:
                                return reader.read(path, check=ahead.check, **kw)
                            except WorkerUnavailable as e:  # e.g. an interpreter that cannot run -m sleuth…
                                logging.getLogger("sleuth").warning("%s; PDFs are read in this process", e)
                                in_process = True
                        preload_ner()  # reading a PDF takes seconds: the NER model loads meanwhile
                    return read_path(path, **kw)

                if ray is None or ray is False:
                    reader = ReaderProcess()
                    source, finish = ReadAhead(sorted(files, key=_size), prepare, depth=READ_AHEAD), self._ingestor.finish
                else:  # read and embedded on the cluster, stored here as above
                    from .index.ray_ingest import RayIngest

                    source = RayIngest(self, sorted(files, key=_size), address=ray, force=force, ocr=ocr, asr=asr,
                                       progress=progress)
                    finish = source.finish
                # Smallest first: the reading process has the next file ready sooner, and the
                # largest file is embedded last, alone, on both cores (real filings: 7.5 -> 8.6
                # pages/s, docs/ingest.md). The report keeps the order the files were given in.
                given = {f: i for i, f in enumerate(files)}
                with source as ahead:
                    for f, p in ahead:
                        if isinstance(p, FileResult):  # skipped or failed: nothing to store
                            report_done(p, f)
                            continue
                        group.append(p)
                        pending += len(p.texts)
                        if pending >= GROUP_TEXTS or len(group) >= GROUP_FILES:
                            flush()
                            if report.stopped:
                                break
                    if not report.stopped:
                        flush()
                if reader is not None:
                    reader.close()
                first = len(report.results) - finished
                report.results[first:] = sorted(report.results[first:], key=lambda r: given.get(Path(r.path), -1))
                if prune and not report.stopped:
                    for src in prune_candidates(self, [Path(p) for p in paths]):
                        self._ingestor.remove(src)
                        r = FileResult(src.path, "pruned", "file no longer exists")
                        report.results.append(r)
                        on_result and on_result(r)
            except KeyboardInterrupt:
                report.cancelled, status = True, "cancelled"
                raise
            finally:
                if reader is not None:
                    reader.close()
                # on a full disk these fail too: the database already holds what they would
                # write, and the next open rebuilds it from there
                self._if_room(self.lexical.close_writer, "the word index")
                if self.vectors.dirty:
                    self._if_room(lambda: self.vectors.save(self.vectors.generation), "the vector index")
                report.seconds = time.perf_counter() - t0
                self._if_room(lambda: self._ingestor.finish_run(run_id, report.results, report.seconds, status),
                              "the run's record")
        return report

    def find_source(self, name_or_path: str) -> dict:
        """The indexed source with this path, or this file name when only one has it.

        KeyError when none matches; ValueError (naming the candidates) when a bare name
        matches several files, so a removal never picks one at random.
        """
        path = str(Path(name_or_path).expanduser().resolve())
        with self.Session() as s:
            rows = s.execute(select(SourceRow).where((SourceRow.path == path) | (SourceRow.name == str(name_or_path)))
                             .order_by(SourceRow.path)).scalars().all()
        exact = [r for r in rows if r.path == path]
        if exact:
            rows = exact
        if not rows:
            raise KeyError(f"{name_or_path}: not in the library")
        if len(rows) > 1:
            raise ValueError(f"{name_or_path}: {len(rows)} indexed files have this name ({', '.join(r.path for r in rows)}); give the path")
        return _source_dict(rows[0])

    def remove(self, name_or_path: str) -> bool:
        """Drop one source (by path, or by a file name only one source has) and everything derived
        from it. False when nothing matches; ValueError when a name is ambiguous; LibraryBusy while an
        index run holds the library; PermissionError for a read-only library."""
        try:
            src = self.find_source(name_or_path)
        except KeyError:
            return False
        if self.full:
            raise DiskFull(self.home, self.full, f"{src['name']} not removed; free some space and run it again")
        if self.read_only:
            raise PermissionError(f"{self.home}: library is read-only (opened read-only, or its folder cannot be written)")
        with self.write_lock():
            try:
                heal_lexical(self)
                with self.Session() as s:
                    row = s.get(SourceRow, src["id"])
                if row is None:  # removed by someone else meanwhile
                    return False
                try:
                    self._ingestor.remove(row)
                finally:
                    self._if_room(self.lexical.close_writer, "the word index")
            except Exception as e:
                cause = disk_full(e, self.home)
                if cause is None:
                    raise
                raise DiskFull(self.home, cause, f"{src['name']} not removed; free some space and run it again") from e
            self._if_room(lambda: self.vectors.save(self.vectors.generation), "the vector index")
        return True

    # -- node views ------------------------------------------------------------------------
    @contextmanager
    def reading(self):
        """A pooled connection for a request's reads, each statement on its own (autocommit):
        :meth:`fetch_nodes` and :meth:`neighbours_many` given it share one checkout."""
        with self._reads.connect() as conn:
            yield conn

    def fetch_nodes(self, ids: list[int], conn=None) -> dict[int, tuple[NodeRow, SourceRow]]:
        """Rows of the given node ids with their sources, in one query (missing ids are absent).

        The rows are plain objects with the columns of NodeRow and SourceRow as attributes, read
        without the ORM: through sessions, this and :meth:`neighbours_many` cost a search 5.9 ms
        of CPU on PostgreSQL, now 1.4 ms. ``conn``: a connection from :meth:`reading` to use."""
        ids = [i for i in ids if navigate.valid_id(i)]  # a database integer is 64-bit: larger ids match nothing
        if not ids:
            return {}
        if conn is None:
            with self.reading() as c:
                return self.fetch_nodes(ids, c)
        rows = conn.execute(_FETCH, {"ids": ids}).all()
        out = {}
        for r in rows:
            node = SimpleNamespace(**dict(zip(_NODE_KEYS, r[:_N_NODE])))
            out[node.id] = (node, SimpleNamespace(**dict(zip(_SOURCE_KEYS, r[_N_NODE:]))))
        return out

    def _scene_ordinal(self, node: NodeRow) -> int | None:
        if node.kind != "segment" or node.parent_id is None:
            return None
        with self.Session() as s:
            p = s.get(NodeRow, node.parent_id)
        return p.ordinal if p is not None and p.kind == "scene" else None

    def locator(self, node: NodeRow, src: SourceRow) -> Locator:
        """Where a node sits: page and box, or time span, with its section path or scene."""
        return locator_for(node, src, self._scene_ordinal(node), self.home)

    def node_dict(self, node: NodeRow, src: SourceRow, terms: list[str] | None = None, full: bool = False) -> dict:
        """A node as the tools show it (snippet around ``terms``, locator, label); ``full`` adds its
        text, summary, parent and metadata."""
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
        """One node with its text, summary, parent id and locator; KeyError for an unknown id."""
        r = self.fetch_nodes([int(node_id)]).get(int(node_id)) if navigate.valid_id(node_id) else None
        if r is None:
            raise KeyError(f"no node {node_id}")
        return self.node_dict(*r, full=True)

    def neighbours(self, node: NodeRow) -> list[dict]:
        """± one sibling of the node (see :meth:`neighbours_many`)."""
        return self.neighbours_many([node])[node.id]

    def neighbours_many(self, nodes: list[NodeRow], conn=None) -> dict[int, list[dict]]:
        """± one sibling of each node (same parent and tier), in one query (on ``conn``, a
        connection from :meth:`reading`, when given)."""
        out: dict[int, list[dict]] = {n.id: [] for n in nodes}
        parents = {n.parent_id for n in nodes if n.parent_id is not None}
        if not parents:
            return out
        want = {(n.parent_id, n.tier, n.ordinal + d): (n, d) for n in nodes if n.parent_id is not None for d in (-1, 1)}
        ords = {o for _, _, o in want}
        if conn is None:
            with self.reading() as c:
                return self.neighbours_many(nodes, c)
        rows = conn.execute(_NEIGHBOURS, {"parents": sorted(parents), "ords": sorted(ords)}).all()
        for rid, kind, pid, tier, ordinal, body in sorted(rows, key=lambda r: r[4]):
            hit = want.get((pid, tier, ordinal))
            if hit is not None:
                n, d = hit
                out[n.id].append({"id": rid, "kind": kind, "rel": "prev" if d < 0 else "next", "snippet": navigate.clip(body or "", 160)})
        return out

    # -- the tool grammar ------------------------------------------------------------------
    def search(self, query: str, level: str = "any", within=None, k: int = 8) -> list[dict]:
        """Located search: the ``k`` best nodes for ``query``, dense and BM25 ranks fused.

        ``level``: ``any``, ``source``, ``coarse``, ``fine``, ``entity`` or a node kind
        (``section``, ``paragraph``, ``scene``, ``segment`` …). ``within``: a node id or a source
        name to search under. Each hit: ``id``, ``kind``, ``source``, ``title_path``, ``snippet``,
        ``score``, ``locator`` (page and box, or time span), ``label`` and ``neighbours``; at
        ``level="entity"`` hits are entity cards with located mentions. ``k`` is a whole number
        of at least 1 (ValueError otherwise); more than ``MAX_K`` (1000) is taken as ``MAX_K``.
        See :class:`sleuth.index.search.Searcher`.
        """
        return self.searcher.search(query, level=level, within=within, k=k)

    def read(self, node_id: int, start=None, end=None, max_tokens: int = 800) -> dict:
        """Contiguous, in-order content under a node, with a cursor to continue.

        Documents: the paragraphs/tables/figures of the subtree; ``start``/``end`` index them.
        Videos: speech, on-screen text and keyframe notes between ``start`` and ``end`` seconds.
        See :func:`sleuth.index.navigate.read`.
        """
        return navigate.read(self, node_id, start=start, end=end, max_tokens=max_tokens)

    def outline(self, node_id: int | None = None, depth: int = 2, cursor: str | None = None,
                max_tokens: int = 1500) -> dict:
        """The structure (sources, sections, scenes) under a node, or of the whole library, paged
        under a token budget; pass the returned ``cursor`` back for more."""
        return navigate.outline(self, node_id, depth=depth, cursor=cursor, max_tokens=max_tokens)

    def entity(self, name_or_id, max_mentions: int = 50) -> dict:
        """An entity card (by id or name) and up to ``max_mentions`` located mentions across text,
        speech and screen."""
        return navigate.entity(self, name_or_id, max_mentions=max_mentions)

    def look(self, node_or_time) -> dict:
        """Frame-level detail at a moment of a video (keyframe, on-screen text, speech) or a document
        node's page, box and text: ``look(node_id)``, ``look("talk.mp4@75.5")`` or
        ``look({"source": "talk.mp4", "t": 75.5})``."""
        return navigate.look(self, node_or_time)

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
        """Counts per source kind, tier and node kind, entities, vectors, bytes on disk, the last
        index run and the 20 most recent failures."""
        with self.Session() as s:
            kinds = dict(s.execute(select(NodeRow.kind, func.count()).group_by(NodeRow.kind)).all())
            tiers = dict(s.execute(select(NodeRow.tier, func.count()).group_by(NodeRow.tier)).all())
            sources = dict(s.execute(select(SourceRow.kind, func.count()).group_by(SourceRow.kind)).all())
            n_ent = s.execute(select(func.count()).select_from(EntityRow)).scalar()
            n_emb = s.execute(select(func.count()).select_from(EmbeddingRow)).scalar()
            last = s.execute(select(RunRow).order_by(RunRow.id.desc()).limit(1)).scalars().first()
            fails = s.execute(select(FailureRow).order_by(FailureRow.at.desc()).limit(20)).scalars().all()
        vec_bytes = sum(p.stat().st_size for p in (self.home / "vectors").glob("*.faiss"))
        lex_bytes = sum(p.stat().st_size for p in (self.home / "lexical").rglob("*") if p.is_file())  # docs/ too
        return {
            "library": str(self.home), "database": redact_url(self.url).split("@")[-1], "read_only": self.read_only,
            "sources": sources, "tiers": tiers, "kinds": kinds, "entities": int(n_ent or 0), "embeddings": int(n_emb or 0),
            "vectors": {t: self.vectors.count(t) for t in ("source", "coarse", "fine")},
            "bytes": {"database": db_size(self.engine, self.home), "vectors": vec_bytes, "lexical": lex_bytes},
            "last_run": None if last is None else {
                "started": last.started.isoformat(), "seconds": round(last.seconds or 0, 2),
                # a run is recorded "running" when it starts; if no process holds the lock it died
                "status": "killed" if last.status == "running" and self._index_lock_free() else last.status,
                "added": last.added, "updated": last.updated, "skipped": last.skipped, "failed": last.failed, "pruned": last.pruned},
            "failures": [{"path": f.path, "reason": f.reason} for f in fails],
        }

    def sources(self, check_files: bool = False) -> list[dict]:
        """The indexed documents and videos, by name: id, name, path, kind, title, pages, duration
        (seconds), nodes, root_id, indexed_at (ISO time).

        ``check_files`` adds ``status``: ``indexed`` (the file is as indexed), ``modified`` (its
        size or time differs; the next ``add`` re-reads it if its content changed), ``missing`` (the file is gone) or
        ``failed`` (its latest version could not be read; this one stays searchable), and
        ``reason`` for a failure.
        """
        with self.Session() as s:
            rows = s.execute(select(SourceRow).order_by(SourceRow.name, SourceRow.path)).scalars().all()
            fails = dict(s.execute(select(FailureRow.path, FailureRow.reason)).all()) if check_files else {}
        out = [_source_dict(r) for r in rows]
        if check_files:
            for d, r in zip(out, rows):
                d["status"], d["reason"] = _file_status(r, fails.get(r.path))
        return out

    def failures(self) -> list[dict]:
        """Files whose latest read failed: path, reason and when (ISO time), newest first."""
        with self.Session() as s:
            rows = s.execute(select(FailureRow).order_by(FailureRow.at.desc())).scalars().all()
        return [{"path": f.path, "reason": f.reason, "at": f.at.isoformat() if f.at else None} for f in rows]

    def ask(self, question: str, **kwargs: Any):
        """Answer with the agent graph; see :func:`sleuth.agent.ask`."""
        from .agent import ask as _ask

        return _ask(self, question, **kwargs)

    def close(self) -> None:
        """Commit what the derived indexes hold and release the database (on a full disk the
        faiss files stay as they were: the next open brings them up to date)."""
        self._if_room(self.lexical.close_writer, "the word index")
        if self.vectors.dirty and not self.read_only:
            self._if_room(lambda: self.vectors.save(self.vectors.generation), "the vector index")
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Library({str(self.home)!r}, database={redact_url(self.url)!r}, read_only={self.read_only})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_NODE_KEYS = tuple(c.key for c in NodeRow.__table__.columns)
_SOURCE_KEYS = tuple(c.key for c in SourceRow.__table__.columns)
_N_NODE = len(_NODE_KEYS)
# built once: the statement's compiled form is then found in SQLAlchemy's cache by identity
_FETCH = (select(*NodeRow.__table__.columns, *SourceRow.__table__.columns)
          .join_from(NodeRow.__table__, SourceRow.__table__, SourceRow.id == NodeRow.source_id)
          .where(NodeRow.id.in_(bindparam("ids", expanding=True))))
_NEIGHBOURS = (select(NodeRow.id, NodeRow.kind, NodeRow.parent_id, NodeRow.tier, NodeRow.ordinal,
                      func.substr(func.coalesce(func.nullif(NodeRow.text, ""), NodeRow.summary, NodeRow.title), 1, 400))
               .where(NodeRow.parent_id.in_(bindparam("parents", expanding=True)),
                      NodeRow.ordinal.in_(bindparam("ords", expanding=True))))


def _source_dict(r: SourceRow) -> dict:
    return {"id": r.id, "name": r.name, "path": r.path, "kind": r.kind, "title": r.title, "pages": r.pages,
            "duration": r.duration, "nodes": r.n_nodes, "root_id": r.root_id,
            "indexed_at": r.indexed_at.isoformat() if r.indexed_at else None}


def _file_status(r: SourceRow, failure: str | None) -> tuple[str, str | None]:
    if failure:
        return "failed", failure
    try:
        st = os.stat(r.path)
    except OSError:
        return "missing", None
    # size and time, not the content hash: listing must not read every file (add hashes)
    if st.st_size != r.size or abs(st.st_mtime - (r.mtime or 0)) > 1e-3:
        return "modified", None
    return "indexed", None
