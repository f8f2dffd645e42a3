"""A small CPU training run that uses every source of randomness a real one does.

    python toy_training.py WORK_DIR MAX_EPOCHS [--resume] [--kill-at-iter N [--kill-with NAME]]
        [--without-rng-hook] [--nan-at-iter N] [--signal-at-iter N [--send NAME]] [--on-rank R]
        [--launcher {none,pytorch}]

``--kill-at-iter`` SIGKILLs the process after that many iterations (mid-epoch), as a crashed
node would (``--kill-with SIGSTOP`` freezes it instead); ``--nan-at-iter`` makes the loss NaN
from that iteration on; ``--signal-at-iter`` sends the process ``--send`` (default SIGTERM)
during the forward pass of that iteration, as a scheduler would. ``--on-rank`` limits the kill
or the signal to one rank of a ``--launcher pytorch`` run (under torchrun, the 8 images shared
by the ranks), whose processes watch each other with a 3-second ``rank_watchdog``.
"""
import argparse
import os
import signal
import subprocess
import time

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mmdsnet  # noqa: F401
from mmdsnet.launch import distributed_session

ITERS_PER_EPOCH = 4  # in one process
WATCHDOG = dict(interval=0.5, timeout=3)


class ToyClassifier(BaseModel):

    def __init__(self, nan_at_iter=None, signal_at_iter=None, signum=signal.SIGTERM):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5))
        self.classifier = nn.Linear(8, 2)
        self.nan_at_iter = nan_at_iter
        self.signal_at_iter, self.signum = signal_at_iter, signum
        self.register_buffer('steps', torch.zeros((), dtype=torch.long))

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.classifier(self.features(torch.stack(inputs)))
        if mode != 'loss':
            return logits
        self.steps += 1
        if self.steps == self.signal_at_iter:
            os.kill(os.getpid(), self.signum)  # in the middle of the iteration
        loss = nn.functional.cross_entropy(logits, torch.stack(labels))
        if self.nan_at_iter is not None and self.steps >= self.nan_at_iter:
            loss = loss * float('nan')
        return {'loss': loss}


class RandomlyFlippedImages(torch.utils.data.Dataset):
    """Fixed images, flipped at random (numpy) each time they are read."""

    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.images = torch.rand(ITERS_PER_EPOCH * 2, 3, 16, 16, generator=generator)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        image = self.images[index]
        if np.random.rand() < 0.5:
            image = image.flip(-1)
        return dict(inputs=image, labels=torch.tensor(index % 2))


class KillAt(Hook):
    """Send ``signum`` after iteration ``iteration``, noting the time in ``WORK_DIR/fault_at``.

    A process stopped with SIGSTOP is woken up 10 seconds later, so that torchrun can end it
    without waiting 30 seconds before its SIGKILL.
    """

    def __init__(self, iteration, signum=signal.SIGKILL):
        self.iteration, self.signum = iteration, signum

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 != self.iteration:
            return
        with open(os.path.join(runner.work_dir, 'fault_at'), 'w') as file:
            file.write(str(time.time()))
        if self.signum == signal.SIGSTOP:
            subprocess.Popen(['sh', '-c', f'sleep 10; kill -CONT {os.getpid()}'],
                             start_new_session=True)  # out of reach of torchrun's signals
        os.kill(os.getpid(), self.signum)


def build_runner(work_dir, max_epochs, resume=False, kill_at_iter=None, kill_with=signal.SIGKILL,
                 nan_at_iter=None, signal_at_iter=None, signum=signal.SIGTERM, rng_hook=True,
                 seed=0, launcher='none', model_wrapper_cfg=None):
    custom_hooks = [dict(type='FiniteLossHook'), dict(type='PreemptionHook')]
    if rng_hook:
        custom_hooks.append(dict(type='RNGStateHook'))
    if kill_at_iter:
        custom_hooks.append(KillAt(kill_at_iter, kill_with))
    torch.manual_seed(0)  # a Runner seeds before it builds a model from a config; do the same
    return Runner(
        model=ToyClassifier(nan_at_iter, signal_at_iter, signum),
        work_dir=work_dir,
        train_dataloader=dict(dataset=RandomlyFlippedImages(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-2)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        custom_hooks=custom_hooks,
        randomness=dict(seed=seed, deterministic=True),
        resume=resume,
        launcher=launcher,
        default_scope='mmengine',
        cfg=dict(model_wrapper_cfg=model_wrapper_cfg))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('work_dir')
    parser.add_argument('max_epochs', type=int)
    parser.add_argument('--resume', action='store_true')
    parser.add_argument('--kill-at-iter', type=int)
    parser.add_argument('--kill-with', default='SIGKILL')
    parser.add_argument('--nan-at-iter', type=int)
    parser.add_argument('--signal-at-iter', type=int)
    parser.add_argument('--send', default='SIGTERM')
    parser.add_argument('--on-rank', type=int)
    parser.add_argument('--without-rng-hook', action='store_true')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    args = parser.parse_args()

    session = Config(dict(launcher=args.launcher, rank_watchdog=WATCHDOG))
    with distributed_session(session):
        faulty = args.on_rank is None or args.on_rank == int(os.environ.get('RANK', 0))
        build_runner(
            args.work_dir, args.max_epochs, resume=args.resume,
            kill_at_iter=args.kill_at_iter if faulty else None,
            kill_with=signal.Signals[args.kill_with], nan_at_iter=args.nan_at_iter,
            signal_at_iter=args.signal_at_iter if faulty else None,
            signum=signal.Signals[args.send], rng_hook=not args.without_rng_hook,
            launcher=args.launcher,
            model_wrapper_cfg=session.get('model_wrapper_cfg')).train()


if __name__ == '__main__':
    main()
