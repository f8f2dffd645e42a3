"""SIGTERM/SIGUSR1 checkpoint the iteration in flight and exit with 75; --resume continues from
that exact iteration."""
import re
import signal

import pytest
from toy_training import build_runner

from mmdsnet.checkpoint import load_torch_file
from mmdsnet.engine import PREEMPTED_EXIT_CODE


def assert_stopped_after(run, iteration, epoch, batch, of, signal_name):
    assert run.returncode == PREEMPTED_EXIT_CODE, run.output[-2000:]
    checkpoint = run.work_dir / f'iter_{iteration}.pth'
    assert (f'{signal_name} received: stopped after iteration {iteration} (epoch {epoch}, batch '
            f'{batch} of {of}) and saved {checkpoint}; exiting with code 75') in run.output
    assert (run.work_dir / 'last_checkpoint').read_text() == str(checkpoint)
    assert not (run.work_dir / f'epoch_{epoch}.pth').exists()
    meta = load_torch_file(str(checkpoint))['meta']
    assert (meta['epoch'], meta['iter']) == (epoch - 1, iteration)
    assert meta['interrupted_epoch'] == dict(batches=batch, of=of)


@pytest.mark.parametrize('signal_name,iteration', [('SIGTERM', 6), ('SIGUSR1', 8)],
                         ids=['SIGTERM mid-epoch', 'SIGUSR1 in the last batch of an epoch'])
def test_a_signal_mid_iteration_checkpoints_it_and_resume_ends_with_identical_weights(
        train_toy, uninterrupted, tmp_path, signal_name, iteration):
    preempted = train_toy(tmp_path, '--signal-at-iter', iteration, '--send', signal_name)
    assert_stopped_after(preempted, iteration, epoch=2, batch=iteration - 4, of=4,
                         signal_name=signal_name)

    resumed = train_toy(tmp_path, '--resume')
    assert resumed.returncode == 0, resumed.output[-2000:]
    assert f'resumed epoch: 1, iter: {iteration}' in resumed.output
    assert resumed.final_weights() == uninterrupted


def test_two_ranks_stop_after_the_same_iteration_when_one_is_signalled(torchrun_toy, tmp_path):
    """Rank 1 alone gets SIGUSR1, in iteration 3 (the first of epoch 2 with two ranks); rank 0
    writes the checkpoint of iteration 3 and both exit with 75."""
    preempted = torchrun_toy(tmp_path, '--signal-at-iter=3', '--send=SIGUSR1', '--on-rank=1')
    assert preempted.returncode != 0
    # torchrun's failure report, one entry per rank
    assert re.findall(r'exitcode\s+: (-?\d+)', preempted.output) == ['75', '75'], \
        preempted.output[-3000:]
    preempted.returncode = PREEMPTED_EXIT_CODE  # each rank's, as checked
    assert_stopped_after(preempted, 3, epoch=2, batch=1, of=2, signal_name='SIGUSR1')

    resumed = torchrun_toy(tmp_path, '--resume')
    assert resumed.returncode == 0, resumed.output[-3000:]
    assert 'resumed epoch: 1, iter: 3' in resumed.output
    assert (tmp_path / 'epoch_3.pth').is_file()


def test_the_signal_handlers_are_put_back_after_training(tmp_path):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1)
    build_runner(tmp_path, max_epochs=1).train()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1)) == before
