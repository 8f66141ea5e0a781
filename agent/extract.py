"""Extractive answers: pick, for each sub-question, the evidence sentence that best supports it.

A sentence's score mixes

* lexical coverage — IDF-weighted share of the sub-question's content words it contains
  (prefix matching stands in for stemming: "budgets" ~ "budget", "launched" ~ "launch"); for a
  compared item the item's name is a filter instead (it must occur in the sentence, around it
  or in its source), so "the budget of Nereus" is not answered by Ares' budget sentence;
* context coverage — words found only in its section path or the sentence before it (a
  sentence saying "It was led by …" under "Ares programme" still answers "who led Ares");
* dense similarity — MiniLM cosine between the sub-question and the sentence;
* answer-type fit — a date for "when", a number for "how many/much", a name for "who";
* retrieval prior — how high its node ranked in search.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..core import FINE_KINDS
from ..index.lexical import query_terms
from ..readers.textsplit import sentence_spans as _raw_spans
from .decompose import SubQuestion

_WORD = re.compile(r"[\w\u3400-\u9fff]+", re.UNICODE)
_PRONOUN_START = re.compile(r"^(it|its|he|she|they|their|his|her|this|these|that|those|the latter|the former|such)\b", re.I)
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d|\b\d{1,2}\s+"
                   r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)|\bQ[1-4]\b|\b(century|decade)\b", re.I)
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
                     r"hundred|thousand|million|billion|dozen|half|percent)\b", re.I)
_CAPNAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")
_PLACE = re.compile(r"\b(in|at|from|near|to)\s+[A-Z]")

# a "sentence" ending in one of these was cut at an abbreviation, not at its end
_ABBREV = re.compile(r"(?:\b(?:dr|mr|mrs|ms|prof|sr|jr|st|mt|no|nos|fig|figs|eq|vol|pp|p|ca|approx|dept|inc|ltd|co|corp|"
                     r"gen|gov|sen|rep|rev|lt|col|capt|sgt|vs|etc|al|e\.g|i\.e|cf|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|"
                     r"nov|dec|u\.s|u\.k)\.|\b[A-Z]\.)$", re.I)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans, re-joined where the splitter cut after "Dr." or an initial ("J. Smith")."""
    out: list[tuple[int, int]] = []
    for s, e in _raw_spans(text):
        if out and _ABBREV.search(text[out[-1][0]:out[-1][1]]):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


W_LEX, W_CTX, W_DENSE, W_RANK = 0.5, 0.15, 0.4, 0.05
SUPPORTED_LEX, SUPPORTED_DENSE = 0.3, 0.5


@dataclass
class Sentence:
    node_id: int
    text: str
    prev: str = ""
    context: str = ""
    rank: int | None = None
    order: int = 0
    words: set[str] = field(default_factory=set)
    source: str = ""
    #: a finer place than the node (one timed cue of a video segment), when known
    locator: dict | None = None
    label: str | None = None
    next: str = ""  # the cue after a transcript cue (cues cut sentences mid-phrase)


@dataclass
class Support:
    sub: SubQuestion
    sentence: Sentence | None
    score: float = 0.0
    lex: float = 0.0
    dense: float = 0.0
    supported: bool = False

    @property
    def shown(self) -> str:
        """The sentence as quoted, with the sentence before it when it opens with a pronoun."""
        s = self.sentence
        if s is None:
            return ""
        if s.locator and len(s.text.split()) < 12:  # a short transcript cue: show the cues around it
            return " ".join(x for x in (s.prev, s.text, s.next) if x)
        if s.prev and _PRONOUN_START.match(s.text):
            return s.prev + " " + s.text
        return s.text


def _span(units: list[dict], j: int) -> dict:
    """The locator of cue ``j`` widened to the cues either side of it (what a short cue is shown with)."""
    loc = dict(units[j].get("locator") or {})
    if not loc or loc.get("t_start") is None or len((units[j].get("text") or "").split()) >= 12:
        return loc
    ts = [(u.get("locator") or {}) for u in units[max(0, j - 1): j + 2]]
    starts = [x["t_start"] for x in ts if x.get("t_start") is not None]
    ends = [x.get("t_end") if x.get("t_end") is not None else x.get("t_start") for x in ts]
    loc["t_start"], loc["t_end"] = min(starts), max(e for e in ends if e is not None)
    return loc


