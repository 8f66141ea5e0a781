"""Sample documents with known structure: ground truth for tests, the demo and benchmarks.

Every generator writes a file and returns what a reader should find in it: section titles,
paragraph texts with the exact boxes they were drawn at (PDF points, origin top-left), tables,
figures, and facts a question can be answered from. Output is deterministic (reportlab's
``invariant`` mode, seeded prose), so the same call writes the same bytes.

The PDFs are laid out here line by line with reportlab's canvas instead of platypus, because
that is what makes the boxes known exactly: a paragraph's box runs from the first baseline plus
the font ascent to the last baseline plus the descent, and from the frame's left edge to the
widest line's advance width.

reportlab (a test extra) and PIL are imported inside the functions that need them.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

A4 = (595.2756, 841.8898)

TOPIC = "Marrow Bay tidal-energy pilot"
RUNNING_HEAD = "Marrow Bay Tidal Survey - Technical Report MB-7"

# ----------------------------------------------------------------------------- prose


_SUBJECTS = [
    "the survey team", "the northern array", "each sensor buoy", "the harbour authority",
    "the tidal model", "local fishers", "the maintenance crew", "the sediment sampler",
    "the steering committee", "the acoustic profiler", "the grid operator", "our field assistants",
    "the ecology group", "the turbine supplier", "the weather station", "the modelling team",
]
_VERBS = [
    "recorded", "reported", "estimated", "observed", "compared", "measured", "adjusted",
    "reviewed", "logged", "confirmed", "questioned", "summarised", "tracked", "projected",
]
_OBJECTS = [
    "flow velocities near the channel mouth", "a gradual rise in turbidity",
    "the output of every turbine", "seasonal changes in salinity", "the noise level under water",
    "the movement of grey seals", "the load on the mooring chains", "sediment plumes after storms",
    "the energy delivered to the grid", "maintenance costs per megawatt-hour",
    "the density of kelp along the breakwater", "wave heights at the outer buoy",
    "the frequency of blade fouling", "cable temperatures during peak flow",
    "public attitudes toward the project", "the availability of spare parts",
]
_MODIFIERS = [
    "during the spring tides", "after the winter storms", "over the first quarter",
    "at slack water", "throughout the pilot", "on calm mornings", "in the deeper channel",
    "near the old ferry pier", "whenever the wind turned northerly", "for most of the season",
    "at both monitoring stations", "under typical operating conditions", "despite heavy fog",
]
_CONNECTORS = [
    "However,", "In addition,", "As expected,", "By contrast,", "Later,", "Overall,",
    "In practice,", "At the same time,", "Notably,", "For comparison,",
]
_CLAUSES = [
    "which suggests that the design margins were adequate",
    "although the variation between weeks was large",
    "so the schedule for inspections was brought forward",
    "and the figures agree with the earlier desk study",
    "while the control site showed no comparable change",
    "which the operators had not anticipated",
    "because the supply vessel was delayed by weather",
    "and this pattern repeated on the following cycle",
]


class Prose:
    """Seeded generator of plausible, varied English sentences about the pilot."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def sentence(self) -> str:
        r = self.rng
        parts = []
        if r.random() < 0.35:
            parts.append(r.choice(_CONNECTORS))
        parts.append(r.choice(_SUBJECTS))
        parts.append(r.choice(_VERBS))
        parts.append(r.choice(_OBJECTS))
        if r.random() < 0.7:
            parts.append(r.choice(_MODIFIERS))
        if r.random() < 0.35:
            parts[-1] += ","
            parts.append(r.choice(_CLAUSES))
        s = " ".join(parts) + "."
        return s[0].upper() + s[1:]

    def paragraph(self, n_words: int = 80, fact: str | None = None) -> str:
        out: list[str] = []
        words = 0
        fact_at = self.rng.randint(0, 2) if fact else -1
        while words < n_words:
            s = fact if len(out) == fact_at else self.sentence()
            out.append(s)
            words += len(s.split())
        if fact and fact not in out:
            out.append(fact)
        return " ".join(out)


# ----------------------------------------------------------------------------- page writer


@dataclass
class _Style:
    font: str
    size: float
    leading: float


BODY = _Style("Helvetica", 10.0, 13.0)
HEADINGS = {
    1: _Style("Helvetica-Bold", 15.0, 18.0),
    2: _Style("Helvetica-Bold", 12.5, 15.0),
    3: _Style("Helvetica-Bold", 10.5, 13.0),
}
TITLE = _Style("Helvetica-Bold", 22.0, 26.0)
CAPTION = _Style("Helvetica-Oblique", 9.5, 12.0)
CELL = _Style("Helvetica", 9.5, 13.0)
CELL_HEAD = _Style("Helvetica-Bold", 9.5, 13.0)
PARA_GAP = 7.0


