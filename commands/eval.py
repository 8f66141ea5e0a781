"""``sleuth eval``: the benchmarks' harness (:mod:`sleuth.eval`) from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Literal, Optional

import typer

from .common import JSON_OPT, emit_json
from .conventions import check_benchmark, parse_budgets
from .terminal import error, say

#: benchmarks outside the runner's table: made here, with their own harness
OWN_BENCHMARKS = ("recordings",)


def _check_benchmark(value: str) -> str:
    return value if value in OWN_BENCHMARKS else check_benchmark(value)


def eval_cmd(benchmark: str = typer.Argument(..., callback=_check_benchmark,
                                             help="longbench, longbench-v2, lvbench, mmlongbench or recordings"),
             data: Path = typer.Option(..., "--data", help="Folder with the benchmark files."),
             subset: Optional[List[str]] = typer.Option(None, "--subset", help="Task names / domains to run."),
             limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Items per subset."),
             mode: Literal["retrieval", "e2e"] = typer.Option("retrieval", "--mode", help="retrieval (no LLM) or e2e."),
             budgets: str = typer.Option("500,1000,2000,4000", "--budgets", callback=parse_budgets,
                                         help="Token budgets (retrieval mode), comma-separated positive integers."),
             out: Path = typer.Option(Path("eval_out"), "--out", help="Output folder (resumable cache, reports)."),
             llm: Optional[str] = typer.Option(None, help="LLM backend for e2e mode (MMLongBench e2e: local unless given)."),
             base_url: Optional[str] = typer.Option(None, "--base-url"),
             model: Optional[str] = typer.Option(None, "--model"),
             videos: Optional[Path] = typer.Option(None, "--videos", help="LVBench: folder with <key>.mp4 files."),
             eval_library: Optional[str] = typer.Option(None, "--library", "-L",
                                                        help="MMLongBench: library of its PDFs (default <out>/mmlongbench-library)."),
             per_doc: int = typer.Option(2, "--per-doc", min=0,
                                         help="MMLongBench e2e: the first N questions of every document (0: all)."),
             systems: str = typer.Option("agent,flat_rag,heuristic", "--systems",
                                        help="MMLongBench e2e: systems to run; add oracle for the gold-page upper bound."),
             evidence_tokens: str = typer.Option("1200", "--evidence-tokens", callback=parse_budgets,
                                                 help="MMLongBench e2e: evidence tokens in the answer prompt (agent, flat RAG "
                                                      "and oracle alike); several, comma-separated (1200,2500,5000), "
                                                      "run every system at each on the same questions."),
             protocol: Literal["quote", "direct"] = typer.Option(
                 "direct", "--protocol", help="MMLongBench e2e: answer protocol: direct (one call that answers or "
                                              "refuses) or quote (copy the support, then answer from it)."),
             answers: bool = typer.Option(False, "--answers",
                                          help="Recordings: also answer every query, agent against flat RAG (local model unless --llm; slow)."),
             questions: Optional[int] = typer.Option(None, "--questions", min=1,
                                                     help="Recordings --answers: the first N queries of each recording."),
             as_json: bool = JSON_OPT):
    """Run LongBench / LongBench v2 / LVBench / MMLongBench-Doc, or score sleuth on recordings made by
    benchmarks/make_recordings.py (--subset meeting/lecture, --limit recordings), and write JSON and Markdown."""
    from ..agent import AgentError
    from ..eval.runner import run_eval

    if benchmark == "recordings":
        _recordings(data, out, subset, limit, answers, questions,
                    {k: v for k, v in {"llm": llm, "base_url": base_url, "model": model}.items() if v}, as_json)
        return
    options = {k: v for k, v in {"llm": llm, "base_url": base_url, "model": model}.items() if v}
    if benchmark == "mmlongbench" and mode == "e2e":
        options.update(per_doc=per_doc or None, evidence_tokens=[int(b) for b in evidence_tokens.split(",") if b.strip()],
                       protocol=protocol, command=" ".join(sys.argv),
                       systems=[s.strip() for s in systems.split(",") if s.strip()])
    try:
        summary = run_eval(benchmark, data=data, subset=subset, limit=limit, mode=mode,
                           budgets=[int(b) for b in budgets.split(",") if b.strip()], out=out,
                           llm_options=options, video_dir=videos, library=eval_library, progress=not as_json)
    except (ValueError, FileNotFoundError, AgentError) as e:
        error(e)
        raise typer.Exit(2)
    if as_json:
        emit_json(summary)
    else:
        md = next((v for v in summary.values() if isinstance(v, str) and v.endswith(".md") and Path(v).is_file()), None)
        say(Path(md).read_text() if md else str(summary))
        for k, v in summary.items():
            if isinstance(v, str) and Path(v).suffix in (".md", ".png", ".jsonl"):
                say(f"{k}: {v}")


def _recordings(data: Path, out: Path, subset, limit, answers: bool, questions, llm_options: dict, as_json: bool) -> None:
    from ..agent import AgentError
    from ..eval.recordings import KINDS, run

    bad = [s for s in subset or [] if s not in KINDS]
    if bad:
        error(f"--subset {', '.join(bad)}: recordings are {' or '.join(KINDS)}")
        raise typer.Exit(2)
    try:
        summary = run(data, out, limit=limit, kinds=list(subset or []) or None, answers=answers,
                      llm_options=llm_options, questions=questions, progress=not as_json, command=" ".join(sys.argv))
    except (ValueError, FileNotFoundError, AgentError) as e:
        error(e)
        raise typer.Exit(2)
    if as_json:
        emit_json(summary)
    else:
        say(Path(summary["markdown"]).read_text())
        say(f"summary: {out / 'summary.json'}")
    if summary["failed"] and not summary["recordings"]:
        raise typer.Exit(1)
