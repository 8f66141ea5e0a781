"""A real HTTP server on 127.0.0.1 speaking the chat-completions protocol, for the openai backend.

``FakeOpenAI(responder)`` runs ``http.server`` in a thread; ``responder(request_json)`` returns
the assistant message dict (``{"content": …}`` or ``{"tool_calls": […]}``) or ``(status, body)``
for an error. Requests are recorded in ``.requests``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self, responder, model: str = "fake-model"):
        self.responder = responder
        self.model = model
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep pytest output clean
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/v1/models"):
                    self._send(200, {"object": "list", "data": [{"id": fake.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):
                if not self.path.rstrip("/").endswith("/v1/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                fake.requests.append(req)
                fake.headers.append(dict(self.headers))
                out = fake.responder(req)
                if isinstance(out, tuple):
                    self._send(out[0], out[1])
                    return
                msg = {"role": "assistant", "content": out.get("content")}
                if out.get("tool_calls"):
                    msg["tool_calls"] = [{"id": tc.get("id", f"call_{i}"), "type": "function",
                                          "function": {"name": tc["name"], "arguments": tc["arguments"]
                                                       if isinstance(tc["arguments"], str) else json.dumps(tc["arguments"])}}
                                         for i, tc in enumerate(out["tool_calls"])]
                prompt = sum(len(str(m.get("content") or "").split()) for m in req["messages"])
                self._send(200, {"id": "cmpl-1", "object": "chat.completion", "created": int(time.time()),
                                 "model": req.get("model"),
                                 "choices": [{"index": 0, "message": msg,
                                              "finish_reason": "tool_calls" if out.get("tool_calls") else "stop"}],
                                 "usage": {"prompt_tokens": prompt, "completion_tokens": 7, "total_tokens": prompt + 7}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
