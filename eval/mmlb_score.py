"""MMLongBench-Doc's rule-based scoring, reproduced from the benchmark's ``eval/eval_score.py``.

Source: github.com/mayubo2333/MMLongBench-Doc at d73f0dc0be7e0a2ff6a403d5fe65fcd96461f384 (code
Apache-2.0). The rules are kept as the benchmark runs them, including its quirks, so scores stay
comparable:

* ``Int``: ``int(gt) == int(float(pred))``;
* ``Float``: both cleaned, then equal within 1 % relative tolerance or at the shared rounding
  precision, also against gt/100 and gt×100 (percentages);
* ``Str`` / ``None``: cleaned (lower case, no parentheses, quotes, ``$`` or ``%``); exact match for
  URLs, file names, phone numbers, times, dates and e-mail addresses, else ANLS with threshold 0.5;
  *Not answerable* gold answers (format ``None``) are scored this way against the prediction;
* ``List``: lengths must match; numbers and exact-match strings must all be equal after sorting,
  other strings score the minimum ANLS of the sorted pairs;
* accuracy: the mean score; F1: recall over answerable golds, precision over predictions that are
  not *Not answerable* (``eval_acc_and_f1``).

Two deliberate differences, both about safety rather than scores: lists are parsed with
``ast.literal_eval`` instead of ``eval`` (model output is never executed), and the cleaning keeps
the original's no-op ``rstrip("mile")`` lines as no-ops (their results were discarded upstream).
"""

from __future__ import annotations

import ast
import re
from math import isclose

NOT_ANSWERABLE = "Not answerable"


def levenshtein_distance(s1: str, s2: str) -> int:
    if len(s1) > len(s2):
        s1, s2 = s2, s1
    distances = list(range(len(s1) + 1))
    for i2, c2 in enumerate(s2):
        row = [i2 + 1]
        for i1, c1 in enumerate(s1):
            row.append(distances[i1] if c1 == c2 else 1 + min(distances[i1], distances[i1 + 1], row[-1]))
        distances = row
    return distances[-1]


def anls_compute(groundtruth: str, prediction: str, threshold: float = 0.5) -> float:
    dist = levenshtein_distance(groundtruth, prediction)
    length = max(len(groundtruth.upper()), len(prediction.upper()))
    value = 0.0 if length == 0 else float(dist) / float(length)
    anls = 1.0 - value
    return 0.0 if anls <= threshold else anls


def _precision(x: float) -> int:
    return len(str(x).split(".")[-1]) if "." in str(x) else 3


def is_float_equal(reference, prediction, include_percentage: bool = False, is_close: bool = False) -> bool:
    reference = float(str(reference).strip().rstrip("%").strip())
    try:
        prediction = float(str(prediction).strip().rstrip("%").strip())
    except ValueError:
        return False
    candidates = [reference / 100, reference, reference * 100] if include_percentage else [reference]
    for item in candidates:
        try:
            if is_close and isclose(item, prediction, rel_tol=0.01):
                return True
            precision = max(min(_precision(prediction), _precision(item)), 2)
            if round(prediction, precision) == round(item, precision):
                return True
        except Exception:  # noqa: BLE001 - the original skips any comparison that fails
            continue
    return False


def get_clean_string(s) -> str:
    s = str(s).lower().strip()
    s = re.sub(r"\s*\([^)]*\)", "", s).strip()  # parentheses
    s = re.sub(r"^['\"]|['\"]$", "", s).strip()  # quotes
    s = s.strip().lstrip("$").strip()
    s = s.strip().rstrip("%").strip()
    return s


def is_exact_match(s: str) -> bool:
    return bool(
        "https://" in s
        or s.endswith(".py") or s.endswith("ipynb")
        or s.startswith("page")
        or re.fullmatch(r"\b\d+(-\d+|\s\d+)?\b", s)  # telephone numbers
        or "a.m." in s or "p.m." in s
        or re.fullmatch(r"\b\d{4}[-\s]\d{2}[-\s]\d{2}\b", s)
        or re.fullmatch(r"\b\d{4}[-\s]\d{2}\b", s)
        or re.fullmatch(r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}", s))


def isfloat(num) -> bool:
    try:
        float(num)
        return True
    except ValueError:
        return False


def _as_list(v) -> list:
    if isinstance(v, str) and v.startswith("["):
        try:
            v = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            pass  # the original would raise; an unparsable list is one (wrong) item here
    return v if isinstance(v, list) else [v]


def eval_score(gt, pred, answer_type: str) -> float:
    """1.0 / 0.0 (or an ANLS value) for one prediction, by the benchmark's rules for ``answer_type``."""
    if answer_type == "Int":
        try:
            gt, pred = int(gt), int(float(pred))
        except (TypeError, ValueError):
            pred = ""
        score: float | bool = gt == pred
    elif answer_type == "Float":
        try:
            gt = float(get_clean_string(str(gt)))
            pred = float(get_clean_string(str(pred)))
        except ValueError:
            pred = ""
        score = is_float_equal(gt, pred, include_percentage=True, is_close=True)
    elif answer_type in ("Str", "None"):
        gt, pred = get_clean_string(gt), get_clean_string(pred)
        score = (gt == pred) if is_exact_match(gt) else anls_compute(gt, pred)
    else:
        gts, preds = _as_list(gt), _as_list(pred)
        if len(gts) != len(preds):
            score = 0.0
        else:
            gts = sorted(get_clean_string(a) for a in gts)
            preds = sorted(get_clean_string(a) for a in preds)
            if isfloat(gts[0]) or is_exact_match(gts[0]):
                score = "-".join(gts) == "-".join(preds)
            else:
                score = min(anls_compute(g, p) for g, p in zip(gts, preds))
    return float(score)


def acc_and_f1(samples: list[dict]) -> tuple[float, float]:
    """``eval_acc_and_f1``: samples carry ``score``, ``answer`` (gold) and ``pred``."""
    scored = [s for s in samples if "score" in s]
    if not scored:
        return 0.0, 0.0
    acc = sum(s["score"] for s in scored) / len(scored)
    answerable = [s for s in scored if s["answer"] != NOT_ANSWERABLE]
    predicted = [s for s in scored if s["pred"] != NOT_ANSWERABLE]
    if not answerable or not predicted:
        return acc, 0.0
    hit = sum(s["score"] for s in answerable)
    recall, precision = hit / len(answerable), hit / len(predicted)
    f1 = 2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0
    return acc, f1
