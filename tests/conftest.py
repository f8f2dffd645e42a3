import contextlib
import os
import socket
import subprocess
import sys

import pytest
import torch

# Tests run small models; on 2 cores a second OpenMP thread mostly fights the data loader and
# subprocesses for the other core (a 2-iteration run: 115 s with 2 threads, 4 s with 1).
torch.set_num_threads(1)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RunsCode:
    """Unpickling this object runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


@pytest.fixture
def marker(tmp_path):
    """Where a crafted pickle that ran its code leaves its trace."""
    return tmp_path / 'code_ran'


@pytest.fixture
def code_running_object(marker):
    """An object that runs ``touch marker`` when unpickled."""
    return RunsCode(marker)


@pytest.fixture
def crafted_pth(tmp_path, code_running_object):
    """A checkpoint whose ``meta`` runs ``touch marker`` when unpickled."""
    path = tmp_path / 'crafted.pth'
    torch.save({'state_dict': {'weight': torch.zeros(2, 2)}, 'meta': code_running_object}, path)
    return str(path)


@pytest.fixture(params=['weights_only', 'allowlist_unpickler'])
def loader(request, monkeypatch):
    """Runs a test once per way that mmdsnet.checkpoint.load_torch_file enforces the allowlist:
    torch's ``weights_only=True`` (torch >= 2.6) and mmdsnet's unpickler (any torch)."""
    from mmdsnet.compat import torch_weights_only
    if request.param == 'weights_only' and not torch_weights_only.TORCH_TAKES_NAMED_SAFE_GLOBALS:
        pytest.skip(f'torch {torch.__version__} < 2.6: weights_only=True cannot take the '
                    'allowlist here, the allowlist unpickler (the other case) is what loads')
    monkeypatch.setattr(torch_weights_only, 'TORCH_TAKES_NAMED_SAFE_GLOBALS',
                        request.param == 'weights_only')
    return request.param


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
def free_port():
    """A function returning a TCP port on 127.0.0.1 that is free now (for a launcher's PORT)."""

    def find():
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            return sock.getsockname()[1]

    return find


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
