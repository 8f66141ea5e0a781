"""The tool grammar as a Model Context Protocol server over stdio.

Built on the official ``mcp`` SDK's low-level :class:`mcp.server.lowlevel.Server`, because the
tools already have their JSON schemas: the ones the agent's policies see
(:data:`sleuth.agent.tools.TOOL_SCHEMAS`) are served unchanged as each tool's input schema, and
calls go through the same :func:`sleuth.agent.tools.run_tool` (argument checking, errors as
results). Tools are read-only. Results are the full tool results as structured content and as
JSON text, with every place located (page and box, or time span; ``label`` renders it).

``ask`` runs the whole agent with the LLM the server was started with (``--llm``, default the
heuristic planner) and returns the answer with its citations.
"""

from __future__ import annotations

import json
from typing import Any

SERVER_NAME = "sleuth"

ASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "description": "the question; the answer cites exact places"},
        "budget": {"type": "string", "description": "optional limits, e.g. rounds=3,calls=12,tokens=6000,seconds=60"},
    },
    "required": ["question"],
}
ASK_DESCRIPTION = ("Answer a question with sleuth's agent: it searches and reads the library in parallel rounds "
                   "and returns an answer whose citations name exact places (file, page, box or time span).")


def tool_list():
    """The MCP tool descriptions: the agent's five tools with their own schemas, plus ``ask``."""
    import mcp.types as types

    from ..agent.tools import TOOL_SCHEMAS

    ro = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    tools = [types.Tool(name=s["function"]["name"], description=s["function"]["description"],
                        input_schema=s["function"]["parameters"], annotations=ro) for s in TOOL_SCHEMAS]
    tools.append(types.Tool(name="ask", description=ASK_DESCRIPTION, input_schema=ASK_SCHEMA,
                            annotations=types.ToolAnnotations(read_only_hint=True, destructive_hint=False,
                                                              idempotent_hint=False, open_world_hint=False)))
    return tools


def call(lib, name: str, arguments: dict[str, Any] | None, llm_options: dict[str, Any]) -> dict:
    """One tool call, synchronously: the agent's tools via ``run_tool``; ``ask`` via the agent.
    Failures come back as ``{"error": "..."}``, as they do for the agent's policies."""
    from ..agent import AgentError, Budget, ask, run_tool

    if name != "ask":
        return run_tool(lib, name, arguments or {})
    args = arguments or {}
    question = str(args.get("question") or "").strip()
    if not question:
        return {"error": "ask: missing required argument question"}
    try:
        budget = Budget.parse(args["budget"]) if args.get("budget") else None
        return ask(lib, question, budget=budget, **llm_options).to_dict()
    except AgentError as e:
        return {"error": f"ask: {e}"}


def build_server(lib, llm_options: dict[str, Any] | None = None, concurrency: int = 1):
    """An MCP server over ``lib`` (not yet running). ``concurrency``: tool calls run at once (one
    client over stdio needs 1; ``sleuth serve`` serves many over HTTP)."""
    import anyio
    import mcp.types as types
    from mcp.server.lowlevel import Server

    from .. import __version__

    tools = tool_list()
    names = {t.name for t in tools}
    llm_options = dict(llm_options or {})
    # Library calls are blocking (SQLite, faiss, models): run them off the event loop, at most
    # ``concurrency`` at a time, so the session keeps answering pings while a search runs.
    limiter = anyio.CapacityLimiter(max(1, int(concurrency)))

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name not in names:
            result = {"error": f"unknown tool {params.name!r}; available: {', '.join(sorted(names))}"}
        else:
            result = await anyio.to_thread.run_sync(call, lib, params.name, params.arguments, llm_options,
                                                    limiter=limiter)
        text = json.dumps(result, ensure_ascii=False, default=str)
        return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=json.loads(text),
                                    is_error="error" in result)

    return Server(SERVER_NAME, version=__version__,
                  instructions=("Located retrieval over the documents and videos indexed in this sleuth library. "
                                "search finds places; read, outline, entity and look open them; ask answers with "
                                "citations. Every result names its place (file, page, box, or time span)."),
                  on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(lib, llm_options: dict[str, Any] | None = None) -> None:
    """Serve ``lib`` over stdin/stdout until the client closes the session (``sleuth mcp``)."""
    from mcp.server.stdio import stdio_server

    server = build_server(lib, llm_options)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
