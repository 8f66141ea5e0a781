"""The agent for small CPU models: few, short model calls around wide rounds of tools.

    round 1  plan    one model call writes 2–4 search queries (a small JSON list); they fan out
                     as parallel ``search`` calls beside the heuristic planner's free ones (each
                     sub-question of a multi-part question, identifiers searched exactly)
    round 2  read    the best located paragraphs across all those searches (reciprocal-rank
                     fusion) are read in full, in parallel; the answer prompt takes them in
                     that order until the evidence token budget is full
    follow-up        only when reading is sized by time and the backend's measured speed leaves
                     time the model's context could not fill (a server's larger model, not a
                     1.5B model on two cores): one call over what was read names
                     what is still missing as 1–3 queries; they are searched and their new
                     hits read (at most MAX_FOLLOWUPS such rounds, within the rounds and calls
                     budget)
    answer           ``direct`` (default): one call answers or refuses over all the passages.
                     ``quote`` (:mod:`.quotes`, opt-in until it is measured better): one call
                     copies the sentences that answer, checked against the passages, one short
                     call answers from them; "Not answerable" only when nothing was quoted.
                     The graph keeps only ids read.

A 1.5B model on two cores prefills ~150 tokens/s, so every prompt starts with the same system
text: llama.cpp reuses the KV of that prefix from one call to the next (and from one question to
the next). The evidence budget is sized by time: what the backend, at the speeds it measured,
can prefill in ``answer_seconds`` (default 60) after the other calls' prompts and replies
(``evidence_tokens`` fixes it instead), within the model's context; it shrinks to the time a
question has left, and a run that runs out of time still answers from what it read. A server's
model (``--llm openai``) is measured once and its context found out
(:meth:`~sleuth.agent.llm.OpenAIChat.calibrate`); a server that refuses a prompt as too long
says its context, and the answer is retried with the passages cut to fit.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Any

from ..core import words_for_tokens
from ..index.lexical import identifiers
from .budget import ANSWER_SECONDS, time_sized_tokens
from .decompose import SubQuestion, decompose
from .llm import LLMContextError, LLMTimeout
from .quotes import PROTOCOLS, QUOTE_MAX_TOKENS, quote_then_answer

SYSTEM = ("You are sleuth, a careful assistant that answers questions about documents. You plan searches and "
          "answer only from the numbered passages you are given. Be brief and exact.")

PLAN_PROMPT = ("Write 2 to 4 short search queries (keywords, names, numbers) that would find the passages "
               "answering the question below in {scope}. Reply with a JSON list of strings only.\n\n"
               "Question: {question}")

ANSWER_PROMPT = ("Passages from {scope}:\n\n{passages}\n\nQuestion: {question}\n\n"
                 "Answer in one or two sentences using only the passages. Give the exact value, name or list "
                 "asked for. After each claim write the id of the passage it comes from in brackets, e.g. [{example}]. "
                 "If the passages do not contain the answer, reply exactly: Not answerable.")

FOLLOWUP_PROMPT = ("Passages found so far in {scope}:\n\n{passages}\n\nQuestion: {question}\n\n"
                   "Which facts needed to answer the question are still missing from these passages? Write 1 to 3 "
                   "short search queries (keywords, names, numbers) that would find them, as a JSON list of strings. "
                   "If nothing is missing, reply [].")

PLAN_MAX_TOKENS = 80
ANSWER_MAX_TOKENS = 120
RRF_K = 60
#: evidence tokens for a backend that reports no speed (nothing to size the reading by)
DEFAULT_EVIDENCE_TOKENS = 1200
#: prompt tokens of the calls that are not evidence: system text, plan prompt, instructions, question
#: (what a context must hold beside the evidence)
FIXED_PROMPT_TOKENS = 450
#: of those, the ones prefilled anew each question: the system text's KV is reused from the last
#: call, so the plan and answer instructions and the question twice (~220 counted)
UNCACHED_PROMPT_TOKENS = 250
#: what the calls usually write (a plan's JSON list, a one- or two-sentence answer, a few quotes),
#: not their caps: sizing the reading by the caps left a 25 s question ~200 evidence tokens at 42
#: prefill / 19 written tokens a second, while the calls wrote ~45 tokens between them
EXPECTED_WRITTEN = {"plan": 40, "answer": 60, "quote": 100}
#: evidence never sized below this: a few paragraphs, however slow the machine (a time target
#: that leaves less would answer from one passage)
MIN_EVIDENCE_TOKENS = 600
#: about how many tokens one located paragraph adds: how many reads a budget asks for
TOKENS_PER_READ = 150
#: a context no server stated yet is taken to be at most this long; a server that refuses a longer
#: prompt says its length, and the answer is retried within it
UNKNOWN_CONTEXT = 32768
#: follow-up rounds (the model names what is missing, searched and read) a question may run, when
#: the backend's measured speed leaves time for them beside the answer (a server's larger model;
#: never a 1.5B model on two cores, whose reading fills the time on its own)
MAX_FOLLOWUPS = 2
#: tool calls kept for each follow-up round: its searches and the reads of what they find
FOLLOWUP_CALLS = 8
#: the most evidence tokens a follow-up call is shown (what was read so far, in fused order)
FOLLOWUP_DIGEST_TOKENS = 3000


def parse_queries(text: str, limit: int = 4) -> list[str]:
    """Queries from a model's plan: a JSON list (fenced or not), {"queries": [...]}, or one per line."""
    text = (text or "").strip()
    found: Any = None
    for m in re.finditer(r"\[[^\[\]]*\]|\{[^{}]*\}", text, flags=re.S):
        try:
            found = json.loads(m.group())
        except ValueError:
            continue
        break
    items: list = []
    if isinstance(found, list):
        items = found
    elif isinstance(found, dict):
        v = next((v for v in found.values() if isinstance(v, list)), None)
        items = v if v is not None else [x for x in found.values() if isinstance(x, str)]
    else:
        for line in text.splitlines():
            line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip().strip('",').strip()
            if line and not line.startswith("```") and len(line) < 160:
                items.append(line)
    out: list[str] = []
    for q in items:
        if isinstance(q, dict):
            q = q.get("query") or next((v for v in q.values() if isinstance(v, str)), "")
        q = " ".join(str(q).split())[:160]
        if len(q) >= 2 and q.lower() not in (o.lower() for o in out):
            out.append(q)
        if len(out) >= limit:
            break
    return out


