"""The embedded backend: a GGUF model run in-process by llama.cpp (``llama-cpp-python``).

One ``Llama`` per model file per process, shared by every question (loading costs ~2 s; the KV
of the longest common prefix with the previous call is reused by llama.cpp, which is why the
policies keep their system prompt as a stable prefix). Generation is streamed so that a call can
stop at its deadline and still return what it wrote. Every call measures prefill and generation
speed; :meth:`LlamaCppChat.estimate_seconds` turns them into the timeouts and budgets the agent
uses, and the figures are kept in the models folder (``sleuth models`` shows them).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Any

from . import models
from .chat import LLMError, LLMReply, LLMTimeout, as_text_messages

_LOADED: dict[tuple, Any] = {}
_LOAD_LOCK = threading.Lock()

#: conservative speeds for a model never measured on this machine (2 CPU cores, 1.5B Q4_K_M)
DEFAULT_PREFILL_TPS = 120.0
DEFAULT_GEN_TPS = 25.0


def other_busy_cores(sample_s: float = 0.25) -> float:
    """Cores other processes keep busy now: the machine's busy CPU time over ``sample_s`` seconds,
    less this process's own (and its finished children's), per second of wall time.

    Not the load average: one minute after indexing it still counts sleuth's own work (the demo
    indexes, then asks) and gave the model one thread of two idle cores.
    """
    import psutil

    me = psutil.Process()

    def sample():
        t = psutil.cpu_times()
        own = me.cpu_times()
        return (t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0),
                own.user + own.system + own.children_user + own.children_system, time.monotonic())

    busy0, own0, t0 = sample()
    time.sleep(sample_s)
    busy1, own1, t1 = sample()
    return max(0.0, ((busy1 - busy0) - (own1 - own0)) / max(t1 - t0, 1e-6))


def _threads() -> int:
    """Threads for llama.cpp: the cores other processes leave free now (at least one).

    llama.cpp's threads spin while they wait for each other; on cores that other processes keep
    busy, two threads measured 8x slower than one (0.3 vs 2.8 tokens/s generating on 2 loaded
    cores), so a busy machine gets fewer threads. ``SLEUTH_LLM_THREADS`` overrides.
    """
    env = os.environ.get("SLEUTH_LLM_THREADS")
    if env and env.isdigit():
        return max(1, int(env))
    cpus = os.cpu_count() or 1
    try:
        busy = other_busy_cores()
    except Exception:  # noqa: BLE001 - no /proc (a sandbox): assume the machine is ours
        busy = 0.0
    return max(1, min(cpus, int(cpus - busy + 0.5)))


def load(path: str, n_ctx: int, slot: str = "") -> tuple[Any, threading.Lock, float]:
    """(Llama, its lock, seconds it took to load) — loaded once per (file, context size, slot).

    A second ``slot`` is a second context over the same weights (llama.cpp maps the file, so the
    weights are shared): it keeps its own prompt cache, e.g. for a long fixed prompt used between
    other calls.
    """
    key = (str(path), int(n_ctx), slot)
    with _LOAD_LOCK:
        if key in _LOADED:
            llm, lock = _LOADED[key]
            return llm, lock, 0.0
        try:
            import llama_cpp
        except ImportError:
            raise LLMError("the local backend needs llama-cpp-python: run scripts/make_env.sh "
                           "(or pip install 'llama-cpp-python[server]==0.3.36'), or pass --llm none") from None
        t0 = time.perf_counter()
        try:
            n = _threads()
            llm = llama_cpp.Llama(model_path=str(path), n_ctx=int(n_ctx), n_threads=n, n_threads_batch=n, n_batch=512,
                                  verbose=False, seed=0)
            # no LlamaRAMCache: each saved state copies n_batch x vocabulary logits (311 MB for
            # Qwen) and the cache's size accounting does not see them; callers order their calls so
            # that consecutive prompts share their prefix instead
        except Exception as e:  # noqa: BLE001 - a bad or truncated file: one line
            raise LLMError(f"llama.cpp cannot load {path}: {' '.join(str(e).split())[:160]}") from None
        lock = threading.Lock()
        if not _LOADED:
            atexit.register(close_all)
        _LOADED[key] = (llm, lock)
        return llm, lock, time.perf_counter() - t0


def close_all() -> None:
    """Free every loaded model now. Run at exit: left to the garbage collector, a model is freed
    after the interpreter has torn down what llama-cpp-python's own close needs, and the user's
    terminal ends in an "Exception ignored in Llama.__del__" traceback."""
    with _LOAD_LOCK:
        loaded = list(_LOADED.values())
        _LOADED.clear()
    for llm, lock in loaded:
        with lock:
            try:
                llm.close()
            except Exception:  # noqa: BLE001 - freeing at exit must not fail the exit
                pass


class LlamaCppChat:
    """``chat(messages, tools)`` over a local GGUF model; tools are described in the prompt."""

    name = "local"

    def __init__(self, model: str | None = None, *, n_ctx: int | None = None, temperature: float = 0.0,
                 max_tokens: int = 256, progress=None, slot: str = ""):
        self.path = models.ensure(model, progress=progress)
        try:
            spec = models.lookup(model) if not (model and (model.endswith(".gguf") or os.sep in model)) else None
        except Exception:  # noqa: BLE001
            spec = None
        self.n_ctx = int(n_ctx or (spec.n_ctx if spec else 4096))
        #: the longest context this model may be given (its training length); see ensure_context
        self.max_ctx = max(self.n_ctx, int(spec.max_ctx if spec else self.n_ctx))
        self._slot = slot
        self.model_name = spec.name if spec else self.path.name
        self.name = f"local:{self.model_name}"
        self.temperature, self.max_tokens = temperature, max_tokens
        self.llm, self._lock, load_s = load(str(self.path), self.n_ctx, slot)
        known = models.load_speeds().get(self.path.name) or {}
        self.prefill_tps = float(known.get("prefill_tokens_per_s") or DEFAULT_PREFILL_TPS)
        self.gen_tps = float(known.get("generate_tokens_per_s") or DEFAULT_GEN_TPS)
        self._measured = 0
        self.load_seconds = load_s
        #: llama.cpp's threads, chosen when the model was loaded from the cores others left free
        self.threads = int(getattr(self.llm, "n_threads", 0) or 0) or None

    # -- speed ---------------------------------------------------------------------------------
    def estimate_seconds(self, prompt_tokens: int, max_tokens: int) -> float:
        """Expected wall time of a call that must prefill ``prompt_tokens`` and may write ``max_tokens``."""
        return prompt_tokens / self.prefill_tps + max_tokens / self.gen_tps

    def ensure_context(self, tokens: int) -> int:
        """Grow the context to hold ``tokens`` (prompt and reply), up to :attr:`max_ctx`; the size now.

        The model is loaded again with the larger context (the weights are mapped, not copied:
        ~2 s, and the KV of the new size); the smaller context is dropped from the shared table.
        """
        from .budget import context_size

        if tokens <= self.n_ctx or self.n_ctx >= self.max_ctx:
            return self.n_ctx
        size = context_size(tokens, 0, floor=self.n_ctx, ceiling=self.max_ctx)
        with _LOAD_LOCK:
            _LOADED.pop((str(self.path), int(self.n_ctx), self._slot), None)
        self.llm, self._lock, _ = load(str(self.path), size, self._slot)
        self.n_ctx = size
        return size

    def _prompt_tokens(self, msgs: list[dict]) -> int:
        # the chat template adds a few tokens a turn
        return sum(self.count_tokens(m.get("content") or "") + 8 for m in msgs) + 8

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False))

    def _learn(self, prefill_tokens: int, prefill_s: float, gen_tokens: int, gen_s: float) -> None:
        # running means weighted towards the latest calls: the machine's load changes during a run
        a = 0.3 if self._measured else 1.0
        if prefill_tokens >= 32 and prefill_s > 0:
            self.prefill_tps = (1 - a) * self.prefill_tps + a * prefill_tokens / prefill_s
        if gen_tokens >= 8 and gen_s > 0:
            self.gen_tps = (1 - a) * self.gen_tps + a * gen_tokens / gen_s
        self._measured += 1
        if self._measured in (1, 5) or self._measured % 25 == 0:
            models.record_speed(self.path.name, self.prefill_tps, self.gen_tps)

    # -- chat ----------------------------------------------------------------------------------
    def chat(self, messages: list[dict], tools: list[dict] | None = None, *, timeout: float | None = None,
             max_tokens: int | None = None, stop: list[str] | None = None) -> LLMReply:
        msgs = as_text_messages(messages, tools) if tools or any(m.get("role") == "tool" or m.get("tool_calls") for m in messages) \
            else [{"role": m["role"], "content": m.get("content") or ""} for m in messages]
        limit = int(max_tokens or self.max_tokens)
        need = self._prompt_tokens(msgs) + limit
        if need > self.n_ctx:  # a longer prompt than the context holds: grow it (up to the model's own length)
            self.ensure_context(need)
        with self._lock:
            t0 = time.perf_counter()
            before = list(self.llm._input_ids)
            try:
                stream = self.llm.create_chat_completion(messages=msgs, max_tokens=limit, temperature=self.temperature,
                                                         stream=True, stop=stop or [], seed=0)
                parts: list[str] = []
                t_first = None
                n_out = 0
                cut = False
                for chunk in stream:
                    if t_first is None:
                        t_first = time.perf_counter()
                    delta = chunk["choices"][0].get("delta") or {}
                    if delta.get("content"):
                        parts.append(delta["content"])
                        n_out += 1
                    if timeout and time.perf_counter() - t0 > timeout:
                        cut = True
                        break
                if cut:
                    stream.close()
            except ValueError as e:  # llama.cpp: "Requested tokens (N) exceed context window of M"
                raise LLMError(f"local model: {' '.join(str(e).split())[:160]}") from None
            t_end = time.perf_counter()
            after = list(self.llm._input_ids)
        # tokens evaluated this call = prompt minus the prefix llama.cpp kept from the last call
        n_prompt = max(0, len(after) - n_out)
        reused = _common_prefix(before, after[:n_prompt])
        prefill_s = (t_first or t_end) - t0
        self._learn(n_prompt - reused, prefill_s, n_out, t_end - (t_first or t_end))
        content = "".join(parts).strip()
        if cut and not content:
            raise LLMTimeout(f"the local model wrote nothing within {timeout:.0f} s")
        return LLMReply(content=content, tool_calls=[], tokens_in=n_prompt, tokens_out=n_out, native=False,
                        seconds=t_end - t0, truncated=cut, cached_tokens=reused)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def measure(model: str | None = None, prompt_tokens: int = 256, gen_tokens: int = 32) -> dict:
    """Time a fresh prefill of ~``prompt_tokens`` and ``gen_tokens`` of generation; recorded for ``sleuth models``."""
    chat = LlamaCppChat(model)
    llm, lock = chat.llm, chat._lock
    words = ("The library indexes long documents and videos and answers questions with located citations. " * 64).split()
    text = " ".join(words[: int(prompt_tokens / 1.3)])
    with lock:
        llm.reset()  # a cold prompt: no prefix reuse from an earlier call
        toks = llm.tokenize(text.encode(), add_bos=True)
        t0 = time.perf_counter()
        llm.eval(toks)
        prefill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = 0
        for _tok in llm.generate(toks, temp=0.0, reset=False):
            n += 1
            if n >= gen_tokens:
                break
        gen_s = time.perf_counter() - t0
        llm.reset()
    prefill, gen = len(toks) / prefill_s, n / gen_s
    models.record_speed(chat.path.name, prefill, gen, load_s=chat.load_seconds or None)
    return {"model": chat.model_name, "prefill_tokens_per_s": round(prefill, 1), "generate_tokens_per_s": round(gen, 1),
            "threads": chat.threads, "cpus": os.cpu_count()}
