"""Page layout analysis for PDF text: spans -> lines -> tables, columns, paragraphs.

Pure Python over plain records, independent of PDFium, so OCR output and text-layer output go
through the same steps and tests can feed hand-made spans. Coordinates are PDF points with the
origin at the page's top-left corner (y grows downwards).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import Any

BBox = tuple[float, float, float, float]

#: the start of a table or figure caption ("Table 3", "Fig. iv"); readers/pdf.py uses them too
TABLE_CAPTION = re.compile(r"^\s*(table|tab\.)\s*([0-9]+|[ivxlc]+|[a-z])\b", re.I)
FIGURE_CAPTION = re.compile(r"^\s*(figure|fig\.)\s*([0-9]+|[ivxlc]+|[a-z])\b", re.I)
_BULLET = re.compile(r"^\s*([•◦▪‣\-–—*]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s")
_MONO = re.compile(r"mono|courier|consol|code|menlo|typewriter|[A-Z]*TT\d|tt\d", re.I)
_SENTENCE_END = re.compile(r"[.!?:;\"”’)\]]\s*$")


@dataclass(slots=True)
class Span:
    """A run of text drawn with one font on one baseline (a PDF text object or an OCR box)."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    baseline: float
    size: float
    bold: bool = False
    font: str = ""
    score: float | None = None  # OCR confidence; None for a text layer
    # PDFium text-page indexes (-1: not from a text page): where the separator before the span
    # starts (the end of the run before it) and one past the span's last character, so spans that
    # follow each other keep PDFium's own word boundary between them
    char0: int = -1
    char1: int = -1
    gap: str = ""  # PDFium's separator before the span: "" (none), " " (spaces), "\n" (a line break), "?" (other text)


@dataclass(slots=True)
class Line:
    """Spans on one baseline with no wide gap between them (a column gap or table cell gap splits)."""

    spans: list[Span]
    x0: float
    top: float
    x1: float
    bottom: float
    baseline: float
    size: float
    bold: bool
    text: str
    row: int = -1  # lines sharing a row id sit side by side on the page
    mono: bool = False  # set in a monospaced font (code), which never shares a paragraph with prose

    @property
    def bbox(self) -> BBox:
        return (self.x0, self.top, self.x1, self.bottom)


@dataclass
class Block:
    """A laid-out unit of a page in reading order: paragraph, table or figure."""

    kind: str  # "paragraph" | "table" | "figure"
    page: int
    bbox: BBox
    text: str
    lines: list[Line] = field(default_factory=list)
    size: float = 0.0
    bold: bool = False
    caption: str = ""
    rows: list[list[str]] = field(default_factory=list)
    row_boxes: list[BBox] = field(default_factory=list)  # a table's rows, as drawn
    meta: dict[str, Any] = field(default_factory=dict)
    # filled by document-level analysis
    heading_level: int = 0
    role: str = ""  # "", "heading", "title"


def union(boxes: list[BBox]) -> BBox:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


# ----------------------------------------------------------------------------- lines


def join_spans(spans: list[Span]) -> str:
    """Concatenate spans left to right. Spans that follow each other on PDFium's text page keep
    PDFium's word boundary (its real and generated spaces, which know the font's spacing); others
    (OCR lines, spans out of stream order) and lines drawn glyph by glyph get a space where the
    gap between them is word-sized: wider than 0.12 em beyond the line's own letter spacing
    (see :func:`_tracking`)."""
    out: list[str] = []
    prev: Span | None = None
    tracking = _tracking(spans)
    for s in spans:
        # on a glyph-by-glyph line the spaces PDFium generated into a glyph's text go too
        t = s.text if tracking is None else s.text.strip()
        if prev is not None and t:
            gap = s.x0 - prev.x1
            em = max(s.size, prev.size)
            if tracking is None and prev.char1 >= 0 and s.char0 == prev.char1 and s.gap in ("", " ") and gap < 0.6 * em:
                space = s.gap == " "
            else:
                # tight map lettering overlaps its glyph boxes (negative tracking): the word gap is
                # then measured from that overlap, but never below a twentieth of an em
                space = gap > max(0.12 * em + (tracking or 0.0), 0.05 * em)
            if space and out and not out[-1][-1:].isspace() and not t[:1].isspace():
                out.append(" ")
        if t:
            out.append(t)
        prev = s
    return " ".join("".join(out).split())


