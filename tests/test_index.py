"""The document index: persistence, incremental updates, bad input, search shapes."""

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_corpus
from sleuth import Library
from sleuth.index.lexical import Lexical

REPORT_MD = """# Annual Report

## 1 Finance

Gross margin fell in the third quarter to 31 percent because of freight costs.

The CFO said the decline was temporary and expected a recovery in 2025.

## 2 Operations

### 2.1 Plants

The Rotterdam plant opened in March and employs 400 people.

### 2.2 Logistics

Shipping moved from rail to barges on the Rhine to cut emissions.
"""

NOTES_TXT = """Field notes

The glacier at Vatnajokull retreated 40 metres during 2023.

Volcanic ash from the eruption grounded flights for six days."""


@pytest.fixture
def corpus(tmp_path):
    write_corpus(tmp_path / "docs", {"report.md": REPORT_MD, "notes.txt": NOTES_TXT})
    return tmp_path / "docs"


def _db_counts(home: Path) -> dict:
    con = sqlite3.connect(home / "library.db")
    try:
        return {
            "sources": con.execute("select count(*) from sources").fetchone()[0],
            "nodes": con.execute("select count(*) from nodes").fetchone()[0],
            "fts": sum(1 for i in Lexical(home / "lexical").id_list() if i > 0),
            # one lexical row per entity: a count, so an entity indexed twice shows
            "lex_entities": sum(1 for i in Lexical(home / "lexical").id_list() if i < 0),
            "entities": con.execute("select count(*) from entities").fetchone()[0],
            "emb": con.execute("select count(*) from embeddings").fetchone()[0],
            "dup_paths": con.execute("select count(*) from (select path from sources group by path having count(*) > 1)").fetchone()[0],
            "sum_nodes": con.execute("select coalesce(sum(n_nodes), 0) from sources").fetchone()[0],
        }
    finally:
        con.close()


def test_search_finds_paragraph_with_locator(tmp_path, corpus):
    lib = Library(tmp_path / "lib")
    rep = lib.add([corpus])
    assert rep.count("added") == 2 and not rep.failed
    hits = lib.search("why did the gross margin fall", level="fine", k=3)
    top = hits[0]
    assert top["kind"] == "paragraph" and "freight" in top["snippet"]
    loc = top["locator"]
    text = (corpus / "report.md").read_text()
    assert text[loc["char_start"]:loc["char_end"]].startswith("Gross margin fell")
    assert top["title_path"][-1] == "1 Finance"
    assert top["label"] == "report.md §1 ¶1"
    assert any(n["rel"] == "next" and "CFO" in n["snippet"] for n in top["neighbours"])


def test_levels_and_within(tmp_path, corpus):
    lib = Library(tmp_path / "lib")
    lib.add([corpus])
    secs = lib.search("barges Rhine emissions", level="section", k=2)
    assert secs and all(h["kind"] == "section" for h in secs)
    assert secs[0]["title"] == "2.2 Logistics"
    only_notes = lib.search("retreated", within="notes.txt", k=5)
    assert only_notes and {h["source"] for h in only_notes} == {"notes.txt"}
    sec_id = secs[0]["id"]
    inside = lib.search("Rhine", within=sec_id, k=5)
    assert inside and all(sec_id <= h["id"] <= lib.get_node(sec_id)["last_id"] for h in inside)
    with pytest.raises(ValueError):
        lib.search("x", level="nonsense")
    with pytest.raises(ValueError):
        lib.search("   ")


def test_read_is_ordered_and_paged(tmp_path, corpus):
    lib = Library(tmp_path / "lib")
    lib.add([corpus])
    doc = next(s for s in lib.sources() if s["name"] == "report.md")
    first = lib.read(doc["root_id"], max_tokens=20)
    assert first["cursor"] is not None and first["items"]
    rest = lib.read(doc["root_id"], start=first["cursor"], max_tokens=10_000)
    texts = [i["text"] for i in first["items"] + rest["items"]]
    assert texts[0].startswith("Gross margin") and texts[-1].startswith("Shipping moved")
    starts = [i["locator"]["char_start"] for i in first["items"] + rest["items"]]
    assert starts == sorted(starts) and rest["cursor"] is None


def test_outline_pages_under_budget(tmp_path):
    files = {f"d{i}.md": "\n\n".join(f"## Section {i}.{j}\n\nText about topic {i} {j}." for j in range(30)) for i in range(5)}
    write_corpus(tmp_path / "docs", files)
    lib = Library(tmp_path / "lib")
    lib.add([tmp_path / "docs"])
    seen, cursor, pages = [], None, 0
    while True:
        o = lib.outline(depth=2, cursor=cursor, max_tokens=200)
        assert o["tokens"] <= 200 or len(o["items"]) == 1
        seen += [i["id"] for i in o["items"]]
        pages += 1
        cursor = o["cursor"]
        if cursor is None:
            break
    assert pages > 1
    assert len(seen) == len(set(seen)) == 5 + 5 * 30  # every document and section exactly once


