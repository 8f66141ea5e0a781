"""Plain text: paragraphs at blank lines, headings where a line looks like one."""

from __future__ import annotations

import re
from pathlib import Path

from ..core import ReaderError, Tree
from .blocks import Block, build_tree

_NUMBERED = re.compile(r"^(?P<num>\d+(?:\.\d+){0,4})\.?\s+(?P<title>\S.{0,80})$")
_UNDERLINE = re.compile(r"^(=+|-+)\s*$")


def decode_text(data: bytes, path: Path) -> str:
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ReaderError(f"{path.name}: binary data, not text")
    for enc in ("utf-8-sig", "utf-16", "gb18030", "latin-1"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if enc == "utf-16" and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            continue
        return text.replace("\r\n", "\n").replace("\r", "\n")
    raise ReaderError(f"{path.name}: cannot decode text")


def load_text(path: str | Path) -> tuple[Path, str]:
    """The decoded contents of a text-like file; ReaderError when empty or binary."""
    path = Path(path)
    data = path.read_bytes()
    if not data.strip():
        raise ReaderError(f"{path.name}: empty file")
    return path, decode_text(data, path)


def read_text(path: str | Path) -> Tree:
    path, text = load_text(path)
    try:
        return parse_text(text, title=path.stem)
    except ReaderError as e:  # name the file, not the title
        raise ReaderError(f"{path.name}: {str(e).split(': ', 1)[-1]}") from None


def parse_text(text: str, *, title: str) -> Tree:
    blocks: list[Block] = []
    # Split at blank lines; text with no blank lines at all is split at single newlines.
    sep = re.compile(r"\n[ \t]*\n+") if re.search(r"\n[ \t]*\n", text) else re.compile(r"\n+")
    pos = 0
    chunks = []
    for m in sep.finditer(text):
        chunks.append((pos, m.start()))
        pos = m.end()
    chunks.append((pos, len(text)))
    for s, e in chunks:
        raw = text[s:e]
        lead = len(raw) - len(raw.lstrip())
        s, e = s + lead, s + len(raw.rstrip())
        if s >= e:
            continue
        block = text[s:e]
        lines = block.split("\n")
        if len(lines) == 2 and _UNDERLINE.match(lines[1]) and len(lines[0]) < 100:
            level = 1 if lines[1].startswith("=") else 2
            blocks.append(Block("heading", s, s + len(lines[0]), level=level, title=lines[0].strip()))
            continue
        m = _NUMBERED.match(block) if len(lines) == 1 else None
        if m and not block.rstrip().endswith((".", ",", ";", ":")) and len(block.split()) <= 12:
            blocks.append(Block("heading", s, e, level=m.group("num").count(".") + 1, title=block.strip()))
            continue
        blocks.append(Block("paragraph", s, e))
    if not blocks:
        raise ReaderError(f"{title}: no text")
    return build_tree(text, blocks, title=title)
