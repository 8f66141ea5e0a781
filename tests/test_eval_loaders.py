"""Loaders on the real benchmark files in shared/data and on an LVBench file the test writes."""

import json

import pytest

from conftest import SHARED
from sleuth.eval import loaders as L

DATA = SHARED
LB = DATA / "longbench"
V2 = DATA / "longbench_v2"
needs_data = pytest.mark.skipif(not LB.is_dir() or not V2.is_dir(), reason="shared/data not present")


@needs_data
def test_longbench_real_files():
    data = L.load_longbench(LB)
    # SOURCE.md: three task files of 200 records each
    assert sorted(data) == ["multi_news", "multifieldqa_zh", "passage_retrieval_zh"]
    for task, items in data.items():
        assert len(items) == 200
        assert all(it.dataset == task for it in items)
        assert all(isinstance(it.answers, list) and it.answers for it in items)
    # the loader returns the file's record unchanged
    first = json.loads((LB / "multifieldqa_zh.jsonl").open(encoding="utf-8").readline())
    assert data["multifieldqa_zh"][0].to_record() == first
    assert data["multifieldqa_zh"][0].language == "zh"
    # SOURCE.md: multi_news has an empty input
    assert all(it.input == "" for it in data["multi_news"])


@needs_data
def test_longbench_subset_and_limit():
    data = L.load_longbench(LB, subsets=["passage_retrieval_zh"], limit=7)
    assert list(data) == ["passage_retrieval_zh"] and len(data["passage_retrieval_zh"]) == 7
    with pytest.raises(L.LoaderError, match="no file for task"):
        L.load_longbench(LB, subsets=["qasper"])


def test_longbench_bad_record_names_file_and_line(tmp_path):
    p = tmp_path / "hotpotqa.jsonl"
    good = {"input": "q", "context": "c", "answers": ["a"], "length": 1, "dataset": "hotpotqa",
            "language": "en", "all_classes": None, "_id": "x"}  # fmt: skip
    bad = dict(good)
    del bad["answers"]
    p.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(L.LoaderError) as e:
        L.load_longbench_file(p)
    msg = str(e.value)
    assert f"{p}:2:" in msg and "answers" in msg and "\n" not in msg
    p.write_text("{not json\n")
    with pytest.raises(L.LoaderError, match=":1: not JSON"):
        L.load_longbench_file(p)


@needs_data
def test_longbench_v2_real_file():
    items, skipped = L.load_longbench_v2(V2)
    # SOURCE.md: 503 questions, contexts copied for 298 of them
    assert len(items) == 298 and len(skipped) == 503 - 298
    assert all(it.context for it in items)
    rec = next(json.loads(line) for line in (V2 / "questions_all.jsonl").open(encoding="utf-8")
               if json.loads(line)["context_file"])  # fmt: skip
    it = next(i for i in items if i.id == rec["_id"])
    assert it.context == (V2 / rec["context_file"]).read_text(encoding="utf-8")
    assert it.choices == {k: rec[f"choice_{k}"] for k in "ABCD"} and it.answer == rec["answer"]
    # short: 180 in all, 178 with a context (SOURCE.md: two dropped)
    short, short_skipped = L.load_longbench_v2(V2, lengths=["short"])
    assert len(short) + len(short_skipped) == 180 and all(i.length == "short" for i in short)
    everything, none_skipped = L.load_longbench_v2(V2, require_context=False)
    assert len(everything) == 503 and not none_skipped
    assert sum(i.context is None for i in everything) == 503 - 298


def test_longbench_v2_official_json_list(tmp_path):
    rec = {"_id": "1", "domain": "d", "sub_domain": "s", "difficulty": "hard", "length": "long",
           "question": "Q?", "choice_A": "a", "choice_B": "b", "choice_C": "c", "choice_D": "d",
           "answer": "C", "context": "the text"}  # fmt: skip
    (tmp_path / "data.json").write_text(json.dumps([rec]))
    items, skipped = L.load_longbench_v2(tmp_path)
    assert [i.context for i in items] == ["the text"] and skipped == []
    rec["answer"] = "E"
    (tmp_path / "data.json").write_text(json.dumps([rec]))
    with pytest.raises(L.LoaderError, match="not a letter"):
        L.load_longbench_v2(tmp_path)


