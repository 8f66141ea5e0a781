"""PDF reader: a PDF file -> :class:`~sleuth.core.Tree` of sections, paragraphs, tables, figures.

Steps: PDFium text objects per page (:mod:`.pdf_extract`), OCR for pages without a text layer
(:mod:`.ocr`), running headers/footers removed, per-page layout (:mod:`.pdf_layout`: lines,
tables, columns, paragraphs), then one pass over the whole document for headings (from the
PDF outline when it has one, else from font size/weight and numbering) and the tree.
"""

from __future__ import annotations

import logging
import re
import statistics
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from ..core import Node, ReaderError, Tree
from . import pdf_extract as px
from .pdf_figures import figure_lines
from .pdf_guard import PdfScan
from .pdf_layout import FIGURE_CAPTION, TABLE_CAPTION, Block, Line, Span, build_lines, layout_page

OCR_MODES = ("auto", "off", "force", "rapid", "paddle", "thorough", "figures")

_NUMBERED = re.compile(r"^(?:(?:chapter|section|part)\s+)?((?:\d{1,2}\.)*\d{1,2})\.?\s+(?=\S)", re.I)
_LETTERED = re.compile(r"^(?:appendix\s+[A-Z]\b|[A-Z](?:\.\d{1,2})+\.?\s)")
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?[-–—]?\s*(\d+|[ivxlcdm]+)\s*[-–—]?\s*(?:(?:of|/)\s*\d+)?\s*$", re.I)
#: a line that opens with an amount (thousands separators, a currency, a percentage)
_QUANTITY = re.compile(r"^\s*(?:[$€£¥]\s?\d|\d{1,3}(?:,\d{3})+\b|\d+(?:\.\d+)?\s?%)")
_BAD_META_TITLE = re.compile(r"^(untitled|\(?anonymous\)?|microsoft word|document\d*|title|\s*)$|\.(docx?|pdf|tex|dvi|indd)\b", re.I)


def read_pdf(path: str | Path, *, ocr: str = "auto", progress: Callable[[int, int], None] | None = None,
             scan: PdfScan | None = None) -> Tree:
    """Read a PDF into a tree; see the module docstring. ``ocr``: ``auto`` (OCR pages without a
    text layer with RapidOCR's fast settings), ``rapid`` (same), ``thorough`` (same with RapidOCR's
    stock settings at 144 dpi: several times slower, the reference for the fast ones),
    ``paddle`` (same with PaddleOCR), ``force`` (OCR every page, ignoring any text layer),
    ``figures`` (``auto``, and the text inside the figure images of pages with a text layer
    too, kept under each figure's caption: :mod:`.pdf_figures`; on the dev PDFs it cost 63% more
    reading time and did not help locate evidence, docs/reader.md) or ``off``.

    ``scan``: what :func:`.pdf_guard.check_pdf_streams` read of the file; with it, a page that
    the page tree lists again (a loop in the tree) is read once. What pypdfium2 logs while the
    file is read becomes the tree's warnings, each naming the file."""
    if ocr not in OCR_MODES:
        raise ValueError(f"ocr must be one of {OCR_MODES}, not {ocr!r}")
    path = Path(path)
    with _pdfium_warnings(path.name) as said:
        pdf = px.open_pdf(path)
        try:
            figures = ocr == "figures"
            tree = _read(pdf, path, "auto" if figures else ocr, progress, figures, scan)
        finally:
            with px.PDFIUM_LOCK:
                pdf.close()
    tree.warnings.extend(said)
    return tree


