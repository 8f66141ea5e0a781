"""``sleuth eval recordings``: its scoring on hand-made inputs, and one tiny recording end to end."""

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from sleuth.eval import rec_score as S
from sleuth.eval.metrics import wer, wer_words
from sleuth.eval.rec_baselines import WindowRanker, bm25_tokens
from sleuth.eval.rec_report import paired, retrieval_table


# ---------------------------------------------------------------- overlap recall


def test_overlap_needs_a_shared_stretch():
    assert S.overlaps([10, 20], [19, 30])
    assert not S.overlaps([10, 20], [20, 30])  # touching ends share no time
    assert not S.overlaps([10, 20], [0, 10])
    assert S.overlaps([10, 20], [15, 15]) and not S.overlaps([10, 20], [25, 25])  # a point inside / outside
    assert S.overlaps([0, 0], [0, 40]) and S.overlaps([12, 12], [10, 20]) and not S.overlaps([21, 21], [10, 20])


def test_recall_at_k_is_the_share_of_gold_spans_hit():
    gold = [[0, 10], [100, 110], [200, 210]]
    items = [[50, 60], [105, 108], [0, 5], [300, 400], [205, 300]]
    assert S.recall_at(items, gold, 1) == 0
    assert S.recall_at(items, gold, 2) == pytest.approx(1 / 3)
    assert S.recall_at(items, gold, 3) == pytest.approx(2 / 3)
    assert S.recall_at(items, gold, 5) == 1
    assert S.recall_at(items, [], 5) is None
    # one wide item hitting two spans counts both; the same span hit twice counts once
    assert S.recall_at([[0, 150], [1, 2]], gold, 2) == pytest.approx(2 / 3)


def test_recall_within_a_time_budget_cuts_the_last_item():
    gold = [[0, 10], [100, 110], [200, 210]]
    items = [[50, 60], [90, 150], [0, 5], [205, 300]]
    assert S.recall_within(items, gold, 10) == 0  # the first item spends it all
    assert S.recall_within(items, gold, 20) == 0  # [90, 100] only touches [100, 110]
    assert S.recall_within(items, gold, 20.5) == pytest.approx(1 / 3)  # [90, 100.5] hits it
    assert S.recall_within(items, gold, 75) == pytest.approx(2 / 3)  # 10 + 60 + 5
    assert S.recall_within(items, gold, 75.5) == 1  # [205, 205.5] gets in
    assert S.recall_within(items, [], 75) is None
    assert S.recalls(items, gold)["r@300s"] == 1


# ---------------------------------------------------------------- windows


def test_windows_by_sixty_seconds_from_word_times_or_spread_lines():
    lines = [{"t0": 0.0, "t1": 4.0, "text": "alpha beta", "words": [{"t0": 0.5, "w": "alpha"}, {"t0": 61.0, "w": "beta"}]},
             {"t0": 119.0, "t1": 123.0, "text": "gamma delta"},  # no word times: 120.0 and 122.0
             {"t0": 300.0, "t1": 302.0, "text": "epsilon"}]
    words = S.timed_words(lines)
    assert [w for _, w in words] == ["alpha", "beta", "gamma", "delta", "epsilon"]
    assert [t for t, _ in words][2:4] == [120.0, 122.0]
    ws = S.windows(words, duration=301.5)
    assert [(w["t_start"], w["t_end"], w["text"]) for w in ws] == [
        (0.0, 60.0, "alpha"), (60.0, 120.0, "beta"), (120.0, 180.0, "gamma delta"), (300.0, 301.5, "epsilon")]
    with pytest.raises(ValueError):
        S.windows(words, 10, size=0)


def test_truth_lines_are_turns_or_narrated_pages():
    meeting = {"kind": "meeting", "turns": [{"i": 0, "start": 1, "end": 2, "speaker": "A", "text": "hi"}]}
    assert S.truth_lines(meeting) == [{"t0": 1, "t1": 2, "text": "hi", "speaker": "A"}]
    lecture = {"kind": "lecture", "pages": [{"page": 1, "start": 0, "end": 5, "text": "Intro", "silent": False},
                                            {"page": 2, "start": 5, "end": 9, "text": "", "silent": True}]}
    assert S.truth_lines(lecture) == [{"t0": 0, "t1": 5, "text": "Intro"}]


