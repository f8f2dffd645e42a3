"""A small CPU training run that uses every source of randomness a real one does.

    python toy_training.py WORK_DIR MAX_EPOCHS [--resume] [--kill-at-iter N] [--without-rng-hook]
        [--nan-at-iter N]

``--kill-at-iter`` SIGKILLs the process after that many iterations (mid-epoch), as a crashed
node would; ``--nan-at-iter`` makes the loss NaN from that iteration on.
"""
import argparse
import os
import signal

import numpy as np
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mmdsnet  # noqa: F401

ITERS_PER_EPOCH = 4


class ToyClassifier(BaseModel):

    def __init__(self, nan_at_iter=None):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5))
        self.classifier = nn.Linear(8, 2)
        self.nan_at_iter = nan_at_iter
        self.register_buffer('steps', torch.zeros((), dtype=torch.long))

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.classifier(self.features(torch.stack(inputs)))
        if mode != 'loss':
            return logits
        self.steps += 1
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

    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('work_dir')
    parser.add_argument('max_epochs', type=int)
    parser.add_argument('--resume', action='store_true')
    parser.add_argument('--kill-at-iter', type=int)
    parser.add_argument('--nan-at-iter', type=int)
    parser.add_argument('--without-rng-hook', action='store_true')
    args = parser.parse_args()

    custom_hooks = [dict(type='FiniteLossHook')]
    if not args.without_rng_hook:
        custom_hooks.append(dict(type='RNGStateHook'))
    if args.kill_at_iter:
        custom_hooks.append(KillAt(args.kill_at_iter))
    torch.manual_seed(0)  # a Runner seeds before it builds a model from a config; do the same
    runner = Runner(
        model=ToyClassifier(args.nan_at_iter),
        work_dir=args.work_dir,
        train_dataloader=dict(dataset=RandomlyFlippedImages(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-2)),
        train_cfg=dict(by_epoch=True, max_epochs=args.max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        custom_hooks=custom_hooks,
        randomness=dict(seed=0, deterministic=True),
        resume=args.resume,
        default_scope='mmengine')
    runner.train()


if __name__ == '__main__':
    main()
