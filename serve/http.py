"""``sleuth serve``: the library over HTTP for many users at once, and MCP over streamable HTTP.

Every answer has the JSON shape of the matching command's ``--json`` output, from the same
:class:`sleuth.Library` calls: ``/search`` (``sleuth search``), ``/show/{node}`` (``sleuth show``),
``/outline`` (``sleuth outline``), ``/ls`` (``sleuth ls``), ``/status`` (``sleuth status``),
``/ask`` (``sleuth ask``, its agent events streamed as newline-delimited JSON before the
answer); ``/read``, ``/entity`` and ``/look`` return the tools' results. ``/mcp`` serves the
tool grammar of :mod:`sleuth.serve.mcp` to MCP clients (stateless streamable HTTP: any process
behind a load balancer can answer any request). ``/openapi.json`` describes the rest.

Read-only unless a write key was given: ``POST /index`` and ``POST /rm`` then need
``Authorization: Bearer KEY``. Errors are ``{"error": "one line"}`` with a status code, never a
traceback; the text of documents, queries and file names is data, never markup.

Endpoints return their JSON responses themselves: FastAPI's encoding of a returned list of 8
hits took 1.0 ms of the interpreter's lock per request, ``json.dumps`` 0.13 ms. Threads: FastAPI runs each request's (blocking) library call in a worker thread. What the
library shares between them is safe to share: SQLAlchemy sessions are made per call from a
pooled engine, faiss searches hold the vector store's lock, the ONNX session and the tantivy
searcher are safe to call from many threads, the rank tables load under their own lock. This
server's own writes and the :class:`~sleuth.serve.follow.Follower`'s heals take turns on one
lock.

Searches and reads take turns through one gate of ``reads`` places, in arrival order. Each is
CPU work (the query's transformer pass, faiss, tantivy, the rows' decoding) with short database
waits, and Python runs one thread at a time: with every request of 50 closed-loop clients in a
thread at once, they took turns at random, and on 2 cores p95 was 1,206 ms where p50 was 491;
through the default gate (4 places) p50 495, p95 621 ms, with 15% more searches a second
(with httptools and uvloop beside it; benchmarks/bench_serve.py, README). ``/ask`` and the writes do not pass it: an answer
streams for seconds and must not hold a place searches wait for.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import json
import logging
import os
import queue
import threading
from typing import Any, Optional

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..core import ReaderError, inert_json
from ..index.navigate import listing, node_in_context, whole_outline
from ..library import DiskFull, Library, LibraryBusy, mask_url
from .follow import Follower
from .limits import Limits, TokenBuckets

log = logging.getLogger("sleuth.serve")

#: worker threads for blocking library calls (anyio's default is 40): the ask streams and writes
#: each hold one for as long as they run; searches and reads hold at most ``reads`` of them
THREADS = 64


def default_reads() -> int:
    """Searches and reads at once: two per core (one waits on the database while one computes;
    on 2 cores a gate of 2 and of 4 gave the same p95 within 4%)."""
    return max(2, 2 * (os.cpu_count() or 1))


def dumps(obj: Any) -> str:
    return inert_json(obj)  # the same rule as `--json`


class SafeJSON(JSONResponse):
    """JSON as ``--json`` writes it (minus the indentation), never sniffed as anything else."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")

    def init_headers(self, headers=None) -> None:
        super().init_headers(headers)
        self.raw_headers.append((b"x-content-type-options", b"nosniff"))


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def one_line(e: BaseException) -> str:
    """An exception as one line naming what failed and why (database URLs masked)."""
    orig = getattr(e, "orig", None)  # SQLAlchemy wraps the driver's error
    if orig is not None:
        msg = f"database: {orig}"
    elif isinstance(e, KeyError) and e.args:
        msg = str(e.args[0])
    elif isinstance(e, OSError) and e.filename and not isinstance(e, DiskFull):
        msg = f"{e.filename}: {e.strerror or e}"
    else:
        msg = str(e).strip() or type(e).__name__
    return mask_url(" ".join(msg.split())[:500])


def _status_of(e: BaseException) -> int:
    if isinstance(e, ApiError):
        return e.status
    if isinstance(e, KeyError):
        return 404
    if isinstance(e, (ValueError, ReaderError)):
        return 400
    if isinstance(e, LibraryBusy):
        return 409
    if isinstance(e, DiskFull):
        return 507
    if isinstance(e, PermissionError):
        return 403
    return 500