def _tracking(spans: list[Span]) -> float | None:
    """Letter spacing of a line drawn glyph by glyph (five or more spans, most a single glyph:
    a street name on a map is such a line): the gap at the 30th percentile, since four in five
    gaps fall inside words; negative where the glyphs' boxes overlap. None for other lines.

    PDFium's generated spaces are no guide on such lines: with a tenth of an em of tracking it
    already puts spaces around narrow glyphs ("Membersh i p"), as it breaks lines between glyphs
    drawn in separate text blocks."""
    if len(spans) < 5 or sum(1 for s in spans if len(s.text.strip()) == 1 and s.text == s.text.strip()) < 0.6 * len(spans):
        return None  # spans that carry their own spaces ("ed ") are runs split at a kern, not glyphs
    gaps = sorted(b.x0 - a.x1 for a, b in zip(spans, spans[1:]))
    return gaps[int(0.3 * len(gaps))]


def _make_line(spans: list[Span], row: int) -> Line:
    n_chars = [max(1, len(s.text.strip())) for s in spans]
    total = sum(n_chars)
    # the dominant span decides size and baseline, so a superscript does not shift the line
    main = max(range(len(spans)), key=lambda i: (n_chars[i] * spans[i].size))
    bold_chars = sum(n for n, s in zip(n_chars, spans) if s.bold)
    return Line(
        spans=spans,
        x0=min(s.x0 for s in spans),
        top=min(s.top for s in spans),
        x1=max(s.x1 for s in spans),
        bottom=max(s.bottom for s in spans),
        baseline=spans[main].baseline,
        size=spans[main].size,
        bold=bold_chars >= 0.9 * total,
        text=join_spans(spans),
        row=row,
        mono=sum(n for n, s in zip(n_chars, spans) if _MONO.search(s.font)) >= 0.9 * total,
    )


def build_lines(spans: list[Span], split_gap: float = 1.0) -> list[Line]:
    """Group spans into rows by vertical overlap, then cut rows at gaps wider than ``split_gap`` em."""
    spans = [s for s in spans if s.text.strip()]
    spans.sort(key=lambda s: (s.baseline, s.x0))
    rows: list[list[Span]] = []
    anchors: list[tuple[float, float, float, float]] = []
    for s in spans:
        h = max(s.bottom - s.top, 0.1)
        best, best_key = -1, None
        # a span can only belong to one of the last few rows because spans come sorted by baseline
        for k in range(len(rows) - 1, max(-1, len(rows) - 4), -1):
            a_top, a_bot, a_base, a_size = anchors[k]
            ov = min(a_bot, s.bottom) - max(a_top, s.top)
            # glyphs drawn one by one have boxes as small as their ink (a comma, a descender):
            # on the row's baseline in the row's size they belong to it whatever their overlap
            same_base = abs(s.baseline - a_base) <= 0.1 * a_size and abs(s.size - a_size) <= 0.2 * a_size
            if not same_base:
                # or on the baseline, in the size, of the glyph before it in this row (the row may
                # have begun with a glyph of another size)
                q = rows[k][-1]
                same_base = abs(s.baseline - q.baseline) <= 0.1 * q.size and abs(s.size - q.size) <= 0.2 * max(q.size, 0.1)
            share = ov / max(min(h, a_bot - a_top), 0.1)
            if share >= 0.5 or same_base:
                # where rows of several sizes share a baseline (labels on a map), the row in the
                # span's own size wins over a bigger one it merely overlaps
                key = (same_base, share)
                if best_key is None or key > best_key:
                    best, best_key = k, key
                    if same_base and share >= 1.0:
                        break  # no row can fit better
        if best >= 0:
            rows[best].append(s)
        else:
            rows.append([s])
            anchors.append((s.top, s.bottom, s.baseline, max(s.size, 0.1)))
    lines: list[Line] = []
    for r, row in enumerate(rows):
        row.sort(key=lambda s: s.x0)
        cur: list[Span] = [row[0]]
        right = row[0].x1  # of the spans in cur
        for s in row[1:]:
            p = cur[-1]
            if (
                abs(s.x0 - p.x0) < 0.5
                and abs(s.top - p.top) < 0.5
                and s.text == p.text
            ):
                continue  # the same text drawn twice (fake bold, shadows)
            gap = s.x0 - right
            if gap > split_gap * max(s.size, p.size):
                lines.append(_make_line(cur, r))
                cur = [s]
                right = s.x1
            else:
                cur.append(s)
                right = max(right, s.x1)
        lines.append(_make_line(cur, r))
    lines.sort(key=lambda ln: (ln.top, ln.x0))
    return lines


