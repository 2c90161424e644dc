#!/usr/bin/env bash
# The main job: set up, then train + evaluate + export one experiment.
#
#   MRPC_DATA_DIR=../shared/data/mrpc ./run_experiment.sh          # default: bert_mrpc_minilm
#   EXPERIMENT=bert_mrpc_tiny MODEL_DIR=/tmp/tiny ./run_experiment.sh --params_override=...
#
# MODEL_DIR (default runs/$EXPERIMENT, git-ignored) receives checkpoints, TensorBoard logs and
# params.yaml; the SavedModel goes to $MODEL_DIR/export and PNG plots to $MODEL_DIR/report.
# A MODEL_DIR that already holds an export or a report is refused before anything runs
# (OVERWRITE=1 replaces them; training itself resumes from the last checkpoint).
# Extra arguments go to `tfm train_experiment`; --params_override, --config_file and --import
# ones go to `tfm export` too. Checkpoints are saved synchronously here: the background save
# keeps a copy of every weight and Adam slot (+0.37 GiB peak on MiniLM) and trained no faster
# on 2 CPU cores (docs/PERFORMANCE.md, "Memory"); --enable_async_checkpointing turns it back on.
set -euo pipefail
cd "$(dirname "$0")"
EXPERIMENT=${EXPERIMENT:-bert_mrpc_minilm}
MODEL_DIR=${MODEL_DIR:-runs/$EXPERIMENT}
overwrite=()
if [ "${OVERWRITE:-0}" = 1 ]; then
  overwrite=(--overwrite)
else
  for output in "$MODEL_DIR/export" "$MODEL_DIR/report"; do
    if [ -e "$output" ] && [ -n "$(ls -A "$output")" ]; then
      echo "run_experiment.sh: error: $output already exists (an earlier run's); set" \
        "OVERWRITE=1 to replace it, or MODEL_DIR=another/folder for a new run" >&2
      exit 1
    fi
  done
fi
if [ -n "${MRPC_DATA_DIR:-}" ]; then
  if [ ! -f "$MRPC_DATA_DIR/train.tsv" ]; then
    echo "run_experiment.sh: error: MRPC_DATA_DIR=$MRPC_DATA_DIR: no train.tsv there (it must" \
      "name the GLUE MRPC folder holding train.tsv and dev.tsv)" >&2
    exit 1
  fi
  export MRPC_DATA_DIR=$(realpath "$MRPC_DATA_DIR")
fi
# Two malloc arenas instead of glibc's 16 on 2 cores: the training process peaks ~20 MB lower
# at the same speed (docs/PERFORMANCE.md, "Memory"); yours wins if set.
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}

bash .ci/setup.sh
.venv/bin/tfm train_experiment --experiment="$EXPERIMENT" --mode=train_and_eval \
  --model_dir="$MODEL_DIR" --noenable_async_checkpointing "$@"
# Both of absl's double-dash forms: --flag=value, and --flag value.
export_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --params_override=*|--config_file=*|--import=*) export_args+=("${args[i]}") ;;
    --params_override|--config_file|--import)
      export_args+=("${args[i]}" "${args[i + 1]-}")
      i=$((i + 1)) ;;
  esac
done
# The final weights, not the checkpoint that scored best on dev: that would be a choice made
# on the data the figures are reported on.
.venv/bin/tfm export --experiment="$EXPERIMENT" --model_dir="$MODEL_DIR" --pick=final \
  --export_dir="$MODEL_DIR/export" ${overwrite[@]+"${overwrite[@]}"} \
  ${export_args[@]+"${export_args[@]}"}
.venv/bin/tfm report --model_dir="$MODEL_DIR" ${overwrite[@]+"${overwrite[@]}"} >/dev/null
echo "export: $MODEL_DIR/export   plots: $MODEL_DIR/report   TensorBoard: tensorboard --logdir $MODEL_DIR"
