"""``sleuth ls``, ``sleuth rm`` and ``sleuth outline``: what is in the library, taking a file out,
and a document's or video's structure with node ids, pages and times.

File names, titles and section headings are document text: printed through
:mod:`sleuth.commands.terminal` (no markup, control characters removed).
"""

from __future__ import annotations

from typing import List, Optional

import typer
from rich.table import Table

from ..core import fmt_time
from . import terminal
from .common import HOME_OPT, JSON_OPT, LIB_OPT, emit_json, open_or_exit

console = terminal.out


def _fail(msg: str, code: int) -> None:
    terminal.error(msg)
    raise typer.Exit(code)


def _lookup(lib, fn):
    """``fn()`` for a name or id the user gave; a missing (KeyError) or ambiguous (ValueError) one
    is a usage error, exit 2, with the library closed."""
    try:
        return fn()
    except KeyError as e:
        lib.close()
        _fail(e.args[0], 2)
    except ValueError as e:
        lib.close()
        _fail(str(e), 2)


def _span(d: dict) -> str:
    """``12 pages`` for a document, ``00:10:00`` (its duration) for a video."""
    if d.get("duration") is not None:
        return fmt_time(d["duration"])
    if d.get("pages"):
        return f"{d['pages']} page{'s' if d['pages'] != 1 else ''}"
    return ""


def ls_cmd(library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT, as_json: bool = JSON_OPT):
    """List the library's documents and videos: pages or duration, status, when indexed."""
    lib = open_or_exit(library, home)
    from ..index.navigate import listing

    rows = listing(lib)
    lib.close()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        terminal.say("the library is empty: add files with `sleuth index PATH`")
        return
    t = Table(show_edge=False, pad_edge=False)
    for col, just in (("name", "left"), ("kind", "left"), ("length", "right"), ("nodes", "right"),
                      ("status", "left"), ("indexed", "left")):
        t.add_column(col, justify=just, overflow="fold" if col == "name" else "ellipsis",
                     no_wrap=col != "name")
    style = {"indexed": "green", "modified": "yellow", "missing": "yellow", "failed": "red"}
    for r in rows:
        t.add_row(terminal.text(terminal.one_line(r["name"])), r["kind"] or "", _span(r), str(r["nodes"] or ""),
                  terminal.text((r["status"], style.get(r["status"], ""))), (r["indexed_at"] or "")[:16].replace("T", " "))
    console.print(t)
    for r in rows:
        if r.get("reason"):
            terminal.error(r["reason"], label="failed:")


def rm_cmd(sources: List[str] = typer.Argument(..., metavar="SOURCE...", help="Indexed files: a path, or a file name only one source has."),
           library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT, as_json: bool = JSON_OPT):
    """Remove documents or videos from the library (the files themselves are not touched)."""
    from ..library import LibraryBusy

    lib = open_or_exit(library, home)
    # resolve them all first: nothing is removed if one is wrong
    found = _lookup(lib, lambda: [lib.find_source(name) for name in sources])
    removed = []
    try:
        for src in found:
            if lib.remove(src["path"]):
                removed.append({k: src[k] for k in ("id", "name", "path", "kind", "nodes")})
    except LibraryBusy as e:
        lib.close()
        _fail(str(e), 3)
    except PermissionError as e:  # a read-only library
        lib.close()
        _fail(str(e), 2)
    lib.close()
    if as_json:
        emit_json({"removed": removed})
        return
    for r in removed:
        terminal.say("removed ", terminal.one_line(r["path"]), f" ({r['nodes']} nodes)")


def outline_cmd(source: str = typer.Argument(..., help="An indexed file (path or name) or a node id."),
                depth: int = typer.Option(3, "--depth", "-d", min=1, max=20, help="Levels below SOURCE to show."),
                library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT, as_json: bool = JSON_OPT):
    """A document's sections or a video's scenes as a tree, with node ids, pages and times."""
    lib = open_or_exit(library, home)
    if source.isdigit():
        root_id = int(source)
        _lookup(lib, lambda: lib.get_node(root_id))
    else:
        root_id = _lookup(lib, lambda: lib.find_source(source))["root_id"]
    from ..index.navigate import whole_outline

    items = whole_outline(lib, root_id, depth)
    lib.close()
    if as_json:
        emit_json({"root": root_id, "depth": depth, "items": items})
        return
    for it in items:
        loc = it["locator"]
        if loc.get("t_start") is not None:
            where = fmt_time(loc["t_start"]) + ("–" + fmt_time(loc["t_end"]) if loc.get("t_end") is not None else "")
        elif loc.get("page") is not None:
            end = it.get("page_end")
            where = f"p.{loc['page']}" + (f"–{end}" if end and end != loc["page"] else "")
        else:
            where = ""
        terminal.say(f"{'  ' * it['depth']}#{it['id']} {it['kind']}: ", terminal.one_line(it["title"]), (f"  {where}" if where else ""))