# ---------------------------------------------------------------- word error rate


def test_wer_hand_counted():
    ref = wer_words("The remote control, it's twenty euros.")
    hyp = wer_words("the remote controls it's 20 euros extra")
    # control->controls (sub), twenty->20 (sub: numbers as written), + extra (ins): 3 of 6
    assert S.wer_fast(ref, hyp) == pytest.approx(3 / 6)
    assert S.word_error_rate("a b c", "a b c")["wer"] == 0
    assert S.word_error_rate("", "")["wer"] is None  # a silent recording has no error rate
    assert S.wer_fast([], ["x"]) == wer([], ["x"])


def test_fast_wer_matches_the_plain_reference():
    rng = random.Random(7)
    vocab = "a b c d e f g".split()
    for _ in range(60):
        ref = [rng.choice(vocab) for _ in range(rng.randint(0, 40))]
        hyp = [rng.choice(vocab) for _ in range(rng.randint(0, 40))]
        assert S.wer_fast(ref, hyp) == pytest.approx(wer(ref, hyp)), (ref, hyp)


# ---------------------------------------------------------------- speaker turns


def test_boundary_f1_one_to_one_within_tolerance():
    f = S.boundary_f1([10.5, 11.0, 30.0, 55.0], [10.0, 31.5, 50.0], tol=1.0)
    # 10.5 matches 10.0; 11.0 has no partner left; 30.0 is 1.5 s from 31.5; 55.0 is 5 s off
    assert (f["precision"], f["recall"]) == (pytest.approx(1 / 4), pytest.approx(1 / 3))
    assert f["f1"] == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))
    assert S.boundary_f1([], [])["f1"] == 1.0


def test_speaker_agreement_on_labelled_lines():
    truth = {"kind": "meeting", "turns": [
        {"i": 0, "start": 0, "end": 10, "speaker": "Ann", "text": "x"},
        {"i": 1, "start": 10.5, "end": 20, "speaker": "Bob", "text": "y"},
        {"i": 2, "start": 20.5, "end": 30, "speaker": "Ann", "text": "z"}]}
    lines = [{"t0": 0.2, "t1": 9.8, "text": "x", "speaker": "S1"}, {"t0": 10.6, "t1": 19.9, "text": "y", "speaker": "S2"},
             {"t0": 20.4, "t1": 25, "text": "z", "speaker": "S1"}, {"t0": 25.2, "t1": 30, "text": "z", "speaker": "S3"}]
    a = S.speaker_agreement(lines, truth)
    assert (a["speakers_found"], a["speakers_true"]) == (3, 2)
    assert a["boundary_precision"] == pytest.approx(2 / 3) and a["boundary_recall"] == 1
    assert a["purity"] == 1.0  # every label's speech belongs to one true speaker
    assert S.speaker_agreement([{"t0": 0, "t1": 1, "text": "x"}], truth) is None


# ---------------------------------------------------------------- ROUGE-L


def test_rouge_l_f1_hand_computed():
    # LCS of "the cat sat on the mat" / "the cat lay on a mat": the cat on mat = 4
    assert S.lcs_len("the cat sat on the mat".split(), "the cat lay on a mat".split()) == 4
    assert S.rouge_l_f1("The cat lay on a mat.", "the cat sat on the mat") == pytest.approx(4 / 6)
    # P = 3/3, R = 3/6 -> F = 2/3
    assert S.rouge_l_f1("cat on mat", "the cat sat on the mat") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert S.rouge_l_f1("", "x") == 0.0 and S.rouge_l_f1("dog", "cat") == 0.0


# ---------------------------------------------------------------- baselines on a toy transcript


TOY = ["we opened the meeting and agreed the agenda for today",
       "the remote control batteries drain quickly so we need rechargeable batteries",
       "marketing reported that users want a fancy look and feel",
       "the budget is twelve euros fifty per unit including the case"]


def test_bm25_baseline_is_stemmed_and_ignores_stop_words():
    assert bm25_tokens("The Batteries were draining") == ["batteri", "drain"]
    r = WindowRanker(TOY)
    assert r.rank("battery drains", "bm25")[0] == 1
    assert r.rank("what is the budget per unit?", "bm25")[0] == 3
    # nothing to go on: time order
    assert r.rank("the of and", "bm25") == [0, 1, 2, 3]


