"""LVBench end to end on a real local video (manifesto.mp4 + its subtitles), questions written here."""

import json

import pytest

from sleuth.eval.runner import run_eval

QA = [  # time references (MM:SS-MM:SS) are where manifesto.srt has the words
    {"uid": 101, "question": "What is haunting Europe, according to the narration?\n(A) a spectre\n(B) a famine\n(C) a war\n(D) a king",
     "answer": "A", "question_type": ["key information retrieval"], "time_reference": "00:19-00:23"},
    {"uid": 102, "question": "Where did communists of various nationalities assemble?\n(A) Paris\n(B) London\n(C) Berlin\n(D) Rome",
     "answer": "B", "question_type": ["key information retrieval", "reasoning"], "time_reference": "01:14-01:18"},
    {"uid": 103, "question": "Which languages will the manifesto be published in?\n(A) only German\n(B) Latin\n(C) English, French, German, Italian, Flemish and Danish\n(D) Russian",
     "answer": "C", "question_type": ["summarization"], "time_reference": "01:18-01:27"},
]


@pytest.fixture
def lvbench_dir(tmp_path, shared_data):
    vids = tmp_path / "videos"
    vids.mkdir()
    for suffix in (".mp4", ".srt"):
        (vids / f"manifesto{suffix}").symlink_to(shared_data / "video" / f"manifesto{suffix}")
    meta = tmp_path / "video_info.meta.jsonl"
    meta.write_text(json.dumps({"key": "manifesto", "type": "documentary", "video_info": {"duration_minutes": 1.5},
                                "qa": QA}) + "\n")
    return tmp_path, vids


def test_lvbench_retrieval_on_a_real_video(lvbench_dir):
    root, vids = lvbench_dir
    summary = run_eval("lvbench", root / "video_info.meta.jsonl", mode="retrieval", budgets=[300],
                       out=root / "out", progress=False, methods="search", video_dir=vids)
    recs = [json.loads(l) for l in open(summary["records"])]
    by_uid = {str(r["id"]): r for r in recs if r.get("method") == "search"}
    assert set(by_uid) == {"101", "102", "103"}
    # the segments search read within 300 tokens overlap the annotated span of every question
    assert all(r["recall"] == 1.0 for r in by_uid.values()), by_uid


def test_lvbench_e2e_answers_every_uid(lvbench_dir):
    root, vids = lvbench_dir
    summary = run_eval("lvbench", root / "video_info.meta.jsonl", mode="e2e", out=root / "out_e2e",
                       progress=False, video_dir=vids)
    scores = summary["scores"]
    assert scores["strict"]["Overall"] is not None and not scores.get("missing")
    recs = [json.loads(l) for l in open(summary["records"])]
    assert {str(r["id"]) for r in recs} == {"101", "102", "103"}
