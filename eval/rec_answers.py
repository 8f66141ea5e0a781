"""Answers over recordings (``sleuth eval recordings --answers``): the agent against flat RAG, one model.

For every query of every scored recording (the first ``questions`` of each, when given):

* ``agent`` — ``sleuth.agent.ask`` within the video, with the chosen model (``--llm``, local by
  default, as MMLongBench e2e picks it) and 1,200 evidence tokens;
* ``flat_rag`` — what one would build without sleuth: the 60 s windows of the *same* ASR
  transcript ranked by reciprocal-rank fusion of the BM25 and dense window baselines, the top
  windows up to the *same* evidence budget in the agent's own answer prompt, one call of the
  *same* model;
* ``agent_pdf`` (lectures) — the agent within the lecture's slide deck, the same question.

Scores: ROUGE-L F of the answer against the gold answer as LongBench scores QMSum
(:func:`sleuth.eval.metrics.rouge_score`) and the plain LCS F1 (:func:`.rec_score.rouge_l_f1`);
``cited_gold``: some cited place overlaps a gold span (video) or is a gold evidence page (PDF).
Records go to ``OUT/answers.jsonl`` one per (recording, query, system) as they finish, so a
stopped run resumes. ``paired``: agent minus flat RAG on the questions both answered, with a 95%
bootstrap interval.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import numpy as np

from . import rec_score as S
from .metrics import rouge_score
from .rec_baselines import WindowRanker
from .rec_data import load_truth, slide_deck
from .rec_index import asr_lines
from .report import read_jsonl, repair_jsonl, write_jsonl

EVIDENCE_TOKENS = 1200
AGENT_SECONDS = 300.0
RRF_K = 60
_MARK = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def fused_order(ranker: WindowRanker, query: str) -> list[int]:
    """Windows by reciprocal-rank fusion of the BM25 and dense orders (ties: time order)."""
    fused = np.zeros(len(ranker.texts))
    for m in ("bm25", "dense"):
        for r, i in enumerate(ranker.rank(query, m)):
            fused[i] += 1.0 / (RRF_K + r + 1)
    return [int(i) for i in np.argsort(-fused, kind="stable")]


def flat_rag(llm, question: str, scope: str, wins: list[dict], ranker: WindowRanker,
             evidence_tokens: int = EVIDENCE_TOKENS) -> dict:
    from ..agent.policy_compact import ANSWER_MAX_TOKENS, ANSWER_PROMPT, SYSTEM, passages_text
    from ..core import fmt_time

    t0 = time.perf_counter()
    ev = [{"id": n + 1, "label": f"{fmt_time(wins[i]['t_start'])}–{fmt_time(wins[i]['t_end'])}", "text": wins[i]["text"],
           "span": [wins[i]["t_start"], wins[i]["t_end"]]} for n, i in enumerate(fused_order(ranker, question))]
    count = getattr(llm, "count_tokens", None) or (lambda s: max(1, int(len(s.split()) * 1.4)))
    text, shown = passages_text(ev, evidence_tokens, count)
    if not shown:
        return {"text": "Not answerable.", "spans": [], "seconds": time.perf_counter() - t0}
    prompt = ANSWER_PROMPT.format(scope=scope, passages=text, question=question, example=shown[0])
    reply = llm.chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}], None,
                     max_tokens=ANSWER_MAX_TOKENS, timeout=600)
    by_id = {e["id"]: e for e in ev}
    cited = {int(i) for m in _MARK.finditer(reply.content) for i in re.split(r"[,;]\s*", m.group(1)) if i.strip()}
    return {"text": reply.content, "spans": [by_id[i]["span"] for i in sorted(cited) if i in by_id and i in shown],
            "seconds": time.perf_counter() - t0}


def agent(lib, llm, question: str, within: str, evidence_tokens: int = EVIDENCE_TOKENS) -> dict:
    from ..agent import ask

    t0 = time.perf_counter()
    ans = ask(lib, question, llm=llm, within=within, budget={"seconds": AGENT_SECONDS}, evidence_tokens=evidence_tokens)
    locs = [c.locator for c in ans.citations]
    return {"text": ans.text, "seconds": time.perf_counter() - t0,
            "spans": [[l["t_start"], l.get("t_end") or l["t_start"]] for l in locs if l.get("t_start") is not None],
            "pages": sorted({l["page"] for l in locs if l.get("page") is not None})}


def _score(rec: dict, answer: str, gold_spans: list, gold_pages: list) -> dict:
    rec["rouge_l"] = rouge_score(rec["text"], answer) if rec.get("text") else 0.0
    rec["rouge_l_f1"] = S.rouge_l_f1(rec.get("text") or "", answer)
    if "pages" in rec and rec.get("system") == "agent_pdf":
        rec["cited_gold"] = bool(set(rec["pages"]) & set(gold_pages)) if gold_pages else None
    else:
        rec["cited_gold"] = bool(S.spans_hit(rec.get("spans") or [], gold_spans)) if gold_spans else None
    return rec


def run_answers(records: list[dict], items: list[dict], out: Path, llm_options: dict, *,
                questions: int | None = None, prog=None) -> dict:
    """Answer and score; returns the answers' summary (resumable through ``OUT/answers.jsonl``)."""
    from ..agent.llm import make_llm
    from ..library import Library

    llm = make_llm(llm_options.get("llm") or "local", model=llm_options.get("model"), base_url=llm_options.get("base_url"))
    if llm is None:
        raise ValueError("--answers needs a model (--llm local, openai or hf)")
    path = Path(out) / "answers.jsonl"
    repair_jsonl(path)
    done = {(r["recording"], r["id"], r["system"]) for r in read_jsonl(path)}
    by_name = {it["name"]: it for it in items}
    todo = []
    for rec in records:
        it = by_name.get(rec["name"])
        if it is None:
            continue
        truth = load_truth(it)
        qs = truth.get("queries", [])[: questions or None]
        todo += [(rec, it, truth, q) for q in qs]
    task = prog.add_task("answers", total=len(todo)) if prog is not None else None
    with Library(Path(out) / "library", read_only=True) as lib:
        windows: dict[str, tuple[list[dict], WindowRanker]] = {}
        for rec, it, truth, q in todo:
            systems = ["agent", "flat_rag"] + (["agent_pdf"] if rec["kind"] == "lecture" and truth.get("pdf_path") else [])
            for system in systems:
                if (rec["name"], q.get("id"), system) in done:
                    continue
                video = str(Path(it["mp4"]).resolve())
                try:
                    if system == "flat_rag":
                        if video not in windows:
                            lines, meta = asr_lines(lib, video)
                            ws = S.windows(S.timed_words(lines), float(meta.get("duration") or rec["duration_s"]))
                            windows[video] = (ws, WindowRanker([w["text"] for w in ws]))
                        a = flat_rag(llm, q["query"], f"the recording {Path(video).name}", *windows[video])
                    elif system == "agent":
                        a = agent(lib, llm, q["query"], video)
                    else:
                        a = agent(lib, llm, q["query"], str(slide_deck(it, truth).resolve()))
                except Exception as e:  # noqa: BLE001 - a failed question is a wrong answer; the run goes on
                    a = {"text": "", "spans": [], "seconds": 0.0, "error": " ".join(f"{type(e).__name__}: {e}".split())[:300]}
                r = _score({"recording": rec["name"], "kind": rec["kind"], "id": q.get("id"), "system": system,
                            "query": q["query"], "answer": q.get("answer", ""), **a},
                           q.get("answer", ""), [list(s) for s in q.get("spans") or []], list(q.get("evidence_pages") or []))
                write_jsonl(path, [r], append=True)
            if task is not None:
                prog.advance(task)
    return summarise_answers(list(read_jsonl(path)), {(r["name"], q.get("id")) for r, _, _, q in todo})


