"""mrpc_task: a Model Garden task plugin that fine-tunes BERT encoders on text classification
and regression (GLUE's tasks and your own).

Importing the package imports nothing else, so the command line answers --help and argument
errors without starting TensorFlow; `mrpc_task.task` registers the Task and the exact GELU.
"""
