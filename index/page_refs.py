"""Pages a question names ("the map on page 12", "slides 3-5", "pages 10 and 11").

A reader who writes a page number means that page, whatever words it shares with the
question: the picture on page 25 may carry no text at all. Search puts the named pages of the
sources in scope among its hits (:mod:`sleuth.index.search`).

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
