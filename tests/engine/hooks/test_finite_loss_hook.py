"""A NaN loss stops training with a message, and the last good checkpoint is kept."""
import os
import subprocess
import sys
import warnings
from types import SimpleNamespace

import pytest
import torch

from mmdsnet.checkpoint import load_torch_file
from mmdsnet.engine.hooks.finite_loss_hook import FiniteLossHook, NonFiniteLossError

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'toy_training.py')


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    nan_from = 4 + 2  # the second iteration of epoch 2 (4 iterations per epoch)
    result = subprocess.run(
        [sys.executable, SCRIPT, str(tmp_path), '3', '--nan-at-iter', str(nan_from)],
        capture_output=True, text=True, timeout=300)

    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith('mmdsnet.engine.hooks.finite_loss_hook.NonFiniteLossError')
    assert 'loss=nan at epoch 2, iteration 6' in message
    assert f'Last good checkpoint: {tmp_path / "epoch_1.pth"}' in message
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_1.pth']
    checkpoint = load_torch_file(str(tmp_path / 'epoch_1.pth'))
    assert all(value.isfinite().all() for value in checkpoint['state_dict'].values()
               if value.is_floating_point())


def test_reads_the_loss_without_touching_its_graph(tmp_path):
    loss = torch.tensor(2.0, requires_grad=True) * 1.5
    runner = SimpleNamespace(work_dir=str(tmp_path), epoch=0, iter=0)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        FiniteLossHook().after_train_iter(runner, 0, outputs={'loss': loss, 'acc': 0.5})
    with pytest.raises(NonFiniteLossError, match='loss=inf at epoch 1, iteration 1'):
        FiniteLossHook().after_train_iter(runner, 0, outputs={'loss': loss * float('inf')})
