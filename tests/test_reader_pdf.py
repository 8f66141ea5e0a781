"""PDF reader against generated PDFs whose structure and boxes are known (sleuth.samples)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("reportlab")

from sleuth import samples
from sleuth.core import Node, ReaderError
from sleuth.readers import pdf_extract as px
from sleuth.readers.pdf import read_pdf
from sleuth.readers.pdf_layout import Item, Line, Span, build_lines, find_tables, reading_order
from sleuth.readers.render import render_box, render_page


def norm(s: str) -> str:
    return " ".join(s.split())


def sections(n: Node, depth: int = 0, out=None) -> list[tuple[int, str]]:
    out = [] if out is None else out
    for c in n.children:
        if c.kind == "section":
            out.append((depth + 1, c.title))
            sections(c, depth + 1, out)
    return out


def nodes(tree, kind: str) -> list[Node]:
    return [n for n in tree.root.walk() if n.kind == kind]


def close(a, b, tol: float) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("pdfs")
    out = {}
    out["plain"] = samples.make_report_pdf(d / "plain.pdf", outline=False)
    out["outline"] = samples.make_report_pdf(d / "outline.pdf", outline=True, metadata_title=False)
    out["twocol"] = samples.make_report_pdf(d / "twocol.pdf", outline=False, two_column=True)
    out["page"] = samples.make_two_column_pdf(d / "page.pdf")
    trees = {k: read_pdf(v["path"]) for k, v in out.items()}
    return out, trees, d


@pytest.mark.parametrize("key", ["plain", "outline", "twocol"])
def test_section_tree_equals_known_structure(built, key):
    gt, trees, _ = built
    tree = trees[key]
    assert sections(tree.root) == samples.section_titles(gt[key]["sections"])
    assert tree.root.meta["outline"] is (key == "outline")
    # each section opens on the page its heading was drawn on, with the heading's box
    want = {}

    def walk(ns):
        for n in ns:
            want[n["title"]] = n
            walk(n["children"])

    walk(gt[key]["sections"])
    for s in nodes(tree, "section"):
        w = want[s.title]
        assert s.page == w["page"], s.title
        # boxes follow the ink: a heading without descenders ends at its baseline, up to
        # 0.21 em above the font's descent line that the ground truth uses
        assert close(s.bbox[:3], w["bbox"][:3], 2.0), (s.title, s.bbox, w["bbox"])
        assert -0.5 <= w["bbox"][3] - s.bbox[3] <= 0.25 * 15 + 0.5, (s.title, s.bbox, w["bbox"])
        assert s.meta["level"] == w["level"]
        assert s.meta["page_end"] >= s.page


def test_document_title_from_metadata_and_from_layout(built):
    gt, trees, _ = built
    assert trees["plain"].root.title == gt["plain"]["title"]
    assert trees["plain"].root.meta["title_source"] == "metadata"
    # the outline sample has no metadata title: the big first-page line is the title
    assert trees["outline"].root.title == gt["outline"]["title"]
    assert trees["outline"].root.meta["title_source"] == "layout"
    assert trees["plain"].root.meta["pages"] == gt["plain"]["pages"]


@pytest.mark.parametrize("key", ["plain", "twocol", "page"])
def test_every_paragraph_box_within_2pt_of_where_it_was_drawn(built, key):
    gt, trees, _ = built
    tree = trees[key]
    by_text = {norm(p.text): p for p in nodes(tree, "paragraph")}
    for want in gt[key]["paragraphs"]:
        got = by_text.get(norm(want["text"]))
        assert got is not None, f"paragraph not found intact: {want['text'][:60]!r}"
        assert got.page == want["page"]
        assert close(got.bbox, want["bbox"], 2.0), (got.bbox, want["bbox"], want["text"][:40])


def test_known_paragraph(built):
    gt, trees, _ = built
    known = gt["plain"]["known"]
    hits = [p for p in nodes(trees["plain"], "paragraph") if samples.KNOWN_FACT in p.text]
    assert len(hits) == 1
    p = hits[0]
    assert norm(p.text) == norm(known["text"])
    assert p.page == known["page"]
    assert close(p.bbox, known["bbox"], 2.0)
    x0, top, x1, bottom = p.bbox
    assert x0 < x1 and top < bottom  # top-left origin: top is above bottom


@pytest.mark.parametrize("key", ["plain", "outline", "twocol", "page"])
def test_char_spans_slice_tree_text(built, key):
    _, trees, _ = built
    tree = trees[key]
    assert tree.root.char_start == 0 and tree.root.char_end == len(tree.text)
    for n in tree.root.walk():
        if n.kind in ("paragraph", "table"):
            assert n.page is not None and n.bbox is not None
            assert tree.text[n.char_start : n.char_end] == n.text
            assert n.text.strip()
        if n.kind == "section":
            assert n.char_start <= n.char_end
            if n.bbox is not None:
                assert tree.text[n.char_start :].startswith(n.title)
            for c in n.walk():
                if c is not n and c.char_start is not None:
                    assert n.char_start <= c.char_start <= c.char_end <= n.char_end


@pytest.mark.parametrize("key", ["plain", "twocol"])
def test_reading_order_follows_drawing_order(built, key):
    gt, trees, _ = built
    text = trees[key].text
    pos = [text.find(norm(p["text"])) for p in gt[key]["paragraphs"]]
    assert -1 not in pos
    assert pos == sorted(pos)


def test_two_column_page_reading_order(built):
    gt, trees, _ = built
    got = [norm(p.text) for p in nodes(trees["page"], "paragraph")]
    assert got == [norm(t) for t in gt["page"]["order"]]


@pytest.mark.parametrize("key", ["plain", "twocol"])
def test_table_node_with_caption(built, key):
    gt, trees, _ = built
    want = gt[key]["table"]
    tables = nodes(trees[key], "table")
    assert len(tables) == 1
    t = tables[0]
    assert t.title == norm(want["caption"])
    assert t.page == want["page"]
    assert t.meta["rows"] == len(want["rows"]) and t.meta["cols"] == len(want["rows"][0])
    for row in want["rows"]:
        assert " | ".join(row) in t.text
    # the caption box and the ruled table area both lie inside the node's box
    cb = want["caption_bbox"]
    assert t.bbox[0] <= cb[0] + 2 and t.bbox[1] <= cb[1] + 2
    assert t.bbox[3] <= want["bbox"][3] + 2
    parent = next(s for s in nodes(trees[key], "section") if t in s.children)
    assert parent.title == want["section"]


def test_figure_node_with_caption(built):
    gt, trees, _ = built
    want = gt["plain"]["figure"]
    figs = nodes(trees["plain"], "figure")
    assert len(figs) == 1
    f = figs[0]
    assert f.title == norm(want["caption"]) and f.page == want["page"]
    assert close(f.bbox, want["bbox"], 1.0)


def test_running_heads_and_page_numbers_left_out(built):
    gt, trees, _ = built
    text = trees["plain"].text
    assert gt["plain"]["running_head"] not in text
    assert not re.search(r"\bPage \d+\b", text)


def test_progress_reports_every_page(built):
    gt, _, _ = built
    calls = []
    read_pdf(gt["plain"]["path"], progress=lambda done, total: calls.append((done, total)))
    n = gt["plain"]["pages"]
    assert calls == [(i, n) for i in range(1, n + 1)]


def test_fast_spans_match_per_char_reference(built):
    gt, _, _ = built
    pdf = px.open_pdf(gt["twocol"]["path"])
    try:
        for i in range(len(pdf)):
            fast = px.page_data(pdf, i).spans
            ref = px.page_spans_reference(pdf, i)
            assert len(fast) == len(ref) > 0
            for a, b in zip(fast, ref):
                assert norm(a.text) == norm(b.text)
                assert close((a.x0, a.top, a.x1, a.bottom), (b.x0, b.top, b.x1, b.bottom), 0.5)
    finally:
        pdf.close()


def test_rendered_ink_matches_paragraph_box(built):
    """The box of a paragraph, scaled onto the rendered page, frames the drawn ink."""
    gt, trees, _ = built
    p = next(p for p in nodes(trees["plain"], "paragraph") if samples.KNOWN_FACT in p.text)
    scale = 2.0
    img = np.asarray(render_page(gt["plain"]["path"], p.page, scale=scale).convert("L"))
    x0, top, x1, bottom = p.bbox
    m = 5  # look a little beyond the box; paragraphs are further apart than that
    crop = img[int((top - m) * scale) : int((bottom + m) * scale), int((x0 - m) * scale) : int((x1 + m) * scale)]
    ys, xs = np.nonzero(crop < 128)
    ink = ((xs.min() / scale) + x0 - m, (ys.min() / scale) + top - m, (xs.max() / scale) + x0 - m, (ys.max() / scale) + top - m)
    assert close(ink, p.bbox, 1.5), (ink, p.bbox)


def test_render_box_draws_the_box(built, tmp_path):
    gt, trees, _ = built
    p = next(p for p in nodes(trees["plain"], "paragraph") if samples.KNOWN_FACT in p.text)
    out = render_box(gt["plain"]["path"], p.page, p.bbox, tmp_path / "box.png", scale=2.0)
    from PIL import Image

    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    w_pt, h_pt = trees["plain"].root.meta["page_sizes"][0]
    assert img.shape[1] == pytest.approx(w_pt * 2, abs=1) and img.shape[0] == pytest.approx(h_pt * 2, abs=1)
    red = (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] < 60)
    ys, xs = np.nonzero(red)
    x0, top, x1, bottom = p.bbox
    assert abs(xs.min() / 2 - (x0 - 2)) < 2 and abs(xs.max() / 2 - (x1 + 2)) < 2
    assert abs(ys.min() / 2 - (top - 2)) < 2 and abs(ys.max() / 2 - (bottom + 2)) < 2
    with pytest.raises(ReaderError, match="no page 99"):
        render_box(gt["plain"]["path"], 99, p.bbox, tmp_path / "x.png")


def test_rotated_landscape_page(tmp_path):
    """A page with /Rotate 90 whose text is drawn turned, so it reads upright on screen."""
    from reportlab.pdfgen import canvas

    path = tmp_path / "landscape.pdf"
    c = canvas.Canvas(str(path), pagesize=samples.A4, invariant=1)
    c.saveState()
    # user space rotated +90 degrees: after the viewer turns the page 90 degrees clockwise
    # this text runs left to right
    c.translate(samples.A4[0], 0)
    c.rotate(90)
    c.setFont("Helvetica", 12)
    c.drawString(72, 100, "Landscape line one about tidal turbines.")
    c.drawString(72, 130, "Another line placed higher in user space.")
    c.restoreState()
    c.save()
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    doc[0].set_rotation(90)
    doc.save(str(tmp_path / "rot.pdf"))
    doc.close()
    tree = read_pdf(tmp_path / "rot.pdf")
    paras = nodes(tree, "paragraph")
    assert paras and "Landscape line one" in tree.text
    w, h = tree.root.meta["page_sizes"][0]
    assert w > h  # displayed as landscape
    img = np.asarray(render_page(tmp_path / "rot.pdf", 1, scale=2.0).convert("L"))
    assert img.shape[1] > img.shape[0]
    for p in paras:
        x0, top, x1, bottom = (int(v * 2) for v in p.bbox)
        assert (img[top:bottom, x0:x1] < 128).any()  # ink inside the box on the rendered page
    # "Another line" was drawn higher in rotated user space: nearer the top of the landscape view
    ys = {p.text.split()[0]: p.bbox[1] for p in paras}
    assert ys["Another"] < ys["Landscape"]


# ----------------------------------------------------------------------------- bad files


def test_bad_files_raise_one_line_reader_errors(tmp_path, built):
    gt, _, _ = built
    data = Path(gt["plain"]["path"]).read_bytes()
    cases = {
        "empty.pdf": (b"", "empty"),
        "truncated.pdf": (data[: len(data) // 3], "corrupt"),
        "garbage.pdf": (b"%PDF-1.7\n" + bytes(range(256)) * 8, "corrupt"),
        "notes.pdf": (b"just some notes, not a pdf\n" * 20, "not a PDF"),
    }
    for name, (blob, reason) in cases.items():
        (tmp_path / name).write_bytes(blob)
    samples.make_encrypted_pdf(tmp_path / "locked.pdf")
    cases["locked.pdf"] = (b"", "password")
    cases["missing.pdf"] = (b"", "not found")
    for name, (_, reason) in cases.items():
        with pytest.raises(ReaderError) as ei:
            read_pdf(tmp_path / name)
        msg = str(ei.value)
        assert name in msg and reason in msg and "\n" not in msg, msg


def test_encrypted_pdf_opens_with_password(tmp_path):
    p = samples.make_encrypted_pdf(tmp_path / "locked.pdf", password="pw123")
    pdf = px.open_pdf(p, password="pw123")
    try:
        assert "Kessel array tender" in px.page_data(pdf, 0).spans[0].text
    finally:
        pdf.close()


def test_unknown_ocr_mode_rejected(built):
    gt, _, _ = built
    with pytest.raises(ValueError):
        read_pdf(gt["plain"]["path"], ocr="sometimes")


# ----------------------------------------------------------------------------- layout units


def _span(text, x0, top, size=10.0, bold=False):
    from reportlab.pdfbase.pdfmetrics import stringWidth

    w = stringWidth(text, "Helvetica", size)
    return Span(text, x0, top, x0 + w, top + size, top + 0.8 * size, size, bold)


def test_table_from_aligned_cells_but_not_from_prose_columns():
    rows = [["Site", "Depth", "Flow"], ["North", "31", "2.7"], ["South", "18", "1.9"], ["East", "22", "2.2"]]
    spans = [_span(c, 72 + 120 * j, 100 + 14 * i) for i, r in enumerate(rows) for j, c in enumerate(r)]
    tables, rest = find_tables(build_lines(spans), page=1)
    assert len(tables) == 1 and not rest
    assert tables[0].rows == rows
    prose = "the survey team recorded flow velocities near the channel mouth at slack water"
    spans = [_span(prose[: 48 - k], 72, 100 + 13 * k) for k in range(6)]
    spans += [_span(prose[k : k + 48], 320, 100 + 13 * k) for k in range(6)]
    tables, rest = find_tables(build_lines(spans), page=1)
    assert tables == [] and len(rest) == 12


def test_reading_order_columns_and_spanning_line():
    lines = build_lines(
        [_span("A full width heading line that runs across both of the columns here", 72, 60)]
        + [_span(f"left {k} words words words", 72, 100 + 13 * k) for k in range(5)]
        + [_span(f"right {k} words words words", 320, 100 + 13 * k) for k in range(5)]
    )
    order = [it.obj.text for it in reading_order([Item(ln, ln.bbox) for ln in lines])]
    assert order[0].startswith("A full width")
    assert order[1:6] == [f"left {k} words words words" for k in range(5)]
    assert order[6:] == [f"right {k} words words words" for k in range(5)]
    assert all(isinstance(ln, Line) for ln in lines)


def test_bookmark_without_heading_text_opens_a_section_at_its_page(tmp_path):
    from reportlab.pdfgen import canvas

    path = tmp_path / "bm.pdf"
    c = canvas.Canvas(str(path), pagesize=samples.A4, invariant=1)
    H = samples.A4[1]
    c.setFont("Helvetica-Bold", 14)
    c.drawString(72, H - 90, "1 Overview")
    c.bookmarkHorizontalAbsolute("a", H - 80)
    c.addOutlineEntry("1 Overview", "a", level=0)
    c.setFont("Helvetica", 10)
    c.drawString(72, H - 120, "First page body text about the pilot and its turbines.")
    c.showPage()
    c.setFont("Helvetica", 10)
    c.drawString(72, H - 100, "Second page text that only the bookmark announces.")
    c.bookmarkHorizontalAbsolute("b", H - 90)
    c.addOutlineEntry("Annex: raw data", "b", level=0)
    c.showOutline()
    c.save()
    tree = read_pdf(path)
    secs = nodes(tree, "section")
    assert [s.title for s in secs] == ["1 Overview", "Annex: raw data"]
    assert secs[0].bbox is not None and secs[1].bbox is None and secs[1].page == 2
    assert [p.text for p in secs[1].children] == ["Second page text that only the bookmark announces."]
    assert tree.text[secs[1].char_start : secs[1].char_end] == secs[1].children[0].text


def test_demo_corpus_is_deterministic_and_holds_its_facts(tmp_path):
    a = samples.make_demo_corpus(tmp_path / "a")
    b = samples.make_demo_corpus(tmp_path / "b")
    assert [p.name for p in a] == [p.name for p in b]
    assert {p.suffix for p in a} >= {".pdf", ".md", ".txt", ".html"}
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    by_name = {p.name: p for p in a}
    for fact in samples.DEMO_FACTS:
        src = by_name[fact["source"]]
        if src.name.endswith("scan.pdf"):
            continue  # image only: covered by the OCR tests
        text = read_pdf(src, ocr="off").text if src.suffix == ".pdf" else src.read_text()
        assert fact["answer"].lower() in norm(text).lower(), fact