def _box(font: str, size: float, x0: float, lines: list[str], first_baseline: float, leading: float, page_h: float):
    """Top-left-origin box of ``lines`` drawn left-aligned from ``first_baseline`` down."""
    from reportlab.pdfbase.pdfmetrics import getAscentDescent, stringWidth

    asc, desc = getAscentDescent(font, size)
    last = first_baseline - leading * (len(lines) - 1)
    width = max(stringWidth(t, font, size) for t in lines)
    return [round(x0, 2), round(page_h - (first_baseline + asc), 2), round(x0 + width, 2), round(page_h - (last + desc), 2)]


@dataclass
class _Writer:
    """Flows headings, paragraphs, tables and figures down one or two columns, page by page."""

    path: Path
    title: str
    outline: bool = False
    columns: int = 1
    running: bool = True
    metadata_title: bool = True
    page_size: tuple[float, float] = A4
    margin: float = 72.0
    gutter: float = 21.0
    canvas: Any = None
    page: int = 0
    col: int = 0
    y: float = 0.0
    paragraphs: list[dict] = field(default_factory=list)
    sections: list[dict] = field(default_factory=list)
    _stack: list[tuple[int, dict]] = field(default_factory=list)
    _n_marks: int = 0
    tables: list[dict] = field(default_factory=list)
    figures: list[dict] = field(default_factory=list)
    words_on_page: int = 0
    band_top: float | None = None

    def __post_init__(self) -> None:
        from reportlab.pdfgen import canvas

        self.canvas = canvas.Canvas(str(self.path), pagesize=self.page_size, invariant=1)
        if self.metadata_title:
            self.canvas.setTitle(self.title)
        self.canvas.setAuthor("Marrow Bay Energy Trust")
        self.canvas.setSubject(TOPIC)
        self._start_page()

    # geometry
    @property
    def W(self) -> float:
        return self.page_size[0]

    @property
    def H(self) -> float:
        return self.page_size[1]

    @property
    def col_width(self) -> float:
        usable = self.W - 2 * self.margin
        return usable if self.columns == 1 else (usable - self.gutter * (self.columns - 1)) / self.columns

    @property
    def col_x(self) -> float:
        return self.margin + self.col * (self.col_width + self.gutter)

    @property
    def bottom(self) -> float:
        return self.margin

    def _start_page(self) -> None:
        self.page += 1
        self.col = 0
        self.words_on_page = 0
        self.y = self.H - self.margin
        self.band_top = None
        if self.running:
            c = self.canvas
            c.setFont("Helvetica", 8)
            c.drawString(self.margin, self.H - 40, RUNNING_HEAD)
            c.drawCentredString(self.W / 2, 36, f"Page {self.page}")

    def new_page(self) -> None:
        self.canvas.showPage()
        self._start_page()

    def _next_column(self) -> None:
        if self.col + 1 < self.columns:
            self.col += 1
            self.y = self.band_top if self.band_top is not None else self.H - self.margin
        else:
            self.new_page()

    def _ensure(self, height: float) -> None:
        if self.y - height < self.bottom:
            self._next_column()

    # content
    def title_block(self, subtitle: str, abstract: str | None = None) -> dict:
        """Title (and an optional abstract) across the full page width, above any columns."""
        c = self.canvas
        x = self.margin
        base = self.y - TITLE.size
        c.setFont(TITLE.font, TITLE.size)
        c.drawString(x, base, self.title)
        out = {"text": self.title, "page": self.page,
               "bbox": _box(TITLE.font, TITLE.size, x, [self.title], base, TITLE.leading, self.H)}
        self.y = base - TITLE.leading
        st = _Style("Helvetica-Oblique", 10.0, 13.0)
        self.y -= 4
        self._lines(subtitle, st, x, self.W - 2 * self.margin, record=True, section=None)
        if abstract:
            self.y -= PARA_GAP
            self._lines(abstract, BODY, x, self.W - 2 * self.margin, record=True, section=None)
        self.y -= 2 * PARA_GAP
        self.band_top = self.y
        return out

    def heading(self, text: str, level: int) -> dict:
        st = HEADINGS[level]
        self._ensure(st.leading + 6 + 3 * BODY.leading)
        if self.y < self.H - self.margin - 1 and (self.band_top is None or self.y < self.band_top - 1):
            self.y -= 12 if level == 1 else 8
        c = self.canvas
        base = self.y - st.size
        c.setFont(st.font, st.size)
        c.drawString(self.col_x, base, text)
        node = {"title": text, "level": level, "page": self.page,
                "bbox": _box(st.font, st.size, self.col_x, [text], base, st.leading, self.H), "children": []}
        if self.outline:
            self._n_marks += 1
            key = f"h{self._n_marks}"
            c.bookmarkHorizontalAbsolute(key, base + st.size + 2)
            c.addOutlineEntry(text, key, level=level - 1, closed=False)
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        (self._stack[-1][1]["children"] if self._stack else self.sections).append(node)
        self._stack.append((level, node))
        self.y = base - (st.leading - st.size) - 4
        return node

    @property
    def section(self) -> str | None:
        return self._stack[-1][1]["title"] if self._stack else None

    def paragraph(self, text: str, style: _Style = BODY) -> dict:
        from reportlab.lib.utils import simpleSplit

        lines = simpleSplit(text, style.font, style.size, self.col_width)
        height = style.size + style.leading * (len(lines) - 1) + 3
        self._ensure(height)
        rec = self._lines(text, style, self.col_x, self.col_width, record=True, section=self.section)
        self.y -= PARA_GAP
        self.words_on_page += len(text.split())
        return rec

    def _lines(self, text: str, st: _Style, x: float, width: float, record: bool, section: str | None) -> dict:
        from reportlab.lib.utils import simpleSplit

        lines = simpleSplit(text, st.font, st.size, width)
        c = self.canvas
        c.setFont(st.font, st.size)
        base = self.y - st.size
        for i, ln in enumerate(lines):
            c.drawString(x, base - i * st.leading, ln)
        rec = {"text": " ".join(lines), "page": self.page,
               "bbox": _box(st.font, st.size, x, lines, base, st.leading, self.H),
               "section": section, "column": self.col if self.columns > 1 else 0}
        if record:
            self.paragraphs.append(rec)
        self.y = base - st.leading * (len(lines) - 1) - (st.leading - st.size)
        return rec

    def table(self, caption: str, rows: list[list[str]], offsets: list[float]) -> dict:
        """Caption above, a bold header row, rules; ``offsets`` are column starts as fractions."""
        from reportlab.lib.utils import simpleSplit

        cap_lines = simpleSplit(caption, CAPTION.font, CAPTION.size, self.col_width)
        height = CAPTION.leading * len(cap_lines) + CELL.leading * len(rows) + 12
        self._ensure(height)
        self.y -= 4
        cap = self._lines(caption, CAPTION, self.col_x, self.col_width, record=False, section=self.section)
        c = self.canvas
        self.y -= 6
        x0 = self.col_x
        xs = [x0 + f * self.col_width for f in offsets]
        c.setLineWidth(0.6)
        c.line(x0, self.y, x0 + self.col_width, self.y)
        top = self.H - self.y
        for r, row in enumerate(rows):
            st = CELL_HEAD if r == 0 else CELL
            base = self.y - st.size - 1
            c.setFont(st.font, st.size)
            for x, cell in zip(xs, row):
                c.drawString(x, base, cell)
            self.y = base - (st.leading - st.size)
            if r == 0:
                c.line(x0, self.y + 1, x0 + self.col_width, self.y + 1)
        c.line(x0, self.y - 1, x0 + self.col_width, self.y - 1)
        rec = {"caption": cap["text"], "page": self.page, "rows": rows, "caption_bbox": cap["bbox"],
               "bbox": [round(x0, 2), round(top, 2), round(x0 + self.col_width, 2), round(self.H - self.y, 2)],
               "section": self.section}
        self.tables.append(rec)
        self.y -= PARA_GAP + 4
        return rec

    def figure(self, caption: str, seed: int = 0) -> dict:
        from reportlab.lib.utils import ImageReader, simpleSplit

        w = min(260.0, self.col_width)
        h = 0.5 * w
        cap_lines = simpleSplit(caption, CAPTION.font, CAPTION.size, self.col_width)
        self._ensure(h + 10 + CAPTION.leading * len(cap_lines))
        img = _chart_image(int(w * 2), int(h * 2), seed)
        c = self.canvas
        self.y -= 4
        c.drawImage(ImageReader(img), self.col_x, self.y - h, w, h)
        box = [round(self.col_x, 2), round(self.H - self.y, 2), round(self.col_x + w, 2), round(self.H - self.y + h, 2)]
        self.y -= h + 6
        cap = self._lines(caption, CAPTION, self.col_x, self.col_width, record=False, section=self.section)
        rec = {"caption": cap["text"], "page": self.page, "bbox": box, "caption_bbox": cap["bbox"], "section": self.section}
        self.figures.append(rec)
        self.y -= PARA_GAP
        return rec

    def save(self) -> None:
        if self.outline:
            self.canvas.showOutline()
        self.canvas.save()


