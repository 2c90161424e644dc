"""The one base class of errors that a user's input caused.

Library modules raise subclasses of `InputError` (a bad file, flag, config key or checkpoint)
with a message that names the file and line, flag or key and says what to do. The command
line prints those as one line; anything else is a bug and keeps its traceback.
"""


class InputError(Exception):
  """Something the user gave is wrong; the message says what, where, and what to do."""
