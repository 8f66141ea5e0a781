"""Split a multi-part question into sub-questions the planner can search for in parallel.

Three shapes, tried in this order on each clause:

* clauses joined by a conjunction before a new question word —
  "Who led the program, and what did it cost?" → two clauses (a later clause that says
  "it"/"they" borrows the earlier clause's key terms for its search query);
* comparisons — "compare X and Y", "X vs Y", "difference between X and Y",
  "how does X compare to Y" → one sub-question per side, each keeping the shared aspect
  ("the budgets of Ares and Nereus" → "the budgets of Ares", "the budgets of Nereus");
* several named things — "What did Voss, Lee and Park say about costs?" → one per name.

Everything here is a pure function of the text, so it is tested directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..index.lexical import query_terms

_QWORDS = (r"who|whom|whose|what|when|where|which|why|how|did|does|do|is|was|were|are|can|could|has|have|had|"
           r"will|would|should|name|list|give|tell|describe|explain|summari[sz]e")
_CLAUSE_SPLIT = re.compile(rf"\s*(?:[,;]\s*)?\b(?:and|but|also|plus|as well as|then)\s+(?=(?:{_QWORDS})\b)", re.I)
_PRONOUN = re.compile(r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her)\b", re.I)
_END = r"\s*(?:[?.!]+\s*)?$"
_COMPARE = [
    re.compile(r"\b(?:compare|contrast)\s+(?P<a>.+?)\s+(?:and|with|to|against|versus|vs\.?)\s+(?P<b>.+?)" + _END, re.I),
    re.compile(r"\b(?:differences?|distinction|gap)\s+between\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)" + _END, re.I),
    re.compile(r"\bhow\s+(?:does|do|did|is|are|was|were)\s+(?P<a>.+?)\s+(?:compare|differ|stack up|relate)\s+"
               r"(?:to|with|from|against)\s+(?P<b>.+?)" + _END, re.I),
    re.compile(r"(?P<a>[\w\-.'’]+(?:\s+[\w\-.'’]+){0,3}?)\s+(?:vs\.?|versus)\s+(?P<b>[\w\-.'’]+(?:\s+[\w\-.'’]+){0,3})", re.I),
]
# the aspect a comparison is about, when it trails the second item
_ASPECT_TAIL = re.compile(r"\s+(?:in terms of|regarding|with respect to|with regard to|concerning|on|for|in)\s+(?P<asp>.+)$", re.I)
_HEAD_OF = re.compile(r"^(?P<head>.*\b(?:of|for|in|by|at|from|between)\s+)(?P<item>[^\s].*)$", re.I)
_NAME = r"(?:[A-Z][\w\-.'’&]*(?:\s+(?:of\s+|de\s+|van\s+|von\s+)?[A-Z0-9][\w\-.'’&]*){0,3}|\d{4}|Q[1-4](?:\s+\d{4})?)"
_NAME_LIST = re.compile(rf"(?P<list>{_NAME}(?:\s*,\s*{_NAME})*\s*,?\s+(?:and|or|&)\s+{_NAME})")
_NAME_SPLIT = re.compile(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+")
_QWORD_RE = re.compile(rf"^(?:{_QWORDS})$", re.I)


@dataclass
class SubQuestion:
    text: str  # shown in the answer
    query: str  # sent to search
    label: str = ""  # the item a comparison/list part is about


def _strip(s: str) -> str:
    return s.strip(" ,;:?.!\"'“”")


def split_clauses(question: str) -> list[str]:
    parts = []
    for sent in re.split(r"(?<=[?;])\s+", question.strip()):
        for p in _CLAUSE_SPLIT.split(sent):
            p = _strip(p)
            if p and len(query_terms(p)) >= 1:
                parts.append(p)
    return parts or [_strip(question)]


def _comparison(clause: str) -> list[SubQuestion] | None:
    for rx in _COMPARE:
        m = rx.search(clause)
        if not m:
            continue
        a, b = _strip(m.group("a")), _strip(m.group("b"))
        if not a or not b:
            continue
        aspect = ""
        t = _ASPECT_TAIL.search(b)
        if t and len(b.split()) > 1:
            aspect, b = t.group("asp"), b[: t.start()]
        head = ""
        h = _HEAD_OF.match(a)
        if h and not _HEAD_OF.match(b) and len(b.split()) <= 4:
            head, a = h.group("head"), h.group("item")
        # words of the clause outside the compared span carry the aspect too ("budgets" in
        # "Which had the larger budget, Ares or Nereus?" is handled by the name-list rule)
        outside = (clause[: m.start()] + " " + clause[m.end():]).strip()
        outside = re.sub(r"\b(compare|contrast|difference|differences|between|how|does|do|did)\b", " ", outside, flags=re.I)
        outside = " ".join(query_terms(outside))  # only the content words of what is left
        extra = " ".join(w for w in [aspect, outside] if w.strip())
        subs = []
        for item in (_strip(a), _strip(b)):
            shown = (head + item).strip()
            if aspect:
                shown += f" ({_strip(aspect)})"
            query = " ".join(x for x in (head + item, extra) if x.strip())
            subs.append(SubQuestion(text=shown, query=" ".join(query.split()), label=item))
        return subs
    return None


def _names(clause: str) -> list[SubQuestion] | None:
    for m in _NAME_LIST.finditer(clause):
        items = [_strip(x) for x in _NAME_SPLIT.split(m.group("list")) if _strip(x)]
        # the sentence-initial question word is capitalised but is no name
        items = [x for x in items if not _QWORD_RE.match(x.split()[0])] if items else []
        if len(items) < 2:
            continue
        subs = []
        for it in items:
            q = clause[: m.start()] + it + clause[m.end():]
            subs.append(SubQuestion(text=_strip(q), query=_strip(q), label=it))
        return subs
    return None


def decompose(question: str, max_parts: int = 5) -> list[SubQuestion]:
    """Sub-questions of ``question``; a single-part question gives one SubQuestion."""
    q = " ".join((question or "").split())
    clauses = split_clauses(q)
    out: list[SubQuestion] = []
    prev_terms: list[str] = []
    for c in clauses:
        query = c
        if prev_terms and _PRONOUN.search(c):
            query = c + " " + " ".join(prev_terms[:4])
        subs = _comparison(c) or _names(c) or [SubQuestion(text=c, query=query)]
        out.extend(subs)
        prev_terms = query_terms(c)
    seen, uniq = set(), []
    for s in out:
        key = s.query.lower()
        if key not in seen:
            seen.add(key)
            uniq.append(s)
    return uniq[:max_parts]
