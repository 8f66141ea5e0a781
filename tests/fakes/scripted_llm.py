"""A chat model double that answers from a script, recording what it was sent.

Each script step is a function ``step(messages, tools) -> LLMReply`` or an LLMReply; the last
step repeats once the script is used up.
"""

from __future__ import annotations

import json
import threading

from sleuth.agent.llm import LLMReply


def tool_call(name: str, i: int = 0, **arguments) -> dict:
    return {"id": f"call_{name}_{i}", "name": name, "arguments": json.dumps(arguments)}


def results_in(messages: list[dict]) -> list[dict]:
    """Tool results (parsed JSON) in a conversation, native tool messages and text responses."""
    out = []
    for m in messages:
        if m.get("role") == "tool":
            out.append(json.loads(m["content"]))
        elif m.get("role") == "user" and "<tool_response" in (m.get("content") or ""):
            import re

            for body in re.findall(r"<tool_response[^>]*>\n(.*?)\n</tool_response>", m["content"], re.S):
                out.append(json.loads(body))
    return out


class ScriptedLLM:
    name = "scripted"

    def __init__(self, steps):
        self.steps = list(steps)
        self.calls: list[dict] = []
        self._lock = threading.Lock()

    def chat(self, messages, tools=None, *, timeout=None, max_tokens=None) -> LLMReply:
        with self._lock:
            i = min(len(self.calls), len(self.steps) - 1)
            self.calls.append({"messages": [dict(m) for m in messages], "tools": tools})
        step = self.steps[i]
        reply = step(messages, tools) if callable(step) else step
        return reply


class PromptRecorder:
    """A model that answers "Not answerable." to everything and keeps each last prompt, for tests
    about what a system shows the model rather than what the model says."""

    def __init__(self):
        self.prompts: list[str] = []

    def count_tokens(self, s: str) -> int:
        return max(1, len(s.split()))

    def chat(self, messages, tools, **kw):
        from types import SimpleNamespace

        self.prompts.append(messages[-1]["content"])
        return SimpleNamespace(content="Not answerable.", tokens_in=0, tokens_out=0)
