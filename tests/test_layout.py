"""The package's layout: imports flow one way, down the layers, with no circle.

Run it alone with ``pytest tests/test_layout.py``. It reads every module's imports from its
source (module level and inside functions alike: a lazy import is still a dependency), so it
needs nothing installed beyond the standard library.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"tests", "benchmarks", "scripts", "docs", "__pycache__"}

# Lowest first. A module may import from its own layer or any layer below, never above.
LAYERS: list[tuple[str, ...]] = [
    ("sleuth.core", "sleuth.config", "sleuth.memory"),
    ("sleuth.readers", "sleuth.kernels"),
    ("sleuth.index",),
    ("sleuth.agent",),
    ("sleuth.library",),
    ("sleuth.eval", "sleuth.samples"),
    ("sleuth.commands", "sleuth.serve"),
    ("sleuth.cli", "sleuth.__main__"),
]
# The modules that may sit loose at the root: the design card's top level.
ROOT_MODULES = {"__init__", "__main__", "cli", "core", "config", "memory", "library"}


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in SKIP_DIRS or rel.parts[0].startswith(".") or "__pycache__" in rel.parts:
            continue
        name = ".".join(("sleuth",) + rel.with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """{module: sleuth modules it imports}, resolved to the module that defines the name."""
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for t in targets:
                if not t.startswith("sleuth"):
                    continue
                while t not in mods and "." in t:
                    t = t.rpartition(".")[0]
                if t in mods and t != mod:
                    graph[mod].add(t)
    return graph


def layer(mod: str) -> int:
    for i, names in enumerate(LAYERS):
        if any(mod == n or mod.startswith(n + ".") for n in names):
            return i
    raise AssertionError(f"{mod} belongs to no layer: place it in tests/test_layout.py LAYERS")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph():
    return imports(modules())


def test_the_walker_sees_imports_of_every_kind():
    # a guard on the check itself: relative, absolute, lazy and package-level imports all count
    g = imports(modules())
    assert "sleuth.readers.pdf_extract" in g["sleuth.readers.pdf"]       # from . import pdf_extract as px
    assert "sleuth.library" in g["sleuth.commands.common"]               # lazy, inside a function
    assert "sleuth.commands.manage" in g["sleuth.cli"]                   # from .commands import manage
    assert "sleuth.readers.kinds" in g["sleuth.readers.video.decode"]    # from ..kinds import ...


def test_no_import_circle(graph):
    assert cycles(graph) == []


def test_a_circle_would_be_caught():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_arrow_points_down_the_layers(graph):
    upward = [f"{a} -> {b}" for a, targets in graph.items() for b in targets
              if b != "sleuth" and a != "sleuth" and layer(a) < layer(b)]
    assert upward == []


def test_the_package_root_imports_nothing_when_loaded():
    # Every submodule's import runs sleuth/__init__.py first, so an edge into the root is free only
    # while the root itself loads nothing of sleuth (Library and the moved names come lazily).
    tree = ast.parse((ROOT / "__init__.py").read_text(encoding="utf-8"))
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in top_level if isinstance(n, ast.ImportFrom) and (n.level or
            (n.module or "").startswith("sleuth"))] == []


def test_only_the_design_cards_modules_sit_at_the_root():
    loose = {p.stem for p in ROOT.glob("*.py")}
    assert loose == ROOT_MODULES


def test_the_command_modules_never_import_the_cli(graph):
    assert [m for m, t in graph.items() if "sleuth.cli" in t and m != "sleuth.__main__"] == []


def test_public_surface_is_what_the_readme_uses():
    import sleuth

    assert sorted(sleuth.__all__) == ["Library", "__version__"]
    assert "from sleuth import Library" in (ROOT / "README.md").read_text(encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sleuth.Library  # noqa: B018 - the public name gives no warning
    with pytest.warns(DeprecationWarning, match="sleuth.core.Tree"):
        from sleuth import Tree
    from sleuth.core import Tree as CoreTree
    assert Tree is CoreTree
    with pytest.raises(AttributeError):
        sleuth.no_such_name  # noqa: B018


@pytest.mark.parametrize("old,new", [
    ("sleuth.terminal", "sleuth.commands.terminal"),
    ("sleuth.cli_conventions", "sleuth.commands.conventions"),
    ("sleuth.cli_progress", "sleuth.commands.progress"),
    ("sleuth.cli_manage", "sleuth.commands.manage"),
    ("sleuth.mcp_server", "sleuth.serve.mcp"),
    ("sleuth.demo", "sleuth.samples.demo"),
    ("sleuth.samples_video", "sleuth.samples.video"),
])
def test_moved_modules_keep_their_old_path_one_release(old, new):
    # in a fresh interpreter: the warning fires on the first import of the old name only
    code = (f"import warnings, importlib\nwarnings.simplefilter('error')\n"
            f"new = importlib.import_module({new!r})\n"
            f"try:\n    importlib.import_module({old!r})\n    raise SystemExit('no warning')\n"
            f"except DeprecationWarning as e:\n    assert {new!r} in str(e), e\n"
            f"warnings.simplefilter('ignore')\nold = importlib.import_module({old!r})\n"
            f"assert old is new, (old, new)\nassert old.__spec__.name == {new!r}\n"
            f"importlib.reload(old)\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_cli_runs_as_a_module():
    r = subprocess.run([sys.executable, "-m", "sleuth.cli", "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("sleuth "), r.stderr
    r = subprocess.run([sys.executable, "-m", "sleuth", "ls", "-h"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--library" in r.stdout, r.stderr


def test_every_public_function_has_a_docstring():
    import inspect

    import sleuth.agent as agent
    from sleuth import Library

    missing = [f"Library.{n}" for n, f in inspect.getmembers(Library)
               if not n.startswith("_") and (callable(f) or isinstance(f, property)) and not (f.__doc__ or "").strip()]
    for n in agent.__all__:
        obj = getattr(agent, n)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and not (obj.__doc__ or "").strip():
            missing.append(f"agent.{n}")
        if inspect.isclass(obj):
            missing += [f"agent.{n}.{m}" for m, f in inspect.getmembers(obj, inspect.isfunction)
                        if not m.startswith("_") and f.__module__.startswith("sleuth") and not (f.__doc__ or "").strip()]
    assert missing == []


def test_samples_reexports_what_tests_and_benchmarks_use():
    # `from sleuth.samples import X` and `samples.X` in tests and benchmarks: each X must resolve
    import re

    import sleuth.samples as samples

    used = set()
    for path in list((ROOT / "tests").rglob("*.py")) + list((ROOT / "benchmarks").glob("*.py")):
        if path.name == "test_layout.py":
            continue
        text = path.read_text(encoding="utf-8")
        for names in re.findall(r"from sleuth\.samples import ([A-Za-z_, ]+)", text):
            used |= {n.strip() for n in names.split(",") if n.strip()}
        used |= set(re.findall(r"\bsamples\.([A-Za-z_]\w*)\b(?!\.json)", text))
    import importlib.util

    missing = sorted(n for n in used if not hasattr(samples, n) and n != "json"
                     and importlib.util.find_spec(f"sleuth.samples.{n}") is None)  # a submodule is fine
    assert missing == []