# ----------------------------------------------------------------------------- tables


def _rows_of(lines: list[Line]) -> list[list[Line]]:
    by_row: dict[int, list[Line]] = {}
    for ln in lines:
        by_row.setdefault(ln.row, []).append(ln)
    rows = [sorted(v, key=lambda ln: ln.x0) for v in by_row.values()]
    rows.sort(key=lambda r: min(ln.top for ln in r))
    return rows


def _match_row(row: list[Line], cols: list[list[float]]) -> list[int] | None:
    """Column index of each cell of ``row``, or None when a cell straddles columns or two share one."""
    out: list[int] = []
    for ln in row:
        hit = [i for i, (a, b) in enumerate(cols) if min(b, ln.x1) - max(a, ln.x0) > -2.0]
        if len(hit) > 1:
            return None
        if hit:
            if hit[0] in out:
                return None
            out.append(hit[0])
        else:
            out.append(-1)  # a new column
    return out


def find_tables(lines: list[Line], page: int) -> tuple[list[Block], list[Line]]:
    """Detect tables as runs of rows whose cells keep consistent x-positions.

    Returns the table blocks and the lines that are not part of any table (captions included
    in a table are removed too).
    """
    if not lines:
        return [], lines
    # long prose lines are never table cells; leaving them out keeps a table in one column of
    # a two-column page from absorbing the prose beside it
    text_w = max(ln.x1 for ln in lines) - min(ln.x0 for ln in lines)
    cell_like = [ln for ln in lines if (ln.x1 - ln.x0) < 0.3 * text_w or len(ln.text) <= 16]
    rows = _rows_of(cell_like)
    used: set[int] = set()
    tables: list[Block] = []
    i = 0
    while i < len(rows):
        if len(rows[i]) < 2:
            i += 1
            continue
        cols = [[ln.x0, ln.x1] for ln in rows[i]]
        members = [rows[i]]
        size = statistics.median(ln.size for ln in rows[i])
        j = i + 1
        while j < len(rows):
            r = rows[j]
            prev_bottom = max(ln.bottom for ln in members[-1])
            if min(ln.top for ln in r) - prev_bottom > 1.6 * size:
                break
            m = _match_row(r, cols)
            if m is None:
                break
            if len(r) == 1 and (m[0] == -1 or len(cols) < 2):
                break
            for ln, c in zip(r, m):
                if c == -1:
                    cols.append([ln.x0, ln.x1])
                else:
                    cols[c][0] = min(cols[c][0], ln.x0)
                    cols[c][1] = max(cols[c][1], ln.x1)
            cols.sort()
            members.append(r)
            j += 1
        while len(members) > 1 and len(members[-1]) < 2:
            members.pop()
            j -= 1
        blk = _table_block(members, cols, lines, used, page)
        if blk is not None:
            tables.append(blk)
            i = j
        else:
            i += 1
    rest = [ln for ln in lines if id(ln) not in used]
    return tables, rest


