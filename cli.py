"""`sleuth` command line: a thin Typer face over :class:`sleuth.Library`."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import List, Literal, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cli_conventions import (ASR_CHOICES, LEVEL_CHOICES, OCR_CHOICES, SleuthGroup, check_benchmark, parse_agent_budget,
                              parse_budgets, root)
from .cli_progress import IndexProgress
from .config import HELP_EPILOG

app = typer.Typer(cls=SleuthGroup, add_completion=True, no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="sleuth: agentic retrieval over long documents and videos, with located citations.",
                  epilog=HELP_EPILOG)
app.callback()(root)
console = Console(stderr=False)
err = Console(stderr=True)

LIB_OPT = typer.Option(None, "--library", "-L", envvar="SLEUTH_LIBRARY",
                       help="Library folder or SQLAlchemy URL (default ./.sleuth).")
HOME_OPT = typer.Option(None, "--home", envvar="SLEUTH_HOME", help="Folder for vectors/assets when --library is a URL.")
JSON_OPT = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


def _open(library: Optional[str], home: Optional[str] = None):
    from .library import Library

    try:
        return Library(library or ".sleuth", home=home)
    except Exception as e:  # a bad URL or an unwritable folder: one line, no traceback
        err.print(f"[red]error:[/] cannot open library {library or '.sleuth'}: {e}")
        raise typer.Exit(2)


def _emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


@app.command()
def index(paths: List[Path] = typer.Argument(..., help="Files and folders (documents and videos)."),
          library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT,
          prune: bool = typer.Option(False, "--prune", help="Drop indexed files under PATHS that no longer exist."),
          force: bool = typer.Option(False, "--force", help="Re-index even unchanged files."),
          ocr: Literal[OCR_CHOICES] = typer.Option("auto", help="OCR for image-only pages: auto (fast PP-OCR), thorough, force, off, paddle."),
          asr: Literal[ASR_CHOICES] = typer.Option("auto", help="Speech for videos without subtitles: auto (subtitles, else whisper, else pocketsphinx), subtitles, whisper, pocketsphinx, off."),
          as_json: bool = JSON_OPT):
    """Build or update the library from PATHS (incremental by content hash)."""
    from .library import LibraryBusy

    lib = _open(library, home)
    progress = IndexProgress(err, disable=as_json)

    def on_result(r):
        if r.status == "failed":
            progress.console.print(f"[red]error:[/] {escape(r.reason)}", highlight=False)

    # SIGTERM behaves like Ctrl-C: the file in flight is rolled back, committed work stays.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with progress:
            report = lib.add([str(p) for p in paths], prune=prune, force=force, ocr=ocr, asr="none" if asr == "off" else asr,
                             progress=progress, on_result=on_result)
    except LibraryBusy as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(3)
    except KeyboardInterrupt:
        lib.close()
        err.print("[yellow]cancelled:[/] files indexed so far are kept; run the same command to resume.")
        raise typer.Exit(130)
    lib.close()
    if as_json:
        _emit_json(report.to_dict())
    else:
        t = Table(title=f"indexed in {report.seconds:.1f}s")
        for col in ("file", "status", "nodes", "pages", "seconds"):
            t.add_column(col, justify="right" if col in ("nodes", "pages", "seconds") else "left")
        for r in report.results:
            style = {"failed": "red", "skipped": "dim", "pruned": "yellow"}.get(r.status, "green")
            t.add_row(Path(r.path).name, f"[{style}]{r.status}[/]", str(r.nodes or ""), str(r.pages or ""),
                      f"{r.seconds:.2f}" if r.seconds else "")
        console.print(t)
        counts = ", ".join(f"{report.count(k)} {k}" for k in ("added", "updated", "skipped", "failed", "pruned") if report.count(k))
        console.print(counts or "nothing to do")
    if report.failed:
        raise typer.Exit(1)


@app.command()
def search(query: str, library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT,
           level: Literal[LEVEL_CHOICES] = typer.Option("any", help="any, source, coarse, fine, entity, or a kind (section, paragraph, scene, segment…)."),
           within: Optional[str] = typer.Option(None, help="A node id or a source name to search under."),
           k: int = typer.Option(8, "-k", "--top-k", min=1, max=100, help="Number of hits (1-100)."),
           as_json: bool = JSON_OPT):
    """Plain located search (no agent)."""
    lib = _open(library, home)
    try:
        hits = lib.search(query, level=level, within=within, k=k)
    except (ValueError, KeyError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2)
    if as_json:
        _emit_json(hits)
        return
    if not hits:
        console.print("no hits")
        return
    for i, h in enumerate(hits, 1):
        if level == "entity":
            e = h["entity"]
            console.print(f"[bold]{i}. {e['name']}[/] ({e['kind']}; {e['n_mentions']} mentions; {', '.join(e['modalities'])})")
            for m in h["mentions"][:3]:
                console.print(f"     {m['label']} [dim]{m['modality']}[/] {m['surface']}")
            continue
        console.print(f"[bold]{i}. {h['label']}[/]  [dim]#{h['id']} {h['kind']} score {h['score']:.4f}[/]")
        console.print(f"   {h['snippet']}", highlight=False)


@app.command()
def show(node: int, library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT,
         png: Optional[Path] = typer.Option(None, "--png", help="Render the node's page (or keyframe) with its box to this PNG."),
         as_json: bool = JSON_OPT):
    """Print a node in its context (parent path, neighbours); optionally render it."""
    lib = _open(library, home)
    try:
        d = lib.get_node(node)
    except KeyError as e:
        err.print(f"[red]error:[/] {e.args[0]}")
        raise typer.Exit(2)
    r = lib.fetch_nodes([node])[node]
    d["neighbours"] = lib.neighbours(r[0])
    if png is not None:
        d["png"] = str(_render(lib, d, png))
    if as_json:
        _emit_json(d)
        return
    console.print(f"[bold]{d['label']}[/]  [dim]#{d['id']} {d['kind']}[/]")
    if d["title_path"]:
        console.print("  " + " › ".join(d["title_path"]))
    for n in d["neighbours"]:
        if n["rel"] == "prev":
            console.print(f"  [dim]↑ #{n['id']} {n['snippet']}[/]", highlight=False)
    console.print(d["text"] or d["summary"], highlight=False)
    for n in d["neighbours"]:
        if n["rel"] == "next":
            console.print(f"  [dim]↓ #{n['id']} {n['snippet']}[/]", highlight=False)
    if png is not None:
        console.print(f"wrote {d['png']}")


def _render(lib, d: dict, out: Path) -> Path:
    loc = d["locator"]
    if loc["kind"] == "video":
        look = lib.look(d["id"])
        if not look.get("keyframe"):
            err.print(f"[red]error:[/] node {d['id']} has no keyframe")
            raise typer.Exit(2)
        from PIL import Image

        Image.open(look["keyframe"]).save(out)
        return out
    if not loc.get("page") or not loc["path"].lower().endswith(".pdf"):
        err.print(f"[red]error:[/] node {d['id']} is not on a PDF page; --png needs one")
        raise typer.Exit(2)
    from .readers.render import render_box

    render_box(loc["path"], loc["page"], loc.get("bbox"), out)
    return out


@app.command()
def status(library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT, as_json: bool = JSON_OPT):
    """Counts per tier and kind, size on disk, the last run and recent failures."""
    lib = _open(library, home)
    st = lib.status()
    if as_json:
        _emit_json(st)
        return
    t = Table(title=f"library {st['library']}")
    t.add_column("what")
    t.add_column("count", justify="right")
    for k, v in sorted(st["sources"].items()):
        t.add_row(f"sources: {k}", str(v))
    for k, v in sorted(st["kinds"].items()):
        t.add_row(f"nodes: {k}", str(v))
    t.add_row("entities", str(st["entities"]))
    t.add_row("vectors (source/coarse/fine)", "/".join(str(st["vectors"][x]) for x in ("source", "coarse", "fine")))
    t.add_row("size (db + vectors + lexical)", _mb(sum(st["bytes"].values())))
    console.print(t)
    lr = st["last_run"]
    if lr:
        console.print(f"last run {lr['started']} ({lr['status']}, {lr['seconds']}s): {lr['added']} added, "
                      f"{lr['updated']} updated, {lr['skipped']} skipped, {lr['failed']} failed, {lr['pruned']} pruned")
    for f in st["failures"]:
        console.print(f"[red]failed:[/] {f['reason']}")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@app.command()
def ask(question: str, library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT,
        llm: str = typer.Option("none", envvar="SLEUTH_LLM", help="none (heuristic planner), openai, hf."),
        base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
        model: Optional[str] = typer.Option(None, "--model", help="Model name (openai) or local path (hf)."),
        budget: Optional[str] = typer.Option(None, "--budget", callback=parse_agent_budget,
                                             help="e.g. rounds=3,calls=12,tokens=6000,seconds=60"),
        trace: bool = typer.Option(False, "--trace", help="Stream every round and tool call as it happens."),
        thread: Optional[str] = typer.Option(None, "--thread", help="Checkpoint under this id; asking again resumes."),
        as_json: bool = JSON_OPT):
    """Answer a question with the agent; cites exact places."""
    from .agent import AgentError, Budget, format_event
    from .agent import ask as agent_ask

    lib = _open(library, home)

    def on_event(ev: dict):
        if as_json or not trace:
            return
        line = format_event(ev)
        if line:
            err.print(line, style="dim", highlight=False, markup=False)

    try:
        ans = agent_ask(lib, question, llm=llm, base_url=base_url, model=model,
                        budget=Budget.parse(budget) if budget else None, on_event=on_event, thread_id=thread)
    except AgentError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2)
    if as_json:
        _emit_json(ans.to_dict())
        return
    console.print(ans.render(trace=trace), highlight=False)


@app.command(name="eval")
def eval_cmd(benchmark: str = typer.Argument(..., callback=check_benchmark, help="longbench, longbench-v2, lvbench or mmlongbench"),
             data: Path = typer.Option(..., "--data", help="Folder with the benchmark files."),
             subset: Optional[List[str]] = typer.Option(None, "--subset", help="Task names / domains to run."),
             limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Items per subset."),
             mode: Literal["retrieval", "e2e"] = typer.Option("retrieval", "--mode", help="retrieval (no LLM) or e2e."),
             budgets: str = typer.Option("500,1000,2000,4000", "--budgets", callback=parse_budgets,
                                         help="Token budgets (retrieval mode), comma-separated positive integers."),
             out: Path = typer.Option(Path("eval_out"), "--out", help="Output folder (resumable cache, reports)."),
             llm: str = typer.Option("none", help="LLM backend for e2e mode."),
             base_url: Optional[str] = typer.Option(None, "--base-url"),
             model: Optional[str] = typer.Option(None, "--model"),
             videos: Optional[Path] = typer.Option(None, "--videos", help="LVBench: folder with <key>.mp4 files."),
             eval_library: Optional[str] = typer.Option(None, "--library", "-L",
                                                        help="MMLongBench: library of its PDFs (default <out>/mmlongbench-library)."),
             as_json: bool = JSON_OPT):
    """Run LongBench / LongBench v2 / LVBench / MMLongBench-Doc and write JSON, Markdown and a plot."""
    from .eval.runner import run_eval

    try:
        summary = run_eval(benchmark, data=data, subset=subset, limit=limit, mode=mode,
                           budgets=[int(b) for b in budgets.split(",") if b.strip()], out=out,
                           llm_options={k: v for k, v in {"llm": llm, "base_url": base_url, "model": model}.items() if v},
                           video_dir=videos, library=eval_library, progress=not as_json)
    except (ValueError, FileNotFoundError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2)
    if as_json:
        _emit_json(summary)
    else:
        md = next((v for v in summary.values() if isinstance(v, str) and v.endswith(".md") and Path(v).is_file()), None)
        console.print(Path(md).read_text() if md else summary, highlight=False, markup=False)
        for k, v in summary.items():
            if isinstance(v, str) and Path(v).suffix in (".md", ".png", ".jsonl"):
                console.print(f"{k}: {v}", highlight=False)


@app.command()
def demo(workdir: Path = typer.Option(Path("demo_out"), help="Where the sample corpus and its library go."),
         as_json: bool = JSON_OPT):
    """Generate a sample corpus, index it, and answer questions about it (no network, no GPU)."""
    from .demo import run_demo

    raise typer.Exit(run_demo(workdir, as_json=as_json, console=console))


# commands that live in their own modules register on the same app
from . import cli_manage  # noqa: E402,F401
from . import mcp_server  # noqa: E402,F401


def main() -> None:
    app()


if __name__ == "__main__":
    # `python -m sleuth.cli`: this file runs as __main__, while the command modules register on
    # the app of the importable sleuth.cli; run that one.
    from sleuth.cli import main as _main

    _main()
