"""How ``read`` renders tables, table rows and figures (issue 23: read what located best, in a
form a reader can use).

A PDF table is stored as a ``table`` node (caption, then each row's cells joined by " | ") with a
``row`` child per body row (meta: ``cells``, ``header``). Read as stored, a row hit reaches the
answer prompt without its column names and a table without its header marked; here a table is a
GitHub Markdown pipe table (caption above, header, separator, body rows) and a row is read under
its table's header with the rows around it. A figure is its caption and the text inside its image
box: what figure OCR stored in its own text, and the text-layer lines drawn on top of the image,
which the layout reader leaves as paragraphs of the page.
"""

from __future__ import annotations

import re

from ..core import TOKENS_PER_WORD

#: share of a paragraph's box that must lie inside a figure's image box for it to count as text
#: of the figure (labels and callouts drawn over a chart), not prose beside it
INSIDE = 0.8
_BEFORE_PIPE = re.compile(r"\\+(?=\|)")


def _tokens(words: int) -> int:
    # what core.approx_tokens charges for text of this many words, summed line by line here
    return max(1, int(words * TOKENS_PER_WORD)) if words else 0


def md_cell(text: str) -> str:
    """A cell's text on one line with its pipes escaped, so it stays one cell of the table.

    A backslash just before a pipe is dropped: Markdown parsers disagree on whether "\\\\|" ends a
    cell (cmark-gfm) or escapes the pipe (markdown-it); a plain "\\|" is one cell in both."""
    return _BEFORE_PIPE.sub("", " ".join(str(text or "").split())).replace("|", "\\|")


def md_row(cells: list[str], n: int) -> str:
    """One pipe-table line of ``n`` columns (short rows padded with empty cells)."""
    cells = [md_cell(c) for c in cells[:n]] + [""] * max(0, n - len(cells))
    return "| " + " | ".join(cells) + " |"


def render_table(caption: str, header: list[str] | None, rows: list[list[str]], max_tokens: int,
                 focus: int | None = None) -> tuple[str, list[int]]:
    """A Markdown pipe table and the indexes of the ``rows`` it shows.

    The caption is a line above; ``header`` (None: the reader found none) is the header row, else
    the header cells are empty (a pipe table must have one). Rows are added in table order from
    the top or, with ``focus``, that row first and then its neighbours nearest first, while the
    text fits ``max_tokens``; the header and the focus row are always kept, and a last line says
    how many rows were left out.
    """
    n = max([len(header or [])] + [len(r) for r in rows] + [1])
    # a blank line after the caption: the table then starts a block in every Markdown parser
    head = [caption.strip(), ""] if caption and caption.strip() else []
    head += [md_row(header or [], n), "|" + "---|" * n]
    lines = [md_row(r, n) for r in rows]
    words = [len(x.split()) for x in lines]
    used = sum(len(x.split()) for x in head)
    note = 8  # words the "(k of n rows not shown)" line costs, kept free while rows are added
    if focus is None:
        order = list(range(len(rows)))
    else:
        order = sorted(range(len(rows)), key=lambda i: (abs(i - focus), i > focus))
    shown: list[int] = []
    for i in order:
        last = len(shown) == len(rows) - 1
        if shown or focus is None:
            if _tokens(used + words[i] + (0 if last else note)) > max_tokens:
                break  # nearest first: what is shown stays one block of adjacent rows
        shown.append(i)
        used += words[i]
    shown.sort()
    out = head + [lines[i] for i in shown]
    if len(shown) < len(rows):
        # after a blank line: a line right under a pipe table is read as one more row of it
        out += ["", f"({len(rows) - len(shown)} of {len(rows)} rows not shown)"]
    return "\n".join(out), shown


def figure_text(caption: str, own: str, inside: list[str]) -> str:
    """A figure as read: its caption, then the text found in its image box (``own``: the node's
    text, the caption then any OCR'd lines; ``inside``: text-layer lines over the image)."""
    caption = (caption or "").strip()
    body = (own or "").strip()
    if caption and body.startswith(caption):
        body = body[len(caption):].strip()
    lines = [x for x in body.splitlines() if x.strip()] + [x for x in inside if x.strip() and x.strip() not in body]
    parts = [caption] if caption else []
    if lines:
        parts.append("Text in the figure: " + " / ".join(" ".join(x.split()) for x in lines))
    return "\n".join(parts)


def inside_box(box, image_box) -> bool:
    """Whether most of ``box`` lies inside ``image_box`` (both x0, top, x1, bottom)."""
    if not box or not image_box:
        return False
    w = min(box[2], image_box[2]) - max(box[0], image_box[0])
    h = min(box[3], image_box[3]) - max(box[1], image_box[1])
    area = max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])
    return w > 0 and h > 0 and area > 0 and w * h >= INSIDE * area


def render(lib, f, budget: int) -> tuple[str, bool, set[int]] | None:
    """How ``read`` shows fine node ``f`` in ``budget`` tokens: (text, whole, ids of the
    paragraphs it took in), or None to show its stored text. ``whole`` is False when rows were
    left out. A table without row nodes (Markdown and HTML sources keep their table as written)
    and other kinds read as stored."""
    from sqlalchemy import select

    from .schema import NodeRow

    if f.kind not in ("table", "row", "figure"):
        return None
    with lib.Session() as s:
        if f.kind == "figure":
            # a figure node's box is its image box (the reader's meta image_bbox, a tuple, is not
            # among the meta values the index stores)
            box = (f.meta or {}).get("image_bbox") or f.bbox
            paras = s.execute(select(NodeRow).where(NodeRow.source_id == f.source_id, NodeRow.page == f.page,
                                                    NodeRow.tier == "fine", NodeRow.kind == "paragraph")
                              .order_by(NodeRow.id)).scalars().all() if box and f.page is not None else []
            inside = [p for p in paras if inside_box(p.bbox, box)]
            return figure_text(f.title, f.text, [p.text for p in inside]), True, {p.id for p in inside}
        table = f if f.kind == "table" else s.get(NodeRow, f.parent_id) if f.parent_id is not None else None
        if table is None or table.kind != "table":
            return None
        rows = s.execute(select(NodeRow).where(NodeRow.parent_id == table.id, NodeRow.kind == "row")
                         .order_by(NodeRow.id)).scalars().all()
    if not rows:
        return None
    header = (next((r.meta.get("header") for r in rows if (r.meta or {}).get("header")), None)
              or (table.meta or {}).get("header"))
    focus = next((k for k, r in enumerate(rows) if r.id == f.id), None) if f.kind == "row" else None
    text, shown = render_table(table.title or "", header, [list((r.meta or {}).get("cells") or [r.text]) for r in rows],
                               budget, focus)
    return text, len(shown) == len(rows), set()
