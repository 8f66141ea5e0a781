"""Scoring for ``sleuth eval recordings``: places in time, transcripts, speaker turns, answers.

Definitions (the report's figures mean exactly these):

- **Overlap**: a returned item ``[a, b]`` hits a gold span ``[s, e]`` when they share a stretch
  of positive length (``a < e and s < b``); a zero-length item or gold span is hit when it lies
  inside the other.
- **Temporal recall@k** of one query: the share of its gold spans that at least one of the top
  ``k`` items overlaps. A query without gold spans is not scored. Wide items hit more easily,
  so the report gives the mean length of the items returned beside each recall, and
  **recall@300s**: the same share for the items read in rank order until 300 seconds of video
  are spent (the last item cut to fit), whatever their width.
- **Word error rate**: word-level Levenshtein distance over the number of reference words, on
  :func:`sleuth.eval.metrics.wer_words` (lower case, hyphens split, punctuation but ``'``
  dropped, numbers kept as written: "20" and "twenty" differ).
- **Speaker turns**: a boundary is a time where the speaker changes (a line's start for the
  recognised lines, a turn's start for the truth); boundaries match one to one within ``tol``
  seconds, and F1 is over the matched pairs. Purity: the share of recognised speech time whose
  voice label's most common true speaker is the one actually speaking.
- **ROUGE-L F1** (:func:`rouge_l_f1`): longest common subsequence of lower-cased alphanumeric
  tokens, F with beta = 1 (the ``rouge-score`` package's definition, without stemming).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Iterable, Sequence

import numpy as np

from .metrics import wer_words

Span = Sequence[float]


def overlaps(item: Span, gold: Span) -> bool:
    a, b = float(item[0]), float(item[1])
    s, e = float(gold[0]), float(gold[1])
    if b <= a:  # a moment (a citation of one line's start)
        return s <= a <= max(s, e)
    if e <= s:
        return a <= s <= b
    return a < e and s < b


def spans_hit(items: Iterable[Span], gold: Sequence[Span]) -> set[int]:
    """Indices of the gold spans that at least one item overlaps."""
    items = [it for it in items if it is not None and it[0] is not None and it[1] is not None]
    return {g for g, span in enumerate(gold) if any(overlaps(it, span) for it in items)}


def recall_at(items: Sequence[Span], gold: Sequence[Span], k: int) -> float | None:
    """Share of ``gold`` spans overlapped by the first ``k`` items (None without gold spans)."""
    if not gold:
        return None
    return len(spans_hit(items[:k], gold)) / len(gold)


def recall_within(items: Sequence[Span], gold: Sequence[Span], seconds: float) -> float | None:
    """Share of ``gold`` spans overlapped by the items read in rank order until ``seconds`` of
    video are spent (the last one cut to fit), so that narrow and wide items compete on the same
    amount of watching (None without gold spans)."""
    if not gold:
        return None
    taken, left = [], float(seconds)
    for a, b in items:
        if left <= 0:
            break
        length = max(0.0, float(b) - float(a))
        taken.append([a, b] if length <= left else [a, float(a) + left])
        left -= min(length, left)
    return len(spans_hit(taken, gold)) / len(gold)


#: the video budget of :func:`recall_within` in the report (five 60 s windows' worth)
BUDGET_S = 300


def recalls(items: Sequence[Span], gold: Sequence[Span], ks: Sequence[int] = (1, 5, 10)) -> dict[str, float | None]:
    """r@k for each k, and ``r@300s`` (:func:`recall_within` at :data:`BUDGET_S`)."""
    return {**{f"r@{k}": recall_at(items, gold, k) for k in ks}, f"r@{BUDGET_S}s": recall_within(items, gold, BUDGET_S)}


# ---------------------------------------------------------------- transcripts in time


def timed_words(lines: Iterable[dict], start: str = "t0", end: str = "t1") -> list[tuple[float, str]]:
    """(time, word) for every word of timed lines, in time order. A line's own word times are
    used when it has them (``words``: ``{t0, w}``); otherwise its words are spread evenly over
    its span (each at the middle of its share), as for the truth's turns."""
    out: list[tuple[float, str]] = []
    for line in lines:
        words = line.get("words") or []
        if words and all("t0" in w and "w" in w for w in words):
            out += [(float(w["t0"]), str(w["w"])) for w in words if str(w["w"]).strip()]
            continue
        ws = str(line.get("text", "")).split()
        a, b = float(line[start]), float(line[end])
        out += [(a + (i + 0.5) * (b - a) / len(ws), w) for i, w in enumerate(ws)]
    out.sort(key=lambda x: x[0])
    return out


