"""Decompression bombs and page-tree loops: a PDF's streams are measured before PDFium reads it.

PDFium inflates a page's whole content stream (and each font, form and object stream) into
memory to parse it, and Flate squeezes a run of one byte ~1,000:1 (deflated twice, ~1,000,000:1):
a 2 MB PDF whose content stream inflates to 2 GB took 3.2 GB to index. PDFium offers no limit
to set, so the limits are checked here first: every stream that holds zlib data is inflated in
:data:`STEP` pieces, layer by layer when the inflated bytes are zlib data again, counting the
bytes and keeping none, and the file is refused (:class:`ReaderError`, one line) when

- one stream passes :data:`MAX_STREAM_BYTES`,
- the content streams of one page pass :data:`MAX_PAGE_BYTES` together (PDFium joins them into
  one buffer: eight 200 MB streams on a page took 3.2 GB), or
- the file's streams pass :data:`MAX_FILE_BYTES` in all, a page's contents counted once for
  every page that draws them.

Images are left out, because PDFium decodes them a row at a time as it draws (a 2 GB image took
450 MB to index, OCR rendering its page included), but only a stream that is an image by its use,
not by its word: one whose dictionary says ``/Subtype /Image`` and that is referenced, from
nowhere but ``/XObject`` resource dictionaries and ``/SMask``/``/Mask`` entries. A content
stream that claims to be an image is measured like any other (one of 1.5 GB took 2.6 GB when
it was not).
The references are read from the file's objects and from its object streams; when those are too
large to read (:data:`OBJSTM_READ` in all), no image is left out.

An encrypted file's bytes are ciphertext: when it opens without a user password (an owner
password only restricts printing or copying), PDFium writes a decrypted copy (its streams still
compressed) to a temporary file, and the copy is measured.

The same pass reads the page tree, so that the reader can tell a page that the tree lists more
than once (a ``/Pages`` node among its own descendants: PDFium then returned one page 512 times)
from a real one: :meth:`PdfScan.page_objects`.

Not covered: filters other than Flate (LZW, run length), whose worst ratios are far smaller, and
Flate under an ASCII filter; an encrypted file's object streams, which PDFium decrypts and
inflates itself before the copy can be measured; fonts and forms a page uses count in the file's
total, not the page's.
"""

from __future__ import annotations

import itertools
import mmap
import re
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..core import ReaderError

#: the most one stream may inflate to: 256 MB is a 9,000 x 9,500 px RGB picture's worth, far
#: above any page's text; PDFium then peaks near 1.6x that
MAX_STREAM_BYTES = 256 << 20
#: the most one page's content streams may inflate to together (PDFium peaks near 2x that)
MAX_PAGE_BYTES = 256 << 20
#: the most a file's streams may inflate to in all: a text page's contents are tens of KB, a
#: dense vector drawing's a few MB, so this is hundreds of such pages; beyond it, reading is
#: minutes of inflating, and fonts and forms PDFium keeps between pages add up
MAX_FILE_BYTES = 1 << 30
#: the most a file's object streams are inflated to, held, to read the references in them (a real
#: one holds a few MB of dictionaries)
OBJSTM_READ = 64 << 20
STEP = 1 << 20  # bytes inflated (and fed) at a time
MAX_LAYERS = 4  # Flate inside Flate, peeled this deep
#: PDFium stops descending the page tree this deep (cpdf_document.cpp, kMaxPageLevel)
PDFIUM_MAX_PAGE_LEVEL = 1024

_STREAM = re.compile(rb"(?<!end)stream(?:\r\n|\n|\r)")
_OBJ = re.compile(rb"(?<![0-9])(\d{1,10})\s+(\d{1,5})\s+obj\b")
_REF = re.compile(rb"(?<![0-9.])(\d{1,10})\s+(\d{1,5})\s+R(?![A-Za-z0-9_])")
_IMAGE = re.compile(rb"/Subtype\s*/Image\b")
_OBJSTM = re.compile(rb"/Type\s*/ObjStm\b")
_XOBJECT_DICT = re.compile(rb"/XObject\s*<<([^<>]*)>>")
_XOBJECT_REF = re.compile(rb"/XObject\s*(\d{1,10})\s+\d{1,5}\s+R")
_MASK_REF = re.compile(rb"/S?Mask\s*(\d{1,10})\s+\d{1,5}\s+R")
_CONTENTS = re.compile(rb"/Contents\s*(?:(\d{1,10})\s+\d{1,5}\s+R|\[([^\]]*)\])")
_KIDS = re.compile(rb"/Kids\s*(?:(\d{1,10})\s+\d{1,5}\s+R|\[([^\]]*)\])")
_ROOT = re.compile(rb"/Root\s*(\d{1,10})\s+\d{1,5}\s+R")
_PAGES = re.compile(rb"/Pages\s*(\d{1,10})\s+\d{1,5}\s+R")
_INT = re.compile(rb"\d+")
_FIRST = re.compile(rb"/First\s+(\d+)")
_FLATE = re.compile(rb"/FlateDecode\b")
_DICT_SPAN = 16384  # how far back from "stream" its dictionary is looked for


