"""The tantivy lexical index: BM25 as defined, WAND top-k equal to exhaustive ranking, phrases,
filters, and healing from the database (the truth) after a lost or legacy lexical index."""

import math
import random
import sqlite3

import pytest

from conftest import write_corpus
from sleuth import Library
from sleuth.index.lexical import Lexical, analyze
from sleuth.index.lexical_sync import runs


def _lex(tmp_path, rows, gen=1):
    lx = Lexical(tmp_path / "lex")
    lx.apply([], rows, gen)
    lx.close_writer()
    return lx


def test_score_is_bm25_with_title_boost(tmp_path):
    # Short bodies keep tantivy's one-byte field-length codes exact.
    bodies = ["heron heron marsh", "heron", "marsh tide", "tide tide tide marsh"]
    rows = [(i + 1, "", b, "fine") for i, b in enumerate(bodies)]
    rows.append((5, "heron", "estuary survey", "fine"))
    lx = _lex(tmp_path, rows)
    lens = [3, 1, 2, 4, 2]
    avgdl, n_docs = sum(lens) / 5, 5
    # "heron" is in the body of docs 1, 2 and in the title of doc 5 (per-field statistics)
    idf_body = math.log(1 + (n_docs - 2 + 0.5) / (2 + 0.5))

    def bm25(tf, dl, idf, avg):
        return idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avg))

    got = dict(lx.search("heron", ("fine",), 10))
    assert set(got) == {1, 2, 5}
    assert got[1] == pytest.approx(bm25(2, 3, idf_body, avgdl), rel=1e-4)
    assert got[2] == pytest.approx(bm25(1, 1, idf_body, avgdl), rel=1e-4)
    # the title field: one doc with a title among five, title length 1
    idf_title = math.log(1 + (n_docs - 1 + 0.5) / (1 + 0.5))
    assert got[5] == pytest.approx(2.0 * bm25(1, 1, idf_title, 1 / 5), rel=1e-4)


def test_wand_top_k_equals_exhaustive_ranking(tmp_path):
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(400)]
    weights = [1 / (i + 1) for i in range(400)]  # Zipf-like: a few words are everywhere
    rows = [(i, "", " ".join(rng.choices(vocab, weights, k=rng.randint(5, 60))), "fine") for i in range(1, 3001)]
    lx = _lex(tmp_path, rows)
    for _ in range(25):
        q = " ".join(rng.choices(vocab, weights, k=6))
        top = lx.search(q, ("fine",), 10)
        full = lx.search(q, ("fine",), 3000)  # nothing to prune: every match is collected
        assert [round(s, 4) for _, s in top] == [round(s, 4) for _, s in full[:10]]
        cut = full[9][1]
        assert {i for i, s in top if s > cut + 1e-6} == {i for i, s in full[:10] if s > cut + 1e-6}


def test_phrases_filters_and_tiers(tmp_path):
    rows = [(1, "", "Launch MB-1074 slipped to May", "fine"), (2, "", "1074 MB of logs", "fine"),
            (3, "Launch review", "MB-1074 and MB-2000", "coarse"), (4, "", "launch window notes", "fine"),
            (-7, "Kourou", "Centre Spatial Guyanais", "entity")]
    lx = _lex(tmp_path, rows)
    assert [i for i, _ in lx.search_phrases(["MB-1074"], ("fine",), 10)] == [1]
    assert [i for i, _ in lx.search_phrases(["MB-1074"], ("fine", "coarse"), 10)] in ([1, 3], [3, 1])
    # filters select without adding score
    plain = dict(lx.search("launch", ("fine",), 10))
    ranged = dict(lx.search("launch", ("fine",), 10, id_range=(2, 4)))
    assert set(plain) == {1, 4} and set(ranged) == {4} and ranged[4] == pytest.approx(plain[4])
    assert [i for i, _ in lx.search("guyanais", ("entity",), 5)] == [-7]
    assert lx.search("guyanais", ("fine",), 5) == []
    assert analyze("Naïve RUNNING") == ["naiv", "run"]


