"""MMLongBench-Doc's library and progress bar, shared by the retrieval and e2e runners.

Failure reasons carry file names (document-controlled): printed as plain text, never markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from rich.text import Text

from .loaders import MMLongBenchItem


def progress_bar(progress: bool):
    """The Rich progress bar the MMLongBench runners share (disabled when ``progress`` is false)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not progress, transient=False)


def open_library(data: Path, items: Sequence[MMLongBenchItem], library: str | Path | None, out: Path, prog=None):
    """The library of the split's PDFs, indexed (incrementally) on first use."""
    from ..library import Library

    lib = Library(library or out / "mmlongbench-library")
    docs = sorted({str(it.document) for it in items} | {str(p) for p in (items[0].document.parent).glob("*.pdf")})
    have = {s["path"] for s in lib.sources()} if hasattr(lib, "sources") else set()
    todo = [d for d in docs if str(Path(d).resolve()) not in have and d not in have]
    if todo:
        task = prog.add_task("indexing PDFs", total=len(todo)) if prog else None

        def on_progress(event, path, done, total):
            if prog is not None and event == "done":
                prog.update(task, completed=done)

        from ..library import LibraryBusy

        try:
            report = lib.add(todo, progress=on_progress)
        except LibraryBusy as e:  # another run is indexing it: evaluate what is there, and say so
            if prog is not None:
                prog.console.print(Text.assemble(("warning:", "yellow"), f" {e}; evaluating the documents indexed so far"))
            return lib
        for r in report.failed:
            if prog is not None:
                prog.console.print(Text.assemble(("error:", "red"), f" {r.reason}"))
    return lib
