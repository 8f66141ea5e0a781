"""Benchmark runners: end to end (the agent answers, official metrics score) and retrieval only
(what each method read within a token budget, scored by evidence recall; no LLM).

Each item's context is written to ``<out>/docs/<sha256[:16]>.txt`` and indexed alone in its own
library ``<out>/libraries/<sha256[:16]>`` (a rerun finds it indexed and skips the work).
Results go to ``<out>/<benchmark>-<mode>.jsonl`` one record per (item, method, budget), or per
item for e2e; a rerun skips what is already there, so an interrupted run resumes.

Methods in retrieval mode:

- ``agent``: ``Library.ask`` (heuristic planner unless an LLM is configured); its evidence,
  in the order read, is cut at each budget. Skipped when ``sleuth.agent`` has no ``ask``.
- ``search``: sleuth's located search alone: ``Library.search(query, level="fine",
  within=<doc>)`` hits read in rank order.
- ``bm25``, ``dense``, ``head``: the baselines of :mod:`sleuth.eval.baselines`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from . import baselines as B
from . import metrics as M
from . import prompts as P
from . import retrieval as R
from .loaders import (
    LoaderError,
    load_longbench,
    load_longbench_v2,
    load_lvbench,
)
from .report import e2e_summary, read_jsonl, repair_jsonl, write_jsonl, write_reports

BENCHMARKS = ("longbench", "longbench-v2", "lvbench", "mmlongbench")
DEFAULT_BUDGETS = (500, 1000, 2000, 4000)
TEXT_METHODS = ("agent", "search", "bm25", "dense", "head")
VIDEO_METHODS = ("agent", "search")
SEARCH_K = 64


@dataclass
class Task:
    """One unit of work: an item of a benchmark, with what retrieval and scoring need."""

    task: str  # LongBench task, "longbench-v2", or "lvbench"
    id: str
    query: str  # what retrieval searches for
    question: str  # what the agent is asked end to end
    language: str
    context: str | None  # None for video
    source: str | None  # the indexed document's file name (or video name)
    path: Path | None
    evidence: Callable[[list[B.Piece]], dict[str, Any]]
    score_answer: Callable[[str], dict[str, Any]]
    meta: dict[str, Any]
    gold: Any = None


# ---------------------------------------------------------------- building tasks


def _doc_path(out: Path, context: str) -> Path:
    h = hashlib.sha256(context.encode("utf-8")).hexdigest()[:16]
    p = out / "docs" / f"{h}.txt"
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(context, encoding="utf-8")
        tmp.replace(p)
    return p


def longbench_tasks(data, subset, limit, out: Path) -> list[Task]:
    tasks = []
    for name, items in load_longbench(data, subset, limit).items():
        for it in items:
            path = _doc_path(out, it.context)
            tasks.append(Task(
                task=name, id=it.id, query=P.longbench_query(name, it),
                question=P.longbench_question(name, it, path.name) if name.removesuffix("_e") in P.DATASET2PROMPT else it.input,
                language="zh" if it.language == "zh" else "en", context=it.context,
                source=path.name, path=path,
                evidence=lambda pieces, it=it: R.longbench_evidence(it, pieces),
                score_answer=lambda text, it=it, name=name: {
                    "score": M.score_longbench_item(name, text, it.answers, it.all_classes)},
                meta={"length": it.length},
            ))  # fmt: skip
    return tasks


def _v2_filters(subset: Sequence[str] | None) -> tuple[list[str] | None, list[str] | None, list[str] | None]:
    lengths = [s for s in subset or [] if s in ("short", "medium", "long")] or None
    diffs = [s for s in subset or [] if s in ("easy", "hard")] or None
    domains = [s for s in subset or [] if s not in ("short", "medium", "long", "easy", "hard")] or None
    return lengths, diffs, domains


def longbench_v2_tasks(data, subset, limit, out: Path) -> tuple[list[Task], list[str]]:
    lengths, diffs, domains = _v2_filters(subset)
    items, skipped = load_longbench_v2(data, lengths=lengths)
    items = [i for i in items if (not diffs or i.difficulty in diffs)
             and (not domains or i.domain in domains or i.sub_domain in domains)]  # fmt: skip
    if limit is not None:
        items = items[:limit]
    tasks = []
    for it in items:
        path = _doc_path(out, it.context)
        lang = it.language

        def score(text, it=it):
            pred = M.extract_answer_v2(text)
            return {"pred": pred, "judge": pred == it.answer, "answer": it.answer,
                    "difficulty": it.difficulty, "length": it.length}

        tasks.append(Task(
            task="longbench-v2", id=it.id, query=P.v2_query(it), question=P.v2_question(it, path.name),
            language=lang, context=it.context, source=path.name, path=path,
            evidence=lambda pieces, it=it, lang=lang: R.choice_recall(pieces, it.question, it.choices, it.answer, lang),
            score_answer=score,
            meta={"difficulty": it.difficulty, "length": it.length, "domain": it.domain},
        ))  # fmt: skip
    return tasks, skipped


def lvbench_tasks(data, subset, limit, out: Path, video_dir=None) -> tuple[list[Task], list[str]]:
    videos = load_lvbench(data, video_dir, None)
    if subset:
        videos = [v for v in videos if v.type in subset or v.key in subset]
    tasks, no_video = [], []
    for v in videos:
        for q in v.questions:
            if v.path is None:
                no_video.append(q.uid)
            tasks.append(Task(
                task="lvbench", id=q.uid, query=q.question, question=P.lvbench_question(q),
                language="en", context=None, source=v.path.name if v.path else None, path=v.path,
                evidence=lambda pieces, q=q: R.time_recall(pieces, q.span),
                score_answer=lambda text, q=q: {"pred": M.polish_answer(text), "answer": q.answer,
                                                "question_type": q.question_type},
                meta={"video": v.key, "question_type": q.question_type}, gold=q.answer,
            ))  # fmt: skip
    if limit is not None:
        tasks = tasks[:limit]
    return tasks, no_video


# ---------------------------------------------------------------- library side


class ItemLibraries:
    """One sleuth library per document (``<out>/libraries/<doc>``), opened when first needed.

    The agent searches everything in its library, so each item's context must be alone in one
    for the agent to read that item's document only. Items sharing a context share a library;
    one library is open at a time (items come grouped by task, in file order).
    """

    def __init__(self, out: Path, progress=None):
        self.root = out / "libraries"
        self.progress = progress
        self._key: str | None = None
        self._lib = None

    def get(self, t: Task):
        if t.path is None:
            raise RuntimeError(f"{t.task} {t.id}: no document or video file to index")
        key = t.path.stem
        if key != self._key:
            self.close()
            from sleuth.library import Library

            lib = Library(self.root / key)
            rep = lib.add([str(t.path)])
            failed = rep.failed() if callable(getattr(rep, "failed", None)) else []
            if failed:
                lib.close()
                raise RuntimeError(f"{t.path}: indexing failed ({getattr(failed[0], 'reason', '')})")
            self._key, self._lib = key, lib
        return self._lib

    def close(self) -> None:
        if self._lib is not None:
            self._lib.close()
        self._key = self._lib = None


def _piece_from(d: dict[str, Any], context: str | None) -> B.Piece | None:
    """A Piece from a read item / hit / evidence dict, located in the context when possible."""
    text = d.get("text") or d.get("snippet") or ""
    loc = d.get("locator") or {}
    if hasattr(loc, "to_dict"):
        loc = loc.to_dict()
    start, end = loc.get("char_start"), loc.get("char_end")
    # Offsets are trusted only where they point at the same text (the text reader keeps them
    # into the file we wrote; other readers may not).
    if context is not None and start is not None and end is not None:
        if "".join(context[start:end].split()) != "".join(text.split()):
            start = end = None
    else:
        start = end = None
    if not text.strip() and loc.get("t_start") is None:
        return None
    return B.Piece(text=text, start=start, end=end, t_start=loc.get("t_start"), t_end=loc.get("t_end"),
                   node_id=d.get("id") or d.get("node_id"))


def search_pieces(lib, t: Task, k: int = SEARCH_K) -> list[B.Piece]:
    """sleuth's located search over the item's document, hits read in rank order."""
    # ``within`` keeps this right even in a library that holds other documents.
    hits = lib.search(t.query, level="segment" if t.context is None else "fine", within=t.source, k=k)
    out = []
    for h in hits:
        node = lib.get_node(h["id"])
        p = _piece_from({**node, "text": node.get("text") or h.get("snippet", "")}, t.context)
        if p is not None:
            p.score = h.get("score")
            out.append(p)
    return out


def _get(obj, name, default=None):
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def _as_dict(e) -> dict[str, Any]:
    if isinstance(e, dict):
        return e
    if hasattr(e, "to_dict"):
        return e.to_dict()
    return {k: getattr(e, k) for k in ("text", "snippet", "locator", "id", "node_id") if hasattr(e, k)}


def agent_pieces(answer, context: str | None) -> list[B.Piece]:
    """The agent's evidence, in the order it was read, as Pieces."""
    out = []
    parents: set = set()
    seen: set[str] = set()
    for e in _get(answer, "evidence", None) or []:
        d = _as_dict(e)
        # A read lists its items and then the node they came from with their joined text: the
        # same words twice. Count them once, as the items.
        if d.get("parent") is not None:
            parents.add(d["parent"])
        elif d.get("id") is not None and d.get("id") in parents:
            continue
        p = _piece_from(d, context)
        if p is None or p.text in seen:
            continue
        seen.add(p.text)
        out.append(p)
    return out