def _table_block(members, cols, lines, used, page) -> Block | None:
    # a column with a single cell is a stray line beside the table (e.g. the end of a paragraph
    # in the next page column), not part of it
    def col_of(ln):
        return max(range(len(cols)), key=lambda k: min(cols[k][1], ln.x1) - max(cols[k][0], ln.x0))

    hits = [0] * len(cols)
    for r in members:
        for ln in r:
            hits[col_of(ln)] += 1
    keep = [k for k in range(len(cols)) if hits[k] >= 2]
    if len(keep) < len(cols):
        kept = {k for k in keep}
        members = [[ln for ln in r if col_of(ln) in kept] for r in members]
        cols = [cols[k] for k in keep]
        members = [r for r in members if r]
        while members and len(members[0]) < 2:
            members.pop(0)
        while members and len(members[-1]) < 2:
            members.pop()
    n_rows, n_cols = len(members), len(cols)
    if n_rows < 2 or n_cols < 2:
        return None
    cells = [ln for r in members for ln in r]
    med_len = statistics.median(len(ln.text) for ln in cells)
    bbox = union([ln.bbox for ln in cells])
    size = statistics.median(ln.size for ln in cells)
    cap_lines = _find_caption(lines, bbox, size, TABLE_CAPTION, exclude={id(c) for c in cells})
    # side-by-side prose columns also line up row by row; long cells without a caption are prose
    if med_len > 30 and not cap_lines:
        return None
    if not cap_lines and (n_rows < 3 or (n_cols < 3 and med_len > 20)):
        return None
    grid: list[list[str]] = []
    row_boxes: list[BBox] = []
    for r in members:
        cells_row = [""] * n_cols
        for ln in r:
            c = max(range(n_cols), key=lambda k: min(cols[k][1], ln.x1) - max(cols[k][0], ln.x0))
            cells_row[c] = (cells_row[c] + " " + ln.text.replace("\x02", "-")).strip()
        grid.append(cells_row)
        row_boxes.append(union([ln.bbox for ln in r]))
    for ln in cells:
        used.add(id(ln))
    caption = ""
    if cap_lines:
        for ln in cap_lines:
            used.add(id(ln))
        caption = _dehyphen_join([ln.text for ln in cap_lines])
    body = "\n".join(" | ".join(r) for r in grid)
    text = f"{caption}\n{body}" if caption else body
    all_boxes = [ln.bbox for ln in cells] + [ln.bbox for ln in cap_lines]
    return Block(
        kind="table",
        page=page,
        bbox=union(all_boxes),
        text=text,
        lines=sorted(cells + cap_lines, key=lambda ln: (ln.top, ln.x0)),
        size=size,
        caption=caption,
        rows=grid,
        row_boxes=row_boxes,
        meta={"rows": n_rows, "cols": n_cols, "caption": caption, "table_bbox": bbox,
              "header": header_row(grid, [all(ln.bold for ln in r) for r in members])},
    )


def _numeric(cell: str) -> bool:
    return sum(ch.isdigit() for ch in cell) > sum(ch.isalpha() for ch in cell)


def header_row(rows: list[list[str]], bold: list[bool] | None = None) -> list[str] | None:
    """The table's first row when it reads as column labels, else None: set in bold over a body
    that is not, or all words over a body where numbers fill some column."""
    if len(rows) < 2:
        return None
    filled = [c for c in rows[0] if c.strip()]
    if len(filled) < 2:
        return None
    if bold and bold[0] and not all(bold[1:]):
        return rows[0]
    if any(_numeric(c) for c in filled):
        return None
    body = rows[1:]
    numeric_col = any(sum(1 for r in body if j < len(r) and _numeric(r[j])) >= 0.5 * len(body) for j in range(len(rows[0])))
    return rows[0] if numeric_col else None


def _find_caption(lines, bbox, size, pattern, exclude) -> list[Line]:
    """Caption lines just above or below ``bbox`` starting with e.g. "Table 3"."""
    best: list[Line] = []
    best_d = 3.5 * size
    for ln in lines:
        if id(ln) in exclude or not pattern.match(ln.text):
            continue
        if min(ln.x1, bbox[2]) - max(ln.x0, bbox[0]) <= 0:
            continue
        d = bbox[1] - ln.bottom if ln.bottom <= bbox[1] + 1 else ln.top - bbox[3]
        if -1 <= d < best_d:
            best_d = d
            best = [ln]
    if not best:
        return best
    # follow a caption that wraps onto more lines (same size, directly below, not in the table)
    cap = best[0]
    below = sorted(
        (ln for ln in lines if id(ln) not in exclude and ln.top > cap.top and ln is not cap),
        key=lambda ln: ln.top,
    )
    cur = cap
    for ln in below:
        if len(best) >= 4:
            break
        if (
            abs(ln.size - cap.size) < 0.5
            and 0 < ln.baseline - cur.baseline <= 1.6 * cap.size
            and min(ln.x1, cap.x1) - max(ln.x0, cap.x0) > 0
            and not (bbox[1] - 1 <= ln.top <= bbox[3] + 1)
        ):
            best.append(ln)
            cur = ln
        elif ln.top > cur.bottom + 2 * cap.size:
            break
    return best


