"""Indexing on a Ray cluster: ``sleuth index PATHS --ray [ADDRESS]``, ``Library.add(paths, ray=...)``.

What runs where. Each file is read (PDF, text, HTML, video: OCR and speech recognition
included), its named entities found and its nodes summarised by a Ray task, :func:`read_file`,
which is :meth:`Ingestor.prepare` itself with the database left out. Each *group* of files is
embedded by another task, :func:`embed_group` (``Library.embed_nodes``). What they return comes
back to the one writer, this process, which stores each group with :meth:`Ingestor.finish`: the
same transactions, lexical commit and faiss update as an index run in one process, so a run stays
resumable and kill-safe and a file is never stored twice.

Same library as in one process. Groups are formed exactly as :meth:`sleuth.Library.add` forms
them (smallest file first; ``GROUP_TEXTS``, ``GROUP_FILES``), so the embedding batches are the
same and so are the vectors, to the bit: the int8 model quantises its activations per batch, so a
file embedded alone would get slightly different ones. The results are taken in that order; a
slow file holds back the storing of those after it, never their reading.

Bounds. At most ``IN_FLIGHT_PER_CPU`` read tasks per CPU of the cluster run or wait to run, at most
``WAITING_PER_CPU`` per CPU are submitted and not yet taken (finished ones wait in the object
store), and while ``IN_FLIGHT_PER_CPU`` per CPU groups wait for their embedding no more results are
taken: a 10,000-file batch holds a few files per CPU at a time, not all.

Failures. A worker process that dies (a crash in PDFium, the OOM killer) takes its task with it;
Ray runs the task again (``MAX_RETRIES``) in a new worker. A file that fails to read gets the line
it gets in one process (prepare's messages); one whose worker dies every time gets one line too,
and the rest of the batch lands. Leaving early (Ctrl-C, an error, a full disk) cancels the tasks
in flight; what was stored stays.

Models (embedding, NER, OCR, speech) are cached per process by their modules, and Ray keeps its
worker processes across tasks: each loads once per worker process, not once per task.

Files are read by path: every node must see them at the same absolute path (a shared
filesystem), with sleuth and its models installed. A process already connected to Ray
(``ray.init`` called by the caller) is used as it is, whatever the address. Ray is imported only
here, and only when a run asks for it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from . import ingest
from .ingest import FileResult, Ingestor, Prepared

#: read tasks per CPU of the cluster submitted and not yet finished: enough that no worker waits
#: for its next file while the writer stores
IN_FLIGHT_PER_CPU = 2
#: read results per CPU waiting in the object store for the writer, which takes them in order:
#: past one slow file the workers go on with the next ones, and a 10,000-file batch still holds
#: a few files at a time (measured: with 2 per CPU for both, two workers idled 19% of the run)
WAITING_PER_CPU = 6
#: times a task runs again after its worker process died on it
MAX_RETRIES = 2
#: seconds between two progress messages a task sends about its file
PROGRESS_EVERY_S = 0.25
#: seconds the writer waits for the next result before it looks at progress again
POLL_S = 0.2


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached (one line)."""


def local_address(address) -> bool:
    """Whether ``address`` asks for a Ray instance started for this run (``--ray`` alone)."""
    return address is True or address in ("", "local")


def connect(address) -> bool:
    """Connect this process to Ray (a new local instance for ``True``/``"local"``); True when this
    call connected it (and :func:`disconnect` should end it), False when it already was."""
    try:
        import ray
    except ImportError as e:
        raise RayUnavailable(f"--ray needs the ray package ({e}); install sleuth's dependencies") from e
    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if local_address(address):
        # its workers import what this process imports (a checkout put on sys.path included)
        kw.update(address="local", include_dashboard=False,
                  runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}})
    else:
        kw["address"] = str(address)
        _reachable(str(address))
    try:
        ray.init(**kw)
    except Exception as e:
        msg = str(e).strip().splitlines()
        where = "a local Ray instance" if local_address(address) else f"the Ray cluster at {address}"
        raise RayUnavailable(f"cannot start or reach {where} ({type(e).__name__}: {msg[0] if msg else ''})") from e
    return True


