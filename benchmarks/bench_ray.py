"""Indexing on a Ray cluster (``sleuth index --ray``) against indexing in one process: the same
library, and the speed-up of two worker processes over one (a benchmark, not a test).

    .venv/bin/python benchmarks/bench_ray.py [--n 20] [--queries 50] [--json out.json]

The files: the ``--n`` dev PDFs of MMLongBench-Doc with the fewest pages
(``../shared/data/mmlongbench_doc_dev/documents``, ties by name: 20 PDFs, 363 pages), read where
they are. The queries: the first ``--queries`` questions of the split (``samples_dev.json``, in
file order) about those PDFs, searched with ``Library.search(q, k=10)``.

Three index runs, each into a fresh library, from this process (the one writer):

1. **one process**: ``Library.add(pdfs)``, the reference.
2. **2 workers**: a two-node Ray cluster on 127.0.0.1, each node one CPU and pinned to one core
   (``taskset -c 0 ray start --head …``, ``taskset -c 1 ray start --address …``; workers at
   niceness 0, like the reference, not Ray's 15), and ``Library.add(pdfs, ray=ADDRESS)``.
3. **1 worker**: a one-node cluster pinned to core 0, the same call.

Reported: the nodes of run 2 that equal run 1's (per source, in order: kind, page, bbox, title,
text, summary, vector bits) and the queries whose top-10 (source, kind, page, snippet, score) is
the same; pages/s of each run and per worker process; the speed-up of 2 workers over 1 (target ≥
1.7×); the workers' busy share (the seconds their tasks took, from ``FileResult.timings``, over
wall × workers: low means they waited for the writer or for each other); the load average around
each run (the machine is shared: another process on a core takes it from a pinned worker); and
the writer's share of the wall time: its CPU seconds (this process, Ray's client
threads included) and the seconds it spent storing (``FileResult.timings``: db, commit, lexical,
vectors), each over the wall. The machine has 2 cores: the writer shares them with the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
if not SHARED.exists():
    SHARED = Path(os.environ.get("SLEUTH_SHARED_DATA", "/work/shared/data"))
DATA = SHARED / "mmlongbench_doc_dev"
RAY = Path(sys.executable).with_name("ray")
STORE = ("db", "commit", "lexical", "vectors")
# done in the tasks on a cluster ("entities" is inside "read" there: the task reads, then finds them)
WORK = ("read", "ocr", "summaries", "embed")


def pick(n: int) -> list[Path]:
    import pypdfium2

    def pages(p: Path) -> int:
        doc = pypdfium2.PdfDocument(str(p))
        try:
            return len(doc)
        finally:
            doc.close()

    pdfs = sorted(DATA.glob("documents/*.pdf"))
    return [p for _, _, p in sorted((pages(p), p.name, p) for p in pdfs)[:n]]


def questions(pdfs: list[Path], n: int) -> list[str]:
    names = {p.name for p in pdfs}
    rows = json.loads((DATA / "samples_dev.json").read_text())
    return [r["question"] for r in rows if r["doc_id"] in names][:n]


class Cluster:
    """A local Ray cluster: one node per core given, each with one CPU, pinned to that core."""

    def __init__(self, cores: list[int], token: Path):
        self.cores, self.token = cores, token
        self.temp = tempfile.mkdtemp(prefix="sleuth-bray-", dir="/tmp")  # Ray's socket paths: short
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def __enter__(self) -> "Cluster":
        # One token for the nodes and the writer (tests/test_ray.py says why it is set), the same
        # for every cluster of the run: Ray's client keeps the first token it read.
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.token), RAY_USAGE_STATS_ENABLED="0")
        # Ray runs its workers at niceness 15; the reference run is at 0, and on a shared machine
        # 15 hands the cores to everyone else's work
        env = dict(os.environ, RAY_worker_niceness="0")
        common = ["--num-cpus", "1", "--object-store-memory", "200000000", "--disable-usage-stats"]
        for i, core in enumerate(self.cores):
            where = ["--head", "--port", str(self.port), "--include-dashboard=false", "--temp-dir", self.temp] if i == 0 \
                else ["--address", self.address]
            with open(Path(self.temp) / "start.log", "a") as log:
                done = subprocess.run(["taskset", "-c", str(core), str(RAY), "start", *where, *common],
                                      stdout=log, stderr=subprocess.STDOUT, timeout=180, env=env)
            if done.returncode:
                self.__exit__()
                raise SystemExit(f"ray start failed: see {self.temp}/start.log")
        return self

    def _ours(self) -> list[int]:
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != os.getpid():
                try:  # the temp dir on its command line, or (renamed: ray::…) a file open under it
                    if self.temp.encode() in Path(f"/proc/{d}/cmdline").read_bytes() or any(
                            os.readlink(f"/proc/{d}/fd/{fd}").startswith(self.temp) for fd in os.listdir(f"/proc/{d}/fd")):
                        out.append(int(d))
                except OSError:
                    pass
        return out

    def __exit__(self, *exc) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # this cluster's processes only (not `ray stop`)
            for pid in self._ours():
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.time() + 3
            while self._ours() and time.time() < deadline:
                time.sleep(0.2)
        shutil.rmtree(self.temp, ignore_errors=True)


def index(home: Path, pdfs: list[Path], ray=None, workers: int = 0) -> dict:
    from sleuth import Library

    lib = Library(home)
    load = os.getloadavg()[0]
    c0, t0 = time.process_time(), time.perf_counter()
    rep = lib.add(pdfs, ray=ray)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    lib.close()
    pages = sum(r.pages or 0 for r in rep.results if r.status == "added")
    store = sum(r.timings.get(k, 0.0) for r in rep.results for k in STORE)
    work = sum(r.timings.get(k, 0.0) for r in rep.results for k in WORK)
    busy = {"worker_busy_share": round(work / wall / workers, 3)} if workers else {}
    return {"load_1min_before": round(load, 2), "load_1min_after": round(os.getloadavg()[0], 2), **busy,"wall_s": round(wall, 2), "pages": pages, "pages_per_s": round(pages / wall, 2),
            "added": rep.count("added"), "failed": [r.reason for r in rep.failed],
            "writer_cpu_s": round(cpu, 2), "writer_cpu_share": round(cpu / wall, 3),
            "writer_store_s": round(store, 2), "writer_store_share": round(store / wall, 3)}


def nodes(home: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(home / "library.db")
    try:
        out: dict[str, list[tuple]] = {}
        for row in con.execute("select s.name, n.kind, n.page, n.bbox, n.title, n.text, n.summary, e.vec from nodes n "
                               "join sources s on s.id = n.source_id left join embeddings e on e.node_id = n.id "
                               "order by s.name, n.id"):
            out.setdefault(row[0], []).append(row[1:])
        return out
    finally:
        con.close()


def top10(home: Path, queries: list[str]) -> list[list[tuple]]:
    from sleuth import Library

    lib = Library(home, read_only=True)
    try:
        return [[(h["source"], h["kind"], h["locator"].get("page"), h["snippet"], round(h["score"], 6))
                 for h in lib.search(q, k=10)] for q in queries]
    finally:
        lib.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="PDFs (the fewest pages first)")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument("--keep", help="build the libraries in this folder and keep them")
    args = ap.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA}: not found (the dev split of MMLongBench-Doc)")
    if len(os.sched_getaffinity(0)) < 2 or not shutil.which("taskset"):
        raise SystemExit("needs two cores and taskset")
    pdfs = pick(args.n)
    queries = questions(pdfs, args.queries)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-ray-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"pdfs": [p.name for p in pdfs], "queries": len(queries),
                 "load_before": os.getloadavg()}
    token = work / "ray-token"
    token.write_text(os.urandom(16).hex())
    try:
        out["one_process"] = index(work / "one", pdfs)
        print("one process", out["one_process"], flush=True)
        with Cluster([0, 1], token) as c:
            out["ray_2_workers"] = index(work / "ray2", pdfs, ray=c.address, workers=2)
        print("2 workers", out["ray_2_workers"], flush=True)
        with Cluster([0], token) as c:
            out["ray_1_worker"] = index(work / "ray1", pdfs, ray=c.address, workers=1)
        print("1 worker", out["ray_1_worker"], flush=True)
        a, b = nodes(work / "one"), nodes(work / "ray2")
        total = sum(len(v) for v in a.values())
        same = sum(x == y for name in a for x, y in zip(a[name], b.get(name, [])))
        same_vec = sum(x[-1] == y[-1] for name in a for x, y in zip(a[name], b.get(name, [])))
        ta, tb = top10(work / "one", queries), top10(work / "ray2", queries)
        one, two, w1 = out["one_process"], out["ray_2_workers"], out["ray_1_worker"]
        out["same"] = {"sources": f"{sum(a[n] == b.get(n) for n in a)}/{len(a)}",
                       "nodes": f"{same}/{total}", "vectors": f"{same_vec}/{total}",
                       "nodes_in_ray_library": sum(len(v) for v in b.values()),
                       "top10": f"{sum(x == y for x, y in zip(ta, tb))}/{len(queries)}"}
        out["pages_per_s_per_worker"] = {"1 worker": w1["pages_per_s"], "2 workers": round(two["pages_per_s"] / 2, 2)}
        out["speedup_2_over_1"] = round(w1["wall_s"] / two["wall_s"], 2)
        out["ray_2_workers_over_one_process"] = round(one["wall_s"] / two["wall_s"], 2)
        out["load_after"] = os.getloadavg()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: out[k] for k in ("same", "pages_per_s_per_worker", "speedup_2_over_1",
                                          "ray_2_workers_over_one_process", "load_before", "load_after")}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0 if out["speedup_2_over_1"] >= 1.7 else 1


if __name__ == "__main__":
    sys.exit(main())
