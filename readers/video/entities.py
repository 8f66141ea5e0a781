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

STOP = frozenset(
    """a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during
    each few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
    herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself just let's me
    more most mustn't my myself no nor not now of off on once only or other ought our ours ourselves out over own
    same shan't she she'd she'll she's should shouldn't so some such than that that's the their theirs them
    themselves then there there's these they they'd they'll they're they've this those through to too under
    until up upon very was wasn't we we'd we'll we're we've were weren't what what's when when's where where's
    which while who who's whom why why's will with won't would wouldn't you you'd you'll you're you've your yours
    yourself yourselves yes yeah okay ok oh uh um well like really going know think get got one two three four
    five six seven eight nine ten first second next last many much every thing things way make made see said say
    says want need time times today now new good great right let lets also even still back come came take took
    look looks looking go goes went into onto than within without however therefore thus hence each other another
    here there where every everyone everything something anything nothing someone people kind sort lot lots
    part parts point points slide slides""".split()
)
#: lower-case words allowed inside a capitalised name ("Bank of England", "Leonardo da Vinci")
CONNECT = frozenset("of the for and de da di van von der del la le du on".split())
ORG_WORDS = frozenset(
    "organization organisation party company corporation corp inc ltd university institute association agency "
    "bank council committee union foundation society department ministry commission league federation group "
    "school college board bureau office service services network".split()
)
_CAP = re.compile(r"^[A-Z][a-zA-Z'’\-]*[a-zA-Z]$|^[A-Z]$")
_ACR = re.compile(r"^(?:[A-Z][A-Z0-9&]{1,6}|(?:[A-Z]\.){2,6})s?$")
_TOK = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\.\-]*|&")
_WORD = re.compile(r"[a-z][a-z'\-]{2,}")


def normalise(s: str) -> str:
    s = s.replace("’", "'").lower()
    s = re.sub(r"'s\b", "", s)
    s = re.sub(r"^the\s+", "", s)
    return " ".join(re.sub(r"[^0-9a-z&]+", " ", s).split())


def _acronym_key(s: str) -> str:
    return re.sub(r"[^A-Z0-9&]", "", s.rstrip("s") if s.endswith("s") and s[:-1].isupper() else s)


def initials(name: str) -> str:
    return "".join(w[0].upper() for w in name.split() if w.lower() not in CONNECT and w[:1].isalpha())


def _clean_tok(t: str) -> str:
    return t.strip(".-'’")


def candidates(text: str) -> list[tuple[str, str, int]]:
    """(surface, type, token index) for names and acronyms in one line; type is "name"|"acronym"|"single".

    "single" is a lone capitalised word not at a sentence start (a possible name).
    """
    toks = [(_clean_tok(m.group()), m.start()) for m in _TOK.finditer(text)]
    toks = [(t, p) for t, p in toks if t]
    upper_line = sum(1 for t, _ in toks if t.isupper() and len(t) > 1) > max(2, 0.6 * len(toks))
    out: list[tuple[str, str, int]] = []
    i = 0
    while i < len(toks):
        tok, pos = toks[i]
        if _ACR.match(tok) and not upper_line and len(_acronym_key(tok)) >= 2:
            out.append((tok, "acronym", i))
            i += 1
            continue
        if _CAP.match(tok) and not tok.isupper() or (upper_line and tok.isalpha() and len(tok) > 1):
            j = i + 1
            while j < len(toks):
                t = toks[j][0]
                if _CAP.match(t) and not _ACR.match(t) or (upper_line and t.isalpha()):
                    j += 1
                elif t.lower() in CONNECT and j + 1 < len(toks) and (_CAP.match(toks[j + 1][0]) or upper_line):
                    j += 1
                else:
                    break
            words = [t for t, _ in toks[i:j]]
            while words and words[-1].lower() in CONNECT:
                words.pop()
            # a sentence-initial function word is not part of the name ("The Bank of England")
            sent_start = i == 0 or re.search(r"[.!?:]\s*$", text[: pos])
            while words and words[0].lower() in STOP:
                words.pop(0)
                sent_start = False
            if upper_line:
                words = [w.capitalize() if w.lower() not in CONNECT else w.lower() for w in words]
            if len(words) >= 2:
                out.append((" ".join(words), "name", i))
            elif len(words) == 1 and not sent_start and words[0].lower() not in STOP and len(words[0]) > 2:
                out.append((words[0], "single", i))
            i = max(j, i + 1)
            continue
        i += 1
    return out


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
            key = "acr:" + _acronym_key(surface)
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
