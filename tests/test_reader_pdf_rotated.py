"""Text set at an angle: pages drawn turned (a landscape table on a portrait page) and labels at
angles beside upright text (map street names, vertical axis titles), on generated PDFs."""

from __future__ import annotations

import ctypes
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("reportlab")

from sleuth.readers import pdf_extract as px
from sleuth.readers.pdf import read_pdf
from sleuth.readers.render import render_page

PARAS = [
    "Quarterly revenue rose to four hundred million dollars on stronger subscription sales",
    "Operating margin narrowed because the company opened three new distribution centres",
    "Headcount at the end of the period was twelve thousand and forty employees worldwide",
]
BODY = "The harbour district has ferry terminals, seafood restaurants and a maritime museum"


def norm(s: str) -> str:
    return " ".join(s.split())


def paragraphs(tree) -> list:
    return [n for n in tree.root.walk() if n.kind == "paragraph"]


def make_turned_page(path: Path, angle: int) -> Path:
    """A portrait page whose whole content is drawn turned by ``angle`` degrees (reportlab's
    counter-clockwise), as landscape pages inside portrait documents are."""
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=(612, 792), invariant=1)
    c.translate(306, 396)
    c.rotate(angle)
    c.translate(-380, -250)
    c.setFont("Helvetica", 11)
    y = 440
    for p in PARAS:
        words = p.split()
        for line in (" ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2 :])):
            c.drawString(20, y, line)
            y -= 14
        y -= 14
    c.save()
    return path


def make_labelled_page(path: Path) -> Path:
    """Upright body text with a vertical label and a letter-spaced label at 30 degrees drawn one
    glyph per text object (as map street names are)."""
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=(612, 792), invariant=1)
    c.setFont("Helvetica", 11)
    y = 700
    for _ in range(4):
        c.drawString(72, y, BODY)
        y -= 14
    c.saveState()
    c.translate(40, 300)
    c.rotate(90)
    c.setFont("Helvetica", 10)
    c.drawString(0, 0, "Annual rainfall in millimetres")
    c.restoreState()
    c.saveState()
    c.translate(250, 250)
    c.rotate(30)
    c.setFont("Helvetica", 9)
    x = 0.0
    for word in ("Embarcadero", "Promenade"):
        for ch in word:
            t = c.beginText(x, 0)
            t.textOut(ch)
            c.drawText(t)
            x += c.stringWidth(ch, "Helvetica", 9) + 1.5  # tracking
        x += c.stringWidth(" ", "Helvetica", 9) + 1.5
    c.restoreState()
    # a short street name, glyph by glyph with tracking: too few glyphs for a long line's statistics
    c.saveState()
    c.translate(450, 350)
    c.rotate(80)
    _tracked(c, "Bush St", 9, 1.2)
    c.restoreState()
    c.save()
    return path


def _tracked(c, text: str, size: float, tracking: float) -> None:
    c.setFont("Helvetica", size)
    x = 0.0
    for ch in text:
        if ch != " ":
            t = c.beginText(x, 0)
            t.textOut(ch)
            c.drawText(t)
        x += c.stringWidth(ch, "Helvetica", size) + tracking


@pytest.mark.parametrize("angle", [90, -90, 180])
def test_turned_page_reads_as_upright_paragraphs(tmp_path, angle):
    tree = read_pdf(make_turned_page(tmp_path / "turned.pdf", angle), ocr="off")
    texts = [norm(p.text) for p in paragraphs(tree)]
    assert texts == PARAS, texts
    assert not tree.warnings


