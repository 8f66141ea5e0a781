"""`sleuth` command line: a thin Typer face over :class:`sleuth.Library`."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import List, Literal, Optional

import typer
from rich.table import Table
from rich.text import Text

from . import terminal
from .cli_conventions import (ASR_CHOICES, LEVEL_CHOICES, OCR_CHOICES, SleuthGroup, check_benchmark, parse_agent_budget,
                              parse_budgets, root)
from .cli_progress import IndexProgress
from .config import HELP_EPILOG

app = typer.Typer(cls=SleuthGroup, add_completion=True, no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="sleuth: agentic retrieval over long documents and videos, with located citations.",
                  epilog=HELP_EPILOG)
app.callback()(root)
# All output goes through sleuth.terminal: markup off, control characters removed, so document
# text, file names and model output are shown verbatim and never styled, linked or obeyed.
console, err = terminal.out, terminal.err
say, error = terminal.say, terminal.error

LIB_OPT = typer.Option(None, "--library", "-L", envvar="SLEUTH_LIBRARY",
                       help="Library folder or SQLAlchemy URL (default ./.sleuth).")
HOME_OPT = typer.Option(None, "--home", envvar="SLEUTH_HOME", help="Folder for vectors/assets when --library is a URL.")
JSON_OPT = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


def open_or_exit(library: Optional[str], home: Optional[str] = None, *, create: bool = False):
    """The library for a command, or exit 2 with one line. Read-only commands (``create=False``)
    never create one and open it read-only where it cannot be written (a read-only mount)."""
    from .library import Library, mask_url

    where = library or ".sleuth"
    try:
        return Library(where, home=home, create=create)
    except Exception as e:  # missing, a bad URL, an unwritable folder, a damaged file: one line
        error(mask_url(f"{mask_url(where)}: {e}" if str(where) not in str(e) else str(e)))
        raise typer.Exit(2)


def emit_json(obj) -> None:
    """``--json`` output: one JSON document on stdout (UTF-8 as is, anything else as its str)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


