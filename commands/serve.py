"""``sleuth mcp``: the library's tools to MCP clients over stdio (the server: :mod:`sleuth.serve.mcp`)."""

from __future__ import annotations

from typing import Optional

import typer

from .common import HOME_OPT, LIB_OPT, open_or_exit


def mcp_cmd(library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT,
            llm: str = typer.Option("none", envvar="SLEUTH_LLM",
                                    help="LLM for the ask tool: none (heuristic planner: fast, and the client has its own "
                                         "model), local, auto, openai, hf; as for `sleuth ask`."),
            base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (ask)."),
            model: Optional[str] = typer.Option(None, "--model", help="The ask tool's model, as for `sleuth ask --model`.")):
    """Serve the library's tools (search, read, outline, entity, look, ask) to MCP clients over stdio.

    stdout carries the protocol; everything else goes to stderr.
    """
    import anyio

    from ..serve.mcp import serve_stdio

    lib = open_or_exit(library, home)
    opts = {k: v for k, v in {"llm": llm, "base_url": base_url, "model": model}.items() if v}
    try:
        anyio.run(serve_stdio, lib, opts)
    except KeyboardInterrupt:
        pass
    finally:
        lib.close()
