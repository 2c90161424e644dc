"""What the CPU computes fast: the flags read, and the experiments' choice of bfloat16 by them."""

import pytest
from official.core import config_definitions as cfg
from official.core import exp_factory

from mrpc_task import cpu_features
from mrpc_task import glue
from registry import experiments


@pytest.mark.parametrize('flags, expected', [
    ('fpu sse avx512f avx512_bf16 avx512_vnni', True),
    ('fpu avx512f amx_bf16 amx_tile', True),
    ('fpu sse avx2 avx512f', False),
])
def test_cpu_detection_reads_the_flags_line(tmp_path, flags, expected):
  # A name of its own per case: the answer is cached by path, and pytest (keeping only failed
  # tests' folders) hands the next case the same tmp_path.
  cpuinfo = tmp_path / f"cpuinfo_{flags.replace(' ', '_')}"
  cpuinfo.write_text(f'processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\n')
  assert cpu_features.has_fast_bfloat16(str(cpuinfo)) is expected


def test_cpu_detection_says_none_when_it_cannot_tell(tmp_path):
  assert cpu_features.has_fast_bfloat16(str(tmp_path / 'missing')) is None
  (tmp_path / 'no_flags').write_text('processor\t: 0\n')
  assert cpu_features.has_fast_bfloat16(str(tmp_path / 'no_flags')) is None


def _minilm_mrpc(fast_bfloat16):
  return experiments.text_experiment(
      glue.TASKS['mrpc'], **experiments.minilm_recipe(fast_bfloat16=fast_bfloat16)).as_dict()


def test_minilm_experiments_compute_in_bfloat16_only_where_the_cpu_has_it():
  """bfloat16 on AVX512_BF16/AMX, float32 elsewhere; nothing else differs, and the registered
  experiment is the one for this machine's CPU."""
  fast, slow = _minilm_mrpc(True), _minilm_mrpc(False)
  assert fast['runtime']['mixed_precision_dtype'] == 'bfloat16'
  assert slow['runtime']['mixed_precision_dtype'] is None  # Model Garden's float32.
  slow['runtime']['mixed_precision_dtype'] = 'bfloat16'
  assert slow == fast
  here = _minilm_mrpc(bool(cpu_features.has_fast_bfloat16()))
  assert exp_factory.get_exp_config('bert_mrpc_minilm').as_dict() == here


@pytest.mark.parametrize('runtime, fast, expected', [
    (dict(mixed_precision_dtype='bfloat16'), False, True),
    (dict(mixed_precision_dtype='bfloat16'), True, False),
    (dict(mixed_precision_dtype='bfloat16'), None, False),  # Cannot tell: no warning.
    (dict(mixed_precision_dtype=''), False, False),
    (dict(mixed_precision_dtype='float16', num_gpus=1), False, False),
    (dict(mixed_precision_dtype='bfloat16', num_gpus=2), False, False),
    (dict(mixed_precision_dtype='bfloat16', distribution_strategy='tpu'), False, False),
])
def test_emulated_bfloat16_is_bfloat16_on_a_cpu_without_it(runtime, fast, expected):
  assert cpu_features.bfloat16_is_emulated(cfg.RuntimeConfig(**runtime), fast) is expected


@pytest.mark.parametrize('fast, warned', [(False, True), (True, False), (None, False)])
def test_training_in_bfloat16_on_a_cpu_without_it_warns(monkeypatch, caplog, fast, warned):
  from mrpc_task import training  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(cpu_features, 'has_fast_bfloat16', lambda: fast)
  training.warn_if_bfloat16_is_emulated(cfg.RuntimeConfig(mixed_precision_dtype='bfloat16'))
  messages = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
  assert messages == (
      ["runtime.mixed_precision_dtype is bfloat16, but this CPU has neither AVX512_BF16 nor "
       "AMX: TensorFlow emulates bfloat16 here, many times slower than float32 "
       "(--params_override=runtime.mixed_precision_dtype='' trains in float32)"]
      if warned else [])
