"""PDFs read (and their entities found) in a process of their own, beside the process that
embeds and stores.

Reading a PDF is Python (the layout) around PDFium: one core, and the GIL. A reading *thread*
beside the embedding made indexing slower, not faster (real 10-K filings: 6.0 pages/s against
6.7 in turn, docs/ingest.md): each of onnxruntime's ~1,700 small runs per filing waited for
the GIL the reader held. A spawned process has its own interpreter: it reads the next PDF and finds
its named entities (spaCy) while this one embeds and stores the previous ones.

One worker process per index run, started at the first PDF (spawn: ~1 s, its models load
there). It ignores Ctrl-C (the run stops it). Pages read are reported back through a queue. A
worker that dies on a file (a crash in PDFium, the OOM killer) fails that file with one line and
is replaced for the next. :func:`read_path` in this process is the plain reference: the trees are
the same (tests/test_read_ahead.py).
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_mod
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ..core import ReaderError, Tree
from .embed import sharing_cores

_progress_q = None  # the worker's end of the page-progress queue
#: named entities found in the reader process (else after embedding, in the run's own)
NER_HERE = os.environ.get("SLEUTH_NER_HERE", "1") == "1"


def _init(q) -> None:
    global _progress_q
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the index run's to handle
    _progress_q = q


def _read(path: str, ocr: str, asr: str, token: int) -> Tree:
    from ..readers import read_path

    def progress(unit: str, done: float, total: float) -> None:
        _progress_q.put((token, unit, done, total))

    tree = read_path(Path(path), ocr=ocr, asr=asr, progress=progress)
    tree.text = ""  # nodes hold their own text; not worth pickling the whole again
    if tree.root.kind == "document" and NER_HERE:
        # NER is per-file work too: done here it runs beside the other process's embedding
        # instead of after it (the mentions travel with the tree, pointing at its nodes)
        import time

        from ..memory import bounded_heap
        from ..readers.doc_entities import add_document_entities

        t = time.perf_counter()
        with bounded_heap():
            add_document_entities(tree)
        tree.timings["entities"] = time.perf_counter() - t
    return tree


class ReaderProcess:
    """``read(path, ocr=, asr=, progress=, check=)``: :func:`sleuth.readers.read_path` run in the
    worker process. ``check()`` is called while waiting (it may raise to stop waiting)."""

    #: what the worker runs for a file (a module-level function: the worker imports it by name)
    target = staticmethod(_read)

    def __init__(self):
        self._ctx = multiprocessing.get_context("spawn")
        self._pool: ProcessPoolExecutor | None = None
        self._q = None
        self._token = 0

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._q = self._ctx.Queue()
            self._pool = ProcessPoolExecutor(1, mp_context=self._ctx, initializer=_init, initargs=(self._q,))
        return self._pool

    def read(self, path: Path, *, ocr: str = "auto", asr: str = "auto",
             progress: Callable[[str, float, float], None] | None = None,
             check: Callable[[], None] = lambda: None) -> Tree:
        self._token += 1
        token = self._token
        with sharing_cores():
            fut = self._start().submit(self.target, str(path), ocr, asr, token)
            self._wait(fut, token, progress, check)
        try:
            return fut.result()
        except BrokenProcessPool:
            self.close()
            raise ReaderError(f"{path.name}: the reading process died on this file (a crash in the PDF library, "
                              "or out of memory); skipped") from None

    def _wait(self, fut, token: int, progress, check) -> None:
        while not wait([fut], timeout=0.05).done:
            check()
            while True:  # pages read so far (a late one of an earlier file is dropped)
                try:
                    tok, unit, done, total = self._q.get_nowait()
                except queue_mod.Empty:
                    break
                if tok == token and progress is not None:
                    progress(unit, done, total)

    def close(self) -> None:
        """Stop the worker now (a file in flight is abandoned)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        procs = list(getattr(pool, "_processes", {}).values())  # the executor has no public kill
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(5)
        if self._q is not None:
            self._q.close()
            self._q = None
