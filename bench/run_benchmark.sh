#!/usr/bin/env bash
# Stock Model Garden vs mrpc_task, one run, same data / encoder / recipe (docs/PERFORMANCE.md).
#
#   MRPC_DATA_DIR=../shared/data/mrpc bench/run_benchmark.sh              # 3 seeds each
#   SEEDS=1 bench/run_benchmark.sh --train_steps=114                       # a quick look
#
# Results go to $BENCH_DIR (default runs/bench): per-run logs, results.json, and a table on
# stdout whose last line is `speedup: N.NNx`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
export MRPC_DATA_DIR=$(realpath "${MRPC_DATA_DIR:-../shared/data/mrpc}")
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
exec .venv/bin/python bench/benchmark.py --output_dir="${BENCH_DIR:-runs/bench}" \
  --seeds="${SEEDS:-3}" "$@"
