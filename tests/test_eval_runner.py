"""Runners: retrieval mode end to end on real items, resumability, the evidence adapter and
the LVBench rule that an unanswered uid is wrong."""

import json
from pathlib import Path

import pytest

from conftest import SHARED
from sleuth.eval import runner as RU
from sleuth.eval.baselines import Piece
from sleuth.eval.report import read_jsonl
from sleuth.eval.tokens import count_tokens

DATA = SHARED
LB = DATA / "longbench"
needs_data = pytest.mark.skipif(not LB.is_dir(), reason="shared/data not present")


@needs_data
def test_retrieval_run_writes_reports_and_resumes(tmp_path):
    kw = dict(subset="passage_retrieval_zh", limit=2, mode="retrieval", budgets="500,1000",
              out=tmp_path, progress=False, methods="bm25,head")  # fmt: skip
    summary = RU.run_eval("longbench", LB, **kw)
    recs = list(read_jsonl(summary["records"]))
    # 2 items × 2 methods × 2 budgets
    assert len(recs) == 8
    assert all(r["tokens_read"] <= r["budget"] and r["error"] is None for r in recs)
    assert all(0.0 <= r["recall"] <= 1.0 and r["pick"].startswith("段落") for r in recs)
    assert Path(summary["markdown"]).read_text().count("| bm25 |") == 2  # recall and pick tables
    assert Path(summary["plot"]).stat().st_size > 1000
    # a second run does nothing new
    RU.run_eval("longbench", LB, **kw)
    assert len(list(read_jsonl(summary["records"]))) == 8
    # an interrupted run (last item-method lost, a torn line left) is completed, not duplicated
    lines = Path(summary["records"]).read_text().splitlines()
    Path(summary["records"]).write_text("\n".join(lines[:-2]) + "\n" + lines[-2][:20])
    RU.run_eval("longbench", LB, **kw)
    again = list(read_jsonl(summary["records"]))
    assert len(again) == 8
    assert {(r["id"], r["method"], r["budget"]) for r in again} == {(r["id"], r["method"], r["budget"]) for r in recs}


@needs_data
def test_search_method_reads_the_indexed_document(tmp_path):
    summary = RU.run_eval("longbench", LB, subset="multifieldqa_zh", limit=1, budgets=[300, 3000],
                          out=tmp_path, progress=False, methods="search")  # fmt: skip
    recs = list(read_jsonl(summary["records"]))
    assert [r["budget"] for r in recs] == [300, 3000]
    assert all(r["error"] is None for r in recs)
    assert recs[0]["tokens_read"] == 300 and recs[1]["tokens_read"] > 300
    # reading more never loses what was read first
    assert recs[1]["token_recall"] >= recs[0]["token_recall"]


def test_unknown_benchmark_mode_method():
    with pytest.raises(ValueError, match="unknown benchmark"):
        RU.run_eval("nope", ".", progress=False)
    with pytest.raises(ValueError, match="unknown mode"):
        RU.run_eval("longbench", ".", mode="x", progress=False)


def test_piece_from_trusts_offsets_only_when_they_match():
    ctx = "alpha beta\n\ngamma delta"
    good = RU._piece_from({"text": "gamma delta", "locator": {"char_start": 12, "char_end": 23}}, ctx)
    assert (good.start, good.end) == (12, 23)
    wrong = RU._piece_from({"text": "gamma delta", "locator": {"char_start": 0, "char_end": 10}}, ctx)
    assert wrong.start is None and wrong.text == "gamma delta"
    video = RU._piece_from({"text": "", "locator": {"t_start": 3.0, "t_end": 9.0}}, None)
    assert (video.t_start, video.t_end) == (3.0, 9.0)
    assert RU._piece_from({"text": "  ", "locator": {}}, ctx) is None


def test_agent_pieces_from_dicts_and_objects():
    class Ev:
        def __init__(self, text, locator):
            self.text, self.locator = text, locator

    class Ans:
        evidence = [{"id": 7, "text": "first read", "locator": {"char_start": 0, "char_end": 10}},
                    Ev("second read", {"char_start": None})]  # fmt: skip

    ps = RU.agent_pieces(Ans(), "first read and second read")
    assert [p.text for p in ps] == ["first read", "second read"]
    assert ps[0].node_id == 7 and ps[0].start == 0 and ps[1].start is None
    assert RU.agent_pieces({"evidence": None}, "x") == []
    # the shape agent/tools.evidence_from gives a read: items with ``parent``, then the node with
    # the items' joined text, which must not count twice; a repeated snippet counts once
    ctx = "one two\n\nthree four"
    ev = {"evidence": [
        {"id": 2, "text": "one two", "via": "search"},
        {"id": 2, "text": "one two", "via": "read", "parent": 1, "locator": {"char_start": 0, "char_end": 7}},
        {"id": 3, "text": "three four", "via": "read", "parent": 1},
        {"id": 1, "text": "one two three four", "via": "read"},
    ]}  # fmt: skip
    assert [p.text for p in RU.agent_pieces(ev, ctx)] == ["one two", "three four"]