def _chart_image(w: int, h: int, seed: int):
    """A small line chart as a PIL image (no text, so OCR and text extraction ignore it)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, w - 1, h - 1], outline=(60, 60, 60), width=2)
    pts = []
    v = h / 2
    for i in range(0, w, max(1, w // 40)):
        v = min(h - 8, max(8, v + rng.uniform(-h / 8, h / 8)))
        pts.append((i, v))
    d.line(pts, fill=(30, 90, 200), width=3)
    return img


# ----------------------------------------------------------------------------- report


KNOWN_FACT = "In March 2031 the Kessel array delivered 41.7 MWh to the Marrow Bay substation, its best month of the pilot."
REPORT_FACTS = [
    {"question": "How much energy did the Kessel array deliver in March 2031?", "answer": "41.7 MWh",
     "section": "3.1 Energy yield"},
    {"question": "Who calibrated the acoustic profilers?", "answer": "Ilse Navarro",
     "section": "2.2.1 Calibration"},
    {"question": "How many grey seals were counted at the breakwater in April?", "answer": "23",
     "section": "3.2 Ecological observations"},
    {"question": "What depth is the Marrow Bay channel at the turbine site?", "answer": "31 metres",
     "section": "2.1 The Marrow Bay site"},
    {"question": "When does the second phase of the pilot begin?", "answer": "September 2032",
     "section": "5 Conclusions"},
]
_FACT_SENTENCES = {
    "2.1 The Marrow Bay site": "At the turbine site the Marrow Bay channel is 31 metres deep at mean low water.",
    "2.2.1 Calibration": "All acoustic profilers were calibrated by Ilse Navarro against the reference flume in Tromsvik.",
    "3.2 Ecological observations": "Observers counted 23 grey seals hauled out on the breakwater in April, up from 9 a year earlier.",
    "5 Conclusions": "The trust recommends that the second phase of the pilot begin in September 2032 with four additional turbines.",
}

REPORT_OUTLINE: list[tuple[int, str]] = [
    (1, "1 Introduction"),
    (2, "1.1 Background"),
    (2, "1.2 Scope of the study"),
    (1, "2 Site and methods"),
    (2, "2.1 The Marrow Bay site"),
    (2, "2.2 Instruments"),
    (3, "2.2.1 Calibration"),
    (1, "3 Results"),
    (2, "3.1 Energy yield"),
    (2, "3.2 Ecological observations"),
    (1, "4 Discussion"),
    (1, "5 Conclusions"),
]

TABLE_ROWS = [
    ["Month", "MWh", "Avail. %", "Flow m/s"],
    ["Jan", "28.4", "91.2", "2.31"],
    ["Feb", "33.9", "94.0", "2.46"],
    ["Mar", "41.7", "97.5", "2.72"],
    ["Apr", "36.2", "95.1", "2.58"],
    ["May", "30.8", "89.7", "2.40"],
]
TABLE_CAPTION = "Table 1: Monthly energy yield of the Kessel array, January to May 2031."
FIGURE_CAPTION = "Figure 1: Flow speed at the channel mouth over one spring-neap cycle."


def make_report_pdf(
    path: str | Path,
    *,
    outline: bool,
    two_column: bool = False,
    seed: int = 0,
    paragraphs_per_section: int = 2,
    metadata_title: bool = True,
    title: str = "Marrow Bay Tidal-Energy Pilot: Final Report",
) -> dict:
    """A multi-page report with numbered nested headings, a table and a figure.

    Returns ``{"path", "title", "pages", "sections" (nested {"title", "level", "page", "bbox",
    "children"}), "paragraphs" (reading order: {"text", "page", "bbox", "section"}),
    "known" (the paragraph holding :data:`KNOWN_FACT`), "table", "figure", "facts",
    "running_head"}``.
    """
    path = Path(path)
    prose = Prose(seed)
    w = _Writer(path, title, outline=outline, columns=2 if two_column else 1, metadata_title=metadata_title)
    title_rec = w.title_block(
        "Prepared by the Marrow Bay Energy Trust for the regional energy board, 2031.",
        abstract=(prose.paragraph(45) if two_column else None),
    )
    known = None
    for level, head in REPORT_OUTLINE:
        w.heading(head, level)
        if head == "2.2 Instruments":
            w.paragraph(prose.paragraph(50))
            continue  # its content is the 2.2.1 subsection
        if head in ("1 Introduction", "2 Site and methods", "3 Results"):
            w.paragraph(prose.paragraph(40))
            continue
        for k in range(paragraphs_per_section):
            fact = None
            if k == 0 and head == "3.1 Energy yield":
                fact = KNOWN_FACT
            elif k == 1 and head in _FACT_SENTENCES:
                fact = _FACT_SENTENCES[head]
            rec = w.paragraph(prose.paragraph(70 if two_column else 85, fact=fact))
            if fact == KNOWN_FACT:
                known = rec
        if head == "3.1 Energy yield":
            w.table(TABLE_CAPTION, TABLE_ROWS, [0.0, 0.28, 0.52, 0.76])
            w.paragraph(prose.paragraph(40))
        if head == "2.1 The Marrow Bay site":
            w.figure(FIGURE_CAPTION, seed=seed)
            w.paragraph(prose.paragraph(40))
    w.save()
    return {
        "path": str(path),
        "title": title,
        "title_block": title_rec,
        "pages": w.page,
        "sections": w.sections,
        "paragraphs": w.paragraphs,
        "known": known,
        "table": w.tables[0],
        "figure": w.figures[0],
        "facts": REPORT_FACTS,
        "running_head": RUNNING_HEAD,
        "outline": outline,
        "two_column": two_column,
    }


def section_titles(sections: list[dict]) -> list[tuple[int, str]]:
    """(depth, title) pairs of a nested ``sections`` list in document order."""
    out: list[tuple[int, str]] = []

    def rec(nodes, depth):
        for n in nodes:
            out.append((depth, n["title"]))
            rec(n["children"], depth + 1)

    rec(sections, 1)
    return out


# ----------------------------------------------------------------------------- two columns


def make_two_column_pdf(path: str | Path, *, seed: int = 1) -> dict:
    """One page: full-width title and abstract, two columns, a full-width note cutting the
    columns into an upper and a lower band, then two more columns.

    Returns ``{"path", "order": [paragraph texts in reading order], "paragraphs": [{"text",
    "bbox", "column": "full" | "left" | "right", "band": 0 | 1}], "title"}``.
    """
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen import canvas

    path = Path(path)
    prose = Prose(seed)
    W, H = A4
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setTitle("Two-column sample")
    margin, gutter = 60.0, 24.0
    col_w = (W - 2 * margin - gutter) / 2
    paras: list[dict] = []

    def put(text, x, y, width, st=BODY, column="full", band=0):
        lines = simpleSplit(text, st.font, st.size, width)
        c.setFont(st.font, st.size)
        base = y - st.size
        for i, ln in enumerate(lines):
            c.drawString(x, base - i * st.leading, ln)
        rec = {"text": " ".join(lines), "page": 1, "bbox": _box(st.font, st.size, x, lines, base, st.leading, H),
               "column": column, "band": band}
        paras.append(rec)
        return base - st.leading * (len(lines) - 1) - (st.leading - st.size)

    title = "Sediment Transport Under Tidal Turbines"
    y = put(title, margin, H - 60, W - 2 * margin, TITLE)
    y = put("Abstract. " + prose.paragraph(55), margin, y - 12, W - 2 * margin) - 18
    band_top = y
    left_texts = [f"Left column paragraph {i}: " + prose.paragraph(45) for i in (1, 2)]
    right_texts = [f"Right column paragraph {i}: " + prose.paragraph(45) for i in (1, 2)]
    yl = band_top
    for t in left_texts:
        yl = put(t, margin, yl, col_w, column="left", band=0) - PARA_GAP * 2
    yr = band_top
    for t in right_texts:
        yr = put(t, margin + col_w + gutter, yr, col_w, column="right", band=0) - PARA_GAP * 2
    y = min(yl, yr) - 6
    y = put("Full-width note: " + prose.paragraph(40), margin, y, W - 2 * margin, band=1) - 18
    yl = put("Lower left paragraph: " + prose.paragraph(40), margin, y, col_w, column="left", band=2)
    yr = put("Lower right paragraph: " + prose.paragraph(40), margin + col_w + gutter, y, col_w, column="right", band=2)
    c.save()
    # reading order: full-width items by position; inside a band left column then right column
    band_of = {id(p): (p["band"], 0 if p["column"] in ("full", "left") else 1) for p in paras}
    order = sorted(paras, key=lambda p: (band_of[id(p)][0], band_of[id(p)][1], p["bbox"][1]))
    return {"path": str(path), "title": title, "paragraphs": paras, "order": [p["text"] for p in order]}


# ----------------------------------------------------------------------------- scanned


def find_ttf(bold: bool = False) -> str:
    """A TrueType font on this machine: DejaVu Sans from the system or from matplotlib."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for d in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF"):
        p = Path(d) / name
        if p.exists():
            return str(p)
    try:
        import matplotlib

        p = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / name
        if p.exists():
            return str(p)
    except ImportError:
        pass
    raise FileNotFoundError(f"no {name} found (install fonts-dejavu or matplotlib)")


