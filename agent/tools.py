"""The agent's tools: thin, read-only, JSON-serialisable wrappers over :class:`Library`.

One grammar for documents and videos (``search``, ``read``, ``outline``, ``entity``, ``look``),
described in OpenAI function-calling format by :data:`TOOL_SCHEMAS`. :func:`run_tool` is the only
way policies touch the library: it checks and coerces arguments and turns every failure into an
observation ``{"error": "..."}`` that the policy sees, never an exception.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..core import LEVELS
from ..core import approx_tokens as tokens_of  # the library's own estimate

LEVEL_NAMES = ["any", "source", "coarse", "fine", "entity", *[k for k in LEVELS if k not in ("source", "coarse", "fine")]]

TOOL_SCHEMAS: list[dict[str, Any]] = [
    {"type": "function", "function": {
        "name": "search",
        "description": ("Located search over every indexed document and video. Returns hits with node id, kind, "
                        "place label (file, page, section, paragraph or time span), snippet, score and neighbours. "
                        "Use several searches at once with different phrasings or levels: they run in parallel."),
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string", "description": "what to look for; a page it names ('page 12') comes first"},
            "level": {"type": "string", "enum": LEVEL_NAMES, "default": "any",
                      "description": "fine = paragraphs/tables/segments, coarse = sections/scenes, source = whole "
                                     "files, entity = names and terms; or one node kind"},
            "within": {"type": ["integer", "string"], "description": "a node id or a source file name to search under"},
            "k": {"type": "integer", "minimum": 1, "maximum": 20, "default": 8},
            "mode": {"type": "string", "enum": ["hybrid", "exact"], "default": "hybrid",
                     "description": "hybrid = meaning + words; exact = words only (codes, numbers, names, quotes)"},
        }, "required": ["query"]}}},
    {"type": "function", "function": {
        "name": "read",
        "description": ("Contiguous, in-order content under a node: the paragraphs of a section, or the transcript, "
                        "on-screen text and keyframe notes of a scene/segment/time range. Returns items with ids and "
                        "a cursor; call read again with start=cursor to continue."),
        "parameters": {"type": "object", "properties": {
            "node": {"type": "integer", "description": "node id from search or outline"},
            "start": {"type": "number", "description": "cursor from a previous read (documents) or start second (videos)"},
            "end": {"type": "number", "description": "end paragraph index (documents) or end second (videos)"},
            "max_tokens": {"type": "integer", "minimum": 50, "maximum": 4000, "default": 800},
        }, "required": ["node"]}}},
    {"type": "function", "function": {
        "name": "outline",
        "description": ("The structure (files, sections, scenes) under a node, or of the whole library when node is "
                        "omitted, paged under a token budget; pass the returned cursor to see more."),
        "parameters": {"type": "object", "properties": {
            "node": {"type": "integer", "description": "node id; omit for the library"},
            "depth": {"type": "integer", "minimum": 1, "maximum": 6, "default": 2},
            "cursor": {"type": "string", "description": "cursor from a previous outline call"},
        }, "required": []}}},
    {"type": "function", "function": {
        "name": "entity",
        "description": "An entity card (person, organisation, term, speaker …) and its located mentions across text, speech and screen.",
        "parameters": {"type": "object", "properties": {
            "name": {"type": "string", "description": "entity name or id"},
        }, "required": ["name"]}}},
    {"type": "function", "function": {
        "name": "look",
        "description": ("Frame-level detail at a moment of a video (on-screen text, speech around it, keyframe) or the "
                        "full text of a document node. Give a node id, or a video source name and a time in seconds."),
        "parameters": {"type": "object", "properties": {
            "node": {"type": "integer", "description": "node id"},
            "source": {"type": "string", "description": "video file name, with t"},
            "t": {"type": "number", "description": "seconds from the start of the video"},
        }, "required": []}}},
]

TOOL_NAMES = tuple(s["function"]["name"] for s in TOOL_SCHEMAS)
_PARAMS = {s["function"]["name"]: s["function"]["parameters"] for s in TOOL_SCHEMAS}
# Names models reach for instead of the schema's own.
_ARG_ALIASES = {"node_id": "node", "id": "node", "name_or_id": "name", "entity": "name", "q": "query",
                "top_k": "k", "limit": "k", "time": "t", "cursor": "start"}


class ToolArgError(ValueError):
    pass


def _coerce(name: str, args: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise ToolArgError(f"{name}: arguments must be a JSON object, got {type(args).__name__}")
    props = _PARAMS[name]["properties"]
    out: dict[str, Any] = {}
    for k, v in args.items():
        key = k if k in props else _ARG_ALIASES.get(k, k)
        if key not in props:
            continue  # extra arguments are ignored: models add them freely
        if v is None or v == "":
            continue
        typ = props[key].get("type")
        try:
            if typ in ("integer", "number") and not math.isfinite(float(v)):
                raise ValueError  # NaN or infinity: no place, no count
            if typ == "integer":
                v = int(float(v))
            elif typ == "number":
                v = float(v)
            elif typ == "string":
                v = str(v)
            elif isinstance(typ, list) and isinstance(v, str) and v.strip().isdigit():
                v = int(v)
        except (TypeError, ValueError):
            raise ToolArgError(f"{name}: argument {key}={v!r} should be {typ}") from None
        out[key] = v
    missing = [r for r in _PARAMS[name]["required"] if r not in out]
    if missing:
        raise ToolArgError(f"{name}: missing required argument(s) {', '.join(missing)}")
    return out


def search(lib, query: str, level: str = "any", within=None, k: int = 8, mode: str = "hybrid") -> dict:
    if level not in LEVEL_NAMES:
        raise ToolArgError(f"search: unknown level {level!r}; use one of {', '.join(LEVEL_NAMES)}")
    if mode not in ("hybrid", "exact"):
        raise ToolArgError(f"search: unknown mode {mode!r}; use hybrid or exact")
    k = max(1, min(20, int(k)))
    if isinstance(within, (list, tuple)):
        scopes = list(dict.fromkeys(within))
        if len(scopes) > 1:
            # one search per scope, merged by score: the searcher takes one id range at a time
            hits = [h for w in scopes for h in search(lib, query, level, w, k, mode)["hits"]]
            hits.sort(key=lambda h: -float(h.get("score") or 0.0))
            return {"query": query, "level": level, "mode": mode, "hits": hits[:k]}
        within = scopes[0] if scopes else None
    if mode == "exact" and level != "entity":
        hits = exact_search(lib, query, level, within, k)
    else:
        hits = lib.search(query, level=level, within=within, k=k)
    return {"query": query, "level": level, "mode": mode, "hits": hits}


def exact_search(lib, query: str, level: str, within, k: int) -> list[dict]:
    """BM25 only, in the hit shape of ``Library.search``.

    Reciprocal-rank fusion gives a paragraph that BM25 ranks first by a wide margin (the one
    holding "MB-1074") no more credit than any first place; when every passage shares the
    question's other words, the dense list outvotes it. Exact mode is the planner's way to
    pin identifiers down.
    """
    from ..index.lexical import query_terms
    from ..index.search import tiers_for

    query = (query or "").strip()
    if not query:
        raise ToolArgError("search: empty query")
    tiers, kinds = tiers_for(level)
    id_range = lib.searcher.resolve_within(within)
    found = lib.lexical.search(query, tiers, 3 * k, id_range)
    rows = lib.fetch_nodes([i for i, _ in found if i > 0])
    terms = query_terms(query)
    hits = []
    for i, sc in found:
        r = rows.get(i)
        if r is None or (kinds is not None and r[0].kind not in kinds):
            continue
        hit = lib.node_dict(*r, terms=terms)
        hit.update(score=round(float(sc), 5), dense=None, bm25=round(float(sc), 3), neighbours=lib.neighbours(r[0]))
        hits.append(hit)
        if len(hits) >= k:
            break
    return hits


def read(lib, node: int, start=None, end=None, max_tokens: int = 800) -> dict:
    return lib.read(node, start=start, end=end, max_tokens=max(50, min(4000, int(max_tokens))))


def outline(lib, node: int | None = None, depth: int = 2, cursor: str | None = None, max_tokens: int = 600) -> dict:
    return lib.outline(node, depth=max(1, min(6, int(depth))), cursor=cursor, max_tokens=max_tokens)


def entity(lib, name) -> dict:
    return lib.entity(name)


def look(lib, node: int | None = None, source: str | None = None, t: float | None = None) -> dict:
    if node is not None:
        if t is not None:
            return lib.look({"node": node, "t": t})
        return lib.look(node)
    if source is not None and t is not None:
        return lib.look({"source": source, "t": t})
    raise ToolArgError("look: give node, or source and t")


_FUNCS = {"search": search, "read": read, "outline": outline, "entity": entity, "look": look}


def run_tool(lib, name: str, args: dict[str, Any] | None, *, max_tokens: int | None = None) -> dict:
    """Run one tool; any failure becomes ``{"error": "<tool>: <reason>"}``.

    ``max_tokens`` caps what a ``read`` may return (the remaining token budget).
    """
    try:
        if name not in _FUNCS:
            return {"error": f"unknown tool {name!r}; available: {', '.join(TOOL_NAMES)}"}
        kw = _coerce(name, args if args is not None else {})
        if max_tokens is not None and name == "read":
            kw["max_tokens"] = min(int(kw.get("max_tokens", 800)), max(50, int(max_tokens)))
        if max_tokens is not None and name == "outline":
            kw["max_tokens"] = min(600, max(100, int(max_tokens)))
        out = _FUNCS[name](lib, **kw)
        json.dumps(out)  # the contract: whatever a tool returns must serialise
        return out
    except ToolArgError as e:
        return {"error": str(e)}
    except KeyError as e:  # KeyError's str() quotes its message
        return {"error": f"{name}: {e.args[0] if e.args else 'not found'}"}
    except Exception as e:  # noqa: BLE001 - a tool failure is an observation, not a crash
        msg = " ".join(str(e).split()) or type(e).__name__
        return {"error": f"{name}: {msg[:300]}"}


# -- what a model sees -------------------------------------------------------------------------

def _clip(text: str, n: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def compact(name: str, result: dict) -> dict:
    """A smaller view of a tool result for a model's context: ids, places, text; no locator dicts."""
    if "error" in result:
        return {"error": result["error"]}
    if name == "search":
        hits = []
        for h in result.get("hits", []):
            if "entity" in h:  # entity-level hits are entity cards
                hits.append(_compact_entity(h, 5))
                continue
            hits.append({"id": h["id"], "kind": h["kind"], "place": h.get("label", ""),
                         "section": " / ".join(h.get("title_path") or [])[:120], "snippet": h.get("snippet", ""),
                         "score": h.get("score"),
                         "neighbours": [{"id": n["id"], "snippet": _clip(n.get("snippet", ""), 100)}
                                        for n in (h.get("neighbours") or [])]})
        return {"hits": hits}
    if name == "read":
        node = result.get("node") or {}
        return {"node": {"id": node.get("id"), "kind": node.get("kind"), "place": node.get("label", "")},
                "items": [{"id": it["id"], "kind": it.get("kind"), "place": it.get("label", ""), "text": it.get("text", "")}
                          for it in result.get("items", [])],
                "cursor": result.get("cursor"), "total": result.get("total")}
    if name == "outline":
        return {"items": [{"id": it["id"], "kind": it["kind"], "title": it.get("title", ""), "depth": it.get("depth"),
                           "children": it.get("n_children"), "place": it.get("label", "")} for it in result.get("items", [])],
                "cursor": result.get("cursor")}
    if name == "entity":
        return _compact_entity(result, 20)
    if name == "look":
        return {k: v for k, v in result.items() if k not in ("locator",)}
    return result


