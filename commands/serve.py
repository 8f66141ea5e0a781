"""``sleuth mcp``: the library's tools to MCP clients over stdio (the server: :mod:`sleuth.serve.mcp`);
``sleuth serve``: the library over HTTP and MCP over streamable HTTP (:mod:`sleuth.serve.http`)."""

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


def serve_cmd(library: Optional[str] = LIB_OPT, home: Optional[str] = HOME_OPT,
              host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; 0.0.0.0 opens it to the network."),
              port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on."),
              write_key: Optional[str] = typer.Option(None, "--write-key", envvar="SLEUTH_WRITE_KEY",
                                                      help="Allow POST /index and /rm to clients sending "
                                                           "'Authorization: Bearer KEY'; without it the server is read-only."),
              llm: str = typer.Option("none", envvar="SLEUTH_LLM",
                                      help="LLM behind ask: none (heuristic planner), local, auto, openai, hf; "
                                           "as for `sleuth ask`. Loaded once, at start."),
              base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (ask)."),
              model: Optional[str] = typer.Option(None, "--model", help="ask's model, as for `sleuth ask --model`."),
              max_body: int = typer.Option(1 << 20, "--max-body", min=1024, help="Largest request body in bytes (413 above)."),
              rate: float = typer.Option(20.0, "--rate", min=0.0,
                                         help="Requests a second per client address, twice that at once (429 above); 0: no limit."),
              follow: float = typer.Option(1.0, "--follow", min=0.1, max=60.0,
                                           help="Seconds between checks for what other processes committed."),
              reads: Optional[int] = typer.Option(None, "--reads", min=1,
                                                  help="Searches and reads run at once (default: 2 per core); "
                                                       "the others wait their turn in arrival order.")):
    """Serve the library over HTTP to many users (search, read, outline, show, ls, status, ask) and to MCP clients over streamable HTTP at /mcp; the API is described at /openapi.json.

    Read-only unless --write-key is given. Several servers, each with its own --home, can serve one PostgreSQL library while another process indexes into it: each follows the database.
    """
    import uvicorn

    from ..agent import AgentError, make_policy
    from ..serve.http import build_app
    from . import terminal

    if write_key is not None and len(write_key) < 8:
        terminal.error("--write-key: use at least 8 characters")
        raise typer.Exit(2)
    lib = _open(library, home, create=bool(write_key))
    opts = {k: v for k, v in {"llm": llm, "base_url": base_url, "model": model}.items() if v}
    try:
        make_policy(llm, base_url=base_url, model=model)  # a local model loads now, once, not at the first ask
    except (AgentError, ValueError, OSError) as e:
        lib.close()
        terminal.error(f"--llm {llm}: {' '.join(str(e).split())}")
        raise typer.Exit(2)
    app = build_app(lib, write_key=write_key, llm_options=opts, max_body=max_body, rate=rate, follow_every=follow,
                    host=host, reads=reads)
    mode = "writes with the key" if write_key else "read-only"
    terminal.say(f"sleuth serve: http://{host}:{port} ({mode}; API at /openapi.json, MCP at /mcp)", stream=terminal.err)
    # keep-alive well past a client's pause: at uvicorn's default 5 s a connection the server
    # closes just as a pooled client reuses it fails that request (the one error, a ReadError, in
    # 1,203 searches of a benchmark run looked like this)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_keep_alive=75,
                timeout_graceful_shutdown=5)


def _open(library: Optional[str], home: Optional[str], *, create: bool):
    """The library as :func:`open_or_exit` opens it, with a query embedder for many users: one
    ONNX thread per query. Concurrent requests then run side by side instead of each splitting
    the cores between its own threads (a query embedded in 3.1 ms on one thread, 6.3 ms on two,
    with other work on the machine)."""
    from ..index.embed import Embedder
    from ..library import Library, mask_url
    from . import terminal

    where = library or ".sleuth"
    try:
        return Library(where, home=home, create=create, embedder=Embedder(threads=1))
    except Exception as e:  # missing, a bad URL, an unwritable folder, a damaged file: one line
        terminal.error(mask_url(f"{mask_url(where)}: {e}" if str(where) not in str(e) else str(e)))
        raise typer.Exit(2)