def make_scanned_pdf(
    path: str | Path,
    lines: list[str] | list[list[str]],
    *,
    font_pt: float = 14.0,
    dpi: int = 200,
    heading_first: bool = False,
) -> dict:
    """An image-only PDF: each page is one bitmap with ``lines`` drawn on it (no text layer).

    ``lines`` is one page's lines or a list of pages. Returns ``{"path", "pages": [{"lines":
    [{"text", "bbox"}]}]}`` with boxes in PDF points (top-left origin) of the drawn ink.
    """
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    path = Path(path)
    pages = [lines] if lines and isinstance(lines[0], str) else lines
    W, H = A4
    px = dpi / 72.0
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    out_pages = []
    for page_lines in pages:
        img = Image.new("L", (int(W * px), int(H * px)), 255)
        d = ImageDraw.Draw(img)
        y_pt = 80.0
        recs = []
        for i, text in enumerate(page_lines):
            big = heading_first and i == 0
            size = font_pt * (1.6 if big else 1.0)
            font = ImageFont.truetype(find_ttf(bold=big), int(round(size * px)))
            x_px, y_px = 72.0 * px, y_pt * px
            d.text((x_px, y_px), text, fill=0, font=font)
            l, t, r, b = d.textbbox((x_px, y_px), text, font=font)
            recs.append({"text": text, "bbox": [round(l / px, 2), round(t / px, 2), round(r / px, 2), round(b / px, 2)]})
            y_pt += size * (2.2 if big else 1.7)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        buf.seek(0)
        c.drawImage(ImageReader(buf), 0, 0, W, H)
        c.showPage()
        out_pages.append({"lines": recs})
    c.save()
    return {"path": str(path), "pages": out_pages, "dpi": dpi}


