"""`sleuth eval mmlongbench --mode retrieval`: page recall, baselines, paired CIs, reports."""

import json

import numpy as np
import pytest

from sleuth.eval import mmlongbench as MM


def test_recall_at_counts_distinct_pages_and_out_of_range_gold_as_miss():
    assert MM.recall_at([3, 3, 4, 9], [4, 9], 2) == 0.5  # the repeat of 3 takes no slot
    assert MM.recall_at([3, 3, 4, 9], [4, 9], 3) == 1.0
    assert MM.recall_at([1, 2], [2, 300], 5) == 0.5  # page 300 is outside the PDF: a miss
    assert MM.recall_at([("a", 1), ("b", 1)], [("b", 1)], 1) == 0.0
    with pytest.raises(ValueError):
        MM.recall_at([1], [], 5)


def test_rrf_rank_fuses_and_keeps_order_on_ties():
    bm = np.array([0.0, 3.0, 1.0, 0.0])
    dense = np.array([0.9, 0.1, 0.8, 0.2])
    order = list(MM.rrf_rank([bm, dense]))
    assert order[0] == 2  # second in both lists beats first-in-one
    assert list(MM.rrf_rank([np.zeros(3)])) == [0, 1, 2]


def test_bootstrap_ci_brackets_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(1)
    d = rng.normal(0.1, 0.3, 400)
    lo, hi = MM.bootstrap_ci(d)
    assert lo < d.mean() < hi
    lo2, hi2 = MM.bootstrap_ci(d[:40])
    assert hi2 - lo2 > hi - lo


def test_doc_half_is_stable_and_splits():
    names = [f"doc{i}.pdf" for i in range(40)]
    halves = [MM.doc_half(n) for n in names]
    assert set(halves) == {"A", "B"} and halves == [MM.doc_half(n) for n in names]


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from sleuth.samples import make_long_pdf

    root = tmp_path_factory.mktemp("mmlb")
    (root / "documents").mkdir()
    a = make_long_pdf(root / "documents" / "logbook.pdf", pages=24, words_per_page=300, seed=3)
    b = make_long_pdf(root / "documents" / "other.pdf", pages=12, words_per_page=300, seed=8)
    recs = [{"doc_id": "logbook.pdf", "doc_type": "Guidebook", "question": f"How much marine growth did inspection "
             f"{f['text'].split()[1]} find?", "answer": f["answer"], "evidence_pages": str([f["page"]]),
             "evidence_sources": "['Pure-text (Plain-text)']", "answer_format": "Str"} for f in a["facts"]]
    recs.append({"doc_id": "other.pdf", "doc_type": "Guidebook", "question": "What was found on page 300?",
                 "answer": "x", "evidence_pages": "[300]", "evidence_sources": "['Table']", "answer_format": "Str"})
    recs.append({"doc_id": "other.pdf", "doc_type": "Guidebook", "question": "Unanswerable?",
                 "answer": "Not answerable", "evidence_pages": "[]", "evidence_sources": "[]", "answer_format": "None"})
    (root / "samples.json").write_text(json.dumps(recs))
    return root, a, b


def test_retrieval_mode_end_to_end(split, tmp_path):
    from sleuth.eval.runner import run_eval

    root, a, _ = split
    out = tmp_path / "out"
    summary = run_eval("mmlongbench", data=root, mode="retrieval", out=out, progress=False)
    n_facts = len(a["facts"])
    assert summary["items"] == n_facts + 1  # the unanswerable question is left out
    recs = [json.loads(x) for x in (out / "mmlongbench-retrieval.jsonl").read_text().splitlines()]
    assert {(r["method"], r["scope"]) for r in recs} == {(m, s) for m in MM.METHODS for s in MM.SCOPES}
    assert len(recs) == len(MM.METHODS) * len(MM.SCOPES) * (n_facts + 1)
    # the inspection code is unique to one page: every method finds it within the document
    for r in recs:
        if r["doc_id"] == "logbook.pdf":
            assert r["r@5"] == 1.0, r
        else:  # gold page 300 of a 12-page PDF: counted, as a miss
            assert r["r@10"] == 0.0 and r["gold"] == [300]
    # library scope ranks (document, page) pairs from both PDFs (both logbooks share inspection codes)
    lib_docs = {t[0] for r in recs if r["scope"] == "library" and r["method"] == "page-bm25" for t in r["top"]}
    assert lib_docs == {"logbook.pdf", "other.pdf"}
    js = json.loads((out / "mmlongbench-retrieval.json").read_text())
    assert js["scopes"]["doc"]["paired"]["baseline"] in MM.FLAT_METHODS
    assert (out / "mmlongbench-retrieval.md").read_text().count("| sleuth |") == 4  # main and by-source tables, two scopes
    assert (out / "mmlongbench-retrieval.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="unknown mode"):
        run_eval("mmlongbench", data=root, mode="nonsense", out=out, progress=False)


def test_cli_mmlongbench_bad_data_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from sleuth.cli import app

    (tmp_path / "samples.json").write_text("[{\"doc_id\": \"a.pdf\"}]")
    r = CliRunner().invoke(app, ["eval", "mmlongbench", "--data", str(tmp_path), "--mode", "retrieval",
                                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 2
    out = " ".join(r.output.split())  # the console wraps at its width
    assert out.startswith("error:") and "samples.json: record 0: missing doc_type" in out and "Traceback" not in out