@dataclass
class PdfScan:
    """What the guard read of a file's structure (the page tree) for the reader."""

    #: page-tree nodes (objects with /Kids) by object number: their kids' object numbers
    kids: dict[int, list[int]] = field(default_factory=dict)
    objects: set[int] = field(default_factory=set)  # object numbers defined anywhere
    pages_root: int | None = None
    complete: bool = True  # every object stream was read

    def page_objects(self, n: int) -> list[int | None] | None:
        """The page object behind each of PDFium's first ``n`` page indexes, found the way
        PDFium walks the tree (depth first, a kid that is its own parent skipped, no deeper than
        :data:`PDFIUM_MAX_PAGE_LEVEL`), or None when the tree was not read whole. An object that
        appears twice is a page the tree lists again (a loop or a repeated kid)."""
        if not self.complete or self.pages_root is None or self.pages_root not in self.kids:
            return None
        out: list[int | None] = []
        stack = [(self.pages_root, iter(self.kids[self.pages_root]))]
        while stack and len(out) < n:
            node, it = stack[-1]
            kid = next(it, None)
            if kid is None:
                stack.pop()
                continue
            if kid == node:
                continue
            if kid not in self.objects:
                out.append(None)  # PDFium counts it, and the page fails to load
            elif kid in self.kids:
                if len(stack) >= PDFIUM_MAX_PAGE_LEVEL:
                    break
                stack.append((kid, iter(self.kids[kid])))
            else:
                out.append(kid)
        return out


def check_pdf_streams(path: Path, limit: int | None = None, page_limit: int | None = None,
                      file_limit: int | None = None) -> PdfScan:
    """ReaderError naming the file when its streams inflate past the limits (see the module
    docstring; the defaults are the module's constants); else what was read of its page tree."""
    limits = (MAX_STREAM_BYTES if limit is None else limit, MAX_PAGE_BYTES if page_limit is None else page_limit,
              MAX_FILE_BYTES if file_limit is None else file_limit)
    with open(path, "rb") as f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file: the reader says so
            return PdfScan(complete=False)
    with mm:
        scan = _check(mm, path.name, limits, "")
        encrypted = mm.find(b"/Encrypt") >= 0
    if encrypted:
        scan = _check_decrypted(path, limits) or scan
    return scan