# ----------------------------------------------------------------------------- long


def make_long_pdf(
    path: str | Path,
    pages: int = 300,
    words_per_page: int = 500,
    seed: int = 0,
    *,
    outline: bool = False,
) -> dict:
    """A long text PDF for the ingestion benchmark: a chapter every ~6 pages, a numbered
    subsection every ~2, ~``words_per_page`` words of prose per page, and a unique findable
    fact about every 10 pages.

    Returns ``{"path", "pages", "words", "sections": [(depth, title)], "facts": [{"text",
    "answer", "page", "section"}]}``.
    """
    path = Path(path)
    prose = Prose(seed)
    rng = random.Random(seed + 1)
    w = _Writer(path, f"Marrow Bay Pilot Logbook ({pages} pages)", outline=outline)
    w.title_block("Daily operations log of the Marrow Bay tidal-energy pilot, compiled for the trust.")
    chapter = sub = 0
    facts: list[dict] = []
    titles: list[tuple[int, str]] = []
    words = 0
    next_fact_page = 3
    last_chapter_page = last_sub_page = -99
    while w.page <= pages:
        if chapter == 0 or w.page - last_chapter_page >= 6:
            chapter, sub = chapter + 1, 1
            t = f"{chapter} {rng.choice(_CHAPTER_NAMES)}"
            w.heading(t, 1)
            titles.append((1, t))
            t = f"{chapter}.{sub} {rng.choice(_SUB_NAMES)}"
            w.heading(t, 2)
            titles.append((2, t))
            last_chapter_page = last_sub_page = w.page
        elif w.page - last_sub_page >= 2:
            sub += 1
            t = f"{chapter}.{sub} {rng.choice(_SUB_NAMES)}"
            w.heading(t, 2)
            titles.append((2, t))
            last_sub_page = w.page
        fact = None
        if w.page >= next_fact_page:
            k = len(facts) + 1
            code = f"MB-{1000 + 37 * k}"
            val = f"{(k * 7.3) % 50 + 5:.1f}"
            fact = f"Inspection {code} found {val} millimetres of marine growth on blade {k % 3 + 1}."
            next_fact_page += 10
        rec = w.paragraph(prose.paragraph(rng.randint(60, 110), fact=fact))
        words += len(rec["text"].split())
        if fact:
            facts.append({"text": fact, "answer": f"{fact.split(' found ')[1].split(' millimetres')[0]} millimetres",
                          "page": rec["page"], "section": titles[-1][1]})
        if w.words_on_page >= words_per_page:
            if w.page >= pages:
                break
            w.new_page()
    w.save()
    return {"path": str(path), "pages": w.page, "words": words,
            "sections": titles, "facts": facts}


