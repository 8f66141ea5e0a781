"""The agent: locate, then read — wide rounds of parallel tool calls under a budget, answers citing places.

    from sleuth import Library
    from sleuth.agent import ask, Budget
    ans = ask(Library(".sleuth"), "Who led the Ares program, and what did it cost?",
              llm="none", budget="rounds=3,calls=12", on_event=print)
    print(ans.render())

``llm``: ``"none"`` (the heuristic planner, the default here), ``"local"`` (a GGUF model in-process
through llama.cpp, Qwen2.5-Coder-1.5B-Instruct unless ``model`` names another; see
:mod:`sleuth.agent.models`), ``"auto"`` (local when installed, else none), ``"openai"`` (any OpenAI-compatible
server: ``base_url``/``model``/``api_key`` or SLEUTH_BASE_URL / OPENAI_BASE_URL, SLEUTH_MODEL,
OPENAI_API_KEY), ``"hf"`` (``model`` is a local transformers folder), or any object with a
``chat(messages, tools, timeout=, max_tokens=)`` method returning an :class:`LLMReply`.

Which policy runs, and why
--------------------------
A policy decides each round's tool calls (``propose``) and writes the answer (``finalize``); the
LangGraph graph (:mod:`.graph`) runs its calls in parallel under the budget, whatever the policy.
:func:`make_policy` picks one from the backend:

=====================================  =========================================  ==========================
backend (``llm=``)                     policy                                     why
=====================================  =========================================  ==========================
``none`` (and ``auto`` without model)  :class:`.planner.HeuristicPlanner`         no model: searches each
                                                                                  part at two levels, reads
                                                                                  the best, answers by
                                                                                  extraction; instant
``local``, ``auto``, ``openai``,       :class:`.policy_compact.CompactLLMPolicy`  the default for every
``hf``, any ``chat()`` object                                                     model: one planning call,
                                                                                  one answer call, prompts
                                                                                  sized to the measured
                                                                                  prefill speed, so a 1.5B
                                                                                  model on 2 cores answers
                                                                                  in time
any model, with ``agent="tools"``      :class:`.policy_llm.LLMPolicy`             opt-in for large models
                                                                                  (a served model with
                                                                                  native tool calls): the
                                                                                  model itself proposes
                                                                                  every round's calls
=====================================  =========================================  ==========================

The compact policy is the default for models because small models on a CPU spend most of a tool
loop's time re-reading its growing conversation and often emit malformed calls; the open loop
stays for models that can use it (tested against a llama.cpp server and the transformers
backend). Every policy falls back to the heuristic's draft when its model fails or times out.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any, Callable

from .answer import Answer, Citation, Cost, TraceEntry
from .budget import AgentError, Budget
from .llm import LLMError, LLMReply, make_llm
from .tools import TOOL_NAMES, TOOL_SCHEMAS, run_tool

__all__ = ["AgentError", "Answer", "Budget", "Citation", "Cost", "LLMError", "LLMReply", "TOOL_NAMES", "TOOL_SCHEMAS",
           "TraceEntry", "ask", "checkpoint_path", "format_event", "make_policy", "run_tool"]

CHECKPOINT_FILE = "agent_checkpoints.sqlite"


def checkpoint_path(lib):
    """Where ``ask(..., thread_id=...)`` keeps its checkpoints: a SQLite file in the library's folder."""
    return lib.home / CHECKPOINT_FILE


def make_policy(llm="none", *, base_url=None, model=None, api_key=None, **options: Any):
    """A policy object from an ``llm`` choice (a policy passes through)."""
    if hasattr(llm, "propose") and hasattr(llm, "finalize"):
        return llm
    backend = make_llm(llm, base_url=base_url, model=model, api_key=api_key, **options)
    if backend is None:
        from .planner import HeuristicPlanner

        return HeuristicPlanner(**{k: v for k, v in options.items() if k in ("fine_k", "coarse_k", "reads_per_part", "widen", "dense")})
    if options.get("agent") == "tools":  # the open-ended tool-calling loop, for large models
        from .policy_llm import LLMPolicy

        limit = options.get("max_tokens") or options.get("max_new_tokens")
        return LLMPolicy(backend, max_tokens=int(limit) if limit else None)
    from .policy_compact import CompactLLMPolicy

    keys = ("reads", "evidence_tokens", "fine_k", "max_queries")
    kw: dict[str, Any] = {k: int(v) for k, v in options.items() if k in keys and v is not None}
    if options.get("answer_seconds") is not None:
        kw["answer_seconds"] = float(options["answer_seconds"])
    if options.get("protocol"):
        kw["protocol"] = str(options["protocol"])
    return CompactLLMPolicy(backend, **kw)


