"""The Typer CLI: --json on every command, exit codes, rendering, cancellation."""

import json
import signal
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


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory):
    from sleuth.samples import make_report_pdf

    root = tmp_path_factory.mktemp("cli")
    docs = root / "docs"
    write_corpus(docs, {"notes.md": "# Notes\n\n## Harbour\n\nThe harbour wall was rebuilt in 1998 with basalt blocks.\n"})
    make_report_pdf(docs / "report.pdf", outline=True)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage")
    res = runner.invoke(app, ["index", str(docs), "--library", str(root / "lib"), "--json"])
    return root, res


def _json(res):
    assert res.stdout.strip(), res.output
    return json.loads(res.stdout)


def test_index_json_and_exit_code_for_failures(lib_dir):
    _, res = lib_dir
    assert res.exit_code == 1  # one file failed, the others are indexed
    rep = _json(res)
    assert rep["counts"]["added"] == 2 and rep["counts"]["failed"] == 1
    failed = [f for f in rep["files"] if f["status"] == "failed"][0]
    assert "broken.pdf" in failed["reason"] and "\n" not in failed["reason"]


def test_search_show_status_json(lib_dir, tmp_path):
    root, _ = lib_dir
    lib = str(root / "lib")
    hits = _json(runner.invoke(app, ["search", "harbour wall basalt", "--library", lib, "--json", "-k", "3"]))
    assert hits[0]["source"] == "notes.md" and hits[0]["locator"]["char_start"] is not None
    shown = _json(runner.invoke(app, ["show", str(hits[0]["id"]), "--library", lib, "--json"]))
    assert shown["id"] == hits[0]["id"] and "basalt" in shown["text"]
    st = _json(runner.invoke(app, ["status", "--library", lib, "--json"]))
    assert st["sources"] == {"document": 2} and st["last_run"]["failed"] == 1
    assert any("broken.pdf" in f["reason"] for f in st["failures"])
    bad = runner.invoke(app, ["show", "999999", "--library", lib])
    assert bad.exit_code == 2 and "no node" in bad.output
    lvl = runner.invoke(app, ["search", "x", "--level", "chapter", "--library", lib])
    assert lvl.exit_code == 2 and "--level" in lvl.output and "chapter" in lvl.output


def test_show_png_draws_the_box(lib_dir, tmp_path):
    from PIL import Image

    root, _ = lib_dir
    lib = str(root / "lib")
    hits = _json(runner.invoke(app, ["search", "report", "--level", "paragraph", "--within", "report.pdf",
                                     "--library", lib, "--json"]))
    node = hits[0]
    out = tmp_path / "node.png"
    res = runner.invoke(app, ["show", str(node["id"]), "--library", lib, "--png", str(out)])
    assert res.exit_code == 0, res.output
    img = Image.open(out).convert("RGB")
    x0, top, x1, bottom = node["locator"]["bbox"]
    scale = img.size[0] / 612.0  # the sample report is US Letter, 612 pt wide
    # the drawn rectangle's edge is coloured (not white/black text) near the box's left edge
    px = [img.getpixel((int(x0 * scale) - d, int((top + bottom) / 2 * scale))) for d in range(0, 4)]
    assert any(p[0] > 150 and p[1] < 100 and p[2] < 100 for p in px), px


def test_ask_json_cites_a_place(lib_dir):
    root, _ = lib_dir
    res = runner.invoke(app, ["ask", "When was the harbour wall rebuilt?", "--library", str(root / "lib"), "--json"])
    assert res.exit_code == 0, res.output
    ans = json.loads(res.stdout)
    assert "1998" in ans["text"]
    assert ans["citations"][0]["locator"]["source"] == "notes.md"
    empty = runner.invoke(app, ["ask", "  ", "--library", str(root / "lib")])
    assert empty.exit_code == 2 and "empty question" in empty.output


def test_busy_library_exit_code(lib_dir):
    import fcntl

    root, _ = lib_dir
    with open(root / "lib" / "index.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        res = runner.invoke(app, ["index", str(root / "docs" / "notes.md"), "--library", str(root / "lib")])
    assert res.exit_code == 3 and "another" in res.output


def test_ctrl_c_cancels_cleanly_and_resumes(tmp_path):
    docs = tmp_path / "docs"
    write_corpus(docs, {f"f{i:03d}.txt": f"File {i}\n\n" + "\n\n".join(
        f"Paragraph {j} of file {i} about item {i * 50 + j}. " * 4 for j in range(15)) for i in range(60)})
    home = tmp_path / "lib"
    cmd = [sys.executable, "-m", "sleuth.cli", "index", str(docs), "--library", str(home)]
    # A suite started in the background by a non-interactive shell inherits SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler: give the child the default back.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        try:
            con = sqlite3.connect(home / "library.db")
            n = con.execute("select count(*) from sources").fetchone()[0]
            con.close()
            if n >= 2:
                break
        except sqlite3.OperationalError:
            pass
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-1000:]
    assert "cancelled" in err
    con = sqlite3.connect(home / "library.db")
    run = con.execute("select status from runs order by id desc limit 1").fetchone()[0]
    n_src, n_nodes, sum_nodes = con.execute("select count(*), (select count(*) from nodes), sum(n_nodes) from sources").fetchone()
    con.close()
    assert run == "cancelled" and 0 < n_src < 60 and n_nodes == sum_nodes
    done = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300)
    rep = json.loads(done.stdout)
    assert done.returncode == 0 and rep["counts"]["skipped"] == n_src and rep["counts"]["added"] == 60 - n_src
