"""Shared text utilities for readers: sentence splitting, bounded paragraphs, synthetic sections."""

from __future__ import annotations

import re

from ..core import Node

# CJK sentence enders have no following space; Latin ones need one.
_SENT_RE = re.compile(r"(?<=[.!?。！？；])[\"'”’)\]]*\s+|(?<=[。！？；])")
CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

MAX_PARA_WORDS = 220  # longer blocks are split at sentence ends so a hit stays readable
SECTION_PARAS = 12  # plain text without headings is grouped into sections of this many paragraphs


_ABBREV = re.compile(r"(?:\b(?:Dr|Mr|Mrs|Ms|Prof|St|Sr|Jr|vs|etc|e\.g|i\.e|Fig|Figs|No|Nos|Vol|pp|cf|Inc|Ltd|Co|Corp|approx|Eq|Sec|Ch)|\b[A-Z])\.$")


def sentences(text: str) -> list[str]:
    parts = [p.strip() for p in _SENT_RE.split(text)]
    out: list[str] = []
    for p in parts:
        if not p:
            continue
        # "Dr. Falk", "J. Smith", "e.g. this": a period after an abbreviation or an initial
        # does not end the sentence.
        if out and _ABBREV.search(out[-1]):
            out[-1] = out[-1] + " " + p
        else:
            out.append(p)
    return out


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of sentences inside ``text``."""
    spans, pos = [], 0
    for s in sentences(text):
        i = text.find(s, pos)
        if i < 0:
            continue
        spans.append((i, i + len(s)))
        pos = i + len(s)
    return spans


def word_len(text: str) -> int:
    """Words for Latin text plus one per CJK character (what a tokenizer roughly spends)."""
    cjk = len(CJK_RE.findall(text))
    return len(text.split()) + cjk


def split_long(text: str, start: int, max_words: int = MAX_PARA_WORDS) -> list[tuple[int, int]]:
    """Split the block text[start:...] into spans of at most ~max_words, at sentence ends."""
    if word_len(text) <= max_words:
        return [(start, start + len(text))]
    out, cur_s, cur_e, cur_w = [], None, None, 0
    for s, e in sentence_spans(text) or [(0, len(text))]:
        w = word_len(text[s:e])
        if cur_s is not None and cur_w + w > max_words:
            out.append((start + cur_s, start + cur_e))
            cur_s, cur_w = None, 0
        if cur_s is None:
            cur_s = s
        cur_e, cur_w = e, cur_w + w
    if cur_s is not None:
        out.append((start + cur_s, start + cur_e))
    return out


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
