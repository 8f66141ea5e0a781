"""A PDF of some pages of a real one, for tests that read a few real pages quickly."""

from __future__ import annotations

from pathlib import Path


def pdf_pages(src: Path, pages: list[int], out: Path) -> Path:
    """A PDF of some pages (1-based) of ``src``: the real page objects, fonts and all."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(src))
    new = pdfium.PdfDocument.new()
    new.import_pages(doc, [p - 1 for p in pages])
    new.save(str(out))
    new.close()
    doc.close()
    return out
