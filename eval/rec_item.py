"""One recording of ``sleuth eval recordings``: index it, then score what sleuth heard and found.

The record (one JSON file per recording, the run's resumable cache) holds the indexing figures,
the word error rate, the speaker-turn agreement and, per query, the time spans each system
returned in rank order with their recall@1/5/10 (definitions in :mod:`.rec_score`).

Systems: ``sleuth_<level>`` (``Library.search`` within the video at that level: ``segment``,
``scene``, and ``any`` with the whole-video node left out, since it overlaps every span);
``baseline_{bm25,dense}_{asr,truth}`` (:mod:`.rec_baselines` over the 60 s windows of the
transcript sleuth recognised, and of the true transcript). For a lecture also ``pdf_<level>``:
the same question searched in the slide deck's PDF, scored by its gold evidence pages.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from . import rec_score as S
from .rec_baselines import METHODS, WindowRanker
from .rec_index import asr_lines, index_file

K = 10
#: spans kept per system and query: enough 15-20 s segments to fill recall@300s's budget
KEEP = 40
VIDEO_LEVELS = ("segment", "scene", "any")
PDF_LEVELS = ("fine", "any")
WINDOW_S = 60.0


def sleuth_spans(lib, query: str, within: str, level: str, k: int = K) -> list[list[float]]:
    """Time spans of sleuth's top ``k`` hits at ``level`` within one video (no whole-video hit)."""
    hits = lib.search(query, level=level, within=within, k=k + 1 if level == "any" else k)
    spans = []
    for h in hits:
        loc = h.get("locator") or {}
        if h.get("kind") in ("video", "document") or loc.get("t_start") is None:
            continue
        spans.append([float(loc["t_start"]), float(loc.get("t_end") if loc.get("t_end") is not None else loc["t_start"])])
    return spans[:k]


def pdf_pages(lib, query: str, within: str, level: str, k: int = K) -> list[int]:
    """The first ``k`` distinct pages of a PDF's hits, in rank order (several paragraphs of one
    page count once, so more hits than ``k`` are read)."""
    hits = lib.search(query, level=level, within=within, k=KEEP)
    pages: list[int] = []
    for h in hits:
        p = (h.get("locator") or {}).get("page")
        if h.get("kind") not in ("video", "document") and p is not None and p not in pages:
            pages.append(int(p))
    return pages[:k]


def page_recalls(pages: list[int], gold: list[int], ks=(1, 5, 10)) -> dict:
    """Share of gold evidence pages among the first k distinct pages returned."""
    if not gold:
        return {f"r@{k}": None for k in ks}
    return {f"r@{k}": len(set(pages[:k]) & set(gold)) / len(set(gold)) for k in ks}


def evaluate(item: dict, truth: dict, mp4: Path, lib_path: Path, *, pdf: Path | None = None,
             index_cache: Path | None = None, progress: Callable[[str, float | None], None] | None = None) -> dict:
    """Index and score one recording; raises on failure (the runner reports it in one line).

    ``index_cache``: where the indexing figures are kept, so a run killed while scoring does not
    index the video again; without them the video is indexed afresh (``force``) so that its time
    and memory are measured, not a skip's.
    """
    import json

    from ..library import Library

    rec: dict = {"name": item["name"], "kind": item["kind"], "duration_s": float(truth.get("duration_s") or item.get("duration_s") or 0)}
    idx = json.loads(index_cache.read_text()) if index_cache is not None and index_cache.is_file() else None
    if idx is None:
        idx = index_file(lib_path, mp4, asr="whisper", force=True, progress=progress)
        if idx["status"] == "failed":
            raise RuntimeError(idx.get("reason") or "indexing failed")
        if index_cache is not None:
            index_cache.write_text(json.dumps(idx))
    rec["index"] = idx
    if pdf is not None:
        rec["pdf_index"] = index_file(lib_path, pdf, force=False, progress=progress)
    progress and progress("scoring", None)
    t0 = time.perf_counter()
    with Library(lib_path, read_only=True) as lib:
        lines, meta = asr_lines(lib, mp4)
        duration = float(meta.get("duration") or rec["duration_s"])
        rec["duration_s"] = duration or rec["duration_s"]
        rec["transcript_source"] = meta.get("transcript_source")
        truth_lines = S.truth_lines(truth)
        rec["asr"] = S.word_error_rate(" ".join(l["text"] for l in truth_lines), " ".join(l["text"] for l in lines))
        rec["speakers"] = S.speaker_agreement(lines, truth) if item["kind"] == "meeting" else None
        wins = {"asr": S.windows(S.timed_words(lines), duration, WINDOW_S),
                "truth": S.windows(S.timed_words(truth_lines), duration, WINDOW_S)}
        rankers = {src: WindowRanker([w["text"] for w in ws]) for src, ws in wins.items()}
        within = str(mp4.resolve())
        pdf_within = str(pdf.resolve()) if pdf is not None and rec["pdf_index"]["status"] != "failed" else None
        rec["queries"] = []
        for q in truth.get("queries", []):
            gold = [list(map(float, s)) for s in q.get("spans") or []]
            systems: dict[str, dict] = {}
            for level in VIDEO_LEVELS:
                spans = sleuth_spans(lib, q["query"], within, level, KEEP)
                systems[f"sleuth_{level}"] = {"spans": spans, **S.recalls(spans, gold)}
            for src, ws in wins.items():
                for m in METHODS:
                    spans = [[ws[i]["t_start"], ws[i]["t_end"]] for i in rankers[src].rank(q["query"], m)[:KEEP]]
                    systems[f"baseline_{m}_{src}"] = {"spans": spans, **S.recalls(spans, gold)}
            if pdf_within:
                for level in PDF_LEVELS:
                    pages = pdf_pages(lib, q["query"], pdf_within, level)
                    systems[f"pdf_{level}"] = {"pages": pages, **page_recalls(pages, list(q.get("evidence_pages") or []))}
            rec["queries"].append({"id": q.get("id"), "query": q["query"], "gold": gold,
                                   "evidence_pages": q.get("evidence_pages"), "systems": systems})
    rec["scoring_seconds"] = round(time.perf_counter() - t0, 2)
    return rec