def attach_figures(images: list[BBox], lines: list[Line], page: int, page_w: float, page_h: float):
    """Figure blocks for sizeable images, with their "Figure N" caption lines taken from ``lines``."""
    figs: list[Block] = []
    used: set[int] = set()
    for box in figure_boxes(images, page_w, page_h):
        size = statistics.median([ln.size for ln in lines]) if lines else 10.0
        cap = _find_caption(lines, box, size, FIGURE_CAPTION, exclude=used)
        caption = _dehyphen_join([ln.text for ln in cap])
        for ln in cap:
            used.add(id(ln))
        figs.append(
            Block(
                kind="figure",
                page=page,
                bbox=box,
                text=caption,
                lines=cap,
                caption=caption,
                meta={"caption": caption, "image_bbox": box},
            )
        )
    return figs, [ln for ln in lines if id(ln) not in used]


def figure_boxes(images: list[BBox], page_w: float, page_h: float) -> list[BBox]:
    """The boxes that become figures: touching images merged, at least 36 pt a side, not the
    page's background (over 80% of it)."""
    return [b for b in _merge_boxes(images)
            if b[2] - b[0] >= 36 and b[3] - b[1] >= 36 and (b[2] - b[0]) * (b[3] - b[1]) <= 0.8 * page_w * page_h]


def _merge_boxes(boxes: list[BBox]) -> list[BBox]:
    out: list[list[float]] = []
    for b in sorted(boxes):
        for o in out:
            if b[0] <= o[2] + 2 and b[2] >= o[0] - 2 and b[1] <= o[3] + 2 and b[3] >= o[1] - 2:
                o[:] = [min(o[0], b[0]), min(o[1], b[1]), max(o[2], b[2]), max(o[3], b[3])]
                break
        else:
            out.append(list(b))
    return [tuple(o) for o in out]  # type: ignore[misc]


# ----------------------------------------------------------------------------- reading order


@dataclass(slots=True)
class Item:
    """Something placed in reading order: a line or a whole block, with the region it sits in."""

    obj: Line | Block
    bbox: BBox
    region: int = 0
    rx0: float = 0.0
    rx1: float = 0.0


def _find_gutter(items: list[Item]) -> tuple[float, float] | None:
    """The x-interval of a column gutter: few items cross it and enough text sits on both sides."""
    if len(items) < 6:
        return None
    x_lo = min(it.bbox[0] for it in items)
    x_hi = max(it.bbox[2] for it in items)
    width = x_hi - x_lo
    if width < 120:
        return None
    events: list[tuple[float, int]] = []
    for it in items:
        events.append((it.bbox[0], 1))
        events.append((it.bbox[2], -1))
    events.sort()
    # piecewise-constant coverage; find the lowest-coverage x-interval in the middle 60%
    lo_lim, hi_lim = x_lo + 0.2 * width, x_lo + 0.8 * width
    cov = 0
    best: tuple[int, float, float] | None = None  # (coverage, start, end)
    prev_x = x_lo
    for x, d in events:
        a, b = max(prev_x, lo_lim), min(x, hi_lim)
        if b - a >= 4.0:
            key = (cov, -(b - a))
            if best is None or key < (best[0], -(best[2] - best[1])):
                best = (cov, a, b)
        cov += d
        prev_x = x
    if best is None:
        return None
    n_cross, g0, g1 = best
    if n_cross > max(1, 0.25 * len(items)):
        return None
    left = [it for it in items if it.bbox[2] <= g0 + 0.01]
    right = [it for it in items if it.bbox[0] >= g1 - 0.01]
    if len(left) < 3 or len(right) < 3:
        return None
    # both sides must carry a real share of the page height, not a stray label or page number
    tops = [it.bbox[1] for it in items]
    bots = [it.bbox[3] for it in items]
    span = max(bots) - min(tops)

    def extent(side: list[Item]) -> float:
        return max(it.bbox[3] for it in side) - min(it.bbox[1] for it in side)

    if extent(left) < 0.15 * span or extent(right) < 0.15 * span:
        return None
    return g0, g1


def _sort_rows(items: list[Item]) -> list[Item]:
    """Top-to-bottom; items overlapping vertically (one visual row) go left to right."""
    items = sorted(items, key=lambda it: (it.bbox[1] + it.bbox[3]) / 2)
    out: list[Item] = []
    i = 0
    while i < len(items):
        row = [items[i]]
        top, bot = items[i].bbox[1], items[i].bbox[3]
        j = i + 1
        while j < len(items):
            b = items[j].bbox
            ov = min(bot, b[3]) - max(top, b[1])
            if ov >= 0.5 * min(bot - top, b[3] - b[1]):
                row.append(items[j])
                j += 1
            else:
                break
        out.extend(sorted(row, key=lambda it: it.bbox[0]))
        i = j
    return out


