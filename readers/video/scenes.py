"""Scenes from shots, segments from scenes.

A scene is a run of adjacent shots that look alike (colour histograms) or, when the picture
changes but the talk does not, that share their words; very short shots (flashes, inserts) join
a neighbour. Slide changes found by the on-screen text tracker (a new title on a picture the
shot detector saw as one shot) always start a scene. Segments are windows of roughly 10-30 s
inside a scene, cut where speech pauses.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from .shots import Shot, hist_similarity

#: merge when the colour signatures are this alike whatever is said
HIST_SAME = 0.80
#: merge a looser colour match when the speech on both sides shares vocabulary
HIST_NEAR, SPEECH_NEAR = 0.55, 0.25
#: a shot shorter than this is absorbed by its neighbour
MIN_SHOT_S = 1.0

_WORD = re.compile(r"[a-z][a-z']+")


def _bag(lines: list[dict], t0: float, t1: float) -> Counter:
    return Counter(w for l in lines if t0 <= (l["t0"] + l["t1"]) / 2 < t1 for w in _WORD.findall(l["text"].lower()) if len(w) > 3)


def cosine(a: Counter, b: Counter) -> float:
    if not a or not b:
        return 0.0
    dot = sum(v * b.get(k, 0) for k, v in a.items())
    return dot / math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))


def split_shots(shots: list[Shot], times: list[float], tol: float = 1.0) -> tuple[list[Shot], set[int]]:
    """Shots cut again at ``times`` (slide changes), and the indices of the shots that must start
    a scene. A time within ``tol`` seconds of an existing cut marks that cut instead of adding
    one; times within ``tol`` of either end of the video are ignored."""
    out = list(shots)
    hard: set[float] = set()
    for t in sorted(times):
        if not out or t <= out[0].t_start + tol or t >= out[-1].t_end - tol:
            continue
        near = min(out[1:], key=lambda s: abs(s.t_start - t), default=None)
        if near is not None and abs(near.t_start - t) <= tol:
            hard.add(near.t_start)
            continue
        i = next(k for k, s in enumerate(out) if s.t_start <= t < s.t_end)
        s = out[i]
        if t - s.t_start < tol or s.t_end - t < tol:  # too close to the shot's own ends to cut
            continue
        a = Shot(s.t_start, t, s.hist, s.n, dict(s.meta))
        b = Shot(t, s.t_end, s.hist, s.n, dict(s.meta))
        out[i : i + 1] = [a, b]
        hard.add(t)
    return out, {k for k, s in enumerate(out) if k and s.t_start in hard}


def merge_shots(shots: list[Shot], lines: list[dict], hard: set[int] = frozenset()) -> list[list[Shot]]:
    """Group adjacent shots into scenes; a shot whose index is in ``hard`` starts one."""
    if not shots:
        return []
    groups: list[list[Shot]] = [[shots[0]]]
    for k, s in enumerate(shots[1:], start=1):
        if k in hard:
            groups.append([s])
            continue
        prev = groups[-1][-1]
        sim = hist_similarity(prev.hist, s.hist) if prev.hist is not None and s.hist is not None else 0.0
        short = (s.t_end - s.t_start) < MIN_SHOT_S or (prev.t_end - prev.t_start) < MIN_SHOT_S
        same = sim >= HIST_SAME or short
        if not same and sim >= HIST_NEAR:
            a = _bag(lines, groups[-1][0].t_start, prev.t_end)
            b = _bag(lines, s.t_start, s.t_end)
            same = cosine(a, b) >= SPEECH_NEAR
        if same:
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


def _pauses(lines: list[dict], t0: float, t1: float) -> list[tuple[float, float]]:
    """(time, pause length) of the gaps between speech inside [t0, t1], word gaps included."""
    words = [w for l in lines for w in (l.get("words") or [{"t0": l["t0"], "t1": l["t1"]}])]
    words = sorted((w for w in words if t0 < w["t1"] and w["t0"] < t1), key=lambda w: w["t0"])
    out = []
    for a, b in zip(words, words[1:]):
        gap = b["t0"] - a["t1"]
        if gap > 0:
            out.append(((a["t1"] + b["t0"]) / 2, gap))
    # line ends are natural breaks even without a measurable gap (estimated word times)
    for l in lines:
        if t0 < l["t1"] < t1:
            out.append((l["t1"], 0.05))
    return out


def split_windows(t0: float, t1: float, lines: list[dict], lo: float = 10.0, hi: float = 30.0, target: float = 20.0) -> list[tuple[float, float]]:
    """Windows of ``lo``-``hi`` seconds covering [t0, t1], cut at the longest nearby pause."""
    if t1 - t0 <= hi:
        return [(t0, t1)]
    pauses = _pauses(lines, t0, t1)
    spans, s = [], t0
    while t1 - s > hi:
        # do not leave a tail shorter than lo: aim for an even split of what remains
        n_left = max(2, round((t1 - s) / target))
        aim = s + (t1 - s) / n_left
        cands = [(p, g) for p, g in pauses if s + lo <= p <= min(s + hi, t1 - lo)]
        if cands:
            # the longest pause wins; nearness to the aim breaks ties between similar ones
            cut = max(cands, key=lambda pg: min(pg[1], 1.5) - abs(pg[0] - aim) / 40.0)[0]
        else:
            cut = min(max(aim, s + lo), t1 - lo) if t1 - s >= 2 * lo else aim
        spans.append((s, cut))
        s = cut
    spans.append((s, t1))
    return spans
