"""Keeping a long-running reader of a library in step with what other processes commit.

The database is the truth; each ``sleuth serve`` keeps its own derived faiss and tantivy files
under its ``--home``. ``Library.refresh`` (which every search calls) brings faiss in step with the
database generation and reloads tantivy when *its own folder's* stamp moved, but an index run in
another process, with another home, writes another tantivy folder: this one would never learn
of the new nodes. A :class:`Follower` checks the generation at most every ``every`` seconds in a
thread of its own and, when the word index is behind, heals it from the database
(:func:`sleuth.index.lexical_sync.heal`: only the changed sources are rewritten), then refreshes
faiss and warms the rank tables, so no request pays for catching up. The server's searches
then skip their own check of the generation (``Library.refresh_every``): it was a database round
trip per request for what the follower learns at the same pace.

An index run in *this* home holds its write lock and keeps the word index in step itself; the
follower then only refreshes.
"""

from __future__ import annotations

import logging
import threading
import time

from ..index.lexical_sync import heal
from ..index.store import get_state, mask_url
from ..library import Library, LibraryBusy

log = logging.getLogger("sleuth.serve")


class Follower:
    """``step()`` brings ``lib`` up to the database's generation; ``start()`` runs it every
    ``every`` seconds in a daemon thread until ``stop()``.

    ``writing`` is the in-process lock that this server's own writes (index, remove) hold too,
    so that they wait for a heal in progress instead of finding the library busy."""

    def __init__(self, lib: Library, every: float = 1.0, writing: threading.Lock | None = None):
        self.lib = lib
        self.every = float(every)
        self.writing = writing or threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: what the last steps cost, for /healthz and the benchmark
        self.steps = 0
        self.heals = 0
        self.errors = 0
        self.last_error = ""
        self.last_seconds = 0.0
        self.max_seconds = 0.0
        self.generation = -1

    def step(self) -> bool:
        """One check; True when the database had moved on (and this process has now caught up)."""
        lib = self.lib
        t0 = time.perf_counter()
        gen = int(get_state(lib.engine, "generation", "0"))
        moved = gen != self.generation
        if not lib.read_only and lib.lexical.generation() != gen and self.writing.acquire(blocking=False):
            try:
                with lib.write_lock():
                    heal(lib)
                    self.heals += 1
            except LibraryBusy:
                pass  # an index run in this home writes the word index as it goes
            finally:
                self.writing.release()
        lib.refresh()
        if moved:
            lib.searcher.tables.get(lib, lib.vectors.generation)
        self.generation = gen
        self.steps += 1
        self.last_seconds = time.perf_counter() - t0
        self.max_seconds = max(self.max_seconds, self.last_seconds)
        return moved

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.step()
            except Exception as e:  # noqa: BLE001 - a database blip must not end the following
                self.errors += 1
                # a driver's message may quote the connection URL, password and all
                self.last_error = mask_url(" ".join(str(e).split())[:200])
                log.warning("following the database: %s", self.last_error)

    def start(self) -> "Follower":
        self._thread = threading.Thread(target=self._run, name="sleuth-follow", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def to_dict(self) -> dict:
        return {"generation": self.generation, "every_s": self.every, "steps": self.steps, "heals": self.heals,
                "errors": self.errors, "last_error": self.last_error,
                "last_ms": round(self.last_seconds * 1000, 2), "max_ms": round(self.max_seconds * 1000, 2)}
