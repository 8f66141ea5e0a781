#!/usr/bin/env bash
# Set-up command 2: fresh environment, then the test suite (slow tests: add -m slow).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ENV_DIR="${SLEUTH_ENV:-$ROOT/.venv}"
bash "$ROOT/scripts/make_env.sh" "$ENV_DIR"
cd "$ROOT"
exec "$ENV_DIR/bin/pytest" -q -p no:cacheprovider --timeout 600 "$@"
