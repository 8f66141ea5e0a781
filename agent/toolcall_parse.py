"""Tool calls written as text by models without native tool calling.

Recognised forms (several per message are fine):

* Hermes / Qwen2.5: ``<tool_call>{"name": "search", "arguments": {...}}</tool_call>``
  (also when the closing tag is missing because generation stopped at it);
* Qwen3-Coder XML: ``<tool_call><function=search><parameter=query>…</parameter></function></tool_call>``;
* Llama 3.1: ``<function=search>{"query": …}</function>`` and ``<|python_tag|>{"name": …}``;
* Mistral: ``[TOOL_CALLS] [{"name": …, "arguments": …}]``;
* fenced JSON: ``\u0060\u0060\u0060json {"name": …, "arguments": …} \u0060\u0060\u0060`` (an object or a list);
* a message that is nothing but such a JSON object or list.

A block that looks like a tool call but does not parse becomes an error string, which the
policy hands back to the model as an observation instead of failing.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

CALL_HINT = ('write each tool call as <tool_call>{"name": "<tool>", "arguments": {...}}</tool_call>')

_TOOL_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FUNC_XML_RE = re.compile(r"<function=([\w.\-]+)>\s*(.*?)\s*(?:</function>|$)", re.S)
_PARAM_XML_RE = re.compile(r"<parameter=([\w\-]+)>\s*(.*?)\s*(?:</parameter>|(?=<parameter=)|$)", re.S)
_FENCE_RE = re.compile(r"```(?:json|tool_call|tool|javascript|js)?\s*\n?(.*?)```", re.S)
_MISTRAL_RE = re.compile(r"\[TOOL_CALLS\]\s*(.*)", re.S)
_PYTAG_RE = re.compile(r"<\|python_tag\|>\s*(.*?)(?:<\|eom_id\|>|<\|eot_id\|>|$)", re.S)


@dataclass
class Parsed:
    calls: list[dict[str, Any]] = field(default_factory=list)  # {"name", "arguments": dict}
    errors: list[str] = field(default_factory=list)
    text: str = ""  # the message with call blocks removed


def loads_lenient(s: str) -> Any:
    """json.loads, then the same with trailing commas dropped, then a Python literal."""
    s = s.strip()
    try:
        return json.loads(s)
    except json.JSONDecodeError as first:
        try:
            return json.loads(re.sub(r",\s*([}\]])", r"\1", s))
        except json.JSONDecodeError:
            pass
        try:
            v = ast.literal_eval(s)
            if isinstance(v, (dict, list)):
                return v
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
        raise ValueError(f"{first.msg} at char {first.pos}") from None


def parse_arguments(raw: Any) -> dict[str, Any]:
    """A native call's ``arguments`` (a JSON string, or already a dict) as a dict; ValueError if not."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    v = loads_lenient(str(raw))
    if isinstance(v, str):  # double-encoded arguments, as some servers send
        v = loads_lenient(v)
    if not isinstance(v, dict):
        raise ValueError(f"arguments must be a JSON object, got {type(v).__name__}")
    return v


def _as_call(obj: Any) -> dict[str, Any] | None:
    """{"name", "arguments"} from the shapes models use, or None when obj is not a call."""
    if not isinstance(obj, dict):
        return None
    if "function" in obj and isinstance(obj["function"], dict):  # OpenAI shape written out as text
        obj = obj["function"]
    name = obj.get("name") or obj.get("tool") or obj.get("tool_name")
    if not isinstance(name, str):
        return None
    args = obj.get("arguments", obj.get("parameters", obj.get("args", obj.get("input"))))
    if args is None:
        args = {k: v for k, v in obj.items() if k not in ("name", "tool", "tool_name", "type", "id")}
    return {"name": name, "arguments": parse_arguments(args)}


def _calls_from_json(blob: str) -> list[dict[str, Any]]:
    """Calls in a JSON object or list; ValueError when it does not parse or is no call."""
    v = loads_lenient(blob)
    items = v if isinstance(v, list) else [v]
    calls = []
    for it in items:
        c = _as_call(it)
        if c is None:
            raise ValueError('expected {"name": ..., "arguments": {...}}')
        calls.append(c)
    return calls


def _xml_params(body: str) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for k, v in _PARAM_XML_RE.findall(body):
        v = v.strip()
        try:
            args[k] = json.loads(v)
        except json.JSONDecodeError:
            args[k] = v
    return args


def parse_tool_calls(content: str, known: tuple[str, ...] | None = None) -> Parsed:
    """Find tool calls written in ``content``. ``known``: tool names (a bare JSON object is taken
    as a call only if its name is one of them)."""
    content = content or ""
    out = Parsed(text=content)
    spans: list[tuple[int, int]] = []

    def err(what: str, e: Exception, snippet: str) -> None:
        s = " ".join(snippet.split())
        out.errors.append(f"could not parse tool call {what} ({e}): {s[:160]!r}; {CALL_HINT}")

    for m in _TOOL_CALL_RE.finditer(content):
        body = m.group(1)
        spans.append(m.span())
        if not body.strip():
            out.errors.append(f"empty <tool_call> block; {CALL_HINT}")
            continue
        fm = _FUNC_XML_RE.search(body)
        if fm and not body.lstrip().startswith("{"):
            out.calls.append({"name": fm.group(1), "arguments": _xml_params(fm.group(2))})
            continue
        try:
            out.calls.extend(_calls_from_json(body))
        except ValueError as e:
            err("in <tool_call>", e, body)
    if not spans:
        for m in _FUNC_XML_RE.finditer(content):
            spans.append(m.span())
            name, body = m.group(1), m.group(2)
            if "<parameter=" in body:
                out.calls.append({"name": name, "arguments": _xml_params(body)})
                continue
            try:
                out.calls.append({"name": name, "arguments": parse_arguments(body)})
            except ValueError as e:
                err(f"<function={name}>", e, body)
    if not spans:
        for rx, what in ((_MISTRAL_RE, "[TOOL_CALLS]"), (_PYTAG_RE, "<|python_tag|>")):
            m = rx.search(content)
            if m:
                spans.append(m.span())
                try:
                    out.calls.extend(_calls_from_json(m.group(1)))
                except ValueError as e:
                    err(what, e, m.group(1))
                break
    if not spans:
        for m in _FENCE_RE.finditer(content):
            body = m.group(1).strip()
            if not body.startswith(("{", "[")):
                continue
            looks_like_call = re.search(r'"(name|tool|function)"\s*:', body) is not None
            try:
                calls = _calls_from_json(body)
            except ValueError as e:
                if looks_like_call:
                    spans.append(m.span())
                    err("in ```json block", e, body)
                continue
            spans.append(m.span())
            out.calls.extend(calls)
    if not spans:
        body = content.strip()
        if body.startswith(("{", "[")) and re.search(r'"(name|tool)"\s*:', body):
            try:
                calls = _calls_from_json(body)
                if known is None or all(c["name"] in known for c in calls):
                    out.calls.extend(calls)
                    spans.append((0, len(content)))
            except ValueError as e:
                spans.append((0, len(content)))
                err("as JSON", e, body)
    if spans:
        keep, pos = [], 0
        for s, e in sorted(spans):
            keep.append(content[pos:s])
            pos = max(pos, e)
        keep.append(content[pos:])
        out.text = "".join(keep).strip()
    return out
