"""LongBench v1 tasks end to end on real weights: dense SDPA against ``sleuth_sparse`` on the same
prompts, at the same truncation, in the same process (a benchmark, not a test).

    PYTHONPATH=.. .venv/bin/python benchmarks/bench_sparse_longbench.py --model qwen --limit 8 \\
        --max-len 8192 --out /tmp/slb.jsonl       # resumable: finished (item, setting) rows are skipped
    ... --report /tmp/slb.jsonl [--json]          # the table (or JSON) from a results file

Tasks with gold answers and LongBench's own metrics (``sleuth.eval.metrics``):
``passage_retrieval_zh`` (which of 30 passages a summary comes from; ``retrieval_zh_score``) and
``multifieldqa_zh`` (short answers; ``qa_f1_zh_score``), the first ``--limit`` items of each file
in file order (``../shared/data/longbench``). Each prompt is LongBench's template for the task in
the model's chat template, cut in the middle to ``--max-len`` tokens as LongBench's ``pred.py``
does, then greedy decoding of at most LongBench's ``max_gen`` tokens for the task.

Settings (``--settings``): ``dense`` (transformers' SDPA) and ``default``: sleuth_sparse with the
library's default :class:`~sleuth.kernels.config.SparseConfig` (blocks of 128 keys, quest gate,
4,096 keys per query) but ``min_sparse_len`` 0, so that every call is sparse even where the
device's default would still run dense (under 16K keys on a CPU). Any other ``gate-budget`` name
of ``bench_sparse_quality.py`` (``quest-2048``, ``mean-4096``) works too. For each item the settings
run back to back, so a stopped run leaves paired rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_sparse_quality as sq  # noqa: E402

from sleuth.eval import metrics as M  # noqa: E402

# LongBench's config/dataset2prompt.json and dataset2maxlen.json for the two tasks
PROMPTS = {
    "passage_retrieval_zh": ("以下是若干段落文字，以及其中一个段落的摘要。请确定给定的摘要出自哪一段。\n\n{context}\n\n下面是一个摘要\n\n{input}\n\n"
                             "请输入摘要所属段落的编号。答案格式必须是\"段落1\"，\"段落2\"等格式\n\n答案是："),
    "multifieldqa_zh": ("阅读以下文字并用中文简短回答：\n\n{context}\n\n现在请基于上面的文章回答下面的问题，只告诉我答案，不要输出任何其他字词。\n\n"
                        "问题：{input}\n回答："),
}
MAX_GEN = {"passage_retrieval_zh": 32, "multifieldqa_zh": 64}
SCORERS = {"passage_retrieval_zh": M.retrieval_zh_score, "multifieldqa_zh": M.qa_f1_zh_score}
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "longbench"


def items(data: Path, task: str, limit: int) -> list[dict]:
    out = []
    with open(data / f"{task}.jsonl", encoding="utf-8") as f:
        for line in f:
            if len(out) >= limit:
                break
            out.append(json.loads(line))
    return out


def prompt_ids(tok, task: str, item: dict, max_len: int) -> list[int]:
    """LongBench's prompt in the chat template, middle-truncated to ``max_len`` tokens (the
    truncation is applied to the raw prompt, as LongBench's ``pred.py`` does, then the template)."""
    raw = PROMPTS[task].format(context=item["context"], input=item["input"])
    ids = tok(raw, add_special_tokens=False)["input_ids"]
    if len(ids) > max_len:
        half = max_len // 2
        raw = tok.decode(ids[:half], skip_special_tokens=True) + tok.decode(ids[-half:], skip_special_tokens=True)
    text = tok.apply_chat_template([{"role": "user", "content": raw}], add_generation_prompt=True, tokenize=False)
    return tok(text, add_special_tokens=False)["input_ids"]


def setting(name: str) -> dict | None:
    if name == "dense":
        return None
    if name == "default":
        from dataclasses import asdict

        from sleuth.kernels.config import SparseConfig

        cfg = asdict(SparseConfig())
        cfg["min_sparse_len"] = 0
        return cfg
    grid = dict(sq.settings(1 << 30, [int(name.split("-")[1])], [name.split("-")[0]], 128))
    if name not in grid:
        sys.exit(f"bench_sparse_longbench: unknown setting {name!r}: dense, default or gate-budget (quest-4096)")
    return grid[name]


