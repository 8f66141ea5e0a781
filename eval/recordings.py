"""``sleuth eval recordings --data DIR --out DIR``: hour-long meetings and lectures, measured.

``DIR`` is what ``benchmarks/make_recordings.py`` writes: ``manifest.json`` (schema
``sleuth.recordings/1``: ``items`` of ``kind``, ``name``, ``mp4``, ``truth``, ``duration_s``,
paths relative to ``DIR``) and beside each MP4 its ground truth (schema ``sleuth.recording/1``:
a meeting's ``turns``, ``topics`` and ``queries`` with gold ``spans`` in seconds; a lecture's
``pdf_path``, ``pages`` and ``queries`` with ``evidence_pages`` and ``spans``).

The MP4s are indexed with sleuth's own video pipeline (speech recognised, never the truth's
transcript) into ``OUT/library``; each recording is then scored (:mod:`.rec_item`) and its record
cached as ``OUT/items/<name>.json``, so a rerun after a kill skips finished recordings (and a
recording indexed but not yet scored is not indexed again). A failed recording gets one line
and the others go on. With ``answers`` the agent and flat RAG answer every query with the same
local model (:mod:`.rec_answers`). The summary is ``OUT/summary.json`` and ``OUT/summary.md``
(:mod:`.rec_report`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .rec_data import KINDS, cache_name, load_manifest, load_truth, slide_deck
from .rec_report import markdown, summarise

__all__ = ["KINDS", "load_manifest", "run"]

def run(data: str | Path, out: str | Path, *, limit: int | None = None, kinds: list[str] | None = None,
        answers: bool = False, llm_options: dict | None = None, questions: int | None = None,
        progress: bool = True, command: str = "") -> dict[str, Any]:
    """Index, score and summarise every recording (resumable); returns the summary."""
    import sys

    from .mmlb_library import progress_bar
    from .rec_item import evaluate

    out = Path(out)
    (out / "items").mkdir(parents=True, exist_ok=True)
    items = [it for it in load_manifest(data) if not kinds or it["kind"] in kinds]
    if limit:
        items = items[:limit]
    if not items:
        raise ValueError(f"{data}: no recordings selected")
    records, failed = [], []
    with progress_bar(progress) as prog:
        bar = prog.add_task("recordings", total=len(items))
        for it in items:
            base = out / "items" / cache_name(it["name"])
            rec_path = base.with_suffix(".json")
            prog.update(bar, description=f"recordings: {it['name'][:40]}")
            try:
                if rec_path.is_file():
                    records.append(json.loads(rec_path.read_text(encoding="utf-8")))
                else:
                    truth = load_truth(it)

                    def stage(name: str, frac: float | None, it=it) -> None:
                        pct = f" {100 * frac:.0f}%" if frac is not None else ""
                        prog.update(bar, description=f"recordings: {it['name'][:40]} ({name}{pct})")

                    rec = evaluate(it, truth, Path(it["mp4"]), out / "library", pdf=slide_deck(it, truth),
                                   index_cache=base.with_suffix(".index.json"), progress=stage)
                    tmp = rec_path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(rec), encoding="utf-8")
                    tmp.replace(rec_path)
                    records.append(rec)
            except Exception as e:  # noqa: BLE001 - one recording's failure is its line; the rest go on
                # names and reasons come from the data: printed as plain text, without control characters
                reason = "".join(ch for ch in " ".join(f"{type(e).__name__}: {e}".split()) if ch.isprintable())[:300]
                failed.append({"name": it["name"], "reason": reason})
                name = "".join(ch for ch in str(it["name"]) if ch.isprintable())
                # plain, on stderr: with --json, stdout carries the summary alone
                print(f"error: {name}: {reason}", file=sys.stderr, flush=True)
            prog.advance(bar)
        ans = None
        if answers and records:
            from .rec_answers import run_answers

            ans = run_answers(records, items, out, llm_options or {}, questions=questions, prog=prog)
    summary = summarise(records, failed, ans)
    summary["command"] = command
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (out / "summary.md").write_text(markdown(summary, command), encoding="utf-8")
    summary["markdown"] = str(out / "summary.md")
    return summary