def _compact_entity(card: dict, n: int) -> dict:
    ent = card.get("entity", {})
    return {"entity": {k: ent.get(k) for k in ("id", "name", "kind", "aliases", "modalities", "n_mentions")},
            "mentions": [{"node": m["node_id"], "modality": m.get("modality"), "surface": m.get("surface"),
                          "place": m.get("label", "")} for m in card.get("mentions", [])[:n]]}


def observation_text(name: str, result: dict, max_chars: int = 6000) -> str:
    s = json.dumps(compact(name, result), ensure_ascii=False)
    return s if len(s) <= max_chars else s[: max_chars - 20] + ' …(truncated)"}'


def result_tokens(name: str, result: dict) -> int:
    """Tokens a result puts in front of the policy: what counts against the token budget."""
    if "error" in result:
        return tokens_of(result["error"])
    if name == "read":
        return int(result.get("tokens") or sum(tokens_of(it.get("text", "")) for it in result.get("items", [])))
    if name == "search":
        return sum(tokens_of(h.get("snippet", "")) + 8 for h in result.get("hits", []) if "entity" not in h) + \
            sum(8 * len(h.get("mentions", [])) + 8 for h in result.get("hits", []) if "entity" in h)
    return tokens_of(json.dumps(compact(name, result), ensure_ascii=False).replace('"', " "))


