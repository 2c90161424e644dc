#!/usr/bin/env bash
# Cloud TPU VM job for bert_mrpc (BERT-base, the tutorial's recipe) with registry/templates/tpu.yaml.
#
# NOT RUN BY US: this project is developed on a CPU-only machine without network. The TPU
# config itself is tested (tests/test_experiments.py::test_tpu_template_keeps_static_shapes:
# it builds, validates and keeps every batch at a static [batch, 128] shape).
#
# From a workstation with gcloud configured:
#   PROJECT=my-project ZONE=us-central2-b BUCKET=gs://my-bucket ./docs/cloud_tpu_job.sh
# Steps: create the TPU VM, copy this repository to it, install, put MRPC on gs:// as TFDS,
# train + evaluate on the TPU, export the SavedModel to gs://, delete the VM (KEEP_VM=1 keeps it).
set -euo pipefail
: "${PROJECT:?set PROJECT}" "${ZONE:?set ZONE}" "${BUCKET:?set BUCKET (gs://...)}"
TPU_NAME=${TPU_NAME:-mrpc-task}
ACCELERATOR=${ACCELERATOR:-v4-8}
# A TPU VM base image; TensorFlow comes from pip below (`gcloud compute tpus versions list`).
RUNTIME_VERSION=${RUNTIME_VERSION:-tpu-ubuntu2204-base}
EXPERIMENT=${EXPERIMENT:-bert_mrpc}
MODEL_DIR=${MODEL_DIR:-$BUCKET/runs/$EXPERIMENT}
TFDS_DIR=${TFDS_DIR:-$BUCKET/tfds}
REPO=$(cd "$(dirname "$0")/.." && pwd)

gcloud config set project "$PROJECT"
gcloud compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" \
  --accelerator-type="$ACCELERATOR" --version="$RUNTIME_VERSION"
trap '[ "${KEEP_VM:-0}" = 1 ] || gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone="$ZONE" --quiet' EXIT

tar -C "$REPO" --exclude=.venv --exclude=runs --exclude=.cache -czf /tmp/mrpc_task.tgz .
gcloud compute tpus tpu-vm scp /tmp/mrpc_task.tgz "$TPU_NAME":~/ --zone="$ZONE"

gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --command="
set -euo pipefail
mkdir -p ~/mrpc_task && tar -C ~/mrpc_task -xzf ~/mrpc_task.tgz && cd ~/mrpc_task
python3 -m venv .venv && . .venv/bin/activate && pip install -q --upgrade pip
# This package (its pins pull the CPU tensorflow wheel), then TensorFlow with the TPU
# runtime (libtpu) over it, last, so nothing reinstalls the CPU build afterwards.
pip install -q -e '.[report]'
pip install -q --force-reinstall --no-deps 'tensorflow-tpu==2.20.*' \
  -f https://storage.googleapis.com/libtpu-tf-releases/index.html
# MRPC as TFDS on gs:// (the TPU workers read data from GCS, not the VM's disk).
tfds build glue/mrpc --data_dir=$TFDS_DIR
tfm train_experiment --experiment=$EXPERIMENT --mode=train_and_eval --model_dir=$MODEL_DIR \
  --config_file=registry/templates/tpu.yaml --tpu=local \
  --params_override=task.train_data.tfds_data_dir=$TFDS_DIR,task.validation_data.tfds_data_dir=$TFDS_DIR
tfm export --experiment=$EXPERIMENT --model_dir=$MODEL_DIR --export_dir=$MODEL_DIR/export
tfm report --model_dir=$MODEL_DIR  # PNGs to $MODEL_DIR/report (written through tf.io.gfile)
"
echo "Checkpoints, TensorBoard logs, report and export: $MODEL_DIR"
