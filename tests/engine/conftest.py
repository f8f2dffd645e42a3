"""Runs of ``hooks/toy_training.py``, a small CPU training that uses every source of randomness
a real one does, in one process or in two under torchrun."""
import os
import subprocess
import sys
import time

import pytest
import torch

from mmdsnet.checkpoint import load_torch_file

TOY = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'hooks', 'toy_training.py')
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPOCHS = 3


class Weights:
    """A state dict that compares equal to another only when every tensor is bit-identical."""

    def __init__(self, state_dict):
        self.state_dict = state_dict

    def __eq__(self, other):
        return (self.state_dict.keys() == other.state_dict.keys()
                and all(torch.equal(value, other.state_dict[name])
                        for name, value in self.state_dict.items()))

    def __repr__(self):
        return f'Weights({sorted(self.state_dict)})'


class ToyRun:
    """A finished toy run: ``returncode``, ``output`` (stdout and stderr), ``ended_at``
    (``time.time()`` when it returned) and its ``work_dir``."""

    def __init__(self, command, work_dir, **env):
        result = subprocess.run([str(arg) for arg in command], capture_output=True, text=True,
                                timeout=300, env={**os.environ, 'PYTHONPATH': REPO_ROOT, **env})
        self.ended_at = time.time()
        self.returncode = result.returncode
        self.output = result.stdout + result.stderr
        self.work_dir = work_dir

    def final_weights(self):
        return Weights(load_torch_file(str(self.work_dir / f'epoch_{EPOCHS}.pth'))['state_dict'])


@pytest.fixture(scope='session')
def train_toy():
    """Train the toy for 3 epochs of 4 iterations in one process:
    ``train_toy(work_dir, *toy_training_flags, prelude=None)``."""

    def train(work_dir, *flags, prelude=None):
        """``prelude``: Python code to run in the toy's process before it starts."""
        args = [str(arg) for arg in (TOY, work_dir, EPOCHS, *flags)]
        if prelude is None:
            return ToyRun([sys.executable, *args], work_dir)
        return ToyRun([sys.executable, '-c', f'{prelude}\nimport runpy, sys\nsys.argv = {args!r}\n'
                       "runpy.run_path(sys.argv[0], run_name='__main__')"], work_dir)

    return train


@pytest.fixture
def torchrun_toy(free_port):
    """Train the toy for 3 epochs of 2 iterations in two gloo processes under torchrun:
    ``torchrun_toy(work_dir, *toy_training_flags)``. torchrun gives its workers 2 seconds to
    end once one of them has failed (30 by default, and always on torch 2.1, which ignores
    PET_SHUTDOWN_TIMEOUT)."""

    def torchrun(work_dir, *flags):
        return ToyRun([
            sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node=2',
            f'--master-port={free_port()}', TOY, work_dir, EPOCHS, '--launcher=pytorch', *flags
        ], work_dir, OMP_NUM_THREADS='1', PET_SHUTDOWN_TIMEOUT='2')

    return torchrun


@pytest.fixture(scope='session')
def uninterrupted(tmp_path_factory, train_toy):
    """The final weights of an uninterrupted one-process toy run."""
    run = train_toy(tmp_path_factory.mktemp('uninterrupted'))
    assert run.returncode == 0, run.output[-2000:]
    return run.final_weights()
