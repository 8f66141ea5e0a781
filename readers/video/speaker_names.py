"""Names on screen linked to the voices that speak: the active-speaker label of a video call.

Call software (Zoom, Teams, Meet and the like) shows the name of whoever is speaking and changes
it as the turns change. Voice clustering (:mod:`.speakers`) knows who speaks *alike* but not who
they are, and it under-counts voices that sound close; the label knows the name and when each
person speaks. This module finds such labels among the on-screen lines by how they behave, never
by where or how they are drawn, and links them to the voice clusters by time:

1. **Candidates**: short name-like lines (a few words of letters, no digits, no colon: a
   person's name or role, not a sentence, a clock or an "Agenda: …" line), OCR variants of one
   text taken together; a text always up with another (an avatar's initials beside the
   name) is part of it.
2. **Labels**: candidates that come and go, each back on screen at least :data:`MIN_STRETCHES`
   times, at least two of them, rarely on screen together (one active speaker at a time), and
   whose switches from one to another fall at speech onsets (a line's start or a word after a
   pause) clearly more often than random times do (allowing one fixed delay, :data:`MAX_LAG`,
   as call software switches a moment after the voice starts), and together up during most of the speech
   (:data:`MIN_COVER`). A title that stays up, an agenda line that
   changes on its own schedule and a gallery of names that are all shown at once fail this.
3. **Linking**: each voice cluster takes the label that is on screen during most of its speech,
   when that label clearly dominates (:data:`LINK_SHARE`, :data:`LINK_MARGIN`); one cluster per
   label (the one that holds most of that label's speech).
4. **Splitting** (the under-count fix): a cluster whose speech falls under two or more labels,
   each for a long stretch (:data:`SPLIT_SHARE` of it and :data:`SPLIT_MIN_S` seconds), is cut
   by label: each of its lines goes to the label on screen during most of it. Lines under no
   label stay where the voices put them. Only done when the labels passed step 2, so a recording
   without such labels keeps the voice clustering untouched.
5. **Entities**: :func:`join_shown_entities` folds the entity the name makes on screen into the
   named voice's speaker entity (:func:`.speakers.speaker_entities` names it and gives the bare
   name as an alias).

    summary = link_speaker_names(lines, screen, summary)  # line["speaker_name"], summary["names"]
    entities = join_shown_entities(entities)               # after speaker_entities
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np

from .onscreen import norm_text, same_text

#: a name or role is at most this many words and characters
NAME_MAX_WORDS, NAME_MAX_CHARS = 4, 40
#: a label must come back: each text at least this many separate stretches on screen
MIN_STRETCHES = 3
#: how many of the most read texts take the OCR variants of rarer ones
FOLD_HOMES = 50
#: two reads of one text further apart than this (s) are separate stretches (OCR reads every ~2 s)
STRETCH_GAP = 3.0
#: a text up together with another for this share of both their times is part of that label
COMPANION = 0.8
#: a label last read at ``t_end`` is taken to stay up this much longer unless another replaces it
HOLD_S = 2.0
#: at most this share of the labels' screen time may have two labels up at once
MAX_TOGETHER = 0.15
#: a switch is at a speech onset when one lies within this many seconds
ALIGN_TOL = 1.0
#: the label may trail the voice by up to MAX_LAG seconds, tried in LAG_STEP steps
MAX_LAG, LAG_STEP = 3.0, 0.25
#: a silence at least this long (s) between two words makes the next word an onset
ONSET_GAP = 0.3
#: switches at onsets: at least this share, and missing an onset at most this fraction as often
#: as random times do (a dense conversation has onsets nearly everywhere, so the misses tell)
MIN_ALIGNED, MAX_MISS_RATIO = 0.5, 0.5
#: the labels are up during at least this share of the speech (call software always shows who
#: speaks; slide titles that recur over a narration are up for a part of it)
MIN_COVER = 0.6
#: a label names a cluster when up during this share of its speech, this many times the next
LINK_SHARE, LINK_MARGIN = 0.5, 2.0
#: a cluster is cut by label when two labels each cover this share and this many seconds of it
SPLIT_SHARE, SPLIT_MIN_S = 0.2, 30.0

_NAME = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ.'’\- ]*")


def name_like(text: str) -> bool:
    """A few words of letters: a name or a role, not a sentence, a number or a labelled field."""
    t = " ".join(text.split())
    return bool(t) and len(t) <= NAME_MAX_CHARS and len(t.split()) <= NAME_MAX_WORDS and bool(_NAME.fullmatch(t)) \
        and any(c.isupper() for c in t) and not t.endswith(".")


def _groups(screen: list[dict]) -> dict[str, list[dict]]:
    """Name-like screen items by text, OCR variants of one text under its most read spelling."""
    by_norm: dict[str, list[dict]] = defaultdict(list)
    for s in screen:
        if name_like(s["text"]) and norm_text(s["text"]):
            by_norm[norm_text(s["text"])].append(s)
    # fold a rarely read variant ("Marketinq") into a more often read text it matches; only the
    # FOLD_HOMES most read texts take variants: a label is read at every turn, and comparing
    # every pair of a long lecture's thousands of slide lines took minutes
    keys = sorted(by_norm, key=lambda k: -len(by_norm[k]))
    out: dict[str, list[dict]] = {}
    homes: list[str] = []
    for k in keys:
        home = next((h for h in homes if same_text(h, k)), None)
        if home is None:
            out[k] = list(by_norm[k])
            if len(homes) < FOLD_HOMES:
                homes.append(k)
        else:
            out[home] += by_norm[k]
    return {Counter(s["text"] for s in items).most_common(1)[0][0]: items for items in out.values()}


def _stretches(items: list[dict], times: list[float]) -> list[tuple[float, float]]:
    """Times a text was up: reads less than :data:`STRETCH_GAP` apart are one stretch (a read
    that missed it) unless another name came up between them (``times``: every name-like read's
    start, sorted; none of this text's own reads starts strictly between two of its stretches'
    reads, so any read there is another name's)."""
    import bisect

    spans = sorted((float(s["t"]), float(s.get("t_end", s["t"]))) for s in items)
    out = [list(spans[0])]
    for a, b in spans[1:]:
        between = bisect.bisect_left(times, a) > bisect.bisect_right(times, out[-1][1])
        if a - out[-1][1] <= STRETCH_GAP and not between:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _fold_companions(cands: dict[str, list[tuple[float, float]]]) -> dict[str, list[tuple[float, float]]]:
    """Texts that are up exactly when another is (an avatar's initials "PM" beside "Project
    Manager", a name read in two pieces) are one label, named by the longest of them."""
    def up(ss):
        return sum(b - a for a, b in ss) or 1e-9

    out: dict[str, list[tuple[float, float]]] = {}
    for n in sorted(cands, key=lambda n: (-len(n), n)):
        home = next((h for h in out if sum(_overlap(out[h], a, b) for a, b in cands[n]) >= COMPANION * max(up(cands[n]), up(out[h]))), None)
        if home is None:
            out[n] = cands[n]
    return out


def _timeline(stretches: dict[str, list[tuple[float, float]]]) -> dict[str, list[tuple[float, float]]]:
    """Each label's stretches held up to :data:`HOLD_S` past its last read, but never past the
    moment another label comes up (the reads are sparse; the label stays until replaced)."""
    import bisect

    starts = sorted((a, name) for name, ss in stretches.items() for a, _ in ss)
    times = [a for a, _ in starts]
    out = {}
    for name, ss in stretches.items():
        held = []
        for a, b in ss:
            i = bisect.bisect_right(times, a)
            nxt = next((s for s, n in starts[i:] if n != name), float("inf"))
            held.append((a, max(b, min(b + HOLD_S, nxt))))
        out[name] = held
    return out


def _overlap(spans: list[tuple[float, float]], a: float, b: float) -> float:
    return sum(max(0.0, min(b, y) - max(a, x)) for x, y in spans)


def _onsets(lines: list[dict]) -> list[float]:
    """Speech onsets: every line's start and every word after a silence of :data:`ONSET_GAP`."""
    out = []
    for l in lines:
        out.append(float(l["t0"]))
        words = l.get("words") or []
        for w0, w1 in zip(words, words[1:]):
            if float(w1["t0"]) - float(w0["t1"]) >= ONSET_GAP:
                out.append(float(w1["t0"]))
    return sorted(out)


def _near(times: list[float], x: float, tol: float) -> bool:
    import bisect

    i = bisect.bisect_left(times, x - tol)
    return i < len(times) and times[i] <= x + tol


def _nearest(times: list[float], x: float) -> float | None:
    import bisect

    i = bisect.bisect_left(times, x)
    near = [times[j] for j in (i - 1, i) if 0 <= j < len(times)]
    return min(near, key=lambda t: abs(t - x)) if near else None


def find_labels(lines: list[dict], screen: list[dict]) -> tuple[dict[str, list[tuple[float, float]]], dict]:
    """The active-speaker labels on screen (name -> times up, held as in :func:`_timeline`) and
    the evidence (``candidates``, ``together``, ``switches``, ``aligned``, ``chance``, ``lag``,
    ``cover``); the labels are empty when the on-screen text does not behave like one. The times
    are shifted back by ``lag``, the delay with which the labels follow the voices."""
    groups = _groups(screen)
    times = sorted(float(s["t"]) for its in groups.values() for s in its)
    stretches = {n: _stretches(items, times) for n, items in groups.items()}
    cands = _fold_companions({n: ss for n, ss in stretches.items() if len(ss) >= MIN_STRETCHES})
    ev: dict = {"candidates": sorted(cands)}
    if len(cands) < 2 or not lines:
        return {}, ev
    # one active speaker at a time: two candidates rarely up together
    up = sum(b - a for ss in cands.values() for a, b in ss)
    together = sum(_overlap(cands[m], a, b) for n in cands for m in cands if m > n for a, b in cands[n])
    ev["together"] = round(together / up, 3) if up else 0.0
    # switches (a label comes up where a different one was last) against speech onsets
    starts = sorted((a, n) for n, ss in cands.items() for a, _ in ss)
    switches = [a for (a, n), (_, prev) in zip(starts[1:], starts) if n != prev]
    onsets = _onsets(lines)
    t_lo, t_hi = float(lines[0]["t0"]), max(float(l["t1"]) for l in lines)
    grid = [t_lo + (t_hi - t_lo) * (k + 0.5) / 400 for k in range(400)]
    chance = sum(_near(onsets, x, ALIGN_TOL) for x in grid) / len(grid)
    inside = [s for s in switches if t_lo <= s <= t_hi]
    # call software switches the label a moment after the voice starts: one lag for the whole
    # recording, the one that puts most switches at onsets (a fixed delay, not per switch)
    lag, aligned = 0.0, 0.0
    for k in range(int(round(MAX_LAG / LAG_STEP)) + 1):
        d = k * LAG_STEP
        got = sum(_near(onsets, s - d, ALIGN_TOL) for s in inside) / len(inside) if inside else 0.0
        if got > aligned + 1e-9:
            lag, aligned = d, got
    # the lag is then the median delay of the switches it aligned (the steps above are coarse)
    delays = [s - o for s in inside if (o := _nearest(onsets, s - lag)) is not None and abs(s - lag - o) <= ALIGN_TOL]
    if delays:
        lag = round(max(0.0, float(np.median(delays))), 2)
    ev.update(switches=len(inside), aligned=round(aligned, 3), chance=round(chance, 3), lag=lag)
    # from here on the labels' times are the speech's: shifted back by the lag
    held = {n: [(a - lag, b - lag) for a, b in ss] for n, ss in _timeline(cands).items()}
    speech = sum(max(0.0, float(l["t1"]) - float(l["t0"])) for l in lines) or 1e-9
    cover = sum(max((_overlap(ss, float(l["t0"]), float(l["t1"])) for ss in held.values()), default=0.0) for l in lines) / speech
    ev["cover"] = round(cover, 3)
    if ev["together"] > MAX_TOGETHER or len(inside) < 2 * len(cands) or aligned < MIN_ALIGNED \
            or 1.0 - aligned > MAX_MISS_RATIO * (1.0 - chance) \
            or cover < MIN_COVER:
        return {}, ev
    return held, ev


def _shares(lines: list[dict], labels: dict[str, list[tuple[float, float]]]) -> tuple[dict, Counter]:
    """Seconds of each cluster's speech under each label, and each cluster's seconds."""
    under: dict[str, Counter] = defaultdict(Counter)
    total: Counter = Counter()
    for l in lines:
        s = l.get("speaker")
        if not s:
            continue
        a, b = float(l["t0"]), float(l["t1"])
        total[s] += max(0.0, b - a)
        for name, spans in labels.items():
            under[s][name] += _overlap(spans, a, b)
    return under, total


def _split(lines: list[dict], labels: dict, under: dict, total: Counter) -> dict[str, list[str]]:
    """Cut clusters whose speech lies under several labels for long stretches; returns the new
    cluster ids each cut cluster gave (line["speaker"] rewritten)."""
    n = max((int(s[1:]) for s in total), default=0)
    cuts: dict[str, dict[str, str]] = {}
    for s in sorted(total, key=lambda s: int(s[1:])):
        strong = [name for name, sec in under[s].most_common() if sec >= SPLIT_SHARE * total[s] and sec >= SPLIT_MIN_S]
        if len(strong) < 2:
            continue
        # the label with most of the cluster keeps its id; each other strong label gets a new one
        cuts[s] = {strong[0]: s}
        for name in strong[1:]:
            n += 1
            cuts[s][name] = f"S{n}"
    for l in lines:
        cut = cuts.get(l.get("speaker"))
        if not cut:
            continue
        a, b = float(l["t0"]), float(l["t1"])
        best = max(cut, key=lambda name: _overlap(labels[name], a, b))
        if _overlap(labels[best], a, b) >= 0.5 * (b - a):
            l["speaker"] = cut[best]
    return {s: sorted(set(c.values()) - {s}, key=lambda x: int(x[1:])) for s, c in cuts.items()}


def link_speaker_names(lines: list[dict], screen: list[dict], summary: dict | None = None) -> dict:
    """Name voice clusters after the active-speaker labels on screen (see the module docstring).

    Writes ``line["speaker_name"]`` on the lines of named clusters (and may rewrite
    ``line["speaker"]`` when a cluster is cut). Returns ``summary`` (``label_speakers``'s) updated:
    ``names`` (cluster -> name), ``split`` (cluster -> new clusters cut from it), ``n`` and
    ``seconds`` recounted, ``labels`` (the evidence); unchanged but for ``labels`` when no
    on-screen text behaves like a speaker label.
    """
    summary = summary if summary is not None else {}
    if not any(l.get("speaker") for l in lines):
        return summary
    labels, ev = find_labels(lines, screen)
    summary["labels"] = ev
    if not labels:
        return summary
    under, total = _shares(lines, labels)
    split = _split(lines, labels, under, total)
    if split:
        under, total = _shares(lines, labels)
    # each cluster's dominant label, then one cluster per label (the one with most of its speech)
    claim: dict[str, tuple[float, str]] = {}
    for s, secs in under.items():
        ranked = secs.most_common(2)
        if not ranked or not total[s]:
            continue
        name, sec = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        if sec >= LINK_SHARE * total[s] and sec >= LINK_MARGIN * second:
            if name not in claim or sec > claim[name][0]:
                claim[name] = (sec, s)
    names = {s: name for name, (_, s) in claim.items()}
    for l in lines:
        if l.get("speaker") in names:
            l["speaker_name"] = names[l["speaker"]]
    summary["names"] = dict(sorted(names.items(), key=lambda kv: int(kv[0][1:])))
    if split:
        summary["split"] = split
        summary["n"] = len(total)
        summary["seconds"] = {s: round(total[s], 2) for s in sorted(total, key=lambda s: int(s[1:]))}
    return summary


def join_shown_entities(entities: list) -> list:
    """A named voice and the entity its name makes on screen (and wherever else it is written or
    said) are one person: the name's entity is folded into the speaker entity, so looking the
    name up finds the voice's turns beside the places the name was shown. Returns the list
    without the folded entities."""
    from ..names import normalise

    speakers = {normalise(e.meta["shown_name"]): e for e in entities if e.kind == "speaker" and e.meta.get("shown_name")}
    if not speakers:
        return entities
    out = []
    for e in entities:
        home = speakers.get(normalise(e.name)) if e.kind != "speaker" else None
        if home is None:
            out.append(e)
            continue
        home.mentions = sorted(home.mentions + e.mentions, key=lambda m: m.t or 0.0)
        home.aliases = home.aliases + [a for a in e.aliases if a not in home.aliases]
        home.meta["modalities"] = sorted(set(home.meta.get("modalities", [])) | {m.modality for m in e.mentions})
    return out
