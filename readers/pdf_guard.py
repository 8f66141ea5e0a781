"""Decompression bombs and page-tree loops: a PDF's streams are measured before PDFium reads it.

PDFium inflates a page's whole content stream (and each font, form and object stream) into
memory to parse it, and Flate squeezes a run of one byte ~1,000:1 (deflated twice, ~1,000,000:1):
a 2 MB PDF whose content stream inflates to 2 GB took 3.2 GB to index. PDFium offers no limit
to set, so the limits are checked here first: every stream compressed with Flate, LZW (~1,300:1 at
worst) or run length (64:1), under ASCIIHex or ASCII85 or not, is decoded through the filters its
dictionary names (a name or an array, abbreviations and ``#xx`` escapes read, by reference too,
LZW's /EarlyChange from /DecodeParms), in :data:`STEP` pieces from its data's start to its
/Length or ``endstream``, counting the bytes of each layer and keeping none; PDFium holds each
layer whole while it makes the next, so a stream measures as its largest. A stream whose filters
cannot be read counts as Flate if it opens as zlib data, and decoded bytes that are zlib data again
are inflated too (:data:`MAX_LAYERS`). The file is refused (:class:`ReaderError`, one line) when

- one stream passes :data:`MAX_STREAM_BYTES`,
- the content streams of one page pass :data:`MAX_PAGE_BYTES` together (PDFium joins them into
  one buffer: eight 200 MB streams on a page took 3.2 GB), or
- the file's streams pass :data:`MAX_FILE_BYTES` in all, a page's contents counted once for
  every page that draws them, or
- one stream asks for more than :data:`MAX_FILTERS` filters to be undone.

Images are left out, because PDFium decodes them a row at a time as it draws (a 2 GB image took
450 MB to index, OCR rendering its page included), but only a stream that is an image by its use,
not by its word: one whose dictionary says ``/Subtype /Image`` and that is referenced, from
nowhere but ``/XObject`` resource dictionaries and ``/SMask``/``/Mask`` entries. A content
stream that claims to be an image is measured like any other (one of 1.5 GB took 2.6 GB when
it was not). Only an image's last layer is decoded a row at a time, and only when it is Flate or
run length (or an image codec): the layers before it, and an LZW image whole, are measured against
:data:`MAX_STREAM_BYTES` (not the file's total: PDFium lets go of them with the page).
The references are read from the file's objects and from its object streams; when those are too
large to read (:data:`OBJSTM_READ` in all), no image is left out.

An encrypted file's bytes are ciphertext: when it opens without a user password (an owner
password only restricts printing or copying), PDFium writes a decrypted copy (its streams still
compressed) to a temporary file, and the copy is measured; in the file itself only the streams
that open as zlib data are (its cross-reference streams are never encrypted).

The same pass reads the page tree, so that the reader can tell a page that the tree lists more
than once (a ``/Pages`` node among its own descendants: PDFium then returned one page 512 times)
from a real one: :meth:`PdfScan.page_objects`.

Not covered: an encrypted file's object streams, which PDFium decrypts and inflates itself
before the copy can be measured; fonts and forms a page uses count in the file's total, not the
page's; images' codecs (DCT, JPX, JBIG2, CCITT), which PDFium decodes as it draws; Flate and LZW
predictors, which change a layer's size by a byte a row. Time, not memory: LZW and run length are
decoded in Python (LZW ~3 MB a second of output on text, a bomb's long strings far faster), so a
file with tens of MB of real LZW data takes seconds to measure.
"""

from __future__ import annotations

import binascii
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
MAX_LAYERS = 4  # Flate inside Flate, peeled this deep where the filters do not say so
#: the most filters a stream may ask to undo: each layer can be as large as the caps, and a real
#: file asks for one or two
MAX_FILTERS = 8
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
        encrypted = mm.find(b"/Encrypt") >= 0
        # an encrypted file's streams are measured in the decrypted copy; here only those that
        # open as zlib data (its cross-reference streams, which are never encrypted)
        scan = _check(mm, path.name, limits, "", ciphertext=encrypted)
    if encrypted:
        decrypted = _check_decrypted(path, limits)
        if decrypted is not None:
            return decrypted
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            scan = _check(mm, path.name, limits, "")  # it says /Encrypt, but PDFium reads it as it is
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
    end: int  # where the first "endstream" after it begins (or the file's end)
    parsed: dict | None = None  # its dictionary, read (see _dict)


