"""Text inside the raster figures of pages that have a text layer.

A born-digital report often pastes its charts, diagrams and screenshots in as images: their
axis labels, legends, numbers and callouts are in no text layer, so a question that names them
("the IT priorities in 2006", "the Self-Refine box") cannot find the page. Each figure image
(the boxes :func:`.pdf_layout.figure_boxes` makes figures of) on a page that is not OCR'd whole is
read with OCR, only its box rendered, and its lines become the figure's text under its caption.
Lines the text layer already holds (labels drawn on top of an image: half the line's width
covered by text-layer spans on its row) are left out.
"""

from __future__ import annotations

from . import pdf_extract as px
from .pdf_layout import BBox, Span, figure_boxes

#: figures read per page, largest first: a page of forty thumbnails is a gallery, not a chart
MAX_PER_PAGE = 8


def figure_lines(pdf, pd: px.PageData, backend: str = "rapid", mode: str = "fast") -> dict[BBox, list[str]]:
    """Figure box → the text lines OCR reads in it (boxes with no new text left out). Pages laid
    out in a turned frame are skipped: their image boxes are not in displayed-page points."""
    from .ocr import ocr_page

    if pd.frame is not None and pd.frame.angle:
        return {}
    boxes = sorted(figure_boxes(pd.images, pd.width, pd.height), key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    out: dict[BBox, list[str]] = {}
    for box in boxes[:MAX_PER_PAGE]:
        x0, top = max(0.0, box[0]), max(0.0, box[1])
        x1, bottom = min(pd.width, box[2]), min(pd.height, box[3])
        if x1 - x0 < 1 or bottom - top < 1:
            continue
        found = ocr_page(lambda scale: px.render_page(pdf, pd.index, scale=scale, box=(x0, top, x1, bottom)),
                         x1 - x0, bottom - top, backend=backend, mode=mode)
        lines = []
        for b in found:
            line = (b.x0 + x0, b.top + top, b.x1 + x0, b.bottom + top)
            if b.text.strip() and _read_already(line, pd.spans) < 0.5:
                lines.append(b.text.strip())
        if lines:
            out[tuple(box)] = lines
    return out


def _read_already(line: BBox, spans: list[Span]) -> float:
    """The share of the OCR line's width that text-layer spans on the same row cover."""
    x0, top, x1, bottom = line
    covered = 0.0
    for t in spans:
        iy = min(t.bottom, bottom) - max(t.top, top)
        if iy > 0.3 * min(t.bottom - t.top, bottom - top):
            covered += max(0.0, min(t.x1, x1) - max(t.x0, x0))
    return covered / max(x1 - x0, 1e-6)
