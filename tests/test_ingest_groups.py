"""Small files indexed in groups (index/ingest.py GROUP_TEXTS / GROUP_FILES): one embedding
call, one transaction and one lexical commit per group, with the same library as one file at a
time, and a group that fails leaves none of its files half-stored."""

import sqlite3

import pytest

from conftest import write_corpus
from sleuth import Library
from sleuth.index import ingest
from sleuth.index.lexical import Lexical

NOTES = {f"note{i:02d}.txt": f"Field note {i}: the {w} colony at site {i} counted {i * 7} nests and an Oxford survey team."
         for i, w in enumerate("heron egret gannet puffin tern plover curlew dunlin avocet godwit osprey kestrel".split())}


def _rows(home) -> list[tuple]:
    con = sqlite3.connect(home / "library.db")
    try:
        nodes = con.execute("select s.name, n.kind, n.title, n.text, n.summary from nodes n join sources s on s.id = n.source_id"
                            " order by s.name, n.id").fetchall()
        ents = con.execute("select e.name, e.kind, count(m.id) from entities e join mentions m on m.entity_id = e.id"
                           " group by e.id order by e.name").fetchall()
        return nodes + ents
    finally:
        con.close()


def test_small_files_share_commits_and_match_one_at_a_time(tmp_path, monkeypatch):
    write_corpus(tmp_path / "docs", NOTES)
    applies = []  # lexical commits: one when the run starts on a new library (its heal), then one per group
    real = Lexical.apply
    monkeypatch.setattr(Lexical, "apply", lambda self, *a, **k: (applies.append(1), real(self, *a, **k))[1])
    grouped = Library(tmp_path / "grouped")
    rep = grouped.add([tmp_path / "docs"])
    assert [r.status for r in rep.results] == ["added"] * len(NOTES)
    assert len(applies) == 1 + 1  # twelve files, one lexical commit
    assert all(set(r.timings) == set(ingest.STAGES) for r in rep.results)
    assert sum(r.timings["embed"] for r in rep.results) > 0

    monkeypatch.setattr(ingest, "GROUP_FILES", 1)
    import sleuth.library as L

    monkeypatch.setattr(L, "GROUP_FILES", 1)
    applies.clear()
    single = Library(tmp_path / "single")
    single.add([tmp_path / "docs"])
    assert len(applies) == 1 + len(NOTES)
    assert _rows(grouped.home) == _rows(single.home)
    # one lexical row per node and entity, none twice (an entity several files of a group share)
    assert grouped.lexical.id_list() == sorted(set(grouped.lexical.id_list()))
    hit = grouped.search("puffin colony nests", level="fine", k=1)[0]
    assert "puffin" in hit["snippet"] and hit["id"] in {h["id"] for h in grouped.search("puffin", level="fine", k=3)}


def test_a_failed_group_stores_none_of_its_files_and_a_rerun_stores_all(tmp_path, monkeypatch):
    write_corpus(tmp_path / "docs", NOTES)
    calls = []
    real = ingest.Ingestor._store_one

    def flaky(self, conn, p, changes):
        calls.append(p.path.name)
        if len(calls) == 5:
            raise OSError("disk full")
        return real(self, conn, p, changes)

    monkeypatch.setattr(ingest.Ingestor, "_store_one", flaky)
    lib = Library(tmp_path / "lib")
    with pytest.raises(OSError):
        lib.add([tmp_path / "docs"])
    assert lib.sources() == []  # the four stored before the failure were rolled back with it
    assert lib.lexical.id_list() == []
    monkeypatch.setattr(ingest.Ingestor, "_store_one", real)
    rep = lib.add([tmp_path / "docs"])
    assert [r.status for r in rep.results] == ["added"] * len(NOTES)
    assert len(lib.sources()) == len(NOTES)


def test_large_files_close_a_group(tmp_path, monkeypatch):
    """A group is flushed once it holds GROUP_TEXTS texts: memory follows the group, not the run."""
    monkeypatch.setattr(ingest, "GROUP_TEXTS", 4)
    import sleuth.library as L

    monkeypatch.setattr(L, "GROUP_TEXTS", 4)
    write_corpus(tmp_path / "docs", NOTES)
    sizes = []
    real = ingest.Ingestor.finish
    monkeypatch.setattr(ingest.Ingestor, "finish", lambda self, group, **k: (sizes.append(len(group)), real(self, group, **k))[1])
    Library(tmp_path / "lib").add([tmp_path / "docs"])
    assert sum(sizes) == len(NOTES) and max(sizes) <= 2 and len(sizes) >= 6