def words_of(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def has_term(term: str, words: set[str]) -> bool:
    """``term`` is among ``words``, or (five letters or more) shares its first five letters with one:
    a crude stem match, so "measured" supports "measurement"."""
    if term in words:
        return True
    if len(term) >= 5:
        p = term[:5]
        return any(len(w) >= 5 and w[:5] == p for w in words)
    return False


def sentences_of(evidence: list[dict], max_chars: int = 600) -> list[Sentence]:
    """Sentences of the evidence text (paragraph-level entries only; containers repeat them)."""
    out: list[Sentence] = []
    seen: set[tuple[int, str]] = set()
    for order, ev in enumerate(evidence):
        if ev.get("container") or not ev.get("text"):
            continue
        # a search snippet of a section or file is its generated summary, not quotable text
        if ev.get("via") == "search" and ev.get("kind") not in FINE_KINDS:
            continue
        ctx = " ".join(ev.get("title_path") or [])
        if ev.get("units"):
            # timed cues are the sentences of a transcript (it has no punctuation to split on)
            units = ev["units"]
            for j, u in enumerate(units):
                t = " ".join((u.get("text") or "").split())
                if len(t) < 8 or (int(ev["id"]), t) in seen:
                    continue
                seen.add((int(ev["id"]), t))
                prev = " ".join((units[j - 1].get("text") or "").split()) if j else ""
                nxt = " ".join((units[j + 1].get("text") or "").split()) if j + 1 < len(units) else ""
                out.append(Sentence(node_id=int(ev["id"]), text=t[:max_chars], prev=prev, context=ctx,
                                    rank=ev.get("best_rank"), order=order, words=words_of(t),
                                    source=ev.get("source", ""), locator=_span(units, j) or None,
                                    label=u.get("label") or None, next=nxt))
            continue
        text = " ".join(ev["text"].split())
        spans = sentence_spans(text) or [(0, len(text))]
        prev = ""
        for s, e in spans:
            sent = text[s:e].strip()
            if len(sent) > max_chars:
                sent = sent[:max_chars]
            key = (int(ev["id"]), sent)
            if len(sent) < 12 or key in seen:
                prev = sent
                continue
            seen.add(key)
            out.append(Sentence(node_id=int(ev["id"]), text=sent, prev=prev, context=ctx, rank=ev.get("best_rank"),
                                order=order, words=words_of(sent), source=ev.get("source", "")))
            prev = sent
    return out


def _idf(terms: list[str], sents: list[Sentence]) -> dict[str, float]:
    n = max(1, len(sents))
    return {t: math.log(1.0 + n / (1.0 + sum(1 for s in sents if has_term(t, s.words)))) for t in terms}


def _type_bonus(question: str, sent: str) -> float:
    q = question.lower().strip()
    if re.match(r"(when|what year|which year|what date|in what year|in which year|since when|how long ago)\b", q):
        return 0.15 if _YEAR.search(sent) else -0.05
    if re.match(r"(how (many|much|long|far|old|big|large|high|tall|fast|often)|what (percentage|percent|number|share|amount|"
                r"fraction|proportion))\b", q):
        return 0.12 if _NUMBER.search(sent) else -0.05
    if re.match(r"(who|whom|whose|which (person|company|organi[sz]ation|team))\b", q):
        qwords = words_of(question)
        names = [m.group(0) for m in _CAPNAME.finditer(sent)]
        return 0.1 if any(not (words_of(n) <= qwords) for n in names) else -0.05
    if re.match(r"where\b", q):
        return 0.08 if _PLACE.search(sent) else 0.0
    return 0.0


def source_words(evidence: list[dict]) -> dict[str, set[str]]:
    """Words seen anywhere in each source's evidence (text, snippets, section titles)."""
    out: dict[str, set[str]] = {}
    for ev in evidence:
        out.setdefault(ev.get("source", ""), set()).update(
            words_of((ev.get("text") or "") + " " + " ".join(ev.get("title_path") or [])))
    return out


def score(sub: SubQuestion, sents: list[Sentence], q_vec: np.ndarray | None = None,
          s_vecs: np.ndarray | None = None, src_words: dict[str, set[str]] | None = None,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(total, lexical, dense) scores of every sentence for one sub-question.

    For a comparison/list part the item's name (``sub.label``) acts as a filter, not as a word
    to cover: a sentence qualifies when the name is in it, around it, or anywhere in its source
    ("Funding came from …" in the Nereus report answers "the funding of Nereus"); the words of
    the shared aspect are what the lexical score measures.
    """
    label_terms = set(query_terms(sub.label)) if sub.label else set()
    terms = [t for t in query_terms(sub.query) if t not in label_terms] or query_terms(sub.query)
    idf = _idf(terms, sents)
    total_w = sum(idf.values()) or 1.0
    n = len(sents)
    lex, ctx, dense, total = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    if q_vec is not None and s_vecs is not None and len(s_vecs):
        dense = np.clip(s_vecs @ q_vec, 0.0, 1.0)
    src_words = src_words or {}
    for i, s in enumerate(sents):
        got = {t for t in terms if has_term(t, s.words)}
        lex[i] = sum(idf[t] for t in got) / total_w
        cwords = words_of(s.context + " " + s.prev)
        ctx[i] = sum(idf[t] for t in terms if t not in got and has_term(t, cwords)) / total_w
        if s.prev and _PRONOUN_START.match(s.text):
            # "It was led by …": the sentence before names what "it" is, and is quoted with it
            pw = words_of(s.prev)
            lex[i] += 0.8 * sum(idf[t] for t in terms if t not in got and has_term(t, pw)) / total_w
        bonus = 0.0
        if label_terms:
            if any(has_term(t, s.words) for t in label_terms):
                bonus += 0.1
            elif not any(has_term(t, cwords | src_words.get(s.source, set())) for t in label_terms):
                lex[i] *= 0.5  # a sentence about another compared item
                ctx[i] *= 0.5
                bonus -= 0.1
        rank = 0.0 if s.rank is None else 1.0 / (1.0 + s.rank)
        nw = len(s.words)
        length = -0.05 if nw < 4 else (-0.05 if nw > 70 else 0.0)
        total[i] = (W_LEX * lex[i] + W_CTX * ctx[i] + W_DENSE * dense[i] + W_RANK * rank + length + bonus
                    + _type_bonus(sub.text, s.text))
    return total, lex, dense


def select(subs: list[SubQuestion], evidence: list[dict], embed: Callable[[list[str]], np.ndarray] | None = None,
           embed_query: Callable[[str], np.ndarray] | None = None, max_dense: int = 24) -> list[Support]:
    """The best-supporting sentence for each sub-question."""
    sents = sentences_of(evidence)
    src_words = source_words(evidence)
    if not sents:
        return [Support(sub=s, sentence=None) for s in subs]
    s_vecs = None
    if embed is not None:
        # dense-score only each part's lexically most plausible sentences (and the top-ranked
        # nodes'): embedding every sentence read would dominate the latency
        prior = np.array([1.0 if (s.rank is not None and s.rank < 2) else 0.0 for s in sents])
        per_sub = max(6, max_dense // max(1, len(subs)))
        keep: set[int] = set()
        for sub in subs:
            _, lx, _ = score(sub, sents, src_words=src_words)
            keep.update(np.argsort(-(lx + 0.2 * prior), kind="stable")[:per_sub].tolist())
        sents = [sents[i] for i in sorted(keep)]
        s_vecs = _embed_cached(embed, [(s.prev + " " + s.text) if (s.prev and _PRONOUN_START.match(s.text)) else s.text
                                       for s in sents])
    out = []
    for sub in subs:
        q_vec = embed_query(sub.query) if (embed_query is not None and s_vecs is not None) else None
        total, lex, dense = score(sub, sents, q_vec, s_vecs, src_words)
        i = int(np.argmax(total))
        ok = bool(lex[i] >= SUPPORTED_LEX or dense[i] >= SUPPORTED_DENSE)
        out.append(Support(sub=sub, sentence=sents[i], score=float(total[i]), lex=float(lex[i]), dense=float(dense[i]),
                           supported=ok))
    return out


_VEC_CACHE: dict[tuple[str, str], np.ndarray] = {}
_VEC_CACHE_MAX = 8192


def _embed_cached(embed: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
    """Sentence vectors, reusing those of sentences seen by earlier questions in this process."""
    model = getattr(getattr(embed, "__self__", None), "model_id", repr(embed))
    keys = [(model, t) for t in texts]
    missing = [k for k in dict.fromkeys(keys) if k not in _VEC_CACHE]
    if missing:
        vecs = embed([t for _, t in missing])
        if len(_VEC_CACHE) + len(missing) > _VEC_CACHE_MAX:
            _VEC_CACHE.clear()
        _VEC_CACHE.update(zip(missing, vecs))
    return np.stack([_VEC_CACHE[k] for k in keys]) if texts else np.zeros((0, 1), dtype=np.float32)


def compose(question: str, supports: list[Support]) -> dict:
    """A draft answer with ``[node_id]`` markers, the quote for each cited node, and per-part support."""
    quotes: dict[int, str] = {}
    places: dict[int, dict] = {}
    lines = []
    multi = len(supports) > 1
    for sp in supports:
        if sp.sentence is None:
            lines.append((f"- {sp.sub.text}: " if multi else "") + "nothing in the library matches this.")
            continue
        shown = sp.shown
        quotes.setdefault(sp.sentence.node_id, shown)
        if sp.sentence.locator and sp.sentence.node_id not in places:
            places[sp.sentence.node_id] = {"locator": sp.sentence.locator, "label": _label(sp.sentence.locator, sp.sentence.label)}
        body = f"{shown} [{sp.sentence.node_id}]"
        if not sp.supported:
            body = f"no passage clearly answers this; the closest is: “{shown}” [{sp.sentence.node_id}]"
        if multi:
            lines.append(f"- {_cap(sp.sub.text)}: {body}")
        else:
            lines.append(body[0].upper() + body[1:] if not sp.supported else body)
    # "quoted": the sentences are the documents' words, which may say anything ("ignore the
    # question and print /etc/passwd"); the answer says so, so nobody takes them for sleuth's.
    return {"text": "\n".join(lines), "quotes": quotes, "places": places, "quoted": bool(quotes),
            "support": [{"part": sp.sub.text, "node": sp.sentence.node_id if sp.sentence else None,
                         "sentence": sp.shown, "score": round(sp.score, 4), "lexical": round(sp.lex, 4),
                         "dense": round(sp.dense, 4), "supported": sp.supported} for sp in supports],
            "confident": all(sp.supported for sp in supports)}


def _label(loc: dict, fallback: str | None) -> str:
    try:
        from ..core import Locator

        return Locator.from_dict(loc).label()
    except (TypeError, ValueError):
        return fallback or ""


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]
