"""Markdown through markdown-it: ATX/Setext headings become sections, tables become table nodes."""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt

from ..core import ReaderError, Tree
from .blocks import Block, build_tree
from .text import load_text


def read_markdown(path: str | Path) -> Tree:
    path, text = load_text(path)
    try:
        return parse_markdown(text, title=path.stem)
    except ReaderError as e:  # name the file, not the title
        raise ReaderError(f"{path.name}: {str(e).split(': ', 1)[-1]}") from None


def parse_markdown(text: str, *, title: str) -> Tree:
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(text)
    # Token.map gives line ranges; turn them into character offsets.
    line_starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            line_starts.append(i + 1)
    line_starts.append(len(text))

    def span(tok) -> tuple[int, int]:
        a, b = tok.map
        s, e = line_starts[a], line_starts[min(b, len(line_starts) - 1)]
        seg = text[s:e]
        return s + (len(seg) - len(seg.lstrip())), s + len(seg.rstrip())

    blocks: list[Block] = []
    depth = 0  # only top-level blocks; nested list items stay inside their list
    doc_title = None
    for i, tok in enumerate(tokens):
        if tok.nesting == 1 and tok.map is not None and depth == 0:
            s, e = span(tok)
            if tok.type == "heading_open":
                inline = tokens[i + 1].content.strip()
                level = int(tok.tag[1])
                blocks.append(Block("heading", s, e, level=level, title=inline))
                doc_title = doc_title or (inline if level == 1 else None)
            elif tok.type == "table_open":
                blocks.append(Block("table", s, e))
            elif tok.type in ("paragraph_open", "bullet_list_open", "ordered_list_open", "blockquote_open"):
                blocks.append(Block("paragraph", s, e))
        elif tok.type in ("fence", "code_block") and depth == 0 and tok.map is not None:
            s, e = span(tok)
            blocks.append(Block("paragraph", s, e, meta={"code": True}))
        depth += tok.nesting
    if not blocks:
        raise ReaderError(f"{title}: no text")
    _caption_tables(text, blocks)
    h1 = [b for b in blocks if b.type == "heading" and b.level == 1]
    if len(h1) == 1 and blocks[0] is h1[0]:
        # A lone leading H1 names the document; as a section it would only wrap everything.
        blocks = blocks[1:]
    return build_tree(text, blocks, title=doc_title or title)


def _caption_tables(text: str, blocks: list[Block]) -> None:
    """A paragraph right before a table that starts with 'Table' is its caption."""
    for prev, cur in zip(blocks, blocks[1:]):
        if cur.type == "table" and prev.type == "paragraph":
            cap = text[prev.start : prev.end].strip()
            if cap.lower().startswith("table"):
                cur.title = cap