def fuse(observations: list[dict], skip_containers: bool = True) -> list[tuple[int, float, dict]]:
    """(node id, fused score, hit) over every search result, by reciprocal-rank fusion."""
    scores: dict[int, float] = {}
    first: dict[int, dict] = {}
    for o in observations:
        if o["call"]["tool"] != "search" or "error" in o["result"]:
            continue
        weight = 1.5 if o["call"]["meta"].get("purpose") == "ids" else 1.0
        for rank, h in enumerate(o["result"].get("hits", [])):
            if "entity" in h or (skip_containers and h.get("kind") in ("section", "scene", "document", "video")):
                continue
            i = int(h["id"])
            scores[i] = scores.get(i, 0.0) + weight / (RRF_K + rank + 1)
            first.setdefault(i, h)
    return sorted(((i, s, first[i]) for i, s in scores.items()), key=lambda t: -t[1])


#: passages whose lines carry their meaning (a Markdown table's rows, a figure's caption and
#: labels): shown line by line, cut at a line, not run together into one line of words
LINED_KINDS = ("table", "row", "figure")


def _lined(text: str, max_words: int) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out, n = [], 0
    for line in (x for x in lines if x):
        w = len(line.split())
        if out and n + w > max_words:
            out.append("…")
            break
        out.append(line)
        n += w
    return "\n".join(out)


#: the most tokens one passage takes in an answer prompt
PER_PASSAGE = 400


def passages_text(evidence: list[dict], budget_tokens: int, count_tokens, per_passage: int = PER_PASSAGE) -> tuple[str, list[int]]:
    """Numbered passages ``[id] (label) text`` in the given order, up to ``budget_tokens``; tables,
    table rows and figures keep their lines (below the ``[id] (label)`` line)."""
    blocks, ids, used = [], [], 0
    for e in evidence:
        if e.get("kind") in LINED_KINDS:
            text = _lined(e.get("text") or "", words_for_tokens(per_passage))
            if text:
                text = "\n" + text
        else:
            text = " ".join((e.get("text") or "").split())
            words = text.split()
            if len(words) > words_for_tokens(per_passage):
                text = " ".join(words[: words_for_tokens(per_passage)]) + " …"
        if not text:
            continue
        block = f"[{e['id']}] ({e.get('label') or e.get('source', '')}) {text}"
        t = count_tokens(block)
        if blocks and used + t > budget_tokens:
            continue
        blocks.append(block)
        ids.append(int(e["id"]))
        used += t
    return "\n\n".join(blocks), ids