def test_incremental_reindex_and_prune(tmp_path, corpus):
    lib = Library(tmp_path / "lib")
    lib.add([corpus])
    before = _db_counts(lib.home)
    again = lib.add([corpus])
    assert again.count("skipped") == 2 and again.count("added") == 0
    (corpus / "notes.txt").write_text(NOTES_TXT + "\n\nA new paragraph about puffins nesting on the cliffs.")
    upd = lib.add([corpus])
    assert upd.count("updated") == 1 and upd.count("skipped") == 1
    assert lib.search("puffins nesting", k=1)[0]["source"] == "notes.txt"
    assert not any("ash" in h["snippet"] and h["id"] < 0 for h in lib.search("volcanic ash", k=3))
    after = _db_counts(lib.home)
    assert after["sources"] == 2 and after["nodes"] == before["nodes"] + 1
    (corpus / "notes.txt").unlink()
    pr = lib.add([corpus], prune=True)
    assert pr.count("pruned") == 1
    c = _db_counts(lib.home)
    assert c["sources"] == 1 and c["nodes"] == c["sum_nodes"] == c["fts"] == c["emb"]
    assert c["lex_entities"] == c["entities"]
    assert all(h["source"] == "report.md" for h in lib.search("glacier retreated", k=5))
    assert lib.vectors.count("fine") == c["emb"] - lib.vectors.count("coarse") - lib.vectors.count("source")


def test_bad_files_are_reported_and_batch_goes_on(tmp_path, corpus):
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "fake.pdf").write_text("this is not a pdf at all")
    (corpus / "corrupt.pdf").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 20)
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    lib = Library(tmp_path / "lib")
    rep = lib.add([corpus, tmp_path / "missing.md"])
    failed = {Path(r.path).name: r.reason for r in rep.failed}
    assert set(failed) == {"empty.txt", "fake.pdf", "corrupt.pdf", "binary.txt", "missing.md"}
    for name, reason in failed.items():
        assert "\n" not in reason and name in reason
    assert rep.count("added") == 2
    st = lib.status()
    assert len(st["failures"]) == 4  # the missing path is not a file the library tracks


def test_corrupted_update_keeps_old_content(tmp_path, corpus):
    lib = Library(tmp_path / "lib")
    lib.add([corpus])
    (corpus / "notes.txt").write_bytes(b"")
    rep = lib.add([corpus])
    assert rep.failed and "notes.txt" in rep.failed[0].reason
    assert lib.search("glacier retreated", k=1)[0]["source"] == "notes.txt"


def test_vectors_heal_from_database(tmp_path, corpus):
    lib = Library(tmp_path / "lib")
    lib.add([corpus])
    n = lib.vectors.count("fine")
    lib.close()
    for f in (tmp_path / "lib" / "vectors").glob("*"):
        f.unlink()
    lib2 = Library(tmp_path / "lib")
    assert lib2.vectors.count("fine") == n
    assert lib2.search("Rotterdam plant", level="fine", k=1)[0]["snippet"].startswith("The Rotterdam")


def test_sqlalchemy_url_with_separate_home(tmp_path, corpus):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    lib = Library(url, home=tmp_path / "home")
    lib.add([corpus])
    assert (tmp_path / "elsewhere.db").exists() and (tmp_path / "home" / "vectors").exists()
    assert lib.search("Rotterdam", k=1)[0]["source"] == "report.md"


def _many_files(root: Path, n: int) -> None:
    words = "harbour turbine ledger glacier falcon quarry lantern meadow cobalt orchard".split()
    files = {}
    for i in range(n):
        body = "\n\n".join(f"Document {i} paragraph {j}: the {words[(i + j) % 10]} report number {i * 100 + j} "
                           + " ".join(words[(i * j + k) % 10] for k in range(60)) for j in range(12))
        files[f"f{i:03d}.txt"] = f"File {i}\n\n" + body
    write_corpus(root, files)


def test_kill_and_resume(tmp_path):
    _many_files(tmp_path / "docs", 80)
    home = tmp_path / "lib"
    cmd = [sys.executable, "-m", "sleuth.cli", "index", str(tmp_path / "docs"), "--library", str(home), "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.3)
        if (home / "library.db").exists():
            try:
                if _db_counts(home)["sources"] >= 10:
                    break
            except sqlite3.OperationalError:
                pass
    proc.kill()
    proc.wait()
    mid = _db_counts(home)
    assert 0 < mid["sources"] < 80, "kill should land mid-run"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rep = json.loads(done.stdout)
    assert rep["counts"]["skipped"] >= mid["sources"] and rep["counts"]["added"] == 80 - rep["counts"]["skipped"]
    c = _db_counts(home)
    assert c["sources"] == 80 and c["dup_paths"] == 0
    assert c["nodes"] == c["sum_nodes"] == c["fts"] == c["emb"]
    assert c["lex_entities"] == c["entities"]
    lib = Library(home)
    assert sum(lib.vectors.count(t) for t in ("source", "coarse", "fine")) == c["emb"]
    hit = lib.search("report number 7903", level="fine", k=1)[0]
    assert hit["source"] == "f079.txt"


def test_search_while_indexing(tmp_path, corpus):
    lib = Library(tmp_path / "lib")
    lib.add([corpus])
    _many_files(tmp_path / "more", 60)
    cmd = [sys.executable, "-m", "sleuth.cli", "index", str(tmp_path / "more"), "--library", str(tmp_path / "lib"), "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        answered = 0
        t_end = time.time() + 60
        while proc.poll() is None and time.time() < t_end:
            reader = Library(tmp_path / "lib")
            hits = reader.search("Rotterdam plant", k=2)
            assert hits and hits[0]["source"] == "report.md"
            answered += 1
            time.sleep(0.2)
        assert answered >= 1
    finally:
        proc.wait(timeout=300)
    assert proc.returncode == 0