def _check(buf, name: str, limits: tuple[int, int, int], decrypted: str, ciphertext: bool = False) -> PdfScan:
    stream_limit, page_limit, file_limit = limits
    streams, bodies = _split(buf)
    scan = PdfScan()
    held = 0
    texts = {o: text for o, text in bodies if o is not None}  # for /Length, /Filter by reference
    for s in streams:
        if s.obj is not None and _OBJSTM.search(s.head):
            objs = _object_stream(buf, s, OBJSTM_READ - held, texts, ciphertext) if scan.complete else None
            if objs is None:
                scan.complete = False
            else:
                bodies.extend(objs)
                texts.update((o, text) for o, text in objs if o is not None and o not in texts)
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
            image = s.obj in images
            chain = [] if ciphertext else _filters(_dict(s), texts)
            stages = list(itertools.takewhile(lambda f: f[0] in _DECODERS, chain))
            if image and len(stages) == len(chain) and stages and stages[-1][0] in _BY_ROW:
                stages.pop()  # PDFium decodes an image's last Flate or run-length layer a row at a time
            if not any(f in _PACKED for f, _ in stages):
                # a stream whose filters were not read (or say nothing) counts if it opens as zlib data
                if image or not _zlib_header(buf[s.start : s.start + 2]):
                    continue
                stages = [("Fl", None)]
            what = f" (object {s.obj}{decrypted})" if decrypted else f" at byte {s.start:,}"
            if len(stages) > MAX_FILTERS:
                raise ReaderError(f"{name}: a stream{what} has {len(stages)} filters to undo (more than "
                                  f"{MAX_FILTERS}; a decompression bomb?); not read")
            n = decoded_size(_pieces(view, s.start, _data_end(buf, s, texts)), stages,
                             min(stream_limit, file_limit - total), sniff=not image)
            if n > stream_limit:
                raise ReaderError(f"{name}: a compressed stream{what} inflates to more than "
                                  f"{stream_limit >> 20:,} MB (a decompression bomb?); not read")
            if image:
                continue  # held only while its page is drawn, not between pages
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
        stop = buf.find(b"endstream", m.end())
        streams.append(_Stream(int(hdr.group(1)) if hdr else None, head[hdr.end() if hdr else 0 :], m.end(),
                               len(buf) if stop < 0 else stop))
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


def _object_stream(buf, s: _Stream, room: int, texts: dict[int, bytes],
                   ciphertext: bool = False) -> list[tuple[int | None, bytes]] | None:
    """The objects in object stream ``s``, or None when it does not decode to a readable one
    within ``room`` bytes."""
    first = _FIRST.search(s.head)
    chain = [] if ciphertext else _filters(_dict(s), texts)
    stages = list(itertools.takewhile(lambda f: f[0] in _DECODERS, chain))
    if first is None or len(stages) < len(chain) or len(stages) > MAX_FILTERS:
        return None
    if not chain:  # no filters read: zlib data if it opens as that, else plain text
        if _zlib_header(buf[s.start : s.start + 2]):
            stages = [("Fl", None)]
        elif ciphertext:
            return None
    view = memoryview(buf)
    try:
        # as many layers as the filters say, no more: an object stream's text can open with two
        # bytes that pass for a zlib header ("80")
        got = bytearray()
        for piece in _decoded(_pieces(view, s.start, _data_end(buf, s, texts)), stages):
            got += piece
            if len(got) > room:
                return None
        data = bytes(got)
        del got
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


def inflated_size(pieces: Iterator[bytes], limit: int) -> int:
    """Bytes the zlib data in ``pieces`` inflates to (the largest of its layers, when inflated
    bytes are zlib data again), counting no further than just past ``limit``. Damaged data
    counts as far as it inflates."""
    return decoded_size(pieces, [("Fl", None)], limit)


