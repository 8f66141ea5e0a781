#!/usr/bin/env bash
# Set-up command 1: fresh environment, then the demo on the embedded default
# (SQLite + faiss-cpu + packaged MiniLM + PP-OCR ONNX + heuristic planner; no network, no GPU).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ENV_DIR="${SLEUTH_ENV:-$ROOT/.venv}"
bash "$ROOT/scripts/make_env.sh" "$ENV_DIR"
cd "$ROOT"
exec "$ENV_DIR/bin/sleuth" demo --workdir "${1:-demo_out}"