@pytest.mark.parametrize("angle", [90, -90])
def test_turned_page_boxes_frame_the_ink_on_the_displayed_page(tmp_path, angle):
    path = make_turned_page(tmp_path / "turned.pdf", angle)
    tree = read_pdf(path, ocr="off")
    scale = 2.0
    img = np.asarray(render_page(path, 1, scale=scale).convert("L"))
    ys, xs = np.nonzero(img < 128)
    ink = (xs.min() / scale, ys.min() / scale, xs.max() / scale, ys.max() / scale)
    boxes = [p.bbox for p in paragraphs(tree)]
    union = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    # the text runs vertically on the displayed page: taller than wide, and around the ink
    assert union[3] - union[1] > union[2] - union[0]
    assert all(abs(u - i) < 4.0 for u, i in zip(union, ink)), (union, ink)
    for b in boxes:  # each paragraph's box holds ink of its own
        x0, t, x1, btm = (int(v * scale) for v in b)
        assert (img[t:btm, x0:x1] < 128).sum() > 50


def test_labels_at_angles_are_read_apart_from_the_body(tmp_path):
    tree = read_pdf(make_labelled_page(tmp_path / "labels.pdf"), ocr="off")
    paras = paragraphs(tree)
    body = [p for p in paras if BODY.split()[0] in p.text]
    assert len(body) == 1 and norm(body[0].text) == " ".join([BODY] * 4)
    assert "text_angle" not in body[0].meta
    labels = {norm(p.text): p.meta.get("text_angle") for p in paras if p is not body[0]}
    assert labels == {"Annual rainfall in millimetres": -90, "Embarcadero Promenade": -30, "Bush St": -80}, labels
    assert not tree.warnings


def test_label_box_holds_its_ink(tmp_path):
    path = make_labelled_page(tmp_path / "labels.pdf")
    tree = read_pdf(path, ocr="off")
    label = next(p for p in paragraphs(tree) if p.text.startswith("Embarcadero"))
    x0, top, x1, bottom = label.bbox
    # a label at 30 degrees: the displayed box around it is wider than tall (cos 30 > sin 30)
    assert x1 - x0 > 1.4 * (bottom - top) > 0
    scale = 2.0
    img = np.asarray(render_page(path, 1, scale=scale).convert("L"))
    crop = img[int(top * scale) : int(bottom * scale) + 1, int(x0 * scale) : int(x1 * scale) + 1]
    assert (crop < 128).sum() > 100
    # nothing of the label lies outside its box: no dark pixels in a band just outside
    band = img[int((bottom + 2) * scale) : int((bottom + 6) * scale), int(x0 * scale) : int(x1 * scale)]
    assert (band < 128).sum() == 0


def test_labels_never_become_headings(tmp_path):
    tree = read_pdf(make_labelled_page(tmp_path / "labels.pdf"), ocr="off")
    assert not [n for n in tree.root.walk() if n.kind == "section"]


def test_span_angle_matches_pdfiums_per_character_angle(tmp_path):
    """The angle the fast path takes from each object's matrix equals the one PDFium's text page
    gives each of its characters (the plain reference), for every angle on the page."""
    pdf = px.open_pdf(make_labelled_page(tmp_path / "labels.pdf"))
    try:
        pd = px.page_data(pdf, 0)
        want = {g.frame.angle for g in pd.groups}
        page = pdf[0]
        tp = page.get_textpage()
        seen = set()
        for i in range(tp.count_chars()):
            ch = chr(pc_unicode(tp, i))
            if ch.isspace():
                continue
            a = pc_angle(tp, i)  # radians in [0, 2 pi), clockwise as displayed
            seen.add(_display_degrees(a))
        tp.close()
        page.close()
        assert want | {0} == seen, (want, seen)
    finally:
        pdf.close()


def pc_unicode(tp, i: int) -> int:
    return px.pc.FPDFText_GetUnicode(tp.raw, i)


def pc_angle(tp, i: int) -> float:
    return px.pc.FPDFText_GetCharAngle(tp.raw, i)


def _display_degrees(a: float) -> int:
    d = round(math.degrees(a))
    while d <= -180:
        d += 360
    while d > 180:
        d -= 360
    return d