def ask(lib, question: str, llm_options: dict[str, Any] | None):
    return lib.ask(question, **dict(llm_options or {}))


# ---------------------------------------------------------------- runs


def _cache_key(r: dict[str, Any]) -> tuple:
    return (r["task"], str(r["id"]), r.get("method", ""))


def run_retrieval(tasks, libs: ItemLibraries, budgets, methods, out_file: Path, llm_options, progress=None, embedder=None) -> list[dict]:
    repair_jsonl(out_file)
    # An item-method counts as done only when every requested budget is on file.
    have: dict[tuple, set[int]] = {}
    for r in read_jsonl(out_file):
        have.setdefault(_cache_key(r), set()).add(int(r["budget"]))
    done = {k for k, bs in have.items() if set(budgets) <= bs}
    bar = progress.add_task("retrieval", total=len(tasks) * len(methods)) if progress else None
    for t in tasks:
        for m in methods:
            if progress:
                progress.update(bar, description=f"{t.task} {m}")
            if (t.task, t.id, m) in done:
                progress and progress.advance(bar)
                continue
            missing = [b for b in budgets if b not in have.get((t.task, t.id, m), set())]
            t0 = time.perf_counter()
            error = None
            try:
                if m == "agent":
                    pieces = agent_pieces(ask(libs.get(t), t.query, llm_options), t.context)
                elif m == "search":
                    pieces = search_pieces(libs.get(t), t)
                else:
                    pieces = B.rank_chunks(t.context, t.query, m, t.language, embedder=embedder)
            except Exception as e:  # one failing item must not stop a long run; it is recorded
                pieces, error = [], f"{type(e).__name__}: {e}"
            secs = round(time.perf_counter() - t0, 3)
            recs = []
            for b in missing:
                read = B.take_budget(pieces, b)
                scores = t.evidence(read) if error is None else {"recall": None}
                recs.append({"task": t.task, "id": t.id, "method": m, "budget": b, **scores,
                             "tokens_read": sum(B.count_tokens(p.text) for p in read),
                             "pieces": len(read), "seconds": secs, "error": error, **t.meta})
            write_jsonl(out_file, recs, append=True)
            progress and progress.advance(bar)
    return list(read_jsonl(out_file))


