"""MMLongBench-Doc end to end: the agent, flat RAG and the heuristic, paired on the same questions.

For every selected question, scoped to its own document (``within``) as the benchmark intends:

* ``agent`` — :class:`~sleuth.agent.policy_compact.CompactLLMPolicy` with the chosen model;
* ``flat_rag`` — the baseline a user would otherwise build: the document ranked by the strongest
  flat ranking measured in retrieval mode (:data:`.flat.STRONGEST_FLAT`, ``chunk-fusion``:
  200-token chunks of pypdfium2's page text, OCR text for a page without a text layer, ranked by
  stemmed, stopworded BM25 fused with MiniLM), the top chunks in rank order up to the *same*
  evidence token budget (the last one cut to fit) put into the *same* answer prompt, one answer
  call with the *same* model;
* ``heuristic`` — the no-LLM planner (extractive answer);
* ``oracle`` (only when asked for) — an upper bound, not a system: flat RAG whose prompt starts
  with the text of the question's *gold evidence pages*, then flat RAG's passages up to the same
  budget (a question without evidence pages gets flat RAG's prompt). It measures what the model
  can read out of the right pages, so how much any retrieval, the agent's included, could gain.

Every model-answering system uses the same answer protocol (``protocol``): ``direct`` (default:
one call that answers or refuses) or ``quote`` (:mod:`sleuth.agent.quotes`: copy the supporting
sentences, checked against the passages, then answer from them; "Not answerable" only when
nothing was quoted). ``evidence_tokens`` may be a list of budgets (e.g. 1,200 / 2,500 / 5,000):
every model system runs at each, on the same questions, so the report tells the limit of the
model (the oracle at a budget) from the limit of the reading (the agent and flat RAG at it).

Each free-form answer goes through the benchmark's own extraction prompt (same model) and its
rule-based scoring (:mod:`.mmlb_score`). Citations are mapped to pages and compared with the gold
evidence pages. Records go to ``mmlongbench-e2e.jsonl`` one per (question, system) as they finish,
so a run can be stopped and resumed; the report is JSON, Markdown and a plot.

Subset rule (``per_doc``): the first N questions of every document in the benchmark's file order.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from .loaders import MMLongBenchItem, load_mmlongbench
from .mmlb_prompts import extraction_messages, parse_extraction
from .mmlb_score import NOT_ANSWERABLE, acc_and_f1, eval_score
from .report import read_jsonl, repair_jsonl, write_jsonl

SYSTEMS = ("agent", "flat_rag", "heuristic")
#: systems a run may also ask for (``--systems``), never run by default
EXTRA_SYSTEMS = ("oracle",)
_MARK = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def select_items(data: str | Path, per_doc: int | None = 2, limit: int | None = None,
                 doc_types: list[str] | None = None) -> list[MMLongBenchItem]:
    """The first ``per_doc`` questions of every document (file order), at most ``limit`` in all."""
    items = load_mmlongbench(data, doc_types=doc_types)
    if per_doc:
        seen: dict[str, int] = defaultdict(int)
        kept = []
        for it in items:
            if seen[it.doc_id] < per_doc:
                kept.append(it)
                seen[it.doc_id] += 1
        items = kept
    return items[:limit] if limit else items


def flat_units(ranked: list[tuple[int, str]], budget: int, count, start_id: int) -> list[dict]:
    """Flat RAG's passages: the ranked units (page, text) in order until ``budget`` tokens are
    spent, the last one cut to what is left (as :func:`sleuth.eval.baselines.take_budget` does),
    numbered from ``start_id``."""
    out, left = [], budget
    for n, (page, text) in enumerate(ranked):
        left -= 8  # the "[id] (p.N) " in front of each passage
        if left <= 0:
            break
        words = " ".join(text.split()).split()
        t = count(" ".join(words)) if words else 0
        if t == 0:
            continue
        if t > left:
            words = words[: max(1, int(len(words) * left / t))]
            t = count(" ".join(words))
        out.append({"id": start_id + n, "label": f"p.{page}", "text": " ".join(words), "locator": {"page": page}})
        left -= t
    return out


def _pages(ev: list[dict], ids) -> list[int]:
    by_id = {int(e["id"]): e for e in ev}
    return sorted({by_id[i]["locator"]["page"] for i in ids
                   if i in by_id and (by_id[i].get("locator") or {}).get("page") is not None})


def flat_rag(lib, llm, question: str, doc: str, evidence_tokens: int, first: list[dict] | None = None,
             ranker=None, protocol: str = "direct") -> dict:
    """The document ranked by the strongest flat ranking, its top text under the budget, one
    answer call. ``ranker``: a :class:`~sleuth.eval.flat.FlatRanker` (default: one over
    :data:`~sleuth.eval.flat.STRONGEST_FLAT`, the best flat baseline measured in retrieval
    mode); ``first``: passages put before the ranking's (the oracle's gold pages)."""
    from ..agent.policy_compact import ANSWER_MAX_TOKENS, ANSWER_PROMPT, SYSTEM, passages_text
    from ..agent.quotes import quote_then_answer
    from .flat import FlatRanker

    ranker = ranker or FlatRanker(lib)
    ranker.prepare(doc)  # indexing, not answering: outside the question's time, as the agent's library is
    t0 = time.perf_counter()
    count = getattr(llm, "count_tokens", None) or (lambda s: max(1, int(len(s.split()) * 1.4)))
    ev = list(first or [])
    used = sum(count(" ".join((e.get("text") or "").split())) + 8 for e in ev)
    start = max((int(e["id"]) for e in ev), default=0) + 1  # ids the gold passages do not use
    ev += flat_units(ranker.rank(doc, question), evidence_tokens - used, count, start)
    text, shown = passages_text(ev, evidence_tokens, count, per_passage=evidence_tokens)
    if not shown:
        return {"text": f"{NOT_ANSWERABLE}: nothing was found.", "pages": [], "seconds": time.perf_counter() - t0,
                "tokens_in": 0, "tokens_out": 0, "llm_calls": 0, "tool_calls": 1, "rounds": 1}

    def chat(user: str, max_tokens: int):
        return llm.chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}], None,
                        max_tokens=max_tokens, timeout=600)

    scope = f"the document {doc}"
    if protocol == "quote":
        by_text = {int(e["id"]): e.get("text") or "" for e in ev if int(e["id"]) in set(shown)}
        out = quote_then_answer(chat, passages_text=text, passages=by_text, question=question, scope=scope,
                                answer_max_tokens=ANSWER_MAX_TOKENS)
    else:
        reply = chat(ANSWER_PROMPT.format(scope=scope, passages=text, question=question, example=shown[0]),
                     ANSWER_MAX_TOKENS)
        out = {"text": reply.content, "tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out, "llm_calls": 1}
    cited = [int(i) for m in _MARK.finditer(out["text"]) for i in re.split(r"[,;]\s*", m.group(1)) if i.strip()]
    return {"text": out["text"], "pages": _pages(ev, [i for i in cited if i in shown]),
            "shown_pages": _pages(ev, shown), "seconds": time.perf_counter() - t0, "tokens_in": out["tokens_in"],
            "tokens_out": out["tokens_out"], "llm_calls": out["llm_calls"], "tool_calls": 1, "rounds": 1,
            "shown": len(shown), "quotes": len(out.get("quotes") or []), "ranking": ranker.method,
            **({"quote_reply": out["quote_reply"][:400]} if out.get("quote_reply") is not None else {})}


def page_passages(lib, doc: str, pages: list[int]) -> list[dict]:
    """The document's leaf passages on ``pages`` (paragraphs, tables, figures; a table's rows are
    in the table's text already), in reading order."""
    from sqlalchemy import select

    from ..index.schema import NodeRow, SourceRow

    if not pages:
        return []
    with lib.Session() as s:
        sid = s.execute(select(SourceRow.id).where(SourceRow.name == doc)).scalar()
        rows = s.execute(select(NodeRow.id, NodeRow.text, NodeRow.page)
                         .where(NodeRow.source_id == sid, NodeRow.page.in_(list(pages)), NodeRow.tier == "fine",
                                NodeRow.kind != "row")
                         .order_by(NodeRow.page, NodeRow.id)).all()
    return [{"id": int(i), "label": f"p.{p}", "text": t, "locator": {"page": p}} for i, t, p in rows if (t or "").strip()]