@contextmanager
def _pdfium_warnings(name: str):
    """pypdfium2 logs what it finds wrong (a loop among the bookmarks) without saying in which
    file: the messages this thread causes are kept, named, for the tree's warnings instead of
    reaching stderr bare. Other threads' messages go on as before."""
    said: list[str] = []
    me = threading.get_ident()

    class Keep(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if record.thread != me:
                return True
            msg = f"{name}: {record.getMessage()}"
            if msg not in said:
                said.append(msg)
            return False

    keep = Keep()
    # a logger's filters see only the records logged on that logger, not its children's
    loggers = [logging.getLogger("pypdfium2")] + [
        logging.getLogger(n) for n in list(logging.root.manager.loggerDict) if n.startswith("pypdfium2.")]
    for lg in loggers:
        lg.addFilter(keep)
    try:
        yield said
    finally:
        for lg in loggers:
            lg.removeFilter(keep)


def _read(pdf, path: Path, ocr: str, progress, figures: bool = False, scan: PdfScan | None = None) -> Tree:
    name = path.name
    with px.PDFIUM_LOCK:
        n_pages = len(pdf)
    # a page tree with a loop lists one page again and again (PDFium returned it 512 times)
    repeats: set[int] = set()
    seen: set[int] = set()
    for i, o in enumerate((scan.page_objects(n_pages) if scan is not None else None) or []):
        if o is not None and o in seen:
            repeats.add(i)
        seen.add(o)
    meta = px.metadata(pdf)
    try:
        toc = px.outline(pdf)
    except Exception:  # a broken outline is not worth failing the file for
        toc = []
    warnings: list[str] = []
    pages: list[px.PageData] = []
    ocr_pages: list[int] = []
    ocr_why: dict[int, str] = {}
    garbled: dict[str, str] = {}
    ocr_failed: str | None = None
    fig_lines: dict[int, dict] = {}  # page → figure box → OCR lines (readers/pdf_figures.py)
    rotated = 0
    unreadable: list[int] = []
    ocr_s = 0.0  # seconds in OCR, told apart from reading in the indexing split
    for i in range(n_pages):
        if i in repeats:
            if progress is not None:
                progress(i + 1, n_pages)
            continue
        try:
            pd = px.page_data(pdf, i)
        except px.pdfium.PdfiumError as e:
            unreadable.append(i + 1)
            if len(unreadable) == 1:
                first_error = str(e)
            pd = px.PageData(i, 612.0, 792.0, 0, [], [], 0, 0)
        rotated += pd.skipped_rotated
        bad = garbled_reason(pd)
        if bad:
            garbled[str(i + 1)] = bad
        why = "asked for (ocr='force')" if ocr == "force" else (bad or _ocr_reason(pd))
        if ocr != "off" and ocr_failed is None and why:
            t_ocr = time.perf_counter()
            try:
                pd.demote_frame()  # OCR boxes are in displayed-page coordinates
                boxes = _ocr_spans(pdf, pd, "paddle" if ocr == "paddle" else "rapid", "thorough" if ocr == "thorough" else "fast")
                if why.startswith(_SPARSE):
                    # a scan under a small text stamp: the stamp stays, OCR adds what is beside it
                    boxes = [b for b in boxes if not any(_overlap(b, t) for t in pd.spans)]
                    pd.spans = pd.spans + boxes
                else:
                    pd.spans = boxes
                    pd.groups = []  # OCR read the whole page, text at angles included
                ocr_pages.append(i + 1)
                ocr_why[i + 1] = why
            except ReaderError as e:
                if ocr == "paddle":  # asked for by name: say so rather than return empty pages
                    raise ReaderError(f"{name}: page {i + 1} needs OCR: {e}") from None
                ocr_failed = str(e)
                warnings.append(f"{name}: OCR skipped: {e}")
            ocr_s += time.perf_counter() - t_ocr
        elif figures and ocr_failed is None and pd.images:
            t_ocr = time.perf_counter()
            try:
                fig_lines[i + 1] = figure_lines(pdf, pd)
            except ReaderError as e:
                ocr_failed = str(e)
                warnings.append(f"{name}: OCR skipped: {e}")
            ocr_s += time.perf_counter() - t_ocr
        if bad and (i + 1) not in ocr_why:
            # left unread by OCR: keep what reads, never the control characters
            for sp in pd.spans + [sp for g in pd.groups for sp in g.spans]:
                sp.text = px.JUNK.sub("", sp.text)
            warnings.append(f"{name}: page {i + 1}: {bad}; not OCR'd")
        pages.append(pd)
        if progress is not None:
            progress(i + 1, n_pages)
    if rotated:
        warnings.append(f"{name}: {rotated} mirrored or skewed text runs skipped")
    if repeats:
        warnings.insert(0, f"{name}: its page tree lists pages again ({len(repeats)} more times: a loop?); "
                           "each page read once")
    if unreadable:
        # A page tree may declare pages that are not there (/Count 100000 over one page): the
        # count recorded is up to the last page that loads, and the failures are one warning.
        declared = n_pages
        while pages and pages[-1].index + 1 in unreadable[-1:]:
            pages.pop()
            unreadable.pop()
        n_pages = len(pages)
        if n_pages == 0:
            raise ReaderError(f"{name}: none of its {declared} pages can be read ({first_error})")
        if declared > n_pages:
            warnings.insert(0, f"{name}: declares {declared} pages, only {n_pages} exist")
        if unreadable:
            warnings.insert(0, f"{name}: {len(unreadable)} unreadable page(s): {_page_list(unreadable)} ({first_error})")

    if repeats:
        n_pages = len(pages)
    page_lines = [build_lines(pd.spans) for pd in pages]
    group_lines = [[build_lines(g.spans) for g in pd.groups] for pd in pages]
    # running heads are looked for in a page's main text and, on a page drawn turned, in its
    # upright text too (a landscape table under the document's ordinary header)
    drop = _running_lines([
        [(lines, pd.layout_size[1])] + [(gl, pd.height) for g, gl in zip(pd.groups, gls) if g.frame.angle == 0]
        for pd, lines, gls in zip(pages, page_lines, group_lines)
    ])
    blocks: list[Block] = []
    for pd, lines, gls in zip(pages, page_lines, group_lines):
        blocks.extend(_page_blocks(pd, lines, gls, drop))
    for b in blocks:
        if b.page in ocr_why and b.meta.get("ocr"):
            b.meta["ocr_reason"] = ocr_why[b.page]
        if b.kind == "figure" and fig_lines.get(b.page):
            found = fig_lines[b.page].get(tuple(b.meta.get("image_bbox") or ()))
            if found:
                b.text = "\n".join(([b.caption] if b.caption else []) + found)
                b.meta["figure_ocr"] = len(found)
        _scrub(b)

    ocr_set = set(ocr_pages)
    body = _body_size([b for b in blocks if b.page not in ocr_set])
    body_ocr = _body_size([b for b in blocks if b.page in ocr_set])
    title_block = _find_title(blocks, body, ocr_set)
    use_outline = len([e for e in toc if e.page is not None]) >= 2
    if use_outline:
        blocks = _headings_from_outline(blocks, toc)
    else:
        _headings_from_layout(blocks, body, body_ocr, ocr_set, title_block)
    if title_block is not None and title_block.role != "heading":
        title_block.role = "title"

    title, title_source = _doc_title(meta, title_block, path)
    root_meta = {
        "pages": n_pages,
        "title_source": title_source,
        "outline": use_outline,
        "ocr_pages": ocr_pages,
        "page_sizes": _page_sizes(pages),
    }
    if garbled:
        root_meta["garbled_pages"] = garbled
    for k in ("Author", "Subject", "Keywords", "CreationDate"):
        if meta.get(k):
            root_meta[k.lower()] = meta[k]
    root = Node("document", title=title, page=1, meta=root_meta)
    text = _build_tree(root, blocks)
    root.char_start, root.char_end = 0, len(text)
    return Tree(root=root, text=text, warnings=warnings, timings={"ocr": ocr_s})


# ----------------------------------------------------------------------------- OCR


#: a page's text layer is garbled when more of its characters than this are junk (control,
#: private-use) or more of its glyphs than this have no Unicode mapping
GARBLED_JUNK = 0.05
GARBLED_UNMAPPED = 0.3
_SPARSE = "text layer covers"


def garbled_reason(pd: px.PageData) -> str:
    """Why the page's text layer cannot be read as it is, or "" when it can."""
    q = pd.quality
    if q is None or q.chars < 20:
        return ""
    if q.junk > GARBLED_JUNK * q.chars:
        return f"text layer garbled: {100 * q.junk / q.chars:.0f}% control or private-use characters"
    if q.sampled and q.unmapped > GARBLED_UNMAPPED * q.sampled:
        return f"text layer garbled: {100 * q.unmapped / q.sampled:.0f}% of glyphs without a Unicode mapping"
    # implausible words: ordinary text has few one-letter words ("a", "I"); text whose letters
    # come out one by one (spacing PDFium could not make sense of) has mostly those, and of
    # every letter
    if q.words >= 40 and q.single > 0.3 * q.words:
        # PDFium's words are checked first because that is free; the words the layout joins
        # (which also read the line's own letter spacing) decide
        words = [w for ln in build_lines(pd.spans) for w in ln.text.split() if any(c.isalpha() for c in w)]
        singles = [w for w in words if len(w) == 1 and w not in "aAI"]
        # many different letters: a table of S/O/P marks has many single letters, but few kinds
        if len(words) >= 40 and len(singles) > 0.3 * len(words) and len({w.lower() for w in singles}) >= 10:
            return f"text layer garbled: {100 * len(singles) / len(words):.0f}% of words are single letters"
        # or joined into runs far longer than words: no spacing tells the words apart
        letters = sum(len(w) for w in words)
        if words and letters >= 200 and statistics.median(len(w) for w in words) > 15:
            return f"text layer garbled: letters run together (median word {statistics.median(len(w) for w in words):.0f} characters)"
    return ""


def _ocr_reason(pd: px.PageData) -> str:
    """Why the page should be OCR'd although its text layer reads fine, or "" when it should not."""
    n_text = sum(len(s.text.strip()) for s in pd.spans)
    w, h = pd.layout_size
    area = w * h or 1.0
    img_area = sum(max(0.0, (b[2] - b[0]) * (b[3] - b[1])) for b in pd.images)
    if n_text < 20:
        # scans are one big image; text converted to outlines shows up as many vector paths
        if img_area >= 0.1 * area:
            return "no text layer over an image"
        if pd.n_paths >= 200:
            return "no text layer (text drawn as vector paths)"
        return ""
    # a scanned page with a small text stamp (a court filing header, a page number) reads as a
    # page with a text layer; its text covers a sliver of a page that is one big image
    text_area = sum(max(0.0, (s.x1 - s.x0) * (s.bottom - s.top)) for s in pd.spans)
    if max((b[2] - b[0]) * (b[3] - b[1]) for b in pd.images or [(0, 0, 0, 0)]) >= 0.5 * area and text_area < 0.02 * area:
        return f"{_SPARSE} {100 * text_area / area:.1f}% of a page that is one big image"
    return ""


def _page_blocks(pd: px.PageData, lines: list[Line], group_lines: list[list[Line]], drop: set[int]) -> list[Block]:
    """The page's blocks in displayed-page coordinates: its main text laid out in its frame,
    then each group of text at another angle laid out in its own (a map's street labels, a
    chart's vertical axis title), each block marked with its ``text_angle``."""
    w, h = pd.layout_size
    out = layout_page([], pd.index + 1, w, h, pd.images, drop, lines=lines)
    if pd.frame is not None:
        for b in out:
            _to_display(b, pd.frame)
    for g, gl in zip(pd.groups, group_lines):
        for b in layout_page([], pd.index + 1, g.frame.width, g.frame.height, drop=drop, lines=gl):
            _to_display(b, g.frame)
            b.meta["text_angle"] = g.frame.angle
            out.append(b)
    return out


def _to_display(b: Block, frame: px.Frame) -> None:
    if frame.angle == 0:
        return
    b.bbox = frame.box_to_display(b.bbox)
    b.row_boxes = [frame.box_to_display(r) for r in b.row_boxes]
    for k in ("table_bbox", "image_bbox"):
        if k in b.meta:
            b.meta[k] = frame.box_to_display(b.meta[k])
    for ln in b.lines:
        ln.x0, ln.top, ln.x1, ln.bottom = frame.box_to_display(ln.bbox)


def _overlap(a: Span, b: Span) -> bool:
    ix = min(a.x1, b.x1) - max(a.x0, b.x0)
    iy = min(a.bottom, b.bottom) - max(a.top, b.top)
    return ix > 0 and iy > 0.3 * min(a.bottom - a.top, b.bottom - b.top)


def _scrub(b: Block) -> None:
    """No control or private-use characters reach the index (PDFium marks a line-end hyphen with
    0x02; the layout has used it by now)."""
    b.text = px.JUNK.sub("", b.text)
    if b.caption:
        b.caption = px.JUNK.sub("", b.caption)
        b.meta["caption"] = b.caption
    b.rows = [[px.JUNK.sub("", c) for c in r] for r in b.rows]


def _ocr_spans(pdf, pd: px.PageData, backend: str, mode: str) -> list[Span]:
    from .ocr import ocr_page

    boxes = ocr_page(lambda scale: px.render_page(pdf, pd.index, scale=scale), pd.width, pd.height, backend=backend, mode=mode)
    spans = []
    for b in boxes:
        size, baseline = _ocr_size(b.text, b.top, b.bottom)
        spans.append(Span(b.text, b.x0, b.top, b.x1, b.bottom, baseline, size, False, "", b.score))
    return spans


_DESCENDERS = set("gjpqy,;()[]{}|")


def _ocr_size(text: str, top: float, bottom: float) -> tuple[float, float]:
    """Font size and baseline of an OCR line from its box.

    Detector boxes hug the ink plus a few points of padding, and the ink of a line without
    descenders (e.g. an all-caps heading) is only ~0.73 em tall against ~0.94 em with them; without
    this correction a capitalised heading would measure smaller than the body text under it.
    """
    h = bottom - top
    pad = min(4.5, 0.5 * h)
    desc = any(c in _DESCENDERS for c in text)
    em = (h - pad) / (0.94 if desc else 0.73)
    baseline = bottom - pad / 2 - (0.21 * em if desc else 0.0)
    return em, baseline


# ----------------------------------------------------------------------------- running heads


def _norm_running(text: str) -> str:
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def _running_lines(pages: list[list[tuple[list[Line], float]]]) -> set[int]:
    """Ids of lines that are page headers/footers: in the top/bottom margin and repeated across
    pages (digits ignored), or bare page numbers there. Per page: sets of lines, each with the
    height of the frame its lines are in."""
    zone: list[tuple[int, Line, str]] = []
    for pi, sets in enumerate(pages):
        for lines, height in sets:
            for ln in lines:
                if ln.bottom <= 0.09 * height or ln.top >= 0.91 * height:
                    where = "top" if ln.bottom <= 0.09 * height else "bottom"
                    zone.append((pi, ln, where + ":" + _norm_running(ln.text)))
    pages_per_key: dict[str, set[int]] = {}
    for pi, _, key in zone:
        pages_per_key.setdefault(key, set()).add(pi)
    n = len(pages)
    need = max(2, int(0.3 * n + 0.5))
    drop: set[int] = set()
    for pi, ln, key in zone:
        if (n >= 3 and len(pages_per_key[key]) >= need) or _PAGE_NUMBER.match(ln.text):
            drop.add(id(ln))
    return drop


# ----------------------------------------------------------------------------- headings


def _size_key(size: float) -> float:
    return round(size * 2) / 2


def _body_size(blocks: list[Block]) -> float:
    c: Counter[float] = Counter()
    for b in blocks:
        if b.kind != "paragraph":
            continue
        for ln in b.lines:
            c[_size_key(ln.size)] += len(ln.text)
    return c.most_common(1)[0][0] if c else 10.0


def _numbering_depth(text: str) -> int:
    m = _NUMBERED.match(text)
    if m:
        return m.group(1).count(".") + 1
    m = _LETTERED.match(text)
    if m:
        return 1 + m.group(0).count(".") if not m.group(0).lower().startswith("appendix") else 1
    return 0


def _is_heading_candidate(b: Block, body: float, is_ocr: bool) -> bool:
    if b.kind != "paragraph" or not b.lines or len(b.lines) > 3:
        return False
    if b.meta.get("text_angle"):
        return False  # labels set at an angle beside the page's text (a map's, a chart's)
    t = b.text.strip()
    words = t.split()
    if len(t) < 2 or len(t) > 160 or len(words) > 18:
        return False
    if sum(ch.isalpha() for ch in t) < 2:
        return False
    if TABLE_CAPTION.match(t) or FIGURE_CAPTION.match(t) or _PAGE_NUMBER.match(t):
        return False
    if t[-1] in ",;" or (t[-1] == "." and len(words) > 6):
        return False
    if not (t[0].isupper() or t[0].isdigit()):
        return False
    if _QUANTITY.match(t) or (t[0].isdigit() and t[-1] in ".!?" and not _numbering_depth(t)):
        return False  # "2,000 times." or "85% of users": a figure from a slide or a sentence, not a title
    if is_ocr:
        return b.size >= 1.25 * body
    bigger = b.size >= body + max(0.9, 0.1 * body)
    bold = b.bold and b.size >= body - 0.6
    return bigger or bold


def _find_title(blocks: list[Block], body: float, ocr_set: set[int]) -> Block | None:
    if not blocks:
        return None
    first_page = blocks[0].page
    early = [b for b in blocks if b.page == first_page and b.kind == "paragraph" and b.page not in ocr_set]
    cands = [b for b in early if _is_heading_candidate(b, body, False) and not _numbering_depth(b.text)]
    if not cands:
        return None
    top = max(cands, key=lambda b: b.size)
    if top.size < 1.25 * body:
        return None
    others = [b.size for b in blocks if b is not top and b.kind == "paragraph" and b.lines and len(b.lines) <= 3]
    if others and max(others) >= top.size - 0.25:
        return None  # the biggest style is shared: a heading level, not a title
    # the title precedes any numbered heading on its page
    idx = blocks.index(top)
    if any(_numbering_depth(b.text) and _is_heading_candidate(b, body, False) for b in blocks[:idx]):
        return None
    return top


def _headings_from_layout(blocks, body, body_ocr, ocr_set, title_block) -> None:
    cands = [
        b
        for b in blocks
        if b is not title_block
        and _is_heading_candidate(b, body_ocr if b.page in ocr_set else body, b.page in ocr_set)
    ]
    if not cands:
        return
    # a candidate directly followed by another of the same style is a list of bold items, not a heading
    pos = {id(b): i for i, b in enumerate(blocks)}
    keep = []
    for b in cands:
        i = pos[id(b)]
        if i + 1 >= len(blocks):
            continue
        keep.append(b)
    styles: dict[tuple[float, bool], list[int]] = {}
    for b in keep:
        styles.setdefault((_size_key(b.size), b.bold), []).append(_numbering_depth(b.text))
    depth_of: dict[tuple[float, bool], int] = {}
    for key, depths in styles.items():
        numbered = [d for d in depths if d]
        if numbered and len(numbered) >= 0.5 * len(depths):
            depth_of[key] = Counter(numbered).most_common(1)[0][0]
    order = sorted(styles, key=lambda k: (-k[0], not k[1]))
    level_of: dict[tuple[float, bool], int] = {}
    for key in order:
        if key in depth_of:
            level_of[key] = depth_of[key]
            continue
        above = [
            level_of[k] for k in order if k in level_of and (k[0] > key[0] + 0.25 or (k[0] >= key[0] - 0.25 and k[1] and not key[1]))
        ]
        level_of[key] = 1 + max(above, default=0)
    for b in keep:
        d = _numbering_depth(b.text)
        key = (_size_key(b.size), b.bold)
        b.role = "heading"
        b.heading_level = d if (d and key in depth_of) else level_of[key]


def _norm_title(t: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", t.lower())


def _headings_from_outline(blocks: list[Block], toc: list[px.OutlineEntry]) -> list[Block]:
    """Mark the blocks the bookmarks point at as headings; a bookmark whose text is not on its
    page opens a section at its destination without a heading line of its own."""
    out = list(blocks)
    inserts: list[tuple[int, Block]] = []
    last = 0
    for e in toc:
        if e.page is None:
            continue
        page = e.page + 1
        want = _norm_title(e.title)
        best_i, best_score = -1, 0.0
        for i, b in enumerate(out):
            if b.page != page or b.kind != "paragraph" or b.role == "heading" or len(b.lines) > 4:
                continue
            have = _norm_title(b.text)
            if not want or not have:
                continue
            if have == want:
                score = 3.0
            elif have.endswith(want) and len(have) - len(want) <= 8:
                score = 2.5  # block carries numbering the bookmark lacks
            elif have.startswith(want) and len(have) <= 1.5 * len(want) + 10:
                score = 2.0
            elif want.endswith(have) and len(have) >= 0.5 * len(want):
                score = 1.5
            else:
                continue
            if i < last:
                score -= 1.0  # prefer matches in reading order
            if e.y is not None:
                score -= min(1.0, abs(b.bbox[1] - e.y) / 400.0)
            if score > best_score:
                best_i, best_score = i, score
        if best_i >= 0:
            b = out[best_i]
            b.role = "heading"
            b.heading_level = e.level + 1
            if len(_norm_title(b.text)) < len(want):
                b.meta["outline_title"] = e.title
            last = best_i
            continue
        # no heading line: open the section at the destination
        at = None
        for i, b in enumerate(out):
            if b.page == page and (e.y is None or b.bbox[3] >= e.y - 2):
                at = i
                break
            if b.page > page:
                at = i
                break
        if at is None:
            at = len(out)
        synth = Block(kind="paragraph", page=page, bbox=(0.0, e.y or 0.0, 0.0, e.y or 0.0), text="")
        synth.role, synth.heading_level = "heading", e.level + 1
        synth.meta = {"outline_title": e.title, "synthetic": True}
        inserts.append((at, synth))
    for at, synth in sorted(inserts, key=lambda p: p[0], reverse=True):
        out.insert(at, synth)
    return out


def _doc_title(meta: dict, title_block: Block | None, path: Path) -> tuple[str, str]:
    t = " ".join((meta.get("Title") or "").split())
    if t and not _BAD_META_TITLE.search(t) and len(t) > 3:
        return t, "metadata"
    if title_block is not None:
        return title_block.text, "layout"
    return path.stem, "filename"


def _page_list(pages: list[int], limit: int = 8) -> str:
    shown = ", ".join(map(str, pages[:limit]))
    return shown + (f" and {len(pages) - limit} more" if len(pages) > limit else "")


def _page_sizes(pages: list[px.PageData]) -> list[list[float]]:
    sizes = [[round(p.width, 2), round(p.height, 2)] for p in pages]
    # most documents have one page size; keep the list short then
    return sizes if len({tuple(s) for s in sizes}) > 1 else sizes[:1]


# ----------------------------------------------------------------------------- tree


def _build_tree(root: Node, blocks: list[Block]) -> str:
    parts: list[str] = []
    pos = 0

    def emit(s: str) -> tuple[int, int]:
        nonlocal pos
        if parts:
            parts.append("\n\n")
            pos += 2
        start = pos
        parts.append(s)
        pos += len(s)
        return start, pos

    stack: list[tuple[int, Node]] = [(0, root)]
    sections: list[Node] = []
    for b in blocks:
        if b.role == "heading":
            while len(stack) > 1 and stack[-1][0] >= b.heading_level:
                stack.pop()
            synthetic = bool(b.meta.get("synthetic"))
            if synthetic:
                title = b.meta.get("outline_title", "")
                cs = ce = pos + (2 if parts else 0)
                bbox = None
            else:
                title = b.text if not b.meta.get("outline_title") else b.meta["outline_title"]
                cs, ce = emit(b.text)
                bbox = _round_box(b.bbox)
            node = Node(
                "section",
                title=title,
                page=b.page,
                bbox=bbox,
                char_start=cs,
                char_end=ce,
                meta={"level": len(stack), "page_end": b.page},
            )
            stack[-1][1].add(node)
            stack.append((b.heading_level, node))
            sections.append(node)
            continue
        if b.kind == "figure" and not b.text:
            cs = ce = pos
            node = Node("figure", title="", text="", page=b.page, bbox=_round_box(b.bbox), char_start=cs, char_end=ce, meta=dict(b.meta))
        else:
            cs, ce = emit(b.text)
            meta = dict(b.meta)
            if b.role == "title":
                meta["role"] = "title"
            node = Node(
                b.kind,
                title=b.caption,
                text=b.text,
                page=b.page,
                bbox=_round_box(b.bbox),
                char_start=cs,
                char_end=ce,
                meta=meta,
            )
            if b.kind == "table":
                node.meta["table_bbox"] = _round_box(b.meta["table_bbox"])
                _add_rows(node, b, cs)
            if b.kind == "figure":
                node.meta["image_bbox"] = _round_box(b.meta["image_bbox"])
        stack[-1][1].add(node)
        for _, sec in stack[1:]:
            sec.char_end = max(sec.char_end or 0, ce)
            sec.meta["page_end"] = max(sec.meta["page_end"], b.page)
    return "".join(parts)


def _add_rows(table: Node, b: Block, cs: int) -> None:
    """Each body row of a table as a child node of kind ``row``: its text names every cell by its
    column label ("Method: Step-Back | Accuracy: 73.2%") so the row can be found, read and
    quoted on its own, the table's caption is its title, and its char span is the row as printed
    inside the table's text (the table node keeps the whole table)."""
    header = b.meta.get("header")
    pos = cs + (len(b.caption) + 1 if b.caption else 0)
    for k, cells in enumerate(b.rows):
        line = " | ".join(cells)
        start, pos = pos, pos + len(line) + 1
        if (k == 0 and header is not None) or not any(c.strip() for c in cells):
            continue
        if header is not None:
            keyed = " | ".join(f"{h}: {c}" if h.strip() and c.strip() else c for h, c in zip(header, cells) if c.strip())
        else:
            keyed = " | ".join(c for c in cells if c.strip())
        box = b.row_boxes[k] if k < len(b.row_boxes) else b.bbox
        table.add(Node("row", title=b.caption, text=keyed, page=b.page, bbox=_round_box(box), char_start=start,
                       char_end=start + len(line),
                       meta={"row": k + 1, "cells": list(cells), "header": list(header) if header else None}))


def _round_box(b) -> tuple[float, float, float, float]:
    return (round(b[0], 2), round(b[1], 2), round(b[2], 2), round(b[3], 2))


__all__ = ["read_pdf", "OCR_MODES"]
