"""Turn a flat list of headings and paragraphs into the section tree every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core import Node, Tree
from .textsplit import MAX_PARA_WORDS, MAX_SENTENCE_CHARS, group_into_sections, split_long, word_len

# Indexing holds every node of a file until the file is stored, ~12 KB each whatever its size: a
# 1 MB list of 200,000 one-word lines took 2.4 GB. A file of more blocks than this, with fewer
# than PACK_CHARS characters per block on average (a word list, a log of short lines; dialogue in
# a novel averages ~125, prose 300-800), or of more than MAX_BLOCKS blocks, has its consecutive
# blocks packed into paragraphs of up to MAX_PARA_WORDS words.
PACK_MIN_BLOCKS = 2_000
PACK_CHARS = 50
MAX_BLOCKS = 40_000


def too_many_blocks(n: int, n_chars: int) -> bool:
    """Whether ``n`` blocks in ``n_chars`` characters of text are to be packed."""
    return n > max(PACK_MIN_BLOCKS, min(MAX_BLOCKS, n_chars // PACK_CHARS))


@dataclass(slots=True)
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
    gets synthetic sections so the coarse level is never empty. Too many small blocks
    (:func:`too_many_blocks`) are packed into paragraphs first (:func:`pack_blocks`)."""
    if too_many_blocks(len(blocks), len(text)):
        blocks = pack_blocks(text, blocks)
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


def pack_blocks(text: str, blocks: list[Block]) -> list[Block]:
    """Runs of consecutive non-heading blocks packed into paragraphs (:class:`Packer`); the
    headings stay unless they alone are too many, when they are packed as text too. A table or
    figure packed with its neighbours becomes paragraph text."""
    keep = not too_many_blocks(2 * sum(b.type == "heading" for b in blocks), len(text))
    out: list[Block] = []
    packer = Packer(text, out)
    for b in blocks:
        if b.type == "heading" and keep:
            packer.flush()
            out.append(b)
        else:
            packer.add(b.start, b.end)
    packer.flush()
    return out


class Packer:
    """Paragraph spans given one at a time, merged while the run stays within MAX_PARA_WORDS
    words and MAX_SENTENCE_CHARS characters, appended to ``out`` as paragraph Blocks (one span
    longer than that stays alone, for split_long to cut). Given as they come: a Block for each
    of a million lines first would be the very memory packing saves."""

    def __init__(self, text: str, out: list[Block]):
        self.text, self.out = text, out
        self.start: int | None = None
        self.end = self.words = 0

    def add(self, s: int, e: int) -> None:
        w = word_len(self.text[s:e])
        if self.start is not None and (self.words + w > MAX_PARA_WORDS or e - self.start > MAX_SENTENCE_CHARS):
            self.flush()
        if self.start is None:
            self.start, self.words = s, 0
        self.end, self.words = e, self.words + w

    def flush(self) -> None:
        if self.start is not None:
            self.out.append(Block("paragraph", self.start, self.end))
            self.start = None
