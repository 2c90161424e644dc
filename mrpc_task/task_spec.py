"""A text task's contract in a few lines: what `registry.experiments.text_experiment` builds
a config from.

A task is its texts (one or two: their TSV columns and TFDS keys), its label (classes with
names and their spelling in the files, or a score in a range), its metrics and the one that
picks the best checkpoint, its evaluation splits, and whether the order of two sentences
matters. Everything else (model, recipe, runtime) is the experiment's. GLUE's nine tasks are
specs like any other (`mrpc_task/glue.py`).
"""

import dataclasses
from typing import Optional, Tuple

from mrpc_task import configs


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """One task's contract.

  Attributes:
    name: short name (mrpc, sst2, ...), recorded in configs and exports.
    text_columns: TSV header names of the texts: one (a sentence) or two (a pair).
    label_column: TSV header name of the label.
    class_names: class names in class-id order (classes); () for a score task.
    label_vocabulary: the labels as the files spell them, in class-id order; default '0',
      '1', ... (GLUE's binary tasks).
    score_range: (low, high) of a score task's labels; () for any number. Giving it, or
      `label_kind='score'`, makes a score task.
    label_kind: 'classes' or 'score'; default: 'score' when score_range is given.
    metrics: what each evaluation reports (configs.CLASS_METRICS or SCORE_METRICS); their
      mean is the task's glue_score.
    best_metric: the score that picks the best checkpoint ('glue_score' by default; a split's
      score is named 'SPLIT/metric' when there are several evaluation splits).
    positive_class_id: the class F1 is computed for.
    eval_splits: evaluation split names (the TSV file stems), each scored at every
      evaluation.
    train_split: the training file's stem.
    header: column names of files that have no header line (CoLA's), () otherwise.
    tfds_name: the TFDS dataset ('' if there is none).
    tfds_keys: TFDS feature names of the texts; default sentence1/sentence2 (pairs) or
      sentence.
    tfds_label_key: TFDS feature name of the label.
    train_examples: size of the training split (sets steps per epoch).
    symmetric_pairs: whether a pair's label ignores the order of its sentences.
    data_dir_env: environment variable that names a local folder of the task's TSV files.
    glue_folder: the task's folder under GLUE_DIR, for GLUE's tasks.
  """
  name: str
  text_columns: Tuple[str, ...]
  label_column: str = 'label'
  class_names: Tuple[str, ...] = ()
  label_vocabulary: Tuple[str, ...] = ()
  score_range: Tuple[float, ...] = ()
  label_kind: str = ''
  metrics: Tuple[str, ...] = ('accuracy',)
  best_metric: str = configs.GLUE_SCORE
  positive_class_id: int = 1
  eval_splits: Tuple[str, ...] = ('dev',)
  train_split: str = 'train'
  header: Tuple[str, ...] = ()
  tfds_name: str = ''
  tfds_keys: Tuple[str, ...] = ()
  tfds_label_key: str = 'label'
  train_examples: int = 0
  symmetric_pairs: bool = False
  data_dir_env: str = ''
  glue_folder: str = ''

  @property
  def kind(self) -> str:
    return self.label_kind or ('score' if self.score_range else 'classes')

  @property
  def vocabulary(self) -> Tuple[str, ...]:
    if self.kind == 'score':
      return ()
    return self.label_vocabulary or tuple(str(i) for i in range(len(self.class_names)))

  @property
  def feature_keys(self) -> Tuple[str, ...]:
    if self.tfds_keys:
      return self.tfds_keys
    return ('sentence1', 'sentence2') if len(self.text_columns) == 2 else ('sentence',)

  def data_config(self, *, training: bool, tsv_dir: str = '',
                  base: Optional[configs.TextDataConfig] = None) -> configs.TextDataConfig:
    """The training or evaluation data config of this task (source: TSV when tsv_dir is
    given, else TFDS)."""
    splits = (self.train_split,) if training else self.eval_splits
    texts = tuple(self.text_columns) + ('',) * (2 - len(self.text_columns))
    keys = tuple(self.feature_keys) + ('',) * (2 - len(self.feature_keys))
    base = base or configs.TextDataConfig()
    return base.replace(
        source='tsv' if tsv_dir else 'tfds',
        tfds_name=self.tfds_name,
        tfds_split=','.join(configs.tfds_split_of(split) for split in splits),
        sentence1_key=keys[0], sentence2_key=keys[1], label_key=self.tfds_label_key,
        tsv_dir=tsv_dir,
        tsv_split=','.join(splits),
        tsv_columns=configs.TsvColumns(sentence1=texts[0], sentence2=texts[1],
                                       label=self.label_column, header=list(self.header)),
        label_vocabulary=list(self.vocabulary),
        is_training=training,
        drop_remainder=training)

  def task_fields(self) -> dict:
    """The contract's fields of `configs.TextTaskConfig`."""
    return dict(name=self.name, label_kind=self.kind, class_names=list(self.class_names),
                positive_class_id=self.positive_class_id if self.class_names else 1,
                score_range=[float(x) for x in self.score_range], metrics=list(self.metrics),
                symmetric_pairs=self.symmetric_pairs)
