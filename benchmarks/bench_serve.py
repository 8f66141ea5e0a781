"""``sleuth serve`` under load: concurrent clients searching one server on a PostgreSQL library
while another process indexes into the same library, and nothing lost or doubled when that
indexing is killed (SIGKILL) and run again.

    .venv/bin/python benchmarks/bench_serve.py                    # a throwaway PostgreSQL server
    .venv/bin/python benchmarks/bench_serve.py --url postgresql+psycopg://u@host/db --json

The documents are real: QMSum meeting transcripts (../shared/data/qmsum_dev, SOURCE.md there)
cut into small text files of ``--turns`` speaker turns each. The queries are QMSum's own
questions, each made unique by a word from its meeting's transcript, so the server's cache of
query vectors never answers for one (every request embeds its query). The clients run in this
process, on the same machine as the server and PostgreSQL, on aiohttp (``--client httpx``: the
client measured before 2026-12-07, ~12 ms of CPU a request against aiohttp's 0.7 ms; every
result reports ``client_cpu_ms_per_request``).

Phases, one server process (``--rate 0``: all clients share one address) on an empty --home:

1. ``base``: the first meetings are indexed by ``sleuth index`` before the server starts (it
   catches up from the database alone);
2. ``idle``: ``--clients`` clients search for ``--seconds`` (the paired baseline);
3. ``indexing``: the same load while ``sleuth index`` adds more meetings from another process;
4. ``kill``: ``sleuth index`` of further meetings is killed with SIGKILL after ``--kill-after``
   seconds and run again to the end; the same files indexed by one clean run into a second,
   fresh database must give the same sources, nodes and embeddings, with no path twice, and the
   server's derived faiss and tantivy indexes must hold exactly the database's nodes.

Reported: p50/p95/p99 latency, errors and requests/s per phase, how soon the server saw the
new files, what following the database cost (``/healthz``), and the kill check.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "qmsum_dev" / "meetings"
if not DATA.exists():
    DATA = Path(os.environ.get("SLEUTH_SHARED_DATA", "/work/shared/data")) / "qmsum_dev" / "meetings"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "SLEUTH_LLM": "none"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A throwaway PostgreSQL server in a temporary folder (as user nobody when root)."""

    def __init__(self):
        self.data = tempfile.mkdtemp(prefix="sleuth-bench-pg-")
        os.chmod(self.data, 0o777)
        if os.geteuid() == 0:
            shutil.chown(self.data, "nobody")
        self.port = free_port()
        self._run(f"initdb -D {self.data}/db -A trust -U sleuth")
        self._run(f"pg_ctl -D {self.data}/db -w -o '-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 "
                  f"-c max_connections=200' -l {self.data}/log start")
        self.url = f"postgresql+psycopg://sleuth@127.0.0.1:{self.port}/postgres"

    def _run(self, cmd: str) -> None:
        argv = ["su", "nobody", "-s", "/bin/sh", "-c", cmd] if os.geteuid() == 0 else ["sh", "-c", cmd]
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{cmd.split()[0]} failed: {r.stderr.strip()[-300:]}")

    def stop(self) -> None:
        self._run(f"pg_ctl -D {self.data}/db -m fast stop")
        shutil.rmtree(self.data, ignore_errors=True)


def new_database(url: str, name: str) -> str:
    import psycopg

    base = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


