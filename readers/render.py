"""Render a PDF page with a located box drawn on it (``sleuth show NODE --png``).

Boxes are ``(x0, top, x1, bottom)`` in points of the displayed page with the origin top-left,
as the PDF reader produces them, so a box maps onto the bitmap by multiplying with ``scale``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..core import ReaderError
from . import pdf_extract as px

BBox = tuple[float, float, float, float]

# A render costs ~13-20 bytes a pixel at its peak (PDFium's BGRA bitmap, the RGB copy, the OCR's
# array copies and line crops): at 36 MP indexing a 14,400 pt page peaked at 994 MB, at 25 MP
# it stays well under 1 GB (benchmarks/bench_memory.py). A US Letter page at the OCR's finest
# 4 px/pt is 7.8 MP and an A0 poster at 1.25 px/pt 12.5 MP; a 14,400 pt page (the PDF maximum)
# at 1.25 px/pt would be 324 MP and 4.5 GB.
MAX_PIXELS = 25_000_000


def max_scale(width_pt: float, height_pt: float, max_pixels: int | None = None) -> float:
    """The largest scale (pixels per point) at which a page of this size stays within
    ``max_pixels``. Every page render (OCR, ``show --png``) takes the smaller of this and the
    scale it wants, so a huge page is read coarser instead of exhausting memory."""
    area = max(float(width_pt), 1.0) * max(float(height_pt), 1.0)
    return ((max_pixels or MAX_PIXELS) / area) ** 0.5


def render_page(pdf_path: str | Path, page: int, scale: float = 2.0):
    """Page ``page`` (1-based) as a PIL RGB image, ``scale`` pixels per point or fewer
    (:func:`max_scale`)."""
    return _render(pdf_path, page, scale)[0]


def _render(pdf_path: str | Path, page: int, scale: float):
    """(image, the scale used)."""
    pdf = px.open_pdf(pdf_path)
    try:
        with px.PDFIUM_LOCK:
            n = len(pdf)
        if not 1 <= page <= n:
            raise ReaderError(f"{Path(pdf_path).name}: no page {page} (document has {n})")
        with px.PDFIUM_LOCK:
            w, h = pdf.get_page_size(page - 1)
        used = min(scale, max_scale(w, h))
        return px.render_page(pdf, page - 1, scale=used), used
    finally:
        with px.PDFIUM_LOCK:
            pdf.close()


def render_box(
    pdf_path: str | Path,
    page: int,
    bbox: BBox | Iterable[BBox] | None,
    out_png: str | Path,
    scale: float = 2.0,
    color: str = "red",
    width: int = 3,
    pad: float = 2.0,
) -> Path:
    """Write ``out_png``: page ``page`` (1-based) with ``bbox`` (or several boxes) outlined.

    ``pad`` points of margin keep the outline from covering the first and last glyphs.
    """
    from PIL import ImageDraw

    img, scale = _render(pdf_path, page, scale)
    boxes: list[BBox] = []
    if bbox is not None:
        seq = list(bbox)  # type: ignore[arg-type]
        if seq and isinstance(seq[0], (int, float)):
            boxes = [tuple(seq)]  # type: ignore[list-item]
        else:
            boxes = [tuple(b) for b in seq]  # type: ignore[misc]
    draw = ImageDraw.Draw(img)
    for x0, top, x1, bottom in boxes:
        draw.rectangle(
            [(x0 - pad) * scale, (top - pad) * scale, (x1 + pad) * scale, (bottom + pad) * scale],
            outline=color,
            width=width,
        )
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, format="PNG")
    return out
