"""Importing this package registers every mrpc_task experiment with Model Garden."""

from registry import experiments  # pylint: disable=unused-import
