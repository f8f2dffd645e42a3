"""Checkpoint the exact iteration when the scheduler asks the job to stop, and continue from it."""
import inspect
import itertools
import os.path as osp
import signal

import torch
from mmengine.dataset import InfiniteSampler
from mmengine.dist import all_reduce, barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from torch.utils.data import DataLoader

from ..checkpoint_files import write_bytes_atomically

PREEMPTED_EXIT_CODE = 75  # sysexits' EX_TEMPFAIL: stopped on request, run again to continue


class Preempted(SystemExit):
    """Training stopped at a preemption signal, after its checkpoint was written."""


@HOOKS.register_module()
class PreemptionHook(Hook):
    """On SIGTERM or SIGUSR1, finish the iteration in flight, checkpoint it and exit with 75.

    Schedulers announce a preemption or the end of a time limit with a signal (Slurm: SIGTERM,
    or SIGUSR1 ahead of time with ``--signal``; Kubernetes and spot instances: SIGTERM) and kill
    the job after a grace period. Left alone, the signal kills MMEngine at once and every
    iteration since the last epoch checkpoint is lost. Here it only sets a flag. After every
    training iteration the ranks take the maximum of their flags (one all-reduce of an integer),
    so all of them stop after the same iteration even when only some got the signal; rank 0
    writes ``iter_<N>.pth`` (weights, optimizer, schedulers, message hub and, through
    RNGStateHook, the generator states) and points ``last_checkpoint`` at it, and every rank
    raises :class:`Preempted` (a ``SystemExit`` with code :data:`PREEMPTED_EXIT_CODE`).

    ``--resume`` from such a checkpoint continues the interrupted epoch at its next batch: the
    rest of the epoch comes from the same sampler order without loading the batches already
    trained on, so a single-process run with main-process data loading ends with the weights
    the uninterrupted run would have had. An iteration-based loop over an ``InfiniteSampler``
    (the segmentation configs) resumes the same way from any checkpoint: MMEngine would load
    and augment every batch already trained on to skip it, which takes as long as data loading
    did up to there and draws the augmentations' random numbers again, after RNGStateHook put
    the generators back.

    Args:
        signals (tuple[str]): Names of the signals that stop training.
    """

    priority = 'LOWEST'  # after every other hook of the iteration, checkpointing included

    def __init__(self, signals=('SIGTERM', 'SIGUSR1')) -> None:
        self.signals = [signal.Signals[name] for name in signals]
        self._received = 0
        self._handlers_before = {}
        self._interrupted_epoch = None

    def before_train(self, runner) -> None:
        for signum in self.signals:
            self._handlers_before[signum] = signal.signal(signum, self._on_signal)
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop) and loop.iter > 0:
            _skip_trained_batches(loop)
        interrupted = self._interrupted_epoch
        if interrupted is None or (runner.epoch, runner.iter) != interrupted['at']:
            return  # not resumed from a checkpoint of ours (e.g. load_from)
        if not isinstance(loop, EpochBasedTrainLoop):
            return
        length = len(loop.dataloader)
        if interrupted['of'] != length:
            runner.logger.warning(
                f'epoch {runner.epoch + 1} was interrupted after {interrupted["batches"]} of '
                f'{interrupted["of"]} batches, but has {length} now (another number of '
                'processes or batch size): it starts again from its first batch')
            return
        loop.run_epoch = lambda: _finish_interrupted_epoch(loop, interrupted['batches'])

    def after_train(self, runner) -> None:
        for signum, handler in self._handlers_before.items():
            signal.signal(signum, handler)
        self._handlers_before.clear()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {})
        if 'interrupted_epoch' in meta:
            self._interrupted_epoch = dict(meta['interrupted_epoch'],
                                           at=(meta['epoch'], meta['iter']))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        received = torch.tensor(self._received)
        all_reduce(received, op='max')
        if not received:
            return
        filename = f'iter_{runner.iter + 1}.pth'
        path = osp.join(runner.work_dir, filename)
        length = len(runner.train_dataloader)
        runner.save_checkpoint(
            runner.work_dir, filename, by_epoch=False,
            meta=dict(interrupted_epoch=dict(batches=batch_idx + 1, of=length)))
        if is_main_process():
            write_bytes_atomically(path.encode(), osp.join(runner.work_dir, 'last_checkpoint'))
        barrier()  # no rank exits (and gets its job torn down) before the file is written
        runner.logger.info(
            f'{signal.Signals(int(received)).name} received: stopped after iteration '
            f'{runner.iter + 1} (epoch {runner.epoch + 1}, batch {batch_idx + 1} of {length}) '
            f'and saved {path}; exiting with code {PREEMPTED_EXIT_CODE}. Run again with '
            '--resume to continue from it.')
        raise Preempted(PREEMPTED_EXIT_CODE)

    def _on_signal(self, signum, frame) -> None:
        self._received = signum


def _finish_interrupted_epoch(loop: EpochBasedTrainLoop, done: int) -> None:
    """``EpochBasedTrainLoop.run_epoch`` for an epoch resumed after its first ``done`` batches,
    with the hooks seeing the batch indices the uninterrupted epoch had."""
    del loop.run_epoch  # the next epochs run as usual
    loop.runner.call_hook('before_train_epoch')
    loop.runner.model.train()
    for idx, data_batch in enumerate(_batches_after(loop.dataloader, done), start=done):
        loop.run_iter(idx, data_batch)
    loop.runner.call_hook('after_train_epoch')
    loop._epoch += 1


def _skip_trained_batches(loop: IterBasedTrainLoop) -> None:
    """Let a resumed iteration-based loop skip its first ``loop.iter`` batches without loading
    them, when its sampler is an ``InfiniteSampler`` (other samplers keep MMEngine's way).

    The loop's own advance then draws ``None`` ``loop.iter`` times, and the batches after it
    come in the order of the restored sampler seed.
    """
    sampler = getattr(loop.dataloader.batch_sampler, 'sampler', None)
    if not isinstance(sampler, InfiniteSampler):
        return
    # The sampler's index stream started with the seed it was built with (and workers may have
    # drawn from it already): start it again from the restored seed.
    sampler.indices = sampler._indices_of_rank()
    loop.dataloader_iterator = itertools.chain(
        itertools.repeat(None, loop.iter), _batches_after(loop.dataloader, loop.iter))


def _batches_after(loader: DataLoader, done: int):
    """Iterate the batches of ``loader`` after its first ``done``, without loading those.

    The batches come from a second DataLoader with the same settings over the same batch sampler
    minus its first ``done`` batches. Starting an iterator draws its workers' base seed from
    torch's generator, which the uninterrupted epoch did at its start, so torch's generator is
    put back afterwards.
    """
    by_batch_sampler = {'batch_size', 'shuffle', 'sampler', 'batch_sampler', 'drop_last'}
    settings = {name: getattr(loader, name) for name in inspect.signature(DataLoader).parameters
                if name not in by_batch_sampler and hasattr(loader, name)}
    settings['persistent_workers'] = False  # its workers serve this one pass
    rest = DataLoader(batch_sampler=_SkipBatches(loader.batch_sampler, done), **settings)
    generator_state = torch.get_rng_state()
    batches = iter(rest)
    torch.set_rng_state(generator_state)
    return batches


class _SkipBatches:
    """A batch sampler without the first ``count`` batches of another."""

    def __init__(self, batch_sampler, count: int) -> None:
        self.batch_sampler, self.count = batch_sampler, count

    def __iter__(self):
        return itertools.islice(self.batch_sampler, self.count, None)

    def __len__(self) -> int:
        return len(self.batch_sampler) - self.count
