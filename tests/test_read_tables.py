"""``read`` on tables, table rows and figures (index/table_text.py): a table is a Markdown pipe
table with its header, a row hit is read under that header, a figure with the text inside it.
The Markdown is checked by parsing it (markdown-it, GitHub tables), against the row nodes' cells."""

from __future__ import annotations

import pytest

from fakes.pdf_pages import pdf_pages as _pages
from sleuth.index.table_text import render_table

pytest.importorskip("reportlab")
MarkdownIt = pytest.importorskip("markdown_it").MarkdownIt

DEV = "mmlongbench_doc_dev/documents"


def parse(text: str) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """(paragraphs, table rows: header first, tables) of ``text`` as a GitHub Markdown parser reads it."""
    paras, rows, tables, cur, where = [], [], 0, None, None
    for t in MarkdownIt("commonmark").enable("table").parse(text):
        if t.type == "table_open":
            tables += 1
        elif t.type in ("paragraph_open", "tr_open"):
            where = t.type
            cur = [] if t.type == "tr_open" else None
        elif t.type == "tr_close":
            rows.append(cur)
        elif t.type == "inline":
            if where == "tr_open":
                cur.append("".join(c.content for c in t.children or []))
            else:
                paras.append(t.content)
    assert tables <= 1, text
    return paras, rows, tables


# ----------------------------------------------------------------------------- the renderer


def test_a_cell_with_a_pipe_or_newline_stays_one_cell():
    text, shown = render_table("Table 9: Odd cells", ["Name", "Value"],
                               [["a | b", "1"], ["two\nlines", "x\\|y"], ["short"]], 1000)
    paras, rows, n = parse(text)
    assert n == 1 and paras == ["Table 9: Odd cells"] and shown == [0, 1, 2]
    assert rows == [["Name", "Value"], ["a | b", "1"], ["two lines", "x|y"], ["short", ""]]


def test_no_header_gives_empty_header_cells_and_a_tight_budget_keeps_the_header():
    body = [[f"item {k}", str(k)] for k in range(30)]
    _, rows, _ = parse(render_table("", None, body, 10_000)[0])
    assert rows[0] == ["", ""] and rows[1:] == body
    text, shown = render_table("Table 1: Long", ["Item", "Count"], body, 40)
    paras, rows, _ = parse(text)
    assert rows[0] == ["Item", "Count"] and 0 < len(shown) < 30
    assert rows[1:] == body[: len(shown)] and shown == list(range(len(shown)))
    assert paras == ["Table 1: Long", f"({30 - len(shown)} of 30 rows not shown)"]
    # nothing fits: still the caption and the header
    _, rows, _ = parse(render_table("Table 1: Long", ["Item", "Count"], body, 1)[0])
    assert rows == [["Item", "Count"]]


def test_a_focused_row_comes_with_its_nearest_neighbours_in_table_order():
    body = [[f"item {k}", str(k)] for k in range(30)]
    text, shown = render_table("", ["Item", "Count"], body, 60, focus=29)
    _, rows, _ = parse(text)
    assert shown[-1] == 29 and shown == list(range(shown[0], 30)) and len(shown) > 1
    assert rows[1:] == [body[k] for k in shown]
    _, rows, _ = parse(render_table("", ["Item", "Count"], body, 1, focus=12)[0])
    assert rows == [["Item", "Count"], body[12]]  # the row itself is always there
    text, shown = render_table("", ["Item", "Count"], body, 80, focus=12)
    assert 12 in shown and (12 - min(shown)) - (max(shown) - 12) in (0, 1)  # the row before first


# ----------------------------------------------------------------------------- real PDFs


@pytest.fixture(scope="module")
def real(shared_data, tmp_path_factory):
    """A library of two real pages: a paper's Table 2 (2310.05634v2 p.3) and a 10-K's income
    statement (NETFLIX_2015_10K p.40, 19 body rows under a header of years)."""
    from sleuth import Library

    docs = shared_data / DEV
    if not (docs / "2310.05634v2.pdf").exists() or not (docs / "NETFLIX_2015_10K.pdf").exists():
        pytest.skip("dev PDFs are not present")
    tmp = tmp_path_factory.mktemp("tables")
    paths = [_pages(docs / "2310.05634v2.pdf", [3], tmp / "paper_p3.pdf"),
             _pages(docs / "NETFLIX_2015_10K.pdf", [40], tmp / "netflix_p40.pdf")]
    lib = Library(tmp / "lib")
    rep = lib.add(paths)
    assert all(r.status == "added" for r in rep.results), [r.reason for r in rep.results]
    yield lib
    lib.close()


def _tables(lib) -> list[tuple[dict, list[dict]]]:
    from sqlalchemy import select

    from sleuth.index.schema import NodeRow

    with lib.Session() as s:
        out = []
        for i in _ids(lib, "table"):
            kids = s.execute(select(NodeRow.id).where(NodeRow.parent_id == i, NodeRow.kind == "row")
                             .order_by(NodeRow.id)).scalars().all()
            out.append((lib.get_node(i), [lib.get_node(k) for k in kids]))
    return out