def _attach_short_last_lines(items: list[Item], span_ids: set[int], g1: float) -> None:
    """The short last line of a full-width paragraph does not reach the gutter; it still belongs
    with the full-width line above it when it starts at the same x and nothing sits beside it."""
    by_top = sorted(items, key=lambda it: it.bbox[1])
    for i, it in enumerate(by_top):
        if id(it) in span_ids or not isinstance(it.obj, Line):
            continue
        above = [s for s in by_top[:i] if id(s) in span_ids and isinstance(s.obj, Line)]
        if not above:
            continue
        s = above[-1]
        ln, sl = it.obj, s.obj
        if abs(ln.x0 - sl.x0) > 2.0 or abs(ln.size - sl.size) > 0.5 or ln.bold != sl.bold:
            continue
        if not (0 < ln.baseline - sl.baseline <= 1.6 * sl.size):
            continue
        beside = any(
            o is not it and o.bbox[0] >= g1 - 0.01 and min(o.bbox[3], it.bbox[3]) - max(o.bbox[1], it.bbox[1]) > 0
            for o in items
        )
        if not beside:
            span_ids.add(id(it))


def reading_order(items: list[Item], _depth: int = 0, _next_region: list[int] | None = None) -> list[Item]:
    """Order items column by column; items spanning the gutter cut the page into bands.

    Each returned item carries the id and x-extent of the region (column) it was read in.
    """
    counter = _next_region if _next_region is not None else [0]
    gutter = _find_gutter(items) if _depth < 3 else None
    if gutter is None:
        rid = counter[0]
        counter[0] += 1
        if items:
            rx0 = min(it.bbox[0] for it in items)
            rx1 = max(it.bbox[2] for it in items)
            for it in items:
                it.region, it.rx0, it.rx1 = rid, rx0, rx1
        return _sort_rows(items)
    g0, g1 = gutter
    span_ids = {id(it) for it in items if it.bbox[0] < g0 and it.bbox[2] > g1}
    _attach_short_last_lines(items, span_ids, g1)
    spanning = sorted((it for it in items if id(it) in span_ids), key=lambda it: it.bbox[1])
    rest = [it for it in items if id(it) not in span_ids]
    out: list[Item] = []
    cuts = [s.bbox[1] for s in spanning] + [float("inf")]
    prev_cut = float("-inf")
    mid = (g0 + g1) / 2
    run: list[Item] = []  # consecutive spanning items with no column text between them

    def close_run() -> None:
        if run:
            rid = counter[0]
            counter[0] += 1
            rx0 = min(it.bbox[0] for it in run)
            rx1 = max(it.bbox[2] for it in run)
            for it in run:
                it.region, it.rx0, it.rx1 = rid, rx0, rx1
            run.clear()

    for cut_i, cut in enumerate(cuts):
        band = [it for it in rest if prev_cut <= (it.bbox[1] + it.bbox[3]) / 2 < cut]
        if band:
            close_run()
            left = [it for it in band if (it.bbox[0] + it.bbox[2]) / 2 < mid]
            right = [it for it in band if (it.bbox[0] + it.bbox[2]) / 2 >= mid]
            out.extend(reading_order(left, _depth + 1, counter))
            out.extend(reading_order(right, _depth + 1, counter))
        if cut_i < len(spanning):
            run.append(spanning[cut_i])
            out.append(spanning[cut_i])
            prev_cut = cut
    close_run()
    return out


# ----------------------------------------------------------------------------- paragraphs


def _typical_pitch(lines: list[Line]) -> float:
    pitches = []
    for a, b in zip(lines, lines[1:]):
        d = b.baseline - a.baseline
        if abs(a.size - b.size) < max(0.5, 0.08 * a.size) and 0.8 * a.size < d < 2.5 * a.size:
            pitches.append(d)
    return statistics.median(pitches) if pitches else 0.0


