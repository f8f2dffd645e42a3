import contextlib
import os
import subprocess
import sys

import pytest
import torch

# Tests run small models; on 2 cores a second OpenMP thread mostly fights the data loader and
# subprocesses for the other core (a 2-iteration run: 115 s with 2 threads, 4 s with 1).
torch.set_num_threads(1)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def restored_default_scope():
    """A Runner sets MMEngine's global default scope (e.g. 'mmdet'), and every later registry
    lookup in the process would search that scope first; put back the scope found."""
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    try:
        yield
    finally:
        DefaultScope._instance_dict = saved


@pytest.fixture(autouse=True, scope='module')
def module_keeps_default_scope():
    with restored_default_scope():
        yield


@pytest.fixture(autouse=True)
def test_keeps_default_scope():
    with restored_default_scope():
        yield


@pytest.fixture
def run_python(tmp_path):
    """Run a Python snippet in a fresh interpreter (no mmdsnet imported unless it says so).

    Returns the CompletedProcess; stdout and stderr are captured as text.
    """

    def run(code, timeout=300):
        return subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True,
                              text=True, timeout=timeout,
                              env={**os.environ, 'PYTHONPATH': REPO_ROOT})

    return run
