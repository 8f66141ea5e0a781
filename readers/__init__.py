"""Readers: pure functions from one file to a :class:`sleuth.core.Tree`.

``read_path`` picks the reader from the file's content (magic bytes) first and its suffix
second, so a mislabelled file gets a clear error instead of garbage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..core import ReaderError, Tree

from .kinds import (ASR_ALIASES, ASR_MODES, HTML_SUFFIXES, MARKDOWN_SUFFIXES, PDF_SUFFIXES,  # noqa: F401  (public names)
                    TEXT_SUFFIXES, VIDEO_SUFFIXES, check_modes, kind_of, supported_suffixes, video_suffixes)


def check_size(path: Path, size: int) -> None:
    """ReaderError (one line) for a file its reader would refuse by its size alone, so that a
    10 GB log is turned away before anything (hashing included) reads it."""
    if path.suffix.lower() in TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES:
        from .text import check_text_size

        check_text_size(path, size)


def read_path(path: str | Path, *, ocr: str = "auto", asr: str = "auto",
              progress: Callable[[str, float, float], None] | None = None) -> Tree:
    """Read one file into a Tree (ReaderError, one line, for a file it cannot read).

    ``progress(unit, done, total)`` reports work inside the file as it goes: PDFs in pages
    (``"pages"``), videos in seconds of the video per stage (``"s speech"``, ``"s frames"``,
    ``"s speakers"``). Other formats read in one go and report nothing.
    """
    path = Path(path)
    if not path.exists():
        raise ReaderError(f"{path}: no such file")
    if path.is_dir():
        raise ReaderError(f"{path}: is a directory")
    size = path.stat().st_size
    if size == 0:
        raise ReaderError(f"{path.name}: empty file (0 bytes)")
    suf = path.suffix.lower()
    with open(path, "rb") as f:
        head = f.read(1024)
    is_pdf_bytes = b"%PDF-" in head
    if suf in PDF_SUFFIXES or is_pdf_bytes:
        if not is_pdf_bytes:
            raise ReaderError(f"{path.name}: not a PDF (no %PDF header)")
        from .pdf import read_pdf
        from .pdf_guard import check_pdf_streams

        # decompression bombs are refused before PDFium inflates them; the page tree read on the
        # way lets the reader read a page that the tree lists again once
        scan = check_pdf_streams(path)
        return read_pdf(path, ocr=ocr, progress=(lambda i, n: progress("pages", i, n)) if progress else None,
                        scan=scan)
    if suf in video_suffixes():
        from .video import read_video

        return read_video(path, asr=asr, progress=_video_seconds(path, progress) if progress else None)
    if suf in MARKDOWN_SUFFIXES:
        from .markdown import read_markdown

        return read_markdown(path)
    if suf in HTML_SUFFIXES:
        from .html import read_html

        return read_html(path)
    if suf in TEXT_SUFFIXES:
        from .text import read_text

        return read_text(path)
    raise ReaderError(f"{path.name}: unsupported file type {suf or '(no suffix)'}")


def _video_seconds(path: Path, progress: Callable[[str, float, float], None]):
    """The video reader reports (stage, fraction); say it in seconds of the video."""
    from .video.decode import probe

    total = probe(path).duration or 0.0  # container metadata only; raises ReaderError like the reader

    def report(stage: str, frac: float) -> None:
        if total > 0 and stage != "done":
            progress(f"s {stage}", round(frac * total, 1), round(total, 1))

    return report
