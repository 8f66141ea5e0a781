"""Shared text utilities for readers: sentence splitting, bounded paragraphs, synthetic sections."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import chain

from ..core import Node

# CJK sentence enders have no following space; Latin ones need one.
_SENT_RE = re.compile(r"(?<=[.!?。！？；])[\"'”’)\]]*\s+|(?<=[。！？；])")
CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

MAX_PARA_WORDS = 220  # longer blocks are split at sentence ends so a hit stays readable
SECTION_PARAS = 12  # plain text without headings is grouped into sections of this many paragraphs


_ABBREV = re.compile(r"(?:\b(?:Dr|Mr|Mrs|Ms|Prof|St|Sr|Jr|vs|etc|e\.g|i\.e|Fig|Figs|No|Nos|Vol|pp|cf|Inc|Ltd|Co|Corp|approx|Eq|Sec|Ch)|\b[A-Z])\.$")


def sentences(text: str) -> list[str]:
    return [" ".join(text[a:b] for a, b in group) for group in _sentence_parts(text)]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of sentences inside ``text``. A sentence joined across an
    abbreviation ("Dr.\nFalk") whose text differs from what :func:`sentences` gives is left out."""
    return list(_iter_spans(text))


def _iter_spans(text: str, keep_long: bool = False) -> Iterator[tuple[int, int]]:
    for group in _sentence_parts(text):
        s, e = group[0][0], group[-1][1]
        # the parts of one sentence are joined with one space: a span only where the text has that
        if len(group) == 1 or all(a - b == 1 and text[b] == " " for (_, b), (a, _) in zip(group, group[1:])):
            yield s, e
        elif keep_long and e - s > MAX_SENTENCE_CHARS:
            yield s, e


def _sentence_parts(text: str) -> Iterator[list[tuple[int, int]]]:
    """Each sentence as the (start, end) spans of its stripped parts, one at a time. Spans, not
    strings joined as they come: a text of a million "A." parts is one sentence, and joining (or
    searching) all of it again at each part was quadratic."""
    group: list[tuple[int, int]] = []
    pos = 0
    for m in chain(_SENT_RE.finditer(text), [None]):
        a, b = pos, m.start() if m else len(text)
        pos = m.end() if m else b
        seg = text[a:b]
        stripped = seg.strip()
        if not stripped:
            continue
        a += len(seg) - len(seg.lstrip())
        b = a + len(stripped)
        # "Dr. Falk", "J. Smith", "e.g. this": a period after an abbreviation or an initial
        # does not end the sentence. The longest abbreviation is 7 characters: the tail decides.
        if group and _ABBREV.search(text[max(group[-1][0], group[-1][1] - 16) : group[-1][1]]):
            group.append((a, b))
        else:
            if group:
                yield group
            group = [(a, b)]
    if group:
        yield group


def word_len(text: str) -> int:
    """Words for Latin text plus one per CJK character (what a tokenizer roughly spends)."""
    cjk = len(CJK_RE.findall(text))
    return len(text.split()) + cjk


def split_long(text: str, start: int, max_words: int = MAX_PARA_WORDS) -> list[tuple[int, int]]:
    """Split the block text[start:...] into spans of at most ~max_words, at sentence ends. A
    "sentence" over MAX_SENTENCE_CHARS (text with no sentence ends, a string with no spaces) is
    cut at word boundaries first, inside a word only where one word alone is too long. The
    spans cover the block from its first to its last character."""
    if len(text) <= MAX_SENTENCE_CHARS and word_len(text) <= max_words:
        return [(start, start + len(text))]
    out, cur_s, cur_e, cur_w = [], None, None, 0
    for s, e in _cut_long(text, _iter_spans(text, keep_long=True), max_words):
        w = word_len(text[s:e])
        if cur_s is not None and (cur_w + w > max_words or e - cur_s > MAX_SENTENCE_CHARS):
            out.append((start + cur_s, start + cur_e))
            cur_s, cur_w = None, 0
        if cur_s is None:
            cur_s = s
        cur_e, cur_w = e, cur_w + w
    if cur_s is not None:
        out.append((start + cur_s, start + cur_e))
    if not out:
        return [(start, start + len(text))]
    # a sentence left out of the spans (joined across "Dr.\n") at either end is kept, not lost
    out[0] = (start + len(text) - len(text.lstrip()), out[0][1])
    out[-1] = (out[-1][0], start + len(text.rstrip()))
    return out


# Real sentences reach ~8,000 characters (a Chinese table flattened into one "sentence",
# LongBench multifieldqa_zh) and are kept whole; a longer one is no sentence but text without
# sentence ends, which would otherwise become one paragraph of megabytes.
MAX_SENTENCE_CHARS = 10_000
_WORD_RE = re.compile(r"\S+")


def _cut_long(text: str, spans, max_words: int):
    """The spans, those longer than MAX_SENTENCE_CHARS cut into pieces of at most max_words
    words and MAX_SENTENCE_CHARS characters at spaces."""
    for s, e in spans:
        if e - s <= MAX_SENTENCE_CHARS:
            yield s, e
            continue
        cur_s, cur_e, cur_w = None, s, 0
        for m in _WORD_RE.finditer(text, s, e):
            ws, we = m.span()
            # one word longer than a piece (no spaces for megabytes, or CJK, where every
            # character counts as a word): its own pieces, cut every so many characters
            step = max_words if CJK_RE.search(text, ws, min(we, ws + 4096)) else MAX_SENTENCE_CHARS
            if we - ws > step:
                if cur_s is not None:
                    yield cur_s, cur_e
                    cur_s, cur_w = None, 0
                for a in range(ws, we, step):
                    yield a, min(a + step, we)
                continue
            word = text[ws:we]
            w = 1 if word.isascii() else word_len(word)
            if cur_s is not None and (cur_w + w > max_words or we - cur_s > MAX_SENTENCE_CHARS):
                yield cur_s, cur_e
                cur_s, cur_w = None, 0
            if cur_s is None:
                cur_s = ws
            cur_e, cur_w = we, cur_w + w
        if cur_s is not None:
            yield cur_s, cur_e


def first_sentence(text: str, max_chars: int = 90) -> str:
    s = sentences(text)
    head = (s[0] if s else text).strip()
    return head if len(head) <= max_chars else head[: max_chars - 1].rstrip() + "…"


def group_into_sections(paras: list[Node], size: int = SECTION_PARAS) -> list[Node]:
    """Give heading-less text a coarse level: consecutive paragraphs become titled sections."""
    sections = []
    for i in range(0, len(paras), size):
        chunk = paras[i : i + size]
        sec = Node(
            kind="section",
            title=f"Part {i // size + 1}: {first_sentence(chunk[0].text, 60)}",
            char_start=chunk[0].char_start,
            char_end=chunk[-1].char_end,
            page=chunk[0].page,
            meta={"level": 1, "synthetic": True},
            children=list(chunk),
        )
        sections.append(sec)
    return sections
