"""CLI conventions: --version, -h, -k/--top-k, choices checked at parse time, sleuth.toml,
environment variables, ls / rm / outline, shell completion and the 80-column progress line."""

import json
import os
import re
import shutil
import tomllib
from io import StringIO
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sleuth
from conftest import write_corpus
from sleuth.cli import app

runner = CliRunner()
PKG = Path(sleuth.__file__).resolve().parent


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two documents (a Markdown file and the sample PDF report) indexed into one library."""
    from sleuth.samples import make_report_pdf

    root = tmp_path_factory.mktemp("conv")
    docs = root / "docs"
    write_corpus(docs, {"notes.md": "# Notes\n\n## Harbour [bold]wall[/bold]\n\nThe harbour wall was rebuilt in 1998 "
                                    "with basalt blocks.\n\n## Lighthouse\n\nThe lighthouse keeper logged gales.\n"})
    truth = make_report_pdf(docs / "report.pdf", outline=True)
    res = runner.invoke(app, ["index", str(docs), "--library", str(root / "lib"), "--json"])
    assert res.exit_code == 0, res.output
    return root, truth


def _json(res):
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


# -- --version, -h ---------------------------------------------------------------------------

def test_version_matches_the_package_and_pyproject():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.stdout.strip() == f"sleuth {sleuth.__version__}"
    with open(PKG / "pyproject.toml", "rb") as f:
        assert tomllib.load(f)["project"]["version"] == sleuth.__version__


@pytest.mark.parametrize("argv", [["-h"], ["--help"], ["search", "-h"], ["ls", "-h"], ["rm", "-h"], ["outline", "-h"],
                                  ["mcp", "-h"]])
def test_short_and_long_help(argv):
    res = runner.invoke(app, argv)
    assert res.exit_code == 0, res.output
    assert "Usage:" in res.output


# -- -k / --top-k and choices, checked before anything opens -----------------------------------

def test_top_k_long_and_short_forms(corpus):
    root, _ = corpus
    lib = str(root / "lib")
    for flag in ("-k", "--top-k"):
        hits = _json(runner.invoke(app, ["search", "harbour wall", "--library", lib, "--json", flag, "2"]))
        assert 1 <= len(hits) <= 2
    assert len(_json(runner.invoke(app, ["search", "report", "--library", lib, "--json", "--top-k", "5"]))) > 2


@pytest.mark.parametrize("argv, option", [
    (["search", "x", "-k", "0"], "--top-k"),
    (["search", "x", "-k", "-3"], "--top-k"),
    (["search", "x", "--top-k", "101"], "--top-k"),
    (["search", "x", "--level", "chapter"], "--level"),
    (["index", "docs", "--ocr", "sometimes"], "--ocr"),
    (["index", "docs", "--asr", "loud"], "--asr"),
    (["eval", "longbench", "--data", ".", "--budgets", "500,abc"], "--budgets"),
    (["eval", "longbench", "--data", ".", "--budgets", "0"], "--budgets"),
    (["eval", "longbench", "--data", ".", "--mode", "fast"], "--mode"),
    (["eval", "nobench", "--data", "."], "nobench"),
    (["eval", "longbench", "--data", ".", "--limit", "0"], "--limit"),
    (["ask", "why?", "--budget", "rounds=lots"], "--budget"),
    (["outline", "x.pdf", "--depth", "0"], "--depth"),
])
def test_bad_values_are_usage_errors_before_the_library_opens(tmp_path, argv, option):
    lib = tmp_path / "never"
    res = runner.invoke(app, [*argv, *(["--library", str(lib)] if argv[0] != "eval" else [])])
    assert res.exit_code == 2, res.output
    assert option in res.output
    assert "Traceback" not in res.output
    assert not lib.exists()  # rejected while parsing: nothing was opened or created


def test_every_ocr_and_asr_choice_is_accepted_by_index(tmp_path):
    from sleuth.commands.conventions import ASR_CHOICES, OCR_CHOICES

    write_corpus(tmp_path / "docs", {"a.md": "# A\n\nAlpha.\n"})
    lib = str(tmp_path / "lib")
    for ocr, asr in zip(OCR_CHOICES, ASR_CHOICES):  # off -> none on the way to the video reader
        res = runner.invoke(app, ["index", str(tmp_path / "docs"), "--library", lib, "--json", "--ocr", ocr, "--asr", asr])
        assert res.exit_code == 0, (ocr, asr, res.output)


def test_choice_lists_mirror_the_code_that_uses_them():
    from sleuth.agent.tools import LEVEL_NAMES
    from sleuth.commands.conventions import ASR_CHOICES, LEVEL_CHOICES, OCR_CHOICES
    from sleuth.eval.runner import BENCHMARKS
    from sleuth.index.search import tiers_for
    from sleuth.readers.pdf import OCR_MODES
    from sleuth.readers import ASR_ALIASES, ASR_MODES

    assert set(OCR_CHOICES) == set(OCR_MODES)
    assert set(ASR_CHOICES) == set(ASR_MODES) | set(ASR_ALIASES)
    assert set(LEVEL_CHOICES) == set(LEVEL_NAMES)
    for level in LEVEL_CHOICES:
        if level != "entity":
            tiers_for(level)  # raises for a level the searcher does not know
    assert BENCHMARKS  # check_benchmark reads this tuple at parse time


# -- sleuth.toml --------------------------------------------------------------------------------

def test_config_file_in_the_working_folder_and_in_the_library(corpus, tmp_path, monkeypatch):
    from sleuth import Library

    root, _ = corpus
    lib = root / "lib"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLEUTH_LIBRARY", raising=False)
    monkeypatch.delenv("SLEUTH_CONFIG", raising=False)
    (tmp_path / "sleuth.toml").write_text(f'library = "{lib}"\n\n[search]\ntop_k = 1\n')
    # the library comes from the config (no --library) and so does k
    hits = _json(runner.invoke(app, ["search", "report", "--json"]))
    assert len(hits) == 1
    # the command line beats the file
    assert len(_json(runner.invoke(app, ["search", "report", "--json", "-k", "3"]))) == 3
    # a library's own sleuth.toml applies too; the working folder's file wins where both set a key
    (lib / "sleuth.toml").write_text('[search]\nlevel = "section"\ntop-k = 4\n')
    try:
        hits = _json(runner.invoke(app, ["search", "report", "--json"]))
        assert len(hits) == 1 and all(h["kind"] == "section" for h in hits)
        (tmp_path / "sleuth.toml").unlink()
        hits = _json(runner.invoke(app, ["search", "report", "--json", "--library", str(lib)]))
        assert 1 < len(hits) <= 4 and all(h["kind"] == "section" for h in hits)
        # an environment variable beats a file
        Library(tmp_path / "elsewhere").close()
        monkeypatch.setenv("SLEUTH_LIBRARY", str(tmp_path / "elsewhere"))
        (tmp_path / "sleuth.toml").write_text(f'library = "{lib}"\n')
        res = runner.invoke(app, ["status", "--json"])
        assert _json(res)["library"] == str((tmp_path / "elsewhere").resolve())
    finally:
        (lib / "sleuth.toml").unlink()


@pytest.mark.parametrize("text, needle", [
    ("[search]\ntop_k = 0\n", "--top-k"),            # checked like the option itself
    ("[search]\nlevel = \"chapter\"\n", "--level"),
    ("[search]\ncolour = \"red\"\n", "'colour'"),    # a typo never passes silently
    ("[serch]\ntop_k = 2\n", "[serch]"),
    ("verbosity = 3\n", "'verbosity'"),
    ("[search\n", "not valid TOML"),
])
def test_bad_config_is_a_usage_error_naming_the_file(tmp_path, monkeypatch, text, needle):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLEUTH_CONFIG", raising=False)
    (tmp_path / "sleuth.toml").write_text(text)
    res = runner.invoke(app, ["search", "x", "--library", str(tmp_path / "lib")])
    assert res.exit_code == 2, res.output
    assert needle in res.output
    if "--" not in needle:
        assert "sleuth.toml" in res.output


def test_explicit_config_replaces_the_lookup(corpus, tmp_path, monkeypatch):
    root, _ = corpus
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sleuth.toml").write_text("[search]\ntop_k = 1\n")
    other = tmp_path / "other.toml"
    other.write_text("[search]\ntop_k = 2\n")
    hits = _json(runner.invoke(app, ["--config", str(other), "search", "report", "--json", "--library", str(root / "lib")]))
    assert len(hits) == 2
    monkeypatch.setenv("SLEUTH_CONFIG", str(other))
    assert len(_json(runner.invoke(app, ["search", "report", "--json", "--library", str(root / "lib")]))) == 2
    res = runner.invoke(app, ["--config", str(tmp_path / "missing.toml"), "status"])
    assert res.exit_code == 2 and "missing.toml" in res.output


def test_top_level_keys_skip_a_command_whose_option_means_something_else(tmp_path):
    from sleuth.config import to_default_map

    params = {"search": {"library": "library", "top_k": "k", "json": "as_json"},
              "ls": {"library": "library", "json": "as_json"},
              "eval": {"library": "eval_library", "json": "as_json"}}
    data = {"library": "/lib", "json": True, "search": {"top_k": 3}, "eval": {"library": "/bench"}}
    dm = to_default_map(data, tmp_path / "sleuth.toml", params)
    assert dm == {"search": {"library": "/lib", "as_json": True, "k": 3}, "ls": {"library": "/lib", "as_json": True},
                  "eval": {"as_json": True, "eval_library": "/bench"}}


# -- environment variables, documented in one place ----------------------------------------------

def _env_vars_read_by_the_code() -> set[str]:
    names = set()
    pat = re.compile(r"""(?:environ(?:\.get)?\s*[\(\[]\s*|getenv\(\s*|envvar\s*=\s*)["']([A-Z][A-Z0-9_]+)["']""")
    for p in PKG.rglob("*.py"):
        # virtual environments (.venv, CI's .venv-ci) and other hidden folders are not the code
        if any(part.startswith(".") or part == "site-packages" for part in p.relative_to(PKG).parts):
            continue
        names.update(pat.findall(p.read_text(encoding="utf-8")))
    for p in (PKG / "scripts").glob("*.sh"):
        names.update(re.findall(r"\$\{?(SLEUTH_[A-Z_]+)", p.read_text()))
    # variables for third-party libraries, set by the tests themselves
    return {n for n in names if n.startswith(("SLEUTH_", "OPENAI_"))}


def test_every_environment_variable_is_documented_in_one_place():
    from sleuth.config import ENVIRONMENT

    used = _env_vars_read_by_the_code()
    assert {"SLEUTH_LIBRARY", "SLEUTH_MODEL", "SLEUTH_OCR_THREADS"} <= used  # the scan sees the code
    assert used <= set(ENVIRONMENT), used - set(ENVIRONMENT)
    doc = (PKG / "docs" / "configuration.md").read_text()
    helptext = runner.invoke(app, ["-h"]).output
    for name in ENVIRONMENT:
        assert f"`{name}`" in doc, name
        assert name in helptext, name


# -- ls / rm / outline ------------------------------------------------------------------------------

def test_ls_lists_documents_with_pages_status_and_time(corpus):
    root, truth = corpus
    rows = _json(runner.invoke(app, ["ls", "--library", str(root / "lib"), "--json"]))
    by = {r["name"]: r for r in rows}
    assert set(by) == {"notes.md", "report.pdf"}
    assert by["report.pdf"]["pages"] == truth["pages"] and by["report.pdf"]["kind"] == "document"
    assert all(r["status"] == "indexed" and r["indexed_at"] and r["nodes"] > 0 for r in rows)
    text = runner.invoke(app, ["ls", "--library", str(root / "lib")])
    assert text.exit_code == 0 and "report.pdf" in text.output and f"{truth['pages']} pages" in text.output


def test_ls_status_follows_the_files_and_rm_removes(tmp_path):
    docs = tmp_path / "docs"
    write_corpus(docs, {"a.md": "# A\n\nAlpha basalt harbour.\n", "b.md": "# B\n\nBeta granite quay.\n",
                        "sub/a.md": "# A2\n\nAnother alpha file.\n", "c.md": "# C\n\nGamma.\n"})
    lib = str(tmp_path / "lib")
    assert runner.invoke(app, ["index", str(docs), "--library", lib, "--json"]).exit_code == 0
    (docs / "b.md").write_text("# B\n\nBeta granite quay, rebuilt.\n")
    os.utime(docs / "b.md", (1, 1))
    (docs / "c.md").unlink()
    status = {r["path"]: r["status"] for r in _json(runner.invoke(app, ["ls", "--library", lib, "--json"]))}
    assert status[str((docs / "a.md").resolve())] == "indexed"
    assert status[str((docs / "b.md").resolve())] == "modified"
    assert status[str((docs / "c.md").resolve())] == "missing"

    # a bare name two files share is refused (naming both); nothing is removed
    res = runner.invoke(app, ["rm", "a.md", "--library", lib])
    assert res.exit_code == 2 and "give the path" in res.output
    assert len(_json(runner.invoke(app, ["ls", "--library", lib, "--json"]))) == 4
    res = runner.invoke(app, ["rm", "nothere.md", "--library", lib])
    assert res.exit_code == 2 and "nothere.md" in res.output

    from sleuth import Library

    with Library(lib) as held, held.write_lock():  # an index run holds the library: exit 3, as for index
        res = runner.invoke(app, ["rm", "b.md", "--library", lib])
    assert res.exit_code == 3 and "another" in res.output
    out = _json(runner.invoke(app, ["rm", "b.md", str(docs / "sub" / "a.md"), "--library", lib, "--json"]))
    assert sorted(r["name"] for r in out["removed"]) == ["a.md", "b.md"]
    left = {r["path"] for r in _json(runner.invoke(app, ["ls", "--library", lib, "--json"]))}
    assert str((docs / "b.md").resolve()) not in left and str((docs / "sub" / "a.md").resolve()) not in left
    hits = _json(runner.invoke(app, ["search", "granite quay", "--library", lib, "--json"]))
    assert all(h["source"] != "b.md" for h in hits)
    assert any(h["source"] == "a.md" for h in _json(runner.invoke(app, ["search", "alpha basalt", "--library", lib, "--json"])))


def test_outline_shows_the_tree_with_ids_and_pages(corpus):
    from sleuth import Library

    root, truth = corpus
    lib = str(root / "lib")
    out = _json(runner.invoke(app, ["outline", "report.pdf", "--library", lib, "--json", "--depth", "6"]))
    secs = [it for it in out["items"] if it["kind"] == "section"]

    def flat(nodes):
        for n in nodes:
            yield n
            yield from flat(n.get("children", []))

    want = [s["title"] for s in flat(truth["sections"])]
    assert [s["title"] for s in secs] == want  # every section, in document order
    with Library(lib) as L:
        for it in secs:
            node = L.get_node(it["id"])
            assert node["title"] == it["title"] and node["locator"]["page"] == it["locator"]["page"]
    assert [it["depth"] for it in out["items"]][0] == 0
    shallow = _json(runner.invoke(app, ["outline", "report.pdf", "--library", lib, "--json", "--depth", "1"]))
    assert max(it["depth"] for it in shallow["items"]) == 1 and len(shallow["items"]) < len(out["items"])
    # by node id, and as text: ids and pages, a title that looks like markup printed as is
    sub = _json(runner.invoke(app, ["outline", str(secs[0]["id"]), "--library", lib, "--json"]))
    assert sub["items"][0]["id"] == secs[0]["id"]
    text = runner.invoke(app, ["outline", "notes.md", "--library", lib])
    assert text.exit_code == 0 and "Harbour [bold]wall[/bold]" in text.output and re.search(r"#\d+ section", text.output)
    pdf_text = runner.invoke(app, ["outline", "report.pdf", "--library", lib]).output
    assert f"#{secs[0]['id']} section: {secs[0]['title']}" in pdf_text and " p." in pdf_text
    bad = runner.invoke(app, ["outline", "nope.pdf", "--library", lib])
    assert bad.exit_code == 2 and "nope.pdf" in bad.output


# -- shell completion -------------------------------------------------------------------------------

def test_shell_completion_script(monkeypatch):
    # name the shell instead of detecting the one the tests run under (there may be none)
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    res = runner.invoke(app, ["--show-completion", "bash"], prog_name="sleuth")
    assert res.exit_code == 0, res.output
    assert "complete -o default -F _sleuth_completion sleuth" in res.stdout and "_SLEUTH_COMPLETE" in res.stdout
    # and the completion itself: subcommands and an option's choices
    monkeypatch.setenv("_SLEUTH_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "sleuth search x --level fi")
    monkeypatch.setenv("COMP_CWORD", "4")
    res = runner.invoke(app, [], prog_name="sleuth")
    assert res.stdout.split() == ["fine", "figure"], res.output


# -- progress --------------------------------------------------------------------------------------

def test_progress_line_fits_80_columns_and_counts_within_a_file():
    from rich.console import Console

    from sleuth.commands.progress import IndexProgress

    buf = StringIO()
    con = Console(file=buf, width=80, color_system=None)
    p = IndexProgress(con)
    name = "/data/[bold]annual-report-2024-financial-statements-final-version-3.pdf"
    p("done", "/data/a.pdf", 1, 10)
    p("done", "/data/b.pdf", 2, 10)
    p("start", name, 2, 10)
    p("stage:reading", name, 2, 10)
    p("within:pages", name, 120, 300)
    first = p.progress.tasks[0].completed
    con.print(p.progress.make_tasks_table(p.progress.tasks))
    p("within:pages", name, 300, 300)
    p("stage:embedding", name, 2, 10)
    p("within:nodes", name, 10, 40)
    assert 2 < first < p.progress.tasks[0].completed < 3  # moves inside the file, never back
    p("start", "/data/next.pdf", 3, 10)  # read ahead while the file before is stored: not done yet
    assert p.files_done == 2
    p("stage:reading", "/v/talk.mp4", 3, 10)
    p("within:s frames", "/v/talk.mp4", 45.0, 600.0)
    con.print(p.progress.make_tasks_table(p.progress.tasks))
    lines = buf.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "[bold]annual-report" in lines[0] and "…" in lines[0]  # cut to fit, markup shown as text
    assert "120/300 pages" in lines[0] and "2/10" in lines[0]
    assert "frames 45/600 s" in lines[1]


def test_library_add_reports_pages_within_a_pdf(tmp_path):
    from sleuth import Library
    from sleuth.samples import make_report_pdf

    truth = make_report_pdf(tmp_path / "r.pdf", outline=True)
    events = []
    with Library(tmp_path / "lib") as lib:
        lib.add([tmp_path / "r.pdf"], progress=lambda *a: events.append(a))
    pages = [(d, t) for ev, _, d, t in events if ev == "within:pages"]
    assert pages[-1] == (truth["pages"], truth["pages"]) and [d for d, _ in pages] == list(range(1, truth["pages"] + 1))
    nodes = [(d, t) for ev, _, d, t in events if ev == "within:nodes"]
    assert nodes and nodes[-1][0] == nodes[-1][1]


def test_library_public_methods_have_docstrings():
    import inspect

    from sleuth.library import Library

    public = [n for n, f in inspect.getmembers(Library, inspect.isfunction) if not n.startswith("_")]
    assert {"add", "remove", "search", "read", "outline", "entity", "look", "sources", "status", "ask"} <= set(public)
    missing = [n for n in public if not (getattr(Library, n).__doc__ or "").strip()]
    assert not missing, missing
