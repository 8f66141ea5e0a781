"""Answering in two steps: quote the support, then answer from the quotes.

A small model shown a page of passages and told "if the passages do not contain the answer,
reply Not answerable" mostly takes the way out (issue 23: 78 of 102 dev questions). Here finding
the support and writing the answer are separate calls:

1. **quote** — over the numbered passages: copy the sentences or table rows that answer the
   question, each after its passage id; ``NONE`` when no passage does. Every quote is checked
   against the passage it names (most of its words must be there, in the passage shown): a quote
   the model made up, or pinned on the wrong passage, is dropped.
2. **answer** — a short prompt holding only the kept quotes and the question: the exact value,
   name or list, citing the quotes' ids. It is not offered a way out: the refusal belongs to
   step 1, so "Not answerable" is the answer only when no passage read was quoted in support.

``direct`` is the one-call protocol (answer or refuse over all the passages) and stays the
default: a pilot on 4 paired dev questions showed no gain from quoting (docs/agent-local.md).
"""

from __future__ import annotations

import re
from typing import Callable

from .extract import words_of

PROTOCOLS = ("quote", "direct")
NOT_ANSWERABLE = "Not answerable"

QUOTE_PROMPT = ("Passages from {scope}:\n\n{passages}\n\nQuestion: {question}\n\n"
                "Copy, word for word, the sentences or table rows from the passages above that answer the question "
                "(at most {most}), each on its own line starting with the id of its passage in brackets, e.g. "
                "[{example}] <copied text>. Copy numbers, names and units exactly. If no passage helps answer the "
                "question, reply exactly: NONE")

FROM_QUOTES_PROMPT = ("Quotes from {scope}:\n\n{quotes}\n\nQuestion: {question}\n\n"
                      "Answer the question from these quotes in one or two sentences: give the exact value, name or "
                      "list asked for (compute it from the quotes when needed), and after each claim the id of the "
                      "quote it comes from in brackets, e.g. [{example}].")

QUOTE_MAX_TOKENS = 160
MAX_QUOTES = 4
#: a quote is kept when at least this share of its words occur in the passage it names
QUOTE_MATCH = 0.7

#: a passage id in brackets: each one starts a quote, on its own line or not ("[1] 59% [2] 48%")
_MARKER = re.compile(r"\[\s*(?:id\s*[:=]?\s*)?(\d+)\s*\]\s*[:\-–]?\s*", re.I)


def parse_quotes(text: str, passages: dict[int, str], most: int = MAX_QUOTES) -> list[tuple[int, str]]:
    """(passage id, quote) pairs from the quote step's reply, each checked against the passage it
    names: the id must be one shown and :data:`QUOTE_MATCH` of the quote's words must be in that
    passage. Every bracketed id starts a quote, so several on one line count (small models write
    ``[1] 59% [2] 48%``); quotation marks around a quote are taken off; duplicates are dropped."""
    out: list[tuple[int, str]] = []
    text = text or ""
    marks = list(_MARKER.finditer(text))
    for n, m in enumerate(marks):
        end = marks[n + 1].start() if n + 1 < len(marks) else len(text)
        i, quote = int(m.group(1)), " ".join(text[m.end():end].split()).strip().strip('"“”\'').strip()
        if i not in passages or len(quote) < 2:
            continue
        words = words_of(quote)
        if not words:
            continue
        have = words_of(passages[i])
        if sum(1 for w in words if w in have) / len(words) < QUOTE_MATCH:
            continue
        if (i, quote) not in out:
            out.append((i, quote))
        if len(out) >= most:
            break
    return out


def quote_then_answer(chat: Callable[[str, int], object], *, passages_text: str, passages: dict[int, str],
                      question: str, scope: str, answer_max_tokens: int) -> dict:
    """The two-step protocol over passages already numbered (``passages_text``; ``passages``: id ->
    text shown). ``chat(user_prompt, max_tokens)`` makes one model call and returns its reply
    (``content``, ``tokens_in``, ``tokens_out``). Returns ``text``, ``quotes``, ``tokens_in``,
    ``tokens_out``, ``llm_calls``."""
    example = next(iter(passages), 1)
    q = chat(QUOTE_PROMPT.format(scope=scope, passages=passages_text, question=question, most=MAX_QUOTES,
                                 example=example), QUOTE_MAX_TOKENS)
    tin, tout = int(getattr(q, "tokens_in", 0) or 0), int(getattr(q, "tokens_out", 0) or 0)
    quotes = parse_quotes(q.content, passages)
    if not quotes:
        return {"text": f"{NOT_ANSWERABLE}.", "quotes": [], "tokens_in": tin, "tokens_out": tout, "llm_calls": 1,
                "quote_reply": q.content}
    block = "\n".join(f"[{i}] {t}" for i, t in quotes)
    a = chat(FROM_QUOTES_PROMPT.format(scope=scope, quotes=block, question=question, example=quotes[0][0]),
             answer_max_tokens)
    return {"text": a.content.strip(), "quotes": [{"id": i, "text": t} for i, t in quotes],
            "tokens_in": tin + int(getattr(a, "tokens_in", 0) or 0),
            "tokens_out": tout + int(getattr(a, "tokens_out", 0) or 0), "llm_calls": 2, "quote_reply": q.content}