def run_agent(lib, llm, question: str, doc: str, evidence_tokens: int, seconds: float, protocol: str = "direct") -> dict:
    from ..agent import ask

    events: list[dict] = []
    t0 = time.perf_counter()
    ans = ask(lib, question, llm=llm if llm is not None else "none", within=doc, on_event=events.append,
              budget={"seconds": seconds}, evidence_tokens=evidence_tokens, protocol=protocol)
    first = next((e for e in events if e.get("type") == "round" and e.get("round") == 1), None)
    first_searches = sum(1 for c in (first or {}).get("calls", []) if c["tool"] == "search")
    pages = sorted({c.locator.get("page") for c in ans.citations if c.locator.get("page") is not None})
    listed = sorted({p["locator"].get("page") for p in ans.located if (p.get("locator") or {}).get("page") is not None})
    # what the model was shown (the heuristic shows no model anything: no shown_pages, gold_read None)
    shown = {"shown_pages": _pages(ans.evidence, ans.shown)} if llm is not None else {}
    return {"text": ans.text, "pages": pages, "listed_pages": listed, **shown, "seconds": time.perf_counter() - t0,
            "tokens_in": ans.cost.tokens_in, "tokens_out": ans.cost.tokens_out, "llm_calls": ans.cost.llm_calls, "tool_calls": ans.cost.tool_calls,
            "rounds": ans.cost.rounds, "tokens_read": ans.cost.tokens_read, "first_round_searches": first_searches,
            "first_round_parallel": _overlapping(events, 1), "notes": ans.notes}


