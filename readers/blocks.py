"""Turn a flat list of headings and paragraphs into the section tree every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core import Node, Tree
from .textsplit import group_into_sections, split_long


@dataclass
class Block:
    type: str  # "heading" | "paragraph" | "table" | "figure"
    start: int  # char span in the full text
    end: int
    level: int = 0  # heading depth, 1 = top
    title: str = ""
    page: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    meta: dict = field(default_factory=dict)


def build_tree(text: str, blocks: list[Block], *, title: str, meta: dict | None = None) -> Tree:
    """Nest blocks under headings by level. Paragraph blocks longer than a few hundred words
    are split at sentence ends so fine nodes stay a readable size; text without any heading
    gets synthetic sections so the coarse level is never empty."""
    root = Node(kind="document", title=title, char_start=0, char_end=len(text), meta=dict(meta or {}))
    stack: list[tuple[int, Node]] = [(0, root)]
    loose: list[Node] = []  # paragraphs before the first heading
    any_heading = any(b.type == "heading" for b in blocks)
    for b in blocks:
        if b.type == "heading":
            while stack[-1][0] >= b.level:
                stack.pop()
            sec = Node(kind="section", title=b.title or text[b.start : b.end].strip(), page=b.page,
                       bbox=b.bbox, char_start=b.start, char_end=b.end, meta={"level": b.level, **b.meta})
            stack[-1][1].add(sec)
            stack.append((b.level, sec))
            continue
        pieces = split_long(text[b.start : b.end], b.start) if b.type == "paragraph" else [(b.start, b.end)]
        for s, e in pieces:
            node = Node(kind=b.type, title=b.title, text=text[s:e], page=b.page, bbox=b.bbox,
                        char_start=s, char_end=e, meta=dict(b.meta))
            if len(stack) == 1:
                loose.append(node)
            else:
                stack[-1][1].add(node)
    if loose:
        if any_heading:
            intro = Node(kind="section", title="(front matter)", char_start=loose[0].char_start,
                         char_end=loose[-1].char_end, page=loose[0].page, meta={"level": 1, "synthetic": True},
                         children=loose)
            root.children.insert(0, intro)
        else:
            root.children = group_into_sections(loose)
    _close_spans(root)
    return Tree(root=root, text=text)


def _close_spans(node: Node) -> None:
    """A section's span covers its heading and everything under it; page_end too."""
    for c in node.children:
        _close_spans(c)
    if node.children and node.kind in ("section", "document"):
        ends = [c.char_end for c in node.children if c.char_end is not None]
        if ends:
            node.char_end = max(ends + ([node.char_end] if node.char_end is not None else []))
        pages = [c.meta.get("page_end", c.page) for c in node.children if c.page is not None]
        if pages:
            node.meta["page_end"] = max(pages)
