"""The heuristic planner: what users get when no LLM is configured.

Rounds (each a batch of tool calls that run in parallel):

1. locate — every sub-question (see :mod:`.decompose`) is searched at two levels at once:
   fine (paragraphs / segments, k=6) and coarse (sections / scenes, k=3); a multi-part
   question is also searched whole;
2. read — the top paragraphs of each part, and the best section when none of those lies
   inside it, are read in full;
3. widen (only for parts still unsupported) — a deeper fine search and a keyword-only
   search, then 4. read their new hits.

The answer is extractive (:mod:`.extract`): each part gets the sentence that best supports it,
cited by node id.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..index.lexical import identifiers, query_terms
from .decompose import SubQuestion, decompose
from .extract import compose, select


class HeuristicPlanner:
    name = "heuristic"

    def __init__(self, fine_k: int = 6, coarse_k: int = 3, reads_per_part: int = 3, widen: bool = True,
                 dense: bool = True):
        self.fine_k, self.coarse_k, self.reads_per_part = fine_k, coarse_k, reads_per_part
        self.widen, self.dense = widen, dense

    # -- policy protocol ---------------------------------------------------------------------
    def start(self, question: str, ctx) -> dict:
        subs = decompose(question)
        return {"messages": [], "pstate": {"phase": "search", "subs": [asdict(s) for s in subs]}}

    def propose(self, state: dict, ctx) -> dict:
        ps = dict(state["pstate"])
        subs = [SubQuestion(**s) for s in ps["subs"]]
        phase = ps["phase"]
        if phase == "search":
            calls = []
            for i, s in enumerate(subs):
                calls.append(_call("search", {"query": s.query, "level": "fine", "k": self.fine_k}, sub=i, purpose="fine"))
                calls.append(_call("search", {"query": s.query, "level": "coarse", "k": self.coarse_k}, sub=i, purpose="coarse"))
                ids = identifiers(s.query)
                if ids:
                    # codes, numbers and acronyms are what lexical search pins down exactly; in a
                    # full question their rank is diluted by the words every passage shares
                    calls.append(_call("search", {"query": " ".join(ids), "level": "fine", "k": 4, "mode": "exact"},
                                      sub=i, purpose="ids"))
            if len(subs) > 1:
                calls.append(_call("search", {"query": state["question"], "level": "any", "k": self.fine_k}, sub=-1, purpose="whole"))
            ps["phase"] = "read"
            return {"calls": calls, "pstate": ps}
        if phase in ("read", "read_more"):
            calls = self._reads(state, subs, more=phase == "read_more")
            ps["phase"] = "check" if phase == "read" else "final"
            ps["last_round"] = phase == "read_more"  # nothing follows but the answer
            if calls:
                return {"calls": calls, "pstate": ps}
            phase = ps["phase"]
        if phase == "check":
            draft = self._draft(state, subs, ctx)
            weak = [i for i, sp in enumerate(draft["support"]) if not sp["supported"]]
            if not weak or not self.widen:
                return {"final": draft, "pstate": {**ps, "phase": "done"}}
            calls = []
            for i in weak:
                s = subs[i]
                calls.append(_call("search", {"query": s.query, "level": "fine", "k": 2 * self.fine_k}, sub=i, purpose="deep"))
                kw = " ".join(query_terms(s.query))
                if kw and kw.lower() != s.query.lower():
                    calls.append(_call("search", {"query": kw, "level": "any", "k": self.fine_k}, sub=i, purpose="keywords"))
            return {"calls": calls, "pstate": {**ps, "phase": "read_more"}}
        return {"final": self._draft(state, subs, ctx), "pstate": {**ps, "phase": "done"}}

    def finalize(self, state: dict, ctx, reason: str | None = None) -> dict:
        subs = [SubQuestion(**s) for s in state["pstate"].get("subs") or [asdict(SubQuestion(state["question"], state["question"]))]]
        return self._draft(state, subs, ctx)

    # -- helpers -------------------------------------------------------------------------------
    def _reads(self, state: dict, subs: list[SubQuestion], more: bool) -> list[dict]:
        already = {int(o["call"]["args"]["node"]) for o in state["observations"]
                   if o["call"]["tool"] == "read" and "error" not in o["result"]}
        last_round = [o for o in state["observations"] if o["round"] == state["cost"]["rounds"]
                      and o["call"]["tool"] == "search" and "error" not in o["result"]]
        chosen: list[tuple[int, int, int]] = []  # (node, max_tokens, sub)

        def take(node: int, tokens: int, sub: int) -> None:
            if node not in already and all(node != c[0] for c in chosen):
                chosen.append((node, tokens, sub))

        for i in range(-1, len(subs)):
            obs = sorted((o for o in last_round if o["call"]["meta"].get("sub") == i),
                         key=lambda o: _PURPOSE_ORDER.get(o["call"]["meta"].get("purpose"), 9))
            fine = [h for o in obs if o["call"]["meta"].get("purpose") in ("ids", "fine", "deep", "keywords", "whole")
                    for h in o["result"].get("hits", []) if h.get("kind") not in ("section", "scene", "document", "video")
                    and "entity" not in h]
            coarse = [h for o in obs if o["call"]["meta"].get("purpose") in ("coarse", "keywords", "whole")
                      for h in o["result"].get("hits", []) if h.get("kind") in ("section", "scene") and "entity" not in h]
            n = 1 if i == -1 else self.reads_per_part
            picked = []
            for h in fine:
                if len(picked) >= n:
                    break
                if h["id"] in already or any(h["id"] == p["id"] for p in picked):
                    continue
                picked.append(h)
                take(h["id"], 400, i)
            if coarse and not more:
                top = coarse[0]
                if not any(_inside(p, top) for p in picked):
                    take(top["id"], 500, i)
        return [_call("read", {"node": n, "max_tokens": t}, sub=s, purpose="read") for n, t, s in chosen]

    def _draft(self, state: dict, subs: list[SubQuestion], ctx) -> dict:
        lib = ctx.lib if ctx is not None else None
        embed = embed_query = None
        if self.dense and lib is not None and getattr(lib, "embedder", None) is not None:
            embed = lib.embedder.encode
            embed_query = lib.embed_query
        supports = select(subs, state["evidence"], embed=embed, embed_query=embed_query)
        return compose(state["question"], supports)


_PURPOSE_ORDER = {"ids": 0, "fine": 1, "deep": 1, "keywords": 2, "coarse": 3, "whole": 4}


def _call(tool: str, args: dict[str, Any], **meta: Any) -> dict:
    return {"tool": tool, "args": args, "meta": meta}


def _inside(hit: dict, section: dict) -> bool:
    a, b = hit.get("locator") or {}, section.get("locator") or {}
    if a.get("source") != b.get("source"):
        return False
    if a.get("char_start") is not None and b.get("char_start") is not None and b.get("char_end") is not None:
        return b["char_start"] <= a["char_start"] <= b["char_end"]
    if a.get("t_start") is not None and b.get("t_start") is not None and b.get("t_end") is not None:
        return b["t_start"] <= a["t_start"] <= b["t_end"]
    return False
