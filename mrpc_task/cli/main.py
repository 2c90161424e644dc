"""`tfm COMMAND [--import=MODULE ...] [--traceback] [flags]`: dispatch and the error boundary.

    tfm train_experiment --experiment=NAME --mode=MODE --model_dir=DIR [Model Garden flags]
    tfm export --experiment=NAME --model_dir=DIR --export_dir=DIR [--checkpoint_path=CKPT]
               [--pick=best|final] [--members=DIR,DIR] [--average_orders]
    tfm convert_checkpoint --from=hf|tf1 --input=PATH --output=DIR
    tfm predict --export_dir=DIR --input=FILE|- [--output=FILE] [--output_format=rows|glue]
    tfm report --model_dir=DIR [--output_dir=DIR]
    tfm evaluate --model_dir=DIR [--data=dev,selection,train] [--output=FILE.json]
    tfm sweep --experiment=NAME --grid='KEY=V1,V2;KEY2=V3' --seeds=N --output_dir=DIR
    tfm soup --runs=DIR,DIR|'GLOB' [--method=uniform|greedy] --output_dir=DIR
    tfm glue_submission --glue_dir=DIR --export_dirs=TASK=EXPORT,... --output_dir=DIR

`--import=MODULE` (any command, repeatable) imports a module of your own registrations first.
A mistake in what you gave (a flag, a file, a config key, a checkpoint) is printed as one line,
`tfm COMMAND: error: ...`, exit code 2 for flags and 1 otherwise; `--traceback` (or
TFM_TRACEBACK=1) adds the Python traceback. Any other exception is a bug and keeps its
traceback.

Help and argument errors answer before TensorFlow is imported (each command imports what it
needs in its main), and TensorFlow's C++ start-up lines (CUDA probing, CPU features) are off
unless TF_CPP_MIN_LOG_LEVEL says otherwise. `tf.keras` is tf_keras, as Model Garden needs
(TF_USE_LEGACY_KERAS=1 unless you set it), oneDNN's kernels are on whatever the x86 CPU
(TF_ENABLE_ONEDNN_OPTS=1 unless you set it), and pandas stays out (`import_tensorflow`).
"""

import difflib
import importlib
import importlib.util
import os
import select
import sys
import traceback
from typing import Callable, List, Optional

from absl import app
from absl import flags

from mrpc_task import cpu_features
from mrpc_task import errors

FLAGS = flags.FLAGS
IMPORT_FLAG = '--import='
TRACEBACK_FLAG = '--traceback'
TRACEBACK_ENV = 'TFM_TRACEBACK'
IMPORTED: List[str] = []  # Modules imported with --import, to repeat them in printed commands.

# Command name -> module (under mrpc_task.cli) with define_flags() and main(argv).
COMMANDS = {
    'train_experiment': 'train',
    'export': 'export',
    'convert_checkpoint': 'convert',
    'predict': 'predict',
    'report': 'report',
    'evaluate': 'evaluate',
    'sweep': 'sweep',
    'soup': 'soup',
    'glue_submission': 'glue_submission',
}


class UsageError(errors.InputError):
  """A flag or argument of the command line is wrong."""


def _known_errors():
  """Exception types that report a mistake in the user's input, not a bug of ours
  (TensorFlow's only if it was imported: otherwise none of them can have been raised)."""
  known = (errors.InputError, flags.Error, FileNotFoundError, IsADirectoryError,
           NotADirectoryError, PermissionError)
  tf = sys.modules.get('tensorflow')
  if tf is not None and hasattr(tf, 'errors'):
    known += (tf.errors.NotFoundError, tf.errors.PermissionDeniedError)
  return known


def registered():
  """The experiment names this package registers (for "did you mean")."""
  from registry import experiments  # pylint: disable=g-import-not-at-top
  return list(experiments.REGISTERED)


def message(error: BaseException) -> str:
  """The one line printed for an error: its message, and for an output that exists, how to
  replace it."""
  safe_output = sys.modules.get('mrpc_task.safe_output')
  text = one_line(error)
  if safe_output and isinstance(error, safe_output.DestinationExistsError):
    text += f'; pass --overwrite to replace it, or choose another {error.label}'
  return text


def one_line(error: BaseException) -> str:
  """The error's message on one line (KeyError's quotes and gin's call-site notes dropped)."""
  message = str(error.args[0] if isinstance(error, KeyError) and error.args else error)
  lines = [line for line in message.splitlines()
           if not line.strip().startswith('In call to configurable')]
  return ' '.join(' '.join(lines).split()) or type(error).__name__


