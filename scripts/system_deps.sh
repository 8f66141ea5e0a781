#!/usr/bin/env bash
# System packages the tests need, installed only when missing (a fresh CI machine), without
# prompts. espeak-ng speaks the synthetic talks of the speaker tests; without it they skip. flite
# speaks the made recordings (benchmarks/make_recordings.py: recognised with fewer errors than
# espeak-ng, which stands in when flite is missing).
# SLEUTH_SKIP_SYSTEM_DEPS=1 skips this step (no root, no sudo: install them yourself).
set -euo pipefail
[ "${SLEUTH_SKIP_SYSTEM_DEPS:-0}" = "1" ] && exit 0
need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v flite >/dev/null 2>&1 || need+=(flite)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system_deps: ${need[*]} missing and no apt-get here; install it, or set SLEUTH_SKIP_SYSTEM_DEPS=1" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
    echo "system_deps: ${need[*]} missing; run as root or with sudo, or set SLEUTH_SKIP_SYSTEM_DEPS=1" >&2
    exit 1
  fi
fi
echo "system_deps: installing ${need[*]}" >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
