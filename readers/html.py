"""HTML through BeautifulSoup: every visible text, in document order. h1–h6 become sections; li,
pre, blockquote and table are fine nodes whole; any other block element (p, div, section,
article, dd …) gives the text directly inside it as paragraphs, its nested blocks their own."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup, CData, NavigableString, Tag

from ..core import ReaderError, Tree
from .blocks import Block, build_tree
from .text import load_text

_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_WHOLE = {"li", "table", "blockquote", "pre"}  # their inner blocks are part of them
# Elements a browser lays out as blocks: text directly inside one is a paragraph of its own.
# Everything else (span, a, b, custom elements …) is inline: its text joins the paragraph around it.
_BLOCKS = {"p", "div", "section", "article", "main", "header", "aside", "body", "html", "address", "form",
           "fieldset", "legend", "figure", "figcaption", "details", "summary", "dialog", "dl", "dd", "dt", "ul",
           "ol", "menu", "hgroup", "center", "caption", "hr", "search"}
# Not shown by a browser (or, for nav and footer, the site's frame rather than the page's text);
# the title is the document's title, not a paragraph.
_NOT_TEXT = ["script", "style", "noscript", "template", "nav", "footer", "title", "select", "datalist", "iframe",
             "canvas", "svg"]
_DISPLAY_NONE = re.compile(r"(?:^|;)\s*display\s*:\s*none", re.I)
# BeautifulSoup keeps ~1 KB per element and parses ~20,000 a second on a shared core: a 50 MB
# page of nested <div>s took 3.6 GB. Larger pages are refused with the count, before parsing.
MAX_ELEMENTS = 250_000
_OPEN_TAG = re.compile(r"<[A-Za-z]")


def read_html(path: str | Path) -> Tree:
    path, text = load_text(path)
    try:
        return parse_html(text, title=path.stem)
    except ReaderError as e:  # name the file, not the title
        raise ReaderError(f"{path.name}: {str(e).split(': ', 1)[-1]}") from None


def parse_html(html: str, *, title: str) -> Tree:
    n = sum(1 for _ in _OPEN_TAG.finditer(html))
    if n > MAX_ELEMENTS:
        raise ReaderError(f"{title}: {n:,} HTML elements, more than the {MAX_ELEMENTS:,} the HTML reader takes")
    soup = BeautifulSoup(html, "html.parser")
    doc_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    hidden = soup(_NOT_TEXT) + soup.find_all(attrs={"hidden": True}) + soup.find_all(style=_DISPLAY_NONE)
    for t in hidden:
        t.extract()  # not decompose(): a hidden element inside another is already gone with it
    parts: list[str] = []
    blocks: list[Block] = []
    pos = 0
    for btype, body, level, btitle in _text_blocks(soup):
        parts.append(body)
        blocks.append(Block(btype, pos, pos + len(body), level=level, title=btitle))
        pos += len(body) + 2
    text = "\n\n".join(parts)
    if not blocks:
        raise ReaderError(f"{title}: no text in the HTML")
    first_h1 = next((b.title for b in blocks if b.type == "heading" and b.level == 1), "")
    return build_tree(text, blocks, title=doc_title or first_h1 or title)


_END = object()  # marks where a block element's children end in the walk below


def _text_blocks(soup: BeautifulSoup) -> list[tuple[str, str, int, str]]:
    """(type, text, heading level, title) of each block of visible text, in document order.

    One pass with an explicit stack (pages nest thousands of <div>s deep, past Python's
    recursion limit). Each open block element has a frame collecting the strings directly in
    it; a nested block element first closes the run of text before it, so no text is counted
    twice and none is lost: "<div>a<p>b</p>c</div>" gives "a", "b", "c"."""
    out: list[tuple[str, str, int, str]] = []
    frames: list[tuple[int, list[str]]] = [(0, [])]  # heading level (0: paragraph), strings

    def close_run() -> None:
        level, strings = frames[-1]
        body = " ".join(strings)
        strings.clear()
        if body:
            out.append(("heading", body, level, body) if level else ("paragraph", body, 0, ""))

    todo: list = list(reversed(soup.contents))
    while todo:
        el = todo.pop()
        if el is _END:
            close_run()
            frames.pop()
        elif isinstance(el, NavigableString):
            if type(el) in (NavigableString, CData):  # not comments, doctypes, processing instructions
                s = el.strip()
                if s:
                    frames[-1][1].append(s)
        elif isinstance(el, Tag):
            if el.name in _WHOLE:
                close_run()
                out.append(_whole(el))
            elif el.name in _BLOCKS or el.name in _HEADINGS:
                close_run()
                frames.append((int(el.name[1]) if el.name in _HEADINGS else 0, []))
                todo.append(_END)
                todo.extend(reversed(el.contents))
            else:
                todo.extend(reversed(el.contents))
    close_run()
    return [b for b in out if b[1]]


def _whole(el: Tag) -> tuple[str, str, int, str]:
    """A list item, quotation or preformatted block as one paragraph; a table as one table
    node, a row per line with its cells between bars."""
    if el.name != "table":
        return "paragraph", el.get_text(" ", strip=True), 0, ""
    rows = [" | ".join(c.get_text(" ", strip=True) for c in tr.find_all(["td", "th"])) for tr in el.find_all("tr")]
    body = "\n".join(r for r in rows if r.strip())
    if not body:  # a table used for layout, its text not in cells: still text
        return "paragraph", el.get_text(" ", strip=True), 0, ""
    cap = el.find("caption")
    return "table", body, 0, cap.get_text(" ", strip=True) if cap else ""
