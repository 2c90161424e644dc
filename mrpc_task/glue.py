"""The GLUE benchmark's nine tasks, as `TaskSpec`s, and what its leaderboard accepts.

Each spec reads the files as GLUE distributes them (`download_glue_data.py`'s layout: one
folder per task under GLUE_DIR) and as TFDS serves them (`glue/<task>`): CoLA's train and dev
files have no header line, STS-B's label is a score in [0, 5], MNLI evaluates on its matched
and mismatched dev sets, QNLI, RTE and MNLI spell their labels out. Metrics are GLUE's (CoLA:
Matthews; STS-B: Pearson and Spearman; MRPC and QQP: accuracy and F1; the rest: accuracy).
"""

import os
from typing import Dict, Tuple

from mrpc_task.task_spec import TaskSpec

GLUE_DIR_ENV = 'GLUE_DIR'
NLI_CLASSES = ('entailment', 'not_entailment')

TASKS: Dict[str, TaskSpec] = {spec.name: spec for spec in (
    TaskSpec(
        name='cola', glue_folder='CoLA', tfds_name='glue/cola', data_dir_env='COLA_DATA_DIR',
        text_columns=('sentence',), label_column='label',
        header=('source', 'label', 'original_label', 'sentence'),
        class_names=('unacceptable', 'acceptable'), metrics=('matthews',),
        train_examples=8551),
    TaskSpec(
        name='sst2', glue_folder='SST-2', tfds_name='glue/sst2', data_dir_env='SST2_DATA_DIR',
        text_columns=('sentence',), class_names=('negative', 'positive'),
        train_examples=67349),
    TaskSpec(
        name='mrpc', glue_folder='MRPC', tfds_name='glue/mrpc', data_dir_env='MRPC_DATA_DIR',
        text_columns=('#1 String', '#2 String'), label_column='Quality',
        class_names=('not_equivalent', 'equivalent'), metrics=('accuracy', 'f1'),
        best_metric='f1', train_examples=3668, symmetric_pairs=True),
    TaskSpec(
        name='stsb', glue_folder='STS-B', tfds_name='glue/stsb', data_dir_env='STSB_DATA_DIR',
        text_columns=('sentence1', 'sentence2'), label_column='score', score_range=(0.0, 5.0),
        metrics=('pearson', 'spearman'), train_examples=5749, symmetric_pairs=True),
    TaskSpec(
        name='qqp', glue_folder='QQP', tfds_name='glue/qqp', data_dir_env='QQP_DATA_DIR',
        text_columns=('question1', 'question2'), tfds_keys=('question1', 'question2'),
        label_column='is_duplicate',
        class_names=('not_duplicate', 'duplicate'), metrics=('accuracy', 'f1'),
        best_metric='f1', train_examples=363846, symmetric_pairs=True),
    TaskSpec(
        name='mnli', glue_folder='MNLI', tfds_name='glue/mnli', data_dir_env='MNLI_DATA_DIR',
        text_columns=('sentence1', 'sentence2'), tfds_keys=('premise', 'hypothesis'),
        label_column='gold_label', class_names=('entailment', 'neutral', 'contradiction'),
        label_vocabulary=('entailment', 'neutral', 'contradiction'),
        eval_splits=('dev_matched', 'dev_mismatched'), best_metric='dev_matched/accuracy',
        train_examples=392702),
    TaskSpec(
        name='qnli', glue_folder='QNLI', tfds_name='glue/qnli', data_dir_env='QNLI_DATA_DIR',
        text_columns=('question', 'sentence'), tfds_keys=('question', 'sentence'),
        class_names=NLI_CLASSES, label_vocabulary=NLI_CLASSES, train_examples=104743),
    TaskSpec(
        name='rte', glue_folder='RTE', tfds_name='glue/rte', data_dir_env='RTE_DATA_DIR',
        text_columns=('sentence1', 'sentence2'), class_names=NLI_CLASSES,
        label_vocabulary=NLI_CLASSES, train_examples=2490),
    TaskSpec(
        name='wnli', glue_folder='WNLI', tfds_name='glue/wnli', data_dir_env='WNLI_DATA_DIR',
        text_columns=('sentence1', 'sentence2'),
        class_names=('not_entailment', 'entailment'), train_examples=635),
)}

# The leaderboard's files, per task: (the GLUE folder's test file stem, the submission file).
# AX (the diagnostic set) is answered by the MNLI model from GLUE_DIR/diagnostic/.
SUBMISSION_FILES: Dict[str, Tuple[Tuple[str, str], ...]] = {
    'cola': (('test', 'CoLA.tsv'),),
    'sst2': (('test', 'SST-2.tsv'),),
    'mrpc': (('test', 'MRPC.tsv'),),
    'stsb': (('test', 'STS-B.tsv'),),
    'qqp': (('test', 'QQP.tsv'),),
    'mnli': (('test_matched', 'MNLI-m.tsv'), ('test_mismatched', 'MNLI-mm.tsv')),
    'qnli': (('test', 'QNLI.tsv'),),
    'rte': (('test', 'RTE.tsv'),),
    'wnli': (('test', 'WNLI.tsv'),),
}
DIAGNOSTIC = ('diagnostic', 'diagnostic.tsv', 'AX.tsv')  # (folder, file, submission file)
DIAGNOSTIC_TASK = 'mnli'


def task_name(name: str) -> str:
  """'MNLI', 'SST-2', 'sst2' -> the spec's name; '' if it is none of GLUE's."""
  wanted = name.strip().lower().replace('-', '')
  for spec in TASKS.values():
    if wanted in (spec.name, spec.glue_folder.lower().replace('-', '')):
      return spec.name
  return ''


def data_dir(spec: TaskSpec, environ=os.environ) -> str:
  """The task's local folder: its own variable (MRPC_DATA_DIR, ...), else GLUE_DIR/FOLDER
  when GLUE_DIR is set, else '' (read TFDS)."""
  own = environ.get(spec.data_dir_env, '') if spec.data_dir_env else ''
  if own:
    return own
  glue_dir = environ.get(GLUE_DIR_ENV, '')
  if glue_dir and spec.glue_folder:
    return os.path.join(glue_dir, spec.glue_folder)
  return ''