_CHAPTER_NAMES = [
    "Operations", "Maintenance", "Environmental monitoring", "Grid connection", "Site logistics",
    "Incidents and repairs", "Community liaison", "Instrument records", "Weather and sea state",
]
_SUB_NAMES = [
    "Daily summary", "Turbine checks", "Sensor readings", "Vessel movements", "Crew notes",
    "Cable inspection", "Power quality", "Data gaps", "Wildlife sightings",
]


# ----------------------------------------------------------------------------- bad files


def make_encrypted_pdf(path: str | Path, password: str = "secret") -> Path:
    """A small PDF that needs ``password`` to open (reportlab standard encryption)."""
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen import canvas

    path = Path(path)
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1,
                      encrypt=StandardEncryption(password, ownerPassword=password + "-owner", canPrint=0))
    c.setFont("Helvetica", 12)
    c.drawString(72, 700, "Confidential: the Kessel array tender closes on 2 May 2031.")
    c.save()
    return path


def make_flate_bomb_pdf(path: str | Path, inflated_bytes: int, *, where: str = "content",
                        layers: int = 1) -> Path:
    """A one-page PDF with a Flate stream that inflates to ``inflated_bytes``: deflate squeezes
    runs of one byte ~1,000:1, so 2 GB fits in ~2 MB. ``where="content"`` puts it in the page's
    content stream (a line of text, then spaces: valid, and read whole by any PDF reader);
    ``"image"`` makes it the samples of a grey image just large enough to hold it. ``layers=2``
    deflates the deflated bytes again (``/Filter [/FlateDecode /FlateDecode]``), which squeezes
    the same bomb another ~100x. Written by hand: PDF writers do not make such files."""
    import zlib

    path = Path(path)
    head = b"BT /F1 24 Tf 72 700 Td (The harbour wall was rebuilt with basalt blocks.) Tj ET\n"
    comp = zlib.compressobj(9)
    parts = [comp.compress(head)]
    fill = (b"\0" if where == "image" else b" ") * (1 << 24)
    left = inflated_bytes - len(head)
    while left > 0:
        parts.append(comp.compress(fill[: min(left, len(fill))]))
        left -= len(fill)
    parts.append(comp.flush())
    data = b"".join(parts)
    for _ in range(layers - 1):
        data = zlib.compress(data, 9)
    filters = b"[" + b" ".join([b"/FlateDecode"] * layers) + b"]"
    if where == "image":
        side = int(inflated_bytes ** 0.5) + 1
        image = b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray " \
                b"/BitsPerComponent 8 /Filter %s /Length %d >>" % (side, side, filters, len(data))
        content = b"q 500 0 0 500 50 150 cm /Im1 Do Q\n" + head
        objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                b"/Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> >>",
                b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
                image + b"\nstream\n" + data + b"\nendstream"]
    else:
        objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                b"/Resources << /Font << /F1 5 0 R >> >> >>",
                b"<< /Filter %s /Length %d >>\nstream\n" % (filters, len(data)) + data + b"\nendstream",
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    path.write_bytes(bytes(out))
    return path


