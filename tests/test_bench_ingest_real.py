"""benchmarks/bench_ingest_real.py end to end on a few real one-line files: the stage split adds
up, the JSON has what the README quotes, and a part under its target fails the run."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_ingest_real.py"


def _run(tmp_path, data, *args):
    out = tmp_path / "r.json"
    res = subprocess.run([sys.executable, str(BENCH), "--parts", "small", "--files", "25", "--json", str(out),
                          "--data", str(data), *args],
                         capture_output=True, text=True, timeout=600)
    return res, (json.loads(out.read_text()) if out.exists() else None)


def test_small_files_part_reports_stages_and_fails_under_target(tmp_path, shared_data):
    res, data = _run(tmp_path, shared_data, "--min-files-per-s", "0")
    assert res.returncode == 0, res.stderr[-2000:]
    (who, parts), = data["results"].items()
    r = parts["small"]
    assert r["files"] == 25 and r["files_per_s"] > 0 and r["peak_rss_mb"] > 50
    assert {"read", "embed", "db", "commit", "lexical"} <= set(r["stages_s"])
    # one process, no PDF: the stages and what is outside them make up the wall time
    assert abs(sum(r["stages_s"].values()) + r["other_s"] - r["wall_s"]) < 0.1
    assert "| **files/s** |" in res.stdout
    res, _ = _run(tmp_path, shared_data, "--min-files-per-s", "1e9")
    assert res.returncode == 1 and "under target: small files" in res.stderr
