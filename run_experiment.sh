#!/usr/bin/env bash
# The main job: set up, then train + evaluate + export one experiment.
#
#   MRPC_DATA_DIR=../shared/data/mrpc ./run_experiment.sh          # default: bert_mrpc_minilm
#   EXPERIMENT=bert_mrpc_tiny MODEL_DIR=/tmp/tiny ./run_experiment.sh --params_override=...
#
# MODEL_DIR (default runs/$EXPERIMENT, git-ignored) receives checkpoints, TensorBoard logs and
# params.yaml; the SavedModel goes to $MODEL_DIR/export and PNG plots to $MODEL_DIR/report.
# Extra arguments go to `tfm train_experiment`; --params_override, --config_file and --import
# ones go to `tfm export` too.
set -euo pipefail
cd "$(dirname "$0")"
EXPERIMENT=${EXPERIMENT:-bert_mrpc_minilm}
MODEL_DIR=${MODEL_DIR:-runs/$EXPERIMENT}
if [ -n "${MRPC_DATA_DIR:-}" ]; then
  export MRPC_DATA_DIR=$(realpath "$MRPC_DATA_DIR")
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

bash .ci/setup.sh
.venv/bin/tfm train_experiment --experiment="$EXPERIMENT" --mode=train_and_eval \
  --model_dir="$MODEL_DIR" "$@"
export_args=()
for arg in "$@"; do
  case "$arg" in --params_override=*|--config_file=*|--import=*) export_args+=("$arg") ;; esac
done
.venv/bin/tfm export --experiment="$EXPERIMENT" --model_dir="$MODEL_DIR" \
  --export_dir="$MODEL_DIR/export" ${export_args[@]+"${export_args[@]}"}
.venv/bin/tfm report --model_dir="$MODEL_DIR" >/dev/null
echo "export: $MODEL_DIR/export   plots: $MODEL_DIR/report   TensorBoard: tensorboard --logdir $MODEL_DIR"
