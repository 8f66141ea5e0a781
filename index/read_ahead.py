"""Files read one ahead of the files being embedded and stored.

Reading a PDF is one Python thread (PDFium under a lock, the layout in Python): while it runs,
the second core sat idle, and while onnxruntime embedded the file before, nothing was read. With
:class:`ReadAhead` a thread reads (and OCRs, and summarises) the next file while the caller embeds,
finds entities and stores the previous ones; at most ``depth`` read files wait, so memory holds
at most ``depth + 1`` files beyond the group in flight. ``depth=0`` is the plain reference: each
file is read in the caller's thread, in order, as before (tests compare the two).

The caller's thread keeps every database write of the stored files; the reading thread only
reads the database (is the file already indexed?) and records a file that failed to read. When
the caller stops (an error, Ctrl-C), the reading thread stops at the next page or file: the
reader's progress callback raises :class:`Stopped` once :meth:`ReadAhead.check` sees the stop.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: seconds the caller waits for the reading thread to stop (a page of OCR, or a file's hash)
JOIN_S = 10.0
_END = object()


class Stopped(BaseException):
    """Raised inside the reading thread once the caller has stopped; not an ``Exception``, so no
    reader's error handling turns it into a failed file."""


class ReadAhead:
    """``with ReadAhead(files, prepare) as ahead: for path, prepared in ahead: …``

    ``prepare(n, path)`` runs in order over ``files`` (in a thread when ``depth`` > 0); its
    results come out in the same order. An exception it raises is raised in the caller's thread
    at that file's place."""

    def __init__(self, files: list[Path], prepare: Callable[[int, Path], Any], depth: int = 1):
        self.files, self.prepare, self.depth = files, prepare, depth
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> None:
        """Raise :class:`Stopped` in the reading thread once the caller has stopped."""
        if self._stop.is_set() and threading.current_thread() is self._thread:
            raise Stopped()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_S)

    def __iter__(self) -> Iterator[tuple[Path, Any]]:
        if self.depth <= 0:
            for n, f in enumerate(self.files):
                yield f, self.prepare(n, f)
            return
        q: queue.Queue = queue.Queue(maxsize=self.depth)

        def put(item) -> bool:
            while not self._stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    pass
            return False

        def work() -> None:
            try:
                for n, f in enumerate(self.files):
                    if self._stop.is_set() or not put((f, self.prepare(n, f), None)):
                        return
            except Stopped:
                return
            except BaseException as e:  # handed to the caller at this file's place
                put((_END, None, e))
                return
            put((_END, None, None))

        self._thread = threading.Thread(target=work, name="sleuth-read-ahead", daemon=True)
        self._thread.start()
        while True:
            f, res, err = q.get()
            if f is _END:
                if err is not None:
                    raise err
                return
            yield f, res
