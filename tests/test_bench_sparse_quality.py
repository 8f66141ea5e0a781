"""benchmarks/bench_sparse_quality.py: the grid, the resume keys and the summary against dense
(the model runs themselves are minutes long; their figures are in docs/kernels.md)."""

import importlib.util
import json
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sparse_quality.py"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench():
    return _load(PATH)


def test_grid_maps_budgets_to_top_k_and_skips_budgets_that_are_dense(bench):
    grid = dict(bench.settings(4096, [1024, 2048, 4096], ["mean", "quest", "dhsa"], 128))
    assert grid["dense"] is None
    assert "quest-4096" not in grid  # 4,096 keys of 4,096: dense, not measured as sparse
    assert grid["quest-1024"]["top_k"] == 7 and grid["quest-2048"]["top_k"] == 15
    assert grid["quest-2048"]["gate"] == grid["quest-2048"]["decode_gate"] == "quest"
    assert grid["mean-1024"]["gate"] == "mean" and grid["dhsa-1024"]["mode"] == "varlen"
    assert all(c["min_sparse_len"] == 0 for c in grid.values() if c)  # every call sparse
    with pytest.raises(SystemExit):
        bench.settings(8192, [1024], ["nope"], 128)


def test_grid_adds_local_window_variants_by_name(bench):
    grid = dict(bench.settings(8192, [2048], ["quest"], 128, locals_=(1, 4)))
    assert grid["quest-2048"]["n_local"] == 1 and grid["quest-2048-l4"]["n_local"] == 4
    assert grid["quest-2048-l4"]["top_k"] == grid["quest-2048"]["top_k"] == 15
    # more forced local blocks than the budget holds: not a setting
    assert "quest-256-l4" not in dict(bench.settings(8192, [256], ["quest"], 128, locals_=(4,)))


def test_head_policies_are_settings_resolved_from_the_scores(bench, tmp_path):
    grid = dict(bench.settings(16384, [], [], 128, heads="kv25-w1024,q15-w512"))
    cfg = grid["heads-kv25-w1024"]
    assert cfg["head_policy"] == {"per": "kv", "dense_fraction": 0.25, "window": 1024, "kind": "induction"}
    assert cfg["gate"] == "window" and cfg["min_sparse_len"] == 0
    assert grid["heads-q15-w512"]["head_policy"]["per"] == "query"
    assert bench.head_specs("farkv25-w1024") == [("heads-farkv25-w1024", "kv", 0.25, 1024, "far")]
    with pytest.raises(SystemExit):
        bench.settings(16384, [], [], 128, heads="kv25")
    scores = {"version": 1, "n_kv_heads": 1, "echo": [[0.0, 0.0], [0.0, 0.0]], "induction": [[0.5, 0.1], [0.0, 0.2]]}
    got = bench.resolve_heads(grid["heads-q15-w512"], scores)
    assert "head_policy" not in got and got["head_budgets"] == [[-1, 3], [3, 3]]  # 15% of 4 heads: one dense
    assert bench.resolve_heads(None, scores) is None
    assert bench.scores_path(tmp_path, "m.Q4.gguf", "x") == tmp_path / "m.Q4.heads.json"


def _rows(tmp_path, rows):
    p = tmp_path / "r.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    return p