def generate(model, ids: list[int], cfg: dict | None, max_new: int, eos: set[int]) -> tuple[list[int], float]:
    """Greedy new token ids after the prompt, and the prefill seconds."""
    import torch

    sq.apply(model, cfg)
    cache = sq.new_cache(model, cfg)
    t0 = time.perf_counter()
    with torch.inference_mode():
        model(input_ids=torch.tensor([ids[:-1]]), past_key_values=cache, use_cache=True, logits_to_keep=1)
    prefill_s = time.perf_counter() - t0
    _, new, _ = sq.answer(model, cache, ids[-1:], max_new, eos, "cpu")
    return new, prefill_s


def run(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    done = {(r["task"], r["id"], r["setting"]) for r in sq.read_rows(out)}
    names = [s for s in args.settings.split(",") if s]
    cfgs = {s: setting(s) for s in names}
    folder, gguf, label = sq.resolve_model(args.model, Path(args.cache_dir))
    tok = model = None
    for task in [t for t in args.tasks.split(",") if t]:
        for k, it in enumerate(items(Path(args.data), task, args.limit)):
            todo = [s for s in names if (task, it["_id"], s) not in done]
            if not todo:
                continue
            if model is None:
                tok, model = sq.load(folder, gguf, "cpu", args.dtype)
                sq.log(f"{label} loaded")
            ids = prompt_ids(tok, task, it, args.max_len)
            eos = {t for t in (tok.eos_token_id, tok.pad_token_id) if t is not None}
            eos |= {tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>") if t in tok.get_vocab()}
            for s in todo:
                new, prefill_s = generate(model, ids, cfgs[s], MAX_GEN[task], eos)
                pred = tok.decode(new, skip_special_tokens=True)
                score = max(SCORERS[task](pred, g) for g in it["answers"])
                row = {"task": task, "id": it["_id"], "k": k, "setting": s, "model": label, "tokens": len(ids),
                       "score": score, "pred": pred, "prefill_s": round(prefill_s, 2), "max_len": args.max_len,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                with open(out, "a") as f:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                sq.log(f"{task} #{k} {s}: {score:.2f} {pred[:40]!r} ({len(ids)} tokens, prefill {prefill_s:.0f} s)")


def summarise(path: Path) -> list[dict]:
    """Per task and setting over the items every setting finished: mean score × 100, items where
    the setting differs from dense, mean prefill seconds."""
    rows = sq.read_rows(path)
    by: dict[tuple, dict] = {}
    for r in rows:
        by.setdefault((r["task"], r["id"]), {})[r["setting"]] = r
    settings = sorted({r["setting"] for r in rows}, key=lambda s: (s != "dense", s))
    out = []
    for task in sorted({r["task"] for r in rows}):
        paired = [v for (t, _), v in by.items() if t == task and all(s in v for s in settings)]
        for s in settings:
            if not paired:
                continue
            out.append({"task": task, "setting": s, "n": len(paired),
                        "score": round(100 * statistics.fmean(v[s]["score"] for v in paired), 1),
                        "differs_from_dense": sum(1 for v in paired if "dense" in v and v[s]["score"] != v["dense"]["score"]),
                        "mean_tokens": round(statistics.fmean(v[s]["tokens"] for v in paired)),
                        "prefill_s": round(statistics.fmean(v[s]["prefill_s"] for v in paired), 1)})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| task | setting | items | score | items scored differently from dense | mean prompt tokens | mean prefill s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['setting']} | {r['n']} | {r['score']} | {r['differs_from_dense']} | "
                     f"{r['mean_tokens']} | {r['prefill_s']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen", help="qwen, smollm2, a .gguf path or a model folder")
    ap.add_argument("--tasks", default="passage_retrieval_zh,multifieldqa_zh")
    ap.add_argument("--limit", type=int, default=8, help="first N items of each task")
    ap.add_argument("--max-len", type=int, default=8192, help="prompt tokens (LongBench's middle truncation)")
    ap.add_argument("--settings", default="dense,default")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--cache-dir", default=sq.os.environ.get("SLEUTH_MODELS", str(Path.home() / ".cache" / "sleuth" / "models")))
    ap.add_argument("--out", default="bench_sparse_longbench.jsonl")
    ap.add_argument("--report", help="print the table for this results file and exit")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.report:
        rows = summarise(Path(args.report))
        print(json.dumps(rows, indent=1) if args.json else table(rows))
        return
    run(args)


if __name__ == "__main__":
    main()
