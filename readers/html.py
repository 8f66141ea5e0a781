"""HTML through BeautifulSoup: h1–h6 become sections; p, li, pre, blockquote, table become fine nodes."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup, Tag

from ..core import ReaderError, Tree
from .blocks import Block, build_tree
from .text import load_text

_BLOCK_TAGS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "table", "dd", "dt"]
_CONTAINERS = {"li", "table", "blockquote", "pre"}  # their inner blocks are part of them
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
    for t in soup(["script", "style", "noscript", "nav", "footer"]):
        t.decompose()
    doc_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    parts: list[str] = []
    blocks: list[Block] = []
    pos = 0
    for el in _blocks(soup):
        if el.name == "table":
            rows = [" | ".join(c.get_text(" ", strip=True) for c in tr.find_all(["td", "th"]))
                    for tr in el.find_all("tr")]
            body = "\n".join(r for r in rows if r.strip())
            cap = el.find("caption")
            btype, btitle = "table", cap.get_text(" ", strip=True) if cap else ""
        else:
            body = el.get_text(" ", strip=True)
            btype, btitle = ("heading", body) if el.name[0] == "h" and el.name[1:].isdigit() else ("paragraph", "")
        if not body:
            continue
        s = pos
        parts.append(body)
        pos += len(body) + 2
        lvl = int(el.name[1]) if btype == "heading" else 0
        blocks.append(Block(btype, s, s + len(body), level=lvl, title=btitle))
    text = "\n\n".join(parts)
    if not blocks:
        raise ReaderError(f"{title}: no text in the HTML")
    first_h1 = next((b.title for b in blocks if b.type == "heading" and b.level == 1), "")
    return build_tree(text, blocks, title=doc_title or first_h1 or title)


def _blocks(soup) -> list[Tag]:
    """Block elements in document order, not descending into li/table/blockquote/pre (a <p>
    inside an <li> is counted once, as part of it). One pass with an explicit stack: asking
    each element for its ancestors was quadratic in the nesting depth."""
    want = set(_BLOCK_TAGS)
    out: list[Tag] = []
    stack = [soup]
    while stack:
        el = stack.pop()
        if el is not soup and el.name in want:
            out.append(el)
            if el.name in _CONTAINERS:
                continue
        stack.extend(reversed([c for c in el.children if isinstance(c, Tag)]))
    return out
