"""The agent loop as a LangGraph ``StateGraph``.

    START → plan ─Send×N→ tool ─→ gather → decide ─→ plan …
               └──────────────(final)──────────────→ answer → END

``plan`` asks the policy for the next batch of tool calls (or a final draft); each call is sent
to its own ``tool`` task with ``Send``, and LangGraph runs the tasks of one superstep
concurrently (threads in the sync runtime — the trace's overlapping spans show it). ``gather``
merges evidence and spends the budget; ``decide`` loops or stops; ``answer`` turns the draft's
``[node_id]`` markers into numbered citations over the evidence actually seen.

Every step emits an event through LangGraph's custom stream, so the caller's ``on_event``
receives them in its own thread as they happen. With a checkpointer (SqliteSaver) every
superstep is saved under a thread id, so an interrupted question resumes where it stopped.
"""

from __future__ import annotations

import json
import operator
import re
import time
from functools import partial
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from ..index.lexical import query_terms
from .answer import Answer, Citation, Cost, TraceEntry, resolve_citations
from .budget import Budget
from .llm import LLMError
from .tools import evidence_from, result_tokens, run_tool


class AgentState(TypedDict, total=False):
    question: str
    policy: str
    messages: list
    pstate: dict
    calls: list
    observations: Annotated[list, operator.add]
    evidence: list
    cost: dict
    exhausted: str | None
    notes: list
    final: dict | None
    answer: dict | None


@dataclass
class RunContext:
    lib: Any
    policy: Any
    budget: Budget
    question: str
    thread_id: str | None = None
    #: source names (or node ids) every search is confined to; None: the whole library
    within: list | None = None
    prior_seconds: float = 0.0
    t_start: float = field(default_factory=time.perf_counter)
    #: wraps run_tool; tests slow it down to make concurrency visible
    tool_runner: Callable[..., dict] = run_tool

    def seconds(self) -> float:
        return self.prior_seconds + time.perf_counter() - self.t_start

    def remaining_seconds(self) -> float:
        return self.budget.seconds - self.seconds()


def _emit(event: dict) -> None:
    try:
        get_stream_writer()(event)
    except Exception:  # noqa: BLE001 - outside a streaming run there is nobody to tell
        pass


def scoped_args(ctx: RunContext, tool: str, args: dict) -> dict:
    """A search's arguments confined to the run's ``within`` scope (a model's own scope inside it is kept)."""
    if not ctx.within or tool != "search":
        return args
    own = args.get("within")
    if own is not None and str(own) in {str(w) for w in ctx.within}:
        return args
    return {**args, "within": ctx.within[0] if len(ctx.within) == 1 else list(ctx.within)}


def merge_evidence(evidence: list[dict], new: list[dict]) -> list[dict]:
    """Evidence by node id in first-seen order; read text replaces a search snippet."""
    by_id = {int(e["id"]): dict(e) for e in evidence}
    order = [int(e["id"]) for e in evidence]
    for e in new:
        i = int(e["id"])
        rank = e.get("rank")
        old = by_id.get(i)
        if old is None:
            e = dict(e)
            e["best_rank"] = rank
            by_id[i] = e
            order.append(i)
            continue
        if rank is not None:
            old["best_rank"] = rank if old.get("best_rank") is None else min(old["best_rank"], rank)
        if e["via"] == "read" and (old["via"] != "read" or len(e.get("text", "")) > len(old.get("text", ""))):
            keep_rank = old.get("best_rank")
            old.update({k: v for k, v in e.items() if k not in ("rank",)})
            old["best_rank"] = keep_rank
        if old.get("container") and not e.get("container") and e["via"] == "read":
            old.pop("container", None)
    return [by_id[i] for i in order]


