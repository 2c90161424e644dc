"""The choices and defaults the command line offers, importable without TensorFlow.

`tfm` defines its flags from these before anything heavy is imported (so `--help` and a
misspelt flag answer at once); the library modules that use them import them from here.
"""

# Examples per length-sorted chunk of a serving request (export.TextServingModule).
DEFAULT_SORT_CHUNK_SIZE = 8
# Exports pad each chunk to a multiple of this many tokens (`tfm export --pad_multiple`).
DEFAULT_PAD_MULTIPLE = 8
# Whether an export stores its weights as constants of its graph (export.export_model):
# auto does for weights of at most FREEZE_AUTO_MAX_MIB.
FREEZE_WEIGHTS = ('auto', 'true', 'false')
FREEZE_AUTO_MAX_MIB = 64
# How a weight soup is made (tuning/soup.py).
SOUP_METHODS = ('uniform', 'greedy')
# The config keys one seed of a sweep sets (tuning/sweep.py).
SEED_KEYS = ('task.seed', 'task.train_data.seed')
# What `tfm predict` writes (predict.py).
PREDICT_FORMATS = ('rows', 'glue')
# The weights' type in an export (export.serving_dtype): 'auto' is the type the run computed in.
SERVING_DTYPES = ('auto', 'float32', 'bfloat16')