def _reachable(address: str, timeout: float = 10.0) -> None:
    """Fail in one line when nothing listens at ``host:port``: ray.init retries such an address
    for ever."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", ray://…: Ray's own resolution
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address} ({e.strerror or e})") from e


# -- on the workers ---------------------------------------------------------------------------

class _NoDatabase(Ingestor):
    """:meth:`Ingestor.prepare` on a worker: the writer owns the database, so the file's indexed
    hash comes with the task, and a failure or a skip goes back to the writer to record."""

    def __init__(self, old_hash: str | None):
        super().__init__(SimpleNamespace(embedder=None))  # the embedding is a task of its own
        self.old_hash = old_hash

    def existing(self, path: Path):
        return None if self.old_hash is None else SimpleNamespace(content_hash=self.old_hash, n_nodes=None, pages=None)

    def _fail(self, path: Path, reason: str) -> FileResult:
        return FileResult(str(path), "failed", reason)

    def _clear_failure(self, path: Path) -> None:
        pass


def _read(path: Path, *, ocr: str, asr: str, progress=None):
    """Read a file and, for a document, find its entities (what the reader process does)."""
    from .read_process import read_one

    return read_one(str(path), ocr, asr, progress or (lambda *a: None))


class _Notes:
    """Progress events of one task, sent to the writer's mailbox (:class:`_Mailbox`)."""

    def __init__(self, box, path: str):
        self.box, self.path, self.last = box, path, 0.0

    def __call__(self, event: str, done: float, total: float, *, often: bool = False) -> None:
        if self.box is None:
            return
        now = time.perf_counter()
        if often and now - self.last < PROGRESS_EVERY_S and done < total:
            return
        self.last = now
        self.box.note.remote(event, self.path, done, total)


def read_file(path: str, old_hash: str | None, force: bool, ocr: str, asr: str, box, n: int, total: int):
    """The Ray task for one file: :meth:`Ingestor.prepare` (read, OCR, speech, entities,
    summaries). A :class:`FileResult` when the file is unchanged or fails, else its
    :class:`Prepared` with ``summaries`` as a list by node (ids do not survive pickling)."""
    note = _Notes(box, path)
    note("start", n, total)
    p = _NoDatabase(old_hash).prepare(
        Path(path), force=force, ocr=ocr, asr=asr, read=_read,
        on_stage=lambda st: note("stage:" + st, n, total),
        on_progress=lambda unit, d, t: note("within:" + unit, d, t, often=True))
    if isinstance(p, Prepared):
        p.summaries = [p.summaries.get(id(fn.node), "") for fn in p.flat]
        p.old = None  # the writer looks it up
    return p


_embedders: dict[tuple, Any] = {}


def _worker_embedder(spec):
    """The writer's embedder, as this worker runs it: a sleuth Embedder on the CPUs Ray gave the
    task (not every core of the machine: 1 by default), kept for the worker's next tasks."""
    from .embed import Embedder

    if not isinstance(spec, Embedder):
        return spec  # a caller's own embedder, as it was pickled
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    threads = max(1, min(int(cpus), len(os.sched_getaffinity(0))))
    key = (type(spec), spec.max_length, spec.batch_size, spec.int8, threads)
    if key not in _embedders:
        _embedders[key] = type(spec)(spec.max_length, spec.batch_size, threads=threads, int8=spec.int8)
    return _embedders[key]


def embed_group(embed_nodes: Callable, embedder, texts: list[str], kinds: list[str]) -> tuple[np.ndarray, float]:
    """The Ray task for one group: its texts embedded by ``embed_nodes`` (``Library.embed_nodes``,
    passed by reference), with the seconds it took."""
    t = time.perf_counter()
    vecs = embed_nodes(SimpleNamespace(embedder=_worker_embedder(embedder)), texts, kinds)
    return vecs, time.perf_counter() - t


class _Mailbox:
    """An actor holding the tasks' progress events until the writer takes them."""

    def __init__(self):
        self.notes: list[tuple] = []

    def note(self, *msg) -> None:
        self.notes.append(msg)

    def take(self) -> list[tuple]:
        out, self.notes = self.notes, []
        return out


# -- in the writer ----------------------------------------------------------------------------