def _quiet_from_now_on():
  """No warnings after the error line: e.g. a failed checkpoint read lists every value it
  did not restore when its objects are garbage-collected at exit."""
  import logging  # pylint: disable=g-import-not-at-top
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.ERROR)
  logging.getLogger('tensorflow').setLevel(logging.ERROR)


def _flags_parser(argv: List[str]) -> List[str]:
  """absl's parse, raising instead of printing usage, so errors pass the one boundary."""
  remaining = FLAGS(argv)
  if len(remaining) > 1:
    raise UsageError(f'unexpected argument(s) {remaining[1:]}: every option is a --flag=value')
  return remaining


def import_user_modules(argv: List[str]) -> List[str]:
  """Imports every `--import=MODULE` (your own registrations) and returns argv without them.

  Handled before absl parses flags, so a module's `exp_factory` registrations exist when
  `--experiment` is looked up. The working directory is importable, as with `python -m`.
  """
  modules = [arg[len(IMPORT_FLAG):] for arg in argv if arg.startswith(IMPORT_FLAG)]
  if modules:
    if os.getcwd() not in sys.path:
      sys.path.insert(0, os.getcwd())
    for module in modules:  # A missing one is named before TensorFlow's seconds of import.
      top = module.split('.')[0]
      if not top or importlib.util.find_spec(top) is None:  # ('.mod' and '' have no top.)
        raise UsageError(_no_module(module, top or module))
    import_tensorflow()  # Before your modules, which import it themselves.
  for module in modules:
    try:
      importlib.import_module(module)
    except ModuleNotFoundError as e:
      if e.name and module.startswith(e.name):
        raise UsageError(_no_module(module, e.name)) from e
      raise
    IMPORTED.append(module)
  return [arg for arg in argv if not arg.startswith(IMPORT_FLAG)]


def _no_module(module: str, missing: str) -> str:
  return (f'--import={module}: no module {missing!r} (run tfm from the folder holding it, or '
          'put it on PYTHONPATH)')


def _usage() -> str:
  return __doc__.split('\n\n')[1] + f'\ncommands: {", ".join(COMMANDS)}'


HELP_FLAGS = ('-h', '--help', '--helpshort', '-?')


def command_help(command: str, module) -> str:
  """The command's docstring and the flags it defines (absl's own --help lists only the
  flags of the `tfm` script, which has none)."""
  defined = set()
  by_module = FLAGS.flags_by_module_dict()
  parts = [f'tfm {command}: ' + (module.__doc__ or '').strip().split('\n', 1)[0].split(': ', 1)[-1],
           '\n'.join((module.__doc__ or '').strip().split('\n')[1:]).strip(), 'flags:']
  for name in sorted(by_module):
    own = [flag for flag in by_module[name] if flag.name not in defined]
    if name.startswith(('absl.', 'mrpc_task.cli.main')) or not own:
      continue
    defined.update(flag.name for flag in own)
    parts.append(FLAGS.module_help(name))
  return '\n\n'.join(part for part in parts if part)


def run_command(command: str, argv: List[str]):
  """Defines the command's flags and runs it under absl (logging, flag parsing); --help
  prints the command's own flags and exits 0."""
  module = importlib.import_module(f'mrpc_task.cli.{COMMANDS[command]}')
  module.define_flags()
  if any(arg in HELP_FLAGS for arg in argv):
    print(command_help(command, module))
    return

  def main_after_tensorflow(argv):  # Flags parsed: the command imports TensorFlow first.
    import_tensorflow()
    return module.main(argv)

  app.run(main_after_tensorflow, argv=[f'tfm {command}'] + argv, flags_parser=_flags_parser)


def _closest_command(word: str) -> str:
  """The command a misspelt `word` most likely meant ('' if none is close), also matching
  the first part of a long name ('trian' -> train_experiment)."""
  names = {name: name for name in COMMANDS}
  names.update({name.split('_')[0]: name for name in COMMANDS})
  close = difflib.get_close_matches(word, names, n=1)
  return names[close[0]] if close else ''


