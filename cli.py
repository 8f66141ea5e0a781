"""`sleuth` command line: a thin Typer face over :class:`sleuth.Library`."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import List, Literal, Optional

import typer
from rich.table import Table

from .commands import demo as demo_commands
from .commands import eval as eval_commands
from .commands import manage, models as models_commands, serve as serve_commands, terminal
from .commands.common import HOME_OPT, JSON_OPT, LIB_OPT, describe, emit_json, open_or_exit
from .commands.conventions import ASR_CHOICES, LEVEL_CHOICES, OCR_CHOICES, SleuthGroup, parse_agent_budget, root
from .commands.progress import IndexProgress
from .config import HELP_EPILOG

app = typer.Typer(cls=SleuthGroup, add_completion=True, no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="sleuth: agentic retrieval over long documents and videos, with located citations.",
                  epilog=HELP_EPILOG)
app.callback()(root)
# All output goes through sleuth.commands.terminal: markup off, control characters removed, so document
# text, file names and model output are shown verbatim and never styled, linked or obeyed.
console, err = terminal.out, terminal.err
say, error = terminal.say, terminal.error

@app.command()
def index(paths: List[Path] = typer.Argument(..., help="Files and folders (documents and videos)."),
          library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT,
          prune: bool = typer.Option(False, "--prune", help="Drop indexed files under PATHS that no longer exist."),
          force: bool = typer.Option(False, "--force", help="Re-index even unchanged files."),
          ocr: Literal[OCR_CHOICES] = typer.Option("auto", help="OCR for image-only pages: auto (fast PP-OCR), rapid, thorough, force, off, paddle; figures = auto plus the text inside figure images (charts, screenshots; ~60% slower reading)."),
          asr: Literal[ASR_CHOICES] = typer.Option("auto", help="Speech for videos: auto (subtitles, else whisper, else pocketsphinx), subtitles, whisper, whisper-batched (~1.3x faster, same WER, speaker turns less exact), pocketsphinx, off (= none)."),
          ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS",
                                            help="Read, OCR, transcribe, find entities and embed on a Ray cluster; this process stores. ADDRESS: the head's host:port, auto (the cluster this machine is part of), or local (one started for this run). Every node must see the files at the same path."),
          as_json: bool = JSON_OPT):
    """Build or update the library from PATHS (incremental by content hash)."""
    from .library import DiskFull, LibraryBusy
    from .readers import check_modes

    ocr, asr = check_modes(ocr, asr)  # the choices are checked while parsing; this maps off -> none
    if ray is not None and os.path.exists(ray):  # `--ray docs/ a.pdf`: the address was left out
        error(f"--ray takes the cluster's address (host:port, auto or local), not a path: {ray}")
        raise typer.Exit(2)
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
                             progress=progress, on_result=on_result, ray=ray)
    except LibraryBusy as e:
        error(e)
        raise typer.Exit(3)
    except DiskFull as e:  # no room to begin: nothing was indexed, the library is as it was
        lib.close()
        error(e)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        lib.close()
        error("files indexed so far are kept; run the same command to resume.", label="cancelled:")
        raise typer.Exit(130)
    except Exception as e:
        if ray is None or type(e).__name__ != "RayUnavailable":  # not imported here: it would import ray
            raise
        lib.close()
        error(e)
        raise typer.Exit(1)
    lib.close()
    if as_json:
        emit_json(report.to_dict())
    else:
        t = Table(title=f"indexed in {report.seconds:.1f}s")
        for col in ("file", "status", "nodes", "pages", "seconds"):
            t.add_column(col, justify="right" if col in ("nodes", "pages", "seconds") else "left")
        for r in report.results:
            style = {"failed": "red", "skipped": "dim", "pruned": "yellow"}.get(r.status, "green")
            t.add_row(terminal.text(terminal.one_line(Path(r.path).name)), terminal.text((r.status, style)), str(r.nodes or ""), str(r.pages or ""),
                      f"{r.seconds:.2f}" if r.seconds else "")
        console.print(t)
        counts = ", ".join(f"{report.count(k)} {k}" for k in ("added", "updated", "skipped", "failed", "pruned") if report.count(k))
        console.print(counts or "nothing to do")
    if report.stopped:
        error(f"indexing stopped: {report.stopped}; the files indexed before it are kept, run the same command "
              "again once that is fixed")
    if report.failed or report.stopped:
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
            say((f"{i}. {terminal.one_line(e['name'])}", "bold"),
                f" ({e['kind']}; {e['n_mentions']} mentions; {', '.join(e['modalities'])})")
            for m in h["mentions"][:3]:
                say("     ", m["label"], " ", (m["modality"], "dim"), " ", m["surface"])
            continue
        say((f"{i}. {terminal.one_line(h['label'])}", "bold"), "  ", (f"#{h['id']} {h['kind']} score {h['score']:.4f}", "dim"))
        say("   ", h["snippet"])


@app.command()
def show(node: int, library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT,
         png: Optional[Path] = typer.Option(None, "--png", help="Render the node's page (or keyframe) with its box to this PNG."),
         as_json: bool = JSON_OPT):
    """Print a node in its context (parent path, neighbours); optionally render it."""
    lib = open_or_exit(library, home)
    from .index.navigate import node_in_context

    try:
        d = node_in_context(lib, node)
    except KeyError as e:
        error(e.args[0])
        raise typer.Exit(2)
    if png is not None:
        d["png"] = str(_render(lib, d, png))
    if as_json:
        emit_json(d)
        return
    say((terminal.one_line(d["label"]), "bold"), "  ", (f"#{d['id']} {d['kind']}", "dim"))
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
    t = Table(title=terminal.text(terminal.one_line(f"library {st['library']}")))
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
        say(("failed:", "red"), " ", " ".join(terminal.clean(f["reason"]).split()))


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
        answer_seconds: float = typer.Option(60.0, "--answer-seconds", min=5.0,
                                             help="Time a question may take: the model reads as much evidence as it "
                                                  "can prefill in it, at its measured speed (sleuth.toml [ask] answer_seconds)."),
        context: Optional[int] = typer.Option(None, "--llm-context", min=512,
                                              help="openai: the served model's context length in tokens, when the "
                                                   "server does not state it (vLLM and llama-server do; a server that "
                                                   "refuses a longer prompt says it too)."),
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
                        budget=Budget.parse(budget) if budget else None, on_event=on_event, thread_id=thread,
                        answer_seconds=answer_seconds, **({"context": context} if context else {}))
    except AgentError as e:
        error(e)
        raise typer.Exit(2)
    if as_json:
        emit_json(ans.to_dict())
        return
    say(ans.render(trace=trace))


# The commands that live in their own modules (sleuth.commands), in the order `sleuth -h` lists them
# after the ones above.
app.command(name="models")(models_commands.models)
app.command(name="eval")(eval_commands.eval_cmd)
app.command(name="demo")(demo_commands.demo)
app.command(name="ls")(manage.ls_cmd)
app.command(name="rm")(manage.rm_cmd)
app.command(name="outline")(manage.outline_cmd)
app.command(name="mcp")(serve_commands.mcp_cmd)
app.command(name="serve")(serve_commands.serve_cmd)


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


if __name__ == "__main__":
    main()
