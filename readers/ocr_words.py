"""Words an OCR line ran together, split again with ``wordninja`` (English Wikipedia unigrams).

PP-OCR's recogniser in the rapidocr wheel is the Chinese+English model: trained on Chinese, where
there are no spaces, it often drops the narrow gaps between English words ("ofspecifiedunlawful").
wordninja finds the most probable split of a letter run into English words; it is applied only
where a token is implausible as one word, so names, jargon and misreadings stay as they were:

- the token is a run of at least :data:`MIN_LETTERS` letters in one case pattern (lower, UPPER or
  Capitalised; "iPhone" or "LinkedIn" are names, never split), or a mixed-case run so long (twice
  :data:`LONG`) that it is a line run together, which is cut at its capitals first; a shorter
  mixed-case run is cut at its capitals only into common words of four letters or more that
  are not one known word together ("SlippingFREE", not "WhatsApp" or "YouTube");
- wordninja prefers a split into two or more words, none of them a stray letter other than "a"
  and "I";
- a short token (fewer than :data:`LONG` letters) is split only when it is not itself a common
  word and every part is: "andthe" splits, "nowing" (a misread "knowing") does not turn into
  "no wing".
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

#: shortest letter run looked at
MIN_LETTERS = 5
#: from this many letters a run is long enough that wordninja's own judgement decides
LONG = 10
#: frequency ranks (0 = most common) in wordninja's 126K-word list
COMMON_WORD = 40_000  # a short token this common is a word in its own right
COMMON_PART = 15_000  # every part of a split short token must be this common

_RUN = re.compile(r"[A-Za-z]{%d,}" % MIN_LETTERS)


@lru_cache(maxsize=1)
def _model():
    import wordninja

    lm = wordninja.DEFAULT_LANGUAGE_MODEL
    log_n = math.log(len(lm._wordcost))
    return lm, log_n


def _rank(word: str) -> float:
    """Frequency rank of ``word`` in wordninja's list (its cost is log(rank * log N)); inf if absent."""
    lm, log_n = _model()
    c = lm._wordcost.get(word)
    return math.inf if c is None else math.exp(c) / log_n - 1


_CASE_PIECE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")


def split_token(token: str) -> str:
    """``token`` with spaces where it runs English words together, else unchanged."""
    if len(token) < MIN_LETTERS:
        return token
    if not (token.islower() or token.isupper() or token.istitle()):
        # mixed case: a name ("LinkedIn") unless it is long enough to be a whole line run
        # together ("highwaysNewHavenisonitsway"), which splits at its capitals first
        pieces = _CASE_PIECE.findall(token)
        if len(token) >= 2 * LONG:
            return " ".join(split_token(p) for p in pieces)
        # two common words that lost their space ("SlippingFREE"), not a brand ("WhatsApp")
        if (len(pieces) >= 2 and "".join(pieces) == token and _rank(token.lower()) > COMMON_WORD
                and all(len(p) >= 4 and _rank(p.lower()) < COMMON_WORD for p in pieces)):
            return " ".join(pieces)
        return token
    low = token.lower()
    lm, _ = _model()
    parts = lm.split(low)
    if len(parts) < 2 or "".join(parts) != low:
        return token
    if any(len(p) == 1 and p not in ("a", "i") for p in parts):
        return token
    if len(low) < LONG and (_rank(low) < COMMON_WORD or any(_rank(p) > COMMON_PART for p in parts)):
        return token
    out, i = [], 0
    for p in parts:
        out.append(token[i : i + len(p)])
        i += len(p)
    return " ".join(out)


def split_run_together(text: str) -> str:
    """An OCR line with each run-together token split (see the module docstring)."""
    return _RUN.sub(lambda m: split_token(m.group()), text)


__all__ = ["split_run_together", "split_token"]