def decoded_size(pieces: Iterator[bytes], stages: list[tuple[str, dict | None]], limit: int,
                 sniff: bool = True) -> int:
    """Bytes the data in ``pieces`` decodes to through ``stages`` (filters by their short names,
    with their /DecodeParms), the largest of its layers: PDFium holds each layer whole while it
    makes the next. With ``sniff``, output that is zlib data again is inflated too (up to
    :data:`MAX_LAYERS` zlib layers in all). No layer is counted further than just past ``limit``."""
    counts: list[int] = []
    out: Iterator[bytes] = pieces
    for f, parms in stages:
        out = _counted(_DECODERS[f](out, parms), counts, limit)
    if sniff:
        zlibs = sum(f == "Fl" for f, _ in stages)
        first = next(out, b"")
        while zlibs < MAX_LAYERS and _zlib_header(bytes(first[:2])):
            out = _counted(_inflate(itertools.chain([first], out)), counts, limit)
            zlibs += 1
            first = next(out, b"")
    for _ in out:
        pass
    return max(counts, default=0)


def _decoded(pieces: Iterator[bytes], stages: list[tuple[str, dict | None]]) -> Iterator[bytes]:
    for f, parms in stages:
        pieces = _DECODERS[f](pieces, parms)
    return pieces


def _counted(gen: Iterator[bytes], counts: list[int], limit: int) -> Iterator[bytes]:
    """``gen``'s pieces, their bytes added up in a new entry of ``counts``; it ends once they pass ``limit``."""
    i = len(counts)
    counts.append(0)

    def run() -> Iterator[bytes]:
        for piece in gen:
            counts[i] += len(piece)
            yield piece
            if counts[i] > limit:
                return

    return run()


def _inflate(pieces: Iterator[bytes], parms: dict | None = None) -> Iterator[bytes]:
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


_NOT_HEX = bytes(c for c in range(256) if c not in b"0123456789abcdefABCDEF")


def _ahx(pieces: Iterator[bytes], parms: dict | None = None) -> Iterator[bytes]:
    """ASCIIHexDecode as PDFium does it: up to the first ``>``, other characters than hex digits
    skipped, an odd last digit taken as the high half of a byte."""
    odd = b""
    for piece in pieces:
        piece = bytes(piece)
        stop = piece.find(b">")
        digits = odd + (piece if stop < 0 else piece[:stop]).translate(None, _NOT_HEX)
        cut = len(digits) & ~1
        odd = digits[cut:]
        if cut:
            yield binascii.a2b_hex(digits[:cut])
        if stop >= 0:
            break
    if odd:
        yield binascii.a2b_hex(odd + b"0")


_A85_END = re.compile(rb"[^!-uz\t\n\r ]")  # PDFium stops at "~" and at any other character it cannot read


def _a85(pieces: Iterator[bytes], parms: dict | None = None) -> Iterator[bytes]:
    """ASCII85Decode as PDFium does it: blanks skipped, ``z`` four zero bytes (a group it cuts
    short is dropped), a last short group of n characters n - 1 bytes."""
    rest = b""  # a group not yet whole, carried to the next piece
    for piece in pieces:
        piece = bytes(piece)
        end = _A85_END.search(piece)
        data = rest + (piece if end is None else piece[: end.start()]).translate(None, b" \t\r\n")
        if b"z" in data:
            parts = data.split(b"z")
            data = b"".join(p[: len(p) - len(p) % 5] + b"!!!!!" for p in parts[:-1]) + parts[-1]
        cut = len(data) - len(data) % 5
        rest = data[cut:]
        if cut:
            yield _a85_groups(data[:cut])
        if end is not None:
            break
    if len(rest) > 1:
        yield _a85_groups(rest + b"u" * (5 - len(rest)))[: len(rest) - 1]


def _a85_groups(data: bytes) -> bytes:
    import numpy as np  # a Python loop over 5-character groups reads ~1 MB a second

    digits = np.frombuffer(data, np.uint8).reshape(-1, 5) - 33
    value = digits[:, 0].astype(np.uint64)
    for k in range(1, 5):
        value = value * 85 + digits[:, k]
    return (value & 0xFFFFFFFF).astype(">u4").tobytes()  # PDFium's sum wraps at 32 bits


_LZW_ROOTS = [bytes([i]) for i in range(256)] + [b"", b""]  # 256 clears the table, 257 ends the data


