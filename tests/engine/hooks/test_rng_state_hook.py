"""A run killed with SIGKILL mid-epoch and resumed ends with exactly the uninterrupted weights."""
import random
import signal

import numpy as np
import torch
from mmengine.hooks import Hook
from toy_training import build_runner

from mmdsnet.checkpoint import load_torch_file

KILL_AT_ITER = 2 * 4 + 2  # mid-way through epoch 3 (4 iterations per epoch)


def killed_and_resumed(train_toy, work_dir, *flags):
    killed = train_toy(work_dir, '--kill-at-iter', KILL_AT_ITER, *flags)
    assert killed.returncode == -signal.SIGKILL, killed.output[-2000:]
    assert not (work_dir / 'epoch_3.pth').exists()
    resumed = train_toy(work_dir, '--resume', *flags)
    assert resumed.returncode == 0, resumed.output[-2000:]
    return resumed.final_weights()


def test_killed_mid_epoch_and_resumed_ends_with_identical_weights(
        train_toy, uninterrupted, tmp_path):
    assert killed_and_resumed(train_toy, tmp_path) == uninterrupted


def test_without_the_hook_the_resumed_run_diverges(train_toy, tmp_path):
    reference = train_toy(tmp_path / 'reference', '--without-rng-hook')
    assert reference.returncode == 0, reference.output[-2000:]
    resumed = killed_and_resumed(train_toy, tmp_path / 'resumed', '--without-rng-hook')
    assert resumed != reference.final_weights()


class RecordRandomState(Hook):
    """What the generators and the sampler hold when the first resumed epoch starts."""

    priority = 'LOWEST'

    def before_train_epoch(self, runner):
        self.state = dict(python=random.getstate()[1], numpy=np.random.get_state()[1],
                          torch=torch.get_rng_state(),
                          sampler_seed=runner.train_dataloader.sampler.seed)


def test_resume_restores_what_mmengine_reseeds_when_the_config_has_no_seed(tmp_path):
    """With ``randomness.seed=None`` (the default runtime's), MMEngine adopts the checkpoint's
    seed on resume and re-seeds every generator after the checkpoint was read, and the sampler
    was built with this run's seed."""
    build_runner(tmp_path, max_epochs=1, seed=None).train()
    saved = load_torch_file(str(tmp_path / 'epoch_1.pth'))['meta']['rng_state']

    resumed = build_runner(tmp_path, max_epochs=2, seed=None, resume=True)
    recorder = RecordRandomState()
    resumed.register_hook(recorder)
    resumed.train()
    assert recorder.state['python'] == tuple(saved['rank0']['python'][1])
    assert np.array_equal(recorder.state['numpy'], saved['rank0']['numpy'][1])
    assert torch.equal(recorder.state['torch'], saved['rank0']['torch'])
    assert recorder.state['sampler_seed'] == saved['sampler_seed']
