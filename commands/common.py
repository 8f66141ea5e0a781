"""What the commands share: the library options, opening a library or exiting with one line,
``--json`` output, and one line for an error nobody expected."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ..core import inert_json
from . import terminal

LIB_OPT = typer.Option(None, "--library", "-L", envvar="SLEUTH_LIBRARY",
                       help="Library folder or SQLAlchemy URL (default ./.sleuth).")
HOME_OPT = typer.Option(None, "--home", envvar="SLEUTH_HOME", help="Folder for vectors/assets when --library is a URL.")
JSON_OPT = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


def open_or_exit(library: Optional[str], home: Optional[str] = None, *, create: bool = False):
    """The library for a command, or exit 2 with one line. Read-only commands (``create=False``)
    never create one and open it read-only where it cannot be written (a read-only mount)."""
    from ..library import Library, mask_url

    where = library or ".sleuth"
    try:
        return Library(where, home=home, create=create)
    except Exception as e:  # missing, a bad URL, an unwritable folder, a damaged file: one line
        terminal.error(mask_url(f"{mask_url(where)}: {e}" if str(where) not in str(e) else str(e)))
        raise typer.Exit(2)


def emit_json(obj) -> None:
    """``--json`` output: one JSON document on stdout (UTF-8 as is, anything else as its str;
    characters a terminal would obey are escaped, so the data is unchanged but inert)."""
    sys.stdout.write(inert_json(obj, indent=2) + "\n")


def describe(e: BaseException) -> str:
    """One line for an unexpected exception: the object it names and the reason."""
    from ..library import mask_url

    orig = getattr(e, "orig", None)  # SQLAlchemy wraps the driver's error
    if orig is not None:
        return mask_url(f"database: {orig}")
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror or e}"
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return mask_url(f"{type(e).__name__}: {msg}" if msg else type(e).__name__)
