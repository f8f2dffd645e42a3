"""A run killed with SIGKILL mid-epoch and resumed ends with exactly the uninterrupted weights."""
import os
import signal
import subprocess
import sys

import pytest
import torch

from mmdsnet.checkpoint import load_torch_file

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'toy_training.py')
EPOCHS = 3
KILL_AT_ITER = 2 * 4 + 2  # mid-way through epoch 3 (4 iterations per epoch)


def train(work_dir, *flags):
    return subprocess.run([sys.executable, SCRIPT, str(work_dir), str(EPOCHS), *flags],
                          capture_output=True, text=True, timeout=300)


def final_weights(work_dir):
    return load_torch_file(str(work_dir / f'epoch_{EPOCHS}.pth'))['state_dict']


def killed_and_resumed(work_dir, *flags):
    killed = train(work_dir, '--kill-at-iter', str(KILL_AT_ITER), *flags)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (work_dir / f'epoch_{EPOCHS}.pth').exists()
    resumed = train(work_dir, '--resume', *flags)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    return final_weights(work_dir)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    result = train(work_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    return final_weights(work_dir)


def test_killed_mid_epoch_and_resumed_ends_with_identical_weights(uninterrupted, tmp_path):
    resumed = killed_and_resumed(tmp_path)
    assert resumed.keys() == uninterrupted.keys()
    for name in uninterrupted:
        assert torch.equal(resumed[name], uninterrupted[name]), name


def test_without_the_hook_the_resumed_run_diverges(uninterrupted, tmp_path):
    uninterrupted_without_hook = tmp_path / 'reference'
    assert train(uninterrupted_without_hook, '--without-rng-hook').returncode == 0
    reference = final_weights(uninterrupted_without_hook)
    resumed = killed_and_resumed(tmp_path / 'resumed', '--without-rng-hook')
    assert any(not torch.equal(resumed[name], reference[name]) for name in reference)


def test_a_kill_during_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    """SIGKILL after the new checkpoint's bytes are written, before they are renamed."""
    killer = ('import os, signal, sys\n'
              'import mmdsnet.checkpoint as checkpoint\n'
              'real_replace = os.replace\n'
              'def replace(src, dst):\n'
              "    if dst.endswith('epoch_2.pth'):\n"
              '        os.kill(os.getpid(), signal.SIGKILL)\n'
              '    real_replace(src, dst)\n'
              'checkpoint.os.replace = replace\n'
              f'sys.argv = [{SCRIPT!r}, {str(tmp_path)!r}, "3"]\n'
              f'exec(open({SCRIPT!r}).read())\n')
    result = subprocess.run([sys.executable, '-c', killer], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert not (tmp_path / 'epoch_2.pth').exists()
    latest = (tmp_path / 'last_checkpoint').read_text().strip()
    assert latest.endswith('epoch_1.pth')
    assert load_torch_file(latest)['meta']['epoch'] == 1