@pytest.mark.parametrize("angle", [0, 90, -90, 180, 30, -135])
def test_frame_round_trip(angle):
    w, h = 612.0, 792.0
    fr = px.make_frame(angle, w, h)
    # the turned page fits its frame exactly
    x0, y0, x1, y1 = px.transform_box(fr.to_frame, 0, 0, w, h)
    assert abs(x0) < 1e-6 and abs(y0) < 1e-6 and abs(x1 - fr.width) < 1e-6 and abs(y1 - fr.height) < 1e-6
    # text running at ``angle`` runs along +x in the frame
    t = math.radians(angle)
    a, b, *_ = fr.to_frame
    dx = math.cos(t) * fr.to_frame[0] + math.sin(t) * fr.to_frame[2]
    dy = math.cos(t) * fr.to_frame[1] + math.sin(t) * fr.to_frame[3]
    assert abs(dx - 1) < 1e-9 and abs(dy) < 1e-9
    box = (100.0, 200.0, 150.0, 210.0)
    back = fr.box_to_display(fr.box_to_frame(box))
    assert back[0] <= box[0] + 1e-6 and back[1] <= box[1] + 1e-6 and back[2] >= box[2] - 1e-6 and back[3] >= box[3] - 1e-6
    if angle % 90 == 0:
        assert all(abs(p - q) < 1e-6 for p, q in zip(back, box))


def make_body_page_with(path: Path, lines: int, x: float, y: float, matrix: tuple, text: str) -> Path:
    """``lines`` upright lines of BODY, then ``text`` drawn at (x, y) through ``matrix``."""
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=(612, 792), invariant=1)
    c.setFont("Helvetica", 11)
    for k in range(lines):
        c.drawString(72, 700 - 14 * k, BODY)
    c.saveState()
    c.translate(x, y)
    c.transform(*matrix)
    c.drawString(0, 0, text)
    c.restoreState()
    c.save()
    return path


def test_mirrored_text_is_skipped_with_a_warning(tmp_path):
    path = make_body_page_with(tmp_path / "mirror.pdf", 5, 400, 300, (-1, 0, 0, 1, 0, 0), "mirrored words here")
    tree = read_pdf(path, ocr="off")
    assert "mirrored" not in tree.text
    assert any("mirrored or skewed" in w for w in tree.warnings)
    assert BODY in norm(tree.text)


def test_demote_frame_hands_ocr_a_page_in_display_coordinates(tmp_path):
    """Before OCR replaces or joins a page's text, a turned page's spans become a group and its
    image boxes go back to displayed-page coordinates (where OCR boxes are)."""
    pdf = px.open_pdf(make_turned_page(tmp_path / "turned.pdf", 90))
    try:
        pd = px.page_data(pdf, 0)
    finally:
        pdf.close()
    assert pd.frame is not None and pd.frame.angle == -90 and pd.layout_size == (792.0, 612.0)
    spans = list(pd.spans)
    pd.images = [pd.frame.box_to_frame((10.0, 20.0, 110.0, 220.0))]
    pd.demote_frame()
    assert pd.frame is None and pd.spans == [] and pd.layout_size == (612.0, 792.0)
    assert pd.groups[0].spans == spans and pd.groups[0].frame.angle == -90
    assert all(abs(a - b) < 1e-6 for a, b in zip(pd.images[0], (10.0, 20.0, 110.0, 220.0)))


def test_running_header_is_dropped_on_a_turned_page_too(tmp_path):
    """A report whose third page is drawn turned (a landscape page) under the same upright header
    and footer as the others: the header is a running head there too, the turned text is read."""
    from reportlab.pdfgen import canvas

    path = tmp_path / "report.pdf"
    c = canvas.Canvas(str(path), pagesize=(612, 792), invariant=1)
    for page in range(1, 6):
        c.setFont("Helvetica", 9)
        c.drawString(72, 760, "Contoso Holdings Annual Report 2024")
        c.drawString(300, 30, f"Page {page}")
        if page == 3:
            c.saveState()
            c.translate(306, 396)
            c.rotate(90)
            c.setFont("Helvetica", 11)
            for k, p in enumerate(PARAS):
                c.drawString(-300, 120 - 40 * k, p)
            c.restoreState()
        else:
            c.setFont("Helvetica", 11)
            for k in range(6):
                c.drawString(72, 700 - 14 * k, BODY)
        c.showPage()
    c.save()
    tree = read_pdf(path, ocr="off")
    assert "Contoso" not in tree.text and "Page 3" not in tree.text
    on3 = [norm(p.text) for p in paragraphs(tree) if p.page == 3]
    assert on3 == PARAS, on3


