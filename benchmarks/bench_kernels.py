"""Sparse attention kernels vs torch SDPA on CPU: prefill time and peak memory, decode latency and
resident KV bytes.

    .venv/bin/python benchmarks/bench_kernels.py                 # 8K 16K 32K 64K prefill, 64K 128K decode
    .venv/bin/python benchmarks/bench_kernels.py --quick         # 8K 16K prefill, 16K decode
    .venv/bin/python benchmarks/bench_kernels.py --lengths 32768 --decode-lengths 65536

Shapes: batch 1, 8 query heads, 2 KV heads (GQA), head dim 128; sparse budget 4,096 keys per
query (block 128, top_k 31 earlier blocks + the own block; 1 sink, 1 local).

Memory: each prefill measurement runs in a fresh subprocess. After the inputs exist (and a
small warm-up call), the process resets its peak-RSS counter (``/proc/self/clear_refs`` = 5) and
reads ``VmRSS``; after the timed call it reads ``VmHWM``. Peak memory = VmHWM - VmRSS before:
everything the call allocated at its high point (output included), as the OS saw it, which is
honest for torch's CPU allocator where tracemalloc sees nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HQ, HKV, D = 8, 2, 128
BLOCK, TOP_K = 128, 31


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"benchmarks/bench_kernels.py: {field} not in /proc/self/status")


def _prefill_worker(kind: str, length: int, dtype_name: str) -> dict:
    import torch
    import torch.nn.functional as F

    from sleuth.kernels.block_sparse import block_sparse_attention
    from sleuth.kernels.config import SparseConfig

    dtype = getattr(torch, dtype_name)
    cfg = SparseConfig(block_size=BLOCK, top_k=TOP_K, n_sink=1, n_local=1)
    if kind == "sparse":
        def fn(q, k, v):
            return block_sparse_attention(q, k, v, cfg)
    else:
        def fn(q, k, v):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, HQ, length, D, generator=g).to(dtype)
    k = torch.randn(1, HKV, length, D, generator=g).to(dtype)
    v = torch.randn(1, HKV, length, D, generator=g).to(dtype)
    warm = min(length, 8192)
    fn(q[:, :, :warm].contiguous(), k[:, :, :warm].contiguous(), v[:, :, :warm].contiguous())
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kb("VmRSS")
    t0 = time.perf_counter()
    out = fn(q, k, v)
    seconds = time.perf_counter() - t0
    peak = _status_kb("VmHWM") - before
    del out
    return {"seconds": seconds, "peak_mib": peak / 1024}


def _decode_worker(length: int, dtype_name: str, steps: int) -> dict:
    import torch
    import torch.nn.functional as F

    from sleuth.kernels.config import SparseConfig
    from sleuth.kernels.decode import SleuthLayer, sparse_decode_attention

    dtype = getattr(torch, dtype_name)
    g = torch.Generator().manual_seed(0)
    k = torch.randn(1, HKV, length + steps, D, generator=g).to(dtype)
    v = torch.randn(1, HKV, length + steps, D, generator=g).to(dtype)
    qs = torch.randn(steps, 1, HQ, 1, D, generator=g).to(dtype)
    cfg = SparseConfig(block_size=BLOCK, top_k=TOP_K, n_sink=1, n_local=1)
    result = {}

    # dense baseline: preallocated cache, SDPA of one query over all keys (no concatenation cost)
    times = []
    for s in range(steps):
        n = length + s + 1
        t0 = time.perf_counter()
        F.scaled_dot_product_attention(qs[s], k[:, :, :n], v[:, :, :n], enable_gqa=True)
        times.append(time.perf_counter() - t0)
    result["dense"] = {"ms": 1e3 * statistics.median(times[1:]), "resident_mib": 2 * k[:, :, :length].nbytes / 2**20}

    with tempfile.TemporaryDirectory() as tmp:
        for name, offload in (("sparse", None), ("sparse+disk", "disk")):
            layer = SleuthLayer(cfg, offload, tmp)
            for s0 in range(0, length, 8192):
                layer.update(k[:, :, s0 : min(length, s0 + 8192)], v[:, :, s0 : min(length, s0 + 8192)])
            times = []
            for s in range(steps):
                t0 = time.perf_counter()
                layer.update(k[:, :, length + s : length + s + 1], v[:, :, length + s : length + s + 1])
                sparse_decode_attention(qs[s], layer)
                times.append(time.perf_counter() - t0)
            result[name] = {"ms": 1e3 * statistics.median(times[1:]), "resident_mib": layer.resident_kv_bytes() / 2**20}
            layer.reset()
    return result


def _run_worker(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmarks/bench_kernels.py: worker {args} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=None)
    ap.add_argument("--decode-lengths", type=int, nargs="+", default=None)
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--steps", type=int, default=16, help="decode steps timed per configuration")
    ap.add_argument("--quick", action="store_true", help="8K/16K prefill and 16K decode only")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        kind = a.worker[0]
        if kind == "decode":
            print(json.dumps(_decode_worker(int(a.worker[1]), a.worker[2], int(a.worker[3]))))
        else:
            print(json.dumps(_prefill_worker(kind, int(a.worker[1]), a.worker[2])))
        return

    lengths = a.lengths or ([8192, 16384] if a.quick else [8192, 16384, 32768, 65536])
    decode_lengths = a.decode_lengths or ([16384] if a.quick else [65536, 131072])
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average at start {os.getloadavg()[0]:.1f} (timings are only comparable on an idle machine)")
    print(f"heads {HQ}q/{HKV}kv, head dim {D}, block {BLOCK}, top_k {TOP_K}: {(TOP_K + 1) * BLOCK} keys per query\n")
    print("prefill (one attention call, fresh process per row)")
    header = f"{'dtype':9} {'length':>7} {'sdpa s':>8} {'sparse s':>9} {'speed-up':>8} {'flop ratio':>10} {'sdpa MiB':>9} {'sparse MiB':>10}"
    print(header)
    print("-" * len(header))
    for dtype in a.dtypes:
        for n in lengths:
            dense = _run_worker(["sdpa", str(n), dtype])
            sparse = _run_worker(["sparse", str(n), dtype])
            keys_dense = (n + 1) / 2
            keys_sparse = min((TOP_K + 1) * BLOCK, n) - BLOCK / 2  # own block is causal
            print(
                f"{dtype:9} {n:>7} {dense['seconds']:8.2f} {sparse['seconds']:9.2f} "
                f"{dense['seconds'] / sparse['seconds']:7.2f}x {keys_dense / keys_sparse:9.1f}x "
                f"{dense['peak_mib']:9.0f} {sparse['peak_mib']:10.0f}",
                flush=True,
            )
    print("\ndecode (one layer, per-token latency = append + select + gather + attend; median of steps)")
    header = f"{'dtype':9} {'context':>8} {'variant':12} {'ms/token':>9} {'resident KV MiB':>16}"
    print(header)
    print("-" * len(header))
    for dtype in a.dtypes:
        for n in decode_lengths:
            res = _run_worker(["decode", str(n), dtype, str(a.steps)])
            for name, r in res.items():
                print(f"{dtype:9} {n:>8} {name:12} {r['ms']:9.2f} {r['resident_mib']:16.1f}", flush=True)


if __name__ == "__main__":
    main()
