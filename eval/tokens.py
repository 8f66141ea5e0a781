"""The one token count every budget in ``eval/`` is measured with.

A token is one of:

- a CJK character (Han, kana, Hangul, CJK punctuation and full-width forms) — one each, the way
  BERT-style tokenizers (MiniLM included) and most LLM tokenizers split Chinese;
- a maximal run of other word characters (``\\w+``: letters, digits, underscore) — one per
  English word, whatever its length;
- any other single non-space character (punctuation, symbols).

Whitespace is free. Why not the MiniLM word-piece tokenizer: budgets must mean the same for the
agent, the baselines and every language, and must be cheap to cut at exactly N tokens; this
rule has no vocabulary, no ``[UNK]`` and gives character offsets for free. On English prose
it counts about 0.8 MiniLM word pieces per token, on Chinese almost exactly one per character.
"""

from __future__ import annotations

import re

# CJK ranges: CJK symbols/punctuation, kana, CJK unified (+ext A), compatibility ideographs,
# Hangul, full-width forms. Listed first so a Han run is never swallowed by ``\w+``.
_CJK = (
    "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\uac00-\ud7af\uff00-\uffef"
)
TOKEN_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]", re.UNICODE)


def count_tokens(text: str) -> int:
    """Number of tokens in ``text`` under the rule above."""
    return sum(1 for _ in TOKEN_RE.finditer(text))


def token_spans(text: str) -> list[tuple[int, int]]:
    """Character span of each token, in order."""
    return [m.span() for m in TOKEN_RE.finditer(text)]


def truncate_to_tokens(text: str, budget: int) -> str:
    """The longest prefix of ``text`` holding at most ``budget`` tokens (ends after a token)."""
    if budget <= 0:
        return ""
    end = None
    for i, m in enumerate(TOKEN_RE.finditer(text)):
        if i == budget:
            return text[: end]
        end = m.end()
    return text