def test_real_table_reads_as_markdown_with_its_header_and_the_rows_cells(real):
    tables = [(t, rows) for t, rows in _tables(real) if rows and rows[0]["meta"]["header"]]
    assert any(t["title"].startswith("Table 2: Human Evaluation") for t, _ in tables)
    assert any(t["source"] == "netflix_p40.pdf" for t, _ in tables)
    for t, rows in tables:
        out = real.read(t["id"], max_tokens=100_000)
        assert [i["id"] for i in out["items"]] == [t["id"]] and out["items"][0]["kind"] == "table"
        paras, parsed, n = parse(out["items"][0]["text"])
        assert n == 1 and paras == ([t["title"]] if t["title"] else [])
        width = len(parsed[0])
        assert parsed[0] == rows[0]["meta"]["header"] + [""] * (width - len(rows[0]["meta"]["header"]))
        assert parsed[1:] == [r["meta"]["cells"] + [""] * (width - len(r["meta"]["cells"])) for r in rows]
    paper = next(t for t, _ in tables if t["title"].startswith("Table 2"))
    text = real.read(paper["id"])["items"][0]["text"]
    assert "| Metric (full score) | General Specific |\n|---|---|\n| Authenticity (1) | 1.00 1.00 |" in text


def test_real_table_over_budget_keeps_its_header_and_first_rows(real):
    t, rows = next((t, rows) for t, rows in _tables(real) if t["source"] == "netflix_p40.pdf" and len(rows) > 15)
    out = real.read(t["id"], max_tokens=120)
    item = out["items"][0]
    paras, parsed, _ = parse(item["text"])
    header = rows[0]["meta"]["header"]
    assert parsed[0][: len(header)] == header and "2015" in parsed[0]
    k = len(parsed) - 1
    assert 0 < k < len(rows) and paras[-1] == f"({len(rows) - k} of {len(rows)} rows not shown)"
    assert [p[:2] for p in parsed[1:]] == [r["meta"]["cells"][:2] for r in rows[:k]]
    assert out["tokens"] <= 120 and item["id"] == t["id"]


def test_real_row_reads_under_its_header_and_keeps_its_own_place(real):
    for t, rows in _tables(real):
        if not rows or not rows[0]["meta"]["header"]:
            continue
        for r in (rows[0], rows[len(rows) // 2], rows[-1]):
            out = real.read(r["id"], max_tokens=60)
            assert len(out["items"]) == 1
            item = out["items"][0]
            # the item is the row: its id and its place, so a citation points at the row
            assert item["id"] == r["id"] and item["kind"] == "row"
            assert item["locator"] == r["locator"] and item["label"] == r["label"]
            _, parsed, _ = parse(item["text"])
            header = r["meta"]["header"]
            assert parsed[0][: len(header)] == header
            assert r["meta"]["cells"] in [p[: len(r["meta"]["cells"])] for p in parsed[1:]]
            assert item["text"].startswith(t["title"]) if t["title"] else item["text"].startswith("|")


def test_real_row_hit_of_search_reads_with_column_names(real):
    hits = real.search("Relevance 0.73 0.84", level="row", k=1)
    assert hits and hits[0]["kind"] == "row"
    text = real.read(hits[0]["id"], max_tokens=200)["items"][0]["text"]
    _, parsed, _ = parse(text)
    assert parsed[0] == ["Metric (full score)", "General Specific"] and ["Relevance (1)", "0.73 0.84"] in parsed


# ----------------------------------------------------------------------------- figures


def test_figure_reads_its_caption_and_the_text_drawn_over_it(tmp_path):
    from PIL import Image
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    from sleuth import Library

    path = tmp_path / "fig.pdf"
    c = canvas.Canvas(str(path), pagesize=(612, 792))
    c.setFont("Helvetica", 11)
    c.drawString(72, 740, "Tide gauges along the estuary were read every hour for two weeks in spring.")
    c.drawImage(ImageReader(Image.new("RGB", (400, 250), (200, 220, 240))), 100, 400, 400, 250)
    c.setFont("Helvetica", 9)
    c.drawString(130, 600, "Peak ebb 2.4 m/s")  # a callout drawn over the image: text layer, inside its box
    c.setFont("Helvetica", 10)
    c.drawString(100, 380, "Figure 1: Flow speed at the channel mouth.")
    c.setFont("Helvetica", 11)
    c.drawString(72, 300, "The spring tide carried the most water through the mouth of the channel.")
    c.save()
    lib = Library(tmp_path / "lib")
    try:
        assert lib.add([path]).results[0].status == "added"
        fig = lib.get_node(_ids(lib, "figure")[0])
        item = lib.read(fig["id"])["items"][0]
        assert item["id"] == fig["id"] and item["kind"] == "figure"
        lines = item["text"].splitlines()
        assert lines[0] == "Figure 1: Flow speed at the channel mouth."
        assert "Peak ebb 2.4 m/s" in lines[1] and "spring tide" not in item["text"]
        # the whole page reads the callout once, with its figure
        page = lib.read(lib.sources()[0]["root_id"], max_tokens=10_000)["items"]
        assert sum(i["text"].count("Peak ebb") for i in page) == 1
    finally:
        lib.close()


def _ids(lib, kind: str) -> list[int]:
    from sqlalchemy import select

    from sleuth.index.schema import NodeRow

    with lib.Session() as s:
        return list(s.execute(select(NodeRow.id).where(NodeRow.kind == kind).order_by(NodeRow.id)).scalars().all())