def _table_key(e: dict) -> tuple | None:
    # a row is read under its table's caption (or header) line, which opens the table's own read
    text = (e.get("text") or "").strip()
    if e.get("kind") not in ("table", "row") or not text:
        return None
    return e.get("source"), (e.get("locator") or {}).get("page"), " ".join(text.splitlines()[0].split())


def _shown_lines(e: dict) -> set[str]:
    return {x for x in _lined(e.get("text") or "", words_for_tokens(PER_PASSAGE)).splitlines() if x != "…"}


def _one_copy_of_tables(ev: list[dict]) -> list[dict]:
    """Read passages with the copies of a table taken out: a row is read under its table's header
    with the rows around it, so the reads of several rows of one small table, or a row beside its
    table, show the same lines. A passage whose lines (as the answer prompt cuts them) another
    passage of the same table already shows is dropped; one that shows all of a kept passage's
    lines and more takes that passage's (better) place."""
    out: list[dict] = []
    shown: list[tuple[tuple | None, set[str]]] = []  # each kept passage's table and lines
    for e in ev:
        k = _table_key(e)
        mine = _shown_lines(e) if k is not None else set()
        same = [j for j, (kj, _l) in enumerate(shown) if k is not None and kj == k]
        if any(mine <= shown[j][1] for j in same):
            continue
        wider = [j for j in same if shown[j][1] <= mine]
        if wider:
            out[wider[0]], shown[wider[0]] = e, (k, mine)
            for j in reversed(wider[1:]):
                del out[j], shown[j]
            continue
        out.append(e)
        shown.append((k, mine))
    return out


