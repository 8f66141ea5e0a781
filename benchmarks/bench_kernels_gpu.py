"""Sparse prefill attention against PyTorch SDPA on a CUDA device: one attention call, no model.

    python benchmarks/bench_kernels_gpu.py --out kernels_gpu.jsonl        # 16K..128K, table on stdout

Shapes are Qwen2.5-1.5B's attention (batch 1, 12 query heads, 2 KV heads, head dim 128, bfloat16);
the sparse budget is 4,096 keys per query (block 128, top_k 31 earlier blocks + the own block).
Per length: SDPA (``is_causal``, ``enable_gqa``; PyTorch picks flash attention), the Triton prefill
with its gate (``plan_blocks``) included and given a precomputed selection, and the torch prefill
(up to ``--torch-max`` tokens: it loops over query tiles in Python). Times are medians of
``triton.testing.do_bench`` (CUDA events, warm-up first). FLOP ratio = dense causal score+value
FLOPs over the sparse kernel's. CUDA only: the CPU figures come from ``bench_kernels.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

HQ, HKV, D = 12, 2, 128


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lengths", default="16384,32768,65536,131072")
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--budget", type=int, default=4096, help="keys per query: block x (top_k + 1)")
    ap.add_argument("--gate", default="quest")
    ap.add_argument("--torch-max", type=int, default=32768)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F
    from triton.testing import do_bench

    from sleuth.kernels import block_sparse
    from sleuth.kernels.block_sparse import block_sparse_attention, plan_blocks
    from sleuth.kernels.config import SparseConfig
    from sleuth.kernels.triton_prefill import triton_block_sparse_attention

    if not torch.cuda.is_available():
        sys.exit("bench_kernels_gpu: needs a CUDA device (the CPU benchmark is bench_kernels.py)")
    dtype = getattr(torch, args.dtype)
    cfg = SparseConfig(block_size=args.block, top_k=args.budget // args.block - 1, n_sink=1, n_local=1,
                       gate=args.gate, min_sparse_len=0)
    rows = []
    for length in [int(x) for x in args.lengths.split(",") if x]:
        g = torch.Generator(device="cuda").manual_seed(length)
        q = torch.randn(1, HQ, length, D, device="cuda", dtype=dtype, generator=g)
        k = torch.randn(1, HKV, length, D, device="cuda", dtype=dtype, generator=g)
        v = torch.randn(1, HKV, length, D, device="cuda", dtype=dtype, generator=g)
        sel = plan_blocks(q, k, cfg)
        n_blocks = -(-length // args.block)
        dense_flop = 4 * HQ * D * length * (length + 1) / 2
        sparse_flop = 4 * HQ * D * length * min(length, args.budget)
        row = {"length": length, "dtype": args.dtype, "budget": args.budget, "gate": args.gate,
               "n_blocks": n_blocks, "flop_ratio": dense_flop / sparse_flop, "device": torch.cuda.get_device_name(0)}
        ms = lambda fn: do_bench(fn, warmup=50, rep=300, return_mode="median")  # noqa: E731
        row["sdpa_ms"] = ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True))
        row["triton_ms"] = ms(lambda: triton_block_sparse_attention(q, k, v, cfg))
        row["triton_kernel_ms"] = ms(lambda: triton_block_sparse_attention(q, k, v, cfg, selection=sel))
        row["gate_ms"] = ms(lambda: plan_blocks(q, k, cfg))
        if args.gate == "quest":  # the torch gate (the reference), for comparison with the Triton one
            real = block_sparse._triton_ok
            block_sparse._triton_ok = lambda: False
            try:
                row["gate_torch_ms"] = ms(lambda: plan_blocks(q, k, cfg))
                # share of selected block slots that agree (float32 summation order may break near-ties)
                same = (plan_blocks(q, k, cfg).blocks == sel.blocks).float().mean().item()
            finally:
                block_sparse._triton_ok = real
            row["gate_same_selection"] = same
        if length <= args.torch_max:
            row["torch_sparse_ms"] = ms(lambda: block_sparse_attention(q, k, v, cfg))
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        torch.cuda.synchronize()
        row["sdpa_peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        torch.cuda.reset_peak_memory_stats()
        triton_block_sparse_attention(q, k, v, cfg)
        torch.cuda.synchronize()
        row["triton_peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        row["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
        del q, k, v, sel
        torch.cuda.empty_cache()
    print("| length | SDPA ms | Triton sparse ms (gate incl.) | kernel only | gate | torch gate | same blocks as torch gate | torch sparse ms "
          "| speed-up (Triton, gate incl.) | FLOP ratio | SDPA peak MiB | Triton peak MiB |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        ts = f"{r['torch_sparse_ms']:.2f}" if "torch_sparse_ms" in r else ""
        tg = f"{r['gate_torch_ms']:.2f}" if "gate_torch_ms" in r else ""
        agree = f"{100 * r['gate_same_selection']:.2f}%" if "gate_same_selection" in r else ""
        print(f"| {r['length']} | {r['sdpa_ms']:.2f} | {r['triton_ms']:.2f} | {r['triton_kernel_ms']:.2f} | {r['gate_ms']:.2f} | {tg} | "
              f"{agree} | {ts} | "
              f"{r['sdpa_ms'] / r['triton_ms']:.2f}x | {r['flop_ratio']:.1f}x | {r['sdpa_peak_mib']:.0f} | {r['triton_peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
