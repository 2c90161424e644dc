"""`tfm export`: a training run's checkpoint -> a SavedModel that takes raw text.

The config is the one the run trained with (registered defaults <- `MODEL_DIR/params.yaml` <-
--config_file <- --params_override); the SavedModel is written to a temporary folder beside
--export_dir and renamed into place when complete; an existing export is replaced only with
--overwrite (`mrpc_task.export.export_run`).
"""

import sys

from absl import flags

from mrpc_task import choices
from mrpc_task.cli import main as cli_main

FLAGS = flags.FLAGS
LABELS = {'model_dir': '--model_dir', 'export_dir': '--export_dir',
          'checkpoint_path': '--checkpoint_path', 'members': '--members'}


def define_flags():
  flags.DEFINE_string('experiment', None, 'Registered experiment name, e.g. bert_mrpc. '
                      'Default: the one recorded in MODEL_DIR by tfm train_experiment.')
  flags.DEFINE_string('model_dir', None,
                      'Training directory: its params.yaml and checkpoints are used.')
  flags.DEFINE_string('export_dir', None, 'Where to write the SavedModel (a new folder).')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --export_dir, whole.')
  flags.DEFINE_string('checkpoint_path', None,
                      'Checkpoint prefix or directory. Default: see --pick.')
  flags.DEFINE_enum('pick', 'best', ['best', 'final'],
                    'Which checkpoint of a run to export when --checkpoint_path is not given: '
                    'best (its best_ckpt/ if the trainer kept one, else the latest) or final '
                    '(the latest).')
  flags.DEFINE_list('members', [], 'Further training folders of the same experiment and '
                    'model: the export averages their outputs with --model_dir\'s '
                    '(an ensemble; each member adds its serving cost).')
  flags.DEFINE_bool('average_orders', False,
                    'Also score each pair with its sentences swapped and average the '
                    'outputs (twice the cost); only for tasks with task.symmetric_pairs '
                    '(MRPC, QQP, STS-B).')
  flags.DEFINE_multi_string('config_file', None, 'YAML files applied after params.yaml.')
  flags.DEFINE_string('params_override', None, 'YAML/JSON string applied last.')
  flags.DEFINE_bool('trim_padding', True,
                    'Pad each request batch to its longest example instead of seq_length.')
  flags.DEFINE_integer('sort_chunk_size', choices.DEFAULT_SORT_CHUNK_SIZE,
                       'With --trim_padding, run each request sorted by length in chunks of '
                       'this many examples, each padded to its own longest (0: one batch).',
                       lower_bound=0)
  flags.DEFINE_integer('pad_multiple', choices.DEFAULT_PAD_MULTIPLE,
                       'With --trim_padding, pad each chunk to a multiple of this many tokens: '
                       'fewer shapes to build kernels for (1: to its longest exactly).',
                       lower_bound=1)
  flags.DEFINE_enum('serving_dtype', 'auto', list(choices.SERVING_DTYPES),
                    'The type the export stores its weights in. auto: bfloat16 when the run '
                    'trained with runtime.mixed_precision_dtype bfloat16 (the export then '
                    'computes what its evaluation computed, faster on CPUs with AMX or '
                    'AVX512_BF16), else float32.')
  flags.DEFINE_bool('fuse_layers', True,
                    'Run the layers in the forms oneDNN fuses (MatMul + BiasAdd + GELU): the '
                    'same outputs, faster. --nofuse_layers exports Model Garden\'s layers.')
  flags.DEFINE_enum('freeze_weights', 'auto', list(choices.FREEZE_WEIGHTS),
                    'Store the weights as constants of the graph, which oneDNN keeps in its '
                    'own layout between requests: one MRPC pair about 25% faster, but '
                    'about 18x the weights in resident memory when served (0.6-0.8 GB more '
                    'for MiniLM in bfloat16). auto: only for weights of at most '
                    f'{choices.FREEZE_AUTO_MAX_MIB} MiB.')
  flags.mark_flags_as_required(['model_dir', 'export_dir'])


def main(_):
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task import export  # pylint: disable=g-import-not-at-top
  from mrpc_task import cpu_features  # pylint: disable=g-import-not-at-top
  from mrpc_task import serving_dtype  # pylint: disable=g-import-not-at-top
  checkpoint, members, dtype, frozen = export.export_run(
      FLAGS.model_dir, FLAGS.export_dir, experiment=FLAGS.experiment,
      checkpoint_path=FLAGS.checkpoint_path, pick=FLAGS.pick, members=FLAGS.members,
      average_orders=FLAGS.average_orders, config_files=FLAGS.config_file or (),
      params_override=FLAGS.params_override, trim_padding=FLAGS.trim_padding,
      sort_chunk_size=FLAGS.sort_chunk_size, pad_multiple=FLAGS.pad_multiple,
      serving_dtype=FLAGS.serving_dtype,
      fuse_layers=FLAGS.fuse_layers, freeze_weights=FLAGS.freeze_weights,
      overwrite=FLAGS.overwrite,
      known=cli_main.registered(), labels=LABELS)
  orders = ', both sentence orders averaged' if FLAGS.average_orders else ''
  print(f'Exported {" + ".join([checkpoint] + members)}{orders} to {FLAGS.export_dir} '
        f'({dtype} weights{", frozen into the graph" if frozen else ""})')
  if dtype == serving_dtype.BFLOAT16 and cpu_features.has_fast_bfloat16() is False:
    print('tfm export: note: this CPU has neither AVX512_BF16 nor AMX, so it serves bfloat16 '
          'weights slower than float32 ones; --serving_dtype=float32 exports those',
          file=sys.stderr)
