"""Plain text: paragraphs at blank lines, headings where a line looks like one."""

from __future__ import annotations

import re
from pathlib import Path

from ..core import ReaderError, Tree
from .blocks import Block, build_tree

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
    return next((e for e in _PREFERRED if e in ties), best.encoding)


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
