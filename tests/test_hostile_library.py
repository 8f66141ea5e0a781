"""Hostile and unusual conditions at the library level (issue #26, item 5): a full disk, a
library folder made read-only, an absurd ``k``, a library path that is a file, a database URL
with a password in it.

Each test reproduces one reported defect through ``Library`` (the API the CLI, the agent and
the MCP server share). A full disk is made for real where the machine allows a private tmpfs
(``unshare``), and by the real SQLite limit ``max_page_count`` or by the error the store
raises where it does not.
"""

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import event, text

from conftest import write_corpus
from sleuth import Library
import sleuth.library as library_mod
from sleuth.index.lexical import Lexical

ROOT = Path(__file__).resolve().parents[2]  # the folder holding the `sleuth` package
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}

WORDS = "heron quay harbour glacier ash margin freight barge rhine plant logistics report summary water".split()


def _doc(i: int, paragraphs: int) -> str:
    body = [" ".join(WORDS[(i * 7 + j * 3 + n) % len(WORDS)] for n in range(50)) + f" item{i}x{j}." for j in range(paragraphs)]
    return f"# Document {i}\n\n" + "\n\n".join(body) + "\n"


@pytest.fixture
def small_lib(tmp_path):
    """A library of two short notes (one about herons), and a folder of three more files."""
    write_corpus(tmp_path / "a", {"herons.md": "# Herons\n\nGrey herons wade in the shallow water of the harbour.\n",
                                  "quay.md": "# Quay\n\nThe quay was repaired in March after the storm.\n"})
    write_corpus(tmp_path / "b", {f"b{i}.md": _doc(i, 30) for i in range(3)})
    lib = Library(tmp_path / "lib")
    rep = lib.add([tmp_path / "a"])
    assert rep.count("added") == 2
    yield lib, tmp_path
    lib.close()


def assert_consistent(home: Path, sources: int) -> None:
    """The database, the tantivy index and the faiss files on disk hold the same nodes, and no
    temporary file is left in the library."""
    lib = Library(home, create=False)
    try:
        with lib.engine.connect() as c:
            nodes = {r[0] for r in c.execute(text("select id from nodes"))}
            emb = dict(c.execute(text("select tier, count(*) from embeddings group by tier")).all())
            gen = int(c.execute(text("select value from state where key='generation'")).scalar())
        assert lib.status()["sources"] == {"document": sources}
        assert {i for i in lib.lexical.id_list() if i > 0} == nodes
        assert lib.lexical.generation() == gen
        assert {t: lib.vectors.count(t) for t in ("source", "coarse", "fine")} == {t: emb.get(t, 0) for t in ("source", "coarse", "fine")}
    finally:
        lib.close()
    # the faiss files themselves (not only what an open rebuilds in memory) caught up on close
    stamp = json.loads((home / "vectors" / "vectors.json").read_text())
    assert stamp["generation"] == gen and stamp["counts"] == {t: emb.get(t, 0) for t in ("source", "coarse", "fine")}
    assert not [p for p in home.rglob("*") if p.name.endswith(".tmp")]


# -- 1. a full disk ----------------------------------------------------------------------------

FULL_DISK_SCRIPT = textwrap.dedent("""
    import json, os, sys, logging
    logging.disable(logging.WARNING)  # the one-line warnings are checked elsewhere
    import sleuth.library as L
    from sleuth import Library
    mnt, a, b = sys.argv[1:4]
    home, filler = os.path.join(mnt, "lib"), os.path.join(mnt, "filler")
    out = {}

    def fill(spare):
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        os.lseek(fd, 0, os.SEEK_END)
        for size in (1 << 16, 1 << 12, 1 << 9):
            try:
                while True:
                    os.write(fd, b"x" * size)
            except OSError:
                pass
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - spare))
        os.close(fd)

    def reads(lib):
        return {"status": lib.status()["sources"], "search": [h["source"] for h in lib.search("grey herons wade", k=2)],
                "ls": sorted(s["name"] for s in lib.sources())}

    lib = Library(home)
    out["first"] = lib.add([a]).to_dict()["counts"]
    lib.close()
    fill(0)  # not a block left
    lib = Library(home, create=False)  # as `sleuth search` opens it
    out["opened"] = [lib.read_only, lib.full]
    out["full_open"] = reads(lib)
    lib.close()
    try:  # as `sleuth index` does
        Library(home).add([b])
    except OSError as e:
        out["begin"] = str(e)
    try:  # a new library on the full disk
        Library(os.path.join(mnt, "new"))
    except OSError as e:
        out["new"] = str(e)
    os.unlink(filler)
    fill(256 << 10)  # room for a run to begin, not for the files
    L.GROUP_FILES = 2  # several groups: the run stops at the first that finds no room
    lib = Library(home)
    rep = lib.add([b])
    lib.close()
    out["full"] = rep.to_dict()
    lib = Library(home, create=False)
    out["after"] = reads(lib)
    lib.close()
    out["tmp"] = [p for _, _, fs in os.walk(home) for p in fs if p.endswith(".tmp")]
    os.unlink(filler)
    lib = Library(home)
    out["rerun"] = lib.add([b]).to_dict()
    lib.close()
    # the checks that need the tmpfs run here, before the namespace (and the tmpfs) goes
    sys.path.insert(0, sys.argv[4])
    from test_hostile_library import assert_consistent
    assert_consistent(__import__("pathlib").Path(home), sources=len(out["after"]["ls"]) + out["rerun"]["counts"]["added"])
    out["consistent"] = True
    print("RESULT " + json.dumps(out))
""")