def write_meetings(meetings: list[Path], out: Path, turns: int) -> list[Path]:
    """Each meeting as text files of ``turns`` speaker turns, one paragraph per turn."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for m in meetings:
        tr = json.loads(m.read_text())["meeting_transcripts"]
        for part, i in enumerate(range(0, len(tr), turns)):
            p = out / f"{m.stem}-part{part:02d}.txt"
            body = "\n\n".join(f"{t['speaker']}: {t['content']}" for t in tr[i : i + turns])
            p.write_text(f"{m.stem} meeting, part {part + 1}\n\n{body}\n")
            files.append(p)
    return files


def queries(meetings: list[Path], rng: random.Random, n: int = 20_000) -> list[str]:
    """``n`` queries (at most half the possible ones): QMSum's questions, each with a word of its
    meeting appended, all distinct, so the server's cache of query vectors never answers for one."""
    asked, words = [], {}
    for m in meetings:
        d = json.loads(m.read_text())
        words[m] = sorted({w.lower() for t in d["meeting_transcripts"] for w in re.findall(r"[A-Za-z]{5,}", t["content"])})
        asked += [(m, q["query"]) for q in d["specific_query_list"] + d["general_query_list"]]
    # a few meetings hold fewer distinct pairs than n: drawing until n would never end
    n = min(n, sum(len(words[m]) for m, _q in asked) // 2)
    out: set[str] = set()
    while len(out) < n:
        m, q = rng.choice(asked)
        out.add(f"{q} {rng.choice(words[m])}")
    out_list = sorted(out)
    rng.shuffle(out_list)
    return out_list


def index(url: str, home: Path, files: list[Path], kill_after: float | None = None) -> dict:
    """``sleuth index`` in its own process; killed with SIGKILL after ``kill_after`` seconds."""
    cmd = [sys.executable, "-m", "sleuth.cli", "index", "-L", url, "--home", str(home), "--json", *map(str, files)]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        try:
            p.wait(kill_after)
            return {"killed": False, "seconds": time.perf_counter() - t0}
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
            return {"killed": True, "seconds": time.perf_counter() - t0}
    out, err = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"sleuth index failed: {err[-1000:]}")
    rep = json.loads(out)
    return {"seconds": time.perf_counter() - t0, "counts": rep["counts"]}