def _node_plan(ctx: RunContext, state: AgentState) -> dict:
    if state.get("final") is not None or state.get("exhausted"):
        return {"calls": []}
    cost = dict(state["cost"])
    cost["seconds"] = ctx.seconds()
    reason = ctx.budget.exhausted(cost)
    if reason:
        return {"calls": [], "exhausted": reason, "cost": cost}
    rnd = cost["rounds"] + 1
    t0 = ctx.seconds()
    try:
        prop = ctx.policy.propose(state, ctx)
    except LLMError as e:
        if not state["evidence"]:
            raise
        note = f"the model failed in round {rnd} ({e}); answered from the evidence gathered so far"
        return {"calls": [], "exhausted": None, "notes": [*state["notes"], note], "final": None,
                "pstate": {**state["pstate"], "llm_failed": True}, "cost": cost}
    for k in ("tokens_in", "tokens_out", "llm_calls"):
        cost[k] = cost.get(k, 0) + int(prop.get(k, 0) or 0)
    if prop.get("llm_calls"):
        _emit({"type": "llm", "round": rnd, "seconds": round(ctx.seconds() - t0, 3),
               "tokens_in": prop.get("tokens_in", 0), "tokens_out": prop.get("tokens_out", 0)})
    calls = list(prop.get("calls") or [])
    out: dict[str, Any] = {"cost": cost}
    for k in ("messages", "pstate"):
        if prop.get(k) is not None:
            out[k] = prop[k]
    left = ctx.budget.calls - cost["tool_calls"]
    if len(calls) > left:
        out["exhausted"] = f"tool-call budget: ran {left} of the {len(calls)} calls proposed in round {rnd}"
        calls = calls[:max(0, left)]
    for j, c in enumerate(calls):
        c.setdefault("meta", {})
        c["id"] = f"r{rnd}c{j + 1}"
    out["calls"] = calls
    if prop.get("final") is not None and not calls:
        out["final"] = prop["final"]
    if calls:
        _emit({"type": "round", "round": rnd, "calls": [{"id": c["id"], "tool": c["tool"], "args": c["args"]} for c in calls]})
    return out


def _node_route_plan(ctx: RunContext, state: AgentState):
    calls = state.get("calls") or []
    if not calls:
        return "answer"
    rnd = state["cost"]["rounds"] + 1
    cap = max(50, ctx.budget.tokens - state["cost"]["tokens_read"])
    return [Send("tool", {"call": c, "round": rnd, "token_cap": cap}) for c in calls]


def _node_tool(ctx: RunContext, payload: dict) -> dict:
    call, rnd = payload["call"], payload["round"]
    start = ctx.seconds()
    _emit({"type": "tool_start", "round": rnd, "id": call["id"], "tool": call["tool"], "args": call["args"],
           "t": round(start, 3)})
    if call.get("error"):
        result = {"error": call["error"]}
    else:
        try:
            result = ctx.tool_runner(ctx.lib, call["tool"], scoped_args(ctx, call["tool"], call["args"]),
                                     max_tokens=payload.get("token_cap"))
        except Exception as e:  # noqa: BLE001 - a wrapper that raises is still only an observation
            result = {"error": f"{call['tool']}: {' '.join(str(e).split()) or type(e).__name__}"}
    end = ctx.seconds()
    chars = len(json.dumps(result, ensure_ascii=False))
    tokens = result_tokens(call["tool"], result)
    _emit({"type": "tool_end", "round": rnd, "id": call["id"], "tool": call["tool"], "args": call["args"],
           "seconds": round(end - start, 4), "chars": chars, "size": f"{chars} chars", "tokens": tokens,
           "error": result.get("error")})
    return {"observations": [{"call": call, "round": rnd, "result": result, "start": start, "end": end,
                              "chars": chars, "tokens": tokens}]}


def _node_gather(ctx: RunContext, state: AgentState) -> dict:
    cost = dict(state["cost"])
    rnd = cost["rounds"] + 1
    obs = sorted((o for o in state["observations"] if o["round"] == rnd), key=lambda o: _call_order(o["call"]["id"]))
    new = []
    for o in obs:
        new += evidence_from(o["call"]["tool"], o["call"]["args"], o["result"], rnd)
    evidence = merge_evidence(state["evidence"], new)
    cost["rounds"] = rnd
    cost["tool_calls"] += len(obs)
    cost["tokens_read"] += sum(o["tokens"] for o in obs)
    cost["seconds"] = ctx.seconds()
    _emit({"type": "gathered", "round": rnd, "evidence": len(evidence), "new": len({e["id"] for e in new}),
           "tool_calls": cost["tool_calls"], "tokens_read": cost["tokens_read"], "seconds": round(cost["seconds"], 3)})
    return {"evidence": evidence, "cost": cost}


def _node_decide(ctx: RunContext, state: AgentState) -> dict:
    if state["pstate"].get("last_round") and not state.get("exhausted"):
        return {"exhausted": None}  # the policy said it needs no more tools: not a budget stop
    reason = state.get("exhausted") or ctx.budget.exhausted(state["cost"])
    return {"exhausted": reason}


