"""HTML through BeautifulSoup: h1–h6 become sections; p, li, pre, blockquote, table become fine nodes."""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup

from ..core import ReaderError, Tree
from .blocks import Block, build_tree
from .text import load_text

_BLOCK_TAGS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "table", "dd", "dt"]


def read_html(path: str | Path) -> Tree:
    path, text = load_text(path)
    try:
        return parse_html(text, title=path.stem)
    except ReaderError as e:  # name the file, not the title
        raise ReaderError(f"{path.name}: {str(e).split(': ', 1)[-1]}") from None


def parse_html(html: str, *, title: str) -> Tree:
    soup = BeautifulSoup(html, "html.parser")
    for t in soup(["script", "style", "noscript", "nav", "footer"]):
        t.decompose()
    doc_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    parts: list[str] = []
    blocks: list[Block] = []
    pos = 0
    for el in soup.find_all(_BLOCK_TAGS):
        # Only outermost block elements: a <p> inside an <li> or a <table> is counted once.
        if el.find_parent(["li", "table", "blockquote", "pre"]) is not None:
            continue
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