def _lvbench_file(tmp_path):
    recs = [{"key": "vid1", "type": "cartoon", "video_info": {},
             "qa": [{"uid": i, "question": f"Q{i}?\n(A) a\n(B) b\n(C) c\n(D) d", "answer": "ABCD"[i % 4],
                     "question_type": ["reasoning"] if i % 2 else ["reasoning", "summarization"],
                     "time_reference": "00:10-00:20"} for i in range(4)]}]  # fmt: skip
    meta = tmp_path / "video_info.meta.jsonl"
    meta.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return meta


def test_lvbench_e2e_summary_counts_unanswered_uids_wrong(tmp_path):
    tasks, no_video = RU.lvbench_tasks(_lvbench_file(tmp_path), None, None, tmp_path)
    assert no_video == ["0", "1", "2", "3"]  # no video files next to the meta file
    # uid 0 right (A), uid 1 wrong (A≠B), uid 2 errored (empty pred), uid 3 never run
    records = [
        {"task": "lvbench", "id": "0", **tasks[0].score_answer("(A) a")},
        {"task": "lvbench", "id": "1", **tasks[1].score_answer("A")},
        {"task": "lvbench", "id": "2", **tasks[2].score_answer("")},
    ]
    s = RU.summarise_e2e("lvbench", records, tasks)
    # strict: 1 right of 4 → 25.0; Rea holds all 4 → 25.0; Sum holds uids 0, 2 → 1/2 → 50.0
    assert s["strict"]["Overall"] == 25.0 and s["strict"]["Rea"] == 25.0 and s["strict"]["Sum"] == 50.0
    assert sorted(s["missing"]) == ["2", "3"]


def test_lvbench_time_evidence_from_task(tmp_path):
    tasks, _ = RU.lvbench_tasks(_lvbench_file(tmp_path), None, 1, tmp_path)
    # reference 10–20 s; a read segment 15–30 s overlaps it and covers 5 of 10 s
    assert tasks[0].evidence([Piece("", t_start=15.0, t_end=30.0)]) == {"recall": 1.0, "coverage": 0.5}


@needs_data
def test_v2_tasks_filter_and_score():
    tasks, skipped = RU.longbench_v2_tasks(DATA / "longbench_v2", ["short", "hard"], 3, Path("/tmp/sleuth-test-v2"))
    assert len(tasks) == 3 and all(t.meta["length"] == "short" and t.meta["difficulty"] == "hard" for t in tasks)
    t = tasks[0]
    right = next(L for L in "ABCD" if f"({L})" in t.question)  # any letter: judge compares to gold
    res = t.score_answer(f"The correct answer is ({right})")
    assert res["pred"] == right and res["judge"] == (right == res["answer"])
    assert "$DOC$" not in t.question and count_tokens(t.question) < 1000


@needs_data
@pytest.mark.slow
def test_e2e_with_heuristic_agent_scores_with_the_official_metric(tmp_path):
    """End to end on one real item with the LLM-free planner: the answer is scored by the
    task's official metric and the run resumes without asking again."""
    from sleuth.eval.metrics import score_longbench_item
    from sleuth.eval.loaders import load_longbench

    kw = dict(subset="multifieldqa_zh", limit=1, mode="e2e", out=tmp_path, progress=False,
              llm_options={"llm": "none"})  # fmt: skip
    s = RU.run_eval("longbench", LB, **kw)
    (rec,) = list(read_jsonl(s["records"]))
    assert rec["error"] is None and rec["prediction"]
    item = load_longbench(LB, ["multifieldqa_zh"], 1)["multifieldqa_zh"][0]
    assert rec["score"] == score_longbench_item("multifieldqa_zh", rec["prediction"], item.answers)
    assert s["scores"]["multifieldqa_zh"] == {"score": round(100 * rec["score"], 2), "n": 1}
    RU.run_eval("longbench", LB, **kw)
    assert len(list(read_jsonl(s["records"]))) == 1