def _node_route_decide(ctx: RunContext, state: AgentState) -> str:
    if state["pstate"].get("last_round"):
        return "answer"
    return "answer" if state.get("exhausted") else "plan"


def _node_answer(ctx: RunContext, state: AgentState) -> dict:
    cost = dict(state["cost"])
    notes = list(state.get("notes") or [])
    reason = state.get("exhausted")
    if reason:
        _emit({"type": "budget", "reason": reason})
    draft = state.get("final")
    if draft is None:
        draft = _finalize(ctx.policy, state, ctx, reason, notes)
    for k in ("tokens_in", "tokens_out", "llm_calls"):
        cost[k] = cost.get(k, 0) + int(draft.get(k, 0) or 0)
    if not (draft.get("text") or "").strip():
        notes.append("the model returned an empty answer; answered from the evidence gathered")
        draft = _heuristic_draft(state, ctx)
    ev_by_id = {int(e["id"]): e for e in state["evidence"]}
    if draft.get("shown") is not None:  # a model may cite only the passages it was shown
        ev_by_id = {i: e for i, e in ev_by_id.items() if i in set(draft["shown"])}
    pool = [e for e in state["evidence"] if int(e["id"]) in ev_by_id]
    text, cites, cnotes = resolve_citations(draft["text"], ev_by_id, draft.get("quotes"), draft.get("places"))
    notes += cnotes
    if not cites and pool:
        cites = infer_citations(text, pool)
        if cites:
            text = text.rstrip() + " " + "".join(f"[{c.n}]" for c in cites)
            notes.append("the answer cited no evidence itself; citations were attached by matching its sentences to passages read")
        elif ctx.policy.name != "heuristic":
            notes.append("the answer is not supported by any passage the agent read")
    if reason:
        notes.append(f"budget exhausted: {reason}")
    # When the answer confirms nothing (a refusal, or no citation survived), what the search found
    # still reaches the user, marked as not confirmed: locating is often right when the model is not.
    located = located_places(state, draft) if (not cites or REFUSAL.match(text or "")) else []
    cost["seconds"] = ctx.seconds()
    ans = Answer(question=state["question"], text=text, citations=cites,
                 evidence=[_evidence_view(e) for e in state["evidence"]],
                 trace=[_trace(o) for o in sorted(state["observations"], key=lambda o: (o["round"], _call_order(o["call"]["id"])))],
                 cost=Cost(**{k: cost.get(k, 0) for k in Cost.__dataclass_fields__}),
                 budget_exhausted=bool(reason), notes=notes, policy=ctx.policy.name, thread_id=ctx.thread_id,
                 quoted=bool(draft.get("quoted")), located=located,
                 shown=[int(i) for i in (draft.get("shown") or [])])
    if draft.get("support"):
        ans.notes += [] if all(s["supported"] for s in draft["support"]) else \
            [f"weak support for: {s['part']}" for s in draft["support"] if not s["supported"]]
    d = ans.to_dict()
    _emit({"type": "answer", "text": ans.text, "citations": len(cites), "seconds": round(cost["seconds"], 3),
           "budget_exhausted": ans.budget_exhausted})
    return {"answer": d, "cost": cost, "notes": notes}


_NODES = {"plan": _node_plan, "tool": _node_tool, "gather": _node_gather, "decide": _node_decide, "answer": _node_answer}


def build_graph(ctx: RunContext, checkpointer=None):
    """The compiled graph; every node is a module-level function bound to this run's ``ctx``."""
    g = StateGraph(AgentState)
    for name in ("plan", "tool", "gather", "decide", "answer"):
        g.add_node(name, partial(_NODES[name], ctx))
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", partial(_node_route_plan, ctx), ["tool", "answer"])
    g.add_edge("tool", "gather")
    g.add_edge("gather", "decide")
    g.add_conditional_edges("decide", partial(_node_route_decide, ctx), ["plan", "answer"])
    g.add_edge("answer", END)
    return g.compile(checkpointer=checkpointer)


def _call_order(call_id: str) -> tuple[int, int]:
    try:
        r, c = call_id[1:].split("c")
        return int(r), int(c)
    except ValueError:
        return 0, 0


def _heuristic_draft(state: dict, ctx) -> dict:
    from .decompose import decompose
    from .planner import HeuristicPlanner

    st = dict(state)
    st["pstate"] = {"subs": [s.__dict__ for s in decompose(state["question"])]}
    return HeuristicPlanner().finalize(st, ctx)