def test_chinese_is_cut_into_words(tmp_path):
    lx = _lex(tmp_path, [(1, "", "北京是中国的首都。", "fine"), (2, "", "上海是一个港口城市。", "fine")])
    assert [i for i, _ in lx.search("港口城市在哪里", ("fine",), 5)] == [2]


def test_runs_merge_consecutive_ids():
    assert runs([1, 2, 3, 7, 9, 10]) == [(1, 3), (7, 7), (9, 10)]
    assert runs([]) == []


DOC = "# Survey\n\n## Herons\n\nThe grey heron colony at Saltmarsh Point grew to 41 nests.\n\n## Tides\n\nSpring tides flooded the lower hide twice in March.\n"


def _indexed_ids(lib) -> list[int]:
    """Sorted with repeats: an id indexed twice must not compare equal to the database's one."""
    return lib.lexical.id_list()


def _db_column(home, query: str) -> list:
    con = sqlite3.connect(home / "library.db")
    try:
        return [r[0] for r in con.execute(query)]
    finally:
        con.close()


def _db_ids(home) -> list[int]:
    return sorted(_db_column(home, "select id from nodes") + [-i for i in _db_column(home, "select id from entities")])


def _two_surveys(tmp_path) -> Library:
    """A library of two small Markdown surveys (herons; egrets), open."""
    write_corpus(tmp_path / "docs", {"survey.md": DOC, "other.md": DOC.replace("heron", "egret")})
    lib = Library(tmp_path / "lib")
    lib.add([tmp_path / "docs"])
    return lib


def test_heal_after_a_lost_lexical_write(tmp_path):
    lib = _two_surveys(tmp_path)
    want = _indexed_ids(lib)
    assert want == _db_ids(lib.home)
    before = [h["id"] for h in lib.search("heron colony nests", level="fine")]
    # A run killed after its database commit: the lexical index lost a file and kept a stale
    # row, and its stamp is behind the database.
    src = next(s for s in lib.sources() if s["name"] == "survey.md")
    lost = (src["root_id"], src["root_id"] + src["nodes"] - 1)
    lib.lexical.apply([lost], [(10**9, "", "ghost heron", "fine")], 0)
    assert not set(range(lost[0], lost[1] + 1)) & set(_indexed_ids(lib))
    lib.lexical.close_writer()
    lib.close()
    lib = Library(tmp_path / "lib")
    assert _indexed_ids(lib) == want
    assert [h["id"] for h in lib.search("heron colony nests", level="fine")] == before
    lib.close()


def test_legacy_fts5_library_is_rebuilt(tmp_path):
    write_corpus(tmp_path / "docs", {"survey.md": DOC})
    lib = Library(tmp_path / "lib")
    lib.add([tmp_path / "docs"])
    lib.close()
    # What a library made before the tantivy index looked like: FTS5 in the database, no sidecar.
    con = sqlite3.connect(tmp_path / "lib" / "library.db")
    con.execute("CREATE VIRTUAL TABLE nodes_fts USING fts5(title, body, tier UNINDEXED)")
    con.commit()
    con.close()
    import shutil

    shutil.rmtree(tmp_path / "lib" / "lexical")
    lib = Library(tmp_path / "lib")
    con = sqlite3.connect(tmp_path / "lib" / "library.db")
    assert con.execute("select count(*) from sqlite_master where name = 'nodes_fts'").fetchone()[0] == 0
    con.close()
    assert _indexed_ids(lib) == _db_ids(lib.home)
    hit = lib.search("Saltmarsh Point nests", level="fine", k=1)[0]
    assert "41 nests" in hit["snippet"] and hit["bm25"] is not None


# -- whole documents (the docs index) ----------------------------------------------------------