def test_pystemmer_and_the_tantivy_fallback_stem_alike(monkeypatch):
    from sleuth.eval import rec_baselines as B

    words = "batteries draining indexed indexing remote controls meetings generously agreed".split()
    B._stemmer.cache_clear()
    fast = B._stemmer()(words)
    B._stemmer.cache_clear()
    monkeypatch.setitem(__import__("sys").modules, "Stemmer", None)  # as if PyStemmer were not installed
    try:
        assert B._stemmer()(words) == fast
    finally:
        B._stemmer.cache_clear()


def test_dense_baseline_ranks_by_meaning():
    r = WindowRanker(TOY)
    assert r.rank("How much will each device cost to make?", "dense")[0] == 3
    assert r.rank("what do customers want the design to look like", "dense")[0] == 2


def test_report_tables_and_pairing():
    recs = [{"kind": "meeting", "queries": [
        {"systems": {"sleuth_segment": {"r@1": 1.0, "r@5": 1.0, "r@10": 1.0, "spans": [[0, 20]]},
                     "baseline_bm25_asr": {"r@1": 0.0, "r@5": 0.5, "r@10": 1.0, "spans": [[0, 60]]}}},
        {"systems": {"sleuth_segment": {"r@1": 0.0, "r@5": 0.0, "r@10": 0.0, "spans": [[5, 15]]},
                     "baseline_bm25_asr": {"r@1": None, "r@5": None, "r@10": None, "spans": []}}}]}]
    t = retrieval_table(recs)
    assert t["sleuth_segment"]["r@5"] == 50.0 and t["sleuth_segment"]["n"] == 2
    assert t["baseline_bm25_asr"]["r@5"] == 50.0 and t["baseline_bm25_asr"]["n"] == 1
    assert t["sleuth_segment"]["mean_top5_span_s"] == 15.0
    p = paired(recs, "sleuth_segment", "baseline_bm25_asr")
    assert p["n"] == 1 and p["diff"] == 50.0  # only the query both were scored on


# ---------------------------------------------------------------- end to end on a tiny recording


MEETING = {  # QMSum's shape; made up here, nothing from the dev split
    "meeting_transcripts": [
        {"speaker": "Project Manager", "content": "Good morning everyone. Today we decide the colour of the new kettle."},
        {"speaker": "Marketing", "content": "I think the kettle should be bright orange , because orange sells well in shops ."},
        {"speaker": "Project Manager", "content": "Next item. The shipping budget for the spring is nine thousand pounds."},
        {"speaker": "Marketing", "content": "Then we should ship by train instead of by air to save money."}],
    "topic_list": [{"topic": "Kettle colour", "relevant_text_span": [["0", "1"]]},
                   {"topic": "Shipping", "relevant_text_span": [["2", "3"]]}],
    "specific_query_list": [
        {"query": "What colour should the kettle be?", "answer": "Bright orange.", "relevant_text_span": [["1", "1"]]},
        {"query": "How will the products be shipped and what is the budget?",
         "answer": "By train; the budget is nine thousand pounds.", "relevant_text_span": [["2", "3"]]}],
}


def make_tiny_meeting(folder: Path) -> dict:
    """A ~20 s two-voice call made by the recordings' own renderer, with a manifest beside it."""
    from sleuth.samples.recordings import render_meeting

    render_meeting(MEETING, folder, "tiny", jobs=1)
    truth = json.loads((folder / "tiny.truth.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({"schema": "sleuth.recordings/1", "items": [
        {"kind": "meeting", "name": "tiny", "mp4": "tiny.mp4", "truth": "tiny.truth.json", "duration_s": truth["duration_s"]}]}))
    return truth


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from sleuth.eval.recordings import run

    data = tmp_path_factory.mktemp("recordings")
    truth = make_tiny_meeting(data)
    out = tmp_path_factory.mktemp("out")
    return data, out, truth, run(data, out, progress=False)