def test_summary_compares_each_setting_with_dense_of_its_length(bench, tmp_path):
    base = {"model": "m", "length": 8192}
    p = _rows(tmp_path, [
        {**base, "setting": "dense", "kind": "prefill", "prefill_s": 10.0, "ppl": 10.0, "peak_mib": 1},
        {**base, "setting": "dense", "kind": "needle", "needle": "a", "found": True, "answer": " 1"},
        {**base, "setting": "dense", "kind": "needle", "needle": "b", "found": False, "answer": " 7"},
        {**base, "setting": "quest-2048", "kind": "prefill", "prefill_s": 4.0, "ppl": 10.5, "peak_mib": 1},
        {**base, "setting": "quest-2048", "kind": "needle", "needle": "a", "found": False, "answer": " 9"},
        {**base, "setting": "quest-2048", "kind": "needle", "needle": "b", "found": False, "answer": " 7"},
    ])
    rows = {r["setting"]: r for r in bench.summarise(p)}
    q = rows["quest-2048"]
    assert q["ppl_ratio"] == pytest.approx(1.05) and q["speedup"] == pytest.approx(2.5)
    assert q["needle_delta_points"] == pytest.approx(-50.0)
    assert q["same_as_dense"] == "1/2"
    assert "| quest-2048 | 0/2 | -50 | 1/2 | 10.500 | 1.050 |" in bench.table(list(rows.values()))
    assert bench.done_keys(p) >= {("m", 8192, "dense", "prefill", None), ("m", 8192, "quest-2048", "needle", "b")}


def test_needles_are_distinct_and_repeatable(bench):
    a, b = bench.needles(6), bench.needles(6)
    assert a == b
    assert len({w for w, _ in a}) == 6 and all(len(c) == 7 and c.isdigit() for _, c in a)


LB_PATH = PATH.with_name("bench_sparse_longbench.py")


@pytest.fixture(scope="module")
def longbench():
    return _load(LB_PATH)


def test_longbench_settings_default_is_the_library_default_made_always_sparse(longbench):
    from sleuth.kernels.config import SparseConfig

    assert longbench.setting("dense") is None
    d = longbench.setting("default")
    assert d["min_sparse_len"] == 0
    assert (d["block_size"], d["top_k"], d["gate"]) == (SparseConfig().block_size, SparseConfig().top_k, SparseConfig().gate)
    assert longbench.setting("quest-2048")["top_k"] == 15
    with pytest.raises(SystemExit):
        longbench.setting("nope-2048")


def test_longbench_truncation_keeps_head_and_tail(longbench):
    class Tok:  # one token per character, no chat template to speak of
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [ord(c) for c in text]}

        def decode(self, ids, skip_special_tokens=True):
            return "".join(chr(i) for i in ids)

        def apply_chat_template(self, msgs, add_generation_prompt=True, tokenize=False):
            return "<u>" + msgs[0]["content"] + "<a>"

    item = {"context": "A" * 500 + "B" * 500, "input": "问题"}
    ids = longbench.prompt_ids(Tok(), "multifieldqa_zh", item, 200)
    text = "".join(chr(i) for i in ids)
    assert len(ids) == 200 + len("<u><a>")
    assert text.startswith("<u>阅读以下文字") and text.endswith("回答：<a>")  # LongBench's head and tail survive
    short = longbench.prompt_ids(Tok(), "multifieldqa_zh", {"context": "C" * 10, "input": "q"}, 200)
    assert "C" * 10 in "".join(chr(i) for i in short)


def test_longbench_summary_pairs_items_across_settings(longbench, tmp_path):
    rows = [
        {"task": "t", "id": "a", "setting": "dense", "score": 1.0, "tokens": 100, "prefill_s": 2.0},
        {"task": "t", "id": "a", "setting": "default", "score": 0.0, "tokens": 100, "prefill_s": 1.0},
        {"task": "t", "id": "b", "setting": "dense", "score": 1.0, "tokens": 300, "prefill_s": 4.0},
        {"task": "t", "id": "b", "setting": "default", "score": 1.0, "tokens": 300, "prefill_s": 3.0},
        {"task": "t", "id": "c", "setting": "dense", "score": 0.0, "tokens": 50, "prefill_s": 1.0},  # unpaired
    ]
    p = tmp_path / "r.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    got = {r["setting"]: r for r in longbench.summarise(p)}
    assert got["dense"]["n"] == got["default"]["n"] == 2
    assert got["dense"]["score"] == 100.0 and got["default"]["score"] == 50.0
    assert got["default"]["differs_from_dense"] == 1 and got["dense"]["differs_from_dense"] == 0
    assert got["default"]["prefill_s"] == 2.0 and got["dense"]["mean_tokens"] == 200