def windows(words: Sequence[tuple[float, str]], duration: float, size: float = 60.0) -> list[dict]:
    """Fixed ``size``-second windows ``[n*size, (n+1)*size)`` (the last cut at ``duration``) with
    the words whose time falls inside; windows without a word are left out (nothing to rank)."""
    if size <= 0:
        raise ValueError("window size must be positive")
    bins: dict[int, list[str]] = defaultdict(list)
    for t, w in words:
        bins[max(0, int(t // size))].append(w)
    out = []
    for n in sorted(bins):
        a = n * size
        b = min((n + 1) * size, max(duration, a + 1e-3)) if duration else (n + 1) * size
        out.append({"t_start": round(a, 3), "t_end": round(b, 3), "text": " ".join(bins[n])})
    return out


def truth_lines(truth: dict) -> list[dict]:
    """The ground truth's spoken text as timed lines: a meeting's turns, a lecture's narrated pages."""
    if truth.get("kind") == "lecture":
        return [{"t0": p["start"], "t1": p["end"], "text": p.get("text", "")} for p in truth.get("pages", [])
                if not p.get("silent") and str(p.get("text", "")).strip()]
    return [{"t0": t["start"], "t1": t["end"], "text": t.get("text", ""), "speaker": t.get("speaker")}
            for t in truth.get("turns", [])]


# ---------------------------------------------------------------- word error rate


def wer_fast(ref: Sequence[str], hyp: Sequence[str]) -> float:
    """:func:`sleuth.eval.metrics.wer` in numpy, one row of the edit table at a time: within a row
    ``d[j] = min(t[j], d[j-1] + 1)`` is ``j + cummin(t[k] - k)``, so an hour of speech (10^4 words
    each side) takes a second instead of the plain loop's minutes. Same result (tested)."""
    if not ref:
        return float(len(hyp))
    vocab: dict[str, int] = {}
    h = np.array([vocab.setdefault(w, len(vocab)) for w in hyp], dtype=np.int64)
    r = [vocab.get(w, -1) for w in ref]
    j = np.arange(len(h) + 1, dtype=np.int64)
    prev = j.copy()
    t = np.empty_like(prev)
    for i, ri in enumerate(r, start=1):
        t[0] = i
        np.minimum(prev[1:] + 1, prev[:-1] + (h != ri), out=t[1:])
        prev = np.minimum.accumulate(t - j) + j
    return float(prev[-1]) / len(ref)


def word_error_rate(ref_text: str, hyp_text: str) -> dict:
    """WER of a whole transcript; None when nothing was spoken (a silent slide show)."""
    ref, hyp = wer_words(ref_text), wer_words(hyp_text)
    return {"wer": wer_fast(ref, hyp) if ref else None, "ref_words": len(ref), "hyp_words": len(hyp)}


# ---------------------------------------------------------------- speaker turns


def boundaries(lines: Sequence[dict], start: str = "t0") -> list[float]:
    """Times where the speaker changes from one line to the next (lines without a label skipped)."""
    out, last = [], None
    for line in sorted((l for l in lines if l.get("speaker") is not None), key=lambda l: float(l[start])):
        if last is not None and line["speaker"] != last:
            out.append(float(line[start]))
        last = line["speaker"]
    return out


def boundary_f1(pred: Sequence[float], true: Sequence[float], tol: float = 1.0) -> dict:
    """One-to-one matching of sorted boundaries within ``tol`` seconds (greedy in time order,
    which is optimal on a line), then precision, recall and F1."""
    p, t = sorted(pred), sorted(true)
    i = j = hit = 0
    while i < len(p) and j < len(t):
        if abs(p[i] - t[j]) <= tol:
            hit, i, j = hit + 1, i + 1, j + 1
        elif p[i] < t[j]:
            i += 1
        else:
            j += 1
    prec = hit / len(p) if p else (1.0 if not t else 0.0)
    rec = hit / len(t) if t else (1.0 if not p else 0.0)
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"precision": prec, "recall": rec, "f1": f1, "pred": len(p), "true": len(t)}


def speaker_purity(lines: Sequence[dict], turns: Sequence[dict]) -> float | None:
    """Share of labelled speech time (each line at its midpoint's true turn) whose label's most
    common true speaker is the one speaking then."""
    starts = [float(t["t0"]) for t in turns]
    weight: dict[str, Counter] = defaultdict(Counter)
    for line in lines:
        if line.get("speaker") is None:
            continue
        mid = (float(line["t0"]) + float(line["t1"])) / 2
        k = int(np.searchsorted(starts, mid, side="right")) - 1
        if k < 0 or mid > float(turns[k]["t1"]) + 1.0:
            continue  # between turns: silence in the truth
        weight[line["speaker"]][turns[k]["speaker"]] += max(0.0, float(line["t1"]) - float(line["t0"]))
    total = sum(sum(c.values()) for c in weight.values())
    if not total:
        return None
    return sum(max(c.values()) for c in weight.values()) / total


def speaker_agreement(asr_lines: Sequence[dict], truth: dict, tol: float = 1.0) -> dict | None:
    """Turn-boundary F1 within ``tol`` s, speakers found vs true, purity; None when the video
    pipeline labelled no line with a voice."""
    if not any(l.get("speaker") is not None for l in asr_lines):
        return None
    turns = [t for t in truth_lines(truth) if t.get("speaker") is not None]
    f = boundary_f1(boundaries(asr_lines), boundaries(turns), tol)
    return {"boundary_f1": f["f1"], "boundary_precision": f["precision"], "boundary_recall": f["recall"],
            "speakers_found": len({l["speaker"] for l in asr_lines if l.get("speaker") is not None}),
            "speakers_true": len({t["speaker"] for t in turns}), "purity": speaker_purity(asr_lines, turns)}


# ---------------------------------------------------------------- answers

_TOKEN = re.compile(r"[a-z0-9]+")


def lcs_len(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    row = [0] * (len(b) + 1)
    for x in a:
        prev_diag = 0
        for j, y in enumerate(b, start=1):
            keep = row[j]
            row[j] = prev_diag + 1 if x == y else max(row[j], row[j - 1])
            prev_diag = keep
    return row[-1]


def rouge_l_f1(prediction: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased alphanumeric tokens (0 when either side has none)."""
    p, r = _TOKEN.findall(prediction.lower()), _TOKEN.findall(reference.lower())
    n = lcs_len(p, r)
    if not n:
        return 0.0
    prec, rec = n / len(p), n / len(r)
    return 2 * prec * rec / (prec + rec)
