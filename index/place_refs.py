"""Places a question names: pages ("the map on page 12", "slides 3-5"), the ends of a document
("the cover", "the last page") and numbered figures and tables ("in Figure 5", "Table 1").

A reader who writes "page 25" or "Figure 5" means that place, whatever words it shares with
the question: the picture on page 25 may carry no text at all, and "what colour is the line in
Figure 5" shares only "figure" with the caption. Search puts the named places of the sources in
scope among its hits (:mod:`sleuth.index.search`).

Numbers inside quotes are not references: "formatted like ['Page 2', 'Page 4']" shows a format.
"""

from __future__ import annotations

import re

#: a range longer than this is a span to count over, not a place to look ("pages 100-120")
MAX_SPAN = 12

_WORD = r"(?:pages?|pp?\.|slides?)"
_ITEM = rf"(?:{_WORD}\s*)?\d{{1,5}}(?:\s*(?:-|–|—|to|through)\s*(?:{_WORD}\s*)?\d{{1,5}})?"
# "page 12", "slides 3-5", "pages 10 and 11", "page 15 and page 16", "p. 7 and pp. 9-10"
_REF = re.compile(rf"\b{_WORD}\s*\d{{1,5}}(?:\s*(?:-|–|—|to|through)\s*(?:{_WORD}\s*)?\d{{1,5}})?"
                  rf"(?:\s*(?:,|and|&|or)\s*{_ITEM}\b)*", re.I)
_PART = re.compile(r"(\d{1,5})(?:\s*(?:-|–|—|to|through)\s*(?:[a-z.]*\s*)?(\d{1,5}))?", re.I)
_QUOTED = re.compile(r"'[^'\n]{0,80}'|\"[^\"\n]{0,80}\"|“[^”\n]{0,80}”|‘[^’\n]{0,80}’")


def page_refs(text: str) -> list[int]:
    """1-based page numbers the text refers to, in the order written, without repeats."""
    text = _QUOTED.sub(" ", text or "")
    out: list[int] = []
    for m in _REF.finditer(text):
        for part in _PART.finditer(m.group()):
            first = int(part.group(1))
            last = int(part.group(2)) if part.group(2) else first
            if last < first:
                pages = [first, last]
            elif last - first < MAX_SPAN:
                pages = list(range(first, last + 1))
            else:
                pages = []
            for p in pages:
                if p >= 1 and p not in out:
                    out.append(p)
    return out


_FIRST = re.compile(r"\b(?:the\s+(?:front\s+)?cover(?!\s+(?:letter|story|charge|note|sheet)\b)|cover\s+(?:page|slide)|"
                    r"front\s+cover|(?:first|title|front|opening)\s+(?:page|slide))\b", re.I)
_LAST = re.compile(r"\b(?:(?:last|final|closing)\s+(?:page|slide)|back\s+cover)\b", re.I)


def end_refs(text: str) -> list[str]:
    """"first" for the cover, title or first page, "last" for the last page or back cover, in
    the order written."""
    text = _QUOTED.sub(" ", text or "")
    found = [(m.start(), "first") for m in _FIRST.finditer(text)] + [(m.start(), "last") for m in _LAST.finditer(text)]
    return list(dict.fromkeys(kind for _, kind in sorted(found)))


_CAPTION_REF = re.compile(r"\b(figures?|figs?\.?|tables?)\s*(\d{1,3})(?:\s*(?:-|–|—|to|through)\s*(\d{1,3}))?"
                          r"((?:\s*(?:,|and|&)\s*\d{1,3}\b)*)", re.I)


def caption_refs(text: str) -> list[tuple[str, int]]:
    """("figure" | "table", number) for each numbered figure or table the text names."""
    text = _QUOTED.sub(" ", text or "")
    out: list[tuple[str, int]] = []
    for m in _CAPTION_REF.finditer(text):
        kind = "table" if m.group(1).lower().startswith("tab") else "figure"
        first = int(m.group(2))
        last = int(m.group(3)) if m.group(3) else first
        nums = list(range(first, last + 1)) if first <= last and last - first < MAX_SPAN else [first]
        nums += [int(n) for n in re.findall(r"\d{1,3}", m.group(4) or "")]
        for n in nums:
            if n >= 1 and (kind, n) not in out:
                out.append((kind, n))
    return out


def caption_pattern(kind: str, number: int) -> re.Pattern:
    """Matches the start of the caption of that figure or table ("Figure 5:", "Fig. 5.", "TABLE 5")."""
    word = r"(?:figure|fig\.?)" if kind == "figure" else r"(?:table|tab\.?)"
    return re.compile(rf"^\W{{0,3}}{word}\s*{number}(?!\d)(?:\s*[:.\-–—|]|\s+(?-i:[A-Z(])|\s*$)", re.I)