def set_tensorflow_defaults():
  """How TensorFlow starts in a tfm process (and in the profiles that import it themselves),
  before it is imported; each variable set by you wins."""
  # TensorFlow's C++ lines (CUDA probing on a machine without a GPU reads as an ERROR) are
  # start-up noise above the command's own output.
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  # Model Garden builds on tf_keras (Keras 2); without this `import tensorflow` also loads
  # Keras 3, which pulls scikit-learn, pandas, OpenCV and matplotlib: 83 MB of memory and
  # 1.5 s of every command's start-up, for nothing Model Garden uses.
  os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
  # TensorFlow turns oneDNN's kernels and graph rewrites on by itself only on x86 CPUs with
  # AVX512_VNNI, AVX512_BF16, AVX-VNNI or AMX; on other x86 CPUs (AMD's Zen 2 and 3, Intel's
  # Skylake-SP) it runs Eigen's, which trained MiniLM in float32 20% slower on a Zen 3
  # (docs/PERFORMANCE.md, bench/switches.py --switches=onednn). Other architectures keep
  # TensorFlow's choice.
  if cpu_features.is_x86():
    os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')


def import_tensorflow():
  """Imports TensorFlow as a tfm command does (after `set_tensorflow_defaults`), without pandas.

  While TensorFlow loads, tf_keras imports pandas (and pandas pyarrow) only so that
  `model.fit` can take a DataFrame, and carries on without it when that import fails; no tfm
  command passes one. Hidden for this one import (`None` in `sys.modules` makes an import
  fail, by Python's documented rule), they are not loaded: less memory and a shorter start
  (docs/PERFORMANCE.md, "Memory"). Later imports of pandas work, in your own modules too, but
  `model.fit` on a DataFrame does not in a tfm process. mrpc_task/keras_private.py lists this
  reliance on tf_keras. Once TensorFlow is imported, this does nothing.
  """
  hide = 'pandas' not in sys.modules
  if hide:
    sys.modules['pandas'] = None
  try:
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import,import-outside-toplevel
  finally:
    if hide:
      sys.modules.pop('pandas', None)


def main(argv: Optional[List[str]] = None,
         runner: Callable[[str, List[str]], None] = run_command) -> int:
  """Runs `tfm COMMAND ...`; returns the exit code (errors are printed, not raised)."""
  try:
    code = _main(argv, runner)
    sys.stdout.flush()  # Into a pipe, buffered output is written here, not after the return.
    return code
  except BrokenPipeError:
    # Whatever read our output stopped reading (`tfm --help | head`, `tfm predict ... | head`):
    # end as Unix tools end on SIGPIPE (128 + 13), without a traceback, and without Python's
    # own error when it flushes stdout at exit. A broken pipe that is not stdout's is raised.
    if not _stdout_is_broken():
      raise
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 141


def _stdout_is_broken() -> bool:
  """Whether stdout is a pipe whose reader is gone (poll reports an error on it)."""
  try:
    poller = select.poll()
    poller.register(sys.stdout.fileno(), select.POLLOUT)
    return any(event & select.POLLERR for _, event in poller.poll(0))
  except (AttributeError, OSError, ValueError):  # No poll here, or a stdout without a file.
    return False


def _main(argv: Optional[List[str]], runner: Callable[[str, List[str]], None]) -> int:
  set_tensorflow_defaults()
  argv = list(sys.argv if argv is None else argv)[1:]
  show_traceback = (TRACEBACK_FLAG in argv or
                    os.environ.get(TRACEBACK_ENV, '').lower() in ('1', 'true', 'yes'))
  argv = [arg for arg in argv if arg != TRACEBACK_FLAG]
  command = argv[0] if argv else ''
  if command in ('-h', '--help', 'help'):
    print(_usage())
    return 0
  if command not in COMMANDS:
    if command and not command.startswith('-'):
      hint = _closest_command(command)
      hint = f'; did you mean {hint}?' if hint else ''
      print(f'tfm: error: unknown command {command!r}{hint}', file=sys.stderr)
    print(_usage(), file=sys.stderr)
    return 2
  try:
    runner(command, import_user_modules(argv[1:]))
  except SystemExit as e:  # absl's own exits (--help, a main's return value).
    return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
  except _known_errors() as e:  # pylint: disable=catching-non-exception
    if show_traceback:
      traceback.print_exc()
    print(f'tfm {command}: error: {message(e)}', file=sys.stderr)
    _quiet_from_now_on()
    return 2 if isinstance(e, (flags.Error, UsageError)) else 1
  except KeyboardInterrupt:
    print(f'tfm {command}: interrupted', file=sys.stderr)
    return 130
  return 0


if __name__ == '__main__':
  # `python -m mrpc_task.cli.main` (tfm sweep's runs) executes this file as `__main__`, a
  # second copy of this module: run the package's own, the one the commands read (IMPORTED).
  from mrpc_task.cli import main as package_main  # pylint: disable=g-import-not-at-top
  sys.exit(package_main.main())
