"""Summaries for the coarse and source tiers, made without an LLM.

A section is described by its title path, the lead sentence of its first paragraphs and its
most distinctive terms (tf-idf against the rest of the document), which is enough for the
coarse level to be found by both the lexical and the dense index.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

from ..core import Node
from ..readers.textsplit import CJK_RE, first_sentence
from .lexical import STOPWORDS, segment

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9\-]{2,}|[\u3400-\u9fff]{2,}")


def _terms(text: str) -> Iterator[str]:
    # one at a time: a long Chinese text is millions of bigrams, and a list of them ~100 MB
    if CJK_RE.search(text):
        text = segment(text)
    for m in _TOKEN.finditer(text):
        w = m.group().lower()
        if w not in STOPWORDS:
            yield w


def fine_text(node: Node) -> str:
    return " ".join(c.text for c in node.walk() if c is not node and c.text)


def summarise_tree(root: Node, max_leads: int = 3, n_terms: int = 8) -> dict[int, str]:
    """Summaries keyed by ``id(node)`` for every source and coarse node.

    Each section's bag of terms is counted twice, once for the document frequencies and once to
    rank its own terms, rather than all bags held at once: a 5 MB Chinese text's 742 sections
    hold 810,000 (section, term) pairs, ~100 MB in Counters, where the document's vocabulary
    is 181,000 terms."""
    coarse = [n for n in root.walk() if n.kind in ("section", "scene", "document", "video")]

    def bag(n: Node) -> Counter:
        return Counter(_terms(fine_text(n) if n.kind not in ("document", "video") else ""))

    df: Counter = Counter()
    total: Counter = Counter()  # every bag's counts summed, in the order of the bags
    for n in coarse:
        b = bag(n)
        df.update(b.keys())
        total.update(b)
    n_docs = max(1, len(coarse))
    out: dict[int, str] = {}
    for n in coarse:
        if n.kind in ("document", "video"):
            continue
        scored = sorted(bag(n).items(), key=lambda kv: -kv[1] * math.log(1 + n_docs / (1 + df[kv[0]])))
        leads = [first_sentence(c.text, 160) for c in n.children if c.text][:max_leads]
        if not leads and n.text:
            leads = [first_sentence(n.text, 240)]
        terms = ", ".join(t for t, _ in scored[:n_terms])
        out[id(n)] = " ".join(leads) + (f" Key terms: {terms}." if terms else "")
    # The source summary: what its top-level parts are about.
    tops = [c for c in root.children if c.kind in ("section", "scene")]
    terms = ", ".join(t for t, _ in total.most_common(12))
    heads = "; ".join(c.title for c in tops[:12] if c.title)
    base = root.text.strip() if root.kind == "video" and root.text else ""
    out[id(root)] = " ".join(x for x in [base, f"Contents: {heads}." if heads else "",
                                          f"Key terms: {terms}." if terms else ""] if x)
    return out
