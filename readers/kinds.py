"""Which files sleuth reads, and the reading modes: light enough to import anywhere.

Kept apart from the readers so that checking a suffix or an ``--asr`` value loads no reader, and
so that the video package can use them without importing :mod:`sleuth.readers` (its parent,
which imports it back).
"""

from __future__ import annotations

from pathlib import Path

from ..core import ReaderError

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


ASR_MODES = ("auto", "subtitles", "whisper", "whisper-batched", "pocketsphinx", "none")
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
