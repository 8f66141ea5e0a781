"""Plain text: paragraphs at blank lines, headings where a line looks like one."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from ..core import ReaderError, Tree
from .blocks import Block, Packer, build_tree, too_many_blocks

_NUMBERED = re.compile(r"^(?P<num>\d+(?:\.\d+){0,4})\.?\s+(?P<title>\S.{0,80})$")
_UNDERLINE = re.compile(r"^(=+|-+)\s*$")


_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
DETECT_BYTES = 1 << 20  # the charset detector sees at most this much (a sample, cut at a newline)
# When the detector's best candidates score the same (it cannot tell "ø" in cp1252 from "ř" in
# cp1250 without more text), the more widely used encoding wins: WHATWG decodes unlabelled
# Western legacy text as windows-1252, and latin-1 files are cp1252 for every printable byte.
_PREFERRED = ("cp1252", "latin_1", "iso8859_15")


def detect_encoding(data: bytes) -> str | None:
    """The encoding of non-UTF-8 bytes by charset-normalizer, or None for binary data."""
    from charset_normalizer import from_bytes

    sample = data[:DETECT_BYTES]
    if len(data) > DETECT_BYTES and b"\n" in sample[-4096:]:
        sample = sample[: sample.rindex(b"\n") + 1]
    results = list(from_bytes(sample))
    if not results:
        return None
    best = results[0]
    ties = [r.encoding for r in results
            if r.percent_chaos == best.percent_chaos and r.percent_coherence == best.percent_coherence]
    enc = next((e for e in _PREFERRED if e in ties), best.encoding)
    # Too short a text for the detector to recognise a language ("café — “quoted” €5"): it
    # scores DOS code pages as high as windows-1252 and picked cp775 ("cafķ"). Where the bytes
    # read as plausible Western text in windows-1252, that is what they are.
    if enc not in _PREFERRED and not best.percent_coherence and _western(sample):
        return "cp1252"
    return enc


# Non-ASCII letters of the Western European languages in windows-1252 (not ð, ý, þ: those bytes
# are ğ, ı, ş in Turkish), punctuation that may stand inside a word ("it’s", "l·l", "a—b"), and
# signs that stand apart from letters ("€5", "m²", "« oui »").
_WEST_LETTERS = frozenset("ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜßàáâãäåæçèéêëìíîïñòóôõöøùúûüÿŒœŠšŽžŸ")
_WEST_INNER = frozenset("‘’–—·…")
_WEST_APART = frozenset("“”„‚•€£¥¢©®™°±§¶«»¿¡½¼¾ªº²³µ\xa0")


def _western(data: bytes) -> bool:
    """Whether bytes read as windows-1252 look like Western European text: every non-ASCII
    character one of its letters or signs, no sign between two letters (Polish "ł" read as "³"
    in "ma³y"), and accented letters a minority (Cyrillic or Greek read as windows-1252 are all
    accented letters: "Ïðèâåò")."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    letters = accented = 0
    for i, c in enumerate(text):
        if c.isascii():
            letters += c.isalpha()
            continue
        if c in _WEST_LETTERS:
            letters += 1
            accented += 1
        elif c in _WEST_APART:
            if 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha():
                return False
        elif c not in _WEST_INNER:
            return False
    return accented <= 0.3 * letters


def decode_text(data: bytes, path: Path) -> str:
    """Text from bytes: a byte-order mark, else strict UTF-8, else charset-normalizer's verdict
    (which also decides that bytes are binary, not text)."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return _text_or_binary(data.decode(enc), path)
            except UnicodeDecodeError:
                raise ReaderError(f"{path.name}: not valid {enc} text despite its byte-order mark") from None
    try:
        return _text_or_binary(data.decode("utf-8"), path)
    except UnicodeDecodeError:
        pass
    enc = detect_encoding(data)
    if enc is None:
        raise ReaderError(f"{path.name}: binary data, not text")
    if b"\x00" in data[:4096] and not enc.startswith(("utf_16", "utf_32")):
        raise ReaderError(f"{path.name}: binary data, not text")
    try:
        return _text_or_binary(data.decode(enc), path)
    except (UnicodeDecodeError, LookupError):  # the sample decoded, a later part does not
        raise ReaderError(f"{path.name}: cannot decode text (looks like {enc}, but not all of it is)") from None


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def _text_or_binary(text: str, path: Path) -> str:
    """Decoded bytes that are mostly control characters (or hold a NUL) were not text: NUL and
    0x01… are valid UTF-8, and a decoder accepts them."""
    head = text[:65536]
    if "\x00" in head or len(_CONTROL.findall(head)) > max(8, len(head) // 100):
        raise ReaderError(f"{path.name}: binary data, not text")
    return _newlines(text)


def _newlines(text: str) -> str:
    # replace() copies the whole text even when nothing matches; skip it when nothing will.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


# Indexing keeps every node of a file until the file is stored: ~24 MB per MB of prose (a 5 MB
# text peaked at 277 MB), so a 16 MB text stays well under 1 GB. Larger text, Markdown and HTML
# files (logs, dumps, a 10 GB sparse file) are refused by their size before a byte is read.
MAX_TEXT_BYTES = 16 << 20


def check_text_size(path: Path, size: int) -> None:
    """ReaderError (one line, naming the file) for a text-like file over MAX_TEXT_BYTES."""
    if size > MAX_TEXT_BYTES:
        raise ReaderError(f"{path.name}: {_size(size, '.1f')} of text, more than the {_size(MAX_TEXT_BYTES, 'g')} "
                          "the text, Markdown and HTML readers take")


def _size(n: int, fmt: str) -> str:
    for unit, shift in (("GB", 30), ("MB", 20), ("KB", 10)):
        if n >= 1 << shift or unit == "KB":
            return f"{n / (1 << shift):{fmt}} {unit}"


def load_text(path: str | Path) -> tuple[Path, str]:
    """The decoded contents of a text-like file; ReaderError when empty, binary or over
    MAX_TEXT_BYTES."""
    path = Path(path)
    with open(path, "rb") as f:
        check_text_size(path, os.fstat(f.fileno()).st_size)
        # the file may grow after the check (a log being written): never read past the limit
        data = f.read(MAX_TEXT_BYTES + 1)
    check_text_size(path, len(data))
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
    """Paragraphs at blank lines (at single newlines in text with no blank line), headings where
    a paragraph looks like one: a numbered line, or a line underlined with = or -. Text of very
    many short lines (a word list, a log: :func:`blocks.too_many_blocks`) is packed into
    paragraphs as it is read, without headings: its numbered lines are records."""
    # Split at blank lines; text with no blank lines at all is split at single newlines.
    sep = re.compile(r"\n[ \t]*\n+") if re.search(r"\n[ \t]*\n", text) else re.compile(r"\n+")
    blocks: list[Block] = []
    if too_many_blocks(sum(1 for _ in _chunks(text, sep)), len(text)):
        packer = Packer(text, blocks)
        for s, e in _chunks(text, sep):
            packer.add(s, e)
        packer.flush()
    for s, e in () if blocks else _chunks(text, sep):
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


def _chunks(text: str, sep: re.Pattern) -> Iterator[tuple[int, int]]:
    """(start, end) of the stripped, non-empty pieces of text between separators."""
    pos = 0
    for m in chain(sep.finditer(text), [None]):
        s, e = pos, m.start() if m else len(text)
        pos = m.end() if m else e
        raw = text[s:e]
        stripped = raw.strip()
        if stripped:
            s += len(raw) - len(raw.lstrip())
            yield s, s + len(stripped)