def _lzw(pieces: Iterator[bytes], parms: dict | None = None) -> Iterator[bytes]:
    """LZWDecode as PDFium does it: 9- to 12-bit codes, one bit wider a code early unless
    /EarlyChange is 0, a code past the table's end taken as the previous string and its first byte."""
    early = 1
    if isinstance(parms, dict) and isinstance(parms.get(b"EarlyChange"), int):
        early = 1 if parms[b"EarlyChange"] else 0
    table = list(_LZW_ROOTS)
    width, prev = 9, b""
    bits = nbits = 0
    out = bytearray()
    for piece in pieces:
        for byte in bytes(piece):
            bits = (bits << 8) | byte
            nbits += 8
            while nbits >= width:
                nbits -= width
                code = bits >> nbits
                bits &= (1 << nbits) - 1
                if code == 256:
                    del table[258:]
                    width, prev = 9, b""
                    continue
                if code == 257:
                    if out:
                        yield bytes(out)
                    return
                if code < len(table) and code != 256:
                    entry = table[code]
                elif prev:
                    entry = prev + prev[:1]
                else:
                    if out:
                        yield bytes(out)
                    return  # a string code with no string before it: PDFium gives up
                if prev and len(table) < 4096:
                    table.append(prev + entry[:1])
                    width = min(12, (len(table) + early).bit_length())
                prev = entry
                out += entry
            if len(out) >= STEP:
                yield bytes(out)
                out = bytearray()
    if out:
        yield bytes(out)


def _rl(pieces: Iterator[bytes], parms: dict | None = None) -> Iterator[bytes]:
    """RunLengthDecode: a length byte n, then n + 1 bytes to copy (n < 128) or one byte to repeat
    257 - n times (n > 128); 128 ends the data."""
    rest = b""  # a run not yet whole, carried to the next piece
    for piece in pieces:
        data = rest + bytes(piece)
        out = bytearray()
        i, size = 0, len(data)
        while i < size:
            n = data[i]
            if n == 128:
                yield bytes(out)
                return
            if n < 128:
                if i + n + 2 > size:
                    break
                out += data[i + 1 : i + n + 2]
                i += n + 2
            else:
                if i + 1 >= size:
                    break
                out += data[i + 1 : i + 2] * (257 - n)
                i += 2
            if len(out) >= STEP:
                yield bytes(out)
                out = bytearray()
        rest = data[i:]
        if out:
            yield bytes(out)
    if rest:  # cut short: PDFium fills the run up with zero bytes
        yield rest[1:] + bytes(rest[0] + 2 - len(rest)) if rest[0] < 128 else bytes(257 - rest[0])


_DECODERS = {"AHx": _ahx, "A85": _a85, "Fl": _inflate, "LZW": _lzw, "RL": _rl}
_PACKED = {"Fl", "LZW", "RL"}  # the filters that can make more bytes than they read (a85's "z" 4:1 aside)
_BY_ROW = {"Fl", "RL"}  # as an image's last filter, undone a row at a time
_NAMES = {b"ASCIIHexDecode": "AHx", b"AHx": "AHx", b"ASCII85Decode": "A85", b"A85": "A85", b"FlateDecode": "Fl",
          b"Fl": "Fl", b"LZWDecode": "LZW", b"LZW": "LZW", b"RunLengthDecode": "RL", b"RL": "RL"}


def _filters(d: dict, texts: dict[int, bytes]) -> list[tuple[str, dict | None]]:
    """A stream's /Filter, in order, each with its /DecodeParms: the five filters the guard undoes
    by their short names, others (images' codecs) by theirs; /Crypt left out, as PDFium skips it."""
    names = _resolve(d.get(b"Filter"), texts)
    parms = _resolve(d.get(b"DecodeParms"), texts)
    if isinstance(names, bytes):
        names, parms = [names], [parms]
    elif not isinstance(names, list):
        return []
    if not isinstance(parms, list):
        parms = []
    out = []
    for i, f in enumerate(names):
        f = _resolve(f, texts)
        if not isinstance(f, bytes):
            f = b"?"
        if f == b"Crypt":
            continue
        p = _resolve(parms[i], texts) if i < len(parms) else None
        out.append((_NAMES.get(f, f.decode("latin-1")), p if isinstance(p, dict) else None))
    return out


def _data_end(buf, s: _Stream, texts: dict[int, bytes]) -> int:
    """Where PDFium may read a stream's data to: its /Length, or the first "endstream" when that
    is further (PDFium looks for it when /Length is wrong)."""
    n = _resolve(_dict(s).get(b"Length"), texts)
    if isinstance(n, int) and n >= 0:
        return max(s.end, min(len(buf), s.start + n))
    return s.end