def _write_lvbench(tmp_path):
    videos = [
        {"key": "Cm73ma6Ibcs", "type": "cartoon",
         "video_info": {"duration_minutes": 62.5, "fps": 25.0, "resolution": {"width": 640, "height": 360}},
         "qa": [
             {"uid": 55, "question": "What year appears in the opening caption of the video?\n(A) 1636\n(B) 1366\n(C) 1363\n(D) 1633",
              "answer": "D", "question_type": ["key information retrieval"], "time_reference": "00:15-00:19"},
             {"uid": "56", "question": "Who speaks first?\n(A) a cat\n(B) a dog\n(C) a bird\n(D) nobody",
              "answer": "B", "question_type": ["entity recognition", "temporal grounding"], "time_reference": "01:02:03-01:02:10"},
         ]},
        {"key": "zzzzzzzzzzz", "type": "sports",
         "video_info": {"duration_minutes": 40, "fps": 30, "resolution": {"width": 1280, "height": 720}},
         "qa": [{"uid": 57, "question": "Score?\n(A) 1\n(B) 2\n(C) 3\n(D) 4", "answer": "A",
                 "question_type": ["reasoning"], "time_reference": ""}]},
    ]  # fmt: skip
    meta = tmp_path / "video_info.meta.jsonl"
    meta.write_text("\n".join(json.dumps(v) for v in videos) + "\n")
    vids = tmp_path / "videos"
    vids.mkdir()
    (vids / "Cm73ma6Ibcs.webm").write_bytes(b"\x1a\x45\xdf\xa3")
    return meta, vids, videos


def test_lvbench_official_format(tmp_path):
    meta, vids, raw = _write_lvbench(tmp_path)
    videos = L.load_lvbench(meta, vids)
    assert [v.key for v in videos] == ["Cm73ma6Ibcs", "zzzzzzzzzzz"]
    assert videos[0].path == vids / "Cm73ma6Ibcs.webm" and videos[1].path is None
    assert videos[0].video_info["fps"] == 25.0
    q = videos[0].questions[0]
    assert q.uid == "55" and q.answer == "D"
    assert q.question == "What year appears in the opening caption of the video?"
    assert q.options == {"A": "1636", "B": "1366", "C": "1363", "D": "1633"}
    assert q.span == (15.0, 19.0)
    # HH:MM:SS: 1·3600 + 2·60 + 3 = 3723 s
    assert videos[0].questions[1].span == (3723.0, 3730.0)
    assert videos[0].questions[1].question_type == ["entity recognition", "temporal grounding"]
    assert videos[1].questions[0].span is None
    assert q.to_record()["question"] == raw[0]["qa"][0]["question"]
    # the folder form finds video_info.meta.jsonl
    assert len(L.lvbench_questions(L.load_lvbench(tmp_path, vids))) == 3


def test_lvbench_duplicate_uid_is_an_error(tmp_path):
    meta, vids, raw = _write_lvbench(tmp_path)
    raw[1]["qa"][0]["uid"] = 55
    meta.write_text("\n".join(json.dumps(v) for v in raw) + "\n")
    with pytest.raises(L.LoaderError, match=r":2: duplicate question uid 55"):
        L.load_lvbench(meta, vids)


def test_parse_time_reference():
    assert L.parse_time_reference("00:15-00:19") == (15.0, 19.0)
    assert L.parse_time_reference("1:00:00-1:00:30") == (3600.0, 3630.0)
    assert L.parse_time_reference("garbage") is None


def test_mmlongbench_loader_parses_literals_and_checks_documents(tmp_path):
    import json as _json

    from sleuth.eval.loaders import LoaderError, load_mmlongbench

    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "a.pdf").write_bytes(b"%PDF-1.4\n")
    recs = [{"doc_id": "a.pdf", "doc_type": "Academic paper", "question": "q1", "answer": "3",
             "evidence_pages": "[2, 5]", "evidence_sources": "['Table']", "answer_format": "Int"},
            {"doc_id": "a.pdf", "doc_type": "Brochure", "question": "q2", "answer": "Not answerable",
             "evidence_pages": "[]", "evidence_sources": "[]", "answer_format": "None"}]
    (tmp_path / "samples.json").write_text(_json.dumps(recs))
    items = load_mmlongbench(tmp_path)
    assert [i.evidence_pages for i in items] == [[2, 5], []]
    assert [i.answerable for i in items] == [True, False]
    assert items[0].evidence_sources == ["Table"] and items[1].id == "a.pdf#1"
    assert [i.question for i in load_mmlongbench(tmp_path, doc_types=["Brochure"])] == ["q2"]
    recs[0]["doc_id"] = "missing.pdf"
    (tmp_path / "samples.json").write_text(_json.dumps(recs))
    with pytest.raises(LoaderError, match="missing.pdf"):
        load_mmlongbench(tmp_path)