def test_tiny_recording_end_to_end(tiny_run):
    data, out, truth, summary = tiny_run
    assert summary["recordings"] == 1 and not summary["failed"]
    assert json.loads((out / "summary.json").read_text())["retrieval"] == summary["retrieval"]
    assert "| sleuth_segment |" in (out / "summary.md").read_text()
    table = summary["retrieval"]["meeting"]
    for name in ("sleuth_segment", "sleuth_scene", "baseline_bm25_asr", "baseline_dense_asr",
                 "baseline_bm25_truth", "baseline_dense_truth"):
        assert table[name]["n"] == 2
    # the whole recording fits one 60 s window: every window baseline hits at rank 1 (a check on
    # the plumbing, not on quality); sleuth's segments are narrower and must still find the kettle
    assert table["baseline_bm25_truth"]["r@1"] == 100.0
    rec = json.loads(next((out / "items").glob("tiny-*.json")).read_text())
    q1 = rec["queries"][0]
    assert q1["systems"]["sleuth_segment"]["r@5"] == 1.0
    assert summary["asr"]["wer"] < 35  # whisper base on espeak-ng: the pipeline heard the speech
    assert rec["transcript_source"] == "whisper"
    assert summary["speed"]["x_real_time"] and summary["speed"]["peak_rss_mb"] > 50


def test_rerun_skips_finished_recordings(tiny_run, monkeypatch):
    from sleuth.eval import rec_item
    from sleuth.eval.recordings import run

    data, out, _, summary = tiny_run

    def boom(*a, **k):
        raise AssertionError("a finished recording was indexed again")

    monkeypatch.setattr(rec_item, "index_file", boom)
    again = run(data, out, progress=False)
    assert again["retrieval"] == summary["retrieval"]


