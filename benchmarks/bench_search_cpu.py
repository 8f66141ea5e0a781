"""CPU time of one search, by component, and of searches from many threads and from ``sleuth
serve``'s clients: CPU, not wall time, so that it can be compared on a machine shared with other
work. Before/after a change: run it twice, once with ``PYTHONPATH`` at a copy of the older
commit (``git archive COMMIT | tar -x -C /tmp/old/sleuth``), alternating.

    .venv/bin/python benchmarks/bench_search_cpu.py -L LIB                # an existing library
    .venv/bin/python benchmarks/bench_search_cpu.py -L postgresql+psycopg://u@h/db --home HOME
    .venv/bin/python benchmarks/bench_search_cpu.py --build /tmp/lib      # 6 QMSum meetings, as bench_serve.py

Queries: QMSum questions each made unique (benchmarks/bench_serve.py), so no query vector comes
from the cache. Reported, ms of CPU a search: ``sequential`` (this process, one search at a
time, and per component, each timed around its call), ``threads`` (this process, ``--threads``
searches at once: what a server's worker threads do, without HTTP), ``serve`` (a ``sleuth serve``
process answering ``--clients`` closed-loop clients: the server process's CPU, and PostgreSQL's
when the library is there and ``--pgdata`` names its data folder; backends that start and end
during the run, as with a pool that closes connections, are not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_serve as B  # noqa: E402

os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "SLEUTH_LLM": "none"})


def proc_cpu(pids) -> float:
    tot = 0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tot += int(f[11]) + int(f[12])
    return tot / os.sysconf("SC_CLK_TCK")


def pg_pids(pgdata: str | None) -> list[int]:
    if not pgdata:
        return []
    pm = int(Path(pgdata, "postmaster.pid").read_text().split()[0])
    out = []
    for st in glob.glob("/proc/[0-9]*/stat"):
        try:
            ppid = int(Path(st).read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        pid = int(st.split("/")[2])
        if pid == pm or ppid == pm:
            out.append(pid)
    return out


def sequential(lib, qs: list[str]) -> dict:
    acc: dict[str, float] = defaultdict(float)

    def wrap(obj, name, label):
        f = getattr(obj, name)

        def timed(*a, **k):
            t = time.process_time()
            try:
                return f(*a, **k)
            finally:
                acc[label] += time.process_time() - t

        setattr(obj, name, timed)

    parts = [(lib, "refresh", "refresh"), (lib.searcher, "_lexical", "lexical"), (lib, "embed_query", "embed_query"),
             (lib.vectors, "search", "faiss"), (lib.searcher, "_structure", "structure"),
             (lib, "fetch_nodes", "fetch_nodes"), (lib, "neighbours_many", "neighbours_many"),
             (lib, "node_dict", "node_dict")]
    for obj, name, label in parts:
        wrap(obj, name, label)
    t0 = time.process_time()
    for q in qs:
        lib.search(q)
    cpu = time.process_time() - t0
    for obj, name, _ in parts:
        delattr(obj, name)
    n = len(qs)
    return {"searches": n, "cpu_ms": round(1000 * cpu / n, 2),
            "components_ms": {k: round(1000 * v / n, 2) for k, v in sorted(acc.items(), key=lambda kv: -kv[1])}}


def threaded(lib, qs: list[str], threads: int) -> dict:
    b = getattr(lib.embedder, "_queries", None)
    r0 = (b.runs, b.queries) if b is not None else None
    with ThreadPoolExecutor(threads) as ex:
        t0 = time.process_time()
        list(ex.map(lib.search, qs))
        cpu = time.process_time() - t0
    out = {"searches": len(qs), "threads": threads, "cpu_ms": round(1000 * cpu / len(qs), 2)}
    if r0 is not None:
        out["queries_per_embedding_run"] = round((b.queries - r0[1]) / max(1, b.runs - r0[0]), 2)
    return out


def served(where: str, home: str | None, qs: list[str], clients: int, pgdata: str | None) -> dict:
    port = B.free_port()
    cmd = [sys.executable, "-m", "sleuth.cli", "serve", "-L", where, "--port", str(port), "--rate", "0"]
    proc = subprocess.Popen(cmd + (["--home", home] if home else []), env=os.environ, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    import httpx

    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit("sleuth serve exited")
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        lat: list[float] = []
        errors = [0]

        async def run(qlist):
            it = iter(qlist)

            async def client(http):
                for q in it:
                    t0 = time.perf_counter()
                    r = await http.get(base + "/search", params={"q": q, "k": 8})
                    errors[0] += r.status_code != 200
                    lat.append(time.perf_counter() - t0)

            async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
                await asyncio.gather(*(client(http) for _ in range(clients)))

        warm, qs = qs[:100], qs[100:]
        asyncio.run(run(warm))
        lat.clear()
        pgs = pg_pids(pgdata)
        s0, p0, c0, w0 = proc_cpu([proc.pid]), proc_cpu(pgs), time.process_time(), time.perf_counter()
        asyncio.run(run(qs))
        s1, p1, c1, w1 = proc_cpu([proc.pid]), proc_cpu(pgs), time.process_time(), time.perf_counter()
    finally:
        proc.terminate()
        proc.wait(60)
    lat.sort()
    n = len(lat)
    out = {"searches": n, "clients": clients, "errors": errors[0], "server_cpu_ms": round(1000 * (s1 - s0) / n, 2),
           "client_cpu_ms": round(1000 * (c1 - c0) / n, 2), "searches_per_s": round(n / (w1 - w0), 1),
           "p50_ms": round(1000 * lat[n // 2], 1), "p95_ms": round(1000 * lat[min(n - 1, int(0.95 * n))], 1)}
    if pgdata:
        out["postgres_cpu_ms"] = round(1000 * (p1 - p0) / n, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-L", "--library", help="a library folder or database URL")
    ap.add_argument("--home", help="the folder for a database library's indexes")
    ap.add_argument("--build", help="index 6 QMSum meetings (80 turns a file) into this new library folder first")
    ap.add_argument("--pgdata", help="the PostgreSQL data folder, to count the database server's CPU too")
    ap.add_argument("--searches", type=int, default=300)
    ap.add_argument("--threads", type=int, default=50)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out: sequential,threads,serve")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    meetings = sorted(B.DATA.glob("*.json"))[:6]
    where = args.library or args.build
    if not where:
        raise SystemExit("give -L LIBRARY or --build FOLDER")
    if args.build:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="sleuth-bench-cpu-") as d:
            files = B.write_meetings(meetings, Path(d), 80)
            subprocess.run([sys.executable, "-m", "sleuth.cli", "index", "-L", args.build, "--json",
                            *map(str, files)], check=True, stdout=subprocess.DEVNULL)
    from sleuth import Library
    from sleuth.index.embed import Embedder

    qs = B.queries(meetings, random.Random(0), 3 * args.searches + 160)
    # the server's embedder: one ONNX thread a run (commands/serve.py)
    lib = Library(where, home=args.home, embedder=Embedder(threads=1))
    for q in qs[:20]:
        lib.search(q)
    skip = set(args.skip.split(","))
    res: dict = {"nodes": sum(lib.status()["tiers"].values()), "cpus": os.cpu_count()}
    if "sequential" not in skip:
        res["sequential"] = sequential(lib, qs[20 : 20 + args.searches])
    if "threads" not in skip:
        lib.refresh_every = 1.0  # as a server's library (serve/http.py); a no-op before that existed
        res["threads"] = threaded(lib, qs[20 + args.searches : 20 + 2 * args.searches], args.threads)
    lib.close()
    if "serve" not in skip:
        res["serve"] = served(where, args.home, qs[20 + 2 * args.searches :], args.clients, args.pgdata)
    if args.json:
        print(json.dumps(res, indent=1))
        return
    print(f"{res['nodes']} nodes, {res['cpus']} CPUs")
    for part in ("sequential", "threads", "serve"):
        if part in res:
            print(f"{part:10s} {json.dumps(res[part])}")


if __name__ == "__main__":
    main()
