"""``sleuth demo``: the README's demo (its corpus and questions: :mod:`sleuth.samples.demo`)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import JSON_OPT
from .terminal import say


def demo(workdir: Path = typer.Option(Path("demo_out"), help="Where the sample corpus and its library go."),
         as_json: bool = JSON_OPT):
    """Generate a sample corpus, index it, and answer questions about it (no network, no GPU)."""
    from ..samples.demo import run_demo

    raise typer.Exit(run_demo(workdir, as_json=as_json, say=say))
