"""The experiment config as Model Garden builds it from its flags' values, with clear errors.

The same layers as `official.core.train_utils.ExperimentParser` (registered defaults <- each
config file <- the TPU address / tf.data service <- the params override), applied one at a
time through Model Garden's own `hyperparams.override_params_dict`, so a failure names the
file or override that caused it; gin files and bindings likewise.
"""

import dataclasses
import difflib
import importlib
import os
import re
import tokenize
from typing import Optional, Sequence

import yaml

from mrpc_task import configs
from mrpc_task import errors


class ExperimentConfigError(errors.InputError):
  """A flag or file that builds the experiment config is wrong; the message names it."""


def _yaml_problem(error: yaml.YAMLError) -> str:
  mark = getattr(error, 'problem_mark', None)
  where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark else ''
  problem = getattr(error, 'problem', None) or str(error)
  return f'not valid YAML or JSON{where}: {problem}'


_UNKNOWN_KEY = re.compile(r"The key '([^']+)' does not exist in <class '([\w.]+)'>")


def _unknown_key(error: KeyError) -> str:
  """Model Garden's message for a misspelt key, without its advice to turn off strictness."""
  message = str(error.args[0] if error.args else error)
  match = _UNKNOWN_KEY.search(message)
  if not match:
    return message
  key, class_path = match.groups()
  module_name, _, class_name = class_path.rpartition('.')
  try:
    known = [f.name for f in dataclasses.fields(
        getattr(importlib.import_module(module_name), class_name))]
  except (ImportError, AttributeError, TypeError):
    known = []
  close = difflib.get_close_matches(key, known, n=3)
  hint = f'; did you mean {", ".join(close)}?' if close else (
      f'; its keys are {", ".join(known)}' if known else '')
  return f'unknown key {key!r} (in {class_name}){hint}'


def _apply(params, source: str, what: str):
  """One `override_params_dict` layer; errors name `what` (a flag and value or file)."""
  from official.modeling import hyperparams  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    return hyperparams.override_params_dict(params, source, is_strict=True)
  except yaml.YAMLError as e:
    raise ExperimentConfigError(f'{what}: {_yaml_problem(e)}') from e
  except KeyError as e:
    raise ExperimentConfigError(f'{what}: {_unknown_key(e)}') from e
  except (ValueError, TypeError, AttributeError, tf.errors.OpError) as e:
    raise ExperimentConfigError(f'{what}: {e}') from e


def _experiment_defaults(experiment: str, known: Sequence[str]):
  from official.core import exp_factory  # pylint: disable=g-import-not-at-top
  if not experiment:
    raise ExperimentConfigError('an experiment name is required (e.g. bert_mrpc_minilm)')
  try:
    return exp_factory.get_exp_config(experiment)
  except LookupError:
    close = difflib.get_close_matches(experiment, known, n=3)
    hint = (f'; did you mean {", ".join(close)}?' if close else
            f'; registered here: {", ".join(known)}' if known else '')
    raise ExperimentConfigError(
        f'experiment {experiment!r}: no such registered experiment{hint} (your own '
        'registrations must be imported first)') from None


def parse_experiment(experiment: str, *, config_files: Sequence[str] = (),
                     params_override: Optional[str] = None, tpu: Optional[str] = None,
                     tf_data_service: Optional[str] = None, saved_params: str = '',
                     known: Sequence[str] = ()):
  """Builds, validates and locks the experiment config.

  Args:
    experiment: registered name.
    config_files: YAML files, applied in order.
    params_override: KEY=VALUE,..., YAML/JSON string or YAML file, applied last.
    tpu, tf_data_service: the trainer's flags of the same names.
    saved_params: a run's params.yaml, applied right after the registered defaults (export).
    known: registered names, for "did you mean" on a misspelt experiment.

  Raises:
    ExperimentConfigError: unknown experiment, missing or malformed file or override, unknown
      key; configs.ConfigError: a value `validate()` rejects.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from official.core import config_definitions  # pylint: disable=g-import-not-at-top
  params = _experiment_defaults(experiment, known)
  layers = [(saved_params, saved_params)] if saved_params else []
  for path in config_files or []:
    if not tf.io.gfile.exists(path):
      raise ExperimentConfigError(f'config file {path}: no such file')
    if tf.io.gfile.isdir(path):
      raise ExperimentConfigError(f'config file {path}: is a folder, not a YAML file')
    layers.append((path, f'config file {path}'))
  for source, what in layers:
    params = _apply(params, source, what)
  if tpu is not None:
    params.override({'runtime': {'tpu': tpu}})
  if tf_data_service and isinstance(params.task, config_definitions.TaskConfig):
    params.override({'task': {name: {'tf_data_service_address': tf_data_service}
                              for name in ('train_data', 'validation_data')}})
  if params_override:
    params = _apply(params, params_override, 'params override')
  try:
    params.validate()
  except errors.InputError:
    raise
  except (KeyError, ValueError, TypeError, AssertionError) as e:
    raise configs.ConfigError(f'experiment {experiment}: {e}') from e
  params.lock()
  return params


# What gin's parser raises for a malformed file: its own SyntaxErrors, Python's tokenizer
# error for an unclosed bracket, and lookup errors for unknown names.
_GIN_ERRORS = (SyntaxError, tokenize.TokenError, ValueError, TypeError, KeyError)


def _gin_problem(error: Exception) -> str:
  """gin's message without its parser internals: the last line says what and where."""
  if isinstance(error, tokenize.TokenError):
    what = error.args[0] if error.args else 'unexpected end of file'
    where = error.args[1] if len(error.args) > 1 else None
    return f'{what}{f" (line {where[0]})" if where else ""}: an unclosed bracket or string?'
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if isinstance(error, SyntaxError) and lines:
    return lines[-1]
  return ' '.join(lines) or type(error).__name__


def parse_gin(gin_files: Sequence[str], gin_params: Sequence[str]):
  """Gin files then bindings, as Model Garden's trainer parses them; errors name the file.

  Gin's config is locked once parsed; a later experiment in the same process (a notebook,
  several runs in one program) parses its own files into it, and with none keeps it as is.
  """
  import gin  # pylint: disable=g-import-not-at-top
  if gin.config_is_locked():
    if not gin_files and not gin_params:
      return
    with gin.unlock_config():
      _parse_gin(gin_files, gin_params)
    return
  _parse_gin(gin_files, gin_params)
  gin.finalize()


def _parse_gin(gin_files: Sequence[str], gin_params: Sequence[str]):
  import gin  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for path in gin_files or []:
    if not tf.io.gfile.exists(path):
      raise ExperimentConfigError(f'gin file {path}: no such file')
    try:
      gin.parse_config_files_and_bindings([path], None, finalize_config=False)
    except _GIN_ERRORS as e:
      raise ExperimentConfigError(f'gin file {path}: {_gin_problem(e)}') from e
  for binding in gin_params or []:
    try:
      gin.parse_config_files_and_bindings(None, [binding], finalize_config=False)
    except _GIN_ERRORS as e:
      raise ExperimentConfigError(f'gin binding {binding!r}: {_gin_problem(e)}') from e


def saved_params_path(model_dir: str) -> str:
  return os.path.join(model_dir, 'params.yaml')