def _private_tmpfs_command() -> list[str] | None:
    """A command prefix that runs its argument in a mount namespace where it may mount a tmpfs:
    as root, or as an unprivileged user in a user namespace; None when neither is allowed."""
    if shutil.which("unshare") is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        for prefix in (["unshare", "-m"], ["unshare", "-Urm"]):
            probe = subprocess.run([*prefix, "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs '{d}'"], capture_output=True)
            if probe.returncode == 0:
                return prefix
    return None


def test_a_really_full_disk_fails_the_file_in_one_line_and_keeps_the_library(tmp_path):
    prefix = _private_tmpfs_command()
    if prefix is None:
        pytest.skip("no private tmpfs here (unshare/mount not permitted); the monkeypatched tests below cover the paths")
    write_corpus(tmp_path / "a", {"herons.md": "# Herons\n\nGrey herons wade in the shallow water of the harbour.\n",
                                  "quay.md": "# Quay\n\nThe quay was repaired in March after the storm.\n"})
    write_corpus(tmp_path / "b", {f"b{i}.md": _doc(i, 60) for i in range(6)})
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK_SCRIPT)
    cmd = (f"mount -t tmpfs -o size=3m tmpfs '{mnt}' && "
           f"'{sys.executable}' '{script}' '{mnt}' '{tmp_path / 'a'}' '{tmp_path / 'b'}' '{Path(__file__).parent}'")
    res = subprocess.run([*prefix, "sh", "-c", cmd], capture_output=True, text=True, timeout=180, env=ENV)
    assert "Traceback" not in res.stderr and res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.split("RESULT ", 1)[1])
    assert out["first"]["added"] == 2
    # a library on a disk without a block left opens (read-only, saying why) and reads
    assert out["opened"] == [True, "no space left on device"]
    assert out["full_open"] == {"status": {"document": 2}, "search": ["herons.md", "herons.md"][:len(out["full_open"]["search"])],
                                "ls": ["herons.md", "quay.md"]}
    assert out["begin"] == f"{mnt / 'lib'}: no space left on device; nothing was indexed; free some space and run it again"
    assert out["new"] == f"{mnt / 'new'}: no space left on device; no library can be created there"
    full = out["full"]
    assert full["stopped"] == "no space left on device"
    # the files that met the full disk each say so in one line naming the file and the cause
    hit = [f for f in full["files"] if "no space left on device" in (f["reason"] + " ".join(f["warnings"]))]
    assert hit
    for f in hit:
        said = f["reason"] if f["status"] == "failed" else next(w for w in f["warnings"] if "no space" in w)
        assert said.startswith(Path(f["path"]).name) and "\n" not in said
    # the batch stopped, one line saying how many were not attempted
    if len(full["files"]) < 6:
        assert any("more files not attempted" in f["reason"] + " ".join(f["warnings"]) for f in full["files"])
    # nothing indexed before is lost, and the library reads
    assert out["after"]["status"]["document"] >= 2 and out["after"]["search"][0] == "herons.md"
    assert {"herons.md", "quay.md"} <= set(out["after"]["ls"])
    assert out["tmp"] == []
    # with room again the same command finishes the job, and every index agrees (checked inside)
    assert out["rerun"]["counts"]["failed"] == 0 and out["rerun"]["stopped"] == ""
    assert out["consistent"] is True


