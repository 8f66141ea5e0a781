"""PDFium access for the PDF reader: opening files, text spans, images, outline, rendering.

Text comes from PDFium *text objects* (one per ``Tj``/``TJ`` show operation, i.e. usually one
per line or word run): a handful of ctypes calls per object instead of several per character,
which keeps extraction at a few milliseconds per page. :func:`page_spans_reference` is the plain
per-character implementation the tests compare it to.

Where words break is PDFium's call, not a gap threshold: its *text page* holds the same
characters in content order with the spaces and line breaks it generates from the glyph
positions and the font's own spacing, so letter-spaced text and text drawn glyph by glyph (one
object per glyph) still splits into the right words. :func:`link_spans` places every object's
text on the page text (one call for the whole page) and records the separator PDFium put before
it; the layout joins spans by that. The page text also tells a garbled text layer
(:func:`text_quality`: control and private-use characters, glyphs without a Unicode mapping).

PDFium is not thread-safe and ctypes releases the GIL during calls, so every use of PDFium in
sleuth goes through :data:`PDFIUM_LOCK`.
"""

from __future__ import annotations

import ctypes
import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pc

from ..core import ReaderError
from .pdf_layout import Span

PDFIUM_LOCK = threading.RLock()

Matrix = tuple[float, float, float, float, float, float]  # (a, b, c, d, e, f), row-vector convention

_BOLD_WORDS = ("bold", "black", "heavy", "semibold", "demibold", "demi", "extrabold", "ultrabold")
_FORCE_BOLD_FLAG = 1 << 18  # PDF font descriptor flag bit 19 (ForceBold)


def mat_mul(m: Matrix, n: Matrix) -> Matrix:
    """``m`` then ``n`` (row vectors: p' = p @ m @ n)."""
    a, b, c, d, e, f = m
    A, B, C, D, E, F = n
    return (
        a * A + b * C,
        a * B + b * D,
        c * A + d * C,
        c * B + d * D,
        e * A + f * C + E,
        e * B + f * D + F,
    )


def transform_box(m: Matrix, l: float, b: float, r: float, t: float) -> tuple[float, float, float, float]:
    a, bb, c, d, e, f = m
    xs = []
    ys = []
    for x, y in ((l, b), (r, b), (r, t), (l, t)):
        xs.append(a * x + c * y + e)
        ys.append(bb * x + d * y + f)
    return (min(xs), min(ys), max(xs), max(ys))


def mat_inv(m: Matrix) -> Matrix:
    a, b, c, d, e, f = m
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return (ia, ib, ic, id_, -(e * ia + f * ic), -(e * ib + f * id_))


def open_pdf(path: str | Path, password: str | None = None) -> pdfium.PdfDocument:
    """Open a PDF or raise :class:`ReaderError` with a one-line reason naming the file."""
    p = Path(path)
    name = p.name
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise ReaderError(f"{name}: file not found") from None
    except OSError as e:
        raise ReaderError(f"{name}: cannot open ({e.strerror or e})") from None
    if size == 0:
        raise ReaderError(f"{name}: empty file (0 bytes)")
    try:
        with open(p, "rb") as fh:
            head = fh.read(1024)
    except OSError as e:
        raise ReaderError(f"{name}: cannot read ({e.strerror or e})") from None
    if b"%PDF-" not in head:
        raise ReaderError(f"{name}: not a PDF file (no %PDF header)")
    try:
        with PDFIUM_LOCK:
            return pdfium.PdfDocument(str(p), password=password)
    except pdfium.PdfiumError as e:
        code = getattr(e, "err_code", None)
        if code == pc.FPDF_ERR_PASSWORD:
            raise ReaderError(f"{name}: password-protected (encrypted) PDF") from None
        if code == pc.FPDF_ERR_SECURITY:
            raise ReaderError(f"{name}: unsupported PDF security handler") from None
        if code == pc.FPDF_ERR_PAGE:
            raise ReaderError(f"{name}: PDF has no readable pages") from None
        if code == pc.FPDF_ERR_FORMAT or code is None:
            raise ReaderError(f"{name}: corrupt or truncated PDF (cannot parse)") from None
        raise ReaderError(f"{name}: unreadable PDF ({e})") from None


