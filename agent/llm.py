"""LLM backends behind one call: ``chat(messages, tools) -> LLMReply``.

* :class:`OpenAIChat` — any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI)
  over plain httpx against ``/v1/chat/completions``, with native tool calls; when a server
  rejects ``tools`` it falls back to tools described in the prompt and parsed from text.
* :class:`HFChat` — a local transformers model with its chat template; long prompts use the
  ``sleuth_sparse`` attention from :mod:`sleuth.kernels.hf` when that module is importable.
* :class:`~sleuth.agent.llm_local.LlamaCppChat` (``local``) — a GGUF model in-process through
  llama.cpp, by default Qwen2.5-Coder-1.5B-Instruct (see :mod:`sleuth.agent.models`).
* ``none`` — no model: the heuristic planner (see :mod:`sleuth.agent.planner`).

Messages are OpenAI-shaped dicts everywhere (that is also what the graph checkpoints).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .budget import AgentError
from .chat import ChatLLM, LLMContextError, LLMError, LLMReply, LLMTimeout, as_text_messages, tools_prompt  # noqa: F401  (the backends' API)


# -- OpenAI-compatible servers ----------------------------------------------------------------

def _base_url(base_url: str | None, api_key: str | None) -> str:
    url = base_url or os.environ.get("SLEUTH_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
    if not url:
        if api_key or os.environ.get("OPENAI_API_KEY"):
            url = "https://api.openai.com/v1"
        else:
            raise LLMError("no LLM server: pass --base-url (e.g. http://localhost:8000/v1) or set SLEUTH_BASE_URL")
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        url = url[: -len("/chat/completions")]
    if "/" not in url.split("://", 1)[-1]:  # a bare host:port means the usual /v1 root
        url += "/v1"
    return url


class OpenAIChat:
    name = "openai"

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None, *,
                 timeout: float = 120.0, retries: int = 3, backoff: float = 0.5, temperature: float = 0.0,
                 max_tokens: int = 1024, tool_mode: str = "auto", client=None, context: int | None = None):
        import httpx

        self.base_url = _base_url(base_url, api_key)
        self.api_key = api_key or os.environ.get("SLEUTH_API_KEY") or os.environ.get("OPENAI_API_KEY") or ""
        self.model = model or os.environ.get("SLEUTH_MODEL")
        self.timeout, self.retries, self.backoff = timeout, max(1, retries), backoff
        self.temperature, self.max_tokens = temperature, max_tokens
        if tool_mode not in ("auto", "native", "text"):
            raise LLMError(f"tool_mode must be auto, native or text, not {tool_mode!r}")
        self.native_tools = tool_mode != "text"
        self.tool_mode = tool_mode
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self.client = client or httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        #: prompt tokens per second, learned from the server's replies (None until one arrived)
        self.prefill_tps: float | None = None
        #: written tokens per second and a call's fixed seconds: known once :meth:`calibrate` measured
        self.gen_tps: float | None = None
        self.overhead_s = 0.0
        #: the model's context length: given (``context``), found by :meth:`calibrate`, or learned
        #: from the server's refusal of a longer prompt; None while unknown
        self.max_ctx: int | None = int(context) if context else None
        self._calibrated = False

    #: a written token costs about this many prompt tokens (154 vs 34 tokens/s for a 1.5B model on
    #: two cores); before the speeds are measured apart, one reply's time gives one equation
    GEN_COST = 4.5

    def estimate_seconds(self, prompt_tokens: int, max_tokens: int) -> float | None:
        """Expected seconds for a call, from the speeds measured so far; None before any."""
        if not self.prefill_tps:
            return None
        if self.gen_tps:
            return self.overhead_s + prompt_tokens / self.prefill_tps + max_tokens / self.gen_tps
        return (prompt_tokens + self.GEN_COST * max_tokens) / self.prefill_tps

    def calibrate(self) -> None:
        """Find out, once, the model's context length (what the server says about itself) and its
        prefill and generation speeds (measured, or a measurement of this server and model from
        the last day). What cannot be found stays unknown; nothing here raises."""
        if self._calibrated:
            return
        self._calibrated = True
        from . import models, server_probe as sp

        try:
            model = self.resolve_model()
        except LLMError:
            return
        if not self.max_ctx:
            listing = None
            try:
                listing = self._request("GET", "/models", None, min(self.timeout, 15))
            except LLMError:
                pass
            self.max_ctx = sp.context_from_listing(listing, None, model)
            if self.max_ctx is None:
                try:  # llama-server keeps /props beside /v1, at the root
                    r = self.client.get(self.base_url.rsplit("/v1", 1)[0] + "/props", timeout=min(self.timeout, 15))
                    props = r.json() if r.status_code == 200 else None
                except Exception:  # noqa: BLE001 - any other server: no /props
                    props = None
                self.max_ctx = sp.context_from_listing(None, props, model)
        key = sp.speed_key(self.base_url, model)
        known = sp.known_speed(key)
        if known is None:
            try:
                known = sp.measure(self)
            except (LLMError, ValueError):
                return
            models.record_speed(key, known["prefill_tokens_per_s"], known["generate_tokens_per_s"],
                                overhead_s=round(known["overhead_s"], 3), **({"n_ctx": self.max_ctx} if self.max_ctx else {}))
        self.prefill_tps = float(known["prefill_tokens_per_s"])
        self.gen_tps = float(known["generate_tokens_per_s"])
        self.overhead_s = float(known.get("overhead_s") or 0.0)

    def _learn(self, reply: "LLMReply", timings: dict | None = None) -> None:
        # llama-server reports its own timings: exact speeds, no equation to solve
        if isinstance(timings, dict) and timings.get("prompt_ms") and timings.get("predicted_ms"):
            pn, pms = float(timings.get("prompt_n") or 0), float(timings["prompt_ms"])
            gn, gms = float(timings.get("predicted_n") or 0), float(timings["predicted_ms"])
            if pn >= 32 and pms > 0:
                tps = 1000.0 * pn / pms
                self.prefill_tps = tps if self.prefill_tps is None else 0.7 * self.prefill_tps + 0.3 * tps
            if gn >= 8 and gms > 0:
                tps = 1000.0 * gn / gms
                self.gen_tps = tps if self.gen_tps is None else 0.7 * self.gen_tps + 0.3 * tps
            return
        fresh = reply.tokens_in - reply.cached_tokens
        if self.gen_tps and self.prefill_tps:
            # speeds measured apart: a long prompt's time, less its writing, updates the prefill speed
            pre_s = reply.seconds - self.overhead_s - reply.tokens_out / self.gen_tps
            if fresh >= 256 and pre_s > 0.25 * reply.seconds:
                self.prefill_tps = 0.7 * self.prefill_tps + 0.3 * fresh / pre_s
            return
        work = fresh + self.GEN_COST * reply.tokens_out
        if reply.seconds <= 0 or work < 16:
            return
        tps = work / reply.seconds
        self.prefill_tps = tps if self.prefill_tps is None else 0.7 * self.prefill_tps + 0.3 * tps

    def _request(self, method: str, path: str, payload: dict | None, timeout: float | None) -> dict:
        import httpx

        last = ""
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                r = self.client.request(method, path, json=payload, timeout=timeout or self.timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                last = f"cannot reach the LLM server at {self.base_url} ({_reason(e)})"
                continue
            except httpx.TimeoutException:
                raise LLMTimeout(f"the LLM server at {self.base_url} did not answer within {timeout or self.timeout:.0f} s") from None
            except httpx.HTTPError as e:
                last = f"LLM server at {self.base_url} failed: {_reason(e)}"
                continue
            if r.status_code in (429, 500, 502, 503, 504):
                last = f"LLM server at {self.base_url} answered HTTP {r.status_code}: {_body(r)}"
                continue
            if r.status_code >= 400:
                raise _HTTPStatus(r.status_code, f"LLM server at {self.base_url} answered HTTP {r.status_code}: {_body(r)}",
                                  r.text[:4000])
            try:
                return r.json()
            except ValueError:
                raise LLMError(f"LLM server at {self.base_url} sent a reply that is not JSON: {r.text[:120]!r}") from None
        raise LLMError(last + (f" after {self.retries} tries" if self.retries > 1 else ""))

    def resolve_model(self) -> str:
        """The configured model, else the first one the server lists (vLLM and llama.cpp serve one)."""
        if self.model:
            return self.model
        data = self._request("GET", "/models", None, min(self.timeout, 15))
        models = [m.get("id") for m in data.get("data", []) if m.get("id")]
        if not models:
            raise LLMError(f"no model given and {self.base_url}/models lists none: pass --model or set SLEUTH_MODEL")
        self.model = models[0]
        return self.model

    def chat(self, messages: list[dict], tools: list[dict] | None = None, *, timeout: float | None = None,
             max_tokens: int | None = None, learn: bool = True) -> LLMReply:
        """One chat completion. A prompt the server refuses as longer than its context raises
        :class:`LLMContextError` with the length it stated (kept in :attr:`max_ctx`)."""
        t0 = time.perf_counter()
        model = self.resolve_model()
        native = bool(tools) and self.native_tools
        payload: dict[str, Any] = {"model": model, "temperature": self.temperature,
                                   "max_tokens": int(max_tokens or self.max_tokens)}
        if native:
            payload["messages"] = [_clean(m) for m in messages]
            payload["tools"] = tools
            payload["tool_choice"] = "auto"
        else:
            payload["messages"] = as_text_messages(messages, tools) if tools or _has_tool_turns(messages) else [_clean(m) for m in messages]
        try:
            data = self._request("POST", "/chat/completions", payload, timeout)
        except _HTTPStatus as e:
            # Servers started without tool support (vLLM without --enable-auto-tool-choice, some
            # llama.cpp builds) answer 400 to `tools`; describe the tools in the prompt instead.
            from .server_probe import context_from_error

            n_ctx, prompt_tokens = context_from_error(e.raw)
            if n_ctx and e.status in (400, 413, 422, 500):
                self.max_ctx = n_ctx
                raise LLMContextError(str(e), n_ctx, prompt_tokens) from None
            if native and self.tool_mode == "auto" and e.status in (400, 404, 422, 500):
                self.native_tools = False
                return self.chat(messages, tools, timeout=timeout, max_tokens=max_tokens, learn=learn)
            raise LLMError(str(e)) from None
        try:
            msg = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise LLMError(f"LLM server at {self.base_url} sent no choices: {json.dumps(data)[:160]}") from None
        calls = []
        for i, tc in enumerate(msg.get("tool_calls") or []):
            f = tc.get("function") or {}
            calls.append({"id": tc.get("id") or f"call_{uuid.uuid4().hex[:8]}_{i}", "name": f.get("name", ""),
                          "arguments": f.get("arguments", "")})
        usage = data.get("usage") or {}
        content = msg.get("content") or ""
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        cached = int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
        reply = LLMReply(content=content, tool_calls=calls, tokens_in=int(usage.get("prompt_tokens") or 0),
                         tokens_out=int(usage.get("completion_tokens") or 0), native=native,
                         seconds=time.perf_counter() - t0, cached_tokens=cached)
        if learn:
            self._learn(reply, data.get("timings"))
        return reply


class _HTTPStatus(Exception):
    def __init__(self, status: int, msg: str, raw: str = ""):
        super().__init__(msg)
        self.status, self.raw = status, raw or msg


def _reason(e: Exception) -> str:
    s = " ".join(str(e).split())
    if "refused" in s.lower() or "errno 111" in s.lower():
        return "connection refused"
    return s[:120] or type(e).__name__


def _body(r) -> str:
    try:
        d = r.json()
        err = d.get("error") if isinstance(d, dict) else None
        msg = (err.get("message") if isinstance(err, dict) else err) or d.get("detail") or d
        return " ".join(str(msg).split())[:200]
    except ValueError:
        return " ".join(r.text.split())[:200]


def _has_tool_turns(messages: list[dict]) -> bool:
    return any(m.get("role") == "tool" or m.get("tool_calls") for m in messages)


def _clean(m: dict) -> dict:
    out = {k: v for k, v in m.items() if k in ("role", "content", "tool_calls", "tool_call_id", "name")}
    if out.get("role") != "tool":
        out.pop("name", None)
    if out.get("role") == "assistant" and out.get("tool_calls") and not out.get("content"):
        out["content"] = None
    return out


# -- local transformers models ----------------------------------------------------------------

_HF_CACHE: dict[tuple, tuple[Any, Any]] = {}
_HF_LOCK = threading.Lock()


def _sparse_module():
    """:mod:`sleuth.kernels.hf` when it can be imported (it needs a recent transformers)."""
    try:
        from ..kernels import hf as khf  # noqa: PLC0415

        return khf
    except Exception:  # noqa: BLE001 - any import failure means: run dense
        return None


def _hf_weights(name: str) -> tuple[str, str | None]:
    """``(folder, gguf file name or None)`` for a transformers folder, a ``.gguf`` file, or the name of
    a packaged local model (``smollm2``, ``qwen``: resolved, joined and checked by ``agent.models``)."""
    p = Path(name).expanduser()
    if p.is_dir():
        return str(p.resolve()), None
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise LLMError(f"hf backend: {name} is neither a transformers model folder nor a .gguf file")
        return str(p.resolve().parent), p.name
    if os.sep not in name and not name.endswith(".gguf"):
        try:
            from .models import ensure  # noqa: PLC0415 - packaged GGUF models, when that module exists
        except ImportError:
            ensure = None
        if ensure is not None:
            try:
                f = ensure(name)
            except AgentError as e:
                raise LLMError(f"hf backend: {e}") from None
            return str(f.parent), f.name
    raise LLMError(f"hf backend: {name} is not a folder with a transformers model or a .gguf file (no hub downloads here)")


class HFChat:
    """A local model in transformers: a model folder or a GGUF file (dequantised on load), with the
    ``sleuth_sparse`` attention and its measured defaults (``sleuth.kernels.config.SparseConfig``):
    dense unless a prompt reaches ``sparse_from`` keys (or ``SLEUTH_SPARSE_FROM``), since no sparse
    budget kept accuracy on real weights (docs/kernels.md)."""

    name = "hf"

    def __init__(self, model: str | None = None, *, device: str | None = None, max_new_tokens: int = 512,
                 dtype: str | None = None, sparse: bool = True, temperature: float = 0.0,
                 sparse_from: int | None = None):
        path = model or os.environ.get("SLEUTH_HF_MODEL") or os.environ.get("SLEUTH_MODEL")
        if not path:
            raise LLMError("hf backend: pass --model with a transformers model folder or a .gguf file (or set SLEUTH_MODEL)")
        self.path, self.gguf_file = _hf_weights(path)
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.sparse = sparse
        env = os.environ.get("SLEUTH_SPARSE_FROM")
        if sparse_from is None and env:
            try:
                sparse_from = int(env)
            except ValueError:
                raise LLMError(f"SLEUTH_SPARSE_FROM={env!r}: expected a number of tokens") from None
        if sparse_from is not None and sparse_from < 0:
            raise LLMError(f"hf backend: sparse_from must be >= 0, not {sparse_from}")
        self.sparse_from = sparse_from
        self.tokenizer, self.model = self._load(dtype)
        self.attn_implementation = getattr(self.model.config, "_attn_implementation", None)

    def _load(self, dtype: str | None):
        key = (self.path, self.gguf_file, self.device, dtype, self.sparse, self.sparse_from)
        with _HF_LOCK:
            if key in _HF_CACHE:
                return _HF_CACHE[key]
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            where = os.path.join(self.path, self.gguf_file) if self.gguf_file else self.path
            kw: dict[str, Any] = {"gguf_file": self.gguf_file} if self.gguf_file else {}
            try:
                tok = AutoTokenizer.from_pretrained(self.path, **kw)
            except Exception as e:  # noqa: BLE001
                raise LLMError(f"hf backend: cannot load the tokenizer in {where}: {_reason(e)}") from None
            if dtype:
                kw["dtype"] = getattr(torch, dtype)
            elif self.gguf_file:  # dequantised weights: float32 is what the sparse defaults were measured in
                kw["dtype"] = torch.float32
            model = None
            khf = _sparse_module() if self.sparse else None
            if khf is not None:
                try:
                    khf.register()
                    model = AutoModelForCausalLM.from_pretrained(self.path, attn_implementation="sleuth_sparse", **kw)
                    if self.sparse_from is not None:
                        khf.configure(model, min_sparse_len=self.sparse_from)
                except Exception:  # noqa: BLE001 - fall back to the dense implementation below
                    model = None
            if model is None:
                for impl in ("sdpa", "eager"):
                    try:
                        model = AutoModelForCausalLM.from_pretrained(self.path, attn_implementation=impl, **kw)
                        break
                    except Exception as e:  # noqa: BLE001
                        err = e
                if model is None:
                    raise LLMError(f"hf backend: cannot load the model in {where}: {_reason(err)}") from None
            dev = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            model.to(dev).eval()
            _HF_CACHE[key] = (tok, model)
            return tok, model

    def _prompt(self, messages: list[dict], tools: list[dict] | None) -> tuple[str, bool]:
        """(prompt text, native): the template's own tool support when it renders the tools."""
        tok = self.tokenizer
        clean = [_clean(m) for m in messages]
        for m in clean:  # templates expect arguments as dicts
            for tc in m.get("tool_calls") or []:
                f = tc.get("function", {})
                if isinstance(f.get("arguments"), str):
                    try:
                        f["arguments"] = json.loads(f["arguments"])
                    except ValueError:
                        pass
            if m.get("content") is None:
                m["content"] = ""
        if tools:
            try:
                text = tok.apply_chat_template(clean, tools=tools, add_generation_prompt=True, tokenize=False)
                if all(t["function"]["name"] in text for t in tools):
                    return text, True
            except Exception:  # noqa: BLE001 - a template without tool support
                pass
        msgs = as_text_messages(messages, tools)
        try:
            return tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False), False
        except Exception:  # noqa: BLE001 - no chat template at all: plain role-tagged text
            return "\n".join(f"{m['role']}: {m['content']}" for m in msgs) + "\nassistant:", False

    def chat(self, messages: list[dict], tools: list[dict] | None = None, *, timeout: float | None = None,
             max_tokens: int | None = None) -> LLMReply:
        import torch

        from .toolcall_parse import parse_tool_calls

        t0 = time.perf_counter()
        text, native = self._prompt(messages, tools)
        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        ids = enc["input_ids"].to(self.model.device)
        gen: dict[str, Any] = {"max_new_tokens": int(max_tokens or self.max_new_tokens), "do_sample": self.temperature > 0}
        if self.temperature > 0:
            gen["temperature"] = self.temperature
        khf = _sparse_module() if self.attn_implementation == "sleuth_sparse" else None
        if khf is not None:
            cfg = khf.sparse_config_of(self.model.config)
            if ids.shape[1] >= cfg.dense_below(ids.device.type):
                gen["past_key_values"] = khf.make_cache(self.model)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        if pad is not None:
            gen["pad_token_id"] = pad
        if timeout:
            gen["max_time"] = float(timeout)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **gen)
        new = out[0, ids.shape[1]:]
        # keep tool-call markers even when a tokenizer registers them as special tokens
        content = self.tokenizer.decode(new, skip_special_tokens=False)
        for t in {self.tokenizer.eos_token, self.tokenizer.pad_token, "<|im_end|>", "<|endoftext|>", "<|eot_id|>"}:
            if t:
                content = content.replace(t, "")
        content = content.strip()
        calls: list[dict] = []
        if native and tools:
            parsed = parse_tool_calls(content)
            if parsed.calls and not parsed.errors:
                calls = [{"id": f"call_{uuid.uuid4().hex[:8]}_{i}", "name": c["name"], "arguments": c["arguments"]}
                         for i, c in enumerate(parsed.calls)]
                content = parsed.text
        return LLMReply(content=content, tool_calls=calls, tokens_in=int(ids.shape[1]), tokens_out=int(new.shape[0]),
                        native=bool(calls), seconds=time.perf_counter() - t0)