def _sqlite_full(lib) -> None:
    """Make the library's SQLite database full where it stands: SQLite's own limit on its size
    (``max_page_count``) fails the next write that needs a page with SQLITE_FULL, the error a full
    disk gives."""
    def limit(dbapi, _rec):
        cur = dbapi.cursor()
        n = cur.execute("PRAGMA page_count").fetchone()[0]
        cur.execute(f"PRAGMA max_page_count={n}")
        cur.close()

    event.listen(lib.engine, "connect", limit)
    lib.engine.dispose()
    return limit


def test_full_database_fails_the_file_in_flight_stops_the_batch_and_keeps_the_rest(small_lib, monkeypatch):
    lib, tmp = small_lib
    limit = _sqlite_full(lib)
    monkeypatch.setattr(library_mod, "GROUP_FILES", 1)  # one group per file: the run stops after the first
    rep = lib.add([tmp / "b"])
    assert rep.stopped == "database or disk is full"
    assert [r.status for r in rep.results] == ["failed"]
    reason = rep.results[0].reason
    assert reason.startswith("b0.md: not stored: database or disk is full") and "2 more files not attempted" in reason
    assert "\n" not in reason
    assert lib.status()["sources"] == {"document": 2} and lib.status()["last_run"]["status"] == "disk full"
    assert lib.search("grey herons wade", k=1)[0]["source"] == "herons.md"
    assert sorted(s["name"] for s in lib.sources()) == ["herons.md", "quay.md"]
    event.remove(lib.engine, "connect", limit)
    lib.engine.dispose()
    rep = lib.add([tmp / "b"])
    assert rep.count("added") == 3 and not rep.stopped
    lib.close()
    assert_consistent(tmp / "lib", sources=5)