def test_whole_documents_have_an_index_of_their_own(tmp_path):
    nodes = [(1, "", "heron heron marsh", "fine"), (2, "", "heron", "fine"), (3, "", "marsh tide", "fine"),
             (10, "", "tide tide tide marsh", "fine"), (11, "", "estuary survey", "fine")]
    docs = [(1, "Heron survey", "heron heron marsh\nheron\nmarsh tide", "doc"), (10, "Tides", "tide tide tide marsh\nestuary survey", "doc")]
    plain = _lex(tmp_path / "a", nodes)
    both = _lex(tmp_path / "b", nodes + docs)
    # a whole document's length and words do not touch the paragraphs' statistics
    for q in ("heron", "marsh tide", "estuary"):
        assert both.search(q, ("fine",), 10) == plain.search(q, ("fine",), 10)
    assert both.id_list() == plain.id_list() == [1, 2, 3, 10, 11]
    assert both.doc_ids() == {1, 10} and plain.doc_ids() == set()
    # BM25 over whole documents: the title counts as text
    assert [i for i, _ in both.search_docs("heron marsh", 5)] == [1, 10]
    assert [i for i, _ in both.search_docs("survey of tides", 5)][0] == 10
    assert both.search_docs("kingfisher", 5) == [] and both.search_docs("the of", 5) == []
    # dropping a source's id range drops its whole-text row too
    both.apply([(10, 11)], [], 2)
    assert both.doc_ids() == {1} and both.id_list() == [1, 2, 3]


def _roots(home) -> set[int]:
    return set(_db_column(home, "select root_id from sources"))


def test_a_library_made_before_the_docs_index_is_filled_on_open(tmp_path):
    import json
    import shutil

    lib = _two_surveys(tmp_path)
    ids, found = _indexed_ids(lib), lib.lexical.search_docs("egret colony", 2)
    assert lib.lexical.doc_ids() == _roots(lib.home) and len(found) == 2
    lib.close()
    # what such a library looks like: no docs/ folder and a stamp without a format
    lex = tmp_path / "lib" / "lexical"
    shutil.rmtree(lex / "docs")
    stamp = json.loads((lex / "sleuth-lexical.json").read_text())
    (lex / "sleuth-lexical.json").write_text(json.dumps({"generation": stamp["generation"]}))
    lib = Library(tmp_path / "lib")
    assert lib.lexical.doc_ids() == _roots(lib.home)
    assert _indexed_ids(lib) == ids == _db_ids(lib.home)
    assert lib.lexical.search_docs("egret colony", 2) == found
    lib.close()


def test_a_run_killed_between_the_two_commits_is_healed(tmp_path):
    import tantivy

    lib = _two_surveys(tmp_path)
    roots = _roots(lib.home)
    lost = min(roots)
    # the docs index lost a source's row; the node index and the stamp are behind the database
    w = lib.lexical.docs.writer(heap_size=15_000_000, num_threads=1)
    w.delete_documents_by_query(tantivy.Query.range_query(lib.lexical.docs_schema, "id", tantivy.FieldType.Integer, lost, lost))
    w.commit()
    w.wait_merging_threads()
    lib.lexical.docs.reload()
    lib.lexical._write_stamp(0)
    assert lib.lexical.doc_ids() == roots - {lost}
    lib.close()
    lib = Library(tmp_path / "lib")
    assert lib.lexical.doc_ids() == roots and _indexed_ids(lib) == _db_ids(lib.home)
    lib.close()


def test_read_only_index_without_a_docs_folder_still_searches(tmp_path):
    import shutil

    lx = _lex(tmp_path, [(1, "", "heron marsh", "fine"), (1, "Survey", "heron marsh", "doc")])
    shutil.rmtree(tmp_path / "lex" / "docs")
    ro = Lexical(tmp_path / "lex", read_only=True)
    assert [i for i, _ in ro.search("heron", ("fine",), 5)] == [1]
    assert ro.search_docs("heron", 5) == []
    assert not (tmp_path / "lex" / "docs").exists()


# -- a paragraph's neighbours (ctx) ------------------------------------------------------------