def test_synthetic_italic_is_read(tmp_path):
    """Text slanted by its matrix (a synthetic italic: the vertical axis leans ~17 degrees) is
    read on its baseline, not skipped as skewed."""
    path = make_body_page_with(tmp_path / "slanted.pdf", 3, 72, 640, (1, 0, 0.3, 1, 0, 0), "slanted words stay in the text")
    tree = read_pdf(path, ocr="off")
    assert "slanted words stay in the text" in norm(tree.text)
    assert not tree.warnings


def test_tightly_set_map_labels_keep_their_word_spaces(tmp_path):
    """Map lettering set tight enough that the glyphs' boxes overlap ("UtahSt" on a real city
    map): the word gap is measured against that overlap, so the space between words stays."""
    from reportlab.pdfgen import canvas

    path = tmp_path / "tight.pdf"
    c = canvas.Canvas(str(path), pagesize=(612, 792), invariant=1)
    c.setFont("Helvetica", 11)
    c.drawString(72, 700, BODY)
    names = ["Utah St", "Hampshire St", "Bryant St", "Mission St"]
    for k, name in enumerate(names):
        c.saveState()
        c.translate(120 + 90 * k, 200)
        c.rotate(90)
        _tracked(c, name, 6, -0.8)
        c.restoreState()
    c.save()
    tree = read_pdf(path, ocr="off")
    labels = sorted(norm(p.text) for p in paragraphs(tree) if p.meta.get("text_angle"))
    assert labels == sorted(names), labels


def test_fill_pattern_glyphs_do_not_break_up_labels(tmp_path):
    """A map's park drawn as a lattice of "0" glyphs in a font used for nothing else, over a
    label on the same baselines: the lattice is no text and the label reads whole."""
    from reportlab.pdfgen import canvas

    path = tmp_path / "fill.pdf"
    c = canvas.Canvas(str(path), pagesize=(612, 792), invariant=1)
    c.setFont("Helvetica", 11)
    c.drawString(72, 700, BODY)
    c.setFont("Courier", 7)
    for row in range(12):
        for col in range(18):
            c.drawString(140 + 4.4 * col, 300 + 3 * row, "0")  # glyphs touching: a tiling
    c.saveState()
    c.translate(150, 309)
    _tracked(c, "Maritime Plaza", 7, 0.3)
    c.restoreState()
    c.save()
    tree = read_pdf(path, ocr="off")
    texts = [norm(p.text) for p in paragraphs(tree)]
    assert "Maritime Plaza" in " ".join(texts), texts
    assert not any("00" in t for t in texts), texts


def test_a_column_of_check_marks_is_kept(tmp_path):
    """Many glyphs of one kind in a font of their own are text when they stand apart: a feature
    table's check marks (ZapfDingbats) stay in its rows."""
    from reportlab.pdfgen import canvas

    path = tmp_path / "checks.pdf"
    c = canvas.Canvas(str(path), pagesize=(612, 792), invariant=1)
    for r in range(30):
        y = 740 - 22 * r
        c.setFont("Helvetica", 10)
        c.drawString(72, y, f"Feature number {r + 1}")
        c.setFont("ZapfDingbats", 10)
        c.drawString(300, y, "4")  # a check mark
        c.drawString(400, y, "4")
    c.save()
    tree = read_pdf(path, ocr="off")
    text = " ".join(norm(n.text) for n in tree.root.walk() if n.kind in ("paragraph", "table"))
    marks = [ch for ch in text if not ch.isalnum() and not ch.isspace() and ch != "|"]
    assert len(marks) == 60 and len(set(marks)) == 1, text[:300]