def summarise_answers(rows: list[dict], keys: set | None = None) -> dict:
    """Per kind of recording (``meeting``, ``lecture``): per system n, mean ROUGE-L ×100
    (LongBench's and plain LCS F1), cited_gold %, p50 seconds, errors; agent minus flat RAG (and,
    on lectures, agent on the video minus agent on the PDF) paired by question."""
    rows = [r for r in rows if keys is None or (r["recording"], r["id"]) in keys]
    return {kind: _by_system([r for r in rows if r.get("kind") == kind]) for kind in sorted({r.get("kind") for r in rows})}


def _by_system(rows: list[dict]) -> dict:
    from .mmlongbench import bootstrap_ci

    by: dict[str, dict] = {}
    for r in rows:
        by.setdefault(r["system"], {})[(r["recording"], r["id"])] = r
    systems = {}
    for s, recs in sorted(by.items()):
        rs = list(recs.values())
        cg = [r["cited_gold"] for r in rs if r.get("cited_gold") is not None]
        systems[s] = {"n": len(rs), "rouge_l": round(100 * statistics.fmean(r["rouge_l"] for r in rs), 1),
                      "rouge_l_f1": round(100 * statistics.fmean(r["rouge_l_f1"] for r in rs), 1),
                      "cited_gold": round(100 * sum(cg) / len(cg), 1) if cg else None,
                      "p50_seconds": round(statistics.median(r.get("seconds", 0.0) for r in rs), 1),
                      "errors": sum(1 for r in rs if r.get("error"))}
    pairs = []
    for a, b in (("agent", "flat_rag"), ("agent", "agent_pdf")):
        common = sorted(set(by.get(a, {})) & set(by.get(b, {})))
        if common:
            d = [100 * (by[a][k]["rouge_l"] - by[b][k]["rouge_l"]) for k in common]
            lo, hi = bootstrap_ci(d)
            pairs.append({"a": a, "b": b, "n": len(d), "diff": round(statistics.fmean(d), 1), "ci95": [round(lo, 1), round(hi, 1)]})
    return {"systems": systems, "paired": pairs}