def test_words_of_a_paragraphs_neighbours_count_at_a_fraction(tmp_path, monkeypatch):
    from sleuth.index import lexical as LX

    rows = [(1, "", "Strength", "fine", "Choose one of six brewing levels. Level 1 is mild, level 6 strong."),
            (2, "", "Brewing strength tablets", "fine"),
            (3, "", "Descaling programme", "fine", "levels of limescale"),
            (4, "", "Milk foam", "fine")]
    lx = _lex(tmp_path, rows)
    full = dict(lx.search("brewing strength levels", ("fine",), 10))
    monkeypatch.setattr(LX, "CTX_BOOST", 0.0)
    body = dict(lx.search("brewing strength levels", ("fine",), 10))
    # the neighbours' words add to the fragment; a node without neighbours keeps its score; a
    # word only in a neighbour still finds a node, below every node holding a word itself
    assert full[1] > body[1] and full[2] == pytest.approx(body[2]) and 4 not in full
    assert 3 not in body and full[3] < min(body.values())
    only_ctx = full[3]
    monkeypatch.setattr(LX, "CTX_BOOST", 0.6)
    assert dict(lx.search("brewing strength levels", ("fine",), 10))[3] == pytest.approx(2 * only_ctx, rel=1e-4)


def test_source_rows_give_each_fragment_its_neighbours_on_its_page(tmp_path):
    from conftest import write_text_pdf
    from sleuth.index.lexical_sync import source_rows

    (tmp_path / "docs").mkdir()
    write_text_pdf(tmp_path / "docs" / "manual.pdf", [
        "Coffee quality\n\nThe quality levels influence the brewing.\n\nQuality levels one to six.\n\n"
        "After pressing, a pre-infusion occurs.\n\nSame as level four, with stronger pressing.",
        "Cleaning\n\nRinse the milk system every day."])
    lib = Library(tmp_path / "lib")
    lib.add([tmp_path / "docs"])
    with lib.engine.connect() as c:
        rows = source_rows(c, [s["id"] for s in lib.sources()])
    fine = [r for r in rows if r[3] == "fine"]
    text = {r[2]: r for r in fine}
    assert len(text) == 7, [r[2] for r in fine]
    ctx = {r[2]: (r[4] if len(r) > 4 else "") for r in fine}
    # two paragraphs on each side, on the same page only
    assert ctx["Coffee quality"] == "The quality levels influence the brewing. Quality levels one to six."
    assert ctx["Quality levels one to six."] == ("Coffee quality The quality levels influence the brewing. "
                                                 "After pressing, a pre-infusion occurs. Same as level four, with stronger pressing.")
    assert ctx["Cleaning"] == "Rinse the milk system every day."
    # the library's index holds them: a word finds its paragraph's neighbours, below it
    ids = {r[2]: r[0] for r in fine}
    found = [i for i, _ in lib.lexical.search("pre-infusion", ("fine",), 10)]
    assert found[0] == ids["After pressing, a pre-infusion occurs."]
    assert set(found[1:]) == {ids["The quality levels influence the brewing."], ids["Quality levels one to six."],
                              ids["Same as level four, with stronger pressing."]}
    lib.close()


def test_an_index_of_the_previous_schema_is_searched_then_rebuilt(tmp_path):
    import json
    import shutil

    import tantivy

    from sleuth.index import lexical as LX

    lib = _two_surveys(tmp_path)
    ids, before = _indexed_ids(lib), [h["id"] for h in lib.search("heron colony nests", level="fine")]
    gen = lib.lexical.generation()
    lib.close()
    # the previous format: no ctx field (and, as it happens, an empty index)
    lex = tmp_path / "lib" / "lexical"
    shutil.rmtree(lex)
    lex.mkdir()
    tantivy.Index(LX._schema(2), path=str(lex))
    (lex / "sleuth-lexical.json").write_text(json.dumps({"generation": gen, "format": 2}))
    old = Lexical(lex, read_only=True)  # what a reader that cannot rebuild it gets: a search
    assert old.format == 2 and old.generation() == -1 and old.search("heron", ("fine",), 5) == []
    lib = Library(tmp_path / "lib")
    assert lib.lexical.format == LX.FORMAT and lib.lexical.generation() == gen
    assert _indexed_ids(lib) == ids and lib.lexical.doc_ids() == _roots(lib.home)
    assert [h["id"] for h in lib.search("heron colony nests", level="fine")] == before
    lib.close()


def test_text_pieces_cut_only_at_whitespace():
    from sleuth.index.lexical import text_pieces

    text = "alpha beta\ngamma\tdelta " * 500 + "omega"
    pieces = text_pieces(text, 37)
    assert "".join(pieces) == text and len(pieces) > 100
    for a, b in zip(pieces, pieces[1:]):
        assert b[:1].isspace(), (a[-10:], b[:10])  # each cut falls before whitespace: no word is split
    assert text_pieces("", 8) == [] and text_pieces("unbroken", 3) == ["unbroken"]


