"""What every LLM backend shares: the reply, the errors, and tools described in the prompt for
models without native tool calls. The backends (:mod:`.llm`, :mod:`.llm_local`) build on this
module and never on each other's internals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from .budget import AgentError
from .toolcall_parse import CALL_HINT


class LLMError(AgentError):
    """The model could not be reached or loaded; one line."""


class LLMTimeout(LLMError):
    """The model was reached but did not answer in time: the run goes on with what it has."""


class LLMContextError(LLMError):
    """The server refused a prompt longer than its model's context, and said how long that is:
    ``max_ctx`` tokens (``prompt_tokens``: what the refused prompt came to, when it said)."""

    def __init__(self, msg: str, max_ctx: int, prompt_tokens: int | None = None):
        super().__init__(msg)
        self.max_ctx, self.prompt_tokens = int(max_ctx), prompt_tokens


@dataclass
class LLMReply:
    content: str = ""
    #: {"id", "name", "arguments"}; arguments are the raw JSON string (native) or a dict
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    native: bool = True  # False: tools were described in the prompt; calls must be parsed from content
    seconds: float = 0.0
    truncated: bool = False  # the call hit its deadline; content is what was written by then
    cached_tokens: int = 0  # prompt tokens whose KV the backend reused from its previous call


class ChatLLM(Protocol):
    name: str

    def chat(self, messages: list[dict], tools: list[dict] | None = None, *, timeout: float | None = None,
             max_tokens: int | None = None) -> LLMReply: ...


# -- tools described in the prompt, for models/servers without native tool calling -------------

def tools_prompt(tools: list[dict]) -> str:
    lines = ["You can call these tools:"]
    for t in tools:
        f = t["function"]
        lines.append(json.dumps({"name": f["name"], "description": f["description"], "parameters": f["parameters"]},
                                ensure_ascii=False))
    lines.append(f"To call tools, {CALL_HINT} (one block per call; several blocks in one reply run in parallel). "
                 "When you have the answer, reply with the answer text and no tool call.")
    return "\n".join(lines)


def as_text_messages(messages: list[dict], tools: list[dict] | None) -> list[dict]:
    """The same conversation with tool calls and results written as plain text turns."""
    out: list[dict] = []
    for m in messages:
        role = m.get("role")
        if role == "assistant" and m.get("tool_calls"):
            blocks = []
            for tc in m["tool_calls"]:
                f = tc.get("function", tc)
                args = f.get("arguments")
                args = args if isinstance(args, str) else json.dumps(args or {}, ensure_ascii=False)
                blocks.append(f'<tool_call>{{"name": "{f.get("name")}", "arguments": {args}}}</tool_call>')
            out.append({"role": "assistant", "content": ((m.get("content") or "") + "\n" + "\n".join(blocks)).strip()})
        elif role == "tool":
            body = f'<tool_response name="{m.get("name", "")}" id="{m.get("tool_call_id", "")}">\n{m.get("content", "")}\n</tool_response>'
            if out and out[-1]["role"] == "user" and out[-1].get("_tool"):
                out[-1]["content"] += "\n" + body
            else:
                out.append({"role": "user", "content": body, "_tool": True})
        else:
            out.append({"role": role, "content": m.get("content") or ""})
    for m in out:
        m.pop("_tool", None)
    if tools:
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + tools_prompt(tools)}
        else:
            out.insert(0, {"role": "system", "content": tools_prompt(tools)})
    return out
