"""Random number generator state in checkpoints, so that a resumed run repeats its numbers."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the Python, numpy, torch (and CUDA) generator states with every checkpoint and
    restore them on resume.

    MMEngine re-seeds on resume, so the epoch after a resumed checkpoint draws different
    augmentations, drop-path masks and dropout than the uninterrupted run did. With this hook
    (and deterministic kernels), a job killed at any point and resumed from its last
    checkpoint ends with exactly the weights of the uninterrupted run.

    Every rank stores its own states under ``meta['rng_state']['rank<N>']``; with several ranks
    MMEngine writes the checkpoint on rank 0 only, so the other ranks restore nothing and keep
    their seeded states.
    """

    priority = 'VERY_LOW'  # after every hook that may still draw numbers before a save

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(python=random.getstate(), numpy=np.random.get_state(),
                     torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint.setdefault('meta', {}).setdefault('rng_state', {})[self._key(runner)] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('meta', {}).get('rng_state', {}).get(self._key(runner))
        if state is None:
            runner.logger.warning('the checkpoint holds no random number generator state for '
                                  'this rank; the resumed run will not repeat the original')
            return
        random.setstate(_as_python_state(state['python']))
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])

    @staticmethod
    def _key(runner) -> str:
        return f'rank{runner.rank}'


def _as_python_state(state):
    """``random.setstate`` wants tuples; a checkpoint round trip may have made them lists."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
