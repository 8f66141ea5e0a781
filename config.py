"""Settings from outside the code: ``sleuth.toml`` files and environment variables, in one place.

A ``sleuth.toml`` holds defaults for command-line options, under the option's name::

    library = "~/papers/.sleuth"     # top level: every command that has the option
    json = false

    [search]
    top_k = 5
    level = "fine"

    [ask]
    llm = "openai"
    base_url = "http://localhost:8000/v1"

Precedence, highest first: the command line, an environment variable, ``./sleuth.toml`` (the
working folder), ``<library>/sleuth.toml``, the built-in default. ``--config FILE`` (or
``SLEUTH_CONFIG``) names one file instead of the two looked up. Values are checked like the
option itself (a bad ``top_k`` is the same usage error as a bad ``--top-k``); an unknown key is an
error naming the file, so a typo never passes silently.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

CONFIG_NAME = "sleuth.toml"

#: Every environment variable sleuth reads: name -> what it sets. ``docs/configuration.md`` and
#: ``sleuth --help`` are made from this table; a test checks the code reads no other.
ENVIRONMENT: dict[str, str] = {
    "SLEUTH_LIBRARY": "library folder or SQLAlchemy URL (`--library`; default `./.sleuth`)",
    "SLEUTH_HOME": "folder for vectors, lexical index and assets when the library is a URL (`--home`)",
    "SLEUTH_CONFIG": "one `sleuth.toml` to use instead of `./sleuth.toml` and `<library>/sleuth.toml` (`--config`)",
    "SLEUTH_LLM": "LLM backend for `sleuth ask` (`--llm`: none, openai, hf)",
    "SLEUTH_BASE_URL": "OpenAI-compatible server URL (`--base-url`); falls back to OPENAI_BASE_URL",
    "OPENAI_BASE_URL": "OpenAI-compatible server URL when SLEUTH_BASE_URL is unset",
    "SLEUTH_API_KEY": "API key for the OpenAI-compatible server; falls back to OPENAI_API_KEY",
    "OPENAI_API_KEY": "API key when SLEUTH_API_KEY is unset",
    "SLEUTH_MODEL": "model name for the OpenAI-compatible server, or a local folder for `--llm hf` (`--model`)",
    "SLEUTH_HF_MODEL": "local transformers model folder for `--llm hf` (wins over SLEUTH_MODEL there)",
    "SLEUTH_MODELS": "folder for local GGUF models joined from their packages (`sleuth models`; default `~/.cache/sleuth/models`)",
    "SLEUTH_SPARSE_FROM": "`--llm hf`: prompt length (tokens) from which the sparse attention runs (default: never; no sparse budget kept accuracy on real weights, docs/kernels.md)",
    "SLEUTH_LLM_THREADS": "threads for the local llama.cpp model (default: from the cores that are free)",
    "SLEUTH_OCR_THREADS": "threads per OCR model (default: one per model, two models in parallel)",
    "SLEUTH_CACHE": "cache folder for artefacts made once per machine: converted speech models, the prepared embedding model (default `~/.cache/sleuth`)",
    "SLEUTH_WRITE_KEY": "`sleuth serve --write-key`: clients sending `Authorization: Bearer KEY` may index and remove files (default: read-only)",
    "SLEUTH_DEBUG": "set to show the full traceback of an unexpected error instead of one line (for bug reports)",
    "SLEUTH_SKIP_SYSTEM_DEPS": "scripts/system_deps.sh (run by make_env.sh): `1` skips installing the system packages the tests need (espeak-ng, flite) with apt",
    "SLEUTH_ENV": "scripts/demo.sh and scripts/test.sh: the virtual environment folder to build (default `.venv`)",
    "SLEUTH_LONGBENCH_V2": "benchmarks/bench_sparse_quality.py: the LongBench v2 folder when `../shared/data/longbench_v2` is not beside the checkout",
    "SLEUTH_SHARED_DATA": "tests and benchmarks: the shared data folder when `../shared/data` is not beside the checkout",
}

HELP_EPILOG = ("Option defaults: ./sleuth.toml, then <library>/sleuth.toml (keys are option names). Environment: "
               + ", ".join(ENVIRONMENT) + ". See docs/configuration.md.")


class ConfigError(ValueError):
    """A ``sleuth.toml`` that cannot be used; the message is one line naming the file."""


def _norm_key(key: str) -> str:
    return key.replace("-", "_")


def read_config(path: Path) -> dict[str, Any]:
    """The parsed file; ConfigError (one line, naming the file) when it is not valid TOML."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None


