"""What ``sleuth serve`` refuses before any of its work starts: bodies over a size (413) and
clients past a request rate (429).

Both are plain ASGI middleware, so they guard every route alike, the MCP endpoint included, and
answer with the server's one-line JSON error. The rate is a token bucket per client address
(no installed library does this for ASGI; it is a few lines): ``rate`` requests a second on
average, ``burst`` at once. Behind a reverse proxy every request comes from the proxy's address;
the limit then applies to all clients together (``--rate 0`` turns it off there).
"""

from __future__ import annotations

import json
import math
import time
from typing import Callable


def error_body(message: str) -> bytes:
    """``{"error": "one line"}`` as the server sends it."""
    return json.dumps({"error": " ".join(str(message).split())}, ensure_ascii=False, separators=(",", ":")).encode()


async def send_error(send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = error_body(message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff"), *headers]})
    await send({"type": "http.response.body", "body": body})


class TokenBuckets:
    """One token bucket per key: ``take(key)`` spends a token and returns 0.0, or returns the
    seconds until one is there (nothing spent). Not locked: the middleware calls it from the
    event loop's one thread."""

    def __init__(self, rate: float, burst: float | None = None, *, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        if not rate > 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, 2 * rate))
        self.max_keys = max_keys
        self.clock = clock
        self._b: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        now = self.clock()
        tokens, at = self._b.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._b[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._b[key] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        if len(self._b) > self.max_keys:
            self._forget(now)
        return wait

    def _forget(self, now: float) -> None:
        """Drop the buckets that have filled up again (a new bucket starts full: same answer);
        if every client is still busy, the oldest half, so memory stays bounded."""
        full = [k for k, (t, at) in self._b.items() if t + (now - at) * self.rate >= self.burst]
        for k in full:
            del self._b[k]
        if len(self._b) > self.max_keys:
            for k, _ in sorted(self._b.items(), key=lambda kv: kv[1][1])[: len(self._b) // 2]:
                del self._b[k]


class Limits:
    """ASGI middleware: 429 for a client past its rate, 413 for a body over ``max_body`` bytes
    (by its Content-Length before reading; a chunked body is read first, up to the limit)."""

    def __init__(self, app, *, max_body: int, buckets: TokenBuckets | None = None):
        self.app = app
        self.max_body = int(max_body)
        self.buckets = buckets

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.buckets is not None:
            client = (scope.get("client") or ("?", 0))[0]
            wait = self.buckets.take(client)
            if wait:
                return await send_error(send, 429, f"too many requests from {client}: at most {self.buckets.rate:g} "
                                                   f"a second; retry in {wait:.1f} s",
                                        [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
        length = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return await send_error(send, 400, "Content-Length is not a number")
            if n > self.max_body:
                return await send_error(send, 413, f"request body of {n} bytes is over the limit of {self.max_body}")
        elif any(k == b"transfer-encoding" for k, _ in scope.get("headers", ())):
            # chunked: read it whole (it is at most max_body) before the app sees it, since
            # frameworks turn an error raised while they read a body into their own 400
            body, more = [], True
            size = 0
            while more:
                msg = await receive()
                if msg["type"] != "http.request":
                    return  # the client went away
                size += len(msg.get("body", b""))
                if size > self.max_body:
                    return await send_error(send, 413, f"request body is over the limit of {self.max_body} bytes")
                body.append(msg.get("body", b""))
                more = msg.get("more_body", False)
            replay = [{"type": "http.request", "body": b"".join(body), "more_body": False}]

            async def replayed():
                return replay.pop() if replay else await receive()

            return await self.app(scope, replayed, send)
        await self.app(scope, receive, send)