class CompactLLMPolicy:
    """Plan → parallel searches → parallel reads → one cited answer, with a small model."""

    def __init__(self, llm, *, reads: int = 12, evidence_tokens: int | None = None, fine_k: int = 6,
                 max_queries: int = 4, answer_seconds: float = ANSWER_SECONDS, protocol: str = "direct"):
        if protocol not in PROTOCOLS:
            raise ValueError(f"answer protocol {protocol!r}: use {' or '.join(PROTOCOLS)}")
        self.llm = llm
        self.reads, self.evidence_tokens, self.fine_k, self.max_queries = reads, evidence_tokens, fine_k, max_queries
        self.answer_seconds, self.protocol = float(answer_seconds), protocol
        self.name = f"llm:{getattr(llm, 'name', type(llm).__name__)}"

    def evidence_target(self) -> int:
        """The evidence tokens to read for: ``evidence_tokens`` when set, else what the backend can
        prefill in ``answer_seconds`` after the plan and answer calls' own new prompt tokens and
        usual replies (:func:`~sleuth.agent.budget.time_sized_tokens`), at least
        :data:`MIN_EVIDENCE_TOKENS`, within the model's longest context."""
        if self.evidence_tokens:
            return int(self.evidence_tokens)
        calibrate = getattr(self.llm, "calibrate", None)
        if calibrate is not None:  # a server's model: its context and speeds, found out once
            calibrate()
        pre, gen = getattr(self.llm, "prefill_tps", None), getattr(self.llm, "gen_tps", None)
        if not pre or not gen:
            return DEFAULT_EVIDENCE_TOKENS
        expected = EXPECTED_WRITTEN["plan"] + EXPECTED_WRITTEN["answer"] + (EXPECTED_WRITTEN["quote"] if self.protocol == "quote" else 0)
        n = time_sized_tokens(self.answer_seconds, float(pre), float(gen), fixed_tokens=UNCACHED_PROMPT_TOKENS,
                              written_tokens=expected, floor=MIN_EVIDENCE_TOKENS)
        # the context must hold the worst case: every instruction and each call's cap
        written = PLAN_MAX_TOKENS + ANSWER_MAX_TOKENS + (QUOTE_MAX_TOKENS if self.protocol == "quote" else 0)
        ceiling = getattr(self.llm, "max_ctx", None) or UNKNOWN_CONTEXT
        return max(200, min(n, int(ceiling) - FIXED_PROMPT_TOKENS - written))

    # -- speed and size ------------------------------------------------------------------------
    def _count(self, text: str) -> int:
        f = getattr(self.llm, "count_tokens", None)
        if f is not None:
            try:
                return int(f(text))
            except Exception:  # noqa: BLE001 - fall back to the rough count
                pass
        return max(1, int(len(text.split()) * 1.4))

    def _estimate(self, prompt_tokens: int, max_tokens: int) -> float | None:
        """Expected seconds from the backend's measured speed; None when it has not measured yet."""
        f = getattr(self.llm, "estimate_seconds", None)
        if f is None:
            return None
        v = f(prompt_tokens, max_tokens)
        return None if v is None else float(v)

    def _timeout(self, ctx, prompt_tokens: int, max_tokens: int) -> float:
        # three times the expected time (the machine may be busier than when it was measured),
        # at least 20 s, but not past the question's deadline plus this call's own expected time;
        # a backend with no measurement yet gets the time the question has left
        est = self._estimate(prompt_tokens, max_tokens)
        left = ctx.remaining_seconds()
        if est is None:
            return max(20.0, left)
        return max(10.0, min(max(20.0, 3.0 * est), max(left, 0.0) + est))

    def _chat(self, ctx, user: str, max_tokens: int) -> Any:
        msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
        n = self._count(SYSTEM) + self._count(user) + 12
        return self.llm.chat(msgs, None, timeout=self._timeout(ctx, n, max_tokens), max_tokens=max_tokens)

    @staticmethod
    def _scope(ctx) -> str:
        w = getattr(ctx, "within", None)
        if w:
            names = [str(x) for x in (w if isinstance(w, (list, tuple)) else [w])]
            return "the document " + names[0] if len(names) == 1 else "the documents " + ", ".join(names[:5])
        return "the library"

    # -- policy protocol ---------------------------------------------------------------------
    def start(self, question: str, ctx) -> dict:
        return {"messages": [], "pstate": {"phase": "plan", "subs": [asdict(s) for s in decompose(question)]}}

    def propose(self, state: dict, ctx) -> dict:
        ps = dict(state["pstate"])
        if ps["phase"] == "plan":
            return self._plan(state, ps, ctx)
        if ps["phase"] == "read":
            more = self._followup_fits(state, ctx, ps)
            calls = self._reads(state, ctx, keep_calls=FOLLOWUP_CALLS if more else 0)
            around = dict(ps.get("around") or {})
            around.update({str(c["meta"]["node"]): c["meta"]["rank"] for c in calls if c["meta"].get("purpose") == "around"})
            ps.update(phase="followup" if more else "answer", last_round=not more, around=around)
            return {"calls": calls, "pstate": ps}
        if ps["phase"] == "followup":
            return self._followup(state, ps, ctx)
        return {"calls": [], "pstate": {**ps, "last_round": True}}

    def _plan(self, state: dict, ps: dict, ctx) -> dict:
        question = state["question"]
        subs = [SubQuestion(**s) for s in ps["subs"]]
        calls: list[dict] = []
        seen: set[str] = set()

        def add(query: str, purpose: str, sub: int, **args: Any) -> None:
            key = (query.lower(), args.get("mode", "hybrid"))
            if key in seen:
                return
            seen.add(key)
            calls.append({"tool": "search", "args": {"query": query, "level": "fine", "k": self.fine_k, **args},
                          "meta": {"purpose": purpose, "sub": sub}})

        # the free round: what needs no model
        for i, s in enumerate(subs):
            add(s.query, "fine", i)
            ids = identifiers(s.query)
            if ids:
                add(" ".join(ids), "ids", i, mode="exact", k=4)
        if len(subs) > 1:
            add(question, "whole", -1)
        out: dict[str, Any] = {"pstate": {**ps, "phase": "read"}}
        try:
            reply = self._chat(ctx, PLAN_PROMPT.format(question=question, scope=self._scope(ctx)), PLAN_MAX_TOKENS)
        except LLMTimeout as e:  # reached but slow: the free round still runs (unreachable: one error line)
            out["pstate"]["plan_error"] = str(e)
            out["calls"] = calls
            return out
        queries = parse_queries(reply.content, self.max_queries)
        for q in queries:
            add(q, "model", -2)
        out["pstate"]["queries"] = queries
        out["pstate"]["searched"] = sorted({q for q, _m in seen})
        out.update(calls=calls, tokens_in=reply.tokens_in, tokens_out=reply.tokens_out, llm_calls=1)
        return out

    # -- follow-up rounds ------------------------------------------------------------------------
    def _followup_fits(self, state: dict, ctx, ps: dict) -> bool:
        """Whether another round (the model names what is missing; it is searched and read) fits
        beside the answer: in the rounds, tool calls and time left, at the backend's measured speed."""
        # a fixed evidence budget is a fixed reading (the e2e comparisons hold it equal across
        # systems); only time-sized reading spends time its context could not
        if self.evidence_tokens or ps.get("followups", 0) >= MAX_FOLLOWUPS:
            return False
        cost = state["cost"]
        # this read round, then the follow-up's search and read rounds
        if ctx.budget.rounds - cost["rounds"] < 3:
            return False
        if ctx.budget.calls - cost["tool_calls"] < FOLLOWUP_CALLS + self.reads // 2:
            return False
        target = self.evidence_target()
        ask = self._estimate(FIXED_PROMPT_TOKENS + min(target, FOLLOWUP_DIGEST_TOKENS), PLAN_MAX_TOKENS)
        answer = self._estimate(FIXED_PROMPT_TOKENS + target, ANSWER_MAX_TOKENS)
        if ask is None or answer is None:
            return False
        left = min(self.answer_seconds - ctx.seconds(), ctx.remaining_seconds())
        # the rounds' tools take time too: allow a second for them beside the two calls
        return ask + answer + 1.0 <= left

    def _followup(self, state: dict, ps: dict, ctx) -> dict:
        """One model call over what was read so far writes queries for what is still missing."""
        done = {**ps, "phase": "answer", "last_round": True}
        text, ids = passages_text(self.ordered_evidence(state), min(self.evidence_target(), FOLLOWUP_DIGEST_TOKENS),
                                  self._count)
        if not ids:
            return {"calls": [], "pstate": done}
        prompt = FOLLOWUP_PROMPT.format(scope=self._scope(ctx), passages=text, question=state["question"])
        try:
            reply = self._chat(ctx, prompt, PLAN_MAX_TOKENS)
        except (LLMTimeout, LLMContextError):  # slow or too long: answer from what was read
            return {"calls": [], "pstate": done}
        searched = set(ps.get("searched") or [])
        queries = [q for q in parse_queries(reply.content, 3) if q.lower() not in searched]
        calls = [{"tool": "search", "args": {"query": q, "level": "fine", "k": self.fine_k},
                  "meta": {"purpose": "followup", "sub": -3}} for q in queries]
        n = int(ps.get("followups", 0)) + 1
        nxt = {**ps, "phase": "read", "followups": n, "searched": sorted(searched | {q.lower() for q in queries}),
               f"followup_{n}": queries} if calls else {**done, "followups": n}
        return {"calls": calls, "pstate": nxt, "tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out,
                "llm_calls": 1}

    def _reads(self, state: dict, ctx, keep_calls: int = 0) -> list[dict]:
        # paragraphs are mostly shorter than an even share of the budget: read about one per 150
        # tokens of it (at least ``reads``), each up to twice its share; the answer prompt takes
        # them in fused order until the evidence budget is full. Half of the reads beyond the
        # first ``reads`` go to the paragraphs just before and after the best hits (the page or
        # section around them), the rest to further hits. As many as the tool-call budget leaves,
        # less ``keep_calls`` for a follow-up round. A follow-up round reads what its own
        # searches found and was not read before.
        target = self.evidence_target()
        n = max(self.reads, target // TOKENS_PER_READ)
        per = max(120, 2 * target // max(1, n))
        n = max(1, min(n, ctx.budget.calls - state["cost"]["tool_calls"] - keep_calls))
        obs = state["observations"]
        if state["pstate"].get("followups"):
            read_before = {int(e["id"]) for e in state["evidence"] if e.get("via") == "read"}
            read_before |= {int(k) for k in (state["pstate"].get("around") or {})}
            obs = [o for o in obs if o["call"].get("meta", {}).get("purpose") == "followup"
                   and o["round"] == state["cost"]["rounds"]]
            fresh = [i for i, _s, _h in fuse(obs) if i not in read_before]
            return [{"tool": "read", "args": {"node": i, "max_tokens": per}, "meta": {"purpose": "read"}} for i in fresh[:n]]
        fused = fuse(obs)
        ids = [i for i, _s, _h in fused]
        around: list[tuple[int, float]] = []
        spare = max(0, (n - self.reads) // 2)
        first, taken = set(ids[: n - spare]), set()
        for rank, (_i, _s, hit) in enumerate(fused):
            if len(around) >= spare:
                break
            for nb in hit.get("neighbours") or []:
                j = int(nb["id"])
                if j not in first and j not in taken and len(around) < spare:
                    around.append((j, rank + (-0.3 if nb.get("rel") == "prev" else 0.3)))
                    taken.add(j)
        calls = [{"tool": "read", "args": {"node": i, "max_tokens": per}, "meta": {"purpose": "read"}}
                 for i in [i for i in ids if i not in taken][: n - len(around)]]
        return calls + [{"tool": "read", "args": {"node": j, "max_tokens": per},
                         "meta": {"purpose": "around", "node": j, "rank": r}} for j, r in around]

    # -- the answer ------------------------------------------------------------------------------
    def _answer_budget(self, ctx) -> int:
        """Evidence tokens the answer call can afford: the configured budget, less when time is short."""
        fixed = self._count(SYSTEM) + 120
        est = self._estimate(fixed, ANSWER_MAX_TOKENS)
        f = getattr(self.llm, "prefill_tps", None)
        target = self.evidence_target()
        affordable = int((ctx.remaining_seconds() - est) * float(f)) if (f and est is not None) else target
        return max(200, min(target, ctx.budget.tokens, affordable))

    def ordered_evidence(self, state: dict) -> list[dict]:
        """Read passages in fused search order (a paragraph read for the context of a hit just
        before or after it); search snippets only when nothing could be read."""
        rank: dict[int, float] = {int(k): float(v) for k, v in (state.get("pstate") or {}).get("around", {}).items()}
        rank.update({i: n for n, (i, _s, _h) in enumerate(fuse(state["observations"]))})
        ev = [e for e in state["evidence"] if not e.get("container")]
        read = sorted((e for e in ev if e.get("via") == "read"), key=lambda e: rank.get(int(e["id"]), 10 ** 6))
        rest = sorted((e for e in ev if e.get("via") != "read" and int(e["id"]) in rank), key=lambda e: rank[int(e["id"])])
        return _one_copy_of_tables(read) or rest

    def finalize(self, state: dict, ctx, reason: str | None = None) -> dict:
        ev = self.ordered_evidence(state)
        if not ev:
            return {"text": "Not answerable: nothing relevant was found."}
        # the local model's context grows to the prompt in its own chat call (LlamaCppChat.chat);
        # a server states its context when it refuses a longer prompt: once, the passages are cut to fit
        budget = self._answer_budget(ctx)
        text, ids = passages_text(ev, budget, self._count)
        try:
            return self._answer(state, ctx, ev, text, ids)
        except LLMContextError as e:
            text, ids = passages_text(ev, self._fitted(e, text, state, ctx), self._count)
            return self._answer(state, ctx, ev, text, ids)

    def _fitted(self, e: LLMContextError, text: str, state: dict, ctx) -> int:
        """An evidence budget (in this policy's own token count) whose prompt fits the context the
        server stated: the refused prompt's size, as the server counted it, gives the ratio of its
        tokens to this policy's count."""
        written = ANSWER_MAX_TOKENS + (QUOTE_MAX_TOKENS if self.protocol == "quote" else 0)
        fixed = self._count(SYSTEM) + self._count(ANSWER_PROMPT.format(
            scope=self._scope(ctx), passages="", question=state["question"], example=0)) + 16
        shown = self._count(text)
        ratio = e.prompt_tokens / (shown + fixed) if e.prompt_tokens else 1.0
        return max(50, int(0.9 * ((e.max_ctx - written) / max(ratio, 0.1) - fixed)))

    def _answer(self, state: dict, ctx, ev: list[dict], text: str, ids: list[int]) -> dict:
        if self.protocol == "quote":
            shown = {int(e["id"]): e.get("text") or "" for e in ev if int(e["id"]) in set(ids)}
            out = quote_then_answer(lambda user, n: self._chat(ctx, user, n), passages_text=text, passages=shown,
                                    question=state["question"], scope=self._scope(ctx),
                                    answer_max_tokens=ANSWER_MAX_TOKENS)
            quotes: dict[int, str] = {}
            for q in out["quotes"]:
                quotes.setdefault(int(q["id"]), q["text"])
            return {"text": out["text"], "tokens_in": out["tokens_in"], "tokens_out": out["tokens_out"],
                    "llm_calls": out["llm_calls"], "shown": ids, "quotes": quotes}
        prompt = ANSWER_PROMPT.format(scope=self._scope(ctx), passages=text, question=state["question"], example=ids[0])
        reply = self._chat(ctx, prompt, ANSWER_MAX_TOKENS)
        content = reply.content.strip()
        return {"text": content, "tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out, "llm_calls": 1,
                "shown": ids}