def test_cjk_runs_become_overlapping_bigrams_the_same_in_a_query_and_a_text(tmp_path):
    # no dictionary: a run of CJK characters is its character bigrams wherever it stands, so a
    # name in a query matches the same name inside a longer sentence of a document
    from sleuth.index import lexical as L

    assert L.segment("北京大学 in 2024") == " 北京 京大 大学  in 2024"
    assert L.segment("王 x") == " 王  x" and L.segment("plain text") == "plain text"
    lx = _lex(tmp_path, [(1, "", "报告说王小明今年在云南白药集团工作。", "fine"), (2, "", "harbour basalt wall", "fine")])
    hits = lx.search("王小明", ("fine",), 5)
    assert hits and hits[0][0] == 1
    assert "小明" in L.query_terms("王小明在哪里工作") and "我们" not in L.query_terms("我们的报告")


def test_a_document_given_as_paragraphs_is_cut_as_its_whole_text(monkeypatch):
    # the docs row of a stored file is its paragraphs, not one string of them (memory): the
    # pieces must carry the words of title + all paragraphs, in order, none cut in two
    from sleuth.index import lexical as L

    paras = [f"Paragraph {i}: the 云南白药集团 report on harbour{i} walls, 3.5kg each." for i in range(40)]
    whole = L._analyzer().analyze(L.segment("Annual report\n" + "\n".join(paras)))
    monkeypatch.setattr(L, "PIECE_CHARS", 120)
    pieces = list(L.doc_pieces("Annual report", paras))
    assert len(pieces) > 10
    assert [t for p in pieces for t in L._analyzer().analyze(p)] == whole
    assert list(L.doc_pieces("T", "one text")) == list(L.doc_pieces("T", ["one text"]))


def test_a_whole_document_added_in_pieces_scores_as_one_value(tmp_path, monkeypatch):
    import tantivy

    from sleuth.index import lexical as L

    texts = [f"Report {i}. " + " ".join(f"harbour basalt wall {w}" for w in range(i * 50, i * 50 + 400)) for i in range(5)]
    scores = []
    for n in (10 ** 9, 40):  # one value per document, then pieces of ~40 characters
        monkeypatch.setattr(L, "PIECE_CHARS", n)
        lx = L.Lexical(tmp_path / f"lex{n}")
        lx.apply([], [(i + 1, "t", t, "doc") for i, t in enumerate(texts)], 1)
        q = tantivy.Query.boolean_query([(tantivy.Occur.Should, tantivy.Query.term_query(lx.docs_schema, "body", tok))
                                         for tok in L._tokens("basalt wall 260")])
        scores.append([(i, round(s, 5)) for i, s in L._hits(lx.docs, q, 5)])
    assert scores[0] == scores[1] and scores[0]


_PEAK_SCRIPT = r"""
import pathlib, sys, tempfile, threading, time
import psutil
from sleuth.index.lexical import Lexical
me = psutil.Process()
lx = Lexical(pathlib.Path(tempfile.mkdtemp()) / "lex")
text = " ".join(f"harbour{i % 5000} basalt wall rebuilt in spring" for i in range(60000)) + " 云南白药"  # ~2.5 MB
lx.apply([], [(1, "warm", "warm up 中文", "doc")], 1)  # the word cutter's dictionary loads here, before the baseline
base = peak = me.memory_info().rss
done = False
def sample():
    global peak
    while not done:
        peak = max(peak, me.memory_info().rss)
        time.sleep(0.002)
t = threading.Thread(target=sample); t.start()
lx.apply([], [(2, "t", text, "doc")], 2)
done = True; t.join()
print((peak - base) / 2**20)
"""


def test_a_long_document_row_is_added_in_bounded_memory():
    # one Chinese name in a long English text sent the whole text through jieba at once (a 5 MB
    # text: +140 MB in one list of tokens); a piece at a time it holds a few MB
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert float(r.stdout.strip()) < 40, r.stdout