def _dehyphen_join(parts: list[str]) -> str:
    out = ""
    for t in parts:
        if not out:
            out = t
            continue
        if out.endswith(("\u00ad", "\x02")):
            out = out[:-1] + t
        elif len(out) >= 2 and out[-1] == "-" and out[-2].isalpha() and t[:1].islower():
            out = out[:-1] + t
        else:
            out = out + " " + t
    return out.replace("\u00ad", "").replace("\x02", "")


def paragraphs(ordered: list[Item], page: int) -> list[Block]:
    """Group ordered lines into paragraph blocks; blocks (tables, figures) pass through."""
    line_items = [it for it in ordered if isinstance(it.obj, Line)]
    by_region: dict[int, list[Line]] = {}
    for it in line_items:
        by_region.setdefault(it.region, []).append(it.obj)  # type: ignore[arg-type]
    pitch = {r: _typical_pitch(v) for r, v in by_region.items()}
    all_pitch = _typical_pitch([it.obj for it in line_items])  # type: ignore[misc]

    blocks: list[Block] = []
    cur: list[Line] = []
    cur_region = -1
    cur_rx = (0.0, 0.0)

    def flush():
        if cur:
            blocks.append(_para_block(cur, page))
            cur.clear()

    for it in ordered:
        if not isinstance(it.obj, Line):
            flush()
            blocks.append(it.obj)
            cur_region = -1
            continue
        ln = it.obj
        if cur and (it.region != cur_region or _breaks(cur, ln, it, pitch.get(it.region) or all_pitch)):
            flush()
        if not cur:
            cur_region = it.region
            cur_rx = (it.rx0, it.rx1)
        cur.append(ln)
    flush()
    return blocks


def _breaks(cur: list[Line], ln: Line, it: Item, pitch: float) -> bool:
    p = cur[-1]
    size = max(p.size, ln.size)
    # sizes measured from OCR boxes wobble by a tenth or more from line to line
    size_tol = 0.25 if ln.spans[0].score is not None else 0.08
    if abs(p.size - ln.size) > max(0.6, size_tol * size) or p.bold != ln.bold or p.mono != ln.mono:
        return True
    step = ln.baseline - p.baseline
    if step < -0.3 * size:
        return True  # went back up: a new column or region
    if step > 0.3 * size:
        lim = 1.3 * pitch if pitch else 1.9 * size
        if step > max(lim, pitch + 0.25 * size if pitch else 0):
            return True
    rx0, rx1 = it.rx0, it.rx1
    indent_now = ln.x0 - rx0
    indent_prev = p.x0 - rx0
    if indent_now > 0.8 * size and indent_prev < 0.4 * size and len(cur) >= 1:
        return True
    if _BULLET.match(ln.text) and _SENTENCE_END.search(p.text):
        return True
    width = rx1 - rx0
    if width > 0 and p.x1 < rx1 - max(0.12 * width, 3 * size) and _SENTENCE_END.search(p.text):
        return True
    return False


def _para_block(lines: list[Line], page: int) -> Block:
    sizes = [ln.size for ln in lines]
    scores = [s.score for ln in lines for s in ln.spans if s.score is not None]
    meta: dict[str, Any] = {}
    if scores:
        meta["ocr"] = True
        meta["ocr_score"] = round(sum(scores) / len(scores), 3)
    return Block(
        kind="paragraph",
        page=page,
        bbox=union([ln.bbox for ln in lines]),
        text=_dehyphen_join([ln.text for ln in lines]),
        lines=list(lines),
        size=statistics.median(sizes),
        bold=all(ln.bold for ln in lines),
        meta=meta,
    )


def layout_page(
    spans: list[Span],
    page: int,
    page_w: float,
    page_h: float,
    images: list[BBox] | None = None,
    drop: set[int] | None = None,
    lines: list[Line] | None = None,
) -> list[Block]:
    """One page: lines, tables, figures, column reading order, paragraphs."""
    if lines is None:
        lines = build_lines(spans)
    if drop:
        lines = [ln for ln in lines if id(ln) not in drop]
    tables, rest = find_tables(lines, page)
    figs, rest = attach_figures(images or [], rest, page, page_w, page_h)
    items = [Item(ln, ln.bbox) for ln in rest]
    for b in tables:
        items.append(Item(b, b.bbox))
    for b in figs:
        items.append(Item(b, b.bbox))
    ordered = reading_order(items)
    return paragraphs(ordered, page)