def _overlapping(events: list[dict], rnd: int) -> int:
    """How many searches of round ``rnd`` were running at the same moment (from tool start/end times)."""
    starts = {e["id"]: e["t"] for e in events if e.get("type") == "tool_start" and e.get("round") == rnd and e["tool"] == "search"}
    spans = [(starts[e["id"]], starts[e["id"]] + e["seconds"]) for e in events
             if e.get("type") == "tool_end" and e.get("round") == rnd and e["id"] in starts]
    best = 0
    for s, _ in spans:
        best = max(best, sum(1 for a, b in spans if a <= s < b or a == s))
    return best


def extractor_for(llm):
    """The extraction backend: for the local model a second llama.cpp context over the same weights,
    so the benchmark's ~900-token prompt stays cached between questions instead of being
    evicted by the answer calls."""
    from ..agent.llm_local import LlamaCppChat

    if isinstance(llm, LlamaCppChat):
        # its prompt (~900 tokens and an answer) never needs the answer calls' larger context
        return LlamaCppChat(str(llm.path), n_ctx=min(llm.n_ctx, 4096), slot="extract")
    return llm


def extract(llm, question: str, answer: str) -> tuple[str, str]:
    """(extracted answer, raw response) through the benchmark's prompt; the heuristic's too.

    Citation markers are taken out first: they are places, not part of the answer, and a small
    extractor otherwise returns "[2]" as the answer.
    """
    answer = " ".join(_MARK.sub("", answer).split())
    reply = llm.chat(extraction_messages(question, answer), None, max_tokens=64, timeout=600)
    return parse_extraction(reply.content), reply.content