@app.command()
def index(paths: List[Path] = typer.Argument(..., help="Files and folders (documents and videos)."),
          library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT,
          prune: bool = typer.Option(False, "--prune", help="Drop indexed files under PATHS that no longer exist."),
          force: bool = typer.Option(False, "--force", help="Re-index even unchanged files."),
          ocr: Literal[OCR_CHOICES] = typer.Option("auto", help="OCR for image-only pages: auto (fast PP-OCR), rapid, thorough, force, off, paddle; figures = auto plus the text inside figure images (charts, screenshots; ~60% slower reading)."),
          asr: Literal[ASR_CHOICES] = typer.Option("auto", help="Speech for videos: auto (subtitles, else whisper, else pocketsphinx), subtitles, whisper, pocketsphinx, off (= none)."),
          as_json: bool = JSON_OPT):
    """Build or update the library from PATHS (incremental by content hash)."""
    from .library import LibraryBusy
    from .readers import check_modes

    ocr, asr = check_modes(ocr, asr)  # the choices are checked while parsing; this maps off -> none
    lib = open_or_exit(library, home, create=True)
    progress = IndexProgress(err.get(), disable=as_json)

    def on_result(r):
        if r.status == "failed":
            progress.console.print(terminal.text(("error:", "red"), " ", " ".join(terminal.clean(r.reason).split())))
        for w in r.warnings:
            progress.console.print(terminal.text(("warning:", "yellow"), " ", " ".join(terminal.clean(w).split())))

    # SIGTERM behaves like Ctrl-C: the file in flight is rolled back, committed work stays.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with progress:
            report = lib.add([str(p) for p in paths], prune=prune, force=force, ocr=ocr, asr=asr,
                             progress=progress, on_result=on_result)
    except LibraryBusy as e:
        error(e)
        raise typer.Exit(3)
    except KeyboardInterrupt:
        lib.close()
        error("files indexed so far are kept; run the same command to resume.", label="cancelled:")
        raise typer.Exit(130)
    lib.close()
    if as_json:
        emit_json(report.to_dict())
    else:
        t = Table(title=f"indexed in {report.seconds:.1f}s")
        for col in ("file", "status", "nodes", "pages", "seconds"):
            t.add_column(col, justify="right" if col in ("nodes", "pages", "seconds") else "left")
        for r in report.results:
            style = {"failed": "red", "skipped": "dim", "pruned": "yellow"}.get(r.status, "green")
            t.add_row(terminal.text(Path(r.path).name), terminal.text((r.status, style)), str(r.nodes or ""), str(r.pages or ""),
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
    lib = open_or_exit(library, home)
    try:
        hits = lib.search(query, level=level, within=within, k=k)
    except (ValueError, KeyError) as e:
        error(e.args[0] if isinstance(e, KeyError) and e.args else e)
        raise typer.Exit(2)
    if as_json:
        emit_json(hits)
        return
    if not hits:
        console.print("no hits")
        return
    for i, h in enumerate(hits, 1):
        if level == "entity":
            e = h["entity"]
            say((f"{i}. {terminal.clean(e['name'])}", "bold"),
                f" ({e['kind']}; {e['n_mentions']} mentions; {', '.join(e['modalities'])})")
            for m in h["mentions"][:3]:
                say("     ", m["label"], " ", (m["modality"], "dim"), " ", m["surface"])
            continue
        say((f"{i}. {terminal.clean(h['label'])}", "bold"), "  ", (f"#{h['id']} {h['kind']} score {h['score']:.4f}", "dim"))
        say("   ", h["snippet"])


@app.command()
def show(node: int, library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT,
         png: Optional[Path] = typer.Option(None, "--png", help="Render the node's page (or keyframe) with its box to this PNG."),
         as_json: bool = JSON_OPT):
    """Print a node in its context (parent path, neighbours); optionally render it."""
    lib = open_or_exit(library, home)
    try:
        d = lib.get_node(node)
    except KeyError as e:
        error(e.args[0])
        raise typer.Exit(2)
    r = lib.fetch_nodes([node])[node]
    d["neighbours"] = lib.neighbours(r[0])
    if png is not None:
        d["png"] = str(_render(lib, d, png))
    if as_json:
        emit_json(d)
        return
    say((d["label"], "bold"), "  ", (f"#{d['id']} {d['kind']}", "dim"))
    if d["title_path"]:
        say("  " + " › ".join(d["title_path"]))
    for n in d["neighbours"]:
        if n["rel"] == "prev":
            say((f"  ↑ #{n['id']} {terminal.clean(n['snippet'])}", "dim"))
    say(d["text"] or d["summary"])
    for n in d["neighbours"]:
        if n["rel"] == "next":
            say((f"  ↓ #{n['id']} {terminal.clean(n['snippet'])}", "dim"))
    if png is not None:
        say("wrote ", d["png"])


def _render(lib, d: dict, out: Path) -> Path:
    from .core import ReaderError

    loc = d["locator"]
    if out.is_dir():
        error(f"{out}: is a directory; --png needs a file name")
        raise typer.Exit(2)
    try:
        if loc["kind"] == "video":
            look = lib.look(d["id"])
            if not look.get("keyframe"):
                error(f"node {d['id']} has no keyframe")
                raise typer.Exit(2)
            from PIL import Image

            Image.open(look["keyframe"]).save(out, format="PNG")
            return out
        if not loc.get("page") or not loc["path"].lower().endswith(".pdf"):
            error(f"node {d['id']} is not on a PDF page; --png needs one")
            raise typer.Exit(2)
        from .readers.render import render_box

        # The stored box belongs to the file as indexed: never draw it on another file.
        lib.check_unchanged(d["source_id"])
        render_box(loc["path"], loc["page"], loc.get("bbox"), out)
    except (ReaderError, OSError) as e:
        error(e if isinstance(e, ReaderError) else f"{getattr(e, 'filename', None) or out}: {e.strerror or e}")
        raise typer.Exit(2)
    return out


@app.command()
def status(library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT, as_json: bool = JSON_OPT):
    """Counts per tier and kind, size on disk, the last run and recent failures."""
    lib = open_or_exit(library, home)
    st = lib.status()
    if as_json:
        emit_json(st)
        return
    t = Table(title=terminal.text(f"library {st['library']}"))
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
        say(f"last run {lr['started']} ({lr['status']}, {lr['seconds']}s): {lr['added']} added, "
            f"{lr['updated']} updated, {lr['skipped']} skipped, {lr['failed']} failed, {lr['pruned']} pruned")
    for f in st["failures"]:
        say(("failed:", "red"), " ", f["reason"])


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@app.command()
def ask(question: str, library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT,
        llm: str = typer.Option("auto", envvar="SLEUTH_LLM",
                                help="local (embedded llama.cpp model), none (heuristic planner), openai, hf; "
                                     "auto: local when installed, else none."),
        base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
        model: Optional[str] = typer.Option(None, "--model",
                                            help="local: a model name from `sleuth models` or a .gguf path; "
                                                 "openai: the served model; hf: a local folder."),
        within: Optional[List[str]] = typer.Option(None, "--within", "-w",
                                                   help="Search only this indexed file (repeat for several)."),
        budget: Optional[str] = typer.Option(None, "--budget", callback=parse_agent_budget,
                                             help="e.g. rounds=3,calls=12,tokens=6000,seconds=60"),
        trace: bool = typer.Option(False, "--trace", help="Stream every round and tool call as it happens."),
        thread: Optional[str] = typer.Option(None, "--thread", help="Checkpoint under this id; asking again resumes."),
        as_json: bool = JSON_OPT):
    """Answer a question with the agent; cites exact places."""
    from .agent import AgentError, Budget, format_event
    from .agent import ask as agent_ask

    lib = open_or_exit(library, home)

    def on_event(ev: dict):
        if as_json or not trace:
            return
        line = format_event(ev)
        if line:
            err.print(terminal.text((terminal.clean(line), "dim")))

    try:
        ans = agent_ask(lib, question, llm=llm, base_url=base_url, model=model, within=within or None,
                        budget=Budget.parse(budget) if budget else None, on_event=on_event, thread_id=thread)
    except AgentError as e:
        error(e)
        raise typer.Exit(2)
    if as_json:
        emit_json(ans.to_dict())
        return
    say(ans.render(trace=trace))


@app.command()
def models(as_json: bool = JSON_OPT,
           measure: bool = typer.Option(False, "--measure", help="Time prefill and generation of each installed model now."),
           prepare: bool = typer.Option(False, "--prepare", help="Join the default model's parts and check its sha256 now.")):
    """Local models: installed or not, file path, licence, and the speed measured on this machine."""
    from .agent import AgentError
    from .agent import models as M

    if prepare:
        try:
            M.ensure(M.DEFAULT)
        except AgentError as e:
            error(e)
            raise typer.Exit(2)
    if measure:
        from .agent.llm_local import measure as measure_model

        for row in M.describe():
            if row["installed"]:
                try:
                    measure_model(row["name"])
                except AgentError as e:
                    error(f"{row['name']}: {e}")
    rows = M.describe()
    import importlib.util

    runtime = importlib.util.find_spec("llama_cpp") is not None
    if as_json:
        emit_json({"llama_cpp": runtime, "models_dir": str(M.models_dir()), "default": M.DEFAULT, "models": rows})
        return
    if not runtime:
        error("llama-cpp-python is not installed: scripts/make_env.sh installs it (or use --llm none / openai)")
    t = Table("model", "installed", "file", "prefill tok/s", "generate tok/s", "licence")
    for r in rows:
        sp = r.get("speed") or {}
        cells = [r["name"] + (" (default)" if r["default"] else ""), "yes" if r["installed"] else f"no: {r['install']}",
                 r["path"] or ("joined on first use" if r["installed"] else "-"),
                 str(sp.get("prefill_tokens_per_s", "not measured")), str(sp.get("generate_tokens_per_s", "")), r["licence"]]
        t.add_row(*(Text(c) for c in cells))  # paths are data, never markup
    console.print(t)


@app.command(name="eval")
def eval_cmd(benchmark: str = typer.Argument(..., callback=check_benchmark, help="longbench, longbench-v2, lvbench or mmlongbench"),
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
             evidence_tokens: int = typer.Option(1200, "--evidence-tokens", min=100,
                                                 help="MMLongBench e2e: evidence tokens in the answer prompt (agent and flat RAG alike)."),
             as_json: bool = JSON_OPT):
    """Run LongBench / LongBench v2 / LVBench / MMLongBench-Doc and write JSON, Markdown and a plot."""
    from .agent import AgentError
    from .eval.runner import run_eval

    options = {k: v for k, v in {"llm": llm, "base_url": base_url, "model": model}.items() if v}
    if benchmark == "mmlongbench" and mode == "e2e":
        options.update(per_doc=per_doc or None, evidence_tokens=evidence_tokens, command=" ".join(sys.argv),
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


@app.command()
def demo(workdir: Path = typer.Option(Path("demo_out"), help="Where the sample corpus and its library go."),
         as_json: bool = JSON_OPT):
    """Generate a sample corpus, index it, and answer questions about it (no network, no GPU)."""
    from .demo import run_demo

    raise typer.Exit(run_demo(workdir, as_json=as_json, say=say))


# commands that live in their own modules register on the same app
from . import cli_manage  # noqa: E402,F401
from . import mcp_server  # noqa: E402,F401


def main() -> None:
    """The ``sleuth`` entry point: whatever escapes a command is one line, never a traceback
    (``SLEUTH_DEBUG=1`` shows the traceback for a bug report)."""
    try:
        app()
    except Exception as e:  # noqa: BLE001 - the last line of defence; commands handle what they expect
        if os.environ.get("SLEUTH_DEBUG"):
            raise
        error(describe(e))
        sys.exit(1)


def describe(e: BaseException) -> str:
    """One line for an unexpected exception: the object it names and the reason."""
    from .library import mask_url

    orig = getattr(e, "orig", None)  # SQLAlchemy wraps the driver's error
    if orig is not None:
        return mask_url(f"database: {orig}")
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror or e}"
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return mask_url(f"{type(e).__name__}: {msg}" if msg else type(e).__name__)


if __name__ == "__main__":
    # `python -m sleuth.cli`: this file runs as __main__, while the command modules register on
    # the app of the importable sleuth.cli; run that one.
    from sleuth.cli import main as _main

    _main()