def run_e2e(tasks, libs: ItemLibraries, out_file: Path, llm_options, progress=None) -> list[dict]:
    repair_jsonl(out_file)
    done = {(r["task"], str(r["id"])) for r in read_jsonl(out_file)}
    bar = progress.add_task("answering", total=len(tasks)) if progress else None
    for t in tasks:
        if (t.task, t.id) in done:
            progress and progress.advance(bar)
            continue
        t0 = time.perf_counter()
        try:
            ans = ask(libs.get(t), t.question, llm_options)
            text = str(_get(ans, "text", "") or "")
            rec = {"task": t.task, "id": t.id, "prediction": text, **t.score_answer(text),
                   "citations": len(_get(ans, "citations", None) or []),
                   "evidence_tokens": sum(B.count_tokens(p.text) for p in agent_pieces(ans, t.context)),
                   "error": None}
        except Exception as e:  # recorded as a wrong answer; the run goes on
            rec = {"task": t.task, "id": t.id, "prediction": "", **t.score_answer(""),
                   "error": f"{type(e).__name__}: {e}"}
        rec["seconds"] = round(time.perf_counter() - t0, 3)
        rec.update(t.meta)
        write_jsonl(out_file, [rec], append=True)
        progress and progress.advance(bar)
    return list(read_jsonl(out_file))