def evidence_from(name: str, args: dict, result: dict, round_no: int) -> list[dict]:
    """Places a result showed the policy, with the text it saw (what citations may point at)."""
    if "error" in result:
        return []
    out = []

    def ev(d: dict, text: str, via: str, **extra) -> dict:
        return {"id": int(d["id"]), "kind": d.get("kind", ""), "source": d.get("source") or (d.get("locator") or {}).get("source", ""),
                "label": d.get("label", ""), "locator": d.get("locator") or {}, "title_path": d.get("title_path") or [],
                "text": text, "via": via, "round": round_no, **extra}

    if name == "search":
        for rank, h in enumerate(result.get("hits", [])):
            if "entity" in h:
                continue
            out.append(ev(h, h.get("snippet", ""), "search", rank=rank, score=h.get("score"), query=result.get("query")))
    elif name == "read":
        node = result.get("node") or {}
        items = result.get("items", [])
        # a video read gives several timed items (speech cues, on-screen text) per segment: one
        # evidence entry per segment, its items kept as units so a citation can name the moment
        groups: dict[int, list[dict]] = {}
        for it in items:
            groups.setdefault(int(it["id"]), []).append(it)
        for nid, its in groups.items():
            d = dict(its[0])
            d.setdefault("source", node.get("source"))
            extra: dict = {"parent": node.get("id")}
            if "t" in its[0]:
                extra["units"] = [{"text": x.get("text", ""), "locator": x.get("locator") or {}, "label": x.get("label", "")}
                                  for x in its]
                d["kind"] = "segment"
            out.append(ev(d, " ".join(x.get("text", "") for x in its), "read", **extra))
        if node.get("id") is not None and all(int(it["id"]) != int(node["id"]) for it in items):
            out.append(ev(node, " ".join(it.get("text", "") for it in items), "read", container=True))
    elif name == "look" and (result.get("node") is not None or args.get("node") is not None):
        nid = result.get("node") if result.get("node") is not None else args.get("node")
        text = result.get("text") or " ".join([*(o.get("text", "") for o in result.get("ocr", [])),
                                               *(s.get("text", "") for s in result.get("speech", []))])
        label = result.get("label") or " ".join(x for x in (result.get("source") or "",
                                                            f"p.{result['page']}" if result.get("page") else "") if x)
        out.append({"id": int(nid), "kind": "segment" if result.get("t") is not None else "", "source": result.get("source", ""),
                    "label": label, "locator": {}, "title_path": [], "text": text, "via": "look", "round": round_no})
    return out
