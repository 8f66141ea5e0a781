"""The answer object: grounded text, numbered citations to places, evidence, trace and cost.

Policies write drafts whose citations are node ids in brackets (``… fell in Q3 [412].``).
:func:`resolve_citations` keeps only ids among the evidence the agent actually saw, renumbers
them ``[1]``, ``[2]`` … in order of first use, and quotes the evidence sentence that best
supports the sentence citing it.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any

from .extract import sentence_spans
from ..index.lexical import query_terms

# [12] [12, 40] [#12] [n12] [node 12] [id:12] [node_id=12] 【12】 — what models write when told to cite ids.
_CITE_RE = re.compile(
    r"[\[【]\s*((?:(?:#|n|node|id|node_id|nodes)?\s*[:=]?\s*\d+\s*(?:[,;]|and)?\s*)+)[\]】]", re.I)
_ID_RE = re.compile(r"\d+")


@dataclass
class Citation:
    n: int
    node_id: int
    label: str
    locator: dict[str, Any]
    quote: str
    source: str = ""
    kind: str = ""
    #: True when the policy did not cite this place itself and it was attached by support matching
    inferred: bool = False


@dataclass
class TraceEntry:
    call_id: str
    tool: str
    arguments: dict[str, Any]
    round: int
    start: float
    end: float
    seconds: float
    chars: int
    tokens: int
    ok: bool = True
    error: str | None = None


@dataclass
class Cost:
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_read: int = 0
    tool_calls: int = 0
    rounds: int = 0
    llm_calls: int = 0
    seconds: float = 0.0


#: The line above an extractive answer: what follows is quoted, not sleuth's or a model's words.
QUOTED_LEAD = "Quoted from the documents (sentences found, not written or checked by a model):"


#: The line above the places listed when the answer confirms nothing.
LOCATED_LEAD = "Not confirmed by the model: the places sleuth located that best match the question:"


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    trace: list[TraceEntry] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    budget_exhausted: bool = False
    notes: list[str] = field(default_factory=list)
    policy: str = "heuristic"
    thread_id: str | None = None
    resumed: bool = False
    #: the text is sentences quoted from the documents (the extractive answer), not written or
    #: checked by a model: whatever they say is the documents' claim, and render() says so
    quoted: bool = False
    #: when the answer confirms nothing (a refusal, no citation): the best places the run located,
    #: ``{"id", "source", "kind", "label", "locator", "text"}``, not confirmed by the model
    located: list[dict[str, Any]] = field(default_factory=list)
    #: ids of the passages the model was shown to answer from (empty for a policy without a model)
    shown: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The answer as JSON-ready data (``sleuth ask --json``, MCP ``ask``); :meth:`from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Answer":
        d = dict(d)
        d["citations"] = [Citation(**c) for c in d.get("citations", [])]
        d["trace"] = [TraceEntry(**t) for t in d.get("trace", [])]
        d["cost"] = Cost(**d.get("cost", {}))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def render(self, trace: bool = False, width: int = 100) -> str:
        """Terminal form: the answer (after :data:`QUOTED_LEAD` when it is quoted), then
        ``[1] report.pdf p.12 §3.2 ¶4  "quote"`` lines, then the located places when the answer
        confirms nothing (:data:`LOCATED_LEAD`)."""
        out = ([QUOTED_LEAD] if self.quoted else []) + [_wrap(self.text, width)]
        if self.citations:
            out.append("")
            for c in self.citations:
                q = " ".join(c.quote.split())
                q = q if len(q) <= 140 else q[:139].rstrip() + "…"
                mark = " (inferred)" if c.inferred else ""
                out.append(f"[{c.n}] {c.label}{mark}" + (f'  "{q}"' if q else ""))
        if self.located:
            out += ["", LOCATED_LEAD]
            for p in self.located:
                q = p.get("text") or ""
                q = q if len(q) <= 140 else q[:139].rstrip() + "…"
                out.append(f"- {p.get('label') or p.get('source')}" + (f'  "{q}"' if q else ""))
        if self.budget_exhausted or self.notes:
            out.append("")
            if self.budget_exhausted:
                out.append("Budget exhausted: this is the best answer from the evidence gathered so far.")
            out += [f"note: {n}" for n in self.notes]
        c = self.cost
        out.append("")
        out.append(f"{c.rounds} rounds, {c.tool_calls} tool calls, {c.tokens_read} tokens read, "
                   f"{c.tokens_in}+{c.tokens_out} LLM tokens, {c.seconds:.2f} s")
        if trace and self.trace:
            out.append("")
            out.append(f"{'round':>5}  {'start':>7}  {'secs':>6}  {'tokens':>6}  call")
            for t in self.trace:
                args = ", ".join(f"{k}={v!r}" for k, v in t.arguments.items())
                status = "" if t.ok else f"  ERROR {t.error}"
                out.append(f"{t.round:>5}  {t.start:>7.3f}  {t.seconds:>6.3f}  {t.tokens:>6}  {t.tool}({args}){status}")
        return "\n".join(out)


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.fill(line, width) if len(line) > width else line for line in text.splitlines())


def cited_ids(text: str) -> list[int]:
    """Node ids cited in a draft, in order of first appearance."""
    seen: list[int] = []
    for m in _CITE_RE.finditer(text or ""):
        for i in _ID_RE.findall(m.group(1)):
            if int(i) not in seen:
                seen.append(int(i))
    return seen


def best_quote(evidence_text: str, claim: str, max_chars: int = 300) -> str:
    """The sentence of ``evidence_text`` sharing most terms with ``claim`` (first one on ties)."""
    text = " ".join((evidence_text or "").split())
    spans = sentence_spans(text) or ([(0, len(text))] if text else [])
    if not spans:
        return ""
    terms = set(query_terms(claim, max_terms=64))
    best, best_s = spans[0], -1.0
    for s, e in spans:
        low = text[s:e].lower()
        sc = sum(1 for t in terms if t in low)
        if sc > best_s:
            best, best_s = (s, e), sc
    q = text[best[0]:best[1]]
    return q if len(q) <= max_chars else q[: max_chars - 1].rstrip() + "…"


def resolve_citations(draft: str, evidence: dict[int, dict[str, Any]], quotes: dict[int, str] | None = None,
                      places: dict[int, dict[str, Any]] | None = None) -> tuple[str, list[Citation], list[str]]:
    """Turn ``[node_id]`` markers into ``[n]`` over ``evidence`` (id -> evidence entry).

    Returns (text, citations, notes). A marker naming ids the agent never saw is removed and
    reported in the notes rather than shown as if it were a source.
    """
    quotes = quotes or {}
    places = {int(k): v for k, v in (places or {}).items()}
    numbers: dict[int, int] = {}
    cites: list[Citation] = []
    dropped: list[int] = []
    # the claim a marker supports: the text of the sentence it ends
    spans = sentence_spans(draft) or [(0, len(draft))]

    def claim_at(pos: int) -> str:
        for s, e in spans:
            if s <= pos <= e + 1:
                return draft[s:e]
        return draft

    def sub(m: re.Match) -> str:
        ids = [int(i) for i in _ID_RE.findall(m.group(1))]
        keep = []
        for i in ids:
            ev = evidence.get(i)
            if ev is None:
                if i not in dropped:
                    dropped.append(i)
                continue
            if i not in numbers:
                numbers[i] = len(numbers) + 1
                quote = quotes.get(i) or best_quote(ev.get("text") or ev.get("snippet") or "", claim_at(m.start()))
                place = places.get(i) or {}  # a finer place inside the node (a timed cue), when given
                cites.append(Citation(n=numbers[i], node_id=i, label=place.get("label") or ev.get("label", ""),
                                      locator=place.get("locator") or ev.get("locator") or {},
                                      quote=quote, source=ev.get("source", ""), kind=ev.get("kind", "")))
            keep.append(numbers[i])
        if not keep:
            return ""
        return "[" + "][".join(str(n) for n in sorted(set(keep))) + "]"

    text = _CITE_RE.sub(sub, draft or "")
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text).strip()
    notes = []
    if dropped:
        notes.append("dropped citation(s) to node(s) " + ", ".join(map(str, dropped))
                     + ": not among the evidence the agent read")
    return text, cites, notes
