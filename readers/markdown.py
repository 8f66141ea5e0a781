"""Markdown through markdown-it: ATX/Setext headings become sections, tables become table nodes."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt

from ..core import ReaderError, Tree
from .blocks import Block, Packer, build_tree, too_many_blocks
from .text import load_text


def read_markdown(path: str | Path) -> Tree:
    path, text = load_text(path)
    try:
        return parse_markdown(text, title=path.stem)
    except ReaderError as e:  # name the file, not the title
        raise ReaderError(f"{path.name}: {str(e).split(': ', 1)[-1]}") from None


# markdown-it keeps ~1 KB of tokens per block: 5 MB of one-word paragraphs took 1.5 GB. A long
# document is parsed a piece at a time, each piece ending at a blank line before a line that
# starts a paragraph or heading (where CommonMark closes every open block, so the pieces parse
# as the whole would), or, with no such place for long, at any blank line or newline.
PIECE_CHARS = 1 << 16
_HEADING_LINE = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)", re.M)


def parse_markdown(text: str, *, title: str) -> Tree:
    md = MarkdownIt("commonmark").enable("table")
    md.disable("inline")  # only block spans and a heading's source text are used: no inline tokens
    blocks: list[Block] = []
    # Too many small blocks (a million one-line paragraphs) are packed as they come, their
    # headings kept unless they alone are too many (readers/blocks.py).
    packer = None
    if too_many_blocks(sum(1 for _ in _BLANK.finditer(text)), len(text)):
        packer = Packer(text, blocks)
        keep_headings = not too_many_blocks(2 * sum(1 for _ in _HEADING_LINE.finditer(text)), len(text))
    doc_title = None
    for base, piece in _pieces(text):
        tokens = md.parse(piece)
        # Token.map gives line ranges; turn them into character offsets.
        line_starts = [0] + [m.end() for m in _NEWLINE.finditer(piece)]
        line_starts.append(len(piece))

        def span(tok) -> tuple[int, int]:
            a, b = tok.map
            s, e = line_starts[a], line_starts[min(b, len(line_starts) - 1)]
            seg = piece[s:e]
            return base + s + (len(seg) - len(seg.lstrip())), base + s + len(seg.rstrip())

        depth = 0  # only top-level blocks; nested list items stay inside their list
        for i, tok in enumerate(tokens):
            b = None
            if tok.nesting == 1 and tok.map is not None and depth == 0:
                s, e = span(tok)
                if tok.type == "heading_open":
                    inline = tokens[i + 1].content.strip()
                    level = int(tok.tag[1])
                    b = Block("heading", s, e, level=level, title=inline)
                    doc_title = doc_title or (inline if level == 1 else None)
                elif tok.type == "table_open":
                    b = Block("table", s, e)
                elif tok.type in ("paragraph_open", "bullet_list_open", "ordered_list_open", "blockquote_open"):
                    b = Block("paragraph", s, e)
            elif tok.type in ("fence", "code_block") and depth == 0 and tok.map is not None:
                s, e = span(tok)
                b = Block("paragraph", s, e, meta={"code": True})
            depth += tok.nesting
            if b is None or b.end <= b.start:  # a block of no-break spaces alone: no text
                continue
            if packer is None:
                blocks.append(b)
            elif b.type == "heading" and keep_headings:
                packer.flush()
                blocks.append(b)
            else:
                packer.add(b.start, b.end)
        del tokens
    if packer is not None:
        packer.flush()
    if not blocks:
        raise ReaderError(f"{title}: no text")
    _caption_tables(text, blocks)
    h1 = [b for b in blocks if b.type == "heading" and b.level == 1]
    if len(h1) == 1 and blocks[0] is h1[0]:
        # A lone leading H1 names the document; as a section it would only wrap everything.
        blocks = blocks[1:]
    return build_tree(text, blocks, title=doc_title or title)


_NEWLINE = re.compile(r"\n")
_BLANK = re.compile(r"\n[ \t]*\n")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
# HTML blocks that run across blank lines until their closing text (CommonMark types 1-5)
_HTML_OPEN = re.compile(r" {0,3}<(?:(?P<raw>script|pre|style|textarea)(?:[ \t>]|$)|(?P<comment>!--)|(?P<pi>\?)"
                        r"|(?P<cdata>!\[CDATA\[)|(?P<decl>![A-Za-z]))", re.I)
_HTML_CLOSE = {"raw": re.compile(r"</(?:script|pre|style|textarea)>", re.I), "comment": re.compile("-->"),
               "pi": re.compile(r"\?>"), "cdata": re.compile(r"\]\]>"), "decl": re.compile(">")}
# After a blank line, a line starting with none of these opens a paragraph or a heading: not a
# list item, quotation, table row, indented code, fence or HTML block continuing across it.
_UNSAFE_START = set(" \t-*+>|`~<0123456789")


def _pieces(text: str):
    """(offset, piece) of text cut for parsing: pieces of at least PIECE_CHARS, cut at a blank
    line before a safe start, else past 2 x PIECE_CHARS at any blank line and past 3 x at any
    line; never inside a fenced code block or an HTML block that spans blank lines. A text of
    PIECE_CHARS or less is one piece."""
    if len(text) <= PIECE_CHARS:
        yield 0, text
        return
    start = pos = 0
    fence = ""
    html = None  # the closing pattern of the HTML block we are in
    prev_blank = False
    while pos < len(text):
        nl = text.find("\n", pos)
        end = len(text) if nl < 0 else nl + 1
        line = text[pos:end]
        if html is not None:
            if html.search(line):
                html = None
            prev_blank = False
        elif fence:
            m = _FENCE.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line[m.end():].strip():
                fence = ""
            prev_blank = False
        else:
            blank = not line.strip(" \t\r\n")  # CommonMark's blank line: a no-break space is text
            size = pos - start
            if size >= PIECE_CHARS and (
                    (prev_blank and not blank and line[0] not in _UNSAFE_START)
                    or (size >= 2 * PIECE_CHARS and prev_blank) or size >= 3 * PIECE_CHARS):
                yield start, text[start:pos]
                start = pos
            prev_blank = blank
            if (m := _FENCE.match(line)) is not None:
                fence, prev_blank = m.group(1), False
            elif (m := _HTML_OPEN.match(line)) is not None:
                closing = _HTML_CLOSE[m.lastgroup]
                if not closing.search(line, m.end()):
                    html, prev_blank = closing, False
        pos = end
    yield start, text[start:]


def _caption_tables(text: str, blocks: list[Block]) -> None:
    """A paragraph right before a table that starts with 'Table' is its caption."""
    for prev, cur in zip(blocks, blocks[1:]):
        if cur.type == "table" and prev.type == "paragraph":
            cap = text[prev.start : prev.end].strip()
            if cap.lower().startswith("table"):
                cur.title = cap
