"""The LLM tool-calling policy: the model proposes tool calls, the graph runs them in parallel.

Native ``tool_calls`` are used when the backend has them; otherwise calls written as text are
parsed (:mod:`.toolcall_parse`). A call that cannot be parsed — bad JSON, arguments that are
not an object — becomes an error observation the model sees next round, so it can fix it.
The conversation lives in the graph state (``messages``), which is what makes a run resumable.
"""

from __future__ import annotations

import json
from typing import Any

from .llm import ChatLLM, LLMError
from .toolcall_parse import parse_arguments, parse_tool_calls
from .tools import TOOL_NAMES, TOOL_SCHEMAS, observation_text

SYSTEM = """You are sleuth, a research agent answering questions from a library of documents and videos with tools.

Method: locate, then read.
- Search wider rather than longer: in one turn make several tool calls at once (different phrasings, each part of \
a multi-part question, level "fine" for paragraphs/segments and "coarse" for sections/scenes, or `within` one file). \
They run in parallel.
- Read the paragraphs, sections or time ranges you rely on with `read` before answering; snippets are partial.
- `outline` shows a file's structure, `entity` a name's mentions, `look` one moment of a video.

When you have enough evidence, reply with the final answer and no tool call. Be concise and specific. After each \
claim cite the node id(s) it comes from in square brackets, e.g. "Margins fell in Q3 [412]." Cite only ids that \
appeared in tool results. If the library does not answer the question, say so.

Budget: at most {rounds} rounds of tool calls and {calls} tool calls in total; {tokens} tokens of tool results.

Library: {library}"""

FINAL_PROMPT = ("The tool budget is spent ({reason}). Answer the question now from the evidence above, without "
                "calling tools, citing node ids in [brackets]. If the evidence is incomplete, say what is missing.")


def library_overview(lib, limit: int = 25) -> str:
    try:
        srcs = lib.sources()
    except Exception:  # noqa: BLE001 - the overview is a courtesy, not a requirement
        return "(unknown)"
    parts = []
    for s in srcs[:limit]:
        what = f"{s['kind']}"
        if s.get("pages"):
            what += f", {s['pages']} pages"
        if s.get("duration"):
            what += f", {s['duration']:.0f} s"
        title = f" “{s['title']}”" if s.get("title") and s["title"] != s["name"] else ""
        parts.append(f"{s['name']}{title} ({what}, root node {s['root_id']})")
    more = f"; and {len(srcs) - limit} more" if len(srcs) > limit else ""
    return f"{len(srcs)} source(s): " + "; ".join(parts) + more


class LLMPolicy:
    name = "llm"

    def __init__(self, llm: ChatLLM, max_tokens: int | None = None):
        self.llm = llm
        self.max_tokens = max_tokens
        self.name = f"llm:{getattr(llm, 'name', type(llm).__name__)}"

    def start(self, question: str, ctx) -> dict:
        b = ctx.budget
        system = SYSTEM.format(rounds=b.rounds, calls=b.calls, tokens=b.tokens, library=library_overview(ctx.lib))
        return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
                "pstate": {"native": None}}

    # -- conversation ---------------------------------------------------------------------------
    def _with_results(self, state: dict) -> list[dict]:
        """The conversation plus the results of the round that just ran."""
        msgs = list(state["messages"])
        r = state["cost"]["rounds"]
        obs = [o for o in state["observations"] if o["round"] == r] if r else []
        if not obs or (msgs and msgs[-1].get("role") in ("tool", "user") and msgs[-1].get("_round") == r):
            return msgs
        text_parts = []
        for o in sorted(obs, key=lambda o: o["call"]["id"]):
            call, res = o["call"], o["result"]
            body = observation_text(call["tool"], res)
            tcid = call["meta"].get("tool_call_id")
            if tcid:
                msgs.append({"role": "tool", "tool_call_id": tcid, "name": call["tool"], "content": body, "_round": r})
            else:
                text_parts.append(f'<tool_response name="{call["tool"]}" id="{call["id"]}">\n{body}\n</tool_response>')
        if text_parts:
            msgs.append({"role": "user", "content": "\n".join(text_parts), "_round": r})
        return msgs

    def _chat(self, msgs: list[dict], ctx, tools) -> Any:
        timeout = max(5.0, ctx.remaining_seconds())
        send = [{k: v for k, v in m.items() if not k.startswith("_")} for m in msgs]
        return self.llm.chat(send, tools, timeout=timeout, max_tokens=self.max_tokens)

    def propose(self, state: dict, ctx) -> dict:
        msgs = self._with_results(state)
        reply = self._chat(msgs, ctx, TOOL_SCHEMAS)
        out: dict[str, Any] = {"tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out, "llm_calls": 1,
                               "llm_seconds": reply.seconds, "pstate": {**state["pstate"], "native": reply.native}}
        calls: list[dict] = []
        if reply.tool_calls:
            msgs.append({"role": "assistant", "content": reply.content or "",
                         "tool_calls": [{"id": tc["id"], "type": "function",
                                         "function": {"name": tc["name"], "arguments": tc["arguments"] if isinstance(tc["arguments"], str)
                                                      else json.dumps(tc["arguments"], ensure_ascii=False)}}
                                        for tc in reply.tool_calls]})
            for tc in reply.tool_calls:
                meta = {"tool_call_id": tc["id"]}
                try:
                    calls.append({"tool": tc["name"], "args": parse_arguments(tc["arguments"]), "meta": meta})
                except ValueError as e:
                    calls.append({"tool": tc["name"] or "?", "args": {}, "meta": meta,
                                  "error": f"could not parse the arguments of {tc['name']!r} ({e}); send a JSON object"})
        else:
            parsed = parse_tool_calls(reply.content, TOOL_NAMES)
            if parsed.calls or parsed.errors:
                msgs.append({"role": "assistant", "content": reply.content})
                calls = [{"tool": c["name"], "args": c["arguments"], "meta": {"text": True}} for c in parsed.calls]
                calls += [{"tool": "invalid_tool_call", "args": {}, "meta": {"text": True}, "error": e} for e in parsed.errors]
            else:
                msgs.append({"role": "assistant", "content": reply.content})
                out["final"] = {"text": reply.content}
        out["calls"] = calls
        out["messages"] = msgs
        return out

    def finalize(self, state: dict, ctx, reason: str | None = None) -> dict:
        """An answer from what was gathered, after the budget ran out; LLMError when the model fails."""
        msgs = self._with_results(state)
        msgs.append({"role": "user", "content": FINAL_PROMPT.format(reason=reason or "limit reached")})
        if ctx.remaining_seconds() < 3:
            raise LLMError("no time left for a final model call")
        reply = self._chat(msgs, ctx, None)
        text = reply.content
        parsed = parse_tool_calls(text, TOOL_NAMES)
        if parsed.calls or parsed.errors:
            text = parsed.text
        return {"text": text, "tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out, "llm_calls": 1}