def _pieces(view: memoryview, start: int, end: int) -> Iterator[bytes]:
    for i in range(start, end, STEP):
        yield view[i : min(i + STEP, end)]


# -- reading a stream's dictionary ---------------------------------------------------------------

class _Ref(int):
    """An indirect reference, by its object number."""


_TOKEN = re.compile(rb"[\x00\t\n\x0c\r ]+|%[^\r\n]*|(<<|>>|[\[\](]|<[^>]*>|/[^\x00\t\n\x0c\r ()<>\[\]{}/%]*"
                    rb"|[^\x00\t\n\x0c\r ()<>\[\]{}/%]+|.)", re.S)
_STRING_STOP = re.compile(rb"[()\\]")
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_NUMBER = re.compile(rb"[+-]?\d+")
_MAX_DEPTH = 32


def _dict(s: _Stream) -> dict:
    """The stream's dictionary: the last one its head holds at the top, the one right before
    "stream" ({} when there is none). Names are read as PDFium reads them (``#xx`` escapes
    undone), keys as bytes without the slash, references as :class:`_Ref`."""
    if s.parsed is None:
        toks = _tokens(s.head)
        s.parsed, i = {}, 0
        while i < len(toks):
            if toks[i] == b"<<":
                value, i = _value(toks, i, 0)
                if isinstance(value, dict):
                    s.parsed = value
            else:
                i += 1
    return s.parsed


def _resolve(value, texts: dict[int, bytes]):
    """``value``, or the object it refers to (read from its text)."""
    if isinstance(value, _Ref):
        text = texts.get(int(value))
        return _value(_tokens(text), 0, 0)[0] if text else None
    return value


def _tokens(text: bytes) -> list[bytes]:
    out = []
    i, size = 0, len(text)
    while i < size:
        m = _TOKEN.match(text, i)
        i = m.end()
        tok = m.group(1)
        if tok is None:
            continue
        if tok == b"(":  # a string: parentheses in it nest, a backslash escapes one
            depth = 1
            while depth and i < size:
                m = _STRING_STOP.search(text, i)
                if m is None:
                    i = size
                    break
                c = text[m.start()]
                i = m.start() + (2 if c == 0x5C else 1)
                depth += 0 if c == 0x5C else (1 if c == 0x28 else -1)
            tok = b"()"
        out.append(tok)
    return out


def _value(toks: list[bytes], i: int, depth: int):
    """(the object that starts at token ``i``, the index after it); strings, reals and keywords
    read as None."""
    if i >= len(toks):
        return None, i
    tok = toks[i]
    if tok in (b">>", b"]"):
        return None, i
    if tok == b"<<":
        if depth > _MAX_DEPTH:
            return None, len(toks)
        d, i = {}, i + 1
        while i < len(toks) and toks[i] != b">>":
            key = toks[i]
            if key[:1] != b"/":
                i += 1
                continue
            d[_name(key)], i = _value(toks, i + 1, depth + 1)  # the last of a key twice, as PDFium
        return d, i + 1
    if tok == b"[":
        if depth > _MAX_DEPTH:
            return None, len(toks)
        a, i = [], i + 1
        while i < len(toks) and toks[i] not in (b"]", b">>"):
            v, i = _value(toks, i, depth + 1)
            a.append(v)
        return a, (i + 1 if i < len(toks) and toks[i] == b"]" else i)
    if tok[:1] == b"/":
        return _name(tok), i + 1
    if _NUMBER.fullmatch(tok):
        if i + 2 < len(toks) and toks[i + 2] == b"R" and toks[i + 1].isdigit() and tok.isdigit():
            return _Ref(int(tok)), i + 3
        return int(tok), i + 1
    return None, i + 1


def _name(tok: bytes) -> bytes:
    name = tok[1:]
    return _NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), name) if b"#" in name else name


def _zlib_header(b: bytes) -> bool:
    """The two bytes that open a zlib stream: deflate with a window of at most 32 KB, and a check."""
    return len(b) == 2 and (b[0] & 0x0F) == 8 and (b[0] >> 4) <= 7 and ((b[0] << 8) | b[1]) % 31 == 0
