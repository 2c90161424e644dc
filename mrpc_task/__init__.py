"""mrpc_task: a Model Garden task plugin for BERT sentence-pair classification (GLUE MRPC)."""

from mrpc_task import activations  # Registers `mrpc_task>exact_gelu` on import.
