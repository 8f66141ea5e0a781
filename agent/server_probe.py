"""What the model behind an OpenAI-compatible server can take: its context length and its speed.

The agent sizes its reading from these (a 70B model on a GPU node reads more, and in more rounds,
than a 1.5B one on two cores), so they are found out once per server and model.

**Context length**, from what the server says about itself:

* vLLM lists ``max_model_len`` in ``GET /v1/models``;
* llama.cpp's ``llama-server`` gives ``default_generation_settings.n_ctx`` in ``GET /props``;
* every server refuses a prompt longer than its context before doing any work, and says the
  length: "maximum context length is N tokens" (OpenAI, vLLM, ``python -m llama_cpp.server``),
  ``"n_ctx": N`` (llama-server). :func:`context_from_error` reads it; the agent then retries with
  less. No prompt is sent on purpose to provoke that refusal: one long enough to overflow any
  context would be run, and billed, in full by a server whose context is longer still.

**Speed**, by :func:`measure`: four short calls, each with a fresh nonce first so no server
reuses a cached prefix — a one-word prompt, twice (the fixed cost of a call: network, queue,
template), the same with ~500 more tokens (prefill speed from the difference), and a reply of up to 64
tokens (generation speed). A few seconds on two CPU cores, well under one on a GPU. Results
are kept beside the local models' speeds (``sleuth models`` shows them) and reused for a day.
"""

from __future__ import annotations

import calendar
import re
import time
import uuid
from typing import Any

#: words of the prefill probe: varied, so each is about one token in any tokenizer
_PROBE_WORDS = ("river amber seven north ledger copper violet harbor eleven summit canvas orbit meadow "
                "signal quartz lantern thirty willow engine marble falcon garden ninety pilot").split()
PROBE_WORDS = 480
GEN_PROBE_TOKENS = 64
#: how long a measured speed is reused before the server is measured again
MAX_AGE_S = 24 * 3600

_CONTEXT_ERRORS = (
    re.compile(r"maximum context length is\s*(\d+)", re.I),
    re.compile(r"context window of\s*(\d+)", re.I),
    re.compile(r"\"n_ctx\"\s*:\s*(\d+)"),
    re.compile(r"context (?:size|length) (?:of |is )?\(?(\d{3,7})\)?", re.I),
)
_PROMPT_TOKENS = (
    re.compile(r"(?:resulted in|requested)\s*(\d+)\s*tokens", re.I),
    re.compile(r"\"n_prompt_tokens\"\s*:\s*(\d+)"),
    re.compile(r"\((\d+) in (?:your|the) (?:prompt|messages)", re.I),
)


def context_from_error(text: str) -> tuple[int | None, int | None]:
    """``(context length, prompt tokens)`` that a server's "prompt too long" refusal states; None
    for what it does not say (any other error gives ``(None, None)``)."""
    ctx = next((int(m.group(1)) for p in _CONTEXT_ERRORS for m in [p.search(text or "")] if m), None)
    if ctx is None or ctx < 16:
        return None, None
    # "requested 5000 tokens (4900 in the messages, 100 in the completion)": the prompt's own share
    # when it is given, else the whole request
    inner = _PROMPT_TOKENS[2].search(text or "")
    if inner:
        return ctx, int(inner.group(1))
    tok = next((int(m.group(1)) for p in _PROMPT_TOKENS[:2] for m in [p.search(text or "")] if m), None)
    return ctx, tok


def context_from_listing(models: dict | None, props: dict | None, model: str | None) -> int | None:
    """The context length in a server's model listing (vLLM) or its ``/props`` (llama-server)."""
    for m in (models or {}).get("data") or []:
        if not isinstance(m, dict) or (model and m.get("id") not in (model, None) and len(models["data"]) > 1):
            continue
        for key in ("max_model_len", "context_length", "max_context_length"):
            v = m.get(key)
            if isinstance(v, int) and v > 0:
                return v
    if isinstance(props, dict):
        gen = props.get("default_generation_settings") or {}
        for v in (gen.get("n_ctx"), props.get("n_ctx")):
            if isinstance(v, int) and v > 0:
                return v
    return None


def speed_key(base_url: str, model: str) -> str:
    """The key a server's measured speed is kept under, beside the local models' speeds."""
    return f"server:{model}@{base_url}"


def measure(chat) -> dict[str, Any]:
    """Time four short calls to ``chat`` (an :class:`~sleuth.agent.llm.OpenAIChat`): returns
    ``prefill_tokens_per_s``, ``generate_tokens_per_s`` and ``overhead_s`` (a call's fixed cost)."""
    def call(text: str, max_tokens: int):
        return chat.chat([{"role": "user", "content": text}], max_tokens=max_tokens, timeout=min(chat.timeout, 120.0),
                         learn=False)

    def nonce() -> str:
        return uuid.uuid4().hex[:12]

    # the fixed cost is the faster of two one-word calls: a server's first call may also warm it up
    r0 = min((call(f"{nonce()} Reply with one word: ok", 1) for _ in range(2)), key=lambda r: r.seconds)
    words = " ".join(_PROBE_WORDS[(i * 7 + i // 24) % len(_PROBE_WORDS)] for i in range(PROBE_WORDS))
    r1 = call(f"{nonce()} {words}\nReply with one word: ok", 1)
    r2 = call(f"{nonce()} Count from 1 to 100, separated by commas.", GEN_PROBE_TOKENS)
    overhead = max(0.0, r0.seconds)
    extra = (r1.tokens_in - r1.cached_tokens) - (r0.tokens_in - r0.cached_tokens)
    if extra <= 0 or r1.seconds <= overhead:
        raise ValueError(f"the server's prompt tokens could not be timed ({extra} more tokens, "
                         f"{r1.seconds:.2f} s against {overhead:.2f} s)")
    prefill = extra / (r1.seconds - overhead)
    written = max(0, r2.tokens_out - 1)
    if written < 8:
        raise ValueError(f"the server wrote {r2.tokens_out} tokens, too few to time")
    gen_s = r2.seconds - overhead - max(0, r2.tokens_in - r0.tokens_in) / prefill
    if gen_s <= 0.2 * r2.seconds:  # the estimate of its prompt's share was off: time the whole reply
        gen_s = max(r2.seconds - overhead, 1e-3)
    return {"prefill_tokens_per_s": prefill, "generate_tokens_per_s": written / gen_s, "overhead_s": overhead}


def known_speed(key: str) -> dict | None:
    """A speed measured for ``key`` within :data:`MAX_AGE_S`, else None."""
    from . import models

    entry = models.load_speeds().get(key) or {}
    at = entry.get("measured_at")
    if not at or not entry.get("prefill_tokens_per_s") or not entry.get("generate_tokens_per_s"):
        return None
    try:
        age = time.time() - calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ"))
    except (ValueError, OverflowError):
        return None
    return entry if 0 <= age <= MAX_AGE_S else None
