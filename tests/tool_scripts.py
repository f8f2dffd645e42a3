"""The scripts under ``tools/`` as modules, for tests that call their functions."""
import importlib.util
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / 'tools'


def load_tool(name, folder=''):
    """``tools/<folder>/<name>.py`` as a module, with its folder on ``sys.path`` as when it runs
    (the scripts import their siblings)."""
    if str(TOOLS / folder) not in sys.path:
        sys.path.insert(0, str(TOOLS / folder))
    spec = importlib.util.spec_from_file_location(name, TOOLS / folder / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
