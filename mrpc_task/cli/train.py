"""`tfm train_experiment`: Model Garden's trainer, with the flags of `official.nlp.train`.

Its flags and behaviour (gin files and bindings, `params.yaml`, mixed precision, every mode
including `continuous_train_and_eval`), run by `mrpc_task.training` (progress lines and a
summary, chief-only summaries and best checkpoint, NaN-proof best checkpoint); a --model_dir
that holds another experiment's run is refused before anything is written. The config is
logged at DEBUG, not printed (it is in `MODEL_DIR/params.yaml`).
"""

import os

from absl import flags

from mrpc_task.cli import main as cli_main

FLAGS = flags.FLAGS


def define_flags():
  from official.common import flags as tfm_flags  # pylint: disable=g-import-not-at-top
  tfm_flags.define_flags()
  # The two flags official.nlp.train defines beside Model Garden's common ones.
  flags.DEFINE_integer('pretrain_steps', None,
                       'The number of total training steps for the pretraining job '
                       '(mode continuous_train_and_eval).')
  flags.DEFINE_bool('enable_async_checkpointing', True,
                    'Save checkpoints in a background thread.')
  flags.mark_flags_as_required(['experiment', 'mode', 'model_dir'])


def register_model_garden_experiments(experiment: str):
  """Registers Model Garden's own experiments (bert/sentence_prediction, its vision ones...)
  when `experiment` is none of those registered so far (this package's, --import's).

  Their registration module imports Model Garden's vision models too (matplotlib,
  pycocotools, scikit-learn, ...): 95 MB more memory in every process that imports it, so a
  run of this package's experiments leaves it out.
  """
  from official.core import exp_factory  # pylint: disable=g-import-not-at-top
  try:
    exp_factory.get_exp_config(experiment)
  except LookupError:
    from official.common import registry_imports  # pylint: disable=g-import-not-at-top,unused-import


def main(_):
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task import training  # pylint: disable=g-import-not-at-top
  register_model_garden_experiments(FLAGS.experiment)
  reporter = training.train_experiment(
      FLAGS.experiment, FLAGS.model_dir, FLAGS.mode, config_files=FLAGS.config_file or (),
      params_override=FLAGS.params_override, tpu=FLAGS.tpu,
      tf_data_service=FLAGS.tf_data_service, gin_files=FLAGS.gin_file or (),
      gin_params=FLAGS.gin_params or (), pretrain_steps=FLAGS.pretrain_steps,
      enable_async_checkpointing=FLAGS.enable_async_checkpointing,
      imports=cli_main.IMPORTED, known=cli_main.registered(), model_dir_label='--model_dir')
  if reporter:
    imports = ''.join(f'--import={module} ' for module in cli_main.IMPORTED)
    print(reporter.summary(), flush=True)
    print(f'summary | export: tfm export {imports}--experiment={FLAGS.experiment} '
          f'--model_dir={FLAGS.model_dir} '
          f'--export_dir={os.path.join(FLAGS.model_dir, "export")} --pick=final '
          '(run_experiment.sh does this)', flush=True)
