"""Text inside raster figures of pages with a text layer (readers/pdf_figures.py), and the boxed
render it reads from (pdf_extract.render_page(box=...)) against a crop of the whole page."""

from __future__ import annotations

import numpy as np
import pytest

from sleuth import samples
from sleuth.readers import pdf_extract as px
from sleuth.readers.pdf import read_pdf

LABELS = ["Zebra crossings", "Cycle lanes", "Tram stops"]


def _chart(w: int, h: int):
    """A bar chart whose labels exist only as pixels."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(samples.find_ttf(), 28)
    for k, (label, v) in enumerate(zip(LABELS, (0.8, 0.55, 0.3))):
        y = 30 + k * 70
        d.text((20, y), label, fill="black", font=font)
        d.rectangle([300, y + 4, 300 + int(v * (w - 340)), y + 34], fill=(40, 90, 200))
    return img


def _pdf(path, rotate: int = 0) -> dict:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    W, H = A4
    c.setFont("Helvetica", 11)
    c.drawString(72, H - 72, "Street safety audit of the old town, spring survey.")
    x, top, w, h = 72.0, 120.0, 400.0, 240.0
    c.drawImage(ImageReader(_chart(800, 480)), x, H - top - h, w, h)
    # a label the text layer holds, drawn over the image: read once, from the text layer
    c.setFont("Helvetica", 10)
    c.drawString(x + 250, H - top - h + 12, "Source: municipal counts")
    c.drawString(72, H - top - h - 20, "Figure 1. Facilities per district.")
    if rotate:
        c.setPageRotation(rotate)
    c.showPage()
    c.save()
    return {"box": (x, top, x + w, top + h)}


def _figures(tree):
    out = []

    def walk(n):
        if n.kind == "figure":
            out.append(n)
        for c in n.children:
            walk(c)

    walk(tree.root)
    return out


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def test_chart_labels_in_an_image_become_the_figure_text(tmp_path):
    f = tmp_path / "audit.pdf"
    _pdf(f)
    figs = _figures(read_pdf(f, ocr="figures"))
    assert len(figs) == 1
    fig = figs[0]
    text = _norm(fig.text)
    for label in LABELS:
        assert _norm(label) in text, fig.text
    assert fig.meta["figure_ocr"] >= 3
    assert fig.title.startswith("Figure 1.")  # the caption stays the title and leads the text
    assert text.startswith("figure 1.")
    # the text layer's label is read once, from the text layer, not again from the pixels
    assert "municipal" not in text
    # by default, or with OCR off: the figure is its caption only
    for kw in ({}, {"ocr": "off"}):
        (fig_off,) = _figures(read_pdf(f, **kw))
        assert "zebra" not in _norm(fig_off.text)


def test_a_question_about_the_chart_finds_the_figure(tmp_path):
    from sleuth.library import Library

    docs = tmp_path / "docs"
    docs.mkdir()
    _pdf(docs / "audit.pdf")
    with Library(tmp_path / "lib") as lib:
        lib.add([docs], ocr="figures")
        hits = lib.search("How many tram stops are there?", level="fine", k=3)
        assert hits and hits[0]["kind"] == "figure" and "tram" in hits[0]["snippet"].lower()


@pytest.mark.parametrize("rotate", [0, 90])
def test_boxed_render_equals_a_crop_of_the_page(tmp_path, rotate):
    f = tmp_path / "audit.pdf"
    _pdf(f, rotate)
    pdf = px.open_pdf(f)
    try:
        pd = px.page_data(pdf, 0)
        box = (0.1 * pd.width, 0.1 * pd.height, 0.8 * pd.width, 0.6 * pd.height)  # displayed-page points
        scale = 2.0
        part = np.asarray(px.render_page(pdf, 0, scale=scale, box=box), np.int16)
        whole = px.render_page(pdf, 0, scale=scale)
        assert whole.size == (round(pd.width * scale), round(pd.height * scale))
        ref = np.asarray(whole.crop(tuple(round(v * scale) for v in box)), np.int16)
        h, w = min(part.shape[0], ref.shape[0]), min(part.shape[1], ref.shape[1])
        assert abs(part.shape[0] - ref.shape[0]) <= 2 and abs(part.shape[1] - ref.shape[1]) <= 2
        assert part[:h, :w].std() > 5  # something is drawn there
        # anti-aliasing at the cut may differ by a pixel row; the pictures agree
        assert np.abs(part[:h, :w] - ref[:h, :w]).mean() < 4
    finally:
        pdf.close()
