"""The flat baselines a user would build: stemmed, stopworded BM25 (bm25s + PyStemmer), BM25 +
MiniLM page fusion, and flat RAG reading by the configured strongest one."""

from types import SimpleNamespace

import numpy as np
import pytest

from conftest import write_text_pdf
from sleuth.eval import baselines as B
from sleuth.eval import flat as F
from sleuth.eval import mmlongbench_e2e as E
from fakes.scripted_llm import PromptRecorder


def corpus(texts, vecs=None):
    return F.Corpus(keys=[("d.pdf", i + 1) for i in range(len(texts))], texts=list(texts), vecs=vecs)


def test_stemmed_bm25_matches_other_forms_of_a_word():
    c = corpus(["The archive opened in May.", "We are indexing the archive by hand.", "Nothing else here."])
    # stemmed: "indexed" and "indexing" are one word, so that page leads
    assert c.rank("indexed", None, "stem", False)[0] == ("d.pdf", 2)
    # unstemmed the query matches nothing and the pages stay in document order
    assert c.rank("indexed", None, "plain", False)[0] == ("d.pdf", 1)


def test_stopwords_do_not_drive_the_ranking():
    assert B.stemmed_tokens(["Is it the one that was in there, and on this?"]) == [["one"]]
    c = corpus(["it is the of it and in that there was it is the of the on this in to",
                "harbour cranes and ships"])
    # the first page holds the query's stopwords many times and none of its other words
    q = "Is it the size of the harbour that is in there?"
    assert c.rank(q, None, "stem", False)[0] == ("d.pdf", 2)
    assert c.bm25(q, "stem")[0] == 0.0


def test_fusion_combines_the_bm25_and_dense_lists():
    texts = ["harbour harbour harbour harbour ships", "harbour harbour crane ships", "harbour crane cargo ships",
             "harbour cargo docks ships lorries"]
    # dense order: unit 3, then 1, then 2, then 0 (BM25's first is dense's last)
    vecs = np.zeros((4, 384), np.float32)
    vecs[:, 0] = [0.1, 0.7, 0.5, 0.9]
    qv = np.zeros(384, np.float32)
    qv[0] = 1.0
    c = corpus(texts, vecs)
    bm = list(c.order("harbour", qv, "stem", False))
    dense = list(np.argsort(-c.dense(qv), kind="stable"))
    fused = list(c.order("harbour", qv, "stem", True))
    assert bm[0] == 0 and dense[0] == 3  # each list alone puts a different unit first
    assert bm[1] == 1 and dense[1] == 1  # unit 1 is second in both
    assert fused[0] == 1, fused  # and fusion, which weighs both lists, puts it first


class FakeEmbedder:
    """A dense model with known opinions, so fusion's order is known and nothing loads: a question
    is closest to the page about paint, then to the idle crane, then to the logs."""

    def encode(self, texts, max_length=None):
        v = np.zeros((len(texts), 384), np.float32)
        for i, t in enumerate(texts):
            x = 1.0 if t.endswith("?") or "painted" in t else 0.7 if "idle" in t else 0.5 if "logs" in t else 0.0
            v[i, 0], v[i, 1] = x, np.sqrt(1 - x * x)
        return v


@pytest.fixture()
def fake_lib(tmp_path):
    pdf = write_text_pdf(tmp_path / "port.pdf", [
        "Port report",
        "The crane was painted blue.",                # dense's first for the question
        "Indexing the crane logs took two weeks.",    # stemmed BM25's first ("indexed", "logs")
        "The harbour crane stood idle.",
        "",                                           # no text layer: not a unit
    ])
    return SimpleNamespace(find_source=lambda name: {"name": name, "path": str(pdf)}, embedder=FakeEmbedder())


def test_pdfium_pages_leave_out_pages_without_text(fake_lib):
    pages = F.pdfium_pages(fake_lib.find_source("port.pdf")["path"])
    assert sorted(pages) == [1, 2, 3, 4] and "Indexing" in pages[3]


def test_a_page_without_a_text_layer_gets_the_librarys_ocr_text():
    got = F.with_ocr({1: "layer one", 3: "layer three"}, {1: "ocr one", 2: "ocr two", 3: "ocr three"})
    assert got == {1: "layer one", 2: "ocr two", 3: "layer three"}


def test_flat_rag_reads_by_the_configured_strongest_ranking(fake_lib, monkeypatch):
    assert F.STRONGEST_FLAT in F.FLAT
    # the library's text: sleuth's OCR of the page with no text layer
    monkeypatch.setattr(F, "page_texts", lambda lib: {"port.pdf": {5: "Scanned tide table"}})
    q = "Were the crane logs indexed?"
    firsts = {}
    for method in ("page-bm25", "page-fusion"):
        monkeypatch.setattr(F, "STRONGEST_FLAT", method)
        llm = PromptRecorder()
        res = E.flat_rag(fake_lib, llm, q, "port.pdf", 60)
        assert res["ranking"] == method
        passages = llm.prompts[-1].split("Passages from the document port.pdf:\n\n")[1].split("\n\nQuestion:")[0]
        firsts[method] = passages.split("\n\n")[0]
        # the prompt's first passage is the page the configured ranking puts first
        want = F.FlatRanker(fake_lib, method).rank("port.pdf", q)[0]
        assert f"(p.{want[0]})" in firsts[method], (method, passages)
    assert "(p.3)" in firsts["page-bm25"]  # stemmed BM25: "indexed" finds "Indexing" on page 3
    assert "(p.2)" in firsts["page-fusion"]  # second for BM25, first for the dense model


def test_flat_units_fill_the_budget_in_rank_order_and_cut_the_last():
    count = lambda s: len(s.split())  # noqa: E731
    ranked = [(4, "a " * 30), (2, "b " * 30), (9, "c " * 30)]
    got = E.flat_units(ranked, 70, count, start_id=5)
    assert [u["locator"]["page"] for u in got] == [4, 2]
    assert [u["id"] for u in got] == [5, 6]
    assert count(got[0]["text"]) == 30 and 0 < count(got[1]["text"]) < 30
    assert sum(count(u["text"]) + 8 for u in got) <= 70


def test_flat_rag_ranks_a_document_as_retrieval_mode_scored_it(fake_lib, monkeypatch):
    """The ranking flat RAG reads by is the one retrieval mode measured, unit for unit."""
    from sleuth.eval import mmlongbench as MM

    monkeypatch.setattr(F, "page_texts", lambda lib: {"port.pdf": {5: "Scanned tide table"}})
    fake_lib.sources = lambda: [fake_lib.find_source("port.pdf")]
    texts = F.text_sources(fake_lib, {"pdf"})
    corpora = F.build_corpora(texts, fake_lib.embedder.encode, methods=["chunk-fusion", "page-fusion"])
    q = "Were the crane logs indexed?"
    qv = fake_lib.embedder.encode([q])[0]
    for method in ("chunk-fusion", "page-fusion"):
        scored = MM.flat_pages(corpora, method, "doc:port.pdf", q, qv)
        read = F.distinct(("port.pdf", p) for p, _ in F.FlatRanker(fake_lib, method).rank("port.pdf", q))
        assert read == scored and ("port.pdf", 5) in read  # the scanned page is there, by its OCR text