class _Embedded:
    """The library as :meth:`Ingestor.finish` sees it in a Ray run: the same in all but
    ``embed_nodes``, which hands back the vectors the cluster computed for the group."""

    embedder = None  # nothing to release here

    def __init__(self, lib):
        self._lib = lib
        self.group: list[Prepared] = []

    def __getattr__(self, name):
        return getattr(self._lib, name)

    def embed_nodes(self, texts, kinds, progress=None) -> np.ndarray:
        vecs = np.concatenate([p.vecs for p in self.group]) if self.group else np.zeros((0, self._lib.embedder.dim), np.float32)
        if len(vecs) != len(texts):
            raise RuntimeError(f"{len(vecs)} vectors came back for {len(texts)} texts")
        progress and progress(len(texts))
        return vecs


class RayIngest:
    """``with RayIngest(lib, files, address=...) as source: for path, prepared in source: …``

    Yields, in the order of ``files`` (the caller sorts them), each file's :class:`FileResult`
    (unchanged or failed: already recorded) or its :class:`Prepared` with its vectors; the
    caller groups the prepared ones as one process does and stores each group with
    :meth:`finish`. ``progress(event, path, done, total)`` gets the tasks' ``start``,
    ``stage:<name>`` and ``within:<unit>`` events, in the caller's thread. ``stats`` says where
    the writer's time went (``take_s``: taking results; ``wait_s``: waiting for them)."""

    def __init__(self, lib, files: list[Path], *, address=True, force: bool = False, ocr: str = "auto",
                 asr: str = "auto", progress: Callable[[str, str, float, float], None] | None = None):
        self.lib, self.files, self.address = lib, list(files), address
        self.force, self.ocr, self.asr, self.progress = force, ocr, asr, progress
        self._embedded = _Embedded(lib)
        self._ingestor = Ingestor(self._embedded)
        self._connected = False
        self._box = None
        self._live: set = set()  # refs of tasks submitted and not yet taken
        self._polled = 0.0
        self.stats = {"take_s": 0.0, "wait_s": 0.0, "cpus": 0}

    def __enter__(self) -> RayIngest:
        import ray

        self._connected = connect(self.address)
        self._ray = ray
        self._read = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(read_file)
        self._embed = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(embed_group)
        if self.progress is not None:
            self._box = ray.remote(num_cpus=0)(_Mailbox).remote()
        # put once, not pickled into every task: a caller's own embedder may hold its model
        self._embedding = (ray.put(type(self.lib).embed_nodes), ray.put(self.lib.embedder))
        self.stats["cpus"] = cpus = int(ray.cluster_resources().get("CPU", 1))
        self.cap = max(2, IN_FLIGHT_PER_CPU * cpus)
        self.waiting = max(self.cap, WAITING_PER_CPU * cpus)
        return self

    def __exit__(self, *exc) -> None:
        ray = self._ray
        for ref in list(self._live):  # Ctrl-C, an error, a full disk: stop the cluster's work
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
        self._live.clear()
        if self._box is not None:
            try:
                self._drain()
                ray.kill(self._box)
            except Exception:
                pass
        if self._connected:
            ray.shutdown()

    def finish(self, group: list[Prepared], **kw) -> list[FileResult]:
        """Store a group of yielded files: :meth:`Ingestor.finish` with their vectors."""
        self._embedded.group = group
        try:
            return self._ingestor.finish(group, **kw)
        finally:
            self._embedded.group = []

    # -- the loop ----------------------------------------------------------------------------
    def __iter__(self):
        ray, files, total = self._ray, self.files, len(self.files)
        reads: dict[int, Any] = {}  # file number -> its read task
        embeds: deque = deque()  # (group, its embedding task), in order
        group: list[tuple[Path, Prepared]] = []
        texts = 0
        submitted = taken = 0
        while taken < total or group or embeds:
            running = len(ray.wait(list(reads.values()), num_returns=len(reads), timeout=0)[1]) if reads else 0
            while submitted < total and running < self.cap and len(reads) < self.waiting:
                f = files[submitted]
                old = self._ingestor.existing(f)
                ref = self._read.remote(str(f), old.content_hash if old else None, self.force, self.ocr, self.asr,
                                        self._box, submitted, total)
                reads[submitted] = ref
                self._live.add(ref)
                submitted += 1
                running += 1
            moved = False
            while taken < submitted and len(embeds) < self.cap and self._ready(reads[taken]):
                f, ref = files[taken], reads.pop(taken)
                taken += 1
                moved = True
                item = self._take_read(f, ref)
                if isinstance(item, FileResult):
                    yield f, item
                    continue
                group.append((f, item))
                texts += len(item.texts)
                if texts >= ingest.GROUP_TEXTS or len(group) >= ingest.GROUP_FILES:  # as Library.add groups them
                    embeds.append(self._submit_embed(group))
                    group, texts = [], 0
            if taken >= total and group:
                embeds.append(self._submit_embed(group))
                group, texts = [], 0
            while embeds and self._ready(embeds[0][1]):
                done, ref = embeds.popleft()
                moved = True
                yield from self._take_embed(done, ref)
            self._drain()
            if not moved:
                heads = ([reads[taken]] if taken < submitted and len(embeds) < self.cap else []) + ([embeds[0][1]] if embeds else [])
                if heads:
                    t = time.perf_counter()
                    ray.wait(heads, num_returns=1, timeout=POLL_S)
                    self.stats["wait_s"] += time.perf_counter() - t

    def _ready(self, ref) -> bool:
        return bool(self._ray.wait([ref], num_returns=1, timeout=0)[0])

    def _get(self, ref):
        t = time.perf_counter()
        try:
            return self._ray.get(ref)
        finally:
            self._live.discard(ref)
            self.stats["take_s"] += time.perf_counter() - t

    def _lost(self, f: Path, e: Exception, doing: str) -> str:
        """The one line for a file whose task (``doing``: reading, embedding) did not come back."""
        from ray import exceptions as rx

        if isinstance(e, (rx.WorkerCrashedError, rx.NodeDiedError, rx.OutOfMemoryError, rx.ObjectLostError)):
            return (f"{f.name}: the Ray worker died {doing} this file {MAX_RETRIES + 1} times (a crash in the PDF "
                    f"library, or out of memory); skipped")
        cause = getattr(e, "cause", None) or e
        first = str(cause).strip().splitlines()
        return f"{f.name}: {doing} on the cluster failed ({type(cause).__name__}: {first[0] if first else ''})"

    def _take_read(self, f: Path, ref) -> FileResult | Prepared:
        """A read task's result as the writer records it (a failure, a skip) or stores it."""
        from ray.exceptions import RayError, TaskCancelledError

        t = time.perf_counter()
        try:
            p = self._get(ref)
        except TaskCancelledError:
            raise KeyboardInterrupt from None  # cancelled from outside: stop as Ctrl-C does
        except RayError as e:
            return self._ingestor._fail(f, self._lost(f, e, "reading"))
        try:
            if isinstance(p, FileResult):
                if p.status == "failed":
                    return self._ingestor._fail(f, p.reason)  # records it, as prepare does in one process
                old = self._ingestor.existing(f)
                self._ingestor._clear_failure(f)
                return FileResult(str(f), "skipped", nodes=old.n_nodes if old else None, pages=old.pages if old else None)
            p.old = self._ingestor.existing(f)
            p.summaries = {id(fn.node): s for fn, s in zip(p.flat, p.summaries)}
            return p
        finally:
            self.stats["take_s"] += time.perf_counter() - t

    def _submit_embed(self, group: list[tuple[Path, Prepared]]):
        texts = [txt for _, p in group for txt in p.texts]
        kinds = [p.flat[i].node.kind for _, p in group for i in p.which]
        ref = self._embed.remote(*self._embedding, texts, kinds)
        self._live.add(ref)
        return group, ref

    def _take_embed(self, group: list[tuple[Path, Prepared]], ref):
        from ray.exceptions import RayError, TaskCancelledError

        try:
            vecs, seconds = self._get(ref)
        except TaskCancelledError:
            raise KeyboardInterrupt from None
        except RayError as e:
            for f, _ in group:
                yield f, self._ingestor._fail(f, self._lost(f, e, "embedding"))
            return
        nodes = sum(len(p.flat) for _, p in group) or 1
        at = 0
        for f, p in group:
            p.vecs, at = vecs[at : at + len(p.texts)], at + len(p.texts)
            p.timings["embed"] = seconds * len(p.flat) / nodes  # finish adds the (nil) local part
        for f, p in group:
            yield f, p

    def _drain(self) -> None:
        """Hand the tasks' progress events to ``progress`` (at most every POLL_S / 2)."""
        if self._box is None or time.perf_counter() - self._polled < POLL_S / 2:
            return
        self._polled = time.perf_counter()
        for event, path, done, total in self._ray.get(self._box.take.remote()):
            self.progress(event, path, done, total)
