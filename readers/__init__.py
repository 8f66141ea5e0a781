"""Readers: pure functions from one file to a :class:`sleuth.core.Tree`.

``read_path`` picks the reader from the file's content (magic bytes) first and its suffix
second, so a mislabelled file gets a clear error instead of garbage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..core import ReaderError, Tree

TEXT_SUFFIXES = {".txt", ".text", ".log", ".rst", ".csv", ".tsv"}
MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
PDF_SUFFIXES = {".pdf"}
#: suffixes the video reader accepts (lower case, with the dot). Kept here, not in the video
#: package: importing that loads OpenCV and the decoders (~25 MB), which a text file never needs.
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv",
                            ".ogv", ".3gp"})


def video_suffixes() -> set[str]:
    return set(VIDEO_SUFFIXES)


def supported_suffixes() -> set[str]:
    return TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES | video_suffixes()


ASR_MODES = ("auto", "subtitles", "whisper", "pocketsphinx", "none")
ASR_ALIASES = {"off": "none"}


def check_modes(ocr: str, asr: str) -> tuple[str, str]:
    """(ocr, asr) normalised (``--asr off`` is ``none``); ValueError naming the option otherwise.

    Checked once before a run so that a typo is one usage error, not one failure per file.
    """
    from .pdf import OCR_MODES

    asr = ASR_ALIASES.get(asr, asr)
    if ocr not in OCR_MODES:
        raise ValueError(f"--ocr {ocr!r}: must be one of {', '.join(OCR_MODES)}")
    if asr not in ASR_MODES:
        raise ValueError(f"--asr {asr!r}: must be one of {', '.join(ASR_MODES + tuple(ASR_ALIASES))}")
    return ocr, asr


def kind_of(path: Path) -> str:
    """"document" or "video" for a supported file; raises ReaderError otherwise."""
    suf = path.suffix.lower()
    if suf in video_suffixes():
        return "video"
    if suf in supported_suffixes():
        return "document"
    raise ReaderError(f"{path.name}: unsupported file type {suf or '(no suffix)'}")


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

        check_pdf_streams(path)  # decompression bombs are refused before PDFium inflates them

        return read_pdf(path, ocr=ocr, progress=(lambda i, n: progress("pages", i, n)) if progress else None)
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
