"""The ``sleuth index`` progress line: across files and within the file in flight, in 80 columns.

    ⠧ annual-report-2024-fin…  ━━━━━━━━╸━━━━━  3/10  reading 120/300 pages  0:00:41

The bar moves within a file too (a file that is half read counts half), so one long 10-K no
longer sits at 0/10 for a minute. File names are document-controlled text: never markup, and
shown on one line. When stderr is not a terminal (a log, a pipe, CI), the line is replaced by a
plain one every :data:`PLAIN_EVERY_S` seconds, so a long run still shows it is moving.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column

from .terminal import one_line

NAME_WIDTH = 24
DETAIL_WIDTH = 22
# Where each stage sits inside one file's share of the bar. Rough (reading dominates scanned
# PDFs and videos, embedding dominates text PDFs); what matters is that the bar never moves back.
#: seconds between the plain progress lines written when stderr is not a terminal
PLAIN_EVERY_S = 10.0
STAGE_SPAN = {"starting": (0.0, 0.0), "reading": (0.0, 0.6), "embedding": (0.6, 0.95), "storing": (0.95, 1.0)}


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 0.05 or x >= 100 else f"{x:.1f}"


def detail_text(stage: str, unit: str | None, done: float | None, total: float | None) -> str:
    """``reading 120/300 pages``, ``reading 45/600 s frames`` or just the stage."""
    if unit is None or not total:
        return stage
    if unit.startswith("s "):  # seconds of video, per video stage
        return f"{unit[2:]} {_num(done or 0)}/{_num(total)} s"
    return f"{stage} {_num(done or 0)}/{_num(total)} {unit}"


class IndexProgress:
    """Feeds :meth:`sleuth.Library.add` progress events into one Rich progress line."""

    def __init__(self, console: Console, disable: bool = False):
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.fields[name]}", markup=False,
                       table_column=Column(width=NAME_WIDTH, no_wrap=True, overflow="ellipsis")),
            BarColumn(bar_width=12),
            TextColumn("{task.fields[files]}", markup=False, table_column=Column(width=7, no_wrap=True, justify="right")),
            TextColumn("{task.fields[detail]}", markup=False,
                       table_column=Column(width=DETAIL_WIDTH, no_wrap=True, overflow="ellipsis")),
            TimeElapsedColumn(),
            console=console, disable=disable, transient=False, expand=False)
        self.task = None
        # A log or a pipe gets no live line: a plain line every PLAIN_EVERY_S seconds instead.
        self.plain = not disable and not console.is_terminal
        self._said = time.monotonic()
        self._started = time.monotonic()
        self._lock = threading.Lock()  # events come from the reading thread too (index/read_ahead.py)
        self.stage = ""
        self.files_done = 0
        self.total = 0

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    @property
    def console(self) -> Console:
        return self.progress.console

    def __call__(self, event: str, path: str, done: float, total: float) -> None:
        with self._lock:
            self._event(event, path, done, total)

    def _event(self, event: str, path: str, done: float, total: float) -> None:
        if self.task is None:
            self.total = max(int(total), 1) if event in ("start", "done") or event.startswith("stage:") else 1
            self.task = self.progress.add_task("indexing", total=self.total, name="", files="", detail="")
        name = one_line(Path(path).name)
        if event == "start":
            # files done are counted by "done" events alone: the next file starts reading
            # (index/read_ahead.py) before the one before it is stored
            self.stage = "starting"
            self._show(name, self.files_done, self.stage)
        elif event.startswith("stage:"):
            self.stage = event[6:]
            self._show(name, self.files_done + STAGE_SPAN.get(self.stage, (0.0, 0.0))[0], self.stage)
        elif event.startswith("within:"):
            frac = min(1.0, float(done) / float(total)) if total else 0.0
            lo, hi = STAGE_SPAN.get(self.stage, (0.0, 0.0))
            self._show(name, self.files_done + lo + frac * (hi - lo), detail_text(self.stage, event[7:], done, total))
        elif event == "done":
            self.files_done = int(done)
            self._show(name, self.files_done, "done")

    def _show(self, name: str, completed: float, detail: str) -> None:
        self.progress.update(self.task, completed=completed, name=name, detail=detail,
                             files=f"{self.files_done}/{self.total}")
        now = time.monotonic()
        if self.plain and now - self._said >= PLAIN_EVERY_S:
            self._said = now
            elapsed = int(now - self._started)
            self.progress.console.print(
                f"indexing: {self.files_done}/{self.total} files done, {elapsed // 60}:{elapsed % 60:02d} elapsed; "
                f"{name}: {detail}", markup=False, highlight=False, soft_wrap=True)