def _check_decrypted(path: Path, limits: tuple[int, int, int]) -> PdfScan | None:
    """The checks on the decrypted copy PDFium writes, or None when it does not open (a user
    password: the reader says so) or is not encrypted after all."""
    from .pdf_extract import PDFIUM_LOCK, pc, pdfium

    with tempfile.TemporaryFile(prefix="sleuth-pdf-") as tmp:
        with PDFIUM_LOCK:
            try:
                pdf = pdfium.PdfDocument(str(path))
            except pdfium.PdfiumError:
                return None
            try:
                if pc.FPDF_GetSecurityHandlerRevision(pdf.raw) < 0:
                    return None
                pdf.save(tmp, flags=pc.FPDF_REMOVE_SECURITY)
            except pdfium.PdfiumError:
                return None  # the reader meets the same file and says what is wrong with it
            finally:
                pdf.close()
        tmp.flush()
        with mmap.mmap(tmp.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _check(mm, path.name, limits, ", decrypted")


@dataclass
class _Stream:
    obj: int | None
    head: bytes  # its dictionary
    start: int  # where its data begins


def _check(buf, name: str, limits: tuple[int, int, int], decrypted: str) -> PdfScan:
    stream_limit, page_limit, file_limit = limits
    streams, bodies = _split(buf)
    scan = PdfScan()
    held = 0
    for s in streams:
        if s.obj is not None and _OBJSTM.search(s.head):
            objs = _object_stream(buf, s, OBJSTM_READ - held) if scan.complete else None
            if objs is None:
                scan.complete = False
            else:
                bodies.extend(objs)
                held += sum(len(text) for _, text in objs)
    scan.objects = {o for o, _ in bodies if o is not None} | {s.obj for s in streams if s.obj is not None}
    images = _images(streams, bodies, scan.complete)
    contents = _contents(bodies)
    _page_tree(bodies, scan)

    view = memoryview(buf)
    try:
        sizes: dict[int, int] = {}
        total = loose = 0  # loose: streams without an object header to name them
        for s in streams:
            if s.obj in images or not _zlib_header(buf[s.start : s.start + 2]):
                continue
            n = inflated_size(_pieces(view, s.start), min(stream_limit, file_limit - total))
            if n > stream_limit:
                what = f" (object {s.obj}{decrypted})" if decrypted else f" at byte {s.start:,}"
                raise ReaderError(f"{name}: a compressed stream{what} inflates to more than "
                                  f"{stream_limit >> 20:,} MB (a decompression bomb?); not read")
            total += n
            if total > file_limit:
                raise _too_much(name, file_limit, decrypted)
            if s.obj is not None:
                sizes[s.obj] = max(sizes.get(s.obj, 0), n)
            else:
                loose += n
    finally:
        view.release()
    drawn = {o for _, objs in contents for o in objs}
    total = loose + sum(n for o, n in sizes.items() if o not in drawn)
    for page, objs in contents:
        n = sum(sizes.get(o, 0) for o in objs)
        if n > page_limit:
            what = f" (object {page}{decrypted})" if page is not None else (" (decrypted)" if decrypted else "")
            raise ReaderError(f"{name}: the content streams of one page{what} inflate to more than "
                              f"{page_limit >> 20:,} MB together (a decompression bomb?); not read")
        total += n
        if total > file_limit:
            raise _too_much(name, file_limit, decrypted)
    return scan


def _too_much(name: str, file_limit: int, decrypted: str) -> ReaderError:
    return ReaderError(f"{name}: its compressed streams{' (decrypted)' if decrypted else ''} inflate to more than "
                       f"{file_limit >> 20:,} MB in all (a decompression bomb?); not read")


def _split(buf) -> tuple[list[_Stream], list[tuple[int | None, bytes]]]:
    """The file's streams, and the text of its objects outside stream data: (object number or
    None, the text after its ``obj`` up to its ``endobj`` or ``stream``, the next object or the
    end)."""
    streams: list[_Stream] = []
    bodies: list[tuple[int | None, bytes]] = []
    pos = 0
    while pos < len(buf):
        m = _STREAM.search(buf, pos)
        _bodies(buf[pos : m.start() if m else len(buf)], bodies)
        if not m:
            break
        head = buf[max(pos, m.start() - _DICT_SPAN) : m.start()]
        hdr = None
        for hdr in _OBJ.finditer(head):
            pass
        streams.append(_Stream(int(hdr.group(1)) if hdr else None, head[hdr.end() if hdr else 0 :], m.end()))
        stop = buf.find(b"endstream", m.end())
        pos = len(buf) if stop < 0 else stop + len(b"endstream")
    return streams, bodies


def _bodies(text: bytes, out: list[tuple[int | None, bytes]]) -> None:
    last, obj = 0, None
    for m in _OBJ.finditer(text):
        _body(obj, text[last : m.start()], out)
        last, obj = m.end(), int(m.group(1))
    _body(obj, text[last:], out)


def _body(obj: int | None, text: bytes, out: list[tuple[int | None, bytes]]) -> None:
    """An object's text ends at its ``endobj``: what follows (an xref table, a trailer) is no
    part of it."""
    end = text.find(b"endobj") if obj is not None else -1
    if end < 0:
        out.append((obj, text))
    else:
        out.append((obj, text[:end]))
        out.append((None, text[end + 6 :]))


def _object_stream(buf, s: _Stream, room: int) -> list[tuple[int | None, bytes]] | None:
    """The objects in object stream ``s``, or None when it does not inflate to a readable one
    within ``room`` bytes."""
    first = _FIRST.search(s.head)
    if first is None or not _zlib_header(buf[s.start : s.start + 2]):
        return None
    view = memoryview(buf)
    try:
        pieces: Iterator[bytes] = _pieces(view, s.start)
        # as many layers as the filters say: an object stream's text can open with two bytes
        # that pass for a zlib header ("80")
        for _ in range(max(1, min(MAX_LAYERS, len(_FLATE.findall(s.head))))):
            got = bytearray()
            for piece in _inflate(pieces):
                got += piece
                if len(got) > room:
                    return None
            data = bytes(got)
            pieces = iter([data])
    finally:
        view.release()
    base = int(first.group(1))
    nums = [int(n) for n in _INT.findall(data[:base])]  # pairs of (object number, offset)
    offsets = sorted((nums[i + 1], nums[i]) for i in range(0, len(nums) - 1, 2))
    if not offsets:
        return None
    ends = [off for off, _ in offsets[1:]] + [len(data) - base]
    return [(num, data[base + off : base + end]) for (off, num), end in zip(offsets, ends)]


def _refs(text: bytes) -> list[int]:
    return [int(m.group(1)) for m in _REF.finditer(text)]


def _images(streams: list[_Stream], bodies: list[tuple[int | None, bytes]], complete: bool) -> set[int]:
    """Object numbers of the streams that are images by their use: every definition says
    /Subtype /Image, and every reference to them is an image's (an /XObject resource or a mask)."""
    if not complete:
        return set()
    claims: dict[int, bool] = {}
    for s in streams:
        if s.obj is not None:
            claims[s.obj] = claims.get(s.obj, True) and bool(_IMAGE.search(s.head))
    claimed = {o for o, yes in claims.items() if yes}
    if not claimed:
        return set()
    refs: dict[int, int] = {}  # object -> references to it
    as_image: dict[int, int] = {}  # object -> references to it where PDFium draws an image
    xobject_dicts: dict[int, int] = {}  # object -> references to it as a whole /XObject dictionary
    for _, text in bodies:
        for o in _refs(text):
            refs[o] = refs.get(o, 0) + 1
        for m in _XOBJECT_REF.finditer(text):
            o = int(m.group(1))
            xobject_dicts[o] = xobject_dicts.get(o, 0) + 1
        for m in itertools.chain(_XOBJECT_DICT.finditer(text), _MASK_REF.finditer(text)):
            for o in _refs(m.group(0)):
                as_image[o] = as_image.get(o, 0) + 1
    for obj, text in bodies:
        # an /XObject dictionary of its own: its entries are images' references, if nothing
        # else refers to it
        if obj is not None and xobject_dicts.get(obj) == refs.get(obj) and re.fullmatch(rb"\s*<<[^<>]*>>\s*", text):
            for o in _refs(text):
                as_image[o] = as_image.get(o, 0) + 1
    return {o for o in claimed if refs.get(o, 0) and as_image.get(o, 0) == refs[o]}


def _contents(bodies: list[tuple[int | None, bytes]]) -> list[tuple[int | None, list[int]]]:
    """Each /Contents entry that names streams: (the object holding it, the streams it names,
    an array object's entries in place of the array)."""
    arrays = {obj: _refs(text) for obj, text in bodies if obj is not None and text.lstrip().startswith(b"[")}
    out = []
    for obj, text in bodies:
        for m in _CONTENTS.finditer(text):
            if m.group(1) is not None:
                o = int(m.group(1))
                out.append((obj, arrays.get(o, [o])))
            else:
                out.append((obj, _refs(m.group(2))))
    return out


def _page_tree(bodies: list[tuple[int | None, bytes]], scan: PdfScan) -> None:
    arrays = {obj: _refs(text) for obj, text in bodies if obj is not None and text.lstrip().startswith(b"[")}
    root = None
    catalogs: dict[int, int] = {}
    for obj, text in bodies:
        if obj is not None:
            m = _KIDS.search(text)
            if m:
                scan.kids[obj] = arrays.get(int(m.group(1)), []) if m.group(1) is not None else _refs(m.group(2))
            m = _PAGES.search(text)
            if m:
                catalogs[obj] = int(m.group(1))
        for m in _ROOT.finditer(text):
            root = int(m.group(1))  # the last trailer's: the latest update
    scan.pages_root = catalogs.get(root) if root is not None else None


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
