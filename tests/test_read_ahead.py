"""Reading ahead (index/read_ahead.py) and reading PDFs in a process (index/read_process.py),
each against its plain reference: files read in turn, in this process."""

import os
import sqlite3
import threading
import time

import numpy as np
import pytest

from conftest import write_text_pdf
from sleuth import Library
from sleuth.core import ReaderError
from sleuth.index.read_ahead import ReadAhead, Stopped
from sleuth.index.read_process import ReaderProcess
from sleuth.readers import read_path

PAGES = ["Annual Report 2023\n\nThe Rotterdam plant of Acme Holdings opened in March.\nMaria Lopez leads it for the World Health Organization.",
         "Results\n\nGross margin fell to 31 percent at Acme Holdings.\nThe WHO audit found no issue with the Rotterdam plant."]


@pytest.mark.parametrize("depth", [0, 1])
def test_read_ahead_keeps_order_and_raises_at_the_failing_file(depth, tmp_path):
    seen = []

    def prepare(n, f):
        seen.append((n, threading.current_thread().name))
        if f == "c":
            raise ValueError("boom at c")
        return f.upper()

    got = []
    with pytest.raises(ValueError, match="boom at c"):
        with ReadAhead(["a", "b", "c", "d"], prepare, depth=depth) as ahead:
            for f, res in ahead:
                got.append((f, res))
    assert got == [("a", "A"), ("b", "B")]
    assert [n for n, _ in seen][:3] == [0, 1, 2]
    assert all((name == "sleuth-read-ahead") == (depth > 0) for _, name in seen)


def test_read_ahead_stops_the_reading_thread_when_the_caller_stops():
    started = threading.Event()
    stopped = []

    def prepare(n, f):
        if n == 1:
            started.set()
            try:
                for _ in range(500):  # a long file: its pages call check()
                    ahead.check()
                    time.sleep(0.01)
            except Stopped:
                stopped.append(f)
                raise
        return f

    with ReadAhead(["a", "b", "c"], prepare, depth=1) as ahead:
        for f, _ in ahead:
            assert started.wait(5)
            break  # the caller stops after the first file
    assert stopped == ["b"] and not ahead._thread.is_alive()


def test_a_script_without_a_main_guard_indexes_once(tmp_path):
    """The worker is not a multiprocessing child: those import the parent's script again, and a
    script calling Library.add at its top level would index itself there too."""
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    write_text_pdf(docs / "report.pdf", PAGES)
    script = tmp_path / "index_it.py"
    script.write_text("from sleuth import Library\n"
                      f"rep = Library({str(tmp_path / 'lib')!r}).add([{str(docs)!r}])\n"
                      "print('RESULT', [r.status for r in rep.results])\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("RESULT") == 1 and "RESULT ['added']" in res.stdout


def test_a_pdf_read_in_the_reader_process_is_the_one_read_here(tmp_path):
    pdf = write_text_pdf(tmp_path / "report.pdf", PAGES)
    pages = []
    rp = ReaderProcess()
    try:
        far = rp.read(pdf, progress=lambda unit, d, t: pages.append((unit, d, t)))
    finally:
        rp.close()
    near = read_path(pdf)

    def nodes(tree):
        return [(n.kind, n.title, n.text, n.page, n.bbox, n.char_start, n.char_end) for n in tree.root.walk()]

    assert nodes(far) == nodes(near) and len(nodes(far)) > 3
    assert pages[-1] == ("pages", 2, 2)
    # entities were found there, each mention pointing at a node of the same tree
    assert "entities" in far.timings and far.entities
    ids = {id(n) for n in far.root.walk()}
    assert all(id(m.node) in ids for e in far.entities for m in e.mentions)
    assert any(e.name == "Acme Holdings" for e in far.entities)


def test_a_reader_process_that_dies_fails_its_file_and_is_replaced(tmp_path):
    pdf = write_text_pdf(tmp_path / "ok.pdf", PAGES)
    rp = ReaderProcess()
    try:
        rp.action = "die"  # the worker exits as it would on a crash in PDFium
        with pytest.raises(ReaderError, match="ok.pdf: the reading process died"):
            rp.read(pdf)
        rp.action = "read"
        assert rp.read(pdf).root.meta["pages"] == 2  # a new worker for the next file
    finally:
        rp.close()


def _rows(home):
    con = sqlite3.connect(home / "library.db")
    try:
        return (con.execute("select s.name, n.kind, n.title, n.text, n.page, n.bbox from nodes n"
                            " join sources s on s.id = n.source_id order by s.name, n.id").fetchall(),
                con.execute("select e.name, e.kind, count(m.id) from entities e join mentions m on m.entity_id = e.id"
                            " group by e.id order by e.name").fetchall())
    finally:
        con.close()


def test_library_read_ahead_matches_reading_in_turn(tmp_path, monkeypatch):
    import sleuth.library as L

    docs = tmp_path / "docs"
    docs.mkdir()
    write_text_pdf(docs / "b_long.pdf", PAGES * 3)
    write_text_pdf(docs / "c_short.pdf", PAGES[:1])
    (docs / "a_notes.txt").write_text("Field notes\n\nThe Rotterdam plant of Acme Holdings was visited by Maria Lopez.\n")
    ahead = Library(tmp_path / "ahead").add([docs])
    monkeypatch.setattr(L, "READ_AHEAD", 0)
    in_turn = Library(tmp_path / "in_turn").add([docs])
    # the report lists the files as given (by name), whatever order they were read in
    assert [os.path.basename(r.path) for r in ahead.results] == ["a_notes.txt", "b_long.pdf", "c_short.pdf"]
    assert [r.status for r in ahead.results] == [r.status for r in in_turn.results] == ["added"] * 3
    nodes_a, ents_a = _rows(tmp_path / "ahead")
    nodes_b, ents_b = _rows(tmp_path / "in_turn")
    assert nodes_a == nodes_b and ents_a == ents_b and ents_a


def test_embedding_while_sharing_cores_gives_the_same_vectors():
    from sleuth.index.embed import Embedder, sharing_cores

    texts = [f"The Rotterdam plant opened in March {1990 + i} and employs {i * 40} people." for i in range(40)]
    e = Embedder(threads=2)
    both = e.encode(texts, max_length=64)
    with sharing_cores():
        one = e.encode(texts, max_length=64)
    assert np.allclose(both, one, atol=1e-5)


def test_a_reader_process_that_cannot_start_leaves_the_reading_to_the_run(tmp_path, monkeypatch):
    import sys

    from sleuth.index import read_process as RP

    (tmp_path / "docs").mkdir()
    pdf = write_text_pdf(tmp_path / "docs" / "report.pdf", PAGES)
    rp = ReaderProcess()
    rp.command = [sys.executable, "-c", "import sys; sys.exit(7)"]
    with pytest.raises(RP.WorkerUnavailable, match="exit 7"):
        rp.read(pdf)
    rp.close()
    # the library falls back to reading here, and the file is indexed all the same
    real_init = RP.ReaderProcess.__init__

    def broken_init(self):
        real_init(self)
        self.command = [sys.executable, "-c", "import sys; sys.exit(7)"]

    monkeypatch.setattr(RP.ReaderProcess, "__init__", broken_init)
    rep = Library(tmp_path / "lib").add([tmp_path / "docs"])
    assert [r.status for r in rep.results] == ["added"] and rep.results[0].pages == 2
