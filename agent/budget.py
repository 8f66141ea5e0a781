"""What one question may spend: rounds of tool calls, tool calls, tokens read, wall seconds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


class AgentError(Exception):
    """A question the agent cannot start or finish; the message is one line."""


_ALIASES = {"round": "rounds", "call": "calls", "tool_calls": "calls", "token": "tokens", "tokens_read": "tokens",
            "second": "seconds", "secs": "seconds", "s": "seconds", "time": "seconds"}


@dataclass
class Budget:
    rounds: int = 4
    calls: int = 24
    tokens: int = 12000
    seconds: float = 120.0

    @classmethod
    def parse(cls, spec: str | dict | "Budget" | None) -> "Budget":
        """``"rounds=3,calls=12,tokens=6000,seconds=60"`` (any subset), a dict, or a Budget."""
        if spec is None or spec == "":
            return cls()
        if isinstance(spec, Budget):
            return spec
        if isinstance(spec, dict):
            items = list(spec.items())
        elif isinstance(spec, str):
            items = []
            for part in spec.replace(";", ",").split(","):
                part = part.strip()
                if not part:
                    continue
                if "=" not in part:
                    raise AgentError(f"budget: expected name=value, got {part!r} (e.g. rounds=3,calls=12,tokens=6000,seconds=60)")
                k, v = part.split("=", 1)
                items.append((k.strip(), v.strip()))
        else:
            raise AgentError(f"budget: expected a string, dict or Budget, got {type(spec).__name__}")
        names = {f.name for f in fields(cls)}
        out = cls()
        for k, v in items:
            key = _ALIASES.get(str(k).lower(), str(k).lower())
            if key not in names:
                raise AgentError(f"budget: unknown item {k!r}; use rounds, calls, tokens, seconds")
            try:
                val = float(str(v).rstrip("s")) if key == "seconds" else int(v)
            except ValueError:
                raise AgentError(f"budget: {k}={v!r} is not a number") from None
            if val <= 0:
                raise AgentError(f"budget: {k} must be positive, got {v}")
            setattr(out, key, val)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The limits as a dict of field name to value."""
        return asdict(self)

    def exhausted(self, cost: dict) -> str | None:
        """The first limit reached by ``cost`` (a Cost dict), as a note, or None."""
        if cost.get("rounds", 0) >= self.rounds:
            return f"rounds budget spent ({cost['rounds']}/{self.rounds})"
        if cost.get("tool_calls", 0) >= self.calls:
            return f"tool-call budget spent ({cost['tool_calls']}/{self.calls})"
        if cost.get("tokens_read", 0) >= self.tokens:
            return f"token budget spent ({cost['tokens_read']}/{self.tokens} tokens read)"
        if cost.get("seconds", 0.0) >= self.seconds:
            return f"time budget spent ({cost['seconds']:.1f}/{self.seconds:g} s)"
        return None


#: the time a question's answer may take by default (p50 aim on 2 CPU cores), ``--answer-seconds``
ANSWER_SECONDS = 60.0


def time_sized_tokens(seconds: float, prefill_tps: float, gen_tps: float, *, fixed_tokens: int = 0,
                      written_tokens: int = 0, floor: int = 200) -> int:
    """Evidence tokens a backend can prefill in ``seconds`` after its other work.

    ``fixed_tokens``: prompt tokens that are not evidence (system text, question, instructions and
    the other calls' prompts); ``written_tokens``: everything the calls may write. Both are spent
    first, at the measured prefill and generation speeds; what time is left buys evidence at the
    prefill speed. Never less than ``floor``.
    """
    if prefill_tps <= 0 or gen_tps <= 0:
        raise ValueError("speeds must be positive")
    left = seconds - fixed_tokens / prefill_tps - written_tokens / gen_tps
    return max(int(floor), int(left * prefill_tps))


def context_size(prompt_tokens: int, written_tokens: int, *, floor: int, ceiling: int, step: int = 1024) -> int:
    """A model context that holds ``prompt_tokens`` + ``written_tokens``: rounded up to ``step``,
    at least ``floor`` (the model's usual context), at most ``ceiling`` (what it was trained for)."""
    need = int(prompt_tokens) + int(written_tokens)
    size = -(-need // step) * step
    return max(int(floor), min(int(ceiling), size))
