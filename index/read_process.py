"""PDFs read (and their entities found) in a process of their own, beside the process that
embeds and stores.

Reading a PDF is Python (the layout) around PDFium: one core, and the GIL. A reading *thread*
beside the embedding made indexing slower, not faster (real 10-K filings: 6.0 pages/s against
6.2 in turn, docs/ingest.md): each of onnxruntime's ~1,700 small runs per filing waited for the
GIL the reader held. A process has its own interpreter: it reads the next PDF and finds its named
entities (spaCy) while this one embeds and stores the previous ones.

The worker is ``python -m sleuth.index.read_process``, started with :mod:`subprocess` at the
first PDF of an index run (its models load there) and stopped at the run's end. Not
:mod:`multiprocessing`: its spawned children import the parent's ``__main__`` script again, so a
user's script that calls ``Library.add`` without an ``if __name__ == "__main__"`` guard would
index itself in the child. Requests go down the worker's stdin and answers (pages read, the
pickled tree, or the error) come back on a pipe of their own, so nothing a library prints on
stdout can corrupt them. The worker ignores Ctrl-C (the run stops it). A worker that dies on a
file (a crash in PDFium, the OOM killer) fails that file with one line and is replaced for the
next; one that cannot start at all (it dies before saying it is ready) raises
:class:`WorkerUnavailable`, and the run reads its PDFs itself. :func:`sleuth.readers.read_path`
in this process is the plain reference: the trees are the same (tests/test_read_ahead.py).
"""

from __future__ import annotations

import os
import pickle
import queue as queue_mod
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..core import ReaderError, Tree
from .embed import sharing_cores

_FD_ENV = "SLEUTH_READER_FD"


def read_one(path: str, ocr: str, asr: str, progress: Callable[[str, float, float], None]) -> Tree:
    """What the worker does for one file: read it and, for a document, find its entities."""
    from ..readers import read_path

    tree = read_path(Path(path), ocr=ocr, asr=asr, progress=progress)
    tree.text = ""  # nodes hold their own text; not worth pickling the whole again
    if tree.root.kind == "document":
        # NER is per-file work too: done here it runs beside the other process's embedding
        # instead of after it (the mentions travel with the tree, pointing at its nodes)
        from ..memory import bounded_heap
        from ..readers.doc_entities import add_document_entities

        t = time.perf_counter()
        with bounded_heap():
            add_document_entities(tree)
        tree.timings["entities"] = time.perf_counter() - t
    return tree


def _worker() -> None:
    """The worker's loop: (token, path, ocr, asr, action) in, messages out, until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the index run's to handle
    out = os.fdopen(int(os.environ[_FD_ENV]), "wb")

    def send(msg) -> None:
        try:
            data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # an error that does not pickle still says what it was
            data = pickle.dumps(("error", msg[1], RuntimeError(f"{type(msg[2]).__name__}: {e}")))
        out.write(len(data).to_bytes(8, "little") + data)
        out.flush()

    send(("ready", 0, None))  # started and imported: a death from now on is a file's doing
    while True:
        try:
            token, path, ocr, asr, action = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        try:
            if action == "die":  # tests: a worker that dies as PDFium would on a hostile file
                os._exit(3)
            tree = read_one(path, ocr, asr, lambda unit, d, t: send(("progress", token, (unit, d, t))))
            send(("done", token, tree))
        except Exception as e:
            send(("error", token, e))


class WorkerUnavailable(RuntimeError):
    """The worker could not start (it died before it was ready): read in this process instead."""


class ReaderProcess:
    """``read(path, ocr=, asr=, progress=, check=)``: :func:`read_one` run in the worker process.
    ``check()`` is called while waiting (it may raise to stop waiting)."""

    def __init__(self):
        self._proc: subprocess.Popen | None = None
        self._inbox: queue_mod.Queue | None = None
        self._token = 0
        self._ready = False
        self.action = "read"  # tests set "die"
        #: the worker's command line (tests replace it by one that cannot start)
        self.command = [sys.executable, "-m", "sleuth.index.read_process"]

    def _start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        r, w = os.pipe()
        env = dict(os.environ, **{_FD_ENV: str(w)})
        # the worker imports what this process imports (a checkout put on sys.path included)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._ready = False
        self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, pass_fds=(w,), env=env,
                                      start_new_session=True)
        os.close(w)
        inbox: queue_mod.Queue = queue_mod.Queue()
        self._inbox = inbox

        def pump(fh) -> None:  # the worker's messages, as they come; None once it is gone
            with fh:
                while True:
                    head = fh.read(8)
                    if len(head) < 8:
                        break
                    body = fh.read(int.from_bytes(head, "little"))
                    inbox.put(pickle.loads(body))
            inbox.put(None)

        threading.Thread(target=pump, args=(os.fdopen(r, "rb"),), name="sleuth-reader-pipe", daemon=True).start()

    def read(self, path: Path, *, ocr: str = "auto", asr: str = "auto",
             progress: Callable[[str, float, float], None] | None = None,
             check: Callable[[], None] = lambda: None) -> Tree:
        self._start()
        self._token += 1
        token = self._token
        with sharing_cores():
            try:
                pickle.dump((token, str(path), ocr, asr, self.action), self._proc.stdin)
                self._proc.stdin.flush()
            except OSError:
                pass  # gone already: the pipe says so below
            while True:
                check()
                try:
                    msg = self._inbox.get(timeout=0.05)
                except queue_mod.Empty:
                    continue
                if msg is None:
                    code = self._proc.wait()
                    ready, self._ready = self._ready, False
                    self.close()
                    if not ready:
                        raise WorkerUnavailable(f"the reader process did not start (exit {code})")
                    raise ReaderError(f"{path.name}: the reading process died on this file (exit {code}: a crash in "
                                      "the PDF library, or out of memory); skipped")
                kind, tok, body = msg
                if kind == "ready":
                    self._ready = True
                    continue
                if tok != token:  # a late message about an earlier file
                    continue
                if kind == "progress":
                    progress and progress(*body)
                elif kind == "done":
                    return body
                else:
                    raise body

    def close(self) -> None:
        """Stop the worker now (a file in flight is abandoned)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.stdin.close()  # an idle worker ends on EOF
                proc.wait(0.5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        else:
            try:
                proc.stdin.close()
            except OSError:
                pass


if __name__ == "__main__":
    _worker()