# ----------------------------------------------------------------------------- demo corpus


DEMO_FACTS = [
    {"question": "How much energy did the Kessel array deliver in March 2031?", "answer": "41.7 MWh",
     "source": "marrow_bay_report.pdf"},
    {"question": "Who calibrated the acoustic profilers?", "answer": "Ilse Navarro", "source": "marrow_bay_report.pdf"},
    {"question": "When will the Kessel array pause for blade inspection?", "answer": "14 June 2031",
     "source": "harbour_memo_scan.pdf"},
    {"question": "Which bird nests on the breakwater lighthouse?", "answer": "black guillemots",
     "source": "field_notes.md"},
    {"question": "What does the acronym TSR stand for?", "answer": "tip-speed ratio", "source": "glossary.txt"},
    {"question": "Who chairs the Marrow Bay Energy Trust?", "answer": "Dr Oona Falk", "source": "press_release.html"},
    {"question": "How far did sediment plumes travel behind the turbines?", "answer": "400 metres",
     "source": "sediment_paper.pdf"},
]

_MEMO_LINES = [
    "HARBOUR OFFICE MEMO",
    "To: all Marrow Bay pilot staff",
    "The Kessel array will pause on 14 June 2031",
    "for a full blade inspection by the supplier.",
    "Vessels must keep 200 metres from the turbines",
    "while divers are in the water.",
]