def _finalize(policy, state: dict, ctx, reason: str | None, notes: list[str]) -> dict:
    """The policy's best answer so far; the extractive one when the model cannot give it."""
    if state["pstate"].get("llm_failed"):
        return _heuristic_draft(state, ctx)
    try:
        return policy.finalize(state, ctx, reason)
    except LLMError as e:
        notes.append(f"no final answer from the model ({e}); answered from the evidence gathered")
        return _heuristic_draft(state, ctx)


def infer_citations(text: str, evidence: list[dict], min_terms: int = 2, min_cover: float = 0.5) -> list[Citation]:
    """For an answer that cites nothing: the evidence sentences that carry most of each answer sentence."""
    from ..readers.textsplit import sentences
    from .extract import has_term, sentences_of

    sents = sentences_of(evidence)
    by_id = {int(e["id"]): e for e in evidence}
    cites: list[Citation] = []
    for claim in sentences(text or ""):
        terms = query_terms(claim, max_terms=48)
        if len(terms) < min_terms:
            continue
        best, best_cov = None, 0.0
        for s in sents:
            cov = sum(1 for t in terms if has_term(t, s.words)) / len(terms)
            if cov > best_cov:
                best, best_cov = s, cov
        if best is None or best_cov < min_cover or any(c.node_id == best.node_id for c in cites):
            continue
        ev = by_id[best.node_id]
        cites.append(Citation(n=len(cites) + 1, node_id=best.node_id, label=ev.get("label", ""), locator=ev.get("locator") or {},
                              quote=best.text, source=ev.get("source", ""), kind=ev.get("kind", ""), inferred=True))
    return cites


#: answers that confirm nothing: "Not answerable", "I cannot find ...", "The passages do not ..."
REFUSAL = re.compile(r"^\W*(not answerable|no answer|unanswerable|i (can ?not|cannot|could not|couldn't|can't) "
                     r"(find|answer|determine)|the (passages|documents|library|context) do(es)? not)", re.I)
LOCATED_SHOWN = 5


def located_places(state: dict, draft: dict, k: int = LOCATED_SHOWN) -> list[dict]:
    """The best places the run located, best first: the passages the model was shown in the order
    it saw them (the policy's fused ranking), then the rest by their best search rank."""
    ev = {int(e["id"]): e for e in state.get("evidence", []) if not e.get("container")}
    order = [int(i) for i in (draft.get("shown") or []) if int(i) in ev]
    rest = sorted((e for i, e in ev.items() if i not in set(order)),
                  key=lambda e: (e.get("best_rank") is None, e.get("best_rank") or 0, e.get("via") != "read"))
    out = []
    for e in [ev[i] for i in order] + rest:
        text = " ".join((e.get("text") or "").split())
        out.append({"id": int(e["id"]), "source": e.get("source", ""), "kind": e.get("kind", ""),
                    "label": e.get("label", ""), "locator": e.get("locator") or {},
                    "text": text if len(text) <= 300 else text[:299] + "…"})
        if len(out) >= k:
            break
    return out


def _evidence_view(e: dict) -> dict:
    text = " ".join((e.get("text") or "").split())
    return {"id": e["id"], "kind": e.get("kind", ""), "source": e.get("source", ""), "label": e.get("label", ""),
            "locator": e.get("locator") or {}, "via": e.get("via"), "round": e.get("round"),
            "text": text if len(text) <= 600 else text[:599] + "…"}


def _trace(o: dict) -> TraceEntry:
    res = o["result"]
    return TraceEntry(call_id=o["call"]["id"], tool=o["call"]["tool"], arguments=o["call"]["args"], round=o["round"],
                      start=round(o["start"], 4), end=round(o["end"], 4), seconds=round(o["end"] - o["start"], 4),
                      chars=o["chars"], tokens=o["tokens"], ok="error" not in res, error=res.get("error"))


def initial_state(question: str, policy_name: str, start: dict) -> AgentState:
    return AgentState(question=question, policy=policy_name, messages=start.get("messages", []),
                      pstate=start.get("pstate", {}), calls=[], observations=[], evidence=[],
                      cost={k: 0 for k in ("tokens_in", "tokens_out", "tokens_read", "tool_calls", "rounds", "llm_calls")} | {"seconds": 0.0},
                      exhausted=None, notes=[], final=None, answer=None)
