"""Indexing a recording for ``sleuth eval recordings``, and reading back what sleuth heard.

Each file is indexed by ``Library.add`` in a child process of its own (spawned, so nothing of the
parent's memory is counted): its wall time and its peak resident memory (``ru_maxrss`` of the
child and of any process it started) are the file's, not the evaluation's. Videos are indexed
with ``asr="whisper"``: speech recognition always runs, even if a subtitle file lies beside the
MP4, because the evaluation measures what sleuth hears, never the transcript it was made from.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

Progress = Callable[[str, float | None], None]

#: the child's protocol lines start with this (anything else a library prints is ignored)
MARK = "@@sleuth-rec "


def _child(lib_path: str, path: str, asr: str, force: bool) -> None:
    import resource

    from ..library import Library

    def put(kind: str, a, b=None) -> None:
        print(MARK + json.dumps([kind, a, b]), flush=True)

    def progress(event: str, _path: str, done: int, total: int) -> None:
        if event.startswith("stage:"):
            put("stage", event[6:])
        elif event.startswith("within:") and total:
            put("stage", event[7:], done / total)

    try:
        t0 = time.perf_counter()
        with Library(lib_path) as lib:
            rep = lib.add([path], asr=asr, force=force, progress=progress)
        wall = time.perf_counter() - t0
        r = rep.results[0] if rep.results else None
        peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        put("done", {"status": r.status if r else "failed", "reason": r.reason if r else "nothing indexed",
                     "seconds": round(r.seconds if r and r.seconds else wall, 3), "wall_seconds": round(wall, 3),
                     "timings": dict(r.timings) if r else {}, "warnings": list(r.warnings) if r else [],
                     "peak_rss_mb": round(peak / 1024, 1)})
    except BaseException as e:  # noqa: BLE001 - the parent reports it as this file's one line
        put("done", {"status": "failed", "reason": " ".join(f"{type(e).__name__}: {e}".split())[:300]})


def index_file(lib_path: Path, path: Path, *, asr: str = "auto", force: bool = False,
               progress: Progress | None = None) -> dict:
    """Index ``path`` into the library at ``lib_path`` in a child process; returns ``status``,
    ``reason``, ``seconds`` (the library's own time for the file), ``wall_seconds`` (the child's
    whole ``add``, model loading included), ``timings``, ``warnings`` and ``peak_rss_mb``.

    The child is a fresh interpreter (``python -m sleuth.eval.rec_index``), not a fork: a fork
    would start with the parent's memory and count it, and multiprocessing's spawn re-runs the
    caller's main script."""
    args = [sys.executable, "-m", "sleuth.eval.rec_index", str(Path(lib_path).resolve()), str(Path(path).resolve()), asr,
            "force" if force else "keep"]
    result = None
    with tempfile.TemporaryFile("w+") as err:
        # cwd away from any checkout: ``-m`` puts the working folder first on sys.path
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True, cwd=tempfile.gettempdir())
        try:
            for line in proc.stdout:
                if not line.startswith(MARK):
                    continue
                kind, a, b = json.loads(line[len(MARK):])
                if kind == "stage":
                    progress and progress(a, b)
                else:
                    result = a
        finally:
            code = proc.wait()
        if result is None:
            err.seek(0)
            tail = [l for l in err.read().splitlines() if l.strip()][-1:]
            result = {"status": "failed", "reason": f"indexing process ended with exit code {code}"
                      + (" (killed: out of memory?)" if code == -9 else "") + (f": {tail[0][:200]}" if tail else "")}
    return result


def asr_lines(lib, source_path: str | Path) -> tuple[list[dict], dict]:
    """The recognised speech lines of an indexed video, in time order, read back from its segment
    nodes (``t0``, ``t1``, ``text``, ``words``, ``speaker`` when voices were told apart), and the
    video's source meta (``transcript_source``, ``speakers``, ``duration`` …)."""
    from sqlalchemy import select

    from ..index.schema import NodeRow, SourceRow

    with lib.Session() as s:
        src = s.execute(select(SourceRow).where(SourceRow.path == str(Path(source_path).resolve()))).scalars().first()
        if src is None:
            raise KeyError(f"{Path(source_path).name}: not in the library")
        rows = s.execute(select(NodeRow.meta).where(NodeRow.source_id == src.id, NodeRow.kind == "segment")
                         .order_by(NodeRow.t_start, NodeRow.id)).scalars().all()
        meta = dict(src.meta or {}) | {"duration": src.duration, "seconds": src.seconds}
    lines = [dict(l) for m in rows for l in (m or {}).get("speech") or []]
    lines.sort(key=lambda l: float(l["t0"]))
    return lines, meta


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "force")
