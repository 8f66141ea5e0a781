"""Indexing on a Ray cluster (index/ray_ingest.py) against its reference, the same files indexed
in one process: a real two-node cluster on 127.0.0.1 (two raylets, one CPU each), started with
the environment's own ``ray`` command for this module and stopped after it."""

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from conftest import write_corpus
from sleuth import Library
from sleuth.samples.documents import make_report_pdf, make_two_column_pdf

RAY = Path(sys.executable).with_name("ray")
pytestmark = pytest.mark.skipif(not RAY.exists(), reason="the ray command is not installed")

NOTES = {f"note{i:02d}.txt": f"Field note {i}: the {w} colony at site {i} counted {i * 7} nests; the Oxford survey "
         f"team under Maria Lopez logged it for the Marrow Bay Trust.\n\nSecond paragraph of note {i} about {w} chicks."
         for i, w in enumerate("heron egret gannet puffin tern plover".split())}
QUERIES = ["tidal energy pilot turbines", "puffin colony nests", "cost of the pilot per megawatt hour",
           "Oxford survey team", "two column abstract", "figure chart results"]


def _ours(temp: str) -> list[int]:
    """Processes of this module's cluster: each names its temp dir on its command line or, once
    it has renamed itself (``ray::DashboardAgent``), holds a file open under it (its log)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                if temp.encode() in Path(f"/proc/{d}/cmdline").read_bytes() or any(
                        os.readlink(f"/proc/{d}/fd/{fd}").startswith(temp) for fd in os.listdir(f"/proc/{d}/fd")):
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def _stop(temp: str) -> None:
    # not `ray stop`: it stops every Ray process of the machine, another run's cluster included
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _ours(temp):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.time() + 3
        while _ours(temp) and time.time() < deadline:
            time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="sleuth-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    # Token authentication, with a token of this cluster's own, set for the nodes and for every
    # process that connects (this one, and the commands it runs): left to Ray, a head started
    # while ~/.ray/auth_token exists requires it and a joining `ray start` does not send it.
    token = Path(temp) / "token"
    token.write_text(os.urandom(16).hex())
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)
    env = dict(os.environ)
    common = ["--num-cpus", "1", "--object-store-memory", "100000000", "--disable-usage-stats"]
    try:
        for cmd in ([str(RAY), "start", "--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", temp],
                    [str(RAY), "start", "--address", f"127.0.0.1:{port}"]):
            # output to a file, not a pipe: with the head's output on a pipe, nodes could not join
            # it afterwards (an authentication error)
            with open(Path(temp) / "start.log", "w+") as log:
                done = subprocess.run(cmd + common, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=180)
                log.seek(0)
                assert done.returncode == 0, log.read()[-2000:]
        yield f"127.0.0.1:{port}"
    finally:
        _stop(temp)
        shutil.rmtree(temp, ignore_errors=True)
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _corpus(root: Path) -> Path:
    docs = root / "docs"
    write_corpus(docs, NOTES)
    for i in range(3):
        make_report_pdf(docs / f"report{i}.pdf", outline=bool(i % 2), seed=i, two_column=i == 2)
    make_two_column_pdf(docs / "columns.pdf")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntruncated")
    return docs


def _nodes(home: Path, vectors: bool = True) -> dict[str, list[tuple]]:
    """Per source (by file name): its nodes in order, their entity mentions and (``vectors``)
    their vectors."""
    con = sqlite3.connect(home / "library.db")
    try:
        out: dict[str, list[tuple]] = {}
        for row in con.execute(
                "select s.name, n.kind, n.tier, n.depth, n.ordinal, n.page, n.page_end, n.bbox, n.title, n.title_path, "
                "n.text, n.summary, n.tokens, n.id - s.root_id, " + ("e.vec" if vectors else "e.tier") + " from nodes n join sources s on s.id = n.source_id "
                "left join embeddings e on e.node_id = n.id order by s.name, n.id"):
            out.setdefault(row[0], []).append(row[1:])
        for row in con.execute("select s.name, e.name, e.kind, m.modality, m.surface, m.node_id - s.root_id from mentions m "
                               "join entities e on e.id = m.entity_id join sources s on s.id = m.source_id "
                               "order by s.name, m.node_id, e.norm, m.surface"):
            out[row[0]].append(row[1:])
        return out
    finally:
        con.close()


def _top10(lib: Library) -> list[list[tuple]]:
    return [[(h["source"], h["kind"], h["locator"].get("page"), h["snippet"], round(h["score"], 5))
             for h in lib.search(q, k=10)] for q in QUERIES]


@pytest.fixture(scope="module")
def built(cluster, tmp_path_factory):
    """The corpus indexed in one process and on the cluster: (docs, one, ray, their reports, events)."""
    root = tmp_path_factory.mktemp("built")
    docs = _corpus(root)
    one = Library(root / "one")
    rep_one = one.add([docs])
    events = []
    on_ray = Library(root / "ray")
    rep_ray = on_ray.add([docs], ray=cluster, progress=lambda *e: events.append(e))
    yield docs, one, on_ray, rep_one, rep_ray, events
    one.close()
    on_ray.close()


def test_the_cluster_builds_the_library_one_process_builds(built):
    docs, one, on_ray, rep_one, rep_ray, events = built
    assert [(Path(r.path).name, r.status, r.nodes, r.pages) for r in rep_ray.results] == \
           [(Path(r.path).name, r.status, r.nodes, r.pages) for r in rep_one.results]
    assert rep_ray.count("added") == len(NOTES) + 4
    a, b = _nodes(one.home), _nodes(on_ray.home)
    assert sorted(a) == sorted(b) and len(a) == len(NOTES) + 4
    for name in a:  # texts, kinds, pages, bboxes, summaries, entities and vectors (same bits)
        assert a[name] == b[name], name
    assert _top10(on_ray) == _top10(one)
    assert all(len(t) == 10 for t in _top10(one))
    # progress counted files and pages as they were read on the cluster
    started = {p for ev, p, *_ in events if ev == "start"}
    assert started == {str(p) for p in docs.iterdir()}
    pages = {Path(p).name: (d, t) for ev, p, d, t in events if ev == "within:pages"}
    for r in rep_ray.results:
        if r.pages:
            assert pages[Path(r.path).name] == (r.pages, r.pages)
    assert [e[2:] for e in events if e[0] == "done"][-1] == (len(NOTES) + 5, len(NOTES) + 5)


def test_a_file_that_fails_on_the_cluster_gets_its_one_line_and_the_rest_land(built):
    docs, one, on_ray, rep_one, rep_ray, _ = built
    failed = [(Path(r.path).name, r.reason) for r in rep_ray.failed]
    assert failed == [(Path(r.path).name, r.reason) for r in rep_one.failed]
    assert [n for n, _ in failed] == ["broken.pdf"] and failed[0][1].startswith("broken.pdf: ")
    assert "\n" not in failed[0][1]
    assert [f["reason"] for f in on_ray.failures()] == [failed[0][1]]
    assert len(on_ray.sources()) == len(NOTES) + 4


HOOK = textwrap.dedent('''
    def hook():
        """In each Ray worker: reading a file named dies-*.txt kills the worker process, the first
        time only for dies-once.txt (a marker file remembers), every time for dies-always.txt."""
        import os, signal
        import sleuth.readers as readers

        real = readers.read_path

        def read_path(path, **kw):
            marker = os.path.join(os.environ["RAY_TEST_KILL_MARKERS"], path.name)
            if path.name == "dies-always.txt" or (path.name == "dies-once.txt" and not os.path.exists(marker)):
                open(marker, "a").close()
                os.kill(os.getpid(), signal.SIGKILL)
            return real(path, **kw)

        readers.read_path = read_path
''')


def test_a_worker_killed_in_the_middle_of_a_file_is_retried_and_the_file_lands_once(cluster, tmp_path):
    import ray

    docs = write_corpus(tmp_path / "docs", {**{k: NOTES[k] for k in list(NOTES)[:3]},
                                            "dies-once.txt": "A worker died reading this note about gannets.",
                                            "dies-always.txt": "No worker survives this note."})[0].parent
    markers = tmp_path / "markers"
    markers.mkdir()
    ns = {"__name__": "sleuth_test_ray_hook"}  # no such module: the hook is pickled by value
    exec(HOOK, ns)
    ray.init(address=cluster, runtime_env={"worker_process_setup_hook": ns["hook"],
                                           "env_vars": {"RAY_TEST_KILL_MARKERS": str(markers)}},
             logging_level="WARNING", log_to_driver=False)
    try:
        lib = Library(tmp_path / "lib")
        rep = lib.add([docs], ray=cluster)  # the connection made above is used as it is
    finally:
        ray.shutdown()
    status = {Path(r.path).name: (r.status, r.reason) for r in rep.results}
    assert (markers / "dies-once.txt").exists()  # its worker did die
    assert status["dies-once.txt"] == ("added", "")
    assert status["dies-always.txt"][0] == "failed"
    assert status["dies-always.txt"][1] == ("dies-always.txt: the Ray worker died reading this file 3 times (a crash in "
                                            "the PDF library, or out of memory); skipped")
    assert sorted(s for s, _ in status.values()) == ["added"] * 4 + ["failed"]
    names = [s["name"] for s in lib.sources()]
    assert sorted(names) == sorted(set(names)) and len(names) == 4
    hits = lib.search("worker died gannets", level="fine", k=3)
    assert hits[0]["source"] == "dies-once.txt"
    assert lib.lexical.id_list() == sorted(set(lib.lexical.id_list()))


def _count(home: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{home / 'library.db'}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("select count(*) from sources").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_a_killed_index_run_on_the_cluster_resumes_without_loss_or_duplicates(cluster, tmp_path):
    many = {f"log{i:03d}.txt": f"Entry {i}: the {('north', 'south', 'east')[i % 3]} weir gauge read {i * 3} cm "
            f"at dawn, logged by ranger {i % 7}." for i in range(60)}
    docs = write_corpus(tmp_path / "docs", many)[0].parent
    home = tmp_path / "lib"
    # groups of three files: the run commits twenty times, so a stop lands between commits
    small_groups = ("import sys, sleuth.index.ingest as i, sleuth.library as L; i.GROUP_FILES = L.GROUP_FILES = 3; "
                    "from sleuth.cli import main; sys.argv[0] = 'sleuth'; main()")
    cmd = ["index", str(docs), "-L", str(home), "--ray", cluster, "--json"]

    def run_until(stored: int) -> subprocess.Popen:
        run = subprocess.Popen([sys.executable, "-c", small_groups, *cmd], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.time() + 120
        while _count(home) < stored and run.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        return run

    # Ctrl-C: the tasks are cancelled, what was stored stays, and the run says so
    run = run_until(3)
    os.kill(run.pid, signal.SIGINT)
    err = run.communicate(timeout=120)[1]
    assert run.returncode == 130 and "cancelled:" in err, err[-2000:]
    after_ctrl_c = _count(home)
    assert 0 < after_ctrl_c < len(many)
    # SIGKILL: nothing runs in the writer after it
    run = run_until(after_ctrl_c + 3)
    try:
        os.killpg(run.pid, signal.SIGKILL)
    finally:
        run.wait()
    stored = _count(home)
    assert after_ctrl_c < stored < len(many), f"the kill was meant to land mid-batch ({stored} of {len(many)} stored)"

    again = subprocess.run([str(Path(sys.executable).with_name("sleuth")), *cmd], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    counts = json.loads(again.stdout)["counts"]
    assert counts["added"] + counts["skipped"] == len(many) and counts["skipped"] >= stored
    assert counts["failed"] == 0
    con = sqlite3.connect(home / "library.db")
    assert [r[0] for r in con.execute("select status from runs order by id")] == ["cancelled", "killed", "done"]
    con.close()

    ref = Library(tmp_path / "one")
    ref.add([docs])
    lib = Library(home)
    # vectors aside: groups of three are other embedding batches than the reference's one group
    a, b = _nodes(ref.home, vectors=False), _nodes(lib.home, vectors=False)
    assert sorted(a) == sorted(b) == sorted(many)
    assert all(a[n] == b[n] for n in a)
    assert len(lib.sources()) == len(many)
    ids = lib.lexical.id_list()
    assert ids == sorted(set(ids)) and len(ids) == len(ref.lexical.id_list())
    assert lib.vectors.count("fine") == ref.vectors.count("fine")
    assert [h["source"] for h in lib.search("weir gauge read 111 cm", level="fine", k=3)][0] == "log037.txt"
