"""The GLUE leaderboard's files, from one export per task, in a zip-ready folder.

For each task given, its export answers the test file(s) of the task's folder under GLUE_DIR
(MNLI: test_matched and test_mismatched, and the diagnostic set AX when GLUE_DIR holds
diagnostic/diagnostic.tsv), and the answers are written as GLUE's server reads them:
`index<TAB>prediction`, one row per test row in order, labels spelled as the task's files
spell them (entailment / not_entailment, 0 / 1), STS-B's score to three decimals. The folder is
written under a temporary name and renamed into place when every file is complete.
"""

import dataclasses
import os
from typing import List, Mapping, Tuple

from mrpc_task import errors
from mrpc_task import glue
from mrpc_task import predict
from mrpc_task import safe_output


class SubmissionError(errors.InputError):
  """A task, export or GLUE folder that cannot make its leaderboard file; the message says
  which."""


@dataclasses.dataclass
class Submission:
  """Each file written (its path and row count), and GLUE's files that were not."""
  written: List[Tuple[str, int]]
  missing: List[str]


def _test_files(glue_dir: str, task: str) -> List[Tuple[str, str]]:
  """(test file path, submission file name) of one task, AX included for MNLI when there."""
  spec = glue.TASKS[task]
  files = [(os.path.join(glue_dir, spec.glue_folder, f'{stem}.tsv'), name)
           for stem, name in glue.SUBMISSION_FILES[task]]
  folder, file_name, name = glue.DIAGNOSTIC
  diagnostic = os.path.join(glue_dir, folder, file_name)
  if task == glue.DIAGNOSTIC_TASK and os.path.exists(diagnostic):
    files.append((diagnostic, name))
  return files


def write_submission(glue_dir: str, exports: Mapping[str, str], output_dir: str, *,
                     overwrite: bool = False, batch_size: int = 64,
                     labels: Tuple[str, str, str] = ('glue_dir', 'exports', 'output_dir')
                     ) -> Submission:
  """Answers each task's test files with its export and writes the leaderboard folder.

  Args:
    glue_dir: GLUE's data folder (CoLA/, SST-2/, ..., diagnostic/).
    exports: task (mnli, MNLI, SST-2, sst2 ...) -> its export folder (`tfm export`).
    output_dir: the folder to write (new, or replaced whole with overwrite).
    overwrite: replace an existing output_dir.
    batch_size: examples per call of a model.
    labels: how messages name glue_dir, the exports and output_dir.

  Returns:
    What was written, and which of GLUE's files are missing for a complete submission.

  Raises:
    SubmissionError: an unknown task, a task given twice, an export of another task, or a
      missing test file; predict's errors for a malformed test file; safe_output's for the
      output folder.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  glue_label, exports_label, output_label = labels
  if not tf.io.gfile.isdir(glue_dir):
    raise SubmissionError(f'{glue_label}={glue_dir}: no such folder')
  tasks = {}
  for given, export_dir in exports.items():
    task = glue.task_name(given)
    if not task:
      raise SubmissionError(f'{exports_label}: {given!r} is not a GLUE task; GLUE has '
                            f'{", ".join(glue.TASKS)}')
    if task in tasks:
      raise SubmissionError(f'{exports_label}: {task} is given twice')
    tasks[task] = export_dir
  safe_output.refuse_overlap(
      output_dir, {glue_label: glue_dir,
                   **{f'{exports_label} ({task})': path for task, path in tasks.items()}},
      label=output_label)
  safe_output.check_destination(output_dir, label=output_label, overwrite=overwrite,
                                folder=True)
  plan = []
  for task, export_dir in tasks.items():
    for path, name in _test_files(glue_dir, task):
      if not tf.io.gfile.exists(path):
        raise SubmissionError(f'{glue_label}={glue_dir}: {path} is missing ({name} needs it; '
                              f'GLUE\'s layout: {glue.TASKS[task].glue_folder}/)')
    serve, info = predict.load_export(export_dir, label=f'{exports_label} ({task})')
    if info.name and info.name != task:
      raise SubmissionError(f'{exports_label}: the export for {task} ({export_dir}) answers '
                            f'task {info.name!r}')
    plan.append((task, serve, info))
  written = []
  with safe_output.atomic_folder(output_dir, label=output_label, overwrite=overwrite) as folder:
    for task, serve, info in plan:
      for path, name in _test_files(glue_dir, task):
        lines, input_name = predict.open_input(path)
        with lines, tf.io.gfile.GFile(os.path.join(folder, name), 'w') as out:
          examples = predict.read_examples(lines, input_name, info,
                                           columns=predict.Columns(label=predict.NO_LABEL))
          stats = predict.predict(serve, examples, out, info, batch_size=batch_size,
                                  output_format='glue')
        written.append((os.path.join(output_dir, name), stats.rows))
  names = {os.path.basename(path) for path, _ in written}
  complete = [name for files in glue.SUBMISSION_FILES.values() for _, name in files]
  complete.append(glue.DIAGNOSTIC[2])
  return Submission(written=written, missing=[name for name in complete if name not in names])
