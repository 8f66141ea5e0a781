"""Extractive summaries (no LLM): the lines that carry a scene's distinctive words, and a video card."""

from __future__ import annotations

import math
import re
from collections import Counter

from ...core import Entity, fmt_time
from ..names import STOP

_W = re.compile(r"[a-z][a-z'\-]{2,}")


def content_words(text: str) -> list[str]:
    """Lower-case words without stop words (term frequencies for summaries and scene text)."""
    return [w for w in _W.findall(text.lower()) if w not in STOP]


def pick_lines(lines: list[dict], doc_freq: Counter, n_docs: int, k: int = 3) -> list[dict]:
    """The k lines with the most distinctive words (tf-idf mass, mildly length-normalised), in time order."""
    if len(lines) <= k:
        return list(lines)
    tf = Counter(w for l in lines for w in content_words(l["text"]))

    def score(l: dict) -> float:
        ws = set(content_words(l["text"]))
        if not ws:
            return 0.0
        mass = sum(tf[w] * math.log(1 + n_docs / (1 + doc_freq[w])) for w in ws)
        return mass / math.sqrt(len(l["text"].split()) + 4)

    best = sorted(range(len(lines)), key=lambda i: -score(lines[i]))[:k]
    return [lines[i] for i in sorted(best)]


def _distinct_screen(items: list[dict], k: int) -> list[str]:
    seen, out = set(), []
    for s in sorted(items, key=lambda s: (-(s.get("t_end", s["t"]) - s["t"]), s["t"])):
        key = re.sub(r"\W+", "", s["text"].lower())
        if key and key not in seen:
            seen.add(key)
            out.append(s)
        if len(out) >= k:
            break
    return [s["text"] for s in sorted(out, key=lambda s: s["t"])]


def scene_text(speech: list[dict], screen: list[dict], doc_freq: Counter, n_docs: int) -> str:
    parts = []
    chosen = pick_lines(speech, doc_freq, n_docs)
    if chosen:
        parts.append(" … ".join(l["text"] for l in chosen))
    shown = _distinct_screen(screen, 3)
    if shown:
        parts.append("On screen: " + " | ".join(shown))
    return "\n".join(parts)


def video_text(title: str, meta: dict, n_scenes: int, n_segments: int, speech: list[dict], screen: list[dict], entities: list[Entity]) -> str:
    src = meta.get("transcript_source", "none")
    lines = [
        f"Video {title!r}: {fmt_time(meta.get('duration', 0.0))} long, {meta.get('width')}x{meta.get('height')}, "
        f"{n_scenes} scene(s), {n_segments} segment(s); speech from {src}"
        + (f" ({len(speech)} lines)" if speech else "")
        + (f"; {len(screen)} on-screen text item(s)" if screen else "")
        + "."
    ]
    named = [e for e in entities if e.kind != "term"][:8]
    terms = [e for e in entities if e.kind == "term"][:8]
    if named:
        lines.append("Names: " + ", ".join(e.name for e in named) + ".")
    if terms:
        lines.append("Key terms: " + ", ".join(e.name for e in terms) + ".")
    if speech:
        opening = " ".join(l["text"] for l in speech[:3])
        lines.append(f"Speech begins: {opening[:300]}")
    shown = _distinct_screen(screen, 5)
    if shown:
        lines.append("On screen: " + " | ".join(shown)[:300])
    return "\n".join(lines)