def _err(status: int, message: str, headers: dict | None = None) -> SafeJSON:
    return SafeJSON({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


# -- request bodies -----------------------------------------------------------------------------
class AskBody(BaseModel):
    question: str = Field(..., description="the question; the answer cites exact places", max_length=4000)
    budget: Optional[str] = Field(None, description="limits, e.g. rounds=3,calls=12,tokens=6000,seconds=60")
    within: Optional[list[str]] = Field(None, description="search only these indexed files (names or paths)")
    stream: bool = Field(True, description="newline-delimited JSON events, then the answer; false: the answer alone")


class IndexBody(BaseModel):
    paths: list[str] = Field(..., min_length=1, description="files and folders on the server's disk")
    prune: bool = False
    force: bool = False
    ocr: str = "auto"
    asr: str = "auto"


class RemoveBody(BaseModel):
    sources: list[str] = Field(..., min_length=1, description="indexed files: a path, or a name only one source has")


# -- the app ------------------------------------------------------------------------------------
def build_app(lib: Library, *, write_key: str | None = None, llm_options: dict[str, Any] | None = None,
              max_body: int = 1 << 20, rate: float = 20.0, burst: float | None = None, follow_every: float = 1.0,
              host: str = "127.0.0.1", mcp_concurrency: int = 8, reads: int | None = None):
    """The ASGI app serving ``lib``: the HTTP API, ``/mcp``, and the limits around both.

    ``rate`` (requests a second per client address; 0: no limit) and ``max_body`` (bytes) are
    enforced before any route runs. ``reads``: searches and reads run at once (default
    :func:`default_reads`); the others wait in arrival order. The library is closed when the app
    shuts down."""
    import anyio
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings

    from .. import __version__
    from .mcp import build_server

    llm_options = dict(llm_options or {})
    writing = threading.Lock()
    gate = anyio.CapacityLimiter(reads or default_reads())  # anyio wakes its waiters first come, first served

    async def through_gate(fn, *args, **kw):
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kw), limiter=gate)

    follower = Follower(lib, every=follow_every, writing=writing)
    # the follower checks the database's generation every follow_every seconds: a search need
    # not check it again (a database round trip of its own)
    lib.refresh_every = follow_every
    local = host in ("127.0.0.1", "localhost", "::1")
    # a page in a browser on this machine must not reach a local server through a name it
    # controls (DNS rebinding): the SDK's own defaults for a local server
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]) if local else None
    mcp_manager = StreamableHTTPSessionManager(
        app=build_server(lib, llm_options, concurrency=mcp_concurrency), json_response=True, stateless=True,
        security_settings=security, max_request_body_size=max_body)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        follower.start()
        try:
            async with mcp_manager.run():
                yield
        finally:
            follower.stop()
            with writing:
                lib.close()

    app = FastAPI(title="sleuth", version=__version__, lifespan=lifespan, default_response_class=SafeJSON,
                  description="Located retrieval over the documents and videos of a sleuth library. "
                              "Every hit names its place (file, page and box, or time span). "
                              "MCP clients: streamable HTTP at /mcp.")
    app.state.lib, app.state.follower = lib, follower

    async def on_error(request: Request, e: Exception):
        return _err(_status_of(e), one_line(e))

    # the errors a request can cause map to 4xx; anything else is a bug: 500 with one line (the
    # traceback goes to the server's log, not to the client)
    for cls in (ApiError, KeyError, ValueError, ReaderError, LibraryBusy, DiskFull, PermissionError, Exception):
        app.add_exception_handler(cls, on_error)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, e: StarletteHTTPException):
        msg = e.detail if isinstance(e.detail, str) else json.dumps(e.detail)
        if e.status_code == 404 and msg == "Not Found":
            msg = f"no such endpoint: {request.url.path} (see /openapi.json)"
        return _err(e.status_code, msg, getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, e: RequestValidationError):
        first = (e.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return _err(422, f"{where or 'request'}: {first.get('msg', 'invalid')}"
                         + (f" ({len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""))

    def may_write(request: Request) -> None:
        if not write_key:
            raise ApiError(403, "this server is read-only: start it with --write-key (or SLEUTH_WRITE_KEY) to allow writes")
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), write_key.encode()):
            raise ApiError(403, "writes need the server's write key: Authorization: Bearer KEY")

    # -- read-only endpoints (the commands' --json shapes) ---------------------------------
    @app.get("/search", summary="Located search (sleuth search --json)")
    async def search(q: str = Query(..., min_length=1, max_length=2000, description="the query"),
                     level: str = Query("any", description="any, source, coarse, fine, entity, or a node kind"),
                     within: Optional[str] = Query(None, description="a node id or a source name to search under"),
                     k: int = Query(8, ge=1, le=100)):
        return SafeJSON(await through_gate(lib.search, q, level=level, within=within, k=k))

    @app.get("/show/{node}", summary="A node in its context (sleuth show --json)")
    async def show(node: int):
        return SafeJSON(await through_gate(node_in_context, lib, node))

    @app.get("/read", summary="Contiguous content under a node, with a cursor (the read tool)")
    async def read(node: int, start: Optional[float] = None, end: Optional[float] = None,
                   max_tokens: int = Query(800, ge=1, le=20_000)):
        return SafeJSON(await through_gate(lib.read, node, start=_num(start), end=_num(end), max_tokens=max_tokens))

    @app.get("/outline", summary="A document's sections or a video's scenes (sleuth outline --json)")
    async def outline(source: str = Query(..., description="an indexed file (path or name) or a node id"),
                      depth: int = Query(3, ge=1, le=20)):
        def work():
            if source.isdigit():
                root_id = int(source)
                lib.get_node(root_id)
            else:
                root_id = lib.find_source(source)["root_id"]
            return {"root": root_id, "depth": depth, "items": whole_outline(lib, root_id, depth)}
        return SafeJSON(await through_gate(work))

    @app.get("/entity", summary="An entity card with located mentions (the entity tool)")
    async def entity(name: str = Query(..., min_length=1, max_length=500, description="a name or an entity id")):
        return SafeJSON(await through_gate(lib.entity, int(name) if name.isdigit() else name))

    @app.get("/look", summary="Frame-level detail at a video moment, or a document node's page and box (the look tool)")
    async def look(at: str = Query(..., description="a node id, or source@seconds")):
        return SafeJSON(await through_gate(lib.look, int(at) if at.isdigit() else at))

    @app.get("/ls", summary="The library's documents and videos (sleuth ls --json)")
    async def ls():
        return SafeJSON(await through_gate(listing, lib))

    @app.get("/status", summary="Counts, sizes, the last run, recent failures (sleuth status --json)")
    async def status():
        return SafeJSON(await through_gate(lib.status))

    @app.get("/healthz", summary="Liveness, and how this process follows the database")
    async def healthz():  # on the event loop: it answers while every worker thread is busy
        return SafeJSON({"ok": True, "version": __version__, "writes": bool(write_key), "follow": follower.to_dict()})

    @app.post("/ask", summary="Answer with the agent (sleuth ask --json), its steps streamed as NDJSON",
              response_model=None)
    def ask(body: AskBody):
        from ..agent import AgentError, Budget
        from ..agent import ask as agent_ask

        question = " ".join(body.question.split())
        if not question:
            raise ApiError(400, "ask: empty question")
        try:
            budget = Budget.parse(body.budget) if body.budget else None
        except AgentError as e:
            raise ApiError(400, str(e)) from None
        kw = dict(llm_options, budget=budget, within=body.within or None)
        if not body.stream:
            try:
                return SafeJSON(agent_ask(lib, question, **kw).to_dict())
            except AgentError as e:
                raise ApiError(400, str(e)) from None
        return StreamingResponse(_ask_stream(lib, question, kw), media_type="application/x-ndjson",
                                 headers={"x-content-type-options": "nosniff"})

    # -- writes (with the key) -------------------------------------------------------------
    @app.post("/index", summary="Index files and folders on the server's disk (sleuth index --json); needs the write key",
              dependencies=[Depends(may_write)])
    def index(body: IndexBody):
        with writing:
            return SafeJSON(lib.add(body.paths, prune=body.prune, force=body.force, ocr=body.ocr, asr=body.asr).to_dict())

    @app.post("/rm", summary="Remove sources from the library (sleuth rm --json); needs the write key",
              dependencies=[Depends(may_write)])
    def rm(body: RemoveBody):
        found = [lib.find_source(name) for name in body.sources]  # all resolved first: none removed if one is wrong
        removed = []
        with writing:
            for src in found:
                if lib.remove(src["path"]):
                    removed.append({k: src[k] for k in ("id", "name", "path", "kind", "nodes")})
        return SafeJSON({"removed": removed})

    app.add_route("/mcp", StreamableHTTPASGIApp(mcp_manager), methods=["GET", "POST", "DELETE"], include_in_schema=False)
    return Limits(app, max_body=max_body, buckets=TokenBuckets(rate, burst) if rate > 0 else None)


def _num(x: float | None) -> float | int | None:
    """A whole number as an int (a document's paragraph index), anything else as is (seconds)."""
    return int(x) if x is not None and float(x).is_integer() else x


def _ask_stream(lib: Library, question: str, kw: dict):
    """The agent's events as they happen, one JSON line each, then ``{"type": "final", "answer":
    Answer.to_dict()}`` (or ``{"type": "error", "error": "one line"}``). Starlette iterates this
    in a worker thread; the agent runs in one more, so events leave as soon as they are made."""
    from ..agent import AgentError
    from ..agent import ask as agent_ask

    q: queue.Queue = queue.Queue()
    done = object()

    def work():
        try:
            ans = agent_ask(lib, question, on_event=q.put, **kw)
            q.put({"type": "final", "answer": ans.to_dict()})
        except AgentError as e:
            q.put({"type": "error", "error": str(e)})
        except Exception as e:  # noqa: BLE001 - the stream has started: the error is its last line
            log.error("ask: %s", one_line(e), exc_info=e)
            q.put({"type": "error", "error": one_line(e)})
        finally:
            q.put(done)

    threading.Thread(target=work, name="sleuth-ask", daemon=True).start()
    while (item := q.get()) is not done:
        yield (dumps(item) + "\n").encode("utf-8")
