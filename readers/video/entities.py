"""Names and terms from speech and on-screen text, joined when they co-refer (no model needed).

Candidates: capitalised multi-word names ("World Health Organization", "Karl Marx"), acronyms
("WHO"), single capitalised words seen capitalised mid-sentence, and salient frequent words and
word pairs (which is what carries lower-case auto-captions). Co-reference: the same normalised
form (case, possessives, a leading "the", OCR-dropped spaces), an acronym equal to a name's
initials, a lone surname equal to the last word of exactly one full name, and a term equal to a
name. Every mention is located at its segment, with time, modality and (on screen) box.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

from ...core import Entity, Mention, Node
from ..names import CONNECT, STOP, acronym_key, candidates, initials, normalise

ORG_WORDS = frozenset(
    "organization organisation party company corporation corp inc ltd university institute association agency "
    "bank council committee union foundation society department ministry commission league federation group "
    "school college board bureau office service services network".split()
)
_WORD = re.compile(r"[a-z][a-z'\-]{2,}")


def _time_of(surface: str, line: dict) -> float:
    """Start time of the surface's first word inside a speech line (line start if not found)."""
    first = normalise(surface).split()[:1]
    if first:
        for w in line.get("words") or []:
            if normalise(w["w"]) == first[0]:
                return float(w["t0"])
    return float(line["t0"])


def extract_entities(segments: list[Node], max_terms: int = 20) -> list[Entity]:
    """Entities over all segments, each mention pointing at its segment node."""
    # every utterance: (segment, modality, text, speech line or screen item)
    utts = []
    for seg in segments:
        for l in seg.meta.get("speech", []):
            utts.append((seg, "speech", l["text"], l))
        for s in seg.meta.get("screen", []):
            utts.append((seg, "screen", s["text"], s))

    raw = []  # (surface, type, seg, modality, t, bbox)
    for seg, mod, text, item in utts:
        for surface, typ, _ in candidates(text):
            t = _time_of(surface, item) if mod == "speech" else float(item["t"])
            raw.append((surface, typ, seg, mod, t, item.get("bbox") if mod == "screen" else None))


    # salient lower-case terms: frequent words / word pairs spread over several segments
    seg_words: list[list[str]] = []
    for seg in segments:
        text = " ".join([l["text"] for l in seg.meta.get("speech", [])] + [s["text"] for s in seg.meta.get("screen", [])])
        seg_words.append([w.strip("'-") for w in _WORD.findall(text.lower())])
    tf, df = Counter(), Counter()
    for ws in seg_words:
        grams = [w for w in ws if w not in STOP and len(w) > 3]
        grams += [f"{a} {b}" for a, b in zip(ws, ws[1:]) if a not in STOP and b not in STOP and len(a) > 2 and len(b) > 2]
        tf.update(grams)
        df.update(set(grams))
    n = max(len(segments), 1)
    scored = {g: c * math.log(1 + n / df[g]) * (1.5 if " " in g else 1.0) for g, c in tf.items() if c >= 3 and (df[g] >= 2 or " " in g)}
    terms = []
    for g, _ in sorted(scored.items(), key=lambda kv: -kv[1]):
        if " " not in g and any(g in t.split() and tf[t] >= 0.6 * tf[g] for t in terms if " " in t):
            continue  # "communist" is covered by "communist party"
        terms.append(g)
        if len(terms) >= max_terms:
            break

    # --- grouping --------------------------------------------------------------------------
    groups: dict[str, dict] = {}

    def group(key: str, kind: str) -> dict:
        return groups.setdefault(key, {"kind": kind, "surfaces": Counter(), "mentions": [], "aliases": set()})

    nospace: dict[str, str] = {}
    for surface, typ, seg, mod, t, bbox in raw:
        if typ == "acronym":
            key = "acr:" + acronym_key(surface)
        else:
            key = normalise(surface)
            # OCR drops spaces: "Budget2024" and "Budget 2024" are one name
            key = nospace.setdefault(key.replace(" ", ""), key)
        g = group(key, typ)
        g["surfaces"][surface] += 1
        g["mentions"].append(Mention(node=seg, modality=mod, surface=surface, t=round(t, 3), bbox=tuple(bbox) if bbox else None))

    names = {k: g for k, g in groups.items() if not k.startswith("acr:")}
    # acronym -> the name whose initials it spells
    by_initials = defaultdict(list)
    for k, g in names.items():
        if len(k.split()) >= 2:
            by_initials[initials(g["surfaces"].most_common(1)[0][0])].append(k)
    for k in [k for k in groups if k.startswith("acr:")]:
        targets = by_initials.get(k[4:], [])
        if len(targets) == 1:
            _absorb(groups, targets[0], k)
    # surname -> the one full name ending with it
    for k in [k for k, g in groups.items() if g["kind"] == "single" and not k.startswith("acr:")]:
        full = [o for o in groups if o != k and not o.startswith("acr:") and len(o.split()) >= 2 and o.split()[-1] == k]
        if len(full) == 1:
            _absorb(groups, full[0], k)
            groups[full[0]]["person"] = True

    # terms: mentions found by scanning utterances; merged into a name with the same key
    for term in terms:
        key = nospace.get(term.replace(" ", ""), term)
        g = groups.get(key) or group(key, "term")
        pat = re.compile(r"\b" + re.escape(term).replace(r"\ ", r"\s+") + r"\b", re.I)
        for seg, mod, text, item in utts:
            for m in pat.finditer(text):
                surface = m.group()
                if any(x.node is seg and x.surface.lower() == surface.lower() and x.modality == mod for x in g["mentions"]):
                    continue
                t = _time_of(surface, item) if mod == "speech" else float(item["t"])
                bbox = item.get("bbox") if mod == "screen" else None
                g["mentions"].append(Mention(node=seg, modality=mod, surface=surface, t=round(t, 3), bbox=tuple(bbox) if bbox else None))
                g["surfaces"][surface] += 1

    out = []
    for key, g in groups.items():
        if not g["mentions"]:
            continue
        if g["kind"] == "single" and len(g["mentions"]) < 2:
            continue  # a lone capitalised word seen once, and no surname of a full name: noise
        name = max(g["surfaces"].items(), key=lambda kv: (len(kv[0].split()) > 1, kv[1], len(kv[0])))[0]
        words = set(normalise(name).split())
        if g["kind"] == "term":
            kind = "term"
        elif g["kind"] == "acronym" or words & ORG_WORDS:
            kind = "org"
        elif g.get("person"):
            kind = "person"
        else:
            kind = "name"
        aliases = sorted({s for s in g["surfaces"] if s != name} | g["aliases"])
        ms = sorted(g["mentions"], key=lambda m: (m.t or 0.0))
        out.append(Entity(name=name, kind=kind, aliases=aliases, mentions=ms, meta={"count": len(ms), "modalities": sorted({m.modality for m in ms})}))
    out.sort(key=lambda e: -len(e.mentions))
    return out


def _absorb(groups: dict, into: str, other: str) -> None:
    g, o = groups[into], groups.pop(other)
    g["mentions"].extend(o["mentions"])
    g["surfaces"].update(o["surfaces"])
    g["aliases"].update(o["surfaces"])
