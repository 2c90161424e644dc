"""The package's layers, read from the source: library <- registry <- cli, and no import circles.

Imports inside functions count too: a lazy import still ties the two modules together.
"""

import ast
import os

from tests.conftest import REPO_ROOT


def _imports():
  """{module: {imported module of this project}} for mrpc_task (cli included) and registry."""
  graph = {}
  for package in ('mrpc_task', 'registry'):
    for folder, _, files in os.walk(os.path.join(REPO_ROOT, package)):
      for name in files:
        if not name.endswith('.py'):
          continue
        path = os.path.join(folder, name)
        module = os.path.relpath(path, REPO_ROOT)[:-len('.py')].replace(os.sep, '.')
        module = module.removesuffix('.__init__')
        found = set()
        with open(path, encoding='utf-8') as f:
          for node in ast.walk(ast.parse(f.read(), path)):
            if isinstance(node, ast.Import):
              found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
              found.update(f'{node.module}.{alias.name}' for alias in node.names)
              found.add(node.module)
        graph[module] = found
  return {module: {m for m in found if m in graph and m != module}
          for module, found in graph.items()}


def test_library_imports_neither_registry_nor_cli():
  graph = _imports()
  library = [m for m in graph if m.startswith('mrpc_task') and not m.startswith('mrpc_task.cli')]
  assert len(library) > 15  # The walk found the modules.
  for module in library:
    wrong = {m for m in graph[module] if m.startswith(('registry', 'mrpc_task.cli'))}
    assert not wrong, f'{module} imports {wrong}'
  for module in (m for m in graph if m.startswith('registry')):
    wrong = {m for m in graph[module] if m.startswith('mrpc_task.cli')}
    assert not wrong, f'{module} imports {wrong}'


def test_no_import_circles():
  graph = _imports()
  # Package __init__ files re-export their modules; the edges that matter are module to module.
  graph = {m: {d for d in deps if d not in ('mrpc_task', 'registry', 'mrpc_task.cli')}
           for m, deps in graph.items()}
  state = {}

  def visit(module, path):
    if state.get(module) == 'done':
      return
    assert state.get(module) != 'open', 'import circle: ' + ' -> '.join(path + [module])
    state[module] = 'open'
    for dependency in sorted(graph[module]):
      visit(dependency, path + [module])
    state[module] = 'done'

  for module in sorted(graph):
    visit(module, [])