def run(data: str | Path, lib, llm, out: str | Path, *, per_doc: int | None = 2, limit: int | None = None,
        systems=SYSTEMS, evidence_tokens: int | list[int] = 1200, seconds: float = 900.0,
        on_item: Callable[[int, int, dict], None] | None = None, doc_types: list[str] | None = None,
        protocol: str = "direct") -> list[dict]:
    """Answer, extract and score every selected question with every system at every evidence budget
    (``evidence_tokens``: one or a list; the heuristic, which has no model, runs once); resumable by
    (id, system, budget)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "mmlongbench-e2e.jsonl"
    repair_jsonl(path)
    budgets = [int(b) for b in (evidence_tokens if isinstance(evidence_tokens, (list, tuple)) else [evidence_tokens])]
    done = {(r["id"], r["system"], r.get("budget")) for r in read_jsonl(path)}
    runs = [(s, None if s == "heuristic" else b) for b in budgets for s in systems]
    runs = list(dict.fromkeys(runs))
    items = select_items(data, per_doc=per_doc, limit=limit, doc_types=doc_types)
    indexed = {s["name"] for s in lib.sources()}
    extractor = extractor_for(llm)
    from .flat import FlatRanker

    ranker = FlatRanker(lib, cache=out / "mmlongbench-cache")
    for n, it in enumerate(items, 1):
        todo = [(s, b) for s, b in runs if (it.id, s, b) not in done]
        if not todo:
            on_item and on_item(n, len(items), {"id": it.id, "skipped": "done"})
            continue
        if it.doc_id not in indexed:
            on_item and on_item(n, len(items), {"id": it.id, "skipped": f"{it.doc_id} is not indexed"})
            continue
        answers: dict[tuple, dict] = {}
        for s, b in todo:
            tokens = b or budgets[0]
            try:
                if s == "agent":
                    a = run_agent(lib, llm, it.question, it.doc_id, tokens, seconds, protocol)
                elif s == "heuristic":
                    a = run_agent(lib, None, it.question, it.doc_id, tokens, seconds)
                elif s == "oracle":
                    a = flat_rag(lib, llm, it.question, it.doc_id, tokens, protocol=protocol,
                                 first=page_passages(lib, it.doc_id, it.evidence_pages), ranker=ranker)
                else:
                    a = flat_rag(lib, llm, it.question, it.doc_id, tokens, ranker=ranker, protocol=protocol)
            except Exception as e:  # noqa: BLE001 - one failed question is a wrong answer, the run goes on
                a = {"text": "", "pages": [], "seconds": 0.0, "error": f"{type(e).__name__}: {e}"}
            answers[(s, b)] = a
        # the extraction calls back to back: their long shared prefix stays in llama.cpp's cache
        recs = []
        for (s, b), a in answers.items():
            t0 = time.perf_counter()
            pred, raw = extract(extractor, it.question, a["text"]) if a["text"] else ("Fail to answer", "")
            score = eval_score(it.answer, pred, it.answer_format)
            gold = set(it.evidence_pages)
            shown = set(a.get("pages", [])) | set(a.get("listed_pages", []))
            rec = {"id": it.id, "system": s, "budget": b, "protocol": None if s == "heuristic" else protocol,
                   "doc_id": it.doc_id, "doc_type": it.doc_type, "question": it.question,
                   "answer": it.answer, "answer_format": it.answer_format, "evidence_pages": it.evidence_pages,
                   "evidence_sources": it.evidence_sources, "pred": pred, "extracted": raw, "score": score,
                   "cited_pages": a.get("pages", []),
                   "gold_cited": (bool(gold & set(a.get("pages", [])))) if it.answer != NOT_ANSWERABLE else None,
                   "gold_shown": bool(gold & shown) if it.answer != NOT_ANSWERABLE else None,
                   "gold_read": (bool(gold & set(a.get("shown_pages", [])))
                                 if it.answer != NOT_ANSWERABLE and "shown_pages" in a else None),
                   "extract_seconds": round(time.perf_counter() - t0, 2),
                   **{k: (round(v, 2) if isinstance(v, float) else v) for k, v in a.items() if k not in ("pages",)}}
            recs.append(rec)
        write_jsonl(path, recs, append=True)
        on_item and on_item(n, len(items), {"id": it.id, "scores": {row_name(r): r["score"] for r in recs}})
    return list(read_jsonl(path))


def row_name(r: dict, several_budgets: bool = True) -> str:
    """``agent@2500`` for a model system's record at a budget; the system alone for the heuristic,
    a record without a budget, or when a run used one budget."""
    return f"{r['system']}@{r['budget']}" if several_budgets and r.get("budget") else r["system"]


def is_refusal(pred: str) -> bool:
    """The extracted answer is "Not answerable" (as the benchmark's scoring compares it)."""
    return " ".join(str(pred or "").split()).rstrip(".").lower() == NOT_ANSWERABLE.lower()


def _share(rs: list[dict], key: str) -> float | None:
    vals = [r.get(key) for r in rs if r.get(key) is not None]
    return round(100 * sum(1 for v in vals if v) / len(vals), 1) if vals else None


def summarise(records: list[dict], paired: bool = True) -> dict[str, Any]:
    """Per system (and budget, when a run used several): accuracy, F1, accuracy on answerable
    questions, the share of "Not answerable" answers beside the gold share, gold-page citation,
    shown (cited or listed) and read rates, p50 seconds, mean rounds/calls/tokens.

    ``paired``: only questions every row finished, so the figures compare like with like.
    """
    several = len({r.get("budget") for r in records if r.get("budget")}) > 1
    by_sys: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in records:
        by_sys[row_name(r, several)][r["id"]] = r
    ids = set.intersection(*(set(v) for v in by_sys.values())) if (paired and by_sys) else None
    out: dict[str, Any] = {"questions": len(ids) if ids is not None else None, "systems": {}}
    for s, recs in by_sys.items():
        rs = [r for i, r in recs.items() if ids is None or i in ids]
        if not rs:
            continue
        acc, f1 = acc_and_f1(rs)
        answerable = [r for r in rs if r["answer"] != NOT_ANSWERABLE]
        secs = [r.get("seconds", 0.0) for r in rs]
        row = {"n": len(rs), "budget": rs[0].get("budget"), "protocol": rs[0].get("protocol"),
               "accuracy": round(100 * acc, 1), "f1": round(100 * f1, 1),
               "answerable_accuracy": round(100 * statistics.fmean(r["score"] for r in answerable), 1) if answerable else None,
               "not_answerable_share": round(100 * sum(1 for r in rs if is_refusal(r.get("pred"))) / len(rs), 1),
               "gold_not_answerable_share": round(100 * (len(rs) - len(answerable)) / len(rs), 1),
               "gold_page_cited": round(100 * sum(1 for r in answerable if r.get("gold_cited")) / len(answerable), 1) if answerable else None,
               "gold_page_shown": _share(answerable, "gold_shown"), "gold_page_read": _share(answerable, "gold_read"),
               "answerable": len(answerable), "p50_seconds": round(statistics.median(secs), 1),
               "mean_seconds": round(statistics.fmean(secs), 1), "errors": sum(1 for r in rs if r.get("error"))}
        for k in ("rounds", "tool_calls", "llm_calls", "tokens_in", "tokens_out"):
            vals = [r.get(k) or 0 for r in rs]
            row[f"mean_{k}"] = round(statistics.fmean(vals), 1)
        fr = [r.get("first_round_searches") for r in rs if r.get("first_round_searches") is not None]
        if fr:
            row["first_round_2plus_searches"] = round(100 * sum(1 for x in fr if x >= 2) / len(fr), 1)
            par = [r.get("first_round_parallel") or 0 for r in rs]
            row["first_round_2plus_parallel"] = round(100 * sum(1 for x in par if x >= 2) / len(par), 1)
        out["systems"][s] = row
    return out


def write_report(records: list[dict], out: str | Path, command: str = "") -> dict[str, str]:
    out = Path(out)
    summ = summarise(records)
    (out / "mmlongbench-e2e.json").write_text(json.dumps(summ, indent=2))
    cols = ["n", "accuracy", "answerable_accuracy", "not_answerable_share", "gold_not_answerable_share", "f1",
            "gold_page_cited", "gold_page_shown", "gold_page_read", "p50_seconds", "mean_rounds", "mean_tool_calls", "mean_llm_calls",
            "mean_tokens_in", "mean_tokens_out", "first_round_2plus_parallel", "errors"]
    lines = [f"# MMLongBench-Doc end to end ({summ['questions']} paired questions)", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += ["| system | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for s, row in summ["systems"].items():
        lines.append(f"| {s} | " + " | ".join("" if row.get(c) is None else str(row.get(c)) for c in cols) + " |")
    lines += ["", "accuracy / F1: the benchmark's rule-based scoring of answers extracted with its own prompt "
              "(by the same local model); answerable_accuracy: over questions whose gold answer is not "
              "'Not answerable'; not_answerable_share: answers extracted as 'Not answerable' (beside the gold "
              "share); gold_page_cited / gold_page_shown / gold_page_read: share of answerable questions with a "
              "gold evidence page among the answer's citations / its citations or listed places / the passages "
              "the model was shown."]
    md = out / "mmlongbench-e2e.md"
    md.write_text("\n".join(lines) + "\n")
    png = out / "mmlongbench-e2e.png"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(summ["systems"])
        fig, ax = plt.subplots(figsize=(6, 3.2))
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], [summ["systems"][n]["accuracy"] for n in names], 0.4, label="accuracy %")
        ax.bar([i + 0.2 for i in x], [summ["systems"][n]["gold_page_cited"] or 0 for n in names], 0.4, label="gold page cited %")
        ax.set_xticks(list(x), names)
        ax.set_title(f"MMLongBench-Doc dev, {summ['questions']} paired questions")
        ax.legend()
        fig.tight_layout()
        fig.savefig(png, dpi=110)
        plt.close(fig)
    except Exception:  # noqa: BLE001 - a missing plot never loses the figures
        png = None
    return {"json": str(out / "mmlongbench-e2e.json"), "markdown": str(md), **({"plot": str(png)} if png else {})}


def run_mode(data: str | Path, out: str | Path, *, llm_options: dict | None = None, limit: int | None = None,
             subset: list[str] | None = None, library: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """``sleuth eval mmlongbench --mode e2e`` (registered in :data:`.mmlongbench.MODES`).

    ``llm_options``: ``llm`` (default ``local``), ``model``, ``base_url``, and this mode's
    ``per_doc``, ``systems``, ``evidence_tokens`` (one budget or a list), ``protocol`` (``quote`` or
    ``direct``) and ``command`` (written into the report).
    """
    from ..agent.llm import make_llm
    from .mmlb_library import open_library, progress_bar

    o = dict(llm_options or {})
    systems = o.get("systems") or list(SYSTEMS)
    bad = [s for s in systems if s not in SYSTEMS + EXTRA_SYSTEMS]
    if bad:
        raise ValueError(f"unknown system(s) {', '.join(bad)} (have: {', '.join(SYSTEMS + EXTRA_SYSTEMS)})")
    llm = o.get("llm") or "local"
    budgets = o.get("evidence_tokens") or [1200]
    budgets = [int(b) for b in (budgets if isinstance(budgets, (list, tuple)) else [budgets])]
    backend = make_llm(llm, model=o.get("model"), base_url=o.get("base_url"))
    grow = getattr(backend, "ensure_context", None)
    if grow is not None:  # the largest budget's context from the start, not grown mid-run
        from ..agent.policy_compact import ANSWER_MAX_TOKENS, FIXED_PROMPT_TOKENS
        from ..agent.quotes import QUOTE_MAX_TOKENS

        grow(max(budgets) + FIXED_PROMPT_TOKENS + QUOTE_MAX_TOKENS + ANSWER_MAX_TOKENS)
    if backend is None:
        raise ValueError("--mode e2e needs a model (--llm local, openai or hf): answers are extracted by a model call")
    out = Path(out)
    items = select_items(data, per_doc=o.get("per_doc", 2), limit=limit, doc_types=subset)
    if not items:
        raise ValueError(f"{data}: no questions selected")
    with progress_bar(progress) as prog:
        lib = open_library(Path(data), items, library, out, prog)
        bar = None

        def on_item(n: int, total: int, info: dict) -> None:
            nonlocal bar
            if bar is None:
                bar = prog.add_task("questions", total=total)
            prog.update(bar, completed=n)
            if info.get("skipped") and info["skipped"] != "done":
                prog.console.print(f"skipped {info['id']}: {info['skipped']}", markup=False, highlight=False)

        try:
            records = run(data, lib, backend, out, per_doc=o.get("per_doc", 2), limit=limit, systems=systems,
                          evidence_tokens=budgets, on_item=on_item, doc_types=subset,
                          protocol=o.get("protocol") or "direct")
        finally:
            lib.close()
    paths = write_report(records, out, o.get("command", ""))
    return {**summarise(records), "records": str(out / "mmlongbench-e2e.jsonl"), **paths}