def make_llm(kind, *, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
             **options: Any) -> ChatLLM | None:
    """``"local"`` / ``"openai"`` / ``"hf"`` / ``"none"`` (or None) → a backend; an object with ``chat`` passes through.

    ``"auto"`` is ``local`` when llama.cpp and the default model are installed, else ``none``.
    """
    if isinstance(kind, str) and kind.lower() == "auto":
        from .models import default_available

        kind = "local" if default_available() else "none"
    if kind is None or (isinstance(kind, str) and kind.lower() in ("none", "heuristic", "")):
        return None
    if not isinstance(kind, str):
        if not callable(getattr(kind, "chat", None)):
            raise AgentError(f"llm must be 'local', 'none', 'openai', 'hf' or an object with chat(); got {type(kind).__name__}")
        return kind
    k = kind.lower()
    if k in ("local", "llama-cpp", "gguf"):
        from .llm_local import LlamaCppChat

        keys = ("n_ctx", "temperature", "max_tokens", "progress")
        return LlamaCppChat(model, **{k2: v for k2, v in options.items() if k2 in keys})
    if k in ("openai", "vllm", "ollama", "llamacpp", "llama.cpp", "server"):
        keys = ("timeout", "retries", "backoff", "temperature", "max_tokens", "tool_mode", "context")
        return OpenAIChat(base_url, model, api_key, **{k2: v for k2, v in options.items() if k2 in keys})
    if k in ("hf", "transformers"):
        keys = ("device", "max_new_tokens", "dtype", "sparse", "temperature", "sparse_from")
        return HFChat(model, **{k2: v for k2, v in options.items() if k2 in keys})
    raise AgentError(f"unknown llm {kind!r}: use local, none, openai or hf")
