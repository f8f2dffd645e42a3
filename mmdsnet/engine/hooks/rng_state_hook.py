"""Random number generator state in checkpoints, so that a resumed run repeats its numbers."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the Python, numpy, torch (and CUDA) generator states and the data sampler's seed
    with every checkpoint, and restore them when training resumes.

    MMEngine re-seeds on resume, so the epoch after a resumed checkpoint draws different
    augmentations, drop-path masks and dropout than the uninterrupted run did. With this hook
    (and deterministic kernels), a job killed at any point and resumed from its last
    checkpoint ends with exactly the weights of the uninterrupted run.

    The states are put back at ``before_train``: on resume MMEngine re-seeds every generator
    after the checkpoint is read whenever the config's seed is None (it adopts the checkpoint's
    seed), and it built the sampler with this run's seed before, which would shuffle the data
    in another order than the interrupted run did.

    Every rank stores its own states under ``meta['rng_state']['rank<N>']``; with several ranks
    MMEngine writes the checkpoint on rank 0 only, so the other ranks restore nothing and keep
    their seeded states.
    """

    priority = 'VERY_LOW'  # after every hook that may still draw numbers before a save

    def __init__(self) -> None:
        self._loaded = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(python=random.getstate(), numpy=np.random.get_state(),
                     torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        saved = checkpoint.setdefault('meta', {}).setdefault('rng_state', {})
        saved[self._key(runner)] = state
        sampler = _seeded_sampler(runner.train_dataloader)
        if sampler is not None:
            saved['sampler_seed'] = sampler.seed

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {})
        self._loaded = dict(meta.get('rng_state', {}), at=(meta.get('epoch'), meta.get('iter')))
        if self._key(runner) not in self._loaded:
            runner.logger.warning('the checkpoint holds no random number generator state for '
                                  'this rank; the resumed run will not repeat the original')

    def before_train(self, runner) -> None:
        if self._loaded is None or self._loaded['at'] != (runner.epoch, runner.iter):
            return  # not resumed (a load_from checkpoint starts a run of its own)
        state = self._loaded.get(self._key(runner))
        if state is not None:
            # On a GPU, resume maps the checkpoint's tensors to it; generator states are CPU
            # byte tensors.
            random.setstate(_as_python_state(state['python']))
            np.random.set_state(state['numpy'])
            torch.set_rng_state(state['torch'].cpu())
            if 'cuda' in state and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([device.cpu() for device in state['cuda']])
        sampler = _seeded_sampler(runner.train_dataloader)
        if sampler is not None and 'sampler_seed' in self._loaded:
            sampler.seed = self._loaded['sampler_seed']

    @staticmethod
    def _key(runner) -> str:
        return f'rank{runner.rank}'


def _seeded_sampler(loader):
    """The sampler whose ``seed`` orders ``loader``'s data (MMEngine's DefaultSampler and the
    like), also when it sits inside a batch sampler (mmdet's AspectRatioBatchSampler)."""
    for sampler in (loader.sampler, getattr(loader.batch_sampler, 'sampler', None)):
        if getattr(sampler, 'seed', None) is not None:
            return sampler
    return None


def _as_python_state(state):
    """``random.setstate`` wants tuples; a checkpoint round trip may have made them lists."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
