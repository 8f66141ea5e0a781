"""Decompression bombs: a PDF's compressed streams are measured before PDFium opens the file.

PDFium inflates a page's whole content stream (and each font, form and object stream) into
memory to parse it, and Flate squeezes a run of one byte ~1,000:1 (deflated twice, ~1,000,000:1):
a 2 MB PDF whose content stream inflates to 2 GB took 3.2 GB to index. PDFium offers no limit
to set, so the limit is checked here first: every stream that holds zlib data is inflated in
:data:`STEP` pieces, layer by layer when the inflated bytes are zlib data again, counting the
bytes and keeping none, and the file is refused when a stream passes :data:`MAX_STREAM_BYTES`.
Images are left out: PDFium decodes them a row at a time as it draws, so a 2 GB image took
450 MB to index even with OCR rendering its page.

Not covered: streams in encrypted PDFs (the bytes here are ciphertext) and filters other than
Flate (LZW, run length), whose worst ratios are far smaller.
"""

from __future__ import annotations

import itertools
import mmap
import re
import zlib
from pathlib import Path
from typing import Iterator

from ..core import ReaderError

#: the most one stream may inflate to: 256 MB is a 9,000 x 9,500 px RGB picture's worth, far
#: above any page's text; PDFium then peaks near 1.6x that
MAX_STREAM_BYTES = 256 << 20
STEP = 1 << 20  # bytes inflated (and fed) at a time
MAX_LAYERS = 4  # Flate inside Flate, peeled this deep

_STREAM = re.compile(rb"(?<!end)stream(?:\r\n|\n|\r)")
_IMAGE = re.compile(rb"/Subtype\s*/Image\b")
_DICT_SPAN = 16384  # how far back from "stream" its dictionary is looked for


def check_pdf_streams(path: Path, limit: int = MAX_STREAM_BYTES) -> None:
    """ReaderError naming the file when one of its streams inflates past ``limit`` bytes."""
    with open(path, "rb") as f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file: the reader says so
            return
    with mm:
        view = memoryview(mm)
        try:
            for m in _STREAM.finditer(mm):
                start = m.end()
                if start + 2 > len(mm) or not _zlib_header(mm[start : start + 2]):
                    continue
                head = mm[max(0, m.start() - _DICT_SPAN) : m.start()]
                obj = head.rfind(b"obj")
                if _IMAGE.search(head[obj + 3 if obj >= 0 else 0 :]):
                    continue
                n = inflated_size(_pieces(view, start), limit)
                if n > limit:
                    raise ReaderError(f"{path.name}: a compressed stream at byte {m.start():,} inflates to more "
                                      f"than {limit >> 20:,} MB (a decompression bomb?); not read")
        finally:
            view.release()


def inflated_size(pieces: Iterator[bytes], limit: int, depth: int = 0) -> int:
    """Bytes the zlib data in ``pieces`` inflates to (the largest of its layers, when inflated
    bytes are zlib data again), counting no further than just past ``limit``. Damaged data
    counts as far as it inflates."""
    outer = 0

    def counted(gen: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal outer
        for piece in gen:
            outer += len(piece)
            yield piece

    out = counted(_inflate(pieces))
    first = next(out, b"")
    inner = 0
    if depth + 1 < MAX_LAYERS and _zlib_header(first[:2]):
        inner = inflated_size(itertools.chain([first], out), limit, depth + 1)
    for _ in out:  # what the inner layer did not take
        if outer > limit:
            break
    return max(inner, outer)


def _inflate(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Inflated bytes, STEP at a time, of the zlib stream that ``pieces`` begins with."""
    d = zlib.decompressobj()
    try:
        for piece in pieces:
            buf = piece
            while buf:
                got = d.decompress(buf, STEP)
                if got:
                    yield got
                if d.eof:
                    return
                buf = d.unconsumed_tail
        tail = d.flush()
        if tail:
            yield tail
    except zlib.error:
        return


def _pieces(view: memoryview, start: int) -> Iterator[bytes]:
    for i in range(start, len(view), STEP):
        yield view[i : i + STEP]


def _zlib_header(b: bytes) -> bool:
    """The two bytes that open a zlib stream: deflate with a window of at most 32 KB, and a check."""
    return len(b) == 2 and (b[0] & 0x0F) == 8 and (b[0] >> 4) <= 7 and ((b[0] << 8) | b[1]) % 31 == 0
