"""The shapes every part of sleuth agrees on.

Readers produce a tree of :class:`Node` (pure data, no database ids); the index persists it;
tools and answers point at places with :class:`Locator`. Documents and videos share one
hierarchy of three tiers (a search ``level`` names a tier, one kind, ``any`` or ``entity``):

==============  ==================================  ===================================
tier            document                            video
==============  ==================================  ===================================
source          ``document``                        ``video``
coarse          ``section`` (nested)                ``scene``
fine            ``paragraph`` / ``table`` / ``figure``  ``segment``
                (a ``table``'s body rows: ``row``)
==============  ==================================  ===================================

Entities cut across tiers and are attached to the tree root (``Tree.entities``).

Coordinates: ``page`` is 1-based; ``bbox`` is ``(x0, top, x1, bottom)`` in PDF points with the
origin at the page's top-left corner (y grows downwards), the convention of pdfplumber and of
rendered page images. ``char_start``/``char_end`` index into the source's full extracted text
(``Tree.text``) so a citation can quote exactly. Times are seconds from the video start.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from typing import Any, Iterator

SOURCE_KINDS = ("document", "video")
COARSE_KINDS = ("section", "scene")
FINE_KINDS = ("paragraph", "table", "figure", "segment", "row")
ALL_KINDS = SOURCE_KINDS + COARSE_KINDS + FINE_KINDS

#: ``level`` names accepted by search besides ``any`` and ``entity``: a tier or one kind.
LEVELS = {
    "source": SOURCE_KINDS,
    "coarse": COARSE_KINDS,
    "fine": FINE_KINDS,
    **{k: (k,) for k in ALL_KINDS},
}


def tier_of(kind: str) -> str:
    """The tier (source / coarse / fine) a node kind belongs to."""
    if kind in SOURCE_KINDS:
        return "source"
    if kind in COARSE_KINDS:
        return "coarse"
    if kind in FINE_KINDS:
        return "fine"
    raise ValueError(f"unknown node kind {kind!r}")


@dataclass
class Locator:
    """Where a piece of evidence sits: a page region of a document or a time span of a video."""

    source: str  # file name as shown to users, e.g. "report.pdf"
    path: str = ""  # absolute path of the file
    kind: str = "document"  # "document" | "video"
    page: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    char_start: int | None = None
    char_end: int | None = None
    t_start: float | None = None
    t_end: float | None = None
    section_path: list[str] = field(default_factory=list)
    paragraph: int | None = None  # 1-based ordinal of the paragraph inside its section
    scene: int | None = None
    segment: int | None = None
    keyframe: str | None = None  # path of a keyframe JPEG inside the library

    def to_dict(self) -> dict[str, Any]:
        # Shallow on purpose: asdict() deep-copies every field, a third of a search's hit
        # assembly time; section_path is the one mutable field and is copied here.
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["section_path"] = list(d["section_path"] or [])
        if d["bbox"] is not None:
            d["bbox"] = [round(float(v), 2) for v in d["bbox"]]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Locator":
        d = dict(d)
        if d.get("bbox") is not None:
            d["bbox"] = tuple(d["bbox"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def label(self) -> str:
        """Human form used in citations: ``report.pdf p.12 §3.2 ¶4`` or ``talk.mp4 00:12:31–00:12:58``."""
        parts = [self.source]
        if self.kind == "video":
            if self.t_start is not None:
                span = fmt_time(self.t_start)
                if self.t_end is not None and self.t_end > self.t_start:
                    span += "–" + fmt_time(self.t_end)
                parts.append(span)
            return " ".join(parts)
        if self.page is not None:
            parts.append(f"p.{self.page}")
        if self.section_path:
            head = self.section_path[-1]
            num = head.split()[0] if head and head.split()[0][:1].isdigit() else None
            parts.append(f"§{num.rstrip('.')}" if num else f"§{_short(head)}")
        if self.paragraph is not None:
            parts.append(f"¶{self.paragraph}")
        return " ".join(parts)


def _short(title: str, n: int = 32) -> str:
    title = " ".join(title.split())
    return title if len(title) <= n else title[: n - 1] + "…"


def fmt_time(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass(eq=False)
class Node:
    """One place in a source. Readers fill these; the index gives them ids."""

    kind: str
    title: str = ""
    text: str = ""
    page: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    char_start: int | None = None
    char_end: int | None = None
    t_start: float | None = None
    t_end: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    children: list["Node"] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in ALL_KINDS:
            raise ValueError(f"unknown node kind {self.kind!r}")

    def add(self, child: "Node") -> "Node":
        self.children.append(child)
        return child

    def walk(self) -> Iterator["Node"]:
        """Pre-order (document order) traversal."""
        stack = [self]
        while stack:
            n = stack.pop()
            yield n
            stack.extend(reversed(n.children))


@dataclass(eq=False, slots=True)
class Mention:
    """An entity occurring at a node, heard ("speech"), seen ("screen") or written ("text").

    Slotted: a long document has ~20 mentions per KB of text (100,000 for 5 MB), and a slotted
    instance is a third the size of one with a ``__dict__``."""

    node: Node
    modality: str  # "text" | "speech" | "screen"
    surface: str = ""
    t: float | None = None
    bbox: tuple[float, float, float, float] | None = None


@dataclass(eq=False)
class Entity:
    name: str
    kind: str = "term"  # "person" | "org" | "place" | "term" | "speaker" | ...
    aliases: list[str] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Tree:
    """What a reader returns for one file."""

    root: Node  # kind "document" or "video"
    text: str = ""  # full extracted text; node char spans index into it
    entities: list[Entity] = field(default_factory=list)
    #: extra files to keep in the library (e.g. keyframe JPEGs): name -> bytes
    assets: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: seconds the reader spent in stages worth telling apart (``ocr``), for the indexing split
    timings: dict[str, float] = field(default_factory=dict)


TOKENS_PER_WORD = 1.3  # English words to LLM tokens, roughly; budgets only need the right size


def approx_tokens(text: str) -> int:
    """A cheap token estimate (words x 1.3) for budgets: what ``read`` charges and the agent
    counts. Stored node ``tokens`` are exact word-piece counts; this is for everything else."""
    return max(1, int(len(text.split()) * TOKENS_PER_WORD)) if text else 0


def words_for_tokens(max_tokens: int) -> int:
    """How many words :func:`approx_tokens` lets through for ``max_tokens`` (at least one)."""
    return max(1, int(max_tokens / TOKENS_PER_WORD))


def sha256_file(path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (content hashes, model checks)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ReaderError(Exception):
    """A file that cannot be read. The message is one line naming the reason."""


# Characters JSON may carry raw but a terminal or browser would obey or misread: C1 controls (0x9b
# is a one-byte CSI), bidi controls, and the line separators JavaScript treats as newlines. They
# can only occur inside JSON strings, where a \uXXXX escape is the same text.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def inert_json(obj: Any, indent: int | None = None) -> str:
    """``obj`` as JSON (UTF-8 as is, anything else as its str) with the characters above escaped:
    the data is unchanged once parsed, and inert on a terminal (``--json``, ``sleuth serve``)."""
    text = json.dumps(obj, ensure_ascii=False, default=str, indent=indent,
                      separators=None if indent else (",", ":"))
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