@dataclass
class PageData:
    """What the reader needs from one page, in top-left-origin points of the displayed page."""

    index: int  # 0-based
    width: float
    height: float
    rotation: int
    spans: list[Span]
    images: list[tuple[float, float, float, float]]
    n_chars: int  # characters on PDFium's text page (0 = no text layer)
    n_paths: int
    skipped_rotated: int = 0  # mirrored or skewed text objects, which no rotation makes upright
    quality: "TextQuality | None" = None
    #: set when most of the page's text runs at an angle (a landscape table drawn on a portrait
    #: page): ``spans`` and ``images`` are then in this frame's coordinates, where that text is upright
    frame: "Frame | None" = None
    #: text at other angles than ``spans`` (map labels, vertical axis titles), one group per angle,
    #: each in its own frame's coordinates
    groups: "list[TextGroup]" = field(default_factory=list)

    @property
    def layout_size(self) -> tuple[float, float]:
        """Width and height of the frame ``spans`` are in."""
        return (self.frame.width, self.frame.height) if self.frame else (self.width, self.height)

    def demote_frame(self) -> None:
        """Put ``spans`` back in display coordinates (for OCR, whose boxes are): text of a rotated
        frame becomes one of the ``groups``."""
        if self.frame is not None:
            if self.spans:
                self.groups.insert(0, TextGroup(self.frame, self.spans))
            self.spans = []
            self.images = [self.frame.box_to_display(b) for b in self.images]
            self.frame = None


