"""Indexing speed on real files, end to end, split by stage (a benchmark, not a test).

    .venv/bin/python benchmarks/bench_ingest.py --real [--json out.json] [--compare DIR]
    .venv/bin/python benchmarks/bench_ingest_real.py   [--json out.json] [--compare DIR]

Two parts, each in a fresh process and a fresh library (models load cold, as for a new user;
peak RSS is that process's):

1. **filings**: the dev split's 10-K filings (``../shared/data/mmlongbench_doc_dev/documents``:
   3M 2018, Activision Blizzard 2019, Adobe 2015, Amazon 2017, Netflix 2015, Nike 2021; a filing
   missing from the folder is named and left out) through one ``Library.add``: pages/s.
2. **small files**: 1,000 one-line text files (real speaker turns of the QMSum dev meetings, one
   per file, in file order) through one ``Library.add``: files/s.

Each part reports wall seconds, the seconds of every stage summed over its files
(``FileResult.timings``: read, ocr, summaries, embed, entities, db, commit, lexical, vectors;
``other`` is the wall time outside them: hashing, skip checks, the run's bookkeeping; it is
negative when stages overlap, as reading PDFs in the reader process does with embedding) and
the peak RSS of the indexing process and of its reader process. ``--compare DIR`` runs the same parts with another checkout of sleuth (DIR holds the
``sleuth`` folder, e.g. a ``git worktree`` of an older commit) in the same run, side by side.
The exit status is 1 when a part of this checkout is under its target (``--min-pages-per-s``,
``--min-files-per-s``), so a slowdown fails loudly.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the sleuth package (the repository root)
SHARED = ROOT.parent / "shared" / "data"
if not SHARED.exists():  # a checkout elsewhere: the same fallback as the tests (tests/conftest.py)
    SHARED = Path(os.environ.get("SLEUTH_SHARED_DATA", "/work/shared/data"))
FILINGS = ("3M_2018_10K.pdf", "ACTIVISIONBLIZZARD_2019_10K.pdf", "ADOBE_2015_10K.pdf", "AMAZON_2017_10K.pdf",
           "NETFLIX_2015_10K.pdf", "NIKE_2021_10K.pdf")
STAGES = ("read", "ocr", "summaries", "embed", "entities", "db", "commit", "lexical", "vectors")


def small_texts(n: int) -> list[str]:
    """``n`` real one-line texts: QMSum speaker turns of 8+ words, in file order."""
    out: list[str] = []
    for f in sorted((SHARED / "qmsum_dev" / "meetings").glob("*.json")):
        for turn in json.loads(f.read_text())["meeting_transcripts"]:
            line = " ".join(turn["content"].split())
            if len(line.split()) >= 8:
                out.append(f"{turn['speaker']}: {line}")
                if len(out) == n:
                    return out
    raise SystemExit(f"only {len(out)} turns of 8+ words under {SHARED / 'qmsum_dev'}")


def run_part(part: str, work: Path, files: int) -> dict:
    """Index one part in this process (the child side of :func:`measure`)."""
    from sleuth.library import Library

    if part == "filings":
        docs = SHARED / "mmlongbench_doc_dev" / "documents"
        paths = [docs / f for f in FILINGS if (docs / f).exists()]
    else:
        folder = work / "small"
        folder.mkdir()
        paths = []
        for i, line in enumerate(small_texts(files)):
            p = folder / f"turn{i:05d}.txt"
            p.write_text(line + "\n")
            paths.append(p)
    t0 = time.perf_counter()
    lib = Library(work / "library")
    rep = lib.add(paths)
    wall = time.perf_counter() - t0
    lib.close()
    bad = [r for r in rep.results if r.status not in ("added", "updated")]
    if bad:
        raise SystemExit(f"{len(bad)} files not indexed: {bad[0].path}: {bad[0].reason}")
    stages: dict[str, float] = {}
    for r in rep.results:
        for k, v in r.timings.items():
            stages[k] = stages.get(k, 0.0) + v
    pages = sum(r.pages or 0 for r in rep.results)
    out = {"files": len(rep.results), "pages": pages, "nodes": sum(r.nodes for r in rep.results),
           "wall_s": round(wall, 2), "stages_s": {k: round(v, 2) for k, v in stages.items()},
           "other_s": round(wall - sum(stages.values()), 2),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           # the reader process's (index/read_process.py), stopped and waited for by now
           "peak_rss_reader_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}
    if part == "filings":
        out["pages_per_s"] = round(pages / wall, 2)
        out["per_file"] = {Path(r.path).name: {"pages": r.pages, "nodes": r.nodes, "seconds": round(r.seconds, 2)}
                           for r in rep.results}
    else:
        out["files_per_s"] = round(len(rep.results) / wall, 2)
    return out


def measure(part: str, code: Path, files: int) -> dict:
    """Run one part in a fresh process importing sleuth from ``code`` (the folder holding it)."""
    with tempfile.TemporaryDirectory(prefix="sleuth-bench-") as d:
        env = dict(os.environ, PYTHONPATH=str(code) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", part, "--work", d, "--files", str(files),
               "--data", str(SHARED)]
        res = subprocess.run(cmd, env=env, cwd=d, capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"{part} with {code}: exit {res.returncode}\n{res.stderr[-2000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])


def table(results: dict) -> str:
    """Markdown: one column per (checkout, part)."""
    cols = [(who, part) for who, parts in results.items() for part in parts]
    head = "| | " + " | ".join(f"{who}: {part}" for who, part in cols) + " |"
    lines = [head, "|---" * (len(cols) + 1) + "|"]

    def row(name, get):
        lines.append(f"| {name} | " + " | ".join(get(results[w][p]) for w, p in cols) + " |")

    row("files / pages", lambda r: f"{r['files']} / {r['pages']}")
    row("wall s", lambda r: f"{r['wall_s']:.1f}")
    row("**pages/s**", lambda r: f"**{r['pages_per_s']:.2f}**" if "pages_per_s" in r else "")
    row("**files/s**", lambda r: f"**{r['files_per_s']:.1f}**" if "files_per_s" in r else "")
    keys = [k for k in STAGES if any(k in results[w][p]["stages_s"] for w, p in cols)]
    keys += sorted({k for w, p in cols for k in results[w][p]["stages_s"]} - set(keys))
    for k in keys:
        row(f"{k} s", lambda r, k=k: f"{r['stages_s'][k]:.1f}" if k in r["stages_s"] else "")
    # negative when stages overlap: PDFs are read (and their entities found) in a process of
    # their own while the previous files embed, so the stage seconds add up to more than the wall
    row("wall − sum of stages s", lambda r: f"{r['other_s']:.1f}")
    row("peak RSS MB", lambda r: f"{r['peak_rss_mb']:.0f}")
    row("peak RSS of the reader process MB", lambda r: f"{r.get('peak_rss_reader_mb', 0):.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="filings,small", help="comma-separated: filings, small")
    ap.add_argument("--files", type=int, default=1000, help="small text files")
    ap.add_argument("--compare", type=Path, action="append", default=[],
                    help="a folder holding another checkout's sleuth package (repeatable)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=None, help="the shared data folder (default: ../shared/data)")
    ap.add_argument("--min-pages-per-s", type=float, default=8.0)
    ap.add_argument("--min-files-per-s", type=float, default=20.0)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.data is not None:
        global SHARED
        SHARED = a.data
    if a.child:
        print(json.dumps(run_part(a.child, a.work, a.files)))
        return 0
    parts = [p for p in a.parts.split(",") if p]
    docs = SHARED / "mmlongbench_doc_dev" / "documents"
    missing = [f for f in FILINGS if not (docs / f).exists()]
    if missing and "filings" in parts:
        print(f"not in {docs}, left out: {', '.join(missing)}", file=sys.stderr)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    checkouts = {f"sleuth {commit or 'this checkout'}": ROOT.parent}
    for c in a.compare:
        who = subprocess.run(["git", "-C", str(c / "sleuth"), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        checkouts[f"sleuth {who or c}"] = c
    results: dict = {}
    for part in parts:  # parts outer: each checkout runs a part on the same machine state in turn
        for who, code in checkouts.items():
            results.setdefault(who, {})[part] = r = measure(part, code, a.files)
            print(f"{who} {part}: {json.dumps({k: v for k, v in r.items() if k != 'per_file'})}", file=sys.stderr, flush=True)
    print(table(results))
    if a.json:
        a.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "commit": commit, "cpus": os.cpu_count(),
                                      "missing_filings": missing, "results": results}, indent=2))
    mine = results[next(iter(checkouts))]
    slow = []
    if "filings" in mine and mine["filings"]["pages_per_s"] < a.min_pages_per_s:
        slow.append(f"filings at {mine['filings']['pages_per_s']} pages/s (target {a.min_pages_per_s})")
    if "small" in mine and mine["small"]["files_per_s"] < a.min_files_per_s:
        slow.append(f"small files at {mine['small']['files_per_s']} files/s (target {a.min_files_per_s})")
    for s in slow:
        print(f"under target: {s}", file=sys.stderr)
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
