"""Section summaries: the two-pass summariser against the plain one that held every bag at once."""

from __future__ import annotations

import math
import random
import tracemalloc
from collections import Counter
from conftest import SHARED

from sleuth.core import Node
from sleuth.index.summarize import _terms, fine_text, summarise_tree
from sleuth.readers.textsplit import first_sentence
from sleuth.readers.text import parse_text

def reference(root: Node, max_leads: int = 3, n_terms: int = 8) -> dict[int, str]:
    """The plain summariser: every section's bag of terms in memory at once."""
    coarse = [n for n in root.walk() if n.kind in ("section", "scene", "document", "video")]
    bags = {id(n): Counter(_terms(fine_text(n) if n.kind not in ("document", "video") else "")) for n in coarse}
    df: Counter = Counter()
    for bag in bags.values():
        df.update(set(bag))
    n_docs = max(1, len(bags))
    out: dict[int, str] = {}
    for n in coarse:
        if n.kind in ("document", "video"):
            continue
        bag = bags[id(n)]
        scored = sorted(bag.items(), key=lambda kv: -kv[1] * math.log(1 + n_docs / (1 + df[kv[0]])))
        leads = [first_sentence(c.text, 160) for c in n.children if c.text][:max_leads]
        if not leads and n.text:
            leads = [first_sentence(n.text, 240)]
        terms = ", ".join(t for t, _ in scored[:n_terms])
        out[id(n)] = " ".join(leads) + (f" Key terms: {terms}." if terms else "")
    tops = [c for c in root.children if c.kind in ("section", "scene")]
    total = Counter()
    for b in bags.values():
        total.update(b)
    terms = ", ".join(t for t, _ in total.most_common(12))
    heads = "; ".join(c.title for c in tops[:12] if c.title)
    base = root.text.strip() if root.kind == "video" and root.text else ""
    out[id(root)] = " ".join(x for x in [base, f"Contents: {heads}." if heads else "",
                                          f"Key terms: {terms}." if terms else ""] if x)
    return out


def _nested(seed: int) -> Node:
    """Sections within sections, English and Chinese words, ties in the counts."""
    rng = random.Random(seed)
    words = "battery remote control design budget market 电池 遥控器 设计 预算 市场 用户".split()
    root = Node(kind="document", title="doc")

    def fill(parent: Node, depth: int) -> None:
        for i in range(rng.randint(1, 4)):
            if depth < 3 and rng.random() < 0.5:
                sec = parent.add(Node(kind="section", title=f"part {depth}.{i}"))
                fill(sec, depth + 1)
            else:
                parent.add(Node(kind="paragraph", text=" ".join(rng.choice(words) for _ in range(rng.randint(3, 30))) + "."))

    fill(root, 0)
    return root


def test_same_summaries_as_the_reference_on_nested_sections():
    for seed in range(30):
        root = _nested(seed)
        assert summarise_tree(root) == reference(root), seed


def test_same_summaries_on_real_text_and_less_memory():
    # a LongBench multi_news context as the text reader cuts it (sections made by the reader)
    import json

    path = SHARED / "longbench" / "multi_news.jsonl"
    if path.exists():
        with path.open(encoding="utf-8") as f:
            text = "\n\n".join(json.loads(next(f))["context"] for _ in range(40))
    else:  # without the shared data: generated prose of the same shape
        rng = random.Random(0)
        vocab = [f"w{i}ord" for i in range(4000)]
        text = "\n\n".join(" ".join(rng.choice(vocab) for _ in range(60)) + "." for _ in range(3000))
    tree = parse_text(text, title="t")
    tracemalloc.start()
    try:
        got = summarise_tree(tree.root)
        _, peak_new = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        want = reference(tree.root)
        _, peak_ref = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == want
    assert sum(1 for n in tree.root.walk() if n.kind == "section") > 10
    assert peak_new < peak_ref