def ask(lib, question: str, *, llm: Any = "none", base_url: str | None = None, model: str | None = None,
        api_key: str | None = None, budget: Budget | dict | str | None = None,
        on_event: Callable[[dict], None] | None = None, thread_id: str | None = None,
        tool_runner: Callable[..., dict] | None = None, within: Any = None, **options: Any) -> Answer:
    """Answer ``question`` from ``lib``; raises :class:`AgentError` (one line) when it cannot start.

    ``on_event(event)`` is called in the caller's thread as steps happen (``type``: ``start``,
    ``round``, ``tool_start``, ``tool_end``, ``llm``, ``gathered``, ``budget``, ``answer``).
    ``within``: a source name (or node id), or a list of them: every search stays inside them.
    ``thread_id`` checkpoints every step in ``<library>/agent_checkpoints.sqlite``: asking the
    same question with the same thread id resumes an interrupted run (or returns its answer).
    """
    from .graph import RunContext, build_graph, initial_state

    question = " ".join((question or "").split())
    if not question:
        raise AgentError("empty question: ask something, e.g. sleuth ask \"What does the report say about margins?\"")
    b = Budget.parse(budget)
    try:
        n_sources = len(lib.sources())
    except Exception as e:  # noqa: BLE001
        raise AgentError(f"cannot open the library at {getattr(lib, 'home', '?')}: {' '.join(str(e).split())[:160]}") from None
    if n_sources == 0:
        raise AgentError(f"the library at {lib.home} has nothing indexed: run `sleuth index <files>` first")
    scope = _scope(lib, within)
    policy = make_policy(llm, base_url=base_url, model=model, api_key=api_key, **options)
    ctx = RunContext(lib=lib, policy=policy, budget=b, question=question, thread_id=thread_id, within=scope)
    if tool_runner is not None:
        ctx.tool_runner = tool_runner

    conn = None
    checkpointer = None
    config: dict[str, Any] = {"recursion_limit": 8 * b.rounds + 20}
    if thread_id:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(str(checkpoint_path(lib)), check_same_thread=False, timeout=30)
        checkpointer = SqliteSaver(conn)
        # one checkpoint thread per (thread id, question, policy): a thread id reused for another
        # question starts afresh instead of mixing two conversations
        key = hashlib.sha1(f"{question}\x00{policy.name}\x00{scope or ''}".encode()).hexdigest()[:12]
        config["configurable"] = {"thread_id": f"{thread_id}:{key}"}
    try:
        graph = build_graph(ctx, checkpointer)
        inp: Any
        resumed = False
        if checkpointer is not None:
            snap = graph.get_state(config)
            if snap.values.get("answer"):
                ans = Answer.from_dict(snap.values["answer"])
                ans.resumed = True
                _call(on_event, {"type": "answer", "text": ans.text, "citations": len(ans.citations),
                                 "seconds": ans.cost.seconds, "budget_exhausted": ans.budget_exhausted, "cached": True})
                return ans
            # a stored state without an answer is an interrupted run; note that `snap.next` can
            # be empty after an interrupt between steps even though streaming None resumes it
            if snap.values:
                resumed = True
                ctx.prior_seconds = float(snap.values.get("cost", {}).get("seconds", 0.0))
        if resumed:
            inp = None
        else:
            inp = initial_state(question, policy.name, policy.start(question, ctx))
        _call(on_event, {"type": "start", "question": question, "policy": policy.name, "budget": b.to_dict(),
                         "resumed": resumed, "thread_id": thread_id})
        # "sync" durability: a step's checkpoint is on disk before the next step starts, so a
        # run killed mid-round resumes from the last finished step
        extra = {"durability": "sync"} if checkpointer is not None else {}
        final = _stream(graph, inp, config, on_event, extra)
        if final is None and resumed:  # nothing was left to resume: start the question afresh
            resumed = False
            final = _stream(graph, initial_state(question, policy.name, policy.start(question, ctx)), config, on_event, extra)
        if final is None:
            raise AgentError("the agent stopped without an answer")
        ans = Answer.from_dict(final)
        ans.resumed = resumed
        return ans
    except LLMError as e:
        hint = f" (resume with the same thread id {thread_id!r})" if thread_id else ""
        raise AgentError(str(e) + hint) from None
    finally:
        if conn is not None:
            conn.close()


def _scope(lib, within) -> list | None:
    """``within`` as a checked list of source names / node ids; one line naming what is unknown."""
    if within is None or within == "" or within == []:
        return None
    items = list(within) if isinstance(within, (list, tuple, set)) else [within]
    out = []
    for w in items:
        w = int(w) if isinstance(w, int) or (isinstance(w, str) and w.strip().isdigit()) else str(w).strip()
        try:
            lib.searcher.resolve_within(w)
        except ValueError as e:
            raise AgentError(f"--within {w}: {e} (see `sleuth status` for what is indexed)") from None
        if w not in out:
            out.append(w)
    return out


def _stream(graph, inp, config, on_event, extra) -> dict | None:
    final = None
    for mode, chunk in graph.stream(inp, config, stream_mode=["custom", "values"], **extra):
        if mode == "custom":
            _call(on_event, chunk)
        elif mode == "values" and chunk.get("answer"):
            final = chunk["answer"]
    return final


def _call(on_event, event: dict) -> None:
    if on_event is not None:
        on_event(event)


def format_event(ev: dict) -> str | None:
    """One line for a terminal progress display (the CLI's ``--trace``), or None to skip."""
    t = ev.get("type")
    if t == "start":
        return f"asking ({ev['policy']}{', resumed' if ev.get('resumed') else ''}): {ev['question']}"
    if t == "round":
        return f"round {ev['round']}: {len(ev['calls'])} call(s) in parallel"
    if t == "tool_end":
        args = ", ".join(f"{k}={v!r}" for k, v in ev["args"].items())
        err = f"  ERROR {ev['error']}" if ev.get("error") else ""
        return f"  {ev['tool']}({args})  {ev['seconds']:.3f}s  {ev['tokens']} tokens{err}"
    if t == "llm":
        return f"  model: {ev['seconds']:.2f}s, {ev['tokens_in']} in / {ev['tokens_out']} out"
    if t == "budget":
        return f"budget exhausted: {ev['reason']}"
    if t == "answer":
        return f"answered in {ev['seconds']:.2f}s with {ev['citations']} citation(s)"
    return None