@dataclass
class Frame:
    """Page coordinates turned so that text running at ``angle`` degrees (clockwise on the
    displayed page) reads left to right: ``to_frame`` maps displayed-page points into the frame,
    whose origin is the top-left of the turned page's bounding box."""

    angle: int
    to_frame: Matrix
    from_frame: Matrix
    width: float
    height: float

    def box_to_display(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A frame box as the displayed page's axis-aligned box around it."""
        return transform_box(self.from_frame, box[0], box[1], box[2], box[3])

    def box_to_frame(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        return transform_box(self.to_frame, box[0], box[1], box[2], box[3])


def make_frame(angle: int, width: float, height: float) -> Frame:
    """The :class:`Frame` for text at ``angle`` degrees on a displayed page of this size."""
    t = math.radians(angle)
    co, si = math.cos(t), math.sin(t)
    if abs(co) < 1e-12:
        co = 0.0
    if abs(si) < 1e-12:
        si = 0.0
    rot: Matrix = (co, -si, si, co, 0.0, 0.0)  # turns the direction (cos, sin) onto +x
    x0, y0, x1, y1 = transform_box(rot, 0.0, 0.0, width, height)
    to_frame = mat_mul(rot, (1.0, 0.0, 0.0, 1.0, -x0, -y0))
    return Frame(angle, to_frame, mat_inv(to_frame), x1 - x0, y1 - y0)


@dataclass
class TextGroup:
    """Spans that share one text angle, in ``frame`` coordinates."""

    frame: Frame
    spans: list[Span]


def display_matrix(page: pdfium.PdfPage) -> tuple[Matrix, float, float, int]:
    """Matrix from PDF user space to the displayed page with origin top-left, y down.

    Coordinates are relative to the crop box (what renderers show) and follow the page's
    /Rotate, so a box maps straight onto a rendered bitmap divided by its scale.
    """
    l, b, r, t = page.get_cropbox()
    w, h = r - l, t - b
    rot = page.get_rotation() % 360
    m: Matrix = (1.0, 0.0, 0.0, -1.0, -l, t)
    if rot == 90:
        m = mat_mul(m, (0.0, 1.0, -1.0, 0.0, h, 0.0))
        w, h = h, w
    elif rot == 180:
        m = mat_mul(m, (-1.0, 0.0, 0.0, -1.0, w, h))
    elif rot == 270:
        m = mat_mul(m, (0.0, -1.0, 1.0, 0.0, 0.0, w))
        w, h = h, w
    return m, w, h, rot


class _Scratch:
    """Reusable ctypes buffers (allocation per call would dominate the per-object cost)."""

    def __init__(self) -> None:
        self.f = [ctypes.c_float() for _ in range(4)]
        self.fr = [ctypes.byref(x) for x in self.f]
        self.size = ctypes.c_float()
        self.size_r = ctypes.byref(self.size)
        self.mat = pc.FS_MATRIX()
        self.mat_r = ctypes.byref(self.mat)
        self.buf_len = 4096
        self.buf = (ctypes.c_ushort * self.buf_len)()
        self.asc = ctypes.c_float()
        self.name = ctypes.create_string_buffer(256)
        self.rect = pc.FS_RECTF()
        self.rect_r = ctypes.byref(self.rect)
        self.quad = pc.FS_QUADPOINTSF()
        self.quad_r = ctypes.byref(self.quad)


def _font_info(font, scratch: _Scratch, cache: dict) -> tuple[str, bool]:
    key = ctypes.cast(font, ctypes.c_void_p).value
    hit = cache.get(key)
    if hit is not None:
        return hit
    name = ""
    if font:
        n = pc.FPDFFont_GetBaseFontName(font, scratch.name, 256)
        if n > 0:
            name = scratch.name.raw[: min(n, 256) - 1].decode("utf-8", "replace")
        weight = pc.FPDFFont_GetWeight(font)
        flags = pc.FPDFFont_GetFlags(font)
    else:
        weight, flags = -1, 0
    low = name.lower().split("+")[-1]
    bold = (weight >= 600) or bool(flags & _FORCE_BOLD_FLAG and flags > 0) or any(w in low for w in _BOLD_WORDS)
    cache[key] = (name, bold)
    return name, bold


def page_data(pdf: pdfium.PdfDocument, index: int) -> PageData:
    """Spans (one per text object), image boxes and counts for one page (fast path)."""
    with PDFIUM_LOCK:
        page = pdf[index]
        try:
            textpage = page.get_textpage()
            try:
                return _page_data(page, textpage, index)
            finally:
                textpage.close()
        finally:
            page.close()


def _page_data(page, textpage, index: int) -> PageData:
    disp, w, h, rot = display_matrix(page)
    tp = textpage.raw
    n_chars = pc.FPDFText_CountChars(tp)
    s = _Scratch()
    fonts: dict = {}
    spans: list[Span] = []
    images: list[tuple[float, float, float, float]] = []
    counts = {"paths": 0, "rotated": 0}
    text_objs: list = []

    def walk(parent, is_form: bool, outer: Matrix) -> None:
        count = pc.FPDFFormObj_CountObjects(parent) if is_form else pc.FPDFPage_CountObjects(parent)
        get = pc.FPDFFormObj_GetObject if is_form else pc.FPDFPage_GetObject
        for k in range(count):
            obj = get(parent, k)
            if not obj:
                continue
            typ = pc.FPDFPageObj_GetType(obj)
            if typ == pc.FPDF_PAGEOBJ_TEXT:
                text_objs.append((obj, outer))
            elif typ == pc.FPDF_PAGEOBJ_IMAGE:
                if pc.FPDFPageObj_GetBounds(obj, *s.fr):
                    f = s.f
                    x0, y0, x1, y1 = transform_box(outer, f[0].value, f[1].value, f[2].value, f[3].value)
                    images.append((x0, y0, x1, y1))
            elif typ == pc.FPDF_PAGEOBJ_PATH:
                counts["paths"] += 1
            elif typ == pc.FPDF_PAGEOBJ_FORM:
                # children of a form XObject report positions in the form's space
                if pc.FPDFPageObj_GetMatrix(obj, s.mat_r):
                    m = s.mat
                    inner = mat_mul((m.a, m.b, m.c, m.d, m.e, m.f), outer)
                    walk(obj, True, inner)

    walk(page.raw, False, disp)
    text = page_text(tp, n_chars)
    by_obj = None
    if n_chars > 200 and len(text_objs) > 0.3 * n_chars:
        # glyphs drawn one object each: PDFium finds an object's text by scanning the whole text
        # page, quadratic in the page here; one pass over the characters is linear
        by_obj = _texts_by_object(tp, text, disp, s)
    frames: dict[int, Frame] = {}
    angles: list[int] = []
    for obj, outer in text_objs:
        angle = _text_span(obj, tp, outer, s, fonts, spans, counts, by_obj, frames, w, h)
        if angle is not None:
            angles.append(angle)
    spans, angles = _drop_fill_patterns(spans, angles)
    # all spans in content order, whatever their angle: PDFium's text page holds them that way
    link_spans(spans, text)
    pd = PageData(index, w, h, rot, [], images, n_chars, counts["paths"], counts["rotated"])
    _split_by_angle(pd, spans, angles, frames)
    pd.quality = text_quality(tp, text)
    return pd


#: a font that draws at least this many glyphs on a page, all of at most FILL_MAX_DISTINCT kinds,
#: most of them touching a neighbour on their row, is a fill pattern (a map's park or water set as
#: a lattice of "0" glyphs), not text; a table's column of check marks is spaced apart and stays
FILL_MIN_GLYPHS = 50
FILL_MAX_DISTINCT = 2


def _tiled(spans: list[Span]) -> bool:
    """Most of these glyphs touch the next one on their row (gap under a fifth of an em): a tiling."""
    rows: dict[int, list[Span]] = {}
    for sp in spans:
        rows.setdefault(round(sp.top), []).append(sp)
    touching = 0
    for row in rows.values():
        row.sort(key=lambda sp: sp.x0)
        hit = [False] * len(row)
        for i in range(len(row) - 1):
            if row[i + 1].x0 - row[i].x1 < 0.2 * max(row[i].size, row[i + 1].size, 1e-6):
                hit[i] = hit[i + 1] = True
        touching += sum(hit)
    return touching >= 0.6 * len(spans)


def _drop_fill_patterns(spans: list[Span], angles: list[int]) -> tuple[list[Span], list[int]]:
    """The spans and their angles without those of fonts used only as fill patterns: such glyphs
    sit on the baselines of real labels and break them up ("M00000ar00000iti00000me")."""
    glyphs: dict[str, int] = {}
    kinds: dict[str, set[str]] = {}
    for sp in spans:
        t = sp.text.strip()
        glyphs[sp.font] = glyphs.get(sp.font, 0) + len(t)
        kinds.setdefault(sp.font, set()).update(t.replace(" ", ""))
    fill = {f for f, n in glyphs.items() if n >= FILL_MIN_GLYPHS and len(kinds[f]) <= FILL_MAX_DISTINCT}

    def tiled(font: str) -> bool:
        # spans at one angle share one frame's coordinates: judge the font at its commonest angle
        mine = [(sp, a) for sp, a in zip(spans, angles) if sp.font == font]
        common = max(set(a for _, a in mine), key=[a for _, a in mine].count)
        return _tiled([sp for sp, a in mine if a == common])

    fill = {f for f in fill if tiled(f)}
    if not fill:
        return spans, angles
    keep = [i for i, sp in enumerate(spans) if sp.font not in fill]
    return [spans[i] for i in keep], [angles[i] for i in keep]


#: a group of text at an angle needs this many characters to be kept (a lone rotated digit or
#: arrow glyph is decoration; letters set along a curve each have an angle of their own)
MIN_GROUP_CHARS = 3


def _split_by_angle(pd: PageData, spans: list[Span], angles: list[int], frames: dict[int, "Frame"]) -> None:
    """Upright text goes to ``pd.spans``, other angles to ``pd.groups``, unless most of the
    page's text shares one other angle: then the page is read in that angle's frame."""
    chars: dict[int, int] = {}
    by_angle: dict[int, list[Span]] = {}
    for sp, a in zip(spans, angles):
        if a:
            # PDFium's generated spaces come from glyph gaps measured upright, which splits
            # rotated words letter by letter: the layout measures the gaps in the frame instead
            sp.char0 = sp.char1 = -1
            sp.gap = ""
            sp.text = sp.text.strip()
        by_angle.setdefault(a, []).append(sp)
        chars[a] = chars.get(a, 0) + len(sp.text.strip())
    # ties go to upright text
    main = max(chars, key=lambda a: (chars[a], a == 0)) if chars else 0
    if main != 0:
        pd.frame = frames[main]
        pd.images = [pd.frame.box_to_frame(b) for b in pd.images]
    pd.spans = by_angle.pop(main, [])
    for a in sorted(by_angle, key=lambda a: -chars[a]):
        if chars[a] >= MIN_GROUP_CHARS:
            pd.groups.append(TextGroup(frames[a] if a else make_frame(0, pd.width, pd.height), by_angle[a]))


def page_text(tp, n_chars: int) -> str:
    """All characters of PDFium's text page, its generated spaces and line breaks included;
    index ``i`` of the string is character ``i`` of the page."""
    if n_chars <= 0:
        return ""
    buf = (ctypes.c_ushort * (n_chars + 1))()
    got = pc.FPDFText_GetText(tp, 0, n_chars, buf)
    text = ctypes.string_at(buf, 2 * max(0, got - 1)).decode("utf-16-le", "replace")
    if len(text) != n_chars:  # characters outside the BMP take two UTF-16 units: go char by char
        text = "".join(chr(pc.FPDFText_GetUnicode(tp, i)) for i in range(n_chars))
    return text


def link_spans(spans: list[Span], text: str) -> None:
    """Place each span (a text object, in content order) on PDFium's text page, which holds the
    same characters in the same order with PDFium's word and line breaks between them: each span
    gets the separator PDFium put before it (see :class:`Span`). A span not found in order keeps
    no link, and the layout falls back on the gap between boxes."""
    cur = 0
    for sp in spans:
        t = sp.text.strip()
        if not t:
            continue
        i = text.find(t, cur, cur + len(t) + 64)
        if i < 0:
            continue
        sep = text[cur:i]
        sp.char0, sp.char1 = cur, i + len(t)
        sp.gap = "" if not sep else ("\n" if ("\n" in sep or "\r" in sep) else (" " if sep.isspace() else "?"))
        cur = i + len(t)


#: control characters (but tab, LF, CR), C1 controls, private use, replacement character
JUNK = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd]")


@dataclass
class TextQuality:
    """What the text layer of a page looks like, for telling a garbled layer from a good one."""

    chars: int = 0  # characters other than spaces and line breaks
    junk: int = 0  # see JUNK
    unmapped: int = 0  # characters PDFium could not map to Unicode (of those sampled)
    sampled: int = 0
    words: int = 0  # PDFium's words that hold a letter
    single: int = 0  # of them, single letters other than "a", "A" and "I"


def text_quality(tp, text: str, sample: int = 400) -> TextQuality:
    """Junk characters and word statistics of the page text (words as PDFium breaks them) and, on
    up to ``sample`` characters spread over the page, how many PDFium flags as having no Unicode
    mapping (a font without a ToUnicode map)."""
    idx = [i for i, ch in enumerate(text) if not ch.isspace()]
    q = TextQuality(chars=len(idx), junk=len(JUNK.findall(text)))
    words = [w for w in text.split() if any(c.isalpha() for c in w)]
    q.words = len(words)
    q.single = sum(1 for w in words if len(w) == 1 and w not in "aAI")
    if idx:
        step = max(1, len(idx) // sample)
        for i in idx[::step]:
            q.sampled += 1
            if pc.FPDFText_HasUnicodeMapError(tp, i) == 1:
                q.unmapped += 1
    return q


def _texts_by_object(tp, text: str, disp: Matrix, s: _Scratch) -> dict:
    """Each text object's characters on the text page (as ``FPDFTextObj_GetText`` gives them) and
    the x-extent of their advances (origin to origin plus width, PDFium's loose boxes), from one
    pass over the characters; a generated space goes with the object before it.

    Advances, not ink, because these objects are single glyphs and the gap between two of them
    should measure the letter spacing, not the side bearings of a "1" or an "i"."""
    out: dict = {}
    last = None
    a, _, c, _, e, _ = disp
    for i, ch in enumerate(text):
        obj = pc.FPDFText_GetTextObject(tp, i)
        if not obj:
            if last is not None and ch == " ":
                out[last][0].append(ch)
            continue
        key = ctypes.addressof(obj.contents)
        rec = out.get(key)
        if rec is None:
            rec = out[key] = [[], float("inf"), float("-inf")]
        rec[0].append(ch)
        if not ch.isspace() and pc.FPDFText_GetLooseCharBox(tp, i, s.rect_r):
            r = s.rect
            xa, xb = a * r.left + c * r.bottom + e, a * r.right + c * r.top + e
            rec[1], rec[2] = min(rec[1], xa, xb), max(rec[2], xa, xb)
        last = key
    return {k: ("".join(v[0]), v[1], v[2]) for k, v in out.items()}


def _reads_upright(a: float, b: float, c: float, d: float) -> bool:
    """Text whose matrix in display space (y down) runs along +x, not mirrored either way. The
    vertical axis may lean: a slant of up to ~30 degrees is a synthetic italic (``c`` != 0), still
    read as text on its baseline."""
    return a > 0 and d < 0 and abs(b) <= 0.1 * a and abs(c) <= 0.6 * abs(d)


def _text_span(obj, tp, outer: Matrix, s: _Scratch, fonts: dict, spans: list, counts: dict, by_obj: dict | None,
               frames: dict, page_w: float, page_h: float) -> int | None:
    """Append the object's span and return its text angle in whole degrees (0: upright), or
    return None for no span (no text, or mirrored/skewed text). The span of upright text is in
    displayed-page coordinates; that of text at an angle is in the angle's frame (``frames``)."""
    adv = None
    if by_obj is not None:
        text, adv0, adv1 = by_obj.get(ctypes.addressof(obj.contents), ("", 0.0, 0.0))
        if adv0 < adv1:
            adv = (adv0, adv1)
    else:
        n = pc.FPDFTextObj_GetText(obj, tp, s.buf, s.buf_len * 2)
        if n > s.buf_len * 2:
            s.buf_len = n
            s.buf = (ctypes.c_ushort * s.buf_len)()
            n = pc.FPDFTextObj_GetText(obj, tp, s.buf, s.buf_len * 2)
        if n <= 2:
            return None
        text = ctypes.string_at(s.buf, n - 2).decode("utf-16-le", "replace")
    if not text.strip():
        return None
    if not pc.FPDFPageObj_GetMatrix(obj, s.mat_r):
        return None
    m = s.mat
    a, b, c, d, e, f = mat_mul((m.a, m.b, m.c, m.d, m.e, m.f), outer)
    upright = _reads_upright(a, b, c, d)
    angle = 0
    if not upright:
        if not all(math.isfinite(v) for v in (a, b, c, d, e, f)):
            counts["rotated"] += 1  # a damaged matrix has no angle
            return None
        angle = round(math.degrees(math.atan2(b, a)))
        if angle <= -180:
            angle += 360
        fr = frames.get(angle)
        if fr is None:
            fr = frames[angle] = make_frame(angle, page_w, page_h)
        a, b, c, d, e, f = mat_mul((a, b, c, d, e, f), fr.to_frame)
        # turned upright, it must read like upright text; mirrored or skewed text never does
        if not _reads_upright(a, b, c, d):
            counts["rotated"] += 1
            return None
        if not pc.FPDFPageObj_GetRotatedBounds(obj, s.quad_r):
            return None
        q = s.quad
        whole = mat_mul(outer, fr.to_frame)
        xs, ys = [], []
        for x, y in ((q.x1, q.y1), (q.x2, q.y2), (q.x3, q.y3), (q.x4, q.y4)):
            xs.append(whole[0] * x + whole[2] * y + whole[4])
            ys.append(whole[1] * x + whole[3] * y + whole[5])
        x0, top, x1, bottom = min(xs), min(ys), max(xs), max(ys)
    else:
        if not pc.FPDFPageObj_GetBounds(obj, *s.fr):
            return None
        fl = s.f
        x0, top, x1, bottom = transform_box(outer, fl[0].value, fl[1].value, fl[2].value, fl[3].value)
        if adv is not None:
            x0, x1 = adv
    pc.FPDFTextObj_GetFontSize(obj, s.size_r)
    size = s.size.value * abs(d)
    if size <= 0:
        size = bottom - top
    name, bold = _font_info(pc.FPDFTextObj_GetFont(obj), s, fonts)
    if not bold and pc.FPDFTextObj_GetTextRenderMode(obj) in (pc.FPDF_TEXTRENDERMODE_FILL_STROKE,):
        bold = True  # stroked-and-filled text is the usual synthetic bold
    spans.append(Span(text.replace("\x00", ""), x0, top, x1, bottom, f, size, bold, name))
    return angle


def page_spans_reference(pdf: pdfium.PdfDocument, index: int) -> list[Span]:
    """Plain per-character extraction: chars grouped by their text object, boxes unioned.

    Slow (several ctypes calls per character); kept as the reference :func:`page_data` is
    tested against.
    """
    with PDFIUM_LOCK:
        page = pdf[index]
        textpage = page.get_textpage()
        try:
            disp, _, _, _ = display_matrix(page)
            groups: list[tuple[int, list[str], list[tuple[float, float, float, float]]]] = []
            for i in range(textpage.count_chars()):
                ch = chr(pc.FPDFText_GetUnicode(textpage.raw, i))
                obj = pc.FPDFText_GetTextObject(textpage.raw, i)
                key = ctypes.cast(obj, ctypes.c_void_p).value if obj else None
                if key is None:
                    if groups and ch == " ":
                        groups[-1][1].append(ch)  # generated space belongs to the run before it
                    continue
                if not groups or groups[-1][0] != key:
                    groups.append((key, [], []))
                groups[-1][1].append(ch)
                if not ch.isspace():
                    l, b, r, t = textpage.get_charbox(i)
                    groups[-1][2].append(transform_box(disp, l, b, r, t))
            out = []
            for _, chars, boxes in groups:
                text = "".join(chars)
                if not text.strip() or not boxes:
                    continue
                out.append(
                    Span(
                        text,
                        min(bx[0] for bx in boxes),
                        min(bx[1] for bx in boxes),
                        max(bx[2] for bx in boxes),
                        max(bx[3] for bx in boxes),
                        baseline=0.0,
                        size=0.0,
                    )
                )
            link_spans(out, "".join(chr(pc.FPDFText_GetUnicode(textpage.raw, i)) for i in range(textpage.count_chars())))
            return out
        finally:
            textpage.close()
            page.close()


@dataclass
class OutlineEntry:
    level: int  # 0-based
    title: str
    page: int | None  # 0-based
    y: float | None  # top-left-origin y of the destination, if the bookmark gives one


def outline(pdf: pdfium.PdfDocument) -> list[OutlineEntry]:
    out: list[OutlineEntry] = []
    with PDFIUM_LOCK:
        heights: dict[int, float] = {}
        for bm in pdf.get_toc(max_depth=8):
            title = " ".join(bm.get_title().split())
            dest = bm.get_dest()
            page_i = dest.get_index() if dest is not None else None
            y = None
            if dest is not None and page_i is not None:
                mode, pos = dest.get_view()
                if mode == pc.PDFDEST_VIEW_XYZ and len(pos) >= 2 and pos[1] is not None:
                    if page_i not in heights:
                        pg = pdf[page_i]
                        heights[page_i] = pg.get_cropbox()[3]
                        pg.close()
                    y = heights[page_i] - pos[1]
            out.append(OutlineEntry(bm.level, title, page_i, y))
    return out


def metadata(pdf: pdfium.PdfDocument) -> dict[str, str]:
    with PDFIUM_LOCK:
        try:
            return {k: v for k, v in pdf.get_metadata_dict(skip_empty=True).items()}
        except Exception:  # damaged info dictionaries are common and never fatal
            return {}


def render_page(pdf: pdfium.PdfDocument, index: int, scale: float = 2.0, box=None):
    """The page as a PIL RGB image, ``scale`` pixels per point; with ``box`` (x0, top, x1,
    bottom in points of the displayed page) only that part of it is drawn."""
    with PDFIUM_LOCK:
        page = pdf[index]
        try:
            crop = (0, 0, 0, 0)
            if box is not None:
                w, h = page.get_size()  # PDFium's size is the displayed (rotated) page's
                x0, top, x1, bottom = max(0.0, box[0]), max(0.0, box[1]), min(w, box[2]), min(h, box[3])
                # pypdfium2 crops the rotated bitmap, by points off its left, bottom, right, top
                crop = (x0, max(0.0, h - bottom), max(0.0, w - x1), top)
            bitmap = page.render(scale=scale, crop=crop)
            img = bitmap.to_pil().convert("RGB")
            bitmap.close()
            return img
        finally:
            page.close()
