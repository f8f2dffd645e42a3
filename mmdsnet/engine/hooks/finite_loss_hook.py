"""Stop training at the first loss that is not a finite number."""
import math

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import find_latest_checkpoint


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` as soon as the training loss is NaN or infinite.

    It runs before the checkpoint hook of the same iteration, so no checkpoint with the
    diverged weights is written: the last checkpoint on disk is the last good one, and the
    message names it. The check reads the loss that MMEngine logs every iteration anyway.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        losses = {name: float(value.detach() if isinstance(value, torch.Tensor) else value)
                  for name, value in (outputs or {}).items() if 'loss' in name}
        bad = {name: value for name, value in losses.items() if not math.isfinite(value)}
        if not bad:
            return
        last_good = find_latest_checkpoint(runner.work_dir)
        raise NonFiniteLossError(
            f'training stopped: {", ".join(f"{k}={v}" for k, v in bad.items())} at epoch '
            f'{runner.epoch + 1}, iteration {runner.iter + 1}. Last good checkpoint: '
            f'{last_good or "none written yet"}. Lower the learning rate, enable gradient '
            'clipping, or check the batch for broken labels/images, then resume from it.')
