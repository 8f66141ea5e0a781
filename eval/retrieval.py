"""Evidence recall: did what a method read (within a token budget) contain what the answer needs?

No reader (LLM) is involved; each benchmark gets the check it can support honestly. Every
scorer returns a dict whose ``recall`` (in [0, 1], or None when the item cannot be scored) is
the headline; other keys are diagnostics. Definitions (also in docs/eval.md):

- **qa** (LongBench QA tasks, e.g. multifieldqa_zh): ``recall`` = 1 if some gold answer,
  normalised with the official normaliser of the task's language (``normalize_zh_answer``:
  lower-case, punctuation and all whitespace removed; ``normalize_answer``: lower-case,
  punctuation and articles removed, whitespace collapsed), occurs in the equally normalised
  read text (English on word boundaries), else 0. ``token_recall`` = the share of the gold
  answer's tokens (jieba words / normalised words, counts clipped) found in the read text.
- **summary** (multi_news, gov_report, ...: no answer span exists): ``recall`` = unigram recall
  of the reference summary's content words by the read text (ROUGE-1 recall with clipped counts,
  on ``normalize_answer`` words — or jieba words for Chinese — minus bm25s' stopword list).
- **passage** (passage_retrieval_zh/en): the method's pick is the numbered paragraph that holds
  most of the first piece it read; ``pick_score`` is the official ``retrieval_zh_score`` /
  ``retrieval_score`` of ``"段落N"`` / ``"Paragraph N"`` against the gold. ``recall`` = the share
  of the gold paragraph's characters inside the text read.
- **choice** (LongBench v2: multiple choice, no gold span): ``recall`` = the share of the
  correct choice's *distinctive* content words (in the correct choice, in no other choice) found
  in the read text; None when the correct choice has no such word. ``margin`` = that share
  minus the best share among the wrong choices' distinctive words; ``question_recall`` = the
  share of the question's content words read. This is a lexical proxy: it says whether the words
  that tell the right option apart were read, not that the evidence for it was.
- **time** (LVBench): ``recall`` = 1 if some read segment's time span overlaps the question's
  ``time_reference``; ``coverage`` = the share of the reference span inside read segments.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Sequence

from .baselines import Piece, stopwords
from .metrics import (
    normalize_answer,
    normalize_zh_answer,
    retrieval_score,
    retrieval_zh_score,
    zh_tokens,
)

#: LongBench task → evidence check.
LONGBENCH_KIND = {
    **dict.fromkeys(
        ["narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh", "hotpotqa", "2wikimqa",
         "musique", "triviaqa", "dureader"], "qa"),
    **dict.fromkeys(["gov_report", "qmsum", "multi_news", "vcsum", "samsum"], "summary"),
    "passage_retrieval_zh": "passage",
    "passage_retrieval_en": "passage",
}  # fmt: skip


def read_text(pieces: Sequence[Piece]) -> str:
    return "\n".join(p.text for p in pieces)


# ---------------------------------------------------------------- qa


def qa_recall(pieces: Sequence[Piece], answers: Sequence[str], language: str) -> dict[str, Any]:
    text = read_text(pieces)
    hit = 0.0
    tok_rec = 0.0
    if language == "zh":
        norm = normalize_zh_answer(text)
        read_counts = Counter(zh_tokens(text))
        for a in answers:
            g = normalize_zh_answer(a)
            if g and g in norm:
                hit = 1.0
            tok_rec = max(tok_rec, _clipped_recall(Counter(zh_tokens(a)), read_counts))
    else:
        norm = f" {normalize_answer(text)} "
        read_counts = Counter(norm.split())
        for a in answers:
            g = normalize_answer(a)
            if g and f" {g} " in norm:
                hit = 1.0
            tok_rec = max(tok_rec, _clipped_recall(Counter(g.split()), read_counts))
    return {"recall": hit, "token_recall": tok_rec}


def _clipped_recall(gold: Counter[str], read: Counter[str]) -> float:
    total = sum(gold.values())
    if total == 0:
        return 0.0
    return sum(min(c, read[w]) for w, c in gold.items()) / total


# ---------------------------------------------------------------- summary


def content_words(text: str, language: str) -> list[str]:
    """Words that carry content: jieba / normalised words minus the stopword list."""
    stop = stopwords(language)
    words = zh_tokens(text) if language == "zh" else normalize_answer(text).split()
    return [w for w in words if w not in stop]


def summary_recall(pieces: Sequence[Piece], references: Sequence[str], language: str) -> dict[str, Any]:
    read = Counter(content_words(read_text(pieces), language))
    best = 0.0
    for ref in references:
        best = max(best, _clipped_recall(Counter(content_words(ref, language)), read))
    return {"recall": best}


# ---------------------------------------------------------------- numbered passages

_PASSAGE_RE = {"zh": re.compile(r"段落(\d+)："), "en": re.compile(r"Paragraph (\d+):")}


def numbered_paragraphs(context: str, language: str) -> list[tuple[str, int, int]]:
    """(number, start, end) of each ``段落N：`` / ``Paragraph N:`` paragraph of the context."""
    marks = list(_PASSAGE_RE["zh" if language == "zh" else "en"].finditer(context))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(context)
        # the blank line before the next label belongs to no paragraph
        end = m.start() + len(context[m.start() : end].rstrip())
        out.append((m.group(1), m.start(), end))
    return out


def locate(pieces: Sequence[Piece], context: str) -> list[tuple[int, int] | None]:
    """Character span of each piece in the context: its own offsets, else an exact find."""
    out: list[tuple[int, int] | None] = []
    for p in pieces:
        if p.start is not None and p.end is not None:
            out.append((p.start, p.end))
            continue
        t = p.text.strip()
        i = context.find(t) if t else -1
        out.append((i, i + len(t)) if i >= 0 else None)
    return out


def _bigrams(s: str) -> Counter[str]:
    s = "".join(s.split())
    return Counter(s[i : i + 2] for i in range(len(s) - 1))


def passage_pick(pieces: Sequence[Piece], context: str, language: str) -> str | None:
    """The number of the paragraph holding most of the first piece read (None if none read)."""
    paras = numbered_paragraphs(context, language)
    first = next((p for p in pieces if p.text.strip()), None)
    if first is None or not paras:
        return None
    span = locate([first], context)[0]
    if span is not None:
        s, e = span
        overlaps = [max(0, min(e, pe) - max(s, ps)) for _, ps, pe in paras]
        return paras[max(range(len(paras)), key=lambda i: overlaps[i])][0]
    # Text that cannot be found verbatim (re-flowed by a reader): the paragraph sharing most
    # character bigrams with it.
    fb = _bigrams(first.text)
    shared = [sum((fb & _bigrams(context[ps:pe])).values()) for _, ps, pe in paras]
    return paras[max(range(len(paras)), key=lambda i: shared[i])][0]


def passage_recall(
    pieces: Sequence[Piece], context: str, answers: Sequence[str], language: str
) -> dict[str, Any]:
    label = "段落" if language == "zh" else "Paragraph "
    official = retrieval_zh_score if language == "zh" else retrieval_score
    pick = passage_pick(pieces, context, language)
    pred = f"{label}{pick}" if pick is not None else ""
    pick_score = max(official(pred, a) for a in answers)
    gold_no = re.findall(r"\d+", answers[0])[0]
    paras = {n: (s, e) for n, s, e in numbered_paragraphs(context, language)}
    if gold_no not in paras:
        return {"recall": None, "pick": pred, "pick_score": pick_score}
    gs, ge = paras[gold_no]
    covered = [False] * (ge - gs)
    for piece, span in zip(pieces, locate(pieces, context)):
        if span is None:
            if context[gs:ge].strip() and context[gs:ge].strip() in piece.text:
                covered = [True] * (ge - gs)
            continue
        for i in range(max(span[0], gs), min(span[1], ge)):
            covered[i - gs] = True
    rec = sum(covered) / max(1, len(covered))
    return {"recall": rec, "pick": pred, "pick_score": pick_score}


# ---------------------------------------------------------------- LongBench v2 choices


def choice_recall(
    pieces: Sequence[Piece], question: str, choices: dict[str, str], answer: str, language: str
) -> dict[str, Any]:
    read = set(content_words(read_text(pieces), language))
    words = {k: set(content_words(v, language)) for k, v in choices.items()}

    def distinctive(k: str) -> set[str]:
        others = set().union(*(w for j, w in words.items() if j != k))
        return words[k] - others

    def share(ws: set[str]) -> float | None:
        return len(ws & read) / len(ws) if ws else None

    qwords = set(content_words(question, language))
    rec = share(distinctive(answer))
    wrong = [s for k in choices if k != answer if (s := share(distinctive(k))) is not None]
    return {
        "recall": rec,
        "margin": None if rec is None else rec - max(wrong, default=0.0),
        "question_recall": share(qwords),
    }


# ---------------------------------------------------------------- LVBench time spans


def time_recall(pieces: Sequence[Piece], span: tuple[float, float] | None) -> dict[str, Any]:
    if span is None:
        return {"recall": None, "coverage": None}
    a, b = span
    ivs = sorted(
        (p.t_start, p.t_end if p.t_end is not None else p.t_start)
        for p in pieces
        if p.t_start is not None
    )
    # A zero-length reference is a moment: hit when a segment contains it.
    hit = any(s <= b and e >= a if a == b else s < b and e > a for s, e in ivs)
    covered, cur = 0.0, a
    for s, e in ivs:
        s, e = max(s, cur), min(e, b)
        if e > s:
            covered += e - s
            cur = e
    cov = (covered / (b - a)) if b > a else float(hit)
    return {"recall": float(hit), "coverage": cov}


# ---------------------------------------------------------------- dispatch


def longbench_evidence(item, pieces: Sequence[Piece]) -> dict[str, Any]:
    """Evidence scores of one LongBench v1 item (``LongBenchItem``) for what was read."""
    kind = LONGBENCH_KIND.get(item.dataset.removesuffix("_e"))
    lang = "zh" if item.language == "zh" else "en"
    if kind == "qa":
        return qa_recall(pieces, item.answers, lang)
    if kind == "summary":
        return summary_recall(pieces, item.answers, lang)
    if kind == "passage":
        return passage_recall(pieces, item.context, item.answers, lang)
    return {"recall": None}