class Server:
    def __init__(self, url: str, home: Path, log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "sleuth.cli", "serve", "-L", url, "--home", str(home),
                                      "--port", str(self.port), "--rate", "0"], env=ENV,
                                     stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"sleuth serve exited: {log.read_text()[-1000:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.start_seconds = time.perf_counter() - t0

    def get(self, path: str, **params):
        r = httpx.get(self.base + path, params=params, timeout=60)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def load(base: str, qs: list[str], clients: int, seconds: float, client: str = "aiohttp", think: float = 0.0) -> dict:
    """``clients`` concurrent clients, each sending its next search as soon as the last returns
    (``think`` > 0: after a pause drawn from an exponential distribution of that mean, in seconds,
    as people reading the hits would; 0 is the worst case, every client always waiting).

    ``client``: ``aiohttp`` (default) or ``httpx``. The load generator runs on the server's own
    cores, so its CPU a request is latency it adds to every search; httpx's async client measured
    ~10-12 ms of CPU a request at 50 connections, aiohttp's a fraction of that
    (``client_cpu_ms_per_request`` in the result)."""
    lat: list[float] = []
    errors: list[str] = []
    it = iter(qs)
    rng = random.Random(1)

    async def pause():
        if think > 0:
            await asyncio.sleep(rng.expovariate(1.0 / think))

    async def one_httpx(http, until: float):
        await pause()
        while time.monotonic() < until:
            t0 = time.perf_counter()
            try:
                r = await http.get(base + "/search", params={"q": next(it), "k": 8})
                if r.status_code != 200 or not isinstance(r.json(), list):
                    errors.append(f"{r.status_code} {r.text[:200]}")
            except httpx.HTTPError as e:
                errors.append(repr(e)[:200])
            lat.append(time.perf_counter() - t0)
            await pause()

    async def one_aiohttp(http, until: float):
        import aiohttp

        await pause()  # people do not all press enter at the same instant
        while time.monotonic() < until:
            t0 = time.perf_counter()
            try:
                async with http.get(base + "/search", params={"q": next(it), "k": "8"}) as r:
                    body = await r.read()
                    if r.status != 200 or not isinstance(json.loads(body), list):
                        errors.append(f"{r.status} {body[:200]!r}")
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
                errors.append(repr(e)[:200])
            lat.append(time.perf_counter() - t0)
            await pause()

    async def main():
        until = time.monotonic() + seconds
        if client == "httpx":
            async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
                t0 = time.perf_counter()
                await asyncio.gather(*(one_httpx(http, until) for _ in range(clients)))
                return time.perf_counter() - t0
        import aiohttp

        conn = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as http:
            t0 = time.perf_counter()
            await asyncio.gather(*(one_aiohttp(http, until) for _ in range(clients)))
            return time.perf_counter() - t0

    cpu0 = time.process_time()
    wall = asyncio.run(main())
    # the load generator shares the machine's cores with the server: its own CPU a request says
    # how much of the measured latency is the clients' (this process runs nothing else meanwhile)
    client_cpu = time.process_time() - cpu0
    lat.sort()

    def pct(p: float) -> float:
        return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else float("nan")

    return {"client": client, "think_s": think, "requests": len(lat), "errors": len(errors), "first_errors": errors[:3],
            "rps": round(len(lat) / wall, 1), "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "max_ms": pct(1.0), "client_cpu_ms_per_request": round(1000 * client_cpu / max(1, len(lat)), 2)}


def db_counts(url: str) -> dict:
    from sqlalchemy import create_engine, text

    eng = create_engine(url)
    with eng.connect() as c:
        q = lambda s: c.execute(text(s)).scalar()  # noqa: E731
        out = {"sources": q("SELECT count(*) FROM sources"), "nodes": q("SELECT count(*) FROM nodes"),
               "embeddings": q("SELECT count(*) FROM embeddings"),
               "paths_twice": q("SELECT count(*) FROM (SELECT path FROM sources GROUP BY path HAVING count(*) > 1) d"),
               "per_source": {r[0].rsplit("/", 1)[-1]: (r[1], r[2]) for r in c.execute(text(
                   "SELECT s.path, s.n_nodes, (SELECT count(*) FROM embeddings e JOIN nodes n ON n.id = e.node_id "
                   "WHERE n.source_id = s.id) FROM sources s"))},
               "node_ids": sorted(r[0] for r in c.execute(text("SELECT id FROM nodes")))}
    eng.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a PostgreSQL library URL (default: a throwaway local server)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each load phase")
    ap.add_argument("--turns", type=int, default=80, help="speaker turns per text file")
    ap.add_argument("--base", type=int, default=6, help="meetings indexed before the server starts")
    ap.add_argument("--during", type=int, default=4, help="meetings indexed during the load")
    ap.add_argument("--killed", type=int, default=3, help="meetings indexed by the run that is killed")
    ap.add_argument("--kill-after", type=float, default=8.0)
    ap.add_argument("--think", type=float, default=0.0,
                    help="each client's mean pause between searches, in seconds (exponential; 0: none)")
    ap.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp",
                    help="the load generator's HTTP client (it shares the server's cores)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.client == "aiohttp" and importlib.util.find_spec("aiohttp") is None:
        print("aiohttp is not installed (pip install -e '.[bench]'): the load generator uses httpx, "
              "which costs the server's cores ~10x more CPU a request", file=sys.stderr)
        args.client = "httpx"

    meetings = sorted(DATA.glob("*.json"))
    if len(meetings) < args.base + args.during + args.killed:
        raise SystemExit(f"{DATA}: {len(meetings)} meetings, fewer than asked for")
    rng = random.Random(0)
    work = Path(tempfile.mkdtemp(prefix="sleuth-bench-serve-"))
    pg = None if args.url else Postgres()
    url = args.url or pg.url
    server = None
    try:
        sets = {}
        at = 0
        for name, n in (("base", args.base), ("during", args.during), ("killed", args.killed)):
            sets[name] = write_meetings(meetings[at : at + n], work / name, args.turns)
            at += n
        qs = queries(meetings[: args.base + args.during], rng)
        res: dict = {"clients": args.clients, "seconds": args.seconds, "cpus": os.cpu_count(),
                     "files": {k: len(v) for k, v in sets.items()}, "queries": len(qs)}
        res["index_base"] = index(url, work / "home-indexer", sets["base"])
        server = Server(url, work / "home-serve", work / "serve.log")
        res["server_start_s"] = round(server.start_seconds, 2)
        load(server.base, qs[-200:], min(args.clients, 10), 2.0, args.client)  # warm-up, not reported
        half = len(qs) // 2 - 100
        res["idle"] = load(server.base, qs[:half], args.clients, args.seconds, args.client, args.think)

        probe = sets["during"][0].stem
        done = {}
        indexer = subprocess.Popen([sys.executable, "-m", "sleuth.cli", "index", "-L", url, "--home",
                                    str(work / "home-indexer"), *map(str, sets["during"])], env=ENV,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t_index = time.perf_counter()
        res["indexing"] = load(server.base, qs[half : 2 * half], args.clients, args.seconds, args.client, args.think)
        res["indexing"]["indexer_finished_within_phase"] = indexer.poll() is not None
        if indexer.wait(1800) != 0:
            raise SystemExit(f"sleuth index failed: {indexer.stderr.read()[-1000:]}")
        done["index_s"] = time.perf_counter() - t_index
        t_end = time.perf_counter()
        while not any(s["name"].startswith(probe) for s in server.get("/ls")) or \
                len(server.get("/ls")) < len(sets["base"]) + len(sets["during"]):
            time.sleep(0.1)
        res["index_during"] = {"seconds": round(done["index_s"], 1),
                               "seen_by_server_after_s": round(time.perf_counter() - t_end, 2)}

        killed = index(url, work / "home-indexer", sets["killed"], kill_after=args.kill_after)
        rerun = index(url, work / "home-indexer", sets["killed"])
        clean_url = new_database(url, "sleuth_bench_clean")
        clean = index(clean_url, work / "home-clean", sets["killed"])
        after, ref = db_counts(url), db_counts(clean_url)
        names = {p.name for p in sets["killed"]}
        mine = {k: v for k, v in after["per_source"].items() if k in names}
        time.sleep(3)  # the server follows the rerun
        health = server.get("/healthz")
        status = server.get("/status")
        server.stop()
        server = None
        from sleuth.index.lexical import Lexical

        lexical_ids = [i for i in Lexical(work / "home-serve" / "lexical").id_list() if i > 0]  # entities: negative
        res["kill"] = {
            "killed_after_s": round(killed["seconds"], 1), "killed": killed["killed"], "rerun": rerun["counts"],
            "sources": after["sources"], "expected_sources": sum(len(v) for v in sets.values()),
            "paths_twice": after["paths_twice"],
            "killed_set_same_as_clean_run": mine == ref["per_source"],
            "killed_set_nodes": sum(v[0] for v in mine.values()), "clean_run_nodes": sum(v[0] for v in ref["per_source"].values()),
            "server_vectors": sum(status["vectors"].values()), "db_embeddings": after["embeddings"],
            "server_lexical_rows_equal_db_nodes": lexical_ids == after["node_ids"],
        }
        res["ok"] = (res["kill"]["killed_set_same_as_clean_run"] and not after["paths_twice"]
                     and after["sources"] == res["kill"]["expected_sources"]
                     and res["kill"]["server_vectors"] == after["embeddings"]
                     and res["kill"]["server_lexical_rows_equal_db_nodes"]
                     and res["idle"]["errors"] == 0 and res["indexing"]["errors"] == 0)
        res["follow"] = health["follow"]
        res["nodes"] = after["nodes"]
    finally:
        if server is not None:
            server.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{res['cpus']} CPUs, {args.clients} clients (pause {args.think:g} s), {args.seconds:g} s a phase; files {res['files']}; "
          f"{res['nodes']} nodes at the end; server started in {res['server_start_s']} s on an empty home")
    for ph in ("idle", "indexing"):
        r = res[ph]
        print(f"{ph:9s} {r['requests']:6d} searches {r['rps']:7.1f}/s  p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  "
              f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}")
    print(f"p95 ratio indexing/idle: {res['indexing']['p95_ms'] / res['idle']['p95_ms']:.2f}")
    print(f"files indexed during the load: {res['index_during']['seconds']} s; seen by the server "
          f"{res['index_during']['seen_by_server_after_s']} s after the run ended")
    f = res["follow"]
    print(f"following the database: {f['steps']} checks, {f['heals']} heals, last {f['last_ms']} ms, max {f['max_ms']} ms")
    k = res["kill"]
    print(f"kill: SIGKILL after {k['killed_after_s']} s (killed: {k['killed']}), rerun {k['rerun']}; sources "
          f"{k['sources']}/{k['expected_sources']}, paths twice {k['paths_twice']}, killed set = clean run: "
          f"{k['killed_set_same_as_clean_run']} ({k['killed_set_nodes']} vs {k['clean_run_nodes']} nodes); server "
          f"vectors {k['server_vectors']} = embeddings {k['db_embeddings']}; lexical rows = nodes: "
          f"{k['server_lexical_rows_equal_db_nodes']}")
    print("OK" if res["ok"] else "FAILED")


if __name__ == "__main__":
    main()