def test_cli_recordings_json_and_bad_manifest(tiny_run, tmp_path):
    from typer.testing import CliRunner

    from sleuth.cli import app

    data, out, _, summary = tiny_run
    res = CliRunner().invoke(app, ["eval", "recordings", "--data", str(data), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["retrieval"] == summary["retrieval"]
    res = CliRunner().invoke(app, ["eval", "recordings", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "manifest.json" in res.output
    res = CliRunner().invoke(app, ["eval", "recordings", "--data", str(data), "--subset", "podcast", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2


def test_a_failed_recording_is_one_line_and_the_rest_go_on(tiny_run, tmp_path, capsys):
    from sleuth.eval.recordings import run

    data, _, _, _ = tiny_run
    man = json.loads((data / "manifest.json").read_text())
    man["items"].insert(0, {"kind": "meeting", "name": "gone\x1b[31m", "mp4": "missing.mp4", "truth": "missing.truth.json"})
    d2 = tmp_path / "data"
    shutil.copytree(data, d2)
    (d2 / "manifest.json").write_text(json.dumps(man))
    out = tmp_path / "out"
    shutil.copytree(tiny_run[1], out)  # the finished tiny recording is reused, not indexed again
    s = run(d2, out, progress=False)
    assert s["recordings"] == 1 and len(s["failed"]) == 1 and "\n" not in s["failed"][0]["reason"]
    err = capsys.readouterr().err
    assert "error: gone[31m: FileNotFoundError" in err and "\x1b" not in err and err.count("\n") == 1


class EchoLLM:
    """Plans one search (the question itself) and answers with the first passage it is shown, cited."""

    name = "echo"

    def count_tokens(self, s):
        return max(1, len(s.split()))

    def chat(self, messages, tools=None, **kw):
        import re

        from sleuth.agent.chat import LLMReply

        prompt = messages[-1]["content"]
        if prompt.startswith("Passages from"):
            m = re.search(r"^\[(\d+)\] \([^)]*\) (.*)$", prompt, re.M)
            return LLMReply(content=f"{m.group(2)} [{m.group(1)}]" if m else "Not answerable.")
        q = re.search(r"Question: (.*)", prompt)
        return LLMReply(content=json.dumps([q.group(1) if q else "kettle"]))


def test_answers_agent_and_flat_rag_scored_and_resumed(tiny_run, tmp_path):
    from sleuth.eval.rec_answers import summarise_answers
    from sleuth.eval.recordings import run

    data, out, _, _ = tiny_run
    out2 = tmp_path / "out"
    shutil.copytree(out, out2)
    s = run(data, out2, answers=True, llm_options={"llm": EchoLLM()}, progress=False)
    assert set(s["answers"]) == {"meeting"}
    ans = s["answers"]["meeting"]
    assert set(ans["systems"]) == {"agent", "flat_rag"} and all(r["n"] == 2 and r["errors"] == 0 for r in ans["systems"].values())
    rows = [json.loads(l) for l in (out2 / "answers.jsonl").read_text().splitlines()]
    flat = next(r for r in rows if r["system"] == "flat_rag" and r["id"] == "tiny:s0")
    # one 60 s window holds the whole tiny call, so flat RAG cites it and it overlaps the gold turn
    assert flat["cited_gold"] is True and flat["spans"] == [[0.0, pytest.approx(s["items"][0]["minutes"] * 60, abs=3)]]
    assert 0 < flat["rouge_l_f1"] < 1 and 0 <= flat["rouge_l"] <= 1  # LongBench's ROUGE is case-sensitive
    assert ans["paired"][0]["a"] == "agent" and ans["paired"][0]["n"] == 2
    # a rerun answers nothing again and gives the same summary
    again = run(data, out2, answers=True, llm_options={"llm": EchoLLM()}, progress=False)
    assert again["answers"]["meeting"] == ans and len((out2 / "answers.jsonl").read_text().splitlines()) == len(rows)
    assert summarise_answers(rows) == {"meeting": ans}
    assert "## Answers (meeting)" in (out2 / "summary.md").read_text()


def test_lecture_questions_from_the_pdf_and_the_video_side_by_side(tiny_run, tmp_path):
    """The tiny call read as a two-slide 'lecture': its video is already indexed (its figures are
    reused), so only the slide deck is indexed here."""
    from reportlab.pdfgen import canvas

    from sleuth.eval.recordings import cache_name, run

    data, out, truth, _ = tiny_run
    turns = truth["turns"]
    d2 = tmp_path / "data"
    shutil.copytree(data, d2)
    c = canvas.Canvas(str(d2 / "deck.pdf"))
    for text in ("Kettle colour: bright orange sells well in shops.", "Shipping: by train instead of by air; budget nine thousand pounds."):
        c.drawString(72, 720, text)
        c.showPage()
    c.save()
    lecture = {"schema": "sleuth.recording/1", "kind": "lecture", "name": "deck", "source": "test", "pdf_path": "deck.pdf",
               "duration_s": truth["duration_s"],
               "pages": [{"page": 1, "start": 0.0, "end": turns[1]["end"], "text": " ".join(t["text"] for t in turns[:2]), "silent": False},
                         {"page": 2, "start": turns[1]["end"], "end": truth["duration_s"], "text": " ".join(t["text"] for t in turns[2:]), "silent": False}],
               "queries": [{"id": "l1", "query": "Which colour sells well?", "answer": "Orange.", "evidence_pages": [1],
                            "spans": [[0.0, turns[1]["end"]]]},
                           {"id": "l2", "query": "How is shipping done?", "answer": "By train.", "evidence_pages": [2],
                            "spans": [[turns[1]["end"], truth["duration_s"]]]}]}
    (d2 / "deck.truth.json").write_text(json.dumps(lecture))
    (d2 / "manifest.json").write_text(json.dumps({"schema": "sleuth.recordings/1", "items": [
        {"kind": "lecture", "name": "deck", "mp4": os.path.relpath(data / "tiny.mp4", d2), "truth": "deck.truth.json",
         "duration_s": truth["duration_s"]}]}))
    out2 = tmp_path / "out"
    shutil.copytree(out, out2)
    meeting_index = next((out2 / "items").glob("tiny-*.index.json"))
    shutil.copy(meeting_index, out2 / "items" / (cache_name("deck") + ".index.json"))
    s = run(d2, out2, progress=False)
    assert not s["failed"], s["failed"]
    table = s["retrieval"]["lecture"]
    assert table["pdf_fine"]["n"] == 2 and table["pdf_fine"]["r@1"] == 100.0  # one line a page: the right page first
    assert table["sleuth_segment"]["n"] == 2 and s["speakers"] is None
    assert any(c["b"] == "pdf_fine" or c["b"] == "pdf_any" for c in s["paired"]["lecture"])