def to_default_map(data: Mapping[str, Any], path: Path, params: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    """Turn one file's contents into click's ``default_map`` ({command: {param: value}}).

    ``params`` maps each command's option names (``top_k`` for ``--top-k``) to its parameter
    names. A top-level key applies to every command that has that option with its usual
    meaning; a table applies to its command and wins over the top level.
    """
    # The parameter an option name usually stands for: a command whose option of the same name
    # means something else (a differently named parameter) gets it from its own table only.
    usual = {key: Counter(names[key] for names in params.values() if key in names).most_common(1)[0][0]
             for names in params.values() for key in names}
    out: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            continue
        name = _norm_key(key)
        if name not in usual:
            raise ConfigError(f"{path}: unknown key {key!r} (not an option of any command)")
        for cmd, names in params.items():
            if names.get(name) == usual[name]:
                out.setdefault(cmd, {})[names[name]] = value
    for cmd, table in data.items():
        if not isinstance(table, dict):
            continue
        if cmd not in params:
            raise ConfigError(f"{path}: unknown command table [{cmd}]; commands are {', '.join(sorted(params))}")
        for k, v in table.items():
            name = _norm_key(k)
            if name not in params[cmd]:
                raise ConfigError(f"{path}: [{cmd}] has no option {k!r}; it has {', '.join(sorted(params[cmd]))}")
            out.setdefault(cmd, {})[params[cmd][name]] = v
    return out


def merge_maps(*maps: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Earlier maps win (working folder over library)."""
    out: dict[str, dict[str, Any]] = {}
    for m in reversed(maps):
        for cmd, vals in m.items():
            out.setdefault(cmd, {}).update(vals)
    return out


_LIB_FLAG = re.compile(r"^(--library|-L)(=(.*))?$")


def library_from_args(args: list[str]) -> str | None:
    """The ``--library``/``-L`` value among a command's arguments, if given there."""
    for i, a in enumerate(args):
        if a == "--":
            break
        m = _LIB_FLAG.match(a)
        if m:
            if m.group(2):
                return m.group(3)
            return args[i + 1] if i + 1 < len(args) else None
        if a.startswith("-L") and len(a) > 2:
            return a[2:]
    return None


def config_files(explicit: str | None, args: list[str], cwd: Path | None = None) -> list[Path]:
    """The files to read, most important first.

    ``explicit`` (``--config``/SLEUTH_CONFIG) is the only one when given. Otherwise
    ``./sleuth.toml`` and the library's ``sleuth.toml``; the library is the one named on the
    command line, in SLEUTH_LIBRARY, in ``./sleuth.toml``, else ``./.sleuth`` (for a URL
    library, its ``--home``/SLEUTH_HOME folder).
    """
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        return [p]
    cwd = cwd or Path.cwd()
    files: list[Path] = []
    local = cwd / CONFIG_NAME
    local_data: dict[str, Any] = {}
    if local.is_file():
        files.append(local)
        local_data = read_config(local)
    lib = library_from_args(args) or os.environ.get("SLEUTH_LIBRARY") or local_data.get("library") or ".sleuth"
    lib = str(lib)
    if "://" in lib:
        home = _home_from_args(args) or os.environ.get("SLEUTH_HOME") or local_data.get("home")
        if not home:
            return files
        lib = str(home)
    lib_file = (cwd / Path(lib).expanduser() / CONFIG_NAME)
    if lib_file.is_file() and lib_file.resolve() != local.resolve():
        files.append(lib_file)
    return files


def _home_from_args(args: list[str]) -> str | None:
    for i, a in enumerate(args):
        if a == "--home":
            return args[i + 1] if i + 1 < len(args) else None
        if a.startswith("--home="):
            return a.split("=", 1)[1]
    return None


def load_default_map(explicit: str | None, args: list[str], params: Mapping[str, Mapping[str, str]],
                     cwd: Path | None = None) -> tuple[dict[str, dict[str, Any]], list[Path]]:
    """click ``default_map`` from the config files that apply, and the files used."""
    files = config_files(explicit, args, cwd)
    maps = [to_default_map(read_config(p), p, params) for p in files]
    return merge_maps(*maps), files