_NOTES_MD = """# Field notes: Marrow Bay breakwater

## Birds
Black guillemots nest on the breakwater lighthouse every summer; we counted eleven pairs in June 2031.
Kittiwakes use the old ferry pier instead.

## Seals
Grey seals haul out on the lower breakwater at low tide. Counts peak in April.

## Equipment
The spare hydrophone is stored in locker 4 of the harbour office.
"""

_GLOSSARY_TXT = """Marrow Bay pilot glossary

TSR: tip-speed ratio, the blade tip speed divided by the free-stream flow speed.
Slack water: the short period around the turn of the tide when the flow is near zero.
Availability: the share of hours in which a turbine could generate if the tide allowed.
Spring-neap cycle: the fortnightly variation of tidal range, largest at spring tides.
"""

_PRESS_HTML = """<!DOCTYPE html>
<html><head><title>Trust announces pilot results</title></head>
<body>
<h1>Marrow Bay Energy Trust announces pilot results</h1>
<p>The trust, chaired by Dr Oona Falk, today published the final report of the Marrow Bay tidal-energy pilot.</p>
<h2>Highlights</h2>
<ul><li>Best month: March 2031 with 41.7 MWh.</li><li>Availability above 89 percent in every month.</li></ul>
<h2>Next steps</h2>
<p>A second phase with four additional turbines is planned to begin in September 2032.</p>
</body></html>
"""


def make_demo_corpus(dir: str | Path) -> list[Path]:
    """A small mixed corpus about the fictional Marrow Bay pilot: a report PDF with bookmarks,
    a two-column paper, a scanned memo (image only), Markdown notes, a text glossary and an HTML
    press release. :data:`DEMO_FACTS` lists questions it answers. Deterministic."""
    d = Path(dir)
    d.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    p = d / "marrow_bay_report.pdf"
    make_report_pdf(p, outline=True)
    paths.append(p)
    p = d / "sediment_paper.pdf"
    _make_sediment_paper(p)
    paths.append(p)
    p = d / "harbour_memo_scan.pdf"
    make_scanned_pdf(p, _MEMO_LINES, heading_first=True)
    paths.append(p)
    for name, body in (("field_notes.md", _NOTES_MD), ("glossary.txt", _GLOSSARY_TXT), ("press_release.html", _PRESS_HTML)):
        p = d / name
        p.write_text(body, encoding="utf-8")
        paths.append(p)
    (d / "demo_facts.json").write_text(json.dumps(DEMO_FACTS, indent=2), encoding="utf-8")
    return paths


def _make_sediment_paper(path: Path) -> None:
    prose = Prose(7)
    w = _Writer(path, "Sediment Plumes Behind Tidal Turbines", columns=2, running=False)
    w.title_block("O. Falk, I. Navarro and the Marrow Bay ecology group.",
                  abstract="Abstract. " + prose.paragraph(50))
    w.heading("1 Introduction", 1)
    w.paragraph(prose.paragraph(80))
    w.heading("2 Observations", 1)
    w.paragraph(prose.paragraph(70, fact="Sediment plumes travelled about 400 metres behind the turbines before settling."))
    w.paragraph(prose.paragraph(80))
    w.heading("3 Conclusions", 1)
    w.paragraph(prose.paragraph(70))
    w.save()


__all__ = [
    "A4", "DEMO_FACTS", "FIGURE_CAPTION", "KNOWN_FACT", "Prose", "REPORT_FACTS", "REPORT_OUTLINE", "TABLE_CAPTION", "TABLE_ROWS",
    "find_ttf", "make_demo_corpus", "make_encrypted_pdf", "make_flate_bomb_pdf", "make_long_pdf", "make_report_pdf",
    "make_scanned_pdf", "make_two_column_pdf", "section_titles",
]
