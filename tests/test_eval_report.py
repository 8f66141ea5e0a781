"""Report files are written and parse back."""

import pytest

from sleuth.eval import report


def _records():
    recs = []
    # bm25 on task t: budget 500 recalls 1, 0 → 50.0; budget 1000 recalls 1, 1 → 100.0
    for b, vals in ((500, [1.0, 0.0]), (1000, [1.0, 1.0])):
        for i, v in enumerate(vals):
            recs.append({"task": "t", "id": str(i), "method": "bm25", "budget": b, "recall": v})
    # head: 0.25 and an unscorable item → mean over the scored one only: 25.0
    for b in (500, 1000):
        recs.append({"task": "t", "id": "0", "method": "head", "budget": b, "recall": 0.25})
        recs.append({"task": "t", "id": "1", "method": "head", "budget": b, "recall": None})
    return recs


def test_jsonl_roundtrip_skips_torn_line(tmp_path):
    p = report.write_jsonl(tmp_path / "items.jsonl", _records())
    with open(p, "a") as f:
        f.write('{"task": "t", "id"')  # an interrupted write
    assert list(report.read_jsonl(p)) == _records()
    assert list(report.read_jsonl(tmp_path / "absent.jsonl")) == []


def test_summary_and_markdown_table():
    s = report.recall_summary(_records())
    assert s["t"]["bm25"][500] == {"mean": 50.0, "n": 2, "unscored": 0}
    assert s["t"]["head"][1000] == {"mean": 25.0, "n": 1, "unscored": 1}
    md = report.markdown_table(_records())
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    header, *body = rows
    assert [c.strip() for c in header.strip("|").split("|")] == ["method", "500 tok", "1000 tok"]
    table = {r.strip("|").split("|")[0].strip(): [c.strip() for c in r.strip("|").split("|")[1:]] for r in body}
    assert table == {"bm25": ["50.0", "100.0"], "head": ["25.0", "25.0"]}


def test_plot_and_write_reports(tmp_path):
    import matplotlib.image as mpimg

    paths = report.write_reports(_records(), tmp_path)
    assert paths["markdown"].read_text().count("| bm25 |") == 1
    png = paths["plot"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(png)
    assert img.shape[0] > 100 and img.shape[1] > 100
    with pytest.raises(ValueError):
        report.plot_recall([], tmp_path / "empty.png")


def test_e2e_summary():
    # scores 1.0 and 0.5 → 75.0 (LongBench's ×100 mean)
    s = report.e2e_summary([{"task": "x", "score": 1.0}, {"task": "x", "score": 0.5}])
    assert s == {"x": {"score": 75.0, "n": 2}}