def summarise_e2e(benchmark: str, records: list[dict], tasks: Sequence[Task]) -> dict[str, Any]:
    ids = {(t.task, t.id) for t in tasks}
    recs = [r for r in records if (r["task"], str(r["id"])) in ids]
    if benchmark == "longbench":
        return e2e_summary(recs)
    if benchmark == "longbench-v2":
        return M.longbench_v2_accuracy(recs)
    # Every selected uid is scored: one with no usable prediction counts as wrong.
    preds = {str(r["id"]): r["pred"] for r in recs if r.get("pred")}
    qs = [{"uid": t.id, "answer": t.gold, "question_type": t.meta["question_type"]} for t in tasks]
    return M.lvbench_accuracy(qs, preds)


def _parse_list(v) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = [v]
    out = [s.strip() for x in v for s in str(x).split(",") if s.strip()]
    return out or None


def run_eval(
    benchmark: str,
    data: str | Path,
    subset: str | Sequence[str] | None = None,
    limit: int | None = None,
    mode: str = "retrieval",
    budgets: Iterable[int] | str | None = None,
    out: str | Path = "eval-out",
    llm_options: dict[str, Any] | None = None,
    progress: bool = True,
    methods: str | Sequence[str] | None = None,
    video_dir: str | Path | None = None,
    library: str | Path | None = None,
) -> dict[str, Any]:
    """Run one benchmark and write its reports; returns a summary with the output paths.

    ``subset``: LongBench task names; for v2 any of short/medium/long, easy/hard, or domain
    names; for LVBench video types or keys. ``limit``: items per LongBench task, items for v2,
    questions for LVBench; for MMLongBench-Doc ``subset`` selects document types and ``library``
    is where its PDFs are indexed (default ``<out>/mmlongbench-library``).
    ``llm_options``: keyword arguments for ``Library.ask``.
    """
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r} (have: {', '.join(BENCHMARKS)})")
    if benchmark == "mmlongbench":
        from .mmlongbench import run_mmlongbench

        return run_mmlongbench(data, Path(out), mode=mode, limit=limit, subset=_parse_list(subset), library=library,
                               llm_options=llm_options, progress=progress)
    if mode not in ("retrieval", "e2e"):
        raise ValueError(f"unknown mode {mode!r} (have: retrieval, e2e)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    subset_l = _parse_list(subset)
    budgets_l = sorted({int(b) for b in (_parse_list(budgets) or DEFAULT_BUDGETS)})
    skipped: list[str] = []
    if benchmark == "longbench":
        tasks = longbench_tasks(data, subset_l, limit, out)
    elif benchmark == "longbench-v2":
        tasks, skipped = longbench_v2_tasks(data, subset_l, limit, out)
    else:
        tasks, skipped = lvbench_tasks(data, subset_l, limit, out, video_dir)
    if not tasks:
        raise LoaderError(f"{data}: no items selected")
    all_methods = VIDEO_METHODS if benchmark == "lvbench" else TEXT_METHODS
    chosen = _parse_list(methods) or list(all_methods)
    bad = [m for m in chosen if m not in all_methods]
    if bad:
        raise ValueError(f"unknown method(s) {', '.join(bad)} for {benchmark} (have: {', '.join(all_methods)})")

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=False) as prog:
        libs = ItemLibraries(out, prog)
        stem = f"{benchmark}-{mode}"
        out_file = out / f"{stem}.jsonl"
        if mode == "retrieval":
            records = run_retrieval(tasks, libs, budgets_l, chosen, out_file, llm_options, prog)
            ids = {(t.task, t.id) for t in tasks}
            mine = [r for r in records if (r["task"], str(r["id"])) in ids and r["budget"] in budgets_l
                    and r["method"] in chosen]  # fmt: skip
            paths = write_reports(mine, out, stem)
            summary: dict[str, Any] = {"items": len(tasks), "methods": chosen, "budgets": budgets_l}
        else:
            records = run_e2e(tasks, libs, out_file, llm_options, prog)
            summary = {"items": len(tasks), "scores": summarise_e2e(benchmark, records, tasks)}
            paths = {}
        libs.close()
    summary.update(skipped=skipped, records=str(out_file), **{k: str(v) for k, v in paths.items()})
    return summary
