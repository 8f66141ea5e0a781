"""Hostile and unusual input through the CLI and the Library (issue "safe on anything").

Each test reproduces one reported defect: document text or file names read as terminal markup,
options that fail per file, tracebacks, pipes, symlinks, read-only libraries, killed runs,
leaked passwords, concurrent creation. Every command must answer with one line, never hang
and never a traceback.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write_corpus
from sleuth.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]  # the folder holding the `sleuth` package
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "HF_HUB_OFFLINE": "1", "COLUMNS": "80"}

HOSTILE_MD = (
    "# G\n\nPaths look like [/etc/hosts] here and [bold]loud[/bold] there.\n\n"
    "Visit [link=https://evil.example]the portal[/link] to reset your password.\n\n"
    "A terminal link \x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\ hidden in escapes.\n"
)


def sleuth(*args, timeout=240, env=None):
    """The real entry point (``main``), as a user runs it."""
    return subprocess.run([sys.executable, "-m", "sleuth.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env or ENV)


def no_traceback(res) -> None:
    out = (res.stdout or "") + (res.stderr or "")
    assert "Traceback" not in out and "╭" not in out, out[-3000:]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    from sleuth.samples import make_report_pdf

    root = tmp_path_factory.mktemp("hostile")
    docs = root / "docs"
    write_corpus(docs, {"f.md": HOSTILE_MD, "empty[bold].txt": "Bracketed name [bold] with text about herons.\n",
                        # "Unit" (a name) and "UNIT" (an acronym): two entities, one normalised name
                        "units.md": "# Units\n\nWe asked the Unit to report on the harbour, and soon the Unit agreed "
                                    "to it. Staff of the UNIT office and the UNIT board met.\n\nIn March the Unit moved "
                                    "to the quay.\n"})
    make_report_pdf(docs / "report.pdf", outline=True)
    res = runner.invoke(app, ["index", str(docs), "--library", str(root / "lib")])
    assert res.exit_code == 0, res.output
    return root, res


# -- 1. untrusted text is never markup ------------------------------------------------------

def test_file_names_are_shown_verbatim(hostile):
    _, res = hostile
    assert "empty[bold].txt" in res.output


def test_search_and_show_print_brackets_verbatim(hostile):
    root, _ = hostile
    lib = str(root / "lib")
    res = runner.invoke(app, ["search", "paths look like", "-L", lib, "-k", "3"])
    assert res.exit_code == 0, res.output
    assert "[/etc/hosts]" in res.output and "[bold]loud[/bold]" in res.output
    hit = json.loads(runner.invoke(app, ["search", "reset your password portal", "-L", lib, "--json", "-k", "1"]).stdout)[0]
    shown = runner.invoke(app, ["show", str(hit["id"]), "-L", lib])
    assert shown.exit_code == 0, shown.output
    # the markup is shown as text, not turned into a (hidden) link
    assert "[link=https://evil.example]the portal[/link]" in shown.output


def test_escape_sequences_from_documents_never_reach_the_terminal(hostile):
    root, _ = hostile
    env = {**ENV, "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}  # as if on a terminal
    res = sleuth("search", "terminal link hidden in escapes", "-L", root / "lib", "-k", "2", env=env)
    assert res.returncode == 0, res.stderr
    assert "hidden in escapes" in res.stdout
    assert "\x1b]8;;https://evil.example" not in res.stdout and "\x1b]8" not in res.stdout


def test_ask_keeps_bracketed_text_in_quotes(hostile):
    root, _ = hostile
    res = runner.invoke(app, ["ask", "Where do paths look like that?", "-L", str(root / "lib")])
    assert res.exit_code == 0, res.output
    ans = json.loads(runner.invoke(app, ["ask", "Where do paths look like that?", "-L", str(root / "lib"), "--json"]).stdout)
    quotes = [c["quote"] for c in ans["citations"] if "[" in c.get("quote", "")]
    assert quotes, ans["citations"]  # the cited paragraph has brackets; the terminal form keeps them
    assert all(" ".join(q.split())[:60] in " ".join(res.output.split()) for q in quotes)


def test_bracketed_argument_is_an_ordinary_missing_path(tmp_path):
    for arg in ("[/]", "[bold]missing.md"):
        res = runner.invoke(app, ["index", arg, "--library", str(tmp_path / "lib")])
        assert res.exit_code == 1 and isinstance(res.exception, (SystemExit, type(None))), repr(res.exception)
        assert f"error: {arg}: no such file" in res.output
        assert Path(arg).name in res.output.split("\n", 1)[1]  # the table row too


# -- 6. one lexical row per entity ----------------------------------------------------------

def test_entity_spellings_are_one_hit(hostile):
    root, _ = hostile
    hits = json.loads(runner.invoke(app, ["search", "unit", "--level", "entity", "-L", str(root / "lib"), "--json"]).stdout)
    ids = [h["entity"]["id"] for h in hits]
    assert ids and len(ids) == len(set(ids)), ids


# -- 7. options are checked once, before work -----------------------------------------------

def test_bad_ocr_or_asr_is_one_usage_error_before_work(tmp_path):
    write_corpus(tmp_path / "docs", {"a.md": "# A\n\nText.\n", "b.md": "# B\n\nText.\n"})
    for opt in (["--ocr", "sideways"], ["--asr", "loud"]):
        res = runner.invoke(app, ["index", str(tmp_path / "docs"), "-L", str(tmp_path / "lib"), *opt])
        assert res.exit_code == 2, res.output
        assert res.output.count("Invalid value") == 1 and opt[1] in res.output and opt[0] in res.output
        assert "a.md" not in res.output and "b.md" not in res.output  # not one failure per file
        assert not (tmp_path / "lib").exists()  # nothing was done


def test_asr_off_is_accepted():
    from sleuth.readers import check_modes

    assert check_modes("off", "off") == ("off", "none")
    from sleuth.readers.video.speech import recognise

    assert recognise("/nonexistent.mp4", "off", True, []) == ([], "none")


# -- 8. no tracebacks -------------------------------------------------------------------------

def test_huge_ids_are_not_found_not_crashes(hostile):
    root, _ = hostile
    lib = str(root / "lib")
    res = sleuth("search", "x", "--within", "99999999999999999999999", "-L", lib)
    no_traceback(res)
    assert res.returncode == 2 and "no node 99999999999999999999999" in res.stderr
    res = sleuth("show", "99999999999999999999", "-L", lib)
    no_traceback(res)
    assert res.returncode == 2 and "no node" in res.stderr


def test_show_png_errors_are_one_line(hostile, tmp_path):
    root, _ = hostile
    lib = str(root / "lib")
    hit = json.loads(runner.invoke(app, ["search", "report", "--level", "paragraph", "--within", "report.pdf",
                                         "-L", lib, "--json", "-k", "1"]).stdout)[0]
    res = runner.invoke(app, ["show", str(hit["id"]), "-L", lib, "--png", str(tmp_path)])
    assert res.exit_code == 2 and "is a directory" in res.output, res.output
    pdf = root / "docs" / "report.pdf"
    moved = root / "moved.pdf"
    pdf.rename(moved)
    try:
        res = runner.invoke(app, ["show", str(hit["id"]), "-L", lib, "--png", str(tmp_path / "a.png")])
        assert res.exit_code == 2 and "report.pdf" in res.output and "no longer exists" in res.output, res.output
        # another PDF at the path: its pages are not the indexed ones, so no box is drawn on it
        from sleuth.samples import make_two_column_pdf

        make_two_column_pdf(pdf)
        res = runner.invoke(app, ["show", str(hit["id"]), "-L", lib, "--png", str(tmp_path / "b.png")])
        assert res.exit_code == 2 and "changed since it was indexed" in res.output, res.output
        assert not (tmp_path / "b.png").exists()
    finally:
        pdf.unlink(missing_ok=True)
        moved.rename(pdf)


def test_damaged_database_is_one_line(tmp_path):
    write_corpus(tmp_path / "docs", {f"n{i}.md": f"# N{i}\n\n" + "Words about tides. " * 400 for i in range(6)})
    assert runner.invoke(app, ["index", str(tmp_path / "docs"), "-L", str(tmp_path / "lib")]).exit_code == 0
    db = tmp_path / "lib" / "library.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(db.read_bytes())
    page = 4096
    for p in range(2, len(data) // page):  # every page after the schema's: garbage
        data[p * page:(p + 1) * page] = os.urandom(page)
    db.write_bytes(bytes(data))
    for cmd in (["status"], ["index", str(tmp_path / "docs")], ["search", "tides"]):
        res = sleuth(*cmd, "-L", tmp_path / "lib")
        no_traceback(res)
        assert res.returncode in (1, 2), res.stderr
        lines = [l for l in res.stderr.splitlines() if l.startswith("error:")]
        assert len(lines) == 1 and "malformed" in lines[0] or "not a database" in lines[0], res.stderr


# -- 9. pipes and other non-regular files ------------------------------------------------------

def test_named_pipe_is_skipped_not_opened(tmp_path):
    write_corpus(tmp_path / "docs", {"a.md": "# A\n\nHerons nest here.\n"})
    fifo = tmp_path / "docs" / "pipe.txt"
    os.mkfifo(fifo)
    res = sleuth("index", fifo, tmp_path / "docs", "-L", tmp_path / "lib", "--json", timeout=180)
    no_traceback(res)
    rep = json.loads(res.stdout)
    assert rep["counts"]["added"] == 1
    failed = [f for f in rep["files"] if f["status"] == "failed"]
    assert failed and all("pipe.txt" in f["reason"] and "not a regular file" in f["reason"] for f in failed)


# -- 10. two processes creating one library -------------------------------------------------

def test_concurrent_creation_of_a_new_library(tmp_path):
    code = ("import sys, time; from sleuth.library import Library;"
            "t=float(sys.argv[2]); time.sleep(max(0, t-time.time()));"
            "Library(sys.argv[1]).close(); print('ok')")
    for trial in range(3):
        home = tmp_path / f"lib{trial}"
        home.mkdir()
        start = time.time() + 15  # after every process has imported
        procs = [subprocess.Popen([sys.executable, "-c", code, str(home), str(start)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(6)]
        for p in procs:
            out, errs = p.communicate(timeout=120)
            assert p.returncode == 0 and out.strip() == "ok", errs[-1500:]


# -- 11. symlinks are indexed as links --------------------------------------------------------

def test_symlink_is_indexed_and_pruned_as_the_link(tmp_path):
    outside = tmp_path / "outside"
    write_corpus(outside, {"target.md": "# Target\n\nCormorants dry their wings on the pier.\n"})
    docs = tmp_path / "docs"
    write_corpus(docs, {"a.md": "# A\n\nHerons.\n"})
    link = docs / "link.md"
    link.symlink_to(outside / "target.md")
    lib = str(tmp_path / "lib")
    rep = json.loads(runner.invoke(app, ["index", str(docs), "-L", lib, "--json"]).stdout)
    assert rep["counts"]["added"] == 2
    assert str(link.parent.resolve() / "link.md") in [f["path"] for f in rep["files"]]
    hit = json.loads(runner.invoke(app, ["search", "cormorants dry wings", "-L", lib, "--json", "-k", "1"]).stdout)[0]
    assert hit["source"] == "link.md"
    link.unlink()
    rep = json.loads(runner.invoke(app, ["index", str(docs), "-L", lib, "--prune", "--json"]).stdout)
    assert rep["counts"]["pruned"] == 1
    hits = json.loads(runner.invoke(app, ["search", "cormorants dry wings", "-L", lib, "--json"]).stdout)
    assert all(h["source"] != "link.md" for h in hits)


def test_broken_symlink_names_the_link(tmp_path):
    docs = tmp_path / "docs"
    write_corpus(docs, {"a.md": "# A\n\nHerons.\n"})
    (docs / "gone.md").symlink_to(tmp_path / "nowhere.md")
    rep = json.loads(runner.invoke(app, ["index", str(docs), "-L", str(tmp_path / "lib"), "--json"]).stdout)
    failed = [f for f in rep["files"] if f["status"] == "failed"]
    assert len(failed) == 1 and "gone.md" in failed[0]["reason"] and "nowhere" not in failed[0]["reason"]


# -- 12. read-only commands never create libraries --------------------------------------------

def test_read_commands_never_create_a_library(tmp_path):
    typo = tmp_path / "typo_dir"
    for cmd in (["search", "x"], ["status"], ["show", "1"], ["ask", "x"]):
        res = runner.invoke(app, [*cmd, "-L", str(typo)])
        assert res.exit_code == 2 and "not a sleuth library" in res.output, res.output
        assert not typo.exists()
    folder = tmp_path / "any_folder"
    folder.mkdir()
    res = runner.invoke(app, ["status", "-L", str(folder)])
    assert res.exit_code == 2 and list(folder.iterdir()) == []


def test_deleted_database_is_not_silently_recreated(hostile, tmp_path):
    root, _ = hostile
    copy = tmp_path / "lib"
    shutil.copytree(root / "lib", copy)
    for f in copy.glob("library.db*"):
        f.unlink()
    res = runner.invoke(app, ["search", "herons", "-L", str(copy)])
    assert res.exit_code == 2 and "no library.db" in res.output
    assert not (copy / "library.db").exists()


# -- 13. a library on a read-only mount -------------------------------------------------------

def test_library_on_a_read_only_mount_can_be_searched(hostile, tmp_path):
    root, _ = hostile
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) for a private read-only mount")
    src = tmp_path / "lib"
    shutil.copytree(root / "lib", src)
    ro = tmp_path / "ro"
    ro.mkdir()
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind -o ro '{src}' '{ro}'"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no permission for a private read-only bind mount")
    script = (f"mount --bind -o ro '{src}' '{ro}' && touch '{ro}/w' 2>/dev/null && echo WRITABLE; "
              f"'{sys.executable}' -m sleuth.cli search 'paths look like' -L '{ro}' --json -k 2 && "
              f"'{sys.executable}' -m sleuth.cli status -L '{ro}' --json")
    res = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=240, env=ENV)
    assert "WRITABLE" not in res.stdout
    assert res.returncode == 0, res.stderr[-2000:]
    dec = json.JSONDecoder()
    hits, end = dec.raw_decode(res.stdout.lstrip())
    assert hits and hits[0]["source"] == "f.md"
    st = json.loads(res.stdout.lstrip()[end:])
    assert st["read_only"] is True and st["sources"]["document"] >= 3


# -- 14. one failure, one log line -------------------------------------------------------------

def test_errors_are_not_wrapped_when_stderr_is_a_file(tmp_path):
    docs = tmp_path / "docs"
    name = "a_rather_long_file_name_that_would_wrap_at_eighty_columns_" + "x" * 40 + ".pdf"
    docs.mkdir()
    (docs / name).write_bytes(b"%PDF-1.7\n garbage")
    res = sleuth("index", docs, "-L", tmp_path / "lib")
    no_traceback(res)
    lines = [l for l in res.stderr.splitlines() if name in l]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr


# -- 15. killed runs ---------------------------------------------------------------------------

def test_a_killed_run_is_not_running_forever(tmp_path):
    from sleuth.library import Library

    lib = Library(tmp_path / "lib")
    with lib.write_lock():
        lib._ingestor.start_run()
        assert lib.status()["last_run"]["status"] == "running"  # the lock is held: it is
    # the run's process is gone (nothing holds the lock): it was killed
    assert lib.status()["last_run"]["status"] == "killed"
    res = runner.invoke(app, ["status", "-L", str(tmp_path / "lib")])
    assert "killed" in res.output and "running" not in res.output
    write_corpus(tmp_path / "docs", {"a.md": "# A\n\nText.\n"})
    lib.add([tmp_path / "docs"])
    con = sqlite3.connect(tmp_path / "lib" / "library.db")
    assert [r[0] for r in con.execute("select status from runs order by id")] == ["killed", "done"]
    con.close()
    lib.close()


# -- 16. unreadable folders are reported --------------------------------------------------------

def test_unreadable_subfolder_is_reported(tmp_path):
    docs = tmp_path / "docs"
    write_corpus(docs, {"a.md": "# A\n\nText.\n", "locked/b.md": "# B\n\nText.\n"})
    os.chmod(docs / "locked", 0)
    os.chmod(tmp_path, 0o755)
    code = ("import sys, json; from sleuth.index.ingest import expand_paths;"
            "files, errs = expand_paths([sys.argv[1]]);"
            "print(json.dumps([[str(f) for f in files], [e.reason for e in errs]]))")
    cmd = [sys.executable, "-c", code, str(docs)]
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that let it
        if shutil.which("capsh") is None:
            pytest.skip("running as root without capsh to drop DAC capabilities")
        cmd = ["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", " ".join(f"'{c}'" for c in cmd)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=ENV)
    finally:
        os.chmod(docs / "locked", 0o755)
    assert res.returncode == 0, res.stderr
    files, errs = json.loads(res.stdout)
    assert [Path(f).name for f in files] == ["a.md"]
    assert len(errs) == 1 and "locked" in errs[0] and "cannot read folder" in errs[0]


# -- 17. passwords never echoed -------------------------------------------------------------------

def test_database_password_is_masked_in_errors():
    res = runner.invoke(app, ["status", "-L", "postgresql+psycopg://admin:S3cret@127.0.0.1:1/db"])
    assert res.exit_code == 2, res.output
    assert "S3cret" not in res.output and "admin:***@" in res.output


def test_mask_url():
    from sleuth.library import mask_url

    assert mask_url("x postgresql+psycopg://u:p%40ss@h:5/d y") == "x postgresql+psycopg://u:***@h:5/d y"
    assert mask_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