def test_no_room_to_begin_is_one_line(small_lib, monkeypatch):
    import sqlite3

    from sqlalchemy.exc import OperationalError

    lib, tmp = small_lib

    def full():
        raise OperationalError("INSERT INTO runs", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(lib._ingestor, "start_run", full)
    with pytest.raises(library_mod.DiskFull) as e:
        lib.add([tmp / "b"])
    assert isinstance(e.value, OSError) and e.value.errno == errno.ENOSPC
    msg = str(e.value)
    assert msg.startswith(str(tmp / "lib") + ": database or disk is full") and "nothing was indexed" in msg and "\n" not in msg


def test_full_disk_after_the_database_commit_is_healed_by_the_next_run(small_lib, monkeypatch):
    lib, tmp = small_lib
    real_apply = Lexical.apply

    def full(self, *a, **kw):  # what tantivy raises when its commit finds no room
        raise ValueError("An IO error occurred: 'No space left on device (os error 28)'")

    monkeypatch.setattr(Lexical, "apply", full)
    rep = lib.add([tmp / "b"])
    assert rep.stopped == "no space left on device"
    # the database took the files: they are stored, and say what is missing until the next run
    assert {r.status for r in rep.results} == {"added"}
    warned = [w for r in rep.results for w in r.warnings if "not searchable yet" in w]
    assert warned and all("no space left on device" in w for w in warned)
    lib.close()
    # while the disk is still full the library opens (its heal fails) and reads
    again = Library(tmp / "lib")
    assert again.status()["sources"] == {"document": 2 + len(rep.results)}
    assert again.search("grey herons wade", k=1)[0]["source"] == "herons.md"
    assert len(again.sources()) == 2 + len(rep.results)
    again.close()
    monkeypatch.setattr(Lexical, "apply", real_apply)
    lib = Library(tmp / "lib")
    rep2 = lib.add([tmp / "b"])
    assert rep2.count("failed") == 0 and not rep2.stopped
    assert lib.search("item2x7", k=1)[0]["source"] == "b2.md"  # a word only the lexical index finds exactly
    lib.close()
    assert_consistent(tmp / "lib", sources=5)


def test_faiss_save_on_a_full_disk_leaves_no_partial_file(small_lib, monkeypatch):
    import faiss

    import sleuth.index.vectors as vectors_mod

    lib, tmp = small_lib
    real_write = faiss.write_index

    def full(index, path):  # half the file, then faiss's own complaint
        Path(path).write_bytes(b"\0" * 100)
        raise RuntimeError(f"Error in void faiss::write_index: write error in {path}: 100 != 4096 (No space left on device)")

    monkeypatch.setattr(vectors_mod.faiss, "write_index", full)
    rep = lib.add([tmp / "b"])
    assert rep.count("added") == 3
    lib.close()  # saves again, fails again: one logged line, no exception
    assert not [p for p in (tmp / "lib").rglob("*") if p.name.endswith(".tmp")]
    monkeypatch.setattr(vectors_mod.faiss, "write_index", real_write)
    lib = Library(tmp / "lib")  # the faiss files are behind: rebuilt from the database on open
    assert lib.search("item1x3", level="fine", k=1)[0]["source"] == "b1.md"
    lib.close()
    assert_consistent(tmp / "lib", sources=5)


# -- 2. a read-only library --------------------------------------------------------------------

def _tree(home: Path) -> dict:
    return {str(p.relative_to(home)): (p.stat().st_size, p.stat().st_mtime_ns) for p in home.rglob("*") if p.is_file()}


def test_read_only_flag_reads_and_refuses_writes_in_one_line(small_lib):
    lib, tmp = small_lib
    lib.close()
    before = _tree(tmp / "lib")
    ro = Library(tmp / "lib", read_only=True)
    assert ro.read_only and ro.status()["read_only"] is True
    hit = ro.search("grey herons wade", k=1)[0]
    assert hit["source"] == "herons.md"
    assert "herons" in json.dumps(ro.read(hit["id"])).lower()
    assert sorted(s["name"] for s in ro.sources()) == ["herons.md", "quay.md"]
    for write in (lambda: ro.add([tmp / "b"]), lambda: ro.remove("quay.md")):
        with pytest.raises(PermissionError) as e:
            write()
        assert "read-only" in str(e.value) and "\n" not in str(e.value)
    ro.close()
    assert _tree(tmp / "lib") == before  # not a byte written, not a lock file made
    with pytest.raises(library_mod.LibraryMissing):
        Library(tmp / "nothing", read_only=True)  # read-only never creates one


READ_ONLY_SCRIPT = textwrap.dedent("""
    import json, sys
    from sleuth import Library
    home, docs = sys.argv[1:3]
    try:
        open(home + "/probe", "w")
        print("WRITABLE")
        sys.exit(0)
    except PermissionError:
        pass
    lib = Library(home)  # the API's defaults: nothing says read-only, the folder does
    out = {"read_only": lib.read_only, "search": [h["source"] for h in lib.search("grey herons wade", k=2)],
           "status": lib.status()["sources"], "ls": sorted(s["name"] for s in lib.sources())}
    try:
        lib.add([docs])
    except PermissionError as e:
        out["add"] = str(e)
    lib.close()
    print("RESULT " + json.dumps(out))
""")


def test_folder_made_read_only_by_permissions_is_searched(small_lib):
    lib, tmp = small_lib
    lib.close()
    home = tmp / "lib"
    script = tmp / "ro.py"
    script.write_text(READ_ONLY_SCRIPT)
    cmd = [sys.executable, str(script), str(home), str(tmp / "b")]
    if os.geteuid() == 0:  # root writes anywhere: drop the capabilities that let it
        if shutil.which("capsh") is None:
            pytest.skip("running as root without capsh to drop the capabilities that override permissions "
                        "(test_read_only_flag_reads_and_refuses_writes_in_one_line covers the read-only mode)")
        cmd = ["capsh", "--drop=cap_dac_override,cap_dac_read_search,cap_fowner", "--", "-c", " ".join(f"'{c}'" for c in cmd)]
    for p in [home, *home.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=ENV)
    finally:
        for p in [home, *home.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
    if "WRITABLE" in res.stdout:
        pytest.skip("permissions do not stop writes here")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    out = json.loads(res.stdout.split("RESULT ", 1)[1])
    assert out["read_only"] is True
    assert out["search"][0] == "herons.md"
    assert out["status"] == {"document": 2} and out["ls"] == ["herons.md", "quay.md"]
    assert "read-only" in out["add"] and "\n" not in out["add"]


# -- 3. k beyond reason ------------------------------------------------------------------------

HUGE_K_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from sleuth import Library
    lib = Library(sys.argv[1], create=False)
    n = lib.status()["tiers"]
    out = {"any": len(lib.search("grey herons wade", k=10**9)),
           "fine": len(lib.search("herons", level="fine", k=10**30)),
           "entity": len(lib.search("March", level="entity", k=10**9)),
           "lexical": len(lib.lexical.search("herons", ("fine",), 10**9)),
           "docs": len(lib.lexical.search_docs("herons", 10**9)),
           "vectors": len(lib.vectors.search("fine", np.ones(384, dtype=np.float32), 10**9)),
           "nodes": sum(n.values())}
    errors = []
    for k in (0, -5, "ten", 2.5):
        try:
            lib.search("herons", k=k)
        except ValueError as e:
            errors.append(str(e))
    out["errors"] = errors
    print("RESULT " + json.dumps(out))
""")


def test_huge_k_is_capped_not_an_abort(small_lib):
    lib, tmp = small_lib
    lib.close()
    script = tmp / "k.py"
    script.write_text(HUGE_K_SCRIPT)
    # a child process: before the cap, tantivy aborted the whole process asking for 80 GB
    res = subprocess.run([sys.executable, str(script), str(tmp / "lib")], capture_output=True, text=True,
                         timeout=120, env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.split("RESULT ", 1)[1])
    assert 1 <= out["any"] <= out["nodes"] and 1 <= out["fine"] <= out["nodes"]
    assert out["lexical"] >= 1 and out["docs"] == 1 and 1 <= out["vectors"] <= out["nodes"]
    assert out["entity"] >= 0
    assert len(out["errors"]) == 4 and all("k must" in e for e in out["errors"])


def test_check_k_caps_at_max_k():
    from sleuth.index.search import MAX_K, check_k

    assert check_k(10**9) == MAX_K and check_k(3) == 3 and check_k(3.0) == 3
    with pytest.raises(ValueError):
        check_k(True)


# -- 4. a library path that is a file ----------------------------------------------------------

def test_library_path_that_is_a_file_is_one_clear_error(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("not a library")
    for kw in ({}, {"create": False}, {"read_only": True}):
        with pytest.raises(library_mod.NotALibrary) as e:
            Library(f, **kw)
        assert isinstance(e.value, ValueError)
        assert str(e.value) == f"{f}: is a file, not a library folder"
    with pytest.raises(library_mod.NotALibrary) as e:
        Library(f"sqlite:///{tmp_path / 'x.db'}", home=f)
    assert str(e.value) == f"{f}: is a file, not a folder for the library's indexes"
    assert f.read_text() == "not a library" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# -- 5. passwords in database URLs -------------------------------------------------------------

def test_redact_url_hides_every_form_of_password():
    from sleuth.index.store import mask_url, redact_url

    assert redact_url("postgresql+psycopg://u:s3cret@db.example:5432/lib") == "postgresql+psycopg://u:***@db.example:5432/lib"
    assert redact_url("postgresql://u@h/db?password=s3cret&sslmode=require") == "postgresql://u@h/db?password=***&sslmode=require"
    assert "s3cret" not in redact_url("postgresql://u:a@h/db?sslpassword=s3cret")
    assert redact_url("sqlite:////tmp/lib/library.db") == "sqlite:////tmp/lib/library.db"
    assert "s3cret" not in redact_url("postgresql://u:s3cret@h:notaport/db")  # unparsable: masked as text
    assert mask_url("cannot open postgresql://u@h/db?password=s3cret now") == "cannot open postgresql://u@h/db?password=*** now"
    assert mask_url("host=h password=s3cret dbname=x") == "host=h password=*** dbname=x"
    assert mask_url("password authentication failed for user u") == "password authentication failed for user u"
    from sleuth.library import mask_url as library_mask  # the name the CLI imports

    assert library_mask is mask_url


def test_status_and_repr_hide_a_postgres_password(tmp_path):
    from fakes.pg import postgres

    with postgres() as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        # trust authentication ignores the passwords: they are only there to be hidden
        for url in (f"postgresql+psycopg://sleuth:Pa55word@127.0.0.1:{port}/postgres",
                    f"postgresql+psycopg://sleuth@127.0.0.1:{port}/postgres?password=Pa55word"):
            lib = Library(url, home=tmp_path / "home")
            st = lib.status()
            shown = json.dumps(st) + repr(lib)
            assert "Pa55word" not in shown, shown
            assert st["database"].startswith(f"127.0.0.1:{port}/postgres")
            lib.close()
