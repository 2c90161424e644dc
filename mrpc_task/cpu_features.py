"""What this CPU computes fast, read from /proc/cpuinfo without importing TensorFlow.

bfloat16 matrix multiplies are fast only where the CPU has them in hardware (AVX512_BF16 or
AMX): oneDNN runs them there, at up to twice float32's rate. Elsewhere TensorFlow converts
every operand to float32 and back, and a bfloat16 MiniLM training step is many times slower
than a float32 one (docs/PERFORMANCE.md, "bfloat16 on a CPU without it"), so the registered
experiments compute in bfloat16 only where this says it pays.
"""

import functools
import platform
from typing import Optional

CPUINFO = '/proc/cpuinfo'
X86_MACHINES = ('x86_64', 'amd64')  # `platform.machine()`, lowercased.
FAST_BFLOAT16_FLAGS = ('avx512_bf16', 'amx_bf16')


def is_x86() -> bool:
  """Whether this is an x86 CPU, the only kind on which tfm turns oneDNN on itself."""
  return platform.machine().lower() in X86_MACHINES


@functools.lru_cache(maxsize=None)
def has_fast_bfloat16(cpuinfo: str = CPUINFO) -> Optional[bool]:
  """Whether this CPU multiplies bfloat16 natively (AVX512_BF16 or AMX); None where
  `cpuinfo` cannot tell (not Linux). Read once per file: every `bert_*_minilm` config asks."""
  try:
    with open(cpuinfo) as f:
      flags = next((line.split(':', 1)[1].split() for line in f
                    if line.startswith('flags')), None)
  except OSError:
    return None
  if flags is None:
    return None
  return any(flag in flags for flag in FAST_BFLOAT16_FLAGS)


def bfloat16_is_emulated(runtime, fast_bfloat16: Optional[bool]) -> bool:
  """Whether `runtime` (a Model Garden `RuntimeConfig`: its `mixed_precision_dtype`,
  `distribution_strategy` and `num_gpus`) computes in bfloat16 on a CPU known to lack it
  (`fast_bfloat16`: what `has_fast_bfloat16` says), not on a TPU or GPUs."""
  on_cpu = runtime.distribution_strategy != 'tpu' and not runtime.num_gpus
  return runtime.mixed_precision_dtype == 'bfloat16' and on_cpu and fast_bfloat16 is False
