"""OCR of image-only PDF pages and images (RapidOCR, PP-OCR ONNX models from the wheel)."""

from __future__ import annotations

import difflib
import importlib.util

import numpy as np
import pytest

pytest.importorskip("reportlab")
pytest.importorskip("rapidocr_onnxruntime")

from sleuth import samples
from sleuth.core import ReaderError
from sleuth.readers import ocr as ocr_mod
from sleuth.readers.pdf import read_pdf

LINES = [
    "The Kessel array will pause on 14 June 2031",
    "for a full blade inspection by the supplier.",
    "Vessels must keep 200 metres from the turbines",
    "while divers are in the water.",
]


def similar(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()


def inside(inner, outer, tol: float) -> bool:
    return (
        inner[0] >= outer[0] - tol
        and inner[1] >= outer[1] - tol
        and inner[2] <= outer[2] + tol
        and inner[3] <= outer[3] + tol
    )


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    d = tmp_path_factory.mktemp("scan")
    gt = samples.make_scanned_pdf(d / "memo.pdf", LINES)
    return gt, read_pdf(gt["path"])


def test_scanned_page_is_ocred_with_words_and_boxes(scanned):
    gt, tree = scanned
    assert tree.root.meta["ocr_pages"] == [1]
    paras = [n for n in tree.root.walk() if n.kind == "paragraph"]
    assert paras and all(p.meta.get("ocr") for p in paras)
    for want in gt["pages"][0]["lines"]:
        # the paragraph that holds this line: best fuzzy match of the line inside its text
        best = max(paras, key=lambda p: _best_window(want["text"], p.text))
        assert _best_window(want["text"], best.text) >= 0.85, (want["text"], best.text)
        # the drawn line lies inside the paragraph's box (OCR boxes are a little loose)
        assert inside(want["bbox"], best.bbox, 4.0), (want["bbox"], best.bbox)
    # boxes are not absurdly larger than the ink either
    all_ink = [ln["bbox"] for ln in gt["pages"][0]["lines"]]
    union = (min(b[0] for b in all_ink), min(b[1] for b in all_ink), max(b[2] for b in all_ink), max(b[3] for b in all_ink))
    for p in paras:
        assert inside(p.bbox, union, 8.0), (p.bbox, union)
        assert tree.text[p.char_start : p.char_end] == p.text


def _best_window(needle: str, hay: str) -> float:
    words = hay.split()
    n = len(needle.split())
    best = 0.0
    for i in range(max(1, len(words) - n + 1)):
        best = max(best, similar(needle, " ".join(words[i : i + n])))
    return best


def test_ocr_off_leaves_an_image_page_empty(scanned):
    gt, _ = scanned
    tree = read_pdf(gt["path"], ocr="off")
    assert tree.root.meta["ocr_pages"] == []
    assert not [n for n in tree.root.walk() if n.kind == "paragraph"]


def test_only_pages_without_text_layer_are_ocred(tmp_path):
    import pypdfium2 as pdfium

    rep = samples.make_report_pdf(tmp_path / "rep.pdf", outline=False)
    scan = samples.make_scanned_pdf(tmp_path / "scan.pdf", LINES[:2])
    merged = pdfium.PdfDocument(rep["path"])
    other = pdfium.PdfDocument(scan["path"])
    merged.import_pages(other)
    merged.save(str(tmp_path / "mixed.pdf"))
    n = len(merged)
    merged.close()
    other.close()
    tree = read_pdf(tmp_path / "mixed.pdf")
    assert tree.root.meta["ocr_pages"] == [n]
    last = [p for p in tree.root.walk() if p.kind == "paragraph" and p.page == n]
    assert last and any(_best_window(LINES[0], p.text) >= 0.85 for p in last)
    assert samples.KNOWN_FACT in tree.text  # the text pages still come from the text layer


def test_ocr_image_boxes_in_pixels():
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (900, 300), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(samples.find_ttf(), 36)
    d.text((40, 60), "Harbour office memo", fill="black", font=font)
    d.text((40, 180), "Second line 2031", fill="black", font=font)
    drawn = [d.textbbox((40, 60), "Harbour office memo", font=font), d.textbbox((40, 180), "Second line 2031", font=font)]
    boxes = ocr_mod.ocr_image(img)
    assert len(boxes) == 2
    ref = ocr_mod.ocr_image(img, mode="thorough")
    assert [similar(a.text, b.text) >= 0.95 for a, b in zip(boxes, ref)] == [True, True]
    for b, want, text in zip(boxes, drawn, ["Harbour office memo", "Second line 2031"]):
        assert similar(b.text, text) >= 0.85
        assert 0.5 <= b.score <= 1.0
        assert inside(want, (b.x0, b.top, b.x1, b.bottom), 8)
        assert inside((b.x0, b.top, b.x1, b.bottom), want, 20)


def test_engine_is_a_singleton():
    assert ocr_mod.get_engine("rapid") is ocr_mod.get_engine("rapid")
    assert ocr_mod.get_engine("rapid", "fast") is ocr_mod.get_engine("rapid", "fast")
    assert ocr_mod.get_engine("rapid", "fast") is not ocr_mod.get_engine("rapid", "thorough")
    with pytest.raises(ValueError):
        ocr_mod.get_engine("tesseract")
    with pytest.raises(ValueError, match="mode"):
        ocr_mod.ocr_image(np.zeros((40, 40, 3), np.uint8), mode="quick")
    with pytest.raises(ValueError, match="ocr must be one of"):
        read_pdf(samples.find_ttf(), ocr="quick")


# --- the fast settings against the stock (thorough) ones -----------------------------------


def _prose_lines(n: int, chars: int, seed: int) -> list[str]:
    import textwrap

    pr = samples.Prose(seed)
    return textwrap.wrap(" ".join(pr.sentence() for _ in range(n * chars // 60 + 2)), chars)[:n]


def _page_boxes(path, mode: str, rotation: int = 0):
    import pypdfium2 as pdfium

    from sleuth.readers import pdf_extract as px

    pdf = pdfium.PdfDocument(str(path))
    try:
        if rotation:
            pdf[0].set_rotation(rotation)
        pd = px.page_data(pdf, 0)
        return ocr_mod.ocr_page(lambda s: px.render_page(pdf, 0, scale=s), pd.width, pd.height, mode=mode)
    finally:
        pdf.close()


@pytest.fixture(scope="module")
def prose_page(tmp_path_factory):
    lines = _prose_lines(8, 60, seed=5)
    gt = samples.make_scanned_pdf(tmp_path_factory.mktemp("prose") / "prose.pdf", lines, font_pt=13.0)
    return gt


def _overlapping(boxes, bbox):
    """The OCR box that overlaps the drawn line's box most (None when none does)."""
    def ov(b):
        w = min(b.x1, bbox[2]) - max(b.x0, bbox[0])
        h = min(b.bottom, bbox[3]) - max(b.top, bbox[1])
        return max(0.0, w) * max(0.0, h)

    best = max(boxes, key=ov, default=None)
    return best if best is not None and ov(best) > 0 else None


def test_fast_ocr_reads_the_same_text_as_the_thorough_reference(prose_page):
    fast = _page_boxes(prose_page["path"], "fast")
    ref = _page_boxes(prose_page["path"], "thorough")
    truth = prose_page["pages"][0]["lines"]
    assert len(fast) == len(truth) and len(ref) >= len(truth) - 1
    for want in truth:
        f, r = _overlapping(fast, want["bbox"]), _overlapping(ref, want["bbox"])
        assert f is not None and inside(want["bbox"], (f.x0, f.top, f.x1, f.bottom), 4.0), (want, f)
        if r is None:
            continue
        # the same line (boxes agree) ...
        assert abs(f.top - r.top) <= 4 and abs(f.bottom - r.bottom) <= 4 and abs(f.x0 - r.x0) <= 4, (f, r)
        # ... read the same, up to OCR noise, wherever the reference reads it well
        if similar(r.text, want["text"]) >= 0.95:
            assert similar(f.text, r.text) >= 0.95, (f.text, r.text)
        # and never worse against what was drawn
        assert similar(f.text, want["text"]) >= similar(r.text, want["text"]) - 0.02, (f.text, r.text, want["text"])
    # the reference reads most of the page well, so the comparison above had teeth
    assert sum(similar(_overlapping(ref, w["bbox"]).text, w["text"]) >= 0.95 for w in truth if _overlapping(ref, w["bbox"])) >= len(truth) // 2


@pytest.mark.parametrize("rotation", [180, 90])
def test_turned_scans_are_read_without_the_classifier(prose_page, rotation):
    boxes = _page_boxes(prose_page["path"], "fast", rotation)
    for want in prose_page["pages"][0]["lines"]:
        best = max(boxes, key=lambda b: similar(b.text, want["text"]))
        assert similar(best.text, want["text"]) >= 0.9, (want["text"], [b.text for b in boxes])


def test_small_print_gets_a_finer_render(tmp_path):
    lines = _prose_lines(5, 90, seed=9)
    gt = samples.make_scanned_pdf(tmp_path / "small.pdf", lines, font_pt=8.0, dpi=300)
    boxes = _page_boxes(gt["path"], "fast")
    assert len(boxes) == len(lines)
    for b, want in zip(boxes, gt["pages"][0]["lines"]):
        assert similar(b.text, want["text"]) >= 0.9, (b.text, want["text"])
        assert inside(want["bbox"], (b.x0, b.top, b.x1, b.bottom), 3.0)
        # boxes hug the ink: a line box of 8 pt print is not taller than ~2 lines of it
        assert b.bottom - b.top <= 16.0


@pytest.mark.skipif(importlib.util.find_spec("paddleocr") is not None, reason="paddleocr is installed")
def test_paddle_backend_without_paddleocr_is_a_clear_error(scanned):
    with pytest.raises(ReaderError, match="paddleocr"):
        ocr_mod.get_engine("paddle")
    gt, _ = scanned
    with pytest.raises(ReaderError, match="paddleocr"):
        read_pdf(gt["path"], ocr="paddle")


def test_scanned_memo_heading_becomes_a_section(tmp_path):
    gt = samples.make_scanned_pdf(tmp_path / "memo.pdf", samples.documents._MEMO_LINES, heading_first=True)
    tree = read_pdf(gt["path"])
    secs = [n for n in tree.root.walk() if n.kind == "section"]
    assert len(secs) == 1 and similar(secs[0].title, samples.documents._MEMO_LINES[0]) >= 0.85
    assert "14 june 2031" in tree.text.lower()
    head_box = gt["pages"][0]["lines"][0]["bbox"]
    assert inside(head_box, secs[0].bbox, 4.0)
