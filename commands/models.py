"""``sleuth models``: the local models, installed or not, with the speed measured on this machine,
and the models behind OpenAI-compatible servers as the agent measured them."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from .common import JSON_OPT, emit_json
from .terminal import error, one_line, out as console


def models(as_json: bool = JSON_OPT,
           measure: bool = typer.Option(False, "--measure", help="Time prefill and generation of each installed model now."),
           prepare: bool = typer.Option(False, "--prepare", help="Join the default model's parts and check its sha256 now.")):
    """Local models: installed or not, file path, licence, and the speed measured on this machine."""
    from ..agent import AgentError
    from ..agent import models as M

    if prepare:
        try:
            M.ensure(M.DEFAULT)
        except AgentError as e:
            error(e)
            raise typer.Exit(2)
    measured = []
    if measure:
        from ..agent.llm_local import measure as measure_model

        for row in M.describe():
            if row["installed"]:
                try:
                    measured.append(measure_model(row["name"]))
                except AgentError as e:
                    error(f"{row['name']}: {e}")
    rows = M.describe()
    import importlib.util

    runtime = importlib.util.find_spec("llama_cpp") is not None
    # models behind OpenAI-compatible servers, as the agent measured them (agent/server_probe.py)
    servers = [{"server": k.split(":", 1)[1], **v} for k, v in sorted(M.load_speeds().items()) if k.startswith("server:")]
    if as_json:
        emit_json({"llama_cpp": runtime, "models_dir": str(M.models_dir()), "default": M.DEFAULT, "models": rows,
                   "servers": servers, **({"measured": measured} if measure else {})})
        return
    if not runtime:
        error("llama-cpp-python is not installed: scripts/make_env.sh installs it (or use --llm none / openai)")
    t = Table("model", "installed", "file", "prefill tok/s", "generate tok/s", "licence")
    for r in rows:
        sp = r.get("speed") or {}
        cells = [r["name"] + (" (default)" if r["default"] else ""), "yes" if r["installed"] else f"no: {r['install']}",
                 r["path"] or ("joined on first use" if r["installed"] else "-"),
                 str(sp.get("prefill_tokens_per_s", "not measured")), str(sp.get("generate_tokens_per_s", "")), r["licence"]]
        t.add_row(*(Text(one_line(c)) for c in cells))  # paths are data, never markup
    console.print(t)
    if servers:
        st = Table("served model @ server", "prefill tok/s", "generate tok/s", "context", "measured at")
        for v in servers:
            st.add_row(*(Text(one_line(str(c))) for c in (v["server"], v.get("prefill_tokens_per_s", ""),
                                                           v.get("generate_tokens_per_s", ""),
                                                           v.get("n_ctx", "not stated"), v.get("measured_at", ""))))
        console.print(st)
    for m in measured:
        console.print(Text(one_line(f"measured {m['model']} on {m['threads']} llama.cpp thread(s) of {m['cpus']} cores "
                                    "(the cores other processes left free)")))
